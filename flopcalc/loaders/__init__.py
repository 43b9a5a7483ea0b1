"""Model sources: a MODEL string -> an nn.Module (+ example inputs), and `--input` specs -> tensors.

Which loader handles a source is decided here, by its form:
`file.py:callable` or `file.py` (a Python factory), `.pt`/`.pth`/`.ts` (TorchScript), `.pt2` (torch.export),
`.onnx` (an ONNX graph, counted statically: `module` is then the onnx ModelProto), `config.json` / `*.json` or
a folder holding a config.json (a Hugging Face architecture config).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ModelLoadError
from .inputs import InputSpec, make_inputs, parse_input_spec

__all__ = ["LoadedModel", "load_model", "make_inputs", "parse_input_spec", "InputSpec"]

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts")
EXPORT_SUFFIXES = (".pt2",)
ONNX_SUFFIXES = (".onnx",)


@dataclass
class LoadedModel:
    module: Any  # torch.nn.Module; an onnx.ModelProto when kind == "onnx"
    example_inputs: Any = None  # what the source supplies when no --input is given
    source: str = ""
    kind: str = ""  # "python" | "torchscript" | "export" | "onnx" | "huggingface"
    notes: tuple[str, ...] = field(default_factory=tuple)
    example_notes: tuple[str, ...] = field(default_factory=tuple)  # hold only when example_inputs are used


def split_python_source(spec: str) -> tuple[str, str | None] | None:
    """`models/net.py:build` -> ("models/net.py", "build"); `net.py` -> ("net.py", None); else None."""
    path, sep, attribute = spec.rpartition(":")
    if sep and path.endswith(".py"):
        return path, attribute or None
    if spec.endswith(".py"):
        return spec, None
    return None


def load_model(
    spec: str, *, kwargs: Mapping[str, Any] | None = None, device: str = "meta", seq_len: int | None = None
) -> LoadedModel:
    """Load the model a MODEL string names, built or moved onto `device`.

    `seq_len` sets the token count of a Hugging Face config's example input; other sources take --input."""
    from .huggingface import config_path

    hf_config = config_path(spec)
    if seq_len is not None and hf_config is None:
        raise ModelLoadError("--seq-len applies to Hugging Face config.json models", "give --input SHAPE for others")
    python = split_python_source(spec)
    if python is not None:
        from .python_file import load_python_model

        return load_python_model(python[0], python[1], kwargs=kwargs or {}, device=device, source=spec)
    path = Path(spec)
    if kwargs:
        raise ModelLoadError(f"--kwargs applies to Python model files, not to {spec}")
    suffix = path.suffix.lower()
    if suffix in TORCHSCRIPT_SUFFIXES:
        from .saved import load_torchscript

        return load_torchscript(path, device=device)
    if suffix in EXPORT_SUFFIXES:
        from .saved import load_exported

        return load_exported(path, device=device)
    if suffix in ONNX_SUFFIXES:
        from .onnx_graph import load_onnx

        return LoadedModel(load_onnx(path), None, spec, "onnx")
    if hf_config is not None:
        from .huggingface import load_hf_config

        return load_hf_config(hf_config, device=device, seq_len=seq_len, source=spec)
    raise ModelLoadError(
        f"cannot tell what kind of model {spec!r} is",
        "give a Python file (file.py:callable), TorchScript (.pt/.pth/.ts), torch.export (.pt2), ONNX (.onnx) "
        "or a Hugging Face config.json",
    )
