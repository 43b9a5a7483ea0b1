"""Running an aten op on the meta device where its meta kernel is stricter than the shapes need.

The grouped GEMMs of mixture-of-experts layers first check what the device kernel accepts (bf16 or fp8 inputs
with 16-byte strides) and only then give the output shape. Counting FLOPs or measuring activations needs the
shape, not the kernel: on the meta device a failed check makes the output from the shapes instead. The counter
and the activation measure both run every op through `run_op`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from . import formulas

_GROUPED_MM = frozenset(
    packet
    for packet in (
        getattr(torch.ops.aten, name, None) for name in ("_grouped_mm", "_scaled_grouped_mm", "_scaled_grouped_mm_v2")
    )
    if packet is not None
)


def run_op(func, args: tuple, kwargs: Mapping[str, Any]) -> Any:
    """`func(*args, **kwargs)`; on meta, a grouped GEMM whose kernel check fails gets an output of the right shape."""
    try:
        return func(*args, **kwargs)
    except Exception:
        if getattr(func, "overloadpacket", None) not in _GROUPED_MM or not _on_meta(args):
            raise
        return _grouped_mm_on_meta(func, args, kwargs)


def _on_meta(args: tuple) -> bool:
    return any(isinstance(a, torch.Tensor) and a.device.type == "meta" for a in args)


def _grouped_mm_on_meta(func, args: tuple, kwargs: Mapping[str, Any]) -> torch.Tensor:
    bound = {argument.name: value for argument, value in zip(func._schema.arguments, args)}
    bound.update(kwargs)
    a, b, offsets = bound["self"], bound["mat2"], bound.get("offs")
    shape = formulas.grouped_mm_output_shape(a.shape, b.shape, None if offsets is None else offsets.shape)
    scaled = func.overloadpacket is not torch.ops.aten._grouped_mm
    dtype = bound.get("out_dtype") or (torch.bfloat16 if scaled else a.dtype)
    return torch.empty(shape, dtype=dtype, device="meta")
