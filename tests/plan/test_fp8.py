"""fp8 training (plan/fp8.py): the blocks' GEMMs at the fp8 peak, the rest at bf16, model states as bf16's."""

import pytest

from flopcalc.compute import Throughput
from flopcalc.plan import Bandwidth, Fleet, Layout, evaluate, model_from_params, resolve_fleet

BF16 = Throughput(989.5e12, 0.3, "H100-SXM", "bf16")
FP8 = Throughput(1979e12, 0.3, "H100-SXM", "fp8")
SEVEN_B = model_from_params(None, 4096, layers=32, hidden=4096, heads=32, vocab=32000)


def fleet(throughput, bf16=None):
    return Fleet(throughput, 80 * 2**30, "test", intra_node=Bandwidth(450, "test"), bf16_throughput=bf16)


def test_fp8_gemms_run_at_the_fp8_peak_and_the_rest_at_bf16():
    bf16 = evaluate(SEVEN_B, Layout(), fleet(BF16), precision="bf16")
    fp8 = evaluate(SEVEN_B, Layout(), fleet(FP8, BF16), precision="fp8")
    # FLOPs of the GEMMs in fp8: the blocks' forward less the attention products (x3 with the backward)
    gemm = 3 * (SEVEN_B.block_forward_flops - SEVEN_B.attention_forward_flops)
    rest = 3 * SEVEN_B.forward_flops - gemm
    assert fp8.step.compute_s == pytest.approx(gemm / FP8.sustained_flops + rest / BF16.sustained_flops, rel=1e-12)
    assert bf16.step.compute_s == pytest.approx((gemm + rest) / BF16.sustained_flops, rel=1e-12)
    assert bf16.step.compute_s / 2 < fp8.step.compute_s < bf16.step.compute_s
    # master weights and optimizer states at their real precisions: the same bytes as bf16 mixed precision
    assert fp8.memory == bf16.memory
    assert any("stay in bf16" in line and "attention products" in line for line in fp8.assumptions)


def test_the_fleet_resolves_the_bf16_peak_for_fp8():
    resolved = resolve_fleet(gpu="H100-SXM", precision="fp8")
    assert resolved.throughput.peak_flops == pytest.approx(1979e12)
    assert resolved.bf16_throughput.peak_flops == pytest.approx(989.5e12)
    assert resolve_fleet(gpu="H100-SXM").bf16_throughput is None
