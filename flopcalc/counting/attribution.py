"""Which module (and which attention or norm scope) an op belongs to, in the forward and in the backward.

Global module hooks keep a stack of the modules running now, so a forward op belongs to the innermost one.
Backward ops run inside autograd nodes made during the forward. Each node carries a sequence number given at
creation, and every change of the stack is logged with the sequence number current at that moment; the node
that runs an op (`torch._C._current_autograd_node()`) is thereby mapped back to the module (and the scope) that
created it. No graph walks, no per-tensor hooks.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

_get_sequence_nr = torch._C._autograd._get_sequence_nr

# Modules whose whole work is a normalisation, whatever ops they are written with (a hand-written RMSNorm
# is pow, mean, rsqrt and mul): their non-matmul FLOPs are counted as `norm`.
_NORM_MODULE_TYPES: tuple[type, ...] = tuple(
    t
    for t in (
        nn.LayerNorm,
        nn.GroupNorm,
        nn.LocalResponseNorm,
        getattr(nn, "RMSNorm", None),
        nn.modules.batchnorm._NormBase,
        nn.modules.instancenorm._InstanceNorm,
    )
    if t is not None
)


def is_norm_module(module: nn.Module) -> bool:
    """torch's norm modules, and leaf modules whose class name ends in Norm (a hand-written RMSNorm). A module
    with children is a wrapper even when so named (vit-pytorch's PreNorm holds a LayerNorm and a whole
    attention or MLP block): its children are classified on their own."""
    if isinstance(module, _NORM_MODULE_TYPES):
        return True
    return type(module).__name__.endswith("Norm") and next(module.children(), None) is None


@dataclass(frozen=True)
class Context:
    """Where an op belongs: the module path and, inside an attention or norm scope, that scope."""

    module: str
    scope: str | None = None  # "attention" | "norm" | None
    # of an attention call: its (forward, backward) FLOPs, charged once each (see _attention_context)
    attention_flops: tuple[int, int] | None = None
    windowed: bool = False  # an attention call counted over a sliding window
    uncut: bool = False  # a bidirectional attention call longer than the sliding window, counted whole


class Attribution:
    """The module/scope stack, and its history keyed by autograd sequence numbers."""

    def __init__(self, module_names: Mapping[int, str]):
        self.module_names = module_names
        self.stack: list[tuple[int | None, Context]] = [(None, Context(""))]
        self._log_seq: list[int] = [-1]
        self._log_ctx: list[Context] = [self.stack[0][1]]

    @property
    def current(self) -> Context:
        return self.stack[-1][1]

    def push(self, key: int | None, context: Context) -> None:
        self.stack.append((key, context))
        self._log(context)

    def pop(self, key: int | None) -> None:
        if len(self.stack) > 1 and self.stack[-1][0] == key:
            self.stack.pop()
            self._log(self.current)

    def _log(self, context: Context) -> None:
        seq = _get_sequence_nr()
        if self._log_seq and self._log_seq[-1] == seq:
            self._log_ctx[-1] = context
        else:
            self._log_seq.append(seq)
            self._log_ctx.append(context)

    def context_of_node(self, node: Any) -> Context:
        """The context in force when the autograd node was created (root for nodes made outside the forward)."""
        if node is None:
            return self._log_ctx[0]
        try:
            seq = node._sequence_nr()
        except Exception:
            return self._log_ctx[0]
        index = bisect.bisect_right(self._log_seq, seq) - 1
        return self._log_ctx[max(index, 0)]

    # module hooks --------------------------------------------------------------------------------
    def enter_module(self, module: nn.Module, *_: Any) -> None:
        name = self.module_names.get(id(module))
        if name is None:
            return
        parent = self.current
        scope = "norm" if is_norm_module(module) else (parent.scope if parent.scope == "norm" else None)
        self.push(id(module), Context(name, scope))

    def exit_module(self, module: nn.Module, *_: Any) -> None:
        if id(module) in self.module_names:
            self.pop(id(module))
