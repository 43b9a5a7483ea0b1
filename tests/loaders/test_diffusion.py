"""diffusers config.json files: UNets, DiT/SD3 transformers and VAEs built on meta and counted on one latent, one
timestep and text embeddings; Stable Diffusion 1.5's UNet against its published size and hand arithmetic."""

import json
import sys
from pathlib import Path

import pytest

import flopcalc
from flopcalc.cli import app
from flopcalc.errors import MissingDependencyError, ModelLoadError
from flopcalc.loaders import load_model
from flopcalc.loaders.diffusion import load_diffusion_config
from flopcalc.loaders.zoo import define_torchvision_ops
from tests._cli import runner
from tests._hf_configs import TINY_UNET as TINY_4_CHANNEL_UNET

define_torchvision_ops()  # before diffusers imports torchvision, as the loader does
pytest.importorskip("diffusers", reason="the diffusion extra is not installed: pip install 'flopcalc[diffusion]'")

SD15_UNET = Path(__file__).resolve().parents[2] / "examples" / "diffusion" / "sd15-unet" / "config.json"
SD15_PUBLISHED_PARAMS = 859.5e6

TINY_UNET = {**TINY_4_CHANNEL_UNET, "in_channels": 4, "out_channels": 4}
TINY_SDXL_UNET = {
    **TINY_UNET,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 8,
    "projection_class_embeddings_input_dim": 6 * 8 + 12,
}
TINY_SD3 = {
    "_class_name": "SD3Transformer2DModel",
    "sample_size": 8,
    "patch_size": 2,
    "in_channels": 4,
    "out_channels": 4,
    "num_layers": 2,
    "attention_head_dim": 8,
    "num_attention_heads": 2,
    "joint_attention_dim": 24,
    "caption_projection_dim": 16,
    "pooled_projection_dim": 12,
    "pos_embed_max_size": 16,
}
TINY_DIT = {
    "_class_name": "Transformer2DModel",
    "sample_size": 8,
    "patch_size": 2,
    "in_channels": 4,
    "out_channels": 8,
    "num_layers": 2,
    "attention_head_dim": 8,
    "num_attention_heads": 2,
    "norm_type": "ada_norm_zero",
    "num_embeds_ada_norm": 10,
    "norm_num_groups": 8,
}
TINY_PIXART = {
    **TINY_DIT,
    "norm_type": "ada_norm_single",
    "num_embeds_ada_norm": 1000,
    "cross_attention_dim": 24,  # the width its captions are projected to: 3 heads x 8
    "caption_channels": 20,
    "use_additional_conditions": True,
    "num_attention_heads": 3,  # its size conditions split the width in three
}
TINY_VAE = {
    "_class_name": "AutoencoderKL",
    "block_out_channels": [16, 32],
    "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
    "latent_channels": 4,
    "norm_num_groups": 8,
    "sample_size": 16,
    "in_channels": 3,
    "out_channels": 3,
}


def write_config(tmp_path, values, name="model"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(values))
    return folder / "config.json"


def shapes(loaded):
    return {
        name: tuple(value.shape) if hasattr(value, "shape") else {k: tuple(v.shape) for k, v in value.items()}
        for name, value in loaded.example_inputs.items()
    }


def test_sd15_unet_counts_with_its_published_size():
    report = flopcalc.count(str(SD15_UNET), strict=True)
    assert report.params == 859_520_964
    assert abs(report.params - SD15_PUBLISHED_PARAMS) / SD15_PUBLISHED_PARAMS < 0.001
    assert not report.unsupported_ops
    assert any("a training example is one noised latent" in note for note in report.notes)


def test_sd15_unet_layers_match_hand_arithmetic():
    report = flopcalc.count(str(SD15_UNET), backward=False)
    conv_in = report.layer("conv_in")  # 4 -> 320 channels, 3x3, on the 64x64 latent, plus its bias
    assert conv_in.forward_by_category["conv"] == 2 * 64 * 64 * 320 * 4 * 9
    assert conv_in.forward_by_category["elementwise"] == 64 * 64 * 320
    block = "down_blocks.0.attentions.0.transformer_blocks.0"
    # cross-attention: 4,096 latent positions against 77 text tokens, width 320: QK^T and AV, 2 FLOP a MAC
    assert report.layer(f"{block}.attn2").forward_by_category["attention"] == 2 * 2 * 4096 * 77 * 320
    # its keys and values project the 77 text embeddings of width 768 to 320
    assert report.layer(f"{block}.attn2.to_k").forward_by_category["matmul"] == 2 * 77 * 768 * 320


