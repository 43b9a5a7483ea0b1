"""Model sources: a ModelSpec -> a loaded model (+ its example inputs), and its `--input` specs -> tensors.

Which loader handles a source is decided here, by its form:
`file.py:callable` or `file.py` (a Python factory), `.pt`/`.pth`/`.ts` (TorchScript), `.pt2` (torch.export),
`.onnx` (an ONNX graph, counted statically: `module` is then the onnx ModelProto), `config.json` / `*.json` or
a folder holding a config.json (a Hugging Face architecture config, or a diffusers one: diffusion.py), a Hugging Face Hub id `org/name` (its
config.json, fetched into the Hub's cache: hub.py) and `timm:NAME` / `torchvision:NAME` (zoo.py). A local path
always wins over a name of the same spelling. Loaders only load; they never count.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError
from ..spec import ModelSpec, split_python_source
from .base import LoadedModel
from .diffusion import diffusers_class_name, load_diffusion_config
from .hf_config import config_path
from .hub import is_hub_id, pipeline_components, resolve_hub_id
from .inputs import check_input_names, example_inputs_kept, make_inputs
from .zoo import zoo_name

__all__ = [
    "LoadedModel",
    "check_input_names",
    "example_inputs_kept",
    "is_hub_id",
    "is_named_model",
    "load_model",
    "make_inputs",
]

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts")
EXPORT_SUFFIXES = (".pt2",)
ONNX_SUFFIXES = (".onnx",)


def load_model(spec: ModelSpec | str, *, device: str = "meta") -> LoadedModel:
    """Load the model `spec` names, built or moved onto `device` (a bare string is a source with no options),
    with the values of `spec.weights` (a state dict or safetensors file) put in when given."""
    if isinstance(spec, str):
        spec = ModelSpec(spec)
    loaded = _load_source(spec, device)
    if spec.weights is not None:
        if loaded.kind == "onnx":
            raise ModelLoadError(
                "--weights applies to PyTorch models, not to ONNX graphs",
                "an ONNX graph is counted from its shapes; drop --weights",
            )
        from .weights import apply_weights

        apply_weights(loaded.module, spec.weights)
    return loaded


def _load_source(spec: ModelSpec, device: str) -> LoadedModel:
    source = spec.source
    hub = is_hub_id(source)
    if spec.revision is not None and not hub:
        raise ModelLoadError(
            f"--revision applies to Hugging Face Hub ids (org/name), not to {source}",
            "drop --revision, or name the model by its Hub id",
        )
    zoo = None if hub or Path(source).exists() else zoo_name(source)
    local = resolve_hub_id(source, spec.revision) if hub else Path(source)
    hf_config = None if zoo else config_path(str(local))
    if hub and hf_config is None:
        components = pipeline_components(local / "model_index.json")
        raise ModelLoadError(
            f"{source} is a pipeline (model_index.json): count one of its models",
            "name its folder: " + ", ".join(f"{source}/{name}" for name in components),
        )
    for flag, value in (("--seq-len", spec.seq_len), ("--decoder-seq-len", spec.decoder_seq_len)):
        if value is not None and hf_config is None:
            raise ModelLoadError(f"{flag} applies to Hugging Face config.json models", "give --input SHAPE for others")
    if zoo is not None:
        from .zoo import load_zoo

        return load_zoo(
            zoo[0], zoo[1], kwargs=spec.kwargs, device=device, source=source, inputs_given=bool(spec.inputs)
        )
    python = split_python_source(source)
    if python is not None:
        from .python_file import load_python_model

        return load_python_model(python[0], python[1], kwargs=spec.kwargs, device=device, source=source)
    if spec.kwargs:
        raise ModelLoadError(f"--kwargs applies to Python model files, not to {source}")
    return _load_file(spec, local, hf_config, device)


def _load_file(spec: ModelSpec, path: Path, hf_config: Path | None, device: str) -> LoadedModel:
    """A saved model (TorchScript, torch.export, ONNX), told by its suffix, or an architecture config (diffusers,
    then transformers) at `hf_config`."""
    source = spec.source
    suffix = path.suffix.lower()
    if suffix in TORCHSCRIPT_SUFFIXES:
        from .saved import load_torchscript

        return load_torchscript(path, device=device)
    if suffix in EXPORT_SUFFIXES:
        from .saved import load_exported

        return load_exported(path, device=device)
    if suffix in ONNX_SUFFIXES:
        from .onnx_file import load_onnx

        return LoadedModel(load_onnx(path), None, source, "onnx")
    if hf_config is not None and diffusers_class_name(hf_config) is not None:
        if spec.decoder_seq_len is not None:
            raise ModelLoadError("--decoder-seq-len applies to encoder-decoder models, not to diffusion models")
        return load_diffusion_config(hf_config, device=device, seq_len=spec.seq_len, source=source)
    if hf_config is not None:
        from .huggingface import load_hf_config

        given = spec.input_specs
        named = None if any(p.name is None for p in given) else {p.name: p.shape for p in given}
        return load_hf_config(
            hf_config,
            device=device,
            seq_len=spec.seq_len,
            decoder_seq_len=spec.decoder_seq_len,
            source=source,
            given=named,
            max_layers=spec.max_layers,
        )
    raise ModelLoadError(
        f"cannot tell what kind of model {source!r} is",
        "give a Python file (file.py:callable), TorchScript (.pt/.pth/.ts), torch.export (.pt2), ONNX (.onnx), "
        "a Hugging Face config.json or Hub id (org/name), or timm:NAME / torchvision:NAME",
    )


def is_named_model(source: str) -> bool:
    """Whether `source` names a model rather than a local file: a Hub id or a zoo name, with no local path
    of that spelling."""
    return is_hub_id(source) or (zoo_name(source) is not None and not Path(source).exists())
