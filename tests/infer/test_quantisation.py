"""flopcalc.infer.quantisation: bytes of each storage format, with the quantised layouts' scales by hand."""

import pytest

from flopcalc.errors import UsageError
from flopcalc.infer import parameter_bytes, storage_dtype, weights_bytes
from flopcalc.infer.quantisation import stored


def test_each_layout_by_hand():
    shape = (1000, 256)  # rows x row
    assert parameter_bytes(shape, "bf16", "bf16") == 1000 * 256 * 2
    assert parameter_bytes(shape, "fp8", "bf16") == 1000 * 256 + 4  # one fp32 scale per matrix
    assert parameter_bytes(shape, "int8", "bf16") == 1000 * 256 + 1000 * 2  # an fp16 scale per row
    assert parameter_bytes(shape, "int4", "bf16") == 1000 * (128 + 2 * 2.5)  # 2 groups of 128 a row
    assert parameter_bytes((256,), "int8", "fp16") == 512  # vectors stay at the serving precision
    # tied weights are given once; a half byte rounds up
    assert weights_bytes({"a": (1, 3), "b": (2,)}, "fp32", "fp32") == 20
    assert weights_bytes({"a": (1, 1)}, "int4", "fp16") == 3  # 0.5 + 2.5 bytes


def test_storage_names_and_tf32():
    assert storage_dtype(" BF16 ", "--kv-dtype") == "bf16" and storage_dtype("int4", "--weight-dtype") == "int4"
    with pytest.raises(UsageError, match="--kv-dtype 'tf32' is not a storage format"):
        storage_dtype("tf32", "--kv-dtype")
    assert stored("tf32") == "fp32" and stored("fp16") == "fp16"
