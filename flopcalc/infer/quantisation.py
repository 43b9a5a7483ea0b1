"""What each tensor is stored in when served, and what its bytes come to (quantised weights with their scales):
the sizes that price every byte a layer moves and every model-size table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import UsageError
from ..units import normalize_precision

# Bytes per element of each precision a tensor can be stored or computed in (int4: two values per byte).
BYTES_PER_ELEMENT: Mapping[str, float] = {
    "fp64": 8,
    "fp64_tensor": 8,
    "fp32": 4,
    "tf32": 4,
    "bf16": 2,
    "fp16": 2,
    "fp8": 1,
    "int8": 1,
    "fp4": 0.5,
    "int4": 0.5,
}
# What --weight-dtype and --kv-dtype take; the sizes every model-size table shows.
STORAGE_DTYPES: tuple[str, ...] = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")
INT4_GROUP = 128
# The quantised weight layouts whose scales are counted (weight matrices only: vectors stay at --precision).
QUANTIZATION_LAYOUTS: Mapping[str, str] = {
    "fp8": "fp8 weights: 1 byte each + one fp32 scale per matrix",
    "int8": "int8 weights: 1 byte each + one fp16 scale per output channel (row)",
    "int4": f"int4 weights: 4 bits each + per group of {INT4_GROUP} weights of a row one fp16 scale and one 4-bit "
    "zero point (the GPTQ/AWQ layout)",
}


def storage_dtype(text: str, flag: str) -> str:
    """A --weight-dtype / --kv-dtype value: fp32, bf16, fp16, fp8, int8 or int4."""
    key = str(text).strip().lower()
    canonical = key if key == "int4" else _precision_or_none(key)
    if canonical not in STORAGE_DTYPES:
        raise UsageError(f"{flag} {text!r} is not a storage format", f"use one of {', '.join(STORAGE_DTYPES)}")
    return canonical


def _precision_or_none(text: str) -> str | None:
    try:
        return normalize_precision(text)
    except UsageError:
        return None


def stored(precision: str) -> str:
    """How a serving precision is stored: tf32 lives in fp32 words; the others as they are."""
    return "fp32" if precision == "tf32" else precision


def parameter_bytes(shape: Sequence[int], dtype: str, vector_dtype: str) -> float:
    """Bytes of one parameter stored as `dtype`. A quantised format (fp8, int8, int4) applies to matrices (2 or
    more dimensions; rows = the first dimension, a row = the rest) with its scales (QUANTIZATION_LAYOUTS);
    vectors (norm weights, biases) stay in `vector_dtype`."""
    numel = math.prod(shape)
    if dtype not in QUANTIZATION_LAYOUTS:
        return numel * BYTES_PER_ELEMENT[dtype]
    if len(shape) < 2:
        return numel * BYTES_PER_ELEMENT[vector_dtype]
    rows = shape[0]
    row = numel // rows if rows else 0
    if dtype == "fp8":
        return numel + 4
    if dtype == "int8":
        return numel + 2 * rows
    return numel / 2 + rows * math.ceil(row / INT4_GROUP) * 2.5


# A 2:4 weight as sparse tensor cores read it: the 2 kept values of every 4, and a 2-bit index for each kept
# value (the metadata cuSPARSELt and CUTLASS store): per element half the value's bytes plus 1/8 byte.
SPARSE_2_4_LAYOUT = "2:4 weights stored compressed: the 2 kept values of every 4 plus a 2-bit index per kept value"


def sparse_2_4_bytes(shape: Sequence[int], dtype: str) -> float:
    """Bytes of one 2:4 matrix stored compressed as `dtype` (not a quantised format), with its metadata."""
    numel = math.prod(shape)
    return numel / 2 * BYTES_PER_ELEMENT[dtype] + numel / 8


def weights_bytes(
    param_shapes: Mapping[str, Sequence[int]], dtype: str, vector_dtype: str, sparse_2_4: frozenset[str] = frozenset()
) -> int:
    """All parameters (tied ones once) stored as `dtype`, rounded up to a whole byte; those named in
    `sparse_2_4` compressed as 2:4 with their metadata (dense formats only: quantised ones keep their layout)."""
    return math.ceil(
        sum(stored_bytes(name, shape, dtype, vector_dtype, sparse_2_4) for name, shape in param_shapes.items())
    )


def stored_bytes(
    name: str, shape: Sequence[int], dtype: str, vector_dtype: str, sparse_2_4: frozenset[str] = frozenset()
) -> float:
    """Bytes of parameter `name`: 2:4-compressed when named in `sparse_2_4` and `dtype` is a dense format."""
    if name in sparse_2_4 and dtype not in QUANTIZATION_LAYOUTS:
        return sparse_2_4_bytes(shape, dtype)
    return parameter_bytes(shape, dtype, vector_dtype)


@dataclass(frozen=True)
class Precisions:
    """What each kind of tensor is stored in, and the precision whose peak prices the FLOPs."""

    activations: str  # --precision
    compute: str  # --compute-precision (default: --precision)
    weights: str  # --weight-dtype (default: --precision)
    kv_cache: str  # --kv-dtype (default: --precision)
