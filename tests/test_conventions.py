"""The FLOP conventions (flopcalc/conventions.py): each quoted formula, written out, next to the count."""

import pytest
import torch
import torch.nn as nn

import flopcalc
from flopcalc.conventions import conventions_for, detect_transformer, palm_flops_per_token
from tests._models import tiny_gpt2


def test_palm_formula_for_gpt2_small_is_written_out():
    # GPT-2 small: L = 12, H = 12, Q = 64, T = 1024; N = 124,439,808 parameters less the 1024 x 768 position
    # table = 123,653,376 (what nanoGPT's estimate_mfu uses). 6N = 741,920,256; 12LHQT = 12*12*12*64*1024 =
    # 113,246,208; per token 855,166,464 FLOP, and the causal half of the attention term 56,623,104.
    assert palm_flops_per_token(123_653_376, 12, 12, 64, 1024) == 855_166_464
    assert palm_flops_per_token(123_653_376, 12, 12, 64, 1024, causal=True) == 741_920_256 + 56_623_104


def test_gpt2_shape_is_read_from_its_config_and_its_tables():
    model = tiny_gpt2()
    shape = detect_transformer(model)
    assert (shape.layers, shape.heads, shape.head_dim) == (2, 4, 16)
    assert (shape.embedding_params, shape.position_embedding_params, shape.tied_output) == (1000 * 64, 64 * 64, True)
    assert "gpt2" in shape.source
    assert detect_transformer(nn.Linear(2, 2)) is None


def test_each_convention_is_its_formula_on_the_counted_model():
    model = tiny_gpt2()
    report = flopcalc.count(model, torch.zeros(2, 64, dtype=torch.long, device="meta"))
    table = conventions_for(report)
    n = report.params
    assert n == sum(p.numel() for p in model.parameters())
    attention = 12 * 2 * 4 * 16 * 64
    by_key = {c.key: c for c in table.conventions}
    assert by_key["kaplan_6n"].flops_per_token == 6 * (n - 64_000 - 4_096)
    assert by_key["palm"].flops_per_token == 6 * (n - 4_096) + attention
    assert by_key["palm_causal"].flops_per_token == 6 * (n - 4_096) + attention // 2
    assert by_key["torchtitan"].flops_per_token == 6 * (n - 64_000 - 4_096) + attention
    assert table.counted_per_token == report.total / 128
    # the counted attention (full square, no --causal-half) is exactly PaLM's attention term
    assert table.counted_attention_per_token == attention
    assert table.counted_products_per_token + table.counted_attention_per_token + table.counted_other_per_token == (
        pytest.approx(table.counted_per_token)
    )
    assert any("shares the token table" in d for d in by_key["kaplan_6n"].differences)
    assert any("half the T x T square" in d for d in by_key["palm_causal"].differences)


def test_no_table_for_a_model_without_a_transformer_shape_or_token_input():
    assert conventions_for(flopcalc.count(nn.Linear(4, 4), torch.randn(2, 4))) is None


def test_a_sliding_window_is_named_where_the_conventions_compare_attention():
    model = tiny_gpt2()
    tokens = torch.zeros(2, 64, dtype=torch.long, device="meta")
    windowed = conventions_for(flopcalc.count(model, tokens, attention_window=16))
    palm = next(c for c in windowed.conventions if c.key == "palm")
    assert any("counted over a sliding window of 16 keys" in d for d in palm.differences)
    # per head and sequence: 16*17/2 + 48*16 pairs instead of 64*64; 12 FLOPs per pair-dimension, as PaLM's term
    assert windowed.counted_attention_per_token == 12 * 2 * 4 * 16 * (16 * 17 // 2 + 48 * 16) / 64
    wide = conventions_for(flopcalc.count(model, tokens, attention_window=64))  # no shorter than T: no window
    wide_palm = next(c for c in wide.conventions if c.key == "palm")
    assert any("counted over the full square" in d for d in wide_palm.differences)
