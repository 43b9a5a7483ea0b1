"""Hugging Face configs read and sized before anything is built: the file found, read with transformers' own
reader (transformers imported offline: a count never downloads), the sequence length its positions allow, the
layers it declares, and the attention window it gives every layer.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, ModelLoadError, short_error
from .base import read_json
from .zoo import define_torchvision_ops

INSTALL_HINT = "pip install 'flopcalc[hf]'"
MAX_DEFAULT_SEQ_LEN = 2048
# config keys that hold the longest sequence the positions cover, across architectures
POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx")
# CPU seconds to build and count one decoder layer on meta (a Llama layer on a loaded 2-core machine)
SECONDS_PER_LAYER = 0.05


def config_path(spec: str) -> Path | None:
    """The config file a MODEL string names: `*.json`, or a folder with a config.json; else None."""
    path = Path(spec)
    if path.suffix.lower() == ".json":
        return path
    if path.is_dir() and (path / "config.json").is_file():
        return path / "config.json"
    return None


def import_transformers():
    # offline while transformers (and huggingface_hub under it) is first imported, which is when they read it;
    # the user's own setting is back afterwards, for the Hub ids resolved later in this process (loaders/hub.py)
    user_offline = {name: os.environ.get(name) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # its advice on faster kernels and config sanity (a model run on meta has no kernels) is not a count's
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    define_torchvision_ops()  # transformers imports torchvision where installed (see there)
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError("counting a Hugging Face config needs transformers", INSTALL_HINT) from None
    finally:
        for name, value in user_offline.items():
            if value is None:
                os.environ.pop(name, None)
    return transformers


def read_config(path: Path):
    """The transformers config object for a config.json, read by transformers' own reader (the JSON is checked
    first only to say what is wrong with it); ModelLoadError for anything it cannot be."""

    if not path.is_file():
        raise ModelLoadError(f"config file {path} not found", "check the path; it is relative to the current folder")
    values = read_json(path, "give a Hugging Face config.json")
    if not isinstance(values, dict) or not isinstance(values.get("model_type"), str):
        raise ModelLoadError(
            f"{path} has no model_type", "a Hugging Face config.json names its architecture in model_type"
        )
    transformers = import_transformers()
    model_type = values["model_type"]
    if model_type not in transformers.CONFIG_MAPPING:
        raise ModelLoadError(
            f"{path}: unknown model_type {model_type!r}",
            f"transformers {transformers.__version__} does not know it; upgrade transformers or fix the config",
        )
    try:
        with quiet_transformers(
            transformers
        ):  # config sanity warnings (a token id past a tiny vocabulary) are not ours
            # transformers' own reader: it decodes what its writer encodes ({"__float__": "Infinity"})
            return transformers.CONFIG_MAPPING[model_type].from_json_file(path)
    except ValueError as error:
        raise ModelLoadError(f"{path}: malformed config: {short_error(error)}") from error
    except Exception as error:
        raise ModelLoadError(f"{path}: malformed config: {short_error(error)}") from error


@contextlib.contextmanager
def quiet_transformers(transformers):
    """transformers' logging at error level while the block runs."""
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)


def default_seq_len(config) -> int:
    """min(the longest sequence the config's positions cover, 2048); 2048 when it names none."""
    length = config_positions(config, POSITION_KEYS)
    return min(length, MAX_DEFAULT_SEQ_LEN) if length else MAX_DEFAULT_SEQ_LEN


def config_positions(config, keys) -> int | None:
    lengths = [getattr(config, key, None) for key in keys]
    return next((n for n in lengths if isinstance(n, int) and not isinstance(n, bool) and n > 0), None)


def declared_layers(values: Any) -> int:
    """The layers a config (its `to_dict()`) declares, sub-configs included: per config the largest layer count
    it states (`num_hidden_layers`, `n_layer`, ...), or its encoder's and decoder's together when larger."""
    if not isinstance(values, dict):
        return 0
    counts = {
        key: value
        for key, value in values.items()
        if isinstance(value, int)
        and not isinstance(value, bool)
        and re.fullmatch(r"(num_|n_)?\w*layers?", key)
        and ("layer" in key)
        and not key.endswith(("_per_layer", "_layer_idx"))
    }
    stacked = counts.get("encoder_layers", 0) + counts.get("decoder_layers", 0)
    own = max([stacked, *counts.values()], default=0)
    return own + sum(declared_layers(value) for value in values.values() if isinstance(value, dict))


def check_layer_budget(config, max_layers: int, source: str) -> None:
    """Refuse, before building, a config declaring more than `max_layers` layers: every layer is built and its
    ops run one by one, so the time grows with the layers (spec.DEFAULT_MAX_LAYERS is minutes) and a million
    layers would run until killed."""
    layers = declared_layers(config.to_dict())
    if layers > max_layers:
        raise ModelLoadError(
            f"{source} declares {layers:,} layers, more than max_layers {max_layers:,}: counting builds and runs "
            f"each one (about {_duration(layers * SECONDS_PER_LAYER)} of CPU)",
            "raise max_layers to count it all the same, or count a copy with fewer layers (FLOPs scale per layer)",
            field="max_layers",
        )


def _duration(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else (f"{seconds / 60:,.0f} minutes" if seconds < 7200 else f"{seconds / 3600:,.0f} hours")
    )


def config_attention_window(module: Any) -> tuple[int | None, str | None]:
    """The sliding window a transformers model's config gives every attention layer (Mistral's
    `sliding_window`), and a note when the config names one that is not counted: switched off
    (`use_sliding_window: false`, as Qwen2 ships) or on some layers only (`layer_types`), where one window
    for every call would be wrong."""
    config = getattr(module, "config", None)
    window = getattr(config, "sliding_window", None) if config is not None else None
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        return None, None
    if getattr(config, "use_sliding_window", True) is False:
        return None, None
    layer_types = getattr(config, "layer_types", None)
    if layer_types and any("sliding" not in str(kind) for kind in layer_types):
        return None, (
            f"the config's sliding_window {window:,} applies to some layers only (layer_types): attention "
            "counted over the full square; give --attention-window to count every layer with a window"
        )
    return window, None
