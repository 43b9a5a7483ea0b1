"""Hugging Face architecture configs (`config.json`, or a folder holding one): build the model, no weights.

The config is read (`hf_config`) with transformers' own reader and the model is built with transformers'
`from_config` under the requested device (meta by default: no memory, no weights). Nothing is downloaded: the
config's `model_type` picks the architecture from the installed transformers, imported offline.
Attention runs through `F.scaled_dot_product_attention` ("sdpa") where the model supports it, so the counter
sees it as attention. The example inputs (`hf_inputs`) are the ones the model class and its config call for.
Training-time randomness that changes which work runs (LayerDrop, SpecAugment) is off: counts repeat.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from ..errors import ModelBuildError, ModelLoadError, short_error
from ..spec import DEFAULT_MAX_LAYERS
from .base import LoadedModel
from .config_notes import config_notes
from .hf_config import check_layer_budget, import_transformers, quiet_transformers, read_config
from .hf_inputs import default_inputs


def _model_class(transformers, config):
    """The class the config's `architectures` names; else, for an encoder-decoder, its sequence-to-sequence
    LM (text, then speech); else the causal LM of the `model_type`; else the bare model."""
    for name in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, name, None)
        if cls is not None and hasattr(cls, "_from_config"):
            return cls
    auto = transformers.models.auto.modeling_auto
    mappings = (
        [auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES, auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES]
        if getattr(config, "is_encoder_decoder", False)
        else [auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES]
    ) + [auto.MODEL_MAPPING_NAMES]
    for mapping in mappings:
        names = mapping.get(config.model_type)
        for name in (names,) if isinstance(names, str) else names or ():
            cls = getattr(transformers, name, None)
            if cls is not None and hasattr(cls, "_from_config"):
                return cls
    raise ModelLoadError(
        f"transformers {transformers.__version__} has no model class for model_type {config.model_type!r}",
        "name one in the config's architectures list",
    )


def build_model(config, device: str, source: str):
    """The architecture on `device`, with sdpa attention where the model supports it, else its own default
    (noted: its attention products are then plain matmuls)."""
    import torch

    transformers = import_transformers()
    cls = _model_class(transformers, config)
    config = copy.deepcopy(config)
    notes: list[str] = [
        f"counted with {', '.join(turned_off)} off: random layer skipping and time masking in "
        "training mode would make each count differ; every layer and time step is counted once"
        for turned_off in [_training_randomness_off(config)]
        if turned_off
    ]
    try:
        with quiet_transformers(transformers), torch.device(device):
            model = None
            # each attempt gets its own copy: a failed one has already set the attention on some sub-configs
            # (DETR's ResNet backbone refuses sdpa after the DETR part took it)
            if getattr(cls, "_supports_sdpa", False):
                try:
                    model = cls._from_config(copy.deepcopy(config), attn_implementation="sdpa")
                except ValueError as error:
                    if "sdpa" not in str(error).lower() and "scaled_dot_product" not in str(error):
                        raise
            if model is None:
                model = cls._from_config(copy.deepcopy(config))
                notes.append(_default_attention_note(cls.__name__, model))
        _move_strays(model, device)
    except Exception as error:
        raise ModelBuildError(f"{source}: building the model failed: {short_error(error)}") from error
    return model, notes


def _training_randomness_off(config, prefix: str = "") -> list[str]:
    """The config and its sub-configs with the training-time randomness that changes which work runs turned off:
    LayerDrop (`layerdrop`, `encoder_layerdrop`, ...: skip random whole layers) to 0, SpecAugment
    (`apply_spec_augment`: overwrite random time steps, as many as drawn) off. `name=value` of each that was on."""
    turned_off = []
    for name, value in list(vars(config).items()):
        if hasattr(value, "to_dict") and hasattr(value, "model_type"):  # a sub-config
            turned_off += _training_randomness_off(value, f"{prefix}{name}.")
        elif name.endswith("layerdrop") and isinstance(value, (int, float)) and not isinstance(value, bool):
            if value:
                turned_off.append(f"{prefix}{name}={value:g}")
            setattr(config, name, 0.0)
        elif name == "apply_spec_augment" and value is True:
            turned_off.append(f"{prefix}{name}=true")
            setattr(config, name, False)
    return turned_off


def _default_attention_note(name: str, model) -> str:
    """What a model built with its default attention counts its attention as: a part that refused sdpa
    (DETR's ResNet backbone) leaves the rest on sdpa, counted as attention."""
    implementation = getattr(model.config, "_attn_implementation", None) or "eager"
    if implementation != "sdpa":
        return f"{name} does not support sdpa attention: built with its default ({implementation}), " + (
            "so its attention products are counted as matmul"
            if _has_attention(model)
            else "and it has no attention layer"
        )
    refused = sorted(
        {
            type(m).__name__
            for m in model.modules()
            if getattr(getattr(m, "config", None), "_attn_implementation", "sdpa") not in ("sdpa", None)
        }
    )
    with_attention = [
        part for part in refused if any(type(m).__name__ == part and _has_attention(m) for m in model.modules())
    ]
    return (
        f"{name}: {', '.join(refused) or 'a part'} does not support sdpa attention and was built with its "
        "default; the rest uses sdpa, counted as attention"
        + (f" ({', '.join(with_attention)}: attention products counted as matmul)" if with_attention else "")
    )


def _has_attention(model) -> bool:
    """Whether any module is an attention layer (transformers names their classes *Attention / *Attn): a
    state-space or convolutional model without sdpa support has nothing a note about attention applies to."""
    return any("attention" in type(m).__name__.lower() or "attn" in type(m).__name__.lower() for m in model.modules())


def _move_strays(model, device: str) -> None:
    """Parameters and buffers a model made off `device` (wav2vec 2.0 builds one with the legacy
    `torch.Tensor(n)`, which ignores the device it is built under) moved onto it, each tensor once, so a
    weight shared by two modules stays shared."""
    import torch

    target = torch.device(device)
    moved: dict[int, Any] = {}
    for module in model.modules():
        for table in (module._parameters, module._buffers):
            for name, tensor in table.items():
                if tensor is None or tensor.device == target:
                    continue
                if id(tensor) not in moved:
                    data = (
                        tensor.detach().to(target) if target.type != "meta" else torch.empty_like(tensor, device=target)
                    )
                    moved[id(tensor)] = (
                        torch.nn.Parameter(data, requires_grad=tensor.requires_grad)
                        if isinstance(tensor, torch.nn.Parameter)
                        else data
                    )
                table[name] = moved[id(tensor)]


def load_hf_config(
    path: Path,
    *,
    device: str,
    seq_len: int | None,
    source: str,
    decoder_seq_len: int | None = None,
    given: AbstractSet[str] | Mapping[str, tuple] | None = frozenset(),
    max_layers: int = DEFAULT_MAX_LAYERS,
):
    """LoadedModel for a config.json: the architecture, and as example inputs a dict of the inputs it needs
    (`default_inputs`) except those `given` by name (`given=None`: all are given, positionally). A config with
    more than `max_layers` layers is refused before it is built."""
    config = read_config(path)
    check_layer_budget(config, max_layers, source)
    model, notes = build_model(config, device, source)
    notes = [*notes, *config_notes(json.loads(path.read_text(encoding="utf-8")), config, model)]
    example, input_notes, example_notes = default_inputs(
        model,
        config,
        device=device,
        seq_len=seq_len,
        decoder_seq_len=decoder_seq_len,
        given=given,
    )
    return LoadedModel(model, example or None, source, "huggingface", tuple(notes), example_notes, input_notes)
