"""Hugging Face architecture configs (`config.json`, or a folder holding one): build the model, no weights.

The config is read with transformers' own reader and the model is built with transformers' `from_config` under the requested
device (meta by default: no memory, no weights). Nothing is downloaded: the config's `model_type` picks the
architecture from the installed transformers, and the offline variables are set before it is imported.
Attention runs through `F.scaled_dot_product_attention` ("sdpa") where the model supports it, so the counter
sees it as attention. The example inputs are the ones the model class and its config call for: token ids,
pixel values, mel features or raw audio, decoder token ids for an encoder-decoder, each modality of a
multimodal model, with image tokens in the token ids for images given to a model that splices them in.
Training-time randomness that changes which work runs (LayerDrop, SpecAugment) is off: counts repeat.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import math
import os
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from ..errors import InputSpecError, MissingDependencyError, ModelBuildError, ModelLoadError, short_error
from ..spec import DEFAULT_MAX_LAYERS
from .base import LoadedModel
from .config_notes import config_notes
from .zoo import define_torchvision_ops

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
_MODALITY_INPUTS = (
    ("input_ids", "text_config"),
    ("pixel_values", "vision_config"),
    ("input_features", "audio_config"),
    ("input_values", "audio_config"),
)
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
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(
            f"{path} is not valid JSON: {short_error(error)}", "give a Hugging Face config.json"
        ) from error
    if not isinstance(values, dict) or not isinstance(values.get("model_type"), str):
        raise ModelLoadError(
            f"{path} has no model_type", "a Hugging Face config.json names its architecture in model_type"
        )
    transformers = _transformers()
    model_type = values["model_type"]
    if model_type not in transformers.CONFIG_MAPPING:
        raise ModelLoadError(
            f"{path}: unknown model_type {model_type!r}",
            f"transformers {transformers.__version__} does not know it; upgrade transformers or fix the config",
        )
    try:
        with _quiet(transformers):  # config sanity warnings (a token id past a tiny vocabulary) are not ours
            # transformers' own reader: it decodes what its writer encodes ({"__float__": "Infinity"})
            return transformers.CONFIG_MAPPING[model_type].from_json_file(path)
    except ValueError as error:
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

    transformers = _transformers()
    cls = _model_class(transformers, config)
    config = copy.deepcopy(config)
    notes: list[str] = [
        f"counted with {', '.join(turned_off)} off: random layer skipping and time masking in "
        "training mode would make each count differ; every layer and time step is counted once"
        for turned_off in [_training_randomness_off(config)]
        if turned_off
    ]
    try:
        with _quiet(transformers), torch.device(device):
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


def default_inputs(
    model,
    config,
    *,
    device: str,
    seq_len: int | None = None,
    decoder_seq_len: int | None = None,
    given: AbstractSet[str] | Mapping[str, tuple] | None = frozenset(),
) -> tuple[dict, dict[str, str], tuple[str, ...]]:
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
    out. Inputs in `given` (names, or names and shapes) are not made (`given=None`: positional --inputs replace
    them all); a given `pixel_values` shape puts its image tokens at the start of the default token ids."""
    wanted, left_out = _wanted_inputs(model, config, given)
    cls = type(model).__name__
    if seq_len is not None and not {"input_ids", "input_values"} & set(wanted):
        raise InputSpecError(
            f"--seq-len sizes token ids or raw audio; {cls} takes {', '.join(wanted)}",
            "give --input NAME=SHAPE"
            + ("; --decoder-seq-len sizes the decoder's tokens" if "decoder_input_ids" in wanted else ""),
        )
    if decoder_seq_len is not None and "decoder_input_ids" not in wanted:
        raise InputSpecError(
            f"--decoder-seq-len applies to encoder-decoder models; {cls} is not one",
            "use --seq-len for its token inputs",
        )
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
    pixels = given.get("pixel_values") if isinstance(given, Mapping) else None
    if pixels is not None and "input_ids" in inputs and _image_token_id(config) is not None:
        notes["input_ids"] = _place_image_tokens(model, config, inputs, tuple(pixels), given, device)
    return inputs, notes, tuple(left_out)


def _image_token_id(config) -> int | None:
    """The token id a vision-language model splices image features in at, if it is one."""
    return next(
        (
            value
            for value in (getattr(config, key, None) for key in _IMAGE_TOKEN_KEYS)
            if isinstance(value, int) and not isinstance(value, bool)
        ),
        None,
    )


