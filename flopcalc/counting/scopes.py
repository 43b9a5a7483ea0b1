"""Attention and norm calls as scopes: whatever kernel or decomposition runs inside one is a single `attention`
(or `norm`) cost, the same figure on meta, CPU and CUDA.

A TorchFunctionMode sees the calls of `scaled_dot_product_attention`, of flex_attention's higher-order op and of
the norm functions before any kernel is chosen; an attention call's forward and backward FLOPs are worked out
from the call itself and charged once each by the dispatch-mode counter (counter.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from . import formulas
from .attribution import Attribution, Context
from .flex import FLEX_ATTENTION, computed_pairs

_redispatch = getattr(torch.overrides, "redispatch_function", None)

_NORM_FUNCTIONS = frozenset(
    f
    for f in (
        F.layer_norm,
        F.group_norm,
        F.batch_norm,
        F.instance_norm,
        F.local_response_norm,
        getattr(F, "rms_norm", None),
        torch.layer_norm,
        torch.group_norm,
        torch.batch_norm,
        torch.instance_norm,
        getattr(torch, "rms_norm", None),
    )
    if f is not None
)

_ATTENTION_FUNCTIONS = frozenset({F.scaled_dot_product_attention, torch.ops.aten.scaled_dot_product_attention.default})


class ScopeMode(TorchFunctionMode):
    """Marks attention and norm function calls as scopes (see the module docstring)."""

    def __init__(self, attribution: Attribution, causal_half: bool = False, attention_window: int | None = None):
        super().__init__()
        self.attribution = attribution
        self.causal_half = causal_half
        self.attention_window = attention_window
        self.windowed_calls = 0  # attention calls counted over the window (shorter than their keys)
        self.unwindowed_calls = 0  # calls with neither is_causal nor a mask: no window shape, the full square
        self.flex_pairs = [0, 0]  # flex_attention calls' computed query-key pairs, and their full squares'

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _ATTENTION_FUNCTIONS:
            context = _attention_context(
                self.attribution.current.module, args, kwargs, self.causal_half, self.attention_window
            )
            if self.attention_window is not None:
                if context.windowed:
                    self.windowed_calls += 1
                elif context.uncut:
                    self.unwindowed_calls += 1
        elif func is FLEX_ATTENTION and self.attribution.current.scope != "attention":
            # (the op runs again inside its autograd function, already in this scope: counted once)
            context, computed, square = _flex_attention_context(self.attribution.current.module, args)
            self.flex_pairs[0] += computed
            self.flex_pairs[1] += square
        elif func in _NORM_FUNCTIONS:
            context = Context(self.attribution.current.module, "norm")
        elif func is torch.lstm and torch._C._get_mkldnn_enabled():
            # On the CPU, torch.lstm runs as one opaque oneDNN op (aten.mkldnn_rnn_layer) whose arithmetic
            # no formula sees; without oneDNN it decomposes into the matmuls and gates the meta device counts.
            torch._C._set_mkldnn_enabled(False)
            try:
                return self._call(func, types, args, kwargs)
            finally:
                torch._C._set_mkldnn_enabled(True)
        else:
            return self._call(func, types, args, kwargs)
        key = id(context)
        self.attribution.push(key, context)
        try:
            return self._call(func, types, args, kwargs)
        finally:
            self.attribution.pop(key)

    def _call(self, func, types, args, kwargs):
        """Run `func` with this mode still on inside it. A mode is switched off while its handler runs, so a
        plain call would hide the calls a Python function makes: the attention inside
        F.multi_head_attention_forward (nn.MultiheadAttention, nn.TransformerEncoderLayer) would go uncounted
        as attention. Only the Python functions of torch.nn.functional are redispatched: a Tensor method written
        in Python that calls its C base (Tensor.unflatten) would reach this handler again and again. torch
        without redispatch_function keeps the plain call (nested calls stay unseen there)."""
        if (
            _redispatch is None
            or getattr(func, "__module__", None) != "torch.nn.functional"
            or not inspect.isfunction(func)
        ):
            return func(*args, **kwargs)
        with self:
            return _redispatch(func, types, args, kwargs)


_SDPA_PARAMETERS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal")


def _attention_context(
    module: str, args: tuple, kwargs: Mapping[str, Any], causal_half: bool, window: int | None = None
) -> Context:
    """The scope of one scaled_dot_product_attention call, with its FLOPs worked out from the call itself.

    The call, not the ops it runs, is counted: a fused kernel's backward computes dQ, dK and dV whatever
    autograd needs, while the math decomposition (meta) computes only the gradients asked for; counting
    from the call's shapes and which of q, k, v need a gradient gives one figure on every device.
    With a sliding `window`, a causal or masked call (a sliding window reaches sdpa as a mask: its values are
    not read, the meta device holds none) counts only the pairs flash attention's windowed kernel computes;
    a window at least as long as the keys leaves the call as it is (full square, or --causal-half's triangle)."""
    bound = dict(zip(_SDPA_PARAMETERS, args))
    bound.update(kwargs)
    q, k, v = bound["query"], bound["key"], bound["value"]
    needs = tuple(torch.is_grad_enabled() and t.requires_grad for t in (q, k, v))
    if q.is_nested:
        return _nested_attention_context(module, q, k, v, needs)
    shapes = formulas.attention_shapes(q.shape, k.shape, v.shape)
    forward = formulas.attention_forward_flops(*shapes)
    backward = formulas.attention_backward_flops(*shapes, needs=needs)
    len_q, len_k = shapes[2], shapes[3]
    causal_or_masked = bool(bound.get("is_causal")) or bound.get("attn_mask") is not None
    # a window no query can reach past (W >= S) changes nothing: the call is counted as without one
    windowed = window is not None and causal_or_masked and window < len_k
    if windowed:
        mask = bound.get("attn_mask")
        if mask is not None and mask.dim() >= 2 and mask.shape[-2] == 1:
            # one mask row for every query (a decode step; transformers folds the heads of a KV group into the
            # query rows): each sees the last position's window
            kept = len_q * min(len_k, window)
        else:
            kept = formulas.windowed_causal_pairs(len_q, len_k, window)
        total = len_q * len_k
        forward, backward = forward * kept // total, backward * kept // total
    elif causal_half and bound.get("is_causal"):
        kept, total = formulas.causal_pairs(len_q, len_k), len_q * len_k
        forward, backward = forward * kept // total, backward * kept // total
    # a bidirectional call (neither causal nor masked) a window would cut: counted whole, and said so
    uncut = window is not None and not causal_or_masked and window < len_k
    return Context(module, "attention", (forward, backward), windowed, uncut)


def _flex_attention_context(module: str, args: tuple) -> tuple[Context, int, int]:
    """The scope of one flex_attention call (its higher-order op: query, key, value, score_mod, the block mask's
    tuple, ...): the attention formula over the pairs of the blocks the mask computes (flex.computed_pairs);
    the score_mod's arithmetic is not counted, as sdpa's softmax is not. Returns the pairs and the full square's."""
    q, k, v, _score_mod, block_mask = args[:5]
    needs = tuple(torch.is_grad_enabled() and t.requires_grad for t in (q, k, v))
    batch, heads, len_q, len_k, dim_qk, dim_v = formulas.attention_shapes(q.shape, k.shape, v.shape)
    pairs = computed_pairs(block_mask, len_q, len_k, batch, heads)
    shapes = (1, 1, 1, pairs, dim_qk, dim_v)
    forward = formulas.attention_forward_flops(*shapes)
    backward = formulas.attention_backward_flops(*shapes, needs=needs)
    return Context(module, "attention", (forward, backward)), pairs, batch * heads * len_q * len_k


def _nested_attention_context(module: str, q: Any, k: Any, v: Any, needs: tuple[bool, ...]) -> Context:
    """Attention over jagged [B, H, j, E] tensors: sequence i attends its own L_i queries to its own S_i keys,
    sum of L_i * S_i pairs per head (no padding to the longest)."""
    if q.layout != torch.jagged or k.layout != torch.jagged or q.dim() != 4 or q._ragged_idx != 2:
        raise NotImplementedError("nested attention other than jagged [B, H, j, E] tensors")
    lengths_q, lengths_k = _lengths(q), _lengths(k)
    pairs = sum(len_q * len_k for len_q, len_k in zip(lengths_q, lengths_k, strict=True))
    shapes = (1, int(q.shape[1]), 1, pairs, int(q.shape[-1]), int(v.shape[-1]))
    forward = formulas.attention_forward_flops(*shapes)
    backward = formulas.attention_backward_flops(*shapes, needs=needs)
    return Context(module, "attention", (forward, backward))


def _lengths(jagged: Any) -> list[int]:
    """The sequence lengths of a jagged tensor, read in Python (a torch op here would be counted)."""
    offsets = jagged.offsets().tolist()
    return [end - start for start, end in zip(offsets, offsets[1:])]


def attention_notes(scopes: ScopeMode) -> Callable[[], list[str]]:
    """The notes of a flex_attention or sliding-window count, read once the forward has run."""

    def notes() -> list[str]:
        said = []
        computed, square = scopes.flex_pairs
        if square:
            said.append(
                f"flex_attention counted over the blocks its block mask computes: {computed:,} of {square:,} "
                f"query-key pairs ({100 * computed / square:.1f}%)"
            )
        window = scopes.attention_window
        if window is None:
            return said
        if scopes.windowed_calls:
            said.append(
                f"attention counted over a sliding window of {window:,} keys ({scopes.windowed_calls} calls): "
                f"each query against at most {window:,} keys, as flash attention's windowed kernels compute it; "
                "--attention-as-math counts the full square"
            )
        if scopes.unwindowed_calls:
            said.append(
                f"{scopes.unwindowed_calls} attention calls with neither is_causal nor a mask counted over the "
                "full square (a sliding window is causal)"
            )
        return said

    return notes
