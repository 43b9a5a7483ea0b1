"""One tiny Hugging Face config per model family, each counted on meta from its config alone: default inputs
that fit the model, nothing unsupported, and exact dense FLOPs for the mixture of experts and the
encoder-decoder (forward and backward)."""

import pytest

pytest.importorskip("transformers")

from flopcalc.api import count  # noqa: E402
from flopcalc.errors import InputSpecError  # noqa: E402
from tests._hf_configs import decoder, write_config  # noqa: E402

H, FFN, LAYERS, HEADS, VOCAB = 64, 128, 2, 4, 1000
HEAD_DIM = H // HEADS
# token ids a tiny vocabulary holds (the defaults of several configs are past 1000)
SMALL_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}

DECODER = decoder(H, FFN, LAYERS, HEADS, VOCAB, num_key_value_heads=2, max_position_embeddings=64)
# a ViT over 32 x 32 images in 8 x 8 patches: the vision family, and CLIP's image tower
VISION = {
    "hidden_size": H,
    "intermediate_size": FFN,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "image_size": 32,
    "patch_size": 8,
}
FAMILIES = {
    "decoder-only": DECODER,
    # the same decoder with its MLP as 4 experts, each token routed to 2
    "moe": {**DECODER, "model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2},
    "encoder-decoder": {
        "model_type": "t5",
        "d_model": H,
        "d_kv": HEAD_DIM,
        "d_ff": FFN,
        "num_layers": LAYERS,
        "num_decoder_layers": LAYERS,
        "num_heads": HEADS,
        "vocab_size": VOCAB,
        "architectures": ["T5ForConditionalGeneration"],
        **SMALL_IDS,
        "decoder_start_token_id": 0,
    },
    "vision": {"model_type": "vit", **VISION, "num_channels": 3},
    "speech": {
        "model_type": "whisper",
        "d_model": H,
        "encoder_layers": LAYERS,
        "decoder_layers": LAYERS,
        "encoder_attention_heads": HEADS,
        "decoder_attention_heads": HEADS,
        "encoder_ffn_dim": FFN,
        "decoder_ffn_dim": FFN,
        "vocab_size": VOCAB,
        "num_mel_bins": 16,
        "max_source_positions": 30,
        "max_target_positions": 24,
        **SMALL_IDS,
        "decoder_start_token_id": 1,
        "begin_suppress_tokens": None,
        "suppress_tokens": None,
    },
    # wav2vec 2.0 without SpecAugment (its random time masking reads values: that counts on the CPU)
    "raw-audio": {
        "model_type": "wav2vec2",
        "hidden_size": H,
        "intermediate_size": FFN,
        "num_hidden_layers": 1,
        "num_attention_heads": HEADS,
        "conv_dim": [16] * 7,
        "num_conv_pos_embeddings": 16,
        "vocab_size": 32,
        "apply_spec_augment": False,
    },
    "state-space": {
        "model_type": "mamba",
        "hidden_size": H,
        "state_size": 8,
        "num_hidden_layers": LAYERS,
        "vocab_size": VOCAB,
        "expand": 2,
        "conv_kernel": 4,
        **SMALL_IDS,
    },
    "multimodal": {
        "model_type": "clip",
        "projection_dim": 32,
        "text_config": {
            "hidden_size": H,
            "intermediate_size": FFN,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "vocab_size": VOCAB,
            "max_position_embeddings": 20,
            **SMALL_IDS,
        },
        "vision_config": VISION,
    },
}

# the inputs each family is called with by default (seq_len 12 where the model takes tokens)
DEFAULT_INPUTS = {
    "decoder-only": [("input_ids", (1, 12), "int64")],
    "moe": [("input_ids", (1, 12), "int64")],
    "encoder-decoder": [("input_ids", (1, 12), "int64"), ("decoder_input_ids", (1, 12), "int64")],
    "vision": [("pixel_values", (1, 3, 32, 32), "float32")],
    "speech": [("input_features", (1, 16, 60), "float32"), ("decoder_input_ids", (1, 24), "int64")],
    "raw-audio": [("input_values", (1, 16000), "float32")],
    "state-space": [("input_ids", (1, 12), "int64")],
    "multimodal": [("input_ids", (1, 12), "int64"), ("pixel_values", (1, 3, 32, 32), "float32")],
}


def takes_tokens(family):
    return DEFAULT_INPUTS[family][0][0] == "input_ids"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_counts_on_meta_from_its_config_with_fitting_inputs(tmp_path, family):
    config = write_config(tmp_path, FAMILIES[family])
    report = count(config, seq_len=12 if takes_tokens(family) else None, strict=True)
    assert report.device == "meta"
    assert not report.unsupported_ops
    assert [(i.name, i.shape, i.dtype) for i in report.inputs] == DEFAULT_INPUTS[family]
    assert report.backward_counted and report.forward > 0 and report.backward > report.forward


def moe_layer_matmul(tokens, experts_per_token):
    """Multiply-adds of one Mixtral layer: q and o (H x H), k and v (H x 2 kv heads x head dim), the router
    (H x experts), and per routed token an expert's gate+up (H x 2F) and down (F x H)."""
    kv = 2 * HEAD_DIM
    return tokens * (2 * H * H + 2 * H * kv + H * 4 + experts_per_token * 3 * H * FFN)


def test_mixture_of_experts_counts_the_routed_experts_exactly(tmp_path):
    config = write_config(tmp_path, FAMILIES["moe"])
    batch, seq, experts, top_k = 2, 12, 4, 2
    report = count(config, seq_len=seq, batch_size=batch)
    tokens = batch * seq
    forward_matmul = 2 * (LAYERS * moe_layer_matmul(tokens, top_k) + tokens * H * VOCAB)  # + lm_head
    assert report.forward_by_category["matmul"] == forward_matmul
    # every weight gets a gradient and every input of a matmul needs one (the embeddings train): 2x forward
    assert report.backward_by_category["matmul"] == 2 * forward_matmul
    attention = LAYERS * 2 * batch * HEADS * seq * seq * (HEAD_DIM + HEAD_DIM)
    assert report.forward_by_category["attention"] == attention
    assert report.backward_by_category["attention"] == 2 * attention
    assert report.layer("model.layers.0.mlp.experts").forward_by_category["matmul"] == 2 * tokens * top_k * 3 * H * FFN
    # parameters: all experts; active: top-2 of 4 experts' weights, everything else in full
    expert_params = experts * 3 * H * FFN
    dense = 2 * VOCAB * H + LAYERS * (2 * H * H + 2 * H * 2 * HEAD_DIM + H * experts + 2 * H) + H
    assert report.params == dense + LAYERS * expert_params
    assert report.active == dense + LAYERS * expert_params * top_k // experts
    assert report.to_dict()["totals"]["active_params"] == report.active
    assert any("top-2 of 4" in note for note in report.notes)


@pytest.mark.parametrize("implementation", ["eager", "batched_mm"])
def test_grouped_experts_on_meta_agree_with_the_other_expert_implementations_on_cpu(tmp_path, implementation):
    """Cross-check: transformers' eager experts (a loop over the experts each token was routed to, on real
    values) and batched experts (one bmm per routed token) count the matmuls the grouped GEMMs count on meta."""
    import torch
    import transformers

    from flopcalc.counting.counter import count as count_module
    from flopcalc.loaders.hf_config import read_config

    path = write_config(tmp_path, FAMILIES["moe"])
    model = transformers.MixtralForCausalLM._from_config(
        read_config(tmp_path / "config.json"), experts_implementation=implementation
    )
    other = count_module(model, {"input_ids": torch.zeros(2, 12, dtype=torch.long)})
    grouped = count(path, seq_len=12, batch_size=2)
    assert other.device == "cpu" and grouped.device == "meta"
    for direction in ("forward_by_category", "backward_by_category"):
        assert getattr(other, direction)["matmul"] == getattr(grouped, direction)["matmul"]


def test_encoder_decoder_counts_encoder_decoder_and_cross_attention_exactly(tmp_path):
    config = write_config(tmp_path, FAMILIES["encoder-decoder"])
    batch, enc, dec = 2, 12, 5
    report = count(config, seq_len=enc, decoder_seq_len=dec, batch_size=batch)
    assert [(i.name, i.shape) for i in report.inputs] == [
        ("input_ids", (batch, enc)),
        ("decoder_input_ids", (batch, dec)),
    ]
    inner = HEADS * HEAD_DIM
    encoder = enc * (4 * H * inner + 2 * H * FFN)  # q, k, v, o and the relu feed-forward, per layer
    decoder = (
        dec * (4 * H * inner + 2 * H * inner + 2 * H * FFN) + enc * 2 * H * inner
    )  # self, cross q/o, ffn; cross k/v
    forward_matmul = 2 * batch * (LAYERS * (encoder + decoder) + dec * H * VOCAB)  # + lm_head
    assert report.forward_by_category["matmul"] == forward_matmul
    assert report.backward_by_category["matmul"] == 2 * forward_matmul
    pairs = enc * enc + dec * dec + dec * enc  # encoder self, decoder self, cross attention
    attention = LAYERS * 2 * batch * HEADS * pairs * (HEAD_DIM + HEAD_DIM)
    assert report.forward_by_category["attention"] == attention
    assert report.backward_by_category["attention"] == 2 * attention
    assert report.active == report.params  # dense: every parameter is active


def test_vision_default_is_pixel_values_of_the_config_image(tmp_path):
    config = write_config(tmp_path, FAMILIES["vision"])
    report = count(config, backward=False)
    patches, tokens = (32 // 8) ** 2, (32 // 8) ** 2 + 1  # + the class token
    assert report.forward_by_category["conv"] == 2 * patches * H * 3 * 8 * 8
    assert report.forward_by_category["matmul"] == 2 * (LAYERS * tokens * (4 * H * H + 2 * H * FFN) + H * H)  # + pooler
    assert any("pixel_values=: 1x3x32x32" in note for note in report.notes)


def test_speech_features_are_the_frames_the_encoder_expects(tmp_path):
    """Whisper's two convolutions (strides 1 and 2) take 2 x max_source_positions frames down to its positions."""
    config = write_config(tmp_path, FAMILIES["speech"])
    report = count(config, decoder_seq_len=7, backward=False)
    assert [(i.name, i.shape) for i in report.inputs] == [
        ("input_features", (1, 16, 60)),
        ("decoder_input_ids", (1, 7)),
    ]
    frames, positions = 60, 30
    assert report.forward_by_category["conv"] == 2 * H * 3 * (16 * frames + H * positions)
    with pytest.raises(InputSpecError, match="--seq-len sizes token ids or raw audio; WhisperForConditionalGeneration"):
        count(config, seq_len=8)


def test_a_parameter_built_off_the_device_is_moved_onto_it(tmp_path):
    """wav2vec 2.0 makes `masked_spec_embed` with the legacy torch.Tensor(n), which ignores the device it is built
    under: on meta it was a CPU parameter and the inputs followed it there (a copy out of meta failed)."""
    from flopcalc.loaders import load_model

    model = load_model(write_config(tmp_path, FAMILIES["raw-audio"]), device="meta").module
    assert {t.device.type for t in list(model.parameters()) + list(model.buffers())} == {"meta"}


def test_state_space_models_build_with_their_own_attention_and_scan_linearly(tmp_path):
    """Mamba refuses sdpa: it is built with its default, noted. Its reference scan runs step by step; its
    backward grows with the sequence as the forward does (no quadratic sum of per-step gradients)."""
    config = write_config(tmp_path, FAMILIES["state-space"])
    short, long = count(config, seq_len=16), count(config, seq_len=32)
    assert any("does not support sdpa" in note and "no attention layer" in note for note in short.notes)
    assert long.forward <= 2 * short.forward and long.backward < 2.05 * short.backward
    assert long.backward < 2.2 * long.forward


def test_multimodal_model_gets_every_modality_and_named_inputs_override_one(tmp_path):
    config = write_config(tmp_path, FAMILIES["multimodal"])
    default = count(config, seq_len=12, backward=False)
    bigger = count(config, inputs=["pixel_values=3x3x32x32"], seq_len=12, backward=False)
    assert [(i.name, i.shape) for i in bigger.inputs] == [("input_ids", (1, 12)), ("pixel_values", (3, 3, 32, 32))]
    assert bigger.forward_by_category["conv"] == 3 * default.forward_by_category["conv"]
    assert not any("pixel_values=:" in note for note in bigger.notes)  # the default it replaced is not noted
    assert any("input_ids=" in note for note in count(config, backward=False).notes)


def test_decoder_seq_len_needs_an_encoder_decoder(tmp_path):
    config = write_config(tmp_path, FAMILIES["decoder-only"])
    with pytest.raises(InputSpecError, match="--decoder-seq-len applies to encoder-decoder models"):
        count(config, decoder_seq_len=8)
