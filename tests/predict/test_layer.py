"""One layer's GEMMs at Megatron-LM's shapes: their FLOPs by hand, and against what the counter measures."""

import pytest

from flopcalc import api
from flopcalc.predict import TransformerShape, head_work, layer_work


def _gemm_flops(ops):
    return sum(op.flops for op in ops if op.kind == "gemm")


def test_the_forward_gemms_are_24sbh2_plus_4bs2h_over_t():
    shape = TransformerShape(layers=48, hidden=6144, heads=64, seq_len=2048, vocab=51200)
    s, b, h, t = 2048, 4, 6144, 8
    work = layer_work(shape, b, t, sequence_parallel=False)
    assert _gemm_flops(work.forward) == 24 * s * b * h * h / t + 4 * b * s * s * h / t
    assert _gemm_flops(work.backward) == 2 * _gemm_flops(work.forward)  # input and weight gradients
    assert _gemm_flops(work.attention_core) == 4 * b * s * s * h / t  # what selective recomputation re-runs
    assert [c.kind for c in work.forward_comm] == ["all_reduce", "all_reduce"]
    assert all(c.bytes == s * b * h * 2 for c in work.forward_comm)
    sp = layer_work(shape, b, t, sequence_parallel=True)
    assert sorted(c.kind for c in sp.forward_comm) == ["all_gather", "all_gather", "reduce_scatter", "reduce_scatter"]


def test_the_layer_gemms_match_the_counted_gpt_block():
    report = api.count("examples/gpt.py", "2x32:int64")  # tiny preset: dim 64, 4 heads, seq 32, vocab 256
    block = next(layer for layer in report.layers if layer.name == "blocks.0")
    root = next(layer for layer in report.layers if layer.name == "")
    shape = TransformerShape(layers=2, hidden=64, heads=4, seq_len=32, vocab=256)
    assert _gemm_flops(layer_work(shape, 2, 1, False).forward) == block.forward_by_category["matmul"]
    blocks = sum(
        layer.forward_by_category["matmul"]
        for layer in report.layers
        if layer.name.startswith("blocks.") and layer.name.count(".") == 1
    )
    assert _gemm_flops(head_work(shape, 2, 1, False).forward) == root.forward_by_category["matmul"] - blocks


def test_fused_attention_is_one_kernel_at_the_products_flops():
    shape = TransformerShape(layers=2, hidden=64, heads=4, seq_len=32, vocab=256)
    plain, fused = layer_work(shape, 2, 1, False), layer_work(shape, 2, 1, False, fused_attention=True)
    assert len(fused.attention_core) == 1 and fused.attention_core[0].kind == "gemm"
    assert fused.attention_core[0].flops == pytest.approx(_gemm_flops(plain.attention_core))
    assert len(fused.forward) == len(plain.forward) - 3
