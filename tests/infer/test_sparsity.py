"""`infer` with 2:4 weights: their bytes stored compressed with the metadata, and the sparse peak only where it
holds. examples/pruned.py:build_2_4 is Linear(64, 32) and Linear(32, 16), both 2:4."""

from pathlib import Path

import pytest

from flopcalc.errors import UsageError
from flopcalc.infer import infer
from flopcalc.infer.quantisation import sparse_2_4_bytes, weights_bytes
from flopcalc.spec import ModelSpec

PRUNED = Path(__file__).resolve().parents[2] / "examples" / "pruned.py"


def test_a_2_4_matrix_is_half_its_values_plus_a_2_bit_index_per_kept_value():
    # 32x64 bf16: 1,024 kept values x 2 bytes + 1,024 x 2 bits = 2,048 + 256 bytes
    assert sparse_2_4_bytes((32, 64), "bf16") == 2_048 + 256
    shapes = {"w": (32, 64), "b": (32,)}
    assert weights_bytes(shapes, "bf16", "bf16", frozenset({"w"})) == 2_304 + 64
    assert weights_bytes(shapes, "int8", "bf16", frozenset({"w"})) == weights_bytes(shapes, "int8", "bf16")


def test_infer_with_sparsity_stores_the_2_4_weights_compressed():
    spec = ModelSpec(f"{PRUNED}:build_2_4", sparsity=True)
    result = infer(spec, gpu="A100-SXM4-80GB").to_dict()
    # 0.weight 2,304 + 0.bias 64 + 2.weight (512 / 2 x 2 + 512 / 8 = 576) + 2.bias 32
    assert result["weights_bytes"] == 2_976
    assert result["layers"][0]["bytes_by_kind"]["weights"] == 2_304 + 64
    assert result["gpu"]["peak_origin"] == "datasheet dense bf16"
    dense = infer(ModelSpec(f"{PRUNED}:build_2_4"), gpu="A100-SXM4-80GB").to_dict()
    assert dense["weights_bytes"] == 2 * 2_608


def test_infer_sparse_peak_prices_flops_at_the_2_4_peak_only_for_2_4_weights():
    result = infer(ModelSpec(f"{PRUNED}:build_2_4"), gpu="A100-SXM4-80GB", sparse_peak=True).to_dict()
    assert (result["gpu"]["peak_tflops"], result["gpu"]["peak_origin"]) == (
        624.0,
        "datasheet 2:4-sparse bf16 (dense-equivalent)",
    )
    with pytest.raises(UsageError, match="2.weight is not 2:4"):
        infer(ModelSpec(f"{PRUNED}:build"), gpu="A100-SXM4-80GB", sparse_peak=True)
    with pytest.raises(UsageError, match="no 2:4-sparse tensor-core peak"):
        infer(ModelSpec(f"{PRUNED}:build_2_4"), gpu="T4", sparse_peak=True)
