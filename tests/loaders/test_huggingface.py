"""Hugging Face config.json models: tiny GPT-2, Llama and BERT configs against analytic counts."""

import sys

import pytest

pytest.importorskip("transformers")

from flopcalc.api import count  # noqa: E402
from flopcalc.errors import MissingDependencyError, ModelLoadError  # noqa: E402
from tests._hf_configs import TINY_BERT, decoder, gpt2, tiny_bert, write_config  # noqa: E402

E, LAYERS, HEADS, VOCAB = 64, 2, 4, 1000
HEAD_DIM = E // HEADS


def attention(batch, seq, heads=HEADS, head_dim=HEAD_DIM):
    """2*B*H*L*S*(E+Ev) per layer: Q @ K^T and P @ V."""
    return LAYERS * 2 * batch * heads * seq * seq * (head_dim + head_dim)


def test_gpt2_projections_tied_lm_head_and_attention(tmp_path):
    config = write_config(tmp_path, gpt2(E, LAYERS, HEADS, VOCAB, 128, architectures=["GPT2LMHeadModel"]))
    batch, seq = 2, 16
    report = count(config, seq_len=seq, batch_size=batch)
    per_layer = E * 3 * E + E * E + E * 4 * E + 4 * E * E  # c_attn, attn c_proj, c_fc, mlp c_proj
    tokens = batch * seq
    assert report.forward_by_category["matmul"] == 2 * tokens * (LAYERS * per_layer + E * VOCAB)  # + lm_head
    assert report.forward_by_category["attention"] == attention(batch, seq)
    # lm_head shares the token embedding: its weights are counted once
    positions = 128
    assert report.params == VOCAB * E + positions * E + LAYERS * (per_layer + 13 * E) + 2 * E
    assert report.device == "meta" and report.inputs[0].shape == (batch, seq)
    assert report.backward_counted and report.backward > report.forward


def test_llama_grouped_query_attention_untied_head_and_default_seq_len(tmp_path):
    kv_heads, ffn = 2, 160
    optional = dict(num_key_value_heads=kv_heads, max_position_embeddings=256, tie_word_embeddings=False)
    config = write_config(tmp_path, decoder(E, ffn, LAYERS, HEADS, VOCAB, **optional))
    report = count(config, backward=False)
    seq = 256  # min(max_position_embeddings, 2048)
    assert report.inputs[0].shape == (1, seq)
    assert any("--seq-len" in note for note in report.notes)
    per_layer = 2 * E * E + 2 * E * kv_heads * HEAD_DIM + 3 * E * ffn  # q, o, k, v, gate, up, down
    assert report.forward_by_category["matmul"] == 2 * seq * (LAYERS * per_layer + E * VOCAB)
    assert report.forward_by_category["attention"] == attention(1, seq)
    assert report.params == 2 * VOCAB * E + LAYERS * (per_layer + 2 * E) + E  # + RMSNorm weights


def test_llama_causal_half_and_explicit_token_input(tmp_path):
    config = write_config(tmp_path, decoder(E, 128, LAYERS, HEADS, VOCAB))
    full = count(config, inputs=["1x32:int64"], backward=False)
    half = count(config, seq_len=32, backward=False, causal_half=True)
    assert half.forward_by_category["attention"] == full.forward_by_category["attention"] * (32 * 33 // 2) // (32 * 32)
    assert not any("--seq-len" in note for note in full.notes)


def test_bert_encoder_from_its_architectures_entry(tmp_path):
    ffn = TINY_BERT["intermediate_size"]  # TINY_BERT is E wide, LAYERS deep, HEADS heads, over VOCAB words
    config = write_config(tmp_path, dict(tiny_bert("BertModel"), max_position_embeddings=64))
    batch, seq = 2, 32
    report = count(config, seq_len=seq, batch_size=batch, backward=False)
    assert report.root.type == "BertModel"
    per_layer = 4 * E * E + 2 * E * ffn
    pooler = 2 * batch * E * E  # dense layer on the first token of each sequence
    assert report.forward_by_category["matmul"] == 2 * batch * seq * LAYERS * per_layer + pooler
    assert report.forward_by_category["attention"] == attention(batch, seq)


def test_a_folder_with_a_config_json_is_a_source(tmp_path):
    write_config(tmp_path, gpt2(E, 1, HEADS, VOCAB, 8))
    assert count(str(tmp_path), backward=False).inputs[0].shape == (1, 8)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"model_type": "no-such-architecture"}', "unknown model_type 'no-such-architecture'"),
        ("{not json", "not valid JSON"),
        ('{"hidden_size": 8}', "has no model_type"),
        # transformers puts the reason on the line after "...validator 'validate_architecture':"
        (
            '{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 5}',
            r"malformed config: .*validate_architecture.*hidden size \(64\) is not a multiple",
        ),
    ],
)
def test_bad_configs_are_model_load_errors(tmp_path, text, message):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ModelLoadError, match=message):
        count(str(path))


