"""Hugging Face models that broke or miscounted: configs as transformers writes them, a backbone config that the
first build attempt edits, fused experts, random layer skipping, image inputs spliced into the token ids."""

import pytest

transformers = pytest.importorskip("transformers")

from flopcalc.api import count  # noqa: E402
from flopcalc.errors import InputSpecError  # noqa: E402

H, VOCAB = 64, 1000
SMALL_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}


def test_a_config_transformers_wrote_with_infinity_in_it_loads(tmp_path):
    """Mamba2's time_step_limit defaults to (0, inf), which transformers writes as {"__float__": "Infinity"}."""
    heads, head_dim, state, groups, kernel, layers = 8, 16, 8, 1, 4, 2
    inner = heads * head_dim  # expand 2 x hidden 64
    transformers.Mamba2Config(
        hidden_size=H,
        num_heads=heads,
        head_dim=head_dim,
        state_size=state,
        n_groups=groups,
        expand=2,
        conv_kernel=kernel,
        num_hidden_layers=layers,
        vocab_size=VOCAB,
        **SMALL_IDS,
    ).save_pretrained(tmp_path)
    assert '"__float__": "Infinity"' in (tmp_path / "config.json").read_text()
    report = count(str(tmp_path), seq_len=16, backward=False)
    conv_channels = inner + 2 * groups * state
    per_layer = (
        H * (2 * inner + 2 * groups * state + heads)  # in_proj: gate, x, B, C, dt
        + conv_channels * kernel
        + conv_channels  # depthwise conv and its bias
        + 3 * heads  # dt_bias, A_log, D
        + inner
        + inner * H
        + H
    )  # gated norm, out_proj, the block's norm
    assert report.params == 2 * VOCAB * H + layers * per_layer + H  # untied head, final norm


def test_falcon_h1_reads_back_the_infinite_time_step_limit_transformers_wrote(tmp_path):
    from flopcalc.loaders.hf_config import read_config

    transformers.FalconH1Config(hidden_size=H, num_hidden_layers=1, vocab_size=VOCAB, **SMALL_IDS).save_pretrained(
        tmp_path
    )
    config = read_config(tmp_path / "config.json")
    assert type(config).__name__ == "FalconH1Config" and tuple(config.time_step_limit) == (0.0, float("inf"))


def test_detr_with_a_resnet_backbone_builds_after_sdpa_is_refused(tmp_path):
    """The backbone refuses sdpa after the DETR part took it; the default build gets a fresh copy of the config
    (it failed on the edited one), and DETR's own attention still runs through sdpa."""
    heads, width, queries = 4, 64, 10
    transformers.DetrConfig(
        use_timm_backbone=False,
        use_pretrained_backbone=False,
        num_queries=queries,
        d_model=width,
        backbone_config={
            "model_type": "resnet",
            "embedding_size": 16,
            "hidden_sizes": [16, 32, 64, 128],
            "depths": [1, 1, 1, 1],
            "out_features": ["stage4"],
        },
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=width,
        decoder_ffn_dim=width,
    ).save_pretrained(tmp_path)
    report = count(str(tmp_path), inputs=["pixel_values=1x3x64x64"], backward=False)
    tokens = (64 // 32) ** 2  # the last ResNet stage is at stride 32
    pairs = tokens * tokens + queries * queries + queries * tokens  # encoder self, decoder self, cross
    assert report.forward_by_category["attention"] == 2 * heads * pairs * 2 * (width // heads)
    assert any("ResNetBackbone does not support sdpa" in note and "the rest uses sdpa" in note for note in report.notes)


def test_layerdrop_and_spec_augment_are_off_so_every_layer_counts_every_time(tmp_path):
    """HuBERT in training mode skips each layer with probability `layerdrop` and masks random time steps: five
    counts of one model differed. Counted with both off, every run is the same and holds every layer."""
    import json

    layers, heads = 4, 4
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "hubert",
                "hidden_size": H,
                "intermediate_size": 128,
                "num_hidden_layers": layers,
                "num_attention_heads": heads,
                "conv_dim": [16] * 7,
                "num_conv_pos_embeddings": 16,
                "vocab_size": 32,
                "layerdrop": 0.5,
                "apply_spec_augment": True,
                "mask_time_prob": 0.3,
            }
        )
    )
    # the feature extractor (kernels 10, 3, 3, 3, 3, 2, 2; strides 5, 2, 2, 2, 2, 2, 2) takes 16,000 samples to
    # 49 frames; each layer's attention is 2 x heads x 49 x 49 x (head dim + head dim)
    frames, head_dim = 49, H // heads
    reports = [count(str(tmp_path), backward=False) for _ in range(4)]
    assert {r.forward_by_category["attention"] for r in reports} == {layers * 2 * heads * frames**2 * 2 * head_dim}
    assert len({r.forward for r in reports}) == 1 and reports[0].device == "meta"
    assert any("layerdrop=0.5, apply_spec_augment=true off" in note for note in reports[0].notes)


