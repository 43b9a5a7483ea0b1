"""Hugging Face architecture configs (`config.json`, or a folder holding one): build the model, no weights.

The config is read from disk and the model is built with transformers' `from_config` under the requested
device (meta by default: no memory, no weights). Nothing is downloaded: the config's `model_type` picks the
architecture from the installed transformers, and the offline variables are set before it is imported.
Attention runs through `F.scaled_dot_product_attention` ("sdpa") where the model supports it, so the counter
sees it as attention. The example inputs are the ones the model class and its config call for: token ids,
pixel values, mel features or raw audio, decoder token ids for an encoder-decoder, each modality of a
multimodal model.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
from pathlib import Path
from typing import AbstractSet, Any

from ..errors import InputSpecError, MissingDependencyError, ModelBuildError, ModelLoadError, short_error
from ..spec import DEFAULT_MAX_LAYERS
from .base import LoadedModel

INSTALL_HINT = "pip install 'flopcalc[hf]'"
MAX_DEFAULT_SEQ_LEN = 2048
# config keys that hold the longest sequence the positions cover, across architectures
_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx")
# ... and the longest sequence of an encoder-decoder's decoder, where it has its own
_DECODER_POSITION_KEYS = ("max_target_positions", "max_decoder_position_embeddings")
# CPU seconds to build and count one decoder layer on meta (a Llama layer on a loaded 2-core machine)
SECONDS_PER_LAYER = 0.05
DEFAULT_IMAGE_SIZE = 224
DEFAULT_AUDIO_SAMPLES = 16_000  # one second at 16 kHz, the rate speech models are trained at
# the inputs a multimodal model's forward takes besides its main one, and the sub-config that says it has them
_MODALITY_INPUTS = (("input_ids", "text_config"), ("pixel_values", "vision_config"),
                    ("input_features", "audio_config"), ("input_values", "audio_config"))
# config keys of models that splice image features into the token sequence at image-token positions
_IMAGE_TOKEN_KEYS = ("image_token_id", "image_token_index")


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
    # its advice on faster kernels and config sanity (a model run on meta has no kernels) is not a count's
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
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
        with _quiet(transformers):  # config sanity warnings (a token id past a tiny vocabulary) are not ours
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


@contextlib.contextmanager
def _quiet(transformers):
    """transformers' logging at error level while the block runs."""
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)


def default_seq_len(config) -> int:
    """min(the longest sequence the config's positions cover, 2048); 2048 when it names none."""
    length = _positions(config, _POSITION_KEYS)
    return min(length, MAX_DEFAULT_SEQ_LEN) if length else MAX_DEFAULT_SEQ_LEN


def _positions(config, keys) -> int | None:
    lengths = [getattr(config, key, None) for key in keys]
    return next((n for n in lengths if isinstance(n, int) and not isinstance(n, bool) and n > 0), None)


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
        if getattr(config, "is_encoder_decoder", False) else [auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES]
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

    transformers = _transformers()
    cls = _model_class(transformers, config)
    notes: list[str] = []
    try:
        with _quiet(transformers), torch.device(device):
            model = None
            if getattr(cls, "_supports_sdpa", False):
                try:
                    model = cls._from_config(config, attn_implementation="sdpa")
                except ValueError as error:
                    if "sdpa" not in str(error).lower() and "scaled_dot_product" not in str(error):
                        raise
            if model is None:
                model = cls._from_config(config)
                implementation = getattr(model.config, "_attn_implementation", None) or "eager"
                notes.append(f"{cls.__name__} does not support sdpa attention: built with its default "
                             f"({implementation}), " + ("so its attention products are counted as matmul"
                                                        if _has_attention(model) else "and it has no attention layer"))
        _move_strays(model, device)
    except Exception as error:
        raise ModelBuildError(f"{source}: building the model failed: {short_error(error)}") from error
    return model, notes


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
                    data = tensor.detach().to(target) if target.type != "meta" else torch.empty_like(tensor, device=target)
                    moved[id(tensor)] = (torch.nn.Parameter(data, requires_grad=tensor.requires_grad)
                                         if isinstance(tensor, torch.nn.Parameter) else data)
                table[name] = moved[id(tensor)]