def test_seq_len_is_only_for_configs(examples):
    with pytest.raises(ModelLoadError, match="--seq-len"):
        count(str(examples / "mlp.py"), seq_len=8)


def test_missing_transformers_names_the_extra(tmp_path, monkeypatch):
    config = write_config(tmp_path, {"model_type": "gpt2"})
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError) as error:
        count(config)
    assert "pip install 'flopcalc[hf]'" in str(error.value)


def test_declared_layers_reads_every_spelling_and_sub_config():
    from flopcalc.loaders.hf_config import declared_layers

    assert declared_layers({"num_hidden_layers": 12, "layer_norm_eps": 1e-5, "num_experts_per_layer": 99}) == 12
    assert declared_layers({"n_layer": 48}) == 48
    assert declared_layers({"encoder_layers": 6, "decoder_layers": 4, "num_hidden_layers": 6}) == 10
    assert declared_layers({"text_config": {"num_hidden_layers": 32}, "vision_config": {"num_layers": 24}}) == 56


def test_a_config_with_more_layers_than_max_layers_is_refused_before_it_is_built(tmp_path):
    """A million layers ran until killed: the declared layers are checked before anything is built."""
    config = write_config(tmp_path, decoder(8, 16, 1_000_000, 2, 10))
    with pytest.raises(ModelLoadError, match="declares 1,000,000 layers, more than max_layers 10,000") as caught:
        count(config)
    assert caught.value.field == "max_layers"
    small = write_config(tmp_path, decoder(8, 16, 3, 2, 10))
    with pytest.raises(ModelLoadError, match="declares 3 layers, more than max_layers 2"):
        count(small, max_layers=2)
    assert count(small, max_layers=3, seq_len=4).params > 0


def test_mistral_7b_at_16k_tokens_counts_attention_for_its_window_not_the_square(examples):
    config = str(examples / "hf" / "mistral-7b" / "config.json")
    layers, heads, head_dim, tokens, window = 32, 32, 4096 // 32, 16384, 4096
    windowed = count(config, seq_len=tokens, backward=False)
    # causal window: query i sees min(i + 1, W) keys; rows 0..W-1 see 1..W, the other T - W rows W each
    pairs = window * (window + 1) // 2 + (tokens - window) * window
    assert pairs == 58_722_304
    # Q K^T and P V: 2 FLOPs per multiply-add, head_dim each, per pair, per head, per layer
    assert windowed.forward_by_category["attention"] == layers * heads * pairs * 2 * (head_dim + head_dim)
    assert windowed.forward_by_category["attention"] == 30_787_399_319_552
    assert any("sliding window of 4,096 keys (32 calls)" in note for note in windowed.notes)
    square = count(config, seq_len=tokens, backward=False, attention_as_math=True)
    assert square.forward_by_category["attention"] == layers * heads * tokens * tokens * 2 * (2 * head_dim)
    assert square.forward_by_category["matmul"] == windowed.forward_by_category["matmul"]
    assert "attention_window" not in square.options
    assert not any("sliding window" in note for note in square.notes)


def test_a_window_the_config_switches_off_or_gives_some_layers_only_is_not_counted(tmp_path):
    base = decoder(E, 128, 2, HEADS, VOCAB, "qwen2", num_key_value_heads=HEADS, sliding_window=8)

    def config(name, **values):
        (tmp_path / name).mkdir()
        return write_config(tmp_path / name, dict(base, **values))

    off = count(config("off", use_sliding_window=False), seq_len=32, backward=False)
    assert "attention_window" not in off.options
    some = config("some", use_sliding_window=True, layer_types=["full_attention", "sliding_attention"])
    mixed = count(some, seq_len=32, backward=False)
    assert "attention_window" not in mixed.options
    assert any("applies to some layers only" in note for note in mixed.notes)
    given = count(some, seq_len=32, backward=False, attention_window=8)
    # every layer windowed: rows 0..7 see 1..8 keys, the other 24 rows 8 each
    assert given.forward_by_category["attention"] == mixed.forward_by_category["attention"] * (8 * 9 // 2 + 24 * 8) // (
        32 * 32
    )
    assert not any("applies to some layers only" in note for note in given.notes)
