"""Zero weights, read from their values, as data the count carries: the formulas price every op as dense, and
this says how many of a matmul's or convolution's products multiply by a zero weight (effective FLOPs leave
them out), and which weights are stored sparse (a sparse kernel runs only the stored products: counted so
whatever `--sparsity` says, where torch's own counter prices a 2:4 matmul at its dense shape, twice its work).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import torch
import torch.nn as nn

from ..errors import UsageError
from . import formulas
from .report import WeightSparsity

_CATEGORIES = ("matmul", "conv")  # the work a weight multiplies into; bias adds and the rest are not products

# op -> the positions of the operands it multiplies (the rest: a bias, scales, options); default (0, 1)
_MULTIPLIED: dict[str, tuple[int, ...]] = {
    "addmm": (1, 2),
    "_sparse_addmm": (1, 2),
    "baddbmm": (1, 2),
    "addbmm": (1, 2),
    "addmv": (1, 2),
    "convolution": (1,),
    "_convolution": (1,),
    "convolution_backward": (2,),
}

# N:M patterns looked for along the reduction dimension, strongest claim first
PATTERNS = ((2, 4), (4, 8))


def _op_name(func: Any) -> str:
    return getattr(getattr(func, "overloadpacket", func), "__name__", "")


def _semi_structured_type() -> type | None:
    return getattr(torch.sparse, "SparseSemiStructuredTensor", None)


def _layout_name(tensor: torch.Tensor) -> str:
    semi = _semi_structured_type()
    if semi is not None and isinstance(tensor, semi):
        return "semi_structured"
    return str(tensor.layout).replace("torch.", "")


def stored_fraction(tensor: torch.Tensor) -> Fraction | None:
    """The share of a sparse-stored tensor's elements that its kernels multiply: stored values over elements
    (a 2:4 semi-structured tensor keeps 2 of every 4); None for a dense (strided) tensor."""
    layout = _layout_name(tensor)
    if layout == "strided":
        return None
    numel = tensor.numel()
    if not numel:
        return None
    if layout == "semi_structured":
        return Fraction(1, 2)
    values = tensor._values() if tensor.layout == torch.sparse_coo else tensor.values()
    return Fraction(values.numel(), numel)


def _operands(func: Any, args: tuple) -> list[Any]:
    positions = _MULTIPLIED.get(_op_name(func), (0, 1))
    return [args[i] for i in positions if i < len(args) and isinstance(args[i], torch.Tensor)]


def stored_products(func: Any, args: tuple, flops: Mapping[str, int]) -> dict[str, int]:
    """`flops` with a matmul's products scaled to what its sparse-stored operand holds (a COO/CSR/BSR or 2:4
    semi-structured weight): the kernel skips what is not stored. Dense operands leave it as it is."""
    if not any(flops.get(c) for c in _CATEGORIES):
        return dict(flops)
    fractions = [f for f in (stored_fraction(t) for t in _operands(func, args)) if f is not None]
    if not fractions:
        return dict(flops)
    share = min(fractions)
    return {c: (int(v * share) if c in _CATEGORIES else v) for c, v in flops.items()}


def nm_pattern(weight: torch.Tensor) -> str | None:
    """ "2:4" or "4:8" when every group of M consecutive weights along the reduction dimension (each output's
    row, the weight flattened after its first dimension as the GEMM sees it) holds at most N non-zeros."""
    if weight.dim() < 2:
        return None
    rows = weight.detach().reshape(weight.shape[0], -1)
    for n, m in PATTERNS:
        if rows.shape[1] % m == 0 and int((rows.reshape(rows.shape[0], -1, m) != 0).sum(-1).max()) <= n:
            return f"{n}:{m}"
    return None


class ZeroWeights:
    """Which of a model's weights an op multiplies by, and how many products with a zero weight it has.

    A weight is recognised through its storage: the transposed or reshaped view an op receives (`t(W)` in a
    linear's addmm, W itself in the input gradient's mm) shares it. The weight gradient multiplies no weight
    and stays dense, as does anything that multiplies a copy of a weight (a cast to another dtype)."""

    def __init__(self, model: nn.Module):
        owners = {}
        for module_name, module in model.named_modules():
            for param_name, param in module.named_parameters(recurse=False):
                owners.setdefault(
                    id(param), (f"{module_name}.{param_name}" if module_name else param_name, module_name)
                )
        self._params: dict[int, tuple[str, str, torch.Tensor]] = {}
        self._sparse: list[tuple[str, str, torch.Tensor]] = []
        for param in model.parameters():
            if id(param) not in owners:
                continue
            name, layer = owners[id(param)]
            if param.device.type == "meta" and _layout_name(param) != "semi_structured":
                raise UsageError(
                    f"sparsity reads the weights' values and {name} is on the meta device",
                    "count on the cpu: --device cpu (or leave --device out)",
                )
            if _layout_name(param) != "strided":
                self._sparse.append((name, layer, param))
            elif param.dim() >= 2:
                self._params.setdefault(param.untyped_storage().data_ptr(), (name, layer, param))
        self._zeros_of_view: dict[tuple, int] = {}
        self._seen: dict[str, WeightSparsity] = {}

    def skipped(
        self, func: Any, args: tuple, kwargs: Mapping[str, Any], out: Any, flops: Mapping[str, int]
    ) -> dict[str, int]:
        """The FLOPs of this op's products with a zero weight, by category (empty when it multiplies none)."""
        if not any(flops.get(c) for c in _CATEGORIES):
            return {}
        best: Fraction | None = None
        for operand in _operands(func, args):
            share = self.zero_share(operand)
            if share is not None and (best is None or share > best):
                best = share
        if not best:
            return {}
        products = self._weight_products(func, args, kwargs, out, flops)
        return {c: int(v * best) for c, v in products.items() if c in _CATEGORIES and v}

    def _weight_products(
        self, func: Any, args: tuple, kwargs: Mapping[str, Any], out: Any, flops: Mapping[str, int]
    ) -> dict[str, int]:
        """The part of an op's matmul/conv FLOPs that multiplies by the weight: all of it, except in a
        convolution's backward, whose weight gradient (the second half) multiplies no weight."""
        if _op_name(func) == "convolution_backward":
            if not args[10][0]:
                return {}
            input_gradient_only = (*args[:10], [True, False, False], *args[11:])
            return dict(formulas.flops_of(func, input_gradient_only, kwargs, out) or {})
        return {c: flops[c] for c in _CATEGORIES if flops.get(c)}

    def zero_share(self, operand: torch.Tensor) -> Fraction | None:
        if _layout_name(operand) != "strided" or operand.device.type == "meta" or not operand.numel():
            return None
        known = self._params.get(operand.untyped_storage().data_ptr())
        if known is None:
            return None
        name, layer, param = known
        if name not in self._seen:
            self._seen[name] = describe(name, layer, param)
        key = (operand.untyped_storage().data_ptr(), operand.storage_offset(), tuple(operand.shape), operand.stride())
        zeros = self._zeros_of_view.get(key)
        if zeros is None:
            zeros = self._zeros_of_view[key] = int((operand.detach() == 0).sum())
        return Fraction(zeros, operand.numel())

    def weights(self) -> tuple[WeightSparsity, ...]:
        """Every weight a matmul or convolution multiplied by, and every sparse-stored one, in model order."""
        found = dict(self._seen)
        for name, layer, param in self._sparse:
            found[name] = describe(name, layer, param)
        order = {name: i for i, (name, _, _) in enumerate([*self._params.values(), *self._sparse])}
        return tuple(sorted(found.values(), key=lambda w: order.get(w.name, len(order))))


def _dense_values(param: torch.Tensor) -> torch.Tensor | None:
    """A weight's values as a dense tensor, or None where they cannot be read here: a sparse-stored weight on
    the meta device, or a layout this build cannot densify."""
    if _layout_name(param) == "strided":
        return param.detach()
    if param.device.type == "meta":
        return None
    try:
        return param.detach().to_dense()
    except (RuntimeError, NotImplementedError):
        return None


def describe(name: str, layer: str, param: torch.Tensor) -> WeightSparsity:
    """One weight's zeros and N:M pattern, dense or sparse-stored. A sparse-stored weight whose values cannot
    be read (a 2:4 tensor on meta) is described by its layout: the products its kernel skips."""
    layout = _layout_name(param)
    numel = param.numel()
    dense = _dense_values(param)
    if dense is None:
        share = stored_fraction(param) or Fraction(1)
        return WeightSparsity(
            name,
            layer,
            tuple(param.shape),
            int(numel * (1 - share)),
            numel,
            "2:4" if layout == "semi_structured" else None,
            layout,
        )
    zeros = int((dense == 0).sum())
    return WeightSparsity(name, layer, tuple(param.shape), zeros, numel, nm_pattern(dense), layout)