def declared_layers(values: Any) -> int:
    """The layers a config (its `to_dict()`) declares, sub-configs included: per config the largest layer count
    it states (`num_hidden_layers`, `n_layer`, ...), or its encoder's and decoder's together when larger."""
    if not isinstance(values, dict):
        return 0
    counts = {key: value for key, value in values.items()
              if isinstance(value, int) and not isinstance(value, bool) and re.fullmatch(r"(num_|n_)?\w*layers?", key)
              and ("layer" in key) and not key.endswith(("_per_layer", "_layer_idx"))}
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
    return f"{seconds:.0f} s" if seconds < 120 else (f"{seconds / 60:,.0f} minutes" if seconds < 7200
                                                    else f"{seconds / 3600:,.0f} hours")


def load_hf_config(path: Path, *, device: str, seq_len: int | None, source: str,
                   decoder_seq_len: int | None = None, given: AbstractSet[str] | None = frozenset(),
                   max_layers: int = DEFAULT_MAX_LAYERS):
    """LoadedModel for a config.json: the architecture, and as example inputs a dict of the inputs it needs
    (`default_inputs`) except those `given` by name (`given=None`: all are given, positionally). A config with
    more than `max_layers` layers is refused before it is built."""
    config = read_config(path)
    check_layer_budget(config, max_layers, source)
    model, notes = build_model(config, device, source)
    example, input_notes, example_notes = default_inputs(
        model, config, device=device, seq_len=seq_len, decoder_seq_len=decoder_seq_len, given=given,
    )
    return LoadedModel(model, example or None, source, "huggingface", tuple(notes), example_notes, input_notes)


def default_inputs(model, config, *, device: str, seq_len: int | None = None, decoder_seq_len: int | None = None,
                   given: AbstractSet[str] | None = frozenset()) -> tuple[dict, dict[str, str], tuple[str, ...]]:
    """The inputs a model built from `config` is called with when no --input names them, batch size 1:

    - its main input (`model.main_input_name`): token ids `1 x seq_len` (int64 zeros; seq_len defaults to
      min(max positions, 2048)); pixel values `1 x channels x H x W` from the vision config's image size
      (`1 x frames x channels x H x W` for video); Whisper-style mel features `1 x mel bins x frames`, the
      frames the encoder expects (max source positions x its convolutions' strides); raw audio `1 x samples`
      (16,000 by default, one second at 16 kHz; --seq-len sets the samples);
    - every other modality its forward takes and its config has a sub-config for (CLIP: token ids and pixel
      values), except images a model splices into its token sequence at image-token positions (LLaVA-style:
      zero token ids hold none, so the count covers the text);
    - decoder token ids `1 x decoder_seq_len` for an encoder-decoder (default: the encoder's token length, or
      the decoder's max positions when the encoder does not take tokens, at most 2048).

    Returns the tensors by name, a note per default input (shown while it is used) and notes on inputs left
    out. Inputs in `given` are not made (`given=None`: positional --inputs replace them all)."""
    wanted, left_out = _wanted_inputs(model, config)
    cls = type(model).__name__
    if seq_len is not None and not {"input_ids", "input_values"} & set(wanted):
        raise InputSpecError(
            f"--seq-len sizes token ids or raw audio; {cls} takes {', '.join(wanted)}",
            "give --input NAME=SHAPE" + ("; --decoder-seq-len sizes the decoder's tokens" if "decoder_input_ids" in wanted else ""),
        )
    if decoder_seq_len is not None and "decoder_input_ids" not in wanted:
        raise InputSpecError(f"--decoder-seq-len applies to encoder-decoder models; {cls} is not one",
                             "use --seq-len for its token inputs")
    if given is None:
        return {}, {}, ()
    inputs: dict[str, Any] = {}
    notes: dict[str, str] = {}
    for name in wanted:
        if name in given:
            continue
        shape, dtype, note = _input_shape(name, model, config, wanted, seq_len, decoder_seq_len)
        inputs[name] = _zeros(shape, dtype, device)
        if note:
            notes[name] = f"no --input {name}=: {'x'.join(map(str, shape))} {dtype} ({note})"
    return inputs, notes, tuple(left_out)


