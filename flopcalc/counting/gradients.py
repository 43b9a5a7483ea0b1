"""Autograd's side of a count: the graph nodes the counter asks for, and gradients that hold one slice.

Apart from counter.py because neither is about attribution: one frees the backward graph safely, the other
prices the adds autograd makes of sparse step gradients.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch


class NodeKeeper:
    """The autograd nodes the backward ran, held in the order it ran them, so that they are freed one at a time.

    Asking for the node that runs an op gives it a Python object, and a graph whose nodes have one is freed by
    recursion, node by node (torch frees plain nodes with a loop): a 1,000-layer model's graph overflows the C
    stack and the process dies with SIGSEGV. Holding each node here while the outputs go, then letting go of
    them from the output's end, frees each with its inputs still held elsewhere: no recursion."""

    def __init__(self) -> None:
        self._held: dict[int, Any] = {}

    def keep(self, node: Any) -> Any:
        if node is not None:
            self._held.setdefault(id(node), node)
        return node

    def release(self) -> None:
        """Free the nodes in the order the backward ran them (call once the outputs are dropped)."""
        ordered = list(self._held.values())
        self._held.clear()
        ordered.reverse()
        while ordered:
            ordered.pop()


class SliceGradients:
    """Gradients that are zero outside one slice, and the adds that sum them.

    A model that indexes a tensor step by step (a hand-written recurrence, Mamba's reference selective scan:
    `state = dA[:, :, t] * state + dBu[:, :, t]` for every t) gets back, per step, `select_backward` /
    `slice_backward`: the step's gradient scattered into zeros of the whole tensor's shape. Autograd sums
    them with `add`: on shapes alone each add costs the whole tensor, L steps x L slices, quadratic in the
    sequence, while only the step's slice holds values. Adding such a gradient costs the values it holds
    (the smaller of the two operands' held elements, an upper bound of where both hold values), and the sum
    holds the two together. Any other op sees the tensor as the dense tensor it is."""

    _SCATTERS = frozenset(
        packet
        for packet in (getattr(torch.ops.aten, name, None) for name in ("select_backward", "slice_backward"))
        if packet is not None
    )
    _ADDS = frozenset({torch.ops.aten.add, torch.ops.aten.add_})

    def __init__(self) -> None:
        self._held: dict[int, tuple[Any, int]] = {}  # id(tensor) -> (weak reference, elements holding values)

    def _elements(self, value: Any) -> int | None:
        if not isinstance(value, torch.Tensor):
            return None
        entry = self._held.get(id(value))
        if entry is not None and entry[0]() is value:
            return entry[1]
        return value.numel()

    def _hold(self, tensor: torch.Tensor, elements: int) -> None:
        key = id(tensor)
        if elements >= tensor.numel():
            self._held.pop(key, None)
            return

        def forget(reference: Any) -> None:  # a freed gradient's entry goes with it (a long scan makes many)
            if self._held.get(key, (None,))[0] is reference:
                del self._held[key]

        self._held[key] = (weakref.ref(tensor, forget), elements)

    def flops(self, func, args: tuple, out: Any) -> dict[str, int] | None:
        """The adds' FLOPs when an operand is such a gradient; None to leave the op to the formulas."""
        packet = func.overloadpacket
        if packet in self._SCATTERS and isinstance(out, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            self._hold(out, args[0].numel())
            return {}
        if packet not in self._ADDS or len(args) < 2 or not isinstance(out, torch.Tensor) or not self._held:
            return None
        held = [self._elements(a) for a in args[:2]]
        if None in held or held == [a.numel() for a in args[:2]]:
            return None
        self._hold(out, min(out.numel(), held[0] + held[1]))
        return {"elementwise": min(held)}
