"""Frozen weights' bytes at each base dtype, by hand (QLoRA's NF4 with double quantisation, LLM.int8())."""

import pytest

from flopcalc.adapters import BASE_DTYPES, WeightEntry, base_dtype, frozen_weight_bytes
from flopcalc.errors import UsageError

Q_PROJ = WeightEntry("q_proj.weight", 8192 * 8192, 8192)  # LLaMA-65B's attention projection
NORM = WeightEntry("norm.weight", 8192)


def test_nf4_is_4_bits_an_8_bit_absmax_per_64_and_an_fp32_constant_per_256_absmax():
    n = 8192 * 8192
    assert frozen_weight_bytes([Q_PROJ], base_dtype("nf4")) == n // 2 + n // 64 + 4 * (n // 64 // 256)
    # the QLoRA paper's 4 + 8/64 + 32/(64 x 256) bits per weight
    assert frozen_weight_bytes([Q_PROJ], base_dtype("nf4")) * 8 / n == pytest.approx(4 + 8 / 64 + 32 / (64 * 256))


def test_a_partial_block_still_takes_its_absmax():
    entry = WeightEntry("w", 65, 5)
    assert frozen_weight_bytes([entry], base_dtype("nf4")) == 33 + 2 + 4


def test_int8_is_one_byte_per_weight_and_an_fp32_absmax_per_row():
    assert frozen_weight_bytes([Q_PROJ], base_dtype("int8")) == 8192 * 8192 + 4 * 8192


def test_quantised_bases_keep_what_is_not_a_linear_weight_at_16_bits():
    assert frozen_weight_bytes([NORM], base_dtype("nf4")) == 2 * 8192
    assert frozen_weight_bytes([NORM, Q_PROJ], base_dtype("int8")) == 2 * 8192 + 8192 * 8192 + 4 * 8192


@pytest.mark.parametrize("name,width", [("bf16", 2), ("fp16", 2), ("fp32", 4)])
def test_full_width_bases_price_every_weight_alike(name, width):
    assert frozen_weight_bytes([NORM, Q_PROJ], base_dtype(name)) == width * (8192 + 8192 * 8192)


def test_an_unknown_dtype_is_refused_with_the_choices():
    with pytest.raises(UsageError, match="nf4"):
        base_dtype("nf5")
    assert set(BASE_DTYPES) == {"bf16", "fp16", "fp32", "int8", "nf4", "fp4"}