def _wanted_inputs(model, config) -> tuple[list[str], list[str]]:
    main = getattr(model, "main_input_name", None) or "input_ids"
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        parameters = {}
    wanted, left_out = [main], []
    for name, sub_config in _MODALITY_INPUTS:
        if name == main or name not in parameters or getattr(config, sub_config, None) is None:
            continue
        if name == "pixel_values" and any(getattr(config, key, None) is not None for key in _IMAGE_TOKEN_KEYS):
            left_out.append(f"pixel_values not given: {type(model).__name__} splices image features into the token "
                            "sequence at image-token positions, which default token ids hold none of; the count "
                            "covers its language model on text tokens")
            continue
        wanted.append(name)
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in parameters:
        wanted.append("decoder_input_ids")
    return wanted, left_out


def _input_shape(name: str, model, config, wanted, seq_len, decoder_seq_len) -> tuple[tuple[int, ...], str, str]:
    """(shape, dtype, why: empty when an option set it) of one default input."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    tokens = seq_len if seq_len is not None else default_seq_len(text)
    if name == "input_ids":
        return (1, tokens), "int64", "" if seq_len is not None else (
            f"min(max positions, {MAX_DEFAULT_SEQ_LEN}); set --seq-len to change")
    if name == "decoder_input_ids":
        return _decoder_shape(config, text, tokens if "input_ids" in wanted else None, decoder_seq_len)
    if name == "pixel_values":
        return _pixel_shape(getattr(config, "vision_config", None) or config)
    if name == "input_values":
        if seq_len is not None:
            return (1, seq_len), "float32", ""
        return (1, DEFAULT_AUDIO_SAMPLES), "float32", "raw audio, one second at 16 kHz; set --seq-len to the samples"
    if name == "input_features":
        return _mel_shape(model, getattr(config, "audio_config", None) or config)
    raise InputSpecError(
        f"cannot tell the shape of {type(model).__name__}'s input {name!r} from its config",
        f"give it: --input {name}=SHAPE[:dtype]",
    )


def _decoder_shape(config, text, encoder_tokens: int | None, decoder_seq_len: int | None):
    """Decoder token ids: --decoder-seq-len, else as long as the encoder's token ids, else the decoder's max
    positions; never past those positions, nor 2048."""
    if decoder_seq_len is not None:
        return (1, decoder_seq_len), "int64", ""
    decoder_max = _positions(config, _DECODER_POSITION_KEYS) or _positions(text, _POSITION_KEYS)
    length = min(n for n in (encoder_tokens, decoder_max, MAX_DEFAULT_SEQ_LEN) if n)
    why = ("as long as the encoder's token ids" if encoder_tokens and length == encoder_tokens
           else "the decoder's max positions" if decoder_max and length == decoder_max
           else f"at most {MAX_DEFAULT_SEQ_LEN}")
    return (1, length), "int64", f"{why}; set --decoder-seq-len to change"


def _pixel_shape(vision):
    channels = getattr(vision, "num_channels", None) or 3
    size = getattr(vision, "image_size", None)
    why = "the config's image size"
    if isinstance(size, int) and size > 0:
        height = width = size
    elif isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(n, int) for n in size):
        height, width = size
    else:
        height = width = DEFAULT_IMAGE_SIZE
        why = f"the config names no image size: {DEFAULT_IMAGE_SIZE}x{DEFAULT_IMAGE_SIZE}"
    frames = getattr(vision, "num_frames", None)
    shape = (1, frames, channels, height, width) if isinstance(frames, int) and frames > 0 else (1, channels, height, width)
    return shape, "float32", why + "; give --input pixel_values=SHAPE to change"


def _mel_shape(model, audio):
    """Whisper-style log-mel features: [1, mel bins, frames], where the encoder's convolutions bring the
    frames down to its max source positions, so frames = positions x the product of their strides."""
    import torch

    bins, positions = getattr(audio, "num_mel_bins", None), getattr(audio, "max_source_positions", None)
    encoder = model.get_encoder() if hasattr(model, "get_encoder") else model
    strides = [m.stride[0] for m in encoder.children() if isinstance(m, torch.nn.Conv1d)]
    if not (isinstance(bins, int) and isinstance(positions, int) and strides):
        raise InputSpecError(
            f"cannot tell the shape of {type(model).__name__}'s input_features from its config",
            "give it: --input input_features=SHAPE (batch x features x frames as its feature extractor makes them)",
        )
    frames = positions
    for stride in strides:
        frames *= stride
    return (1, bins, frames), "float32", f"{bins} mel bins x the {frames} frames the encoder expects"


def _zeros(shape, dtype: str, device: str):
    import torch

    return torch.zeros(shape, dtype=getattr(torch, dtype), device=device)