def _place_image_tokens(model, config, inputs: dict, pixel_shape: tuple[int, ...], given, device: str) -> str:
    """The default token ids (and the inputs that go with them) for a --input pixel_values=SHAPE: the first
    tokens are the image tokens, as many as the images' features, the rest text (id 0). Qwen2-VL-style
    pixel values (flattened patches [patches, features]) get the image grid `1 x sqrt-ish x sqrt-ish` of
    those patches, and the token types that mark the image tokens. Returns the note on the token ids."""
    import torch

    parameters = _forward_parameters(model)
    image_token, ids = _image_token_id(config), inputs["input_ids"]
    if "image_grid_thw" in parameters and "image_grid_thw" not in given:
        merge = getattr(getattr(config, "vision_config", None), "spatial_merge_size", None) or 1
        grid = _patch_grid(pixel_shape, merge, type(model).__name__)
        inputs["image_grid_thw"] = torch.tensor([grid], dtype=torch.int64, device=device)
        features, how = (
            math.prod(grid) // merge**2,
            (f"image grid {'x'.join(map(str, grid))} of {pixel_shape[0]} patches, merged {merge}x{merge}"),
        )
    else:
        # a pure function of the config and the shape: the CPU retry after a failed meta count reuses it rather
        # than run the vision tower on real zeros
        key = (config.to_json_string(), pixel_shape)
        if key not in _IMAGE_FEATURES:
            _IMAGE_FEATURES[key] = _image_features(model, config, pixel_shape, device)
        features, how = _IMAGE_FEATURES[key], "the vision tower's features"
    if features > ids.shape[1]:
        raise InputSpecError(
            f"the images of pixel_values={'x'.join(map(str, pixel_shape))} take {features} image tokens, more than "
            f"the {ids.shape[1]} token ids",
            f"give --seq-len {features} or more, or smaller images",
        )
    values = torch.zeros(ids.shape, dtype=ids.dtype)  # set on the CPU: a meta tensor holds no values
    values[0, :features] = image_token
    inputs["input_ids"] = values.to(device)
    if "mm_token_type_ids" in parameters and "mm_token_type_ids" not in given:
        inputs["mm_token_type_ids"] = (inputs["input_ids"] == image_token).to(torch.int64)
    return (
        f"no --input input_ids=: {'x'.join(map(str, ids.shape))} int64, the first {features} image tokens "
        f"(id {image_token}: {how}), then text; set --seq-len to change"
    )


def _forward_parameters(model):
    try:
        return inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return {}


def _patch_grid(pixel_shape: tuple[int, ...], merge: int, cls: str) -> tuple[int, int, int]:
    """(frames 1, height, width) in patches for `patches` flattened patches: the squarest split whose sides
    the spatial merge divides."""
    patches = pixel_shape[0] if len(pixel_shape) == 2 else 0
    sides = [
        (h, patches // h)
        for h in range(1, math.isqrt(patches) + 1)
        if patches % h == 0 and h % merge == 0 and (patches // h) % merge == 0
    ]
    if not sides:
        raise InputSpecError(
            f"{cls} takes pixel_values as flattened patches [patches, features], with patches = height x width "
            f"in patches, each a multiple of {merge}; got {'x'.join(map(str, pixel_shape))}",
            f"give e.g. --input pixel_values={(4 * merge) ** 2}xFEATURES (a {4 * merge}x{4 * merge}-patch image)",
        )
    return (1, *sides[-1])


_IMAGE_FEATURES: dict[tuple[str, tuple[int, ...]], int] = {}


def _image_features(model, config, pixel_shape: tuple[int, ...], device: str) -> int:
    """How many token positions the images of `pixel_shape` fill: the vision tower run on zeros (on meta: no
    arithmetic), its features' elements over the language model's width."""
    import torch

    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    width = getattr(text, "hidden_size", None)
    extract = getattr(model, "get_image_features", None)
    try:
        with torch.no_grad():
            output = extract(pixel_values=torch.zeros(pixel_shape, device=device))
    except Exception as error:
        raise InputSpecError(
            f"{type(model).__name__} could not take pixel_values={'x'.join(map(str, pixel_shape))}: "
            f"{short_error(error)}",
            "give pixel_values as its image processor makes them",
        ) from error
    output = getattr(output, "pooler_output", output)
    tensors = [output] if isinstance(output, torch.Tensor) else [t for t in output if isinstance(t, torch.Tensor)]
    if not isinstance(width, int) or not tensors:
        raise InputSpecError(
            f"cannot tell how many image tokens {type(model).__name__}'s images take",
            "give --input input_ids=... with the image tokens in place yourself",
        )
    return sum(t.numel() for t in tensors) // width


def _wanted_inputs(
    model, config, given: AbstractSet[str] | Mapping[str, tuple] | None = frozenset()
) -> tuple[list[str], list[str]]:
    main = getattr(model, "main_input_name", None) or "input_ids"
    parameters = _forward_parameters(model)
    wanted, left_out = [main], []
    for name, sub_config in _MODALITY_INPUTS:
        if name == main or name not in parameters or getattr(config, sub_config, None) is None:
            continue
        if name == "pixel_values" and _image_token_id(config) is not None:
            if given is None or name in given:  # given: its image tokens go into the default token ids
                continue
            left_out.append(
                f"pixel_values not given: {type(model).__name__} splices image features into the token "
                "sequence at image-token positions, which default token ids hold none of; the count "
                "covers its language model on text tokens (give --input pixel_values=SHAPE to add images)"
            )
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
        return (
            (1, tokens),
            "int64",
            "" if seq_len is not None else (f"min(max positions, {MAX_DEFAULT_SEQ_LEN}); set --seq-len to change"),
        )
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
    why = (
        "as long as the encoder's token ids"
        if encoder_tokens and length == encoder_tokens
        else "the decoder's max positions"
        if decoder_max and length == decoder_max
        else f"at most {MAX_DEFAULT_SEQ_LEN}"
    )
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
    shape = (
        (1, frames, channels, height, width) if isinstance(frames, int) and frames > 0 else (1, channels, height, width)
    )
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
