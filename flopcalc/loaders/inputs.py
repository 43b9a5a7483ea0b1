"""`--input` specs (`1x3x224x224`, `8,1024:int64`) -> example tensors on a device."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import InputSpecError

DTYPES = {
    "float32": "float32", "float": "float32", "fp32": "float32", "f32": "float32",
    "float16": "float16", "half": "float16", "fp16": "float16", "f16": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float64": "float64", "double": "float64", "fp64": "float64",
    "int64": "int64", "long": "int64", "int32": "int32", "int": "int32", "int16": "int16", "int8": "int8",
    "uint8": "uint8", "bool": "bool",
}

_DIMS = re.compile(r"^\d+([x,]\d+)*$")


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __str__(self) -> str:
        return "x".join(map(str, self.shape)) + ("" if self.dtype == "float32" else f":{self.dtype}")


def parse_input_spec(text: str) -> InputSpec:
    """Dims separated by `x` or `,`, an optional `:dtype`: `1x3x224x224`, `8,1024`, `1x2048:int64`."""
    raw = text.strip().lower().replace(" ", "")
    dims, _, dtype = raw.partition(":")
    if not _DIMS.match(dims):
        raise InputSpecError(
            f"--input {text!r} is not a shape",
            "write dims separated by x or commas, optionally with a dtype: 1x3x224x224, 8,1024:int64",
        )
    shape = tuple(int(d) for d in re.split(r"[x,]", dims))
    if any(d <= 0 for d in shape):
        raise InputSpecError(f"--input {text!r} has a zero dimension", "every dimension must be at least 1")
    if dtype and dtype not in DTYPES:
        raise InputSpecError(f"--input {text!r}: unknown dtype {dtype!r}", f"use one of {', '.join(sorted(set(DTYPES.values())))}")
    return InputSpec(shape, DTYPES[dtype] if dtype else "float32")


def make_inputs(
    specs: Sequence[str] | None,
    example_inputs: Any,
    *,
    device: str,
    batch_size: int | None = None,
    source: str = "the model",
) -> Any:
    """Tensors for `--input` specs, else the source's own example inputs; `batch_size` overrides dim 0.

    Integer inputs are zeros (valid token ids for any embedding); float inputs are random, except on meta.
    """
    import torch

    if batch_size is not None and batch_size < 1:
        raise InputSpecError(f"--batch-size {batch_size} must be at least 1")
    if specs:
        parsed = [parse_input_spec(s) for s in specs]
        if batch_size is not None:
            parsed = [InputSpec((batch_size,) + p.shape[1:], p.dtype) for p in parsed]
        return tuple(_tensor(p, device) for p in parsed)
    if example_inputs is None:
        raise InputSpecError(
            f"no inputs for {source}",
            "give --input SHAPE (e.g. --input 1x3x224x224), or define example_inputs() in the model file",
        )
    moved = _to_device(example_inputs, torch.device(device))
    return _rebatch(moved, batch_size) if batch_size is not None else moved


def _tensor(spec: InputSpec, device: str):
    import torch

    dtype = getattr(torch, spec.dtype)
    if dtype.is_floating_point and device != "meta":
        return torch.randn(spec.shape, dtype=dtype, device=device)
    return torch.zeros(spec.shape, dtype=dtype, device=device)


def _to_device(obj: Any, device):
    import torch

    if isinstance(obj, torch.Tensor):
        return obj if obj.device == device else obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def _rebatch(obj: Any, batch_size: int):
    import torch

    if isinstance(obj, torch.Tensor):
        if obj.dim() == 0:
            return obj
        return obj[:1].expand(batch_size, *obj.shape[1:]).clone()
    if isinstance(obj, dict):
        return {k: _rebatch(v, batch_size) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rebatch(v, batch_size) for v in obj)
    return obj
