"""A ModelSpec's `--input` specs (`1x3x224x224`, `8,1024:int64`), or a source's own examples -> tensors on a device."""

from __future__ import annotations

from typing import Any

from ..errors import InputSpecError
from ..spec import InputSpec, ModelSpec


def make_inputs(spec: ModelSpec, example_inputs: Any, *, device: str) -> Any:
    """Tensors for the spec's `--input`s, else the source's own example inputs; `batch_size` overrides dim 0.

    Integer inputs are zeros (valid token ids for any embedding); float inputs are random, except on meta.
    """
    import torch

    if spec.inputs:
        parsed = spec.input_specs
        if spec.batch_size is not None:
            parsed = tuple(InputSpec((spec.batch_size,) + p.shape[1:], p.dtype) for p in parsed)
        return tuple(_tensor(p, device) for p in parsed)
    if example_inputs is None:
        raise InputSpecError(
            f"no inputs for {spec.source}",
            "give --input SHAPE (e.g. --input 1x3x224x224), or define example_inputs() in the model file",
        )
    moved = _to_device(example_inputs, torch.device(device))
    return _rebatch(moved, spec.batch_size) if spec.batch_size is not None else moved


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
