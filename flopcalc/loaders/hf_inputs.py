"""The example inputs a Hugging Face model is counted with when no --input names them: token ids, pixel values,
mel features or raw audio as its class and config call for, each modality of a multimodal model, decoder token ids
for an encoder-decoder, and image tokens in the token ids for images a model splices in.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from ..errors import InputSpecError, short_error
from .hf_config import MAX_DEFAULT_SEQ_LEN, POSITION_KEYS, config_positions, default_seq_len

# ... and the longest sequence of an encoder-decoder's decoder, where it has its own
DECODER_POSITION_KEYS = ("max_target_positions", "max_decoder_position_embeddings")
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
    decoder_max = config_positions(config, DECODER_POSITION_KEYS) or config_positions(text, POSITION_KEYS)
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
