"""Bytes of frozen weights at the dtype they are stored in: 16/32-bit, LLM.int8() (Dettmers et al. 2022) or the
4-bit NF4/FP4 of QLoRA (Dettmers et al. 2023) with its block-64 absmax and double quantisation."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import one_of

NF4_BLOCK = 64  # weights per absmax (QLoRA, Sec. 3)
NF4_SECOND_BLOCK = 256  # first-level absmax values per fp32 constant of the double quantisation (QLoRA, Sec. 3)
UNQUANTISED_BYTES = 2  # what a quantised base keeps at 16 bits: embeddings, norms, biases, the output head


@dataclass(frozen=True)
class BaseDtype:
    """How a frozen base is stored: `bytes` per weight at full width, or a quantised format for Linear weights."""

    name: str
    bytes: int | None  # None: quantised (int8, nf4, fp4)
    description: str


BASE_DTYPES = {
    "bf16": BaseDtype("bf16", 2, "bf16: 2 bytes per weight"),
    "fp16": BaseDtype("fp16", 2, "fp16: 2 bytes per weight"),
    "fp32": BaseDtype("fp32", 4, "fp32: 4 bytes per weight"),
    "int8": BaseDtype(
        "int8",
        None,
        "int8 (LLM.int8(), Dettmers et al. 2022): each Linear weight 1 byte plus one fp32 "
        "absmax per output row; embeddings, norms, biases and the output head at 16 bits",
    ),
    "nf4": BaseDtype(
        "nf4",
        None,
        "nf4 (QLoRA, Dettmers et al. 2023): each Linear weight 4 bits, an 8-bit absmax per "
        "block of 64 and one fp32 constant per 256 absmax (double quantisation: 4 + 8/64 + "
        "32/(64 x 256) = 4.127 bits per weight); embeddings, norms, biases and the output "
        "head at 16 bits",
    ),
    "fp4": BaseDtype(
        "fp4",
        None,
        "fp4 (QLoRA's FP4 data type, stored as nf4): each Linear weight 4 bits, an 8-bit "
        "absmax per block of 64 and one fp32 constant per 256 absmax; embeddings, norms, "
        "biases and the output head at 16 bits",
    ),
}


def base_dtype(name: str) -> BaseDtype:
    return one_of(
        BASE_DTYPES,
        name,
        f"--base-dtype must be one of {', '.join(BASE_DTYPES)}, got {name!r}",
        "nf4 for QLoRA, int8 for LLM.int8(), bf16 for plain LoRA",
    )


@dataclass(frozen=True)
class WeightEntry:
    """One frozen parameter as storage sees it: its element count, and for the weight of a Linear layer that a
    quantiser converts (not the output head), its output rows."""

    name: str
    numel: int
    linear_rows: int | None = None  # out_features of a quantisable Linear weight; None for anything else


def quantised_bytes(numel: int, rows: int, dtype: BaseDtype) -> int:
    """Bytes of one Linear weight of `numel` elements and `rows` output rows at a quantised dtype."""
    if dtype.name == "int8":
        return numel + 4 * rows
    blocks = math.ceil(numel / NF4_BLOCK)
    return math.ceil(numel / 2) + blocks + 4 * math.ceil(blocks / NF4_SECOND_BLOCK)


def frozen_weight_bytes(entries: tuple[WeightEntry, ...] | list[WeightEntry], dtype: BaseDtype) -> int:
    """Bytes the frozen parameters take when stored at `dtype`, each tensor on its own (the absmax blocks of one
    tensor do not spill into the next)."""
    total = 0
    for entry in entries:
        if dtype.bytes is not None:
            total += entry.numel * dtype.bytes
        elif entry.linear_rows is not None:
            total += quantised_bytes(entry.numel, entry.linear_rows, dtype)
        else:
            total += entry.numel * UNQUANTISED_BYTES
    return total