def test_unet_default_inputs_follow_the_config_and_seq_len(tmp_path):
    path = write_config(tmp_path, TINY_UNET)
    loaded = load_diffusion_config(path, device="meta", seq_len=None, source=str(path))
    assert loaded.kind == "diffusion"
    assert shapes(loaded) == {"sample": (1, 4, 8, 8), "timestep": (1,), "encoder_hidden_states": (1, 77, 16)}
    assert "77 tokens, CLIP's text length" in loaded.input_notes["encoder_hidden_states"]
    report = flopcalc.count(str(path), seq_len=10, strict=True)
    assert report.layer("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k").forward_by_category["matmul"] == (
        2 * 10 * 16 * 32
    )


def test_sdxl_style_unet_gets_its_added_conditions(tmp_path):
    path = write_config(tmp_path, TINY_SDXL_UNET)
    loaded = load_model(str(path))
    assert shapes(loaded)["added_cond_kwargs"] == {"text_embeds": (1, 12), "time_ids": (1, 6)}
    assert not flopcalc.count(str(path), strict=True).unsupported_ops


LATENT = {"hidden_states": (1, 4, 8, 8), "timestep": (1,)}


@pytest.mark.parametrize(
    "config, conditions",
    [
        # SD3: joint text and pooled embeddings
        (TINY_SD3, {"encoder_hidden_states": (1, 333, 24), "pooled_projections": (1, 12)}),
        # class-conditional DiT: a class label
        (TINY_DIT, {"class_labels": (1,)}),
        # PixArt: captions and size conditions
        (
            TINY_PIXART,
            {
                "encoder_hidden_states": (1, 77, 20),
                "added_cond_kwargs": {"resolution": (1, 2), "aspect_ratio": (1, 1)},
            },
        ),
    ],
    ids=["sd3", "dit", "pixart"],
)
def test_a_diffusion_transformer_takes_the_latent_and_its_conditions(tmp_path, config, conditions):
    path = write_config(tmp_path, config)
    loaded = load_model(str(path))
    assert shapes(loaded) == {**LATENT, **conditions}
    assert not flopcalc.count(str(path), strict=True).unsupported_ops


def test_vae_encodes_and_decodes_one_image(tmp_path):
    path = write_config(tmp_path, TINY_VAE)
    loaded = load_model(str(path))
    assert shapes(loaded) == {"sample": (1, 3, 16, 16)}
    assert loaded.notes == (
        "one call encodes one image and decodes its latent (a pipeline runs only the decoder per sample)",
    )
    report = flopcalc.count(str(path), strict=True)
    # the last conv of the decoder: 16 -> 3 channels, 3x3, back at the image's 16x16
    assert report.layer("decoder.conv_out").forward_by_category["conv"] == 2 * 16 * 16 * 3 * 16 * 9


def test_a_named_input_replaces_the_default(tmp_path):
    path = write_config(tmp_path, TINY_UNET)
    report = flopcalc.count(str(path), ["encoder_hidden_states=1x5x16"], backward=False)
    attn2 = report.layer("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k")
    assert attn2.forward_by_category["matmul"] == 2 * 5 * 16 * 32


def test_a_class_flopcalc_does_not_build_is_one_line(tmp_path):
    path = write_config(tmp_path, {"_class_name": "UNet3DConditionModel"})
    with pytest.raises(ModelLoadError, match="UNet3DConditionModel"):
        load_model(str(path))
    result = runner.invoke(app, ["count", str(path)])
    assert result.exit_code == 2
    assert "AutoencoderKL" in result.output and "Traceback" not in result.output


def test_missing_diffusers_names_the_extra(tmp_path, monkeypatch):
    path = write_config(tmp_path, TINY_UNET)
    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'flopcalc\[diffusion\]'"):
        load_model(str(path))


def test_seq_len_is_refused_for_a_vae(tmp_path):
    path = write_config(tmp_path, TINY_VAE)
    result = runner.invoke(app, ["count", str(path), "--seq-len", "10"])
    assert result.exit_code == 2
    assert "--seq-len" in result.output


def test_training_counts_one_noised_latent_per_example(tmp_path):
    path = write_config(tmp_path, TINY_UNET)
    report = flopcalc.count(str(path))
    compute = flopcalc.training(str(path), 1000)
    assert compute.forward_flops_per_example == report.forward
    assert compute.training_flops == 1000 * (report.forward + report.backward)
    assert any("a training example is one noised latent" in note for note in compute.notes)
