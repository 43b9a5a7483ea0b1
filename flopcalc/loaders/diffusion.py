"""diffusers model configs (a config.json naming its class in `_class_name`): build the model on meta, no weights.

A diffusion model's config names no tokenizer and no input, so the example inputs are the ones its pipeline
feeds it: latents at the config's sample size and channels, a timestep, and text embeddings of the configured
width and a stated length (77 tokens, CLIP's; 333 for SD3, CLIP's 77 + T5's 256). One call is one denoising
step of one latent (a VAE: encode and decode one image).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputSpecError, MissingDependencyError, ModelBuildError, ModelLoadError, short_error
from .base import LoadedModel
from .zoo import define_torchvision_ops

INSTALL_HINT = "pip install 'flopcalc[diffusion]'"
CLIP_TEXT_TOKENS = 77  # CLIP's text encoder length, what SD 1.x/2.x and SDXL condition on
SD3_TEXT_TOKENS = 77 + 256  # SD3's pipeline: CLIP's 77 tokens joined to T5's 256 (max_sequence_length)
SDXL_TIME_IDS = 6  # original size, crop corner, target size: two numbers each
# the classes this loader builds, with the inputs it makes for each
# (diffusers builds a Transformer2DModel config as DiTTransformer2DModel or PixArtTransformer2DModel by its norm_type)
SUPPORTED_CLASSES = (
    "UNet2DConditionModel",
    "Transformer2DModel",
    "DiTTransformer2DModel",
    "PixArtTransformer2DModel",
    "SD3Transformer2DModel",
    "AutoencoderKL",
)


def diffusers_class_name(path: Path) -> str | None:
    """The `_class_name` of a diffusers config.json; None for any other file (a transformers config)."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    name = values.get("_class_name") if isinstance(values, dict) else None
    return name if isinstance(name, str) else None


def _diffusers(source: str):
    define_torchvision_ops()  # diffusers imports torchvision where installed (see there)
    try:
        import diffusers
    except ImportError:
        raise MissingDependencyError(f"counting the diffusion model {source} needs diffusers", INSTALL_HINT) from None
    return diffusers


def load_diffusion_config(path: Path, *, device: str, seq_len: int | None, source: str) -> LoadedModel:
    """LoadedModel for a diffusers config.json: the model its `_class_name` names, and as example inputs one
    latent, one timestep and (where it is conditioned on text) text embeddings `seq_len` tokens long."""
    class_name = diffusers_class_name(path)
    if class_name not in SUPPORTED_CLASSES:
        raise ModelLoadError(
            f"{source}: diffusers class {class_name!r} is not one flopcalc builds",
            f"give a config.json of one of {', '.join(SUPPORTED_CLASSES)}",
        )
    diffusers = _diffusers(source)
    import torch

    cls = getattr(diffusers, class_name)
    try:
        config = cls.load_config(str(path))
        with torch.device(device):
            model = cls.from_config(config)
    except Exception as error:
        raise ModelBuildError(f"{source}: building {class_name} failed: {short_error(error)}") from error
    model.eval()
    inputs, notes = default_inputs(model, type(model).__name__, device=device, seq_len=seq_len)
    return LoadedModel(model, inputs, source, "diffusion", (_what_one_call_is(type(model).__name__),), (), notes)


def _what_one_call_is(class_name: str) -> str:
    """The note saying what one counted call is, in the units train and a serving estimate need."""
    if class_name == "AutoencoderKL":
        return "one call encodes one image and decodes its latent (a pipeline runs only the decoder per sample)"
    return (
        "one call is one denoising step of one latent: a training example is one noised latent; generating one "
        "sample takes N steps (2N forwards with classifier-free guidance)"
    )


