"""Hugging Face architecture configs (`config.json`, or a folder holding one): build the model, no weights.

The config is read from disk and the model is built with transformers' `from_config` under the requested
device (meta by default: no memory, no weights). Nothing is downloaded: the config's `model_type` picks the
architecture from the installed transformers, and the offline variables are set before it is imported.
Attention runs through `F.scaled_dot_product_attention` ("sdpa"), so the counter sees it as attention.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import InputSpecError, MissingDependencyError, ModelBuildError, ModelLoadError, short_error
from .base import LoadedModel

INSTALL_HINT = "pip install 'flopcalc[hf]'"
MAX_DEFAULT_SEQ_LEN = 2048
# config keys that hold the longest sequence the positions cover, across architectures
_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx")


def config_path(spec: str) -> Path | None:
    """The config file a MODEL string names: `*.json`, or a folder with a config.json; else None."""
    path = Path(spec)
    if path.suffix.lower() == ".json":
        return path
    if path.is_dir() and (path / "config.json").is_file():
        return path / "config.json"
    return None


def _transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError("counting a Hugging Face config needs transformers", INSTALL_HINT) from None
    return transformers


def read_config(path: Path):
    """The transformers config object for a config.json; ModelLoadError for anything it cannot be."""

    if not path.is_file():
        raise ModelLoadError(f"config file {path} not found", "check the path; it is relative to the current folder")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{path} is not valid JSON: {short_error(error)}", "give a Hugging Face config.json") from error
    if not isinstance(values, dict) or not isinstance(values.get("model_type"), str):
        raise ModelLoadError(
            f"{path} has no model_type", "a Hugging Face config.json names its architecture in model_type"
        )
    transformers = _transformers()
    model_type = values.pop("model_type")
    try:
        return transformers.AutoConfig.for_model(model_type, **values)
    except ValueError as error:
        if model_type not in transformers.CONFIG_MAPPING:
            raise ModelLoadError(
                f"{path}: unknown model_type {model_type!r}",
                f"transformers {transformers.__version__} does not know it; upgrade transformers or fix the config",
            ) from error
        raise ModelLoadError(f"{path}: malformed config: {short_error(error)}") from error
    except Exception as error:
        raise ModelLoadError(f"{path}: malformed config: {short_error(error)}") from error


def default_seq_len(config) -> int:
    """min(the longest sequence the config's positions cover, 2048); 2048 when it names none."""
    lengths = [getattr(config, key, None) for key in _POSITION_KEYS]
    lengths = [n for n in lengths if isinstance(n, int) and n > 0]
    return min(lengths[0], MAX_DEFAULT_SEQ_LEN) if lengths else MAX_DEFAULT_SEQ_LEN


def _model_class(transformers, config):
    """The class the config's `architectures` names, else a causal LM, else the bare model."""
    for name in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, name, None)
        if cls is not None and hasattr(cls, "_from_config"):
            return cls._from_config
    model_type = config.model_type
    if model_type in transformers.models.auto.modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return transformers.AutoModelForCausalLM.from_config
    return transformers.AutoModel.from_config


def build_model(config, device: str, source: str):
    """The architecture on `device`, with sdpa attention where the model has it (eager otherwise, noted)."""
    import torch

    transformers = _transformers()
    build = _model_class(transformers, config)
    notes: list[str] = []
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # config sanity warnings are not ours to print
    try:
        with torch.device(device):
            try:
                model = build(config, attn_implementation="sdpa")
            except ValueError as error:
                if "sdpa" not in str(error).lower():
                    raise
                model = build(config, attn_implementation="eager")
                notes.append("this architecture has no sdpa attention: attention products are counted as matmul")
    except Exception as error:
        raise ModelBuildError(f"{source}: building the model failed: {short_error(error)}") from error
    finally:
        transformers.logging.set_verbosity(verbosity)
    return model, notes


def load_hf_config(path: Path, *, device: str, seq_len: int | None, source: str):
    """LoadedModel for a config.json: the architecture and `1 x seq_len` int64 token ids as example input."""
    import torch

    config = read_config(path)
    model, notes = build_model(config, device, source)
    length = seq_len if seq_len is not None else default_seq_len(config)
    if length < 1:
        raise InputSpecError(f"--seq-len {length} must be at least 1")
    example = (torch.zeros(1, length, dtype=torch.int64, device=device),)
    example_notes = () if seq_len is not None else (
        f"no --input: token ids 1x{length} (min(max positions, {MAX_DEFAULT_SEQ_LEN})); set --seq-len to change",
    )
    return LoadedModel(model, example, source, "huggingface", tuple(notes), example_notes)