def test_dbrx_experts_fused_in_one_module_count_top_k_of_them_as_active(tmp_path):
    """DBRX keeps all experts' rows in one [experts x ffn, hidden] weight per projection: active was total."""
    import json

    layers, heads, kv_heads, ffn, experts, top_k = 2, 4, 2, 128, 4, 2
    head_dim = H // heads
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "dbrx",
                "d_model": H,
                "n_heads": heads,
                "n_layers": layers,
                "max_seq_len": 64,
                "vocab_size": VOCAB,
                "attn_config": {"kv_n_heads": kv_heads, "clip_qkv": 8, "rope_theta": 10000},
                "ffn_config": {"ffn_hidden_size": ffn, "moe_num_experts": experts, "moe_top_k": top_k},
            }
        )
    )
    report = count(str(tmp_path), seq_len=12, backward=False)
    attention = H * (H + 2 * kv_heads * head_dim) + H * H  # Wqkv, out_proj
    expert_weights = 3 * experts * ffn * H  # w1, v1, w2
    dense = 2 * VOCAB * H + layers * (attention + H * experts + 2 * H) + H  # + router, two norms; final norm
    assert report.params == dense + layers * expert_weights
    assert report.active == dense + layers * expert_weights * top_k // experts
    assert report.forward_by_category["matmul"] == 2 * 12 * (
        layers * (attention + H * experts + top_k * 3 * ffn * H) + H * VOCAB
    )


LLAVA = {
    "model_type": "llava",
    "image_token_index": 999,
    "projector_hidden_act": "gelu",
    "text_config": {
        "model_type": "llama",
        "hidden_size": H,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": VOCAB,
        "max_position_embeddings": 256,
    },
    "vision_config": {
        "model_type": "clip_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
    },
}


def test_images_given_to_a_llava_model_get_their_image_tokens_in_the_token_ids(tmp_path):
    import json

    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAVA))
    images, seq = 2, 40
    report = count(str(path), inputs=[f"pixel_values={images}x3x32x32"], seq_len=seq, backward=False)
    assert [(i.name, i.shape) for i in report.inputs] == [
        ("input_ids", (1, seq)),
        ("pixel_values", (images, 3, 32, 32)),
    ]
    patches = (32 // 8) ** 2  # each image's features: its patches (the class token is dropped)
    assert any(f"the first {images * patches} image tokens (id 999" in note for note in report.notes)
    # a note must not say the images were not given when they were
    assert not any("pixel_values not given" in note for note in report.notes)
    text = seq * 2 * (4 * H * H + 3 * H * 128)  # q, k, v, o and the gated MLP, two layers
    vision = images * (patches + 1) * 2 * (4 * 32 * 32 + 2 * 32 * 64)  # CLIP layers on the patches + class token
    projector = images * patches * (32 * H + H * H)
    assert report.forward_by_category["matmul"] == 2 * (text + vision + projector)
    assert not report.unsupported_ops
    without = count(str(path), seq_len=seq, backward=False)
    assert any("pixel_values not given" in note for note in without.notes)
    with pytest.raises(InputSpecError, match="take 32 image tokens, more than the 20 token ids"):
        count(str(path), inputs=["pixel_values=2x3x32x32"], seq_len=20, backward=False)


def test_qwen2_vl_images_as_patches_get_an_image_grid_and_token_types(tmp_path):
    import json

    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "qwen2_vl",
                "image_token_id": 998,
                "video_token_id": 997,
                "vision_start_token_id": 996,
                "text_config": {
                    "hidden_size": H,
                    "intermediate_size": 128,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 4,
                    "num_key_value_heads": 2,
                    "vocab_size": VOCAB,
                    "max_position_embeddings": 256,
                    "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
                },
                "vision_config": {
                    "depth": 2,
                    "embed_dim": 32,
                    "hidden_size": H,
                    "num_heads": 4,
                    "patch_size": 4,
                    "spatial_merge_size": 2,
                    "temporal_patch_size": 2,
                    "in_channels": 3,
                },
            }
        )
    )
    patch_features = 3 * 2 * 4 * 4  # channels x temporal patch x patch x patch
    report = count(str(path), inputs=[f"pixel_values=64x{patch_features}"], seq_len=40, backward=False)
    assert [(i.name, i.shape) for i in report.inputs] == [
        ("input_ids", (1, 40)),
        ("image_grid_thw", (1, 3)),
        ("mm_token_type_ids", (1, 40)),
        ("pixel_values", (64, patch_features)),
    ]
    # 64 patches: an 8 x 8 grid, merged 2 x 2 into 16 image tokens
    assert any("the first 16 image tokens (id 998: image grid 1x8x8" in note for note in report.notes)
    vision = 64 * 2 * (32 * 3 * 32 + 32 * 32 + 2 * 32 * 4 * 32)  # per patch, two blocks: qkv, proj, the MLP (4x)
    merger = 16 * (4 * 32 * 4 * 32 + 4 * 32 * H)  # 2x2 patches merged into each image token, to the text width
    text = 40 * 2 * (2 * H * H + 2 * H * 2 * (H // 4) + 3 * H * 128)  # q, o; k, v of 2 kv heads; the gated MLP
    assert report.forward_by_category["matmul"] == 2 * (vision + merger + text)
    assert report.forward_by_category["conv"] == 2 * 64 * 32 * patch_features  # the patch embedding
    assert not report.unsupported_ops
    with pytest.raises(InputSpecError, match="flattened patches"):
        count(str(path), inputs=[f"pixel_values=6x{patch_features}"], seq_len=40, backward=False)