def default_inputs(model, class_name: str, *, device: str, seq_len: int | None) -> tuple[dict, dict[str, str]]:
    """The keyword inputs of one denoising step (batch 1) for `model`, a `class_name` model, and a note per
    input saying where its shape comes from."""
    import torch

    config = model.config  # a FrozenDict: what a class does not use is not there
    side = _sample_side(config)
    channels = config["in_channels"]
    if class_name == "AutoencoderKL":
        if seq_len is not None:
            raise InputSpecError("--seq-len sizes text embeddings; AutoencoderKL takes an image", "drop --seq-len")
        shape = (1, channels, *side)
        return {"sample": torch.zeros(shape, device=device)}, {
            "sample": f"no --input sample=: {_dims(shape)} float32 (one image at the config's sample_size; "
            "the count covers encoding it and decoding its latent)"
        }
    latent = (1, channels, *side)
    latent_name = "sample" if class_name == "UNet2DConditionModel" else "hidden_states"
    inputs: dict[str, Any] = {latent_name: torch.zeros(latent, device=device)}
    notes = {
        latent_name: f"no --input {latent_name}=: {_dims(latent)} float32 (one latent at the config's sample_size)"
    }
    inputs["timestep"] = torch.zeros(1, dtype=torch.int64, device=device)
    notes["timestep"] = "no --input timestep=: 1 int64 (one denoising step's timestep)"
    text_width, default_tokens, why = _text_conditioning(config, class_name)
    if text_width is None:
        if seq_len is not None:
            raise InputSpecError(f"--seq-len sizes text embeddings; this {class_name} is not conditioned on text")
    else:
        tokens = seq_len if seq_len is not None else default_tokens
        shape = (1, tokens, text_width)
        inputs["encoder_hidden_states"] = torch.zeros(shape, device=device)
        length = "--seq-len" if seq_len is not None else why
        notes["encoder_hidden_states"] = (
            f"no --input encoder_hidden_states=: {_dims(shape)} float32 (text embeddings: {length}; "
            "--seq-len sets the tokens)"
        )
    extra, extra_note = _extra_conditioning(model, class_name, device)
    inputs.update(extra)
    if extra_note:
        notes.update(dict.fromkeys(extra, extra_note))
    return inputs, notes


def _sample_side(config) -> tuple[int, int]:
    size = config.get("sample_size")
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(s, int) for s in size):
        return int(size[0]), int(size[1])
    raise ModelLoadError(f"sample_size {size!r} is not a size", "give an integer or [height, width]")


def _text_conditioning(config, class_name: str) -> tuple[int | None, int, str]:
    """The text embeddings' width, their default length and why that length."""
    clip = f"{CLIP_TEXT_TOKENS} tokens, CLIP's text length"
    if class_name == "SD3Transformer2DModel":
        return config["joint_attention_dim"], SD3_TEXT_TOKENS, f"{SD3_TEXT_TOKENS} tokens, SD3's CLIP 77 + T5 256"
    if class_name == "DiTTransformer2DModel":
        return None, 0, ""
    if class_name in ("Transformer2DModel", "PixArtTransformer2DModel"):
        width = config.get("caption_channels") or config.get("cross_attention_dim")
        return width, CLIP_TEXT_TOKENS, clip
    width = config.get("encoder_hid_dim") or config["cross_attention_dim"]
    if isinstance(width, (list, tuple)):
        if len(set(width)) != 1:
            raise ModelLoadError(
                f"cross_attention_dim {list(width)} differs between blocks",
                "flopcalc builds UNets whose blocks share one text width",
            )
        width = width[0]
    return width, CLIP_TEXT_TOKENS, clip


def _extra_conditioning(model, class_name: str, device: str) -> tuple[dict, str]:
    """Inputs beyond latent, timestep and text a model's config asks for: SD3's pooled text embedding, SDXL's
    pooled text embedding and size/crop ids, PixArt's resolution and aspect ratio, a class-conditional DiT's
    class label."""
    import torch

    config = model.config

    if class_name == "SD3Transformer2DModel":
        width = config["pooled_projection_dim"]
        return {"pooled_projections": torch.zeros(1, width, device=device)}, (
            f"no --input pooled_projections=: 1x{width} float32 (the pooled text embedding)"
        )
    if class_name == "UNet2DConditionModel" and config.get("addition_embed_type") == "text_time":
        pooled = config["projection_class_embeddings_input_dim"] - SDXL_TIME_IDS * config["addition_time_embed_dim"]
        conditions = {
            "text_embeds": torch.zeros(1, pooled, device=device),
            "time_ids": torch.zeros(1, SDXL_TIME_IDS, device=device),
        }
        return {"added_cond_kwargs": conditions}, (
            f"no --input added_cond_kwargs: text_embeds 1x{pooled} and time_ids 1x{SDXL_TIME_IDS} (SDXL's pooled "
            "text embedding and size/crop conditioning)"
        )
    if class_name == "PixArtTransformer2DModel":
        if not model.use_additional_conditions:
            return {"added_cond_kwargs": {"resolution": None, "aspect_ratio": None}}, ""
        conditions = {
            "resolution": torch.zeros(1, 2, device=device),
            "aspect_ratio": torch.zeros(1, 1, device=device),
        }
        return {"added_cond_kwargs": conditions}, (
            "no --input added_cond_kwargs: resolution 1x2 and aspect_ratio 1x1 (PixArt's size conditioning)"
        )
    if class_name == "DiTTransformer2DModel":
        return {"class_labels": torch.zeros(1, dtype=torch.int64, device=device)}, (
            "no --input class_labels=: 1 int64 (one class label of a class-conditional DiT)"
        )
    return {}, ""


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))
