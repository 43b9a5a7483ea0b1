"""Run a model forward and backward and attribute every op's FLOPs to the module that ran it.

How attribution works, in one place:
- A TorchDispatchMode sees every aten op after autograd, whatever the device (meta, CPU, CUDA), and asks
  the formula registry for its cost.
- Global module hooks keep a stack of the modules running now, so a forward op belongs to the innermost one.
- Backward ops run inside autograd nodes made during the forward. Each node carries a sequence number given
  at creation, and every change of the module stack is logged with the sequence number current at that
  moment; the node that runs an op (`torch._C._current_autograd_node()`) is thereby mapped back to the
  module (and the scope) that created it. No graph walks, no per-tensor hooks.
- A TorchFunctionMode marks calls of `scaled_dot_product_attention` (and the norm functions) as scopes,
  so whatever kernel or decomposition runs inside them is one `attention` (or `norm`) cost: the same
  figure on meta, CPU and CUDA.
- An op in the backward with grad mode on is activation checkpointing re-running a forward: kept apart
  (a note), not counted as model FLOPs.
"""

from __future__ import annotations

import bisect
import contextlib
import fnmatch
import inspect
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import ArgumentTypeError, ModelRunError, UsageError, short_error
from ..spec import CallArgs, tensors_in
from ..units import format_si
from . import formulas
from .experts import active_parameters, expert_layers
from .gradients import NodeKeeper, SliceGradients
from .meta_ops import run_op
from .report import CATEGORIES, CountReport, InputInfo, LayerCount, build_layers, unsupported_ops_error
from .sparsity import ZeroWeights, stored_products

_get_sequence_nr = torch._C._autograd._get_sequence_nr
_redispatch = getattr(torch.overrides, "redispatch_function", None)

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

_NON_MATMUL = frozenset(CATEGORIES) - {"matmul", "conv", "attention"}

# Sees every op the counter sees: (func, args, kwargs, out, module path, in the backward). counting/traffic.py
# uses it to follow the bytes each module reads and writes.
OpObserver = Callable[[Any, tuple, Mapping[str, Any], Any, str, bool], None]


def _is_norm_module(module: nn.Module) -> bool:
    """torch's norm modules, and leaf modules whose class name ends in Norm (a hand-written RMSNorm). A module
    with children is a wrapper even when so named (vit-pytorch's PreNorm holds a LayerNorm and a whole
    attention or MLP block): its children are classified on their own."""
    if isinstance(module, _NORM_MODULE_TYPES):
        return True
    return type(module).__name__.endswith("Norm") and next(module.children(), None) is None


@dataclass(frozen=True)
class _Context:
    """Where an op belongs: the module path and, inside an attention or norm scope, that scope."""

    module: str
    scope: str | None = None  # "attention" | "norm" | None
    # of an attention call: its (forward, backward) FLOPs, charged once each (see _attention_context)
    attention_flops: tuple[int, int] | None = None
    windowed: bool = False  # an attention call counted over a sliding window
    uncut: bool = False  # a bidirectional attention call longer than the sliding window, counted whole


class _Attribution:
    """The module/scope stack, and its history keyed by autograd sequence numbers."""

    def __init__(self, module_names: Mapping[int, str]):
        self.module_names = module_names
        self.stack: list[tuple[int | None, _Context]] = [(None, _Context(""))]
        self._log_seq: list[int] = [-1]
        self._log_ctx: list[_Context] = [self.stack[0][1]]

    @property
    def current(self) -> _Context:
        return self.stack[-1][1]

    def push(self, key: int | None, context: _Context) -> None:
        self.stack.append((key, context))
        self._log(context)

    def pop(self, key: int | None) -> None:
        if len(self.stack) > 1 and self.stack[-1][0] == key:
            self.stack.pop()
            self._log(self.current)

    def _log(self, context: _Context) -> None:
        seq = _get_sequence_nr()
        if self._log_seq and self._log_seq[-1] == seq:
            self._log_ctx[-1] = context
        else:
            self._log_seq.append(seq)
            self._log_ctx.append(context)

    def context_of_node(self, node: Any) -> _Context:
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
        scope = "norm" if _is_norm_module(module) else (parent.scope if parent.scope == "norm" else None)
        self.push(id(module), _Context(name, scope))

    def exit_module(self, module: nn.Module, *_: Any) -> None:
        if id(module) in self.module_names:
            self.pop(id(module))


class _ScopeMode(TorchFunctionMode):
    """Marks attention and norm function calls as scopes (see the module docstring)."""

    def __init__(self, attribution: _Attribution, causal_half: bool = False, attention_window: int | None = None):
        super().__init__()
        self.attribution = attribution
        self.causal_half = causal_half
        self.attention_window = attention_window
        self.windowed_calls = 0  # attention calls counted over the window (shorter than their keys)
        self.unwindowed_calls = 0  # calls with neither is_causal nor a mask: no window shape, the full square

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
        elif func in _NORM_FUNCTIONS:
            context = _Context(self.attribution.current.module, "norm")
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
) -> _Context:
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
    return _Context(module, "attention", (forward, backward), windowed, uncut)


def _nested_attention_context(module: str, q: Any, k: Any, v: Any, needs: tuple[bool, ...]) -> _Context:
    """Attention over jagged [B, H, j, E] tensors: sequence i attends its own L_i queries to its own S_i keys,
    sum of L_i * S_i pairs per head (no padding to the longest)."""
    if q.layout != torch.jagged or k.layout != torch.jagged or q.dim() != 4 or q._ragged_idx != 2:
        raise NotImplementedError("nested attention other than jagged [B, H, j, E] tensors")
    lengths_q, lengths_k = _lengths(q), _lengths(k)
    pairs = sum(len_q * len_k for len_q, len_k in zip(lengths_q, lengths_k, strict=True))
    shapes = (1, int(q.shape[1]), 1, pairs, int(q.shape[-1]), int(v.shape[-1]))
    forward = formulas.attention_forward_flops(*shapes)
    backward = formulas.attention_backward_flops(*shapes, needs=needs)
    return _Context(module, "attention", (forward, backward))


def _lengths(jagged: Any) -> list[int]:
    """The sequence lengths of a jagged tensor, read in Python (a torch op here would be counted)."""
    offsets = jagged.offsets().tolist()
    return [end - start for start, end in zip(offsets, offsets[1:])]


class _FlopDispatchMode(TorchDispatchMode):
    """Counts every aten op into per-module, per-category tables for the forward and the backward."""

    def __init__(
        self, attribution: _Attribution, observe: OpObserver | None = None, zero_weights: ZeroWeights | None = None
    ):
        super().__init__()
        self.attribution = attribution
        self.observe = observe
        # with sparsity counted: the products with a zero weight, per module and category (effective FLOPs)
        self.zero_weights = zero_weights
        self.skipped_forward: dict[str, Counter] = defaultdict(Counter)
        self.skipped_backward: dict[str, Counter] = defaultdict(Counter)
        self.in_backward = False
        # attention calls already counted, per direction; holding the context keeps its id from being reused
        # by a later call's (a scope that made no autograd node drops out of the attribution log)
        self._charged: dict[tuple[int, bool], _Context] = {}
        self.forward: dict[str, Counter] = defaultdict(Counter)
        self.backward: dict[str, Counter] = defaultdict(Counter)
        self.recomputed: dict[str, Counter] = defaultdict(Counter)  # forward re-run by activation checkpointing
        self.unsupported: Counter = Counter()
        self.formula_errors: dict[str, str] = {}
        self.slices = SliceGradients()
        self.nodes = NodeKeeper()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = run_op(func, args, kwargs)
        backward = False
        if not self.in_backward:
            context, table = self.attribution.current, self.forward
        elif torch.is_grad_enabled():
            # Autograd runs the backward with grad mode off; an op with it on is a forward that activation
            # checkpointing (torch.utils.checkpoint, either mode) re-runs to rebuild what it did not keep.
            context, table = self.attribution.current, self.recomputed
        else:
            context = self.attribution.context_of_node(self.nodes.keep(torch._C._current_autograd_node()))
            table, backward = self.backward, True
        self._account(func, args, kwargs, out, context, table[context.module], backward)
        if self.observe is not None:
            self.observe(func, args, kwargs, out, context.module, backward)
        return out

    def _account(self, func, args, kwargs, out, context: _Context, table: Counter, backward: bool) -> None:
        if context.scope == "attention":  # the whole call is counted once, from its shapes (_attention_context)
            key = (id(context), backward)
            if context.attention_flops is not None and key not in self._charged:
                self._charged[key] = context
                flops = context.attention_flops[1 if backward else 0]
                if flops:
                    table["attention"] += flops
            return
        name = _op_name(func)
        try:
            flops = self.slices.flops(func, args, out)
            if flops is None:
                flops = formulas.flops_of(func, args, kwargs, out)
        except Exception as error:  # a formula that cannot read these arguments: say so, never guess zero
            self.unsupported[name] += 1
            self.formula_errors.setdefault(name, short_error(error))
            return
        if flops is None:
            self.unsupported[name] += 1
            return
        flops = stored_products(func, args, flops)
        recomputing = self.in_backward and not backward  # checkpointing's re-run: neither forward nor backward
        if self.zero_weights is not None and not recomputing:
            skipped = self.zero_weights.skipped(func, args, kwargs, out, flops)
            if skipped:
                (self.skipped_backward if backward else self.skipped_forward)[context.module].update(skipped)
        if context.scope == "norm":
            flops = _merge((("norm" if c in _NON_MATMUL else c), v) for c, v in flops.items())
        for category, value in flops.items():
            table[category] += value


def _merge(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = defaultdict(int)
    for key, value in pairs:
        merged[key] += value
    return merged


def _op_name(func) -> str:
    packet = getattr(func, "overloadpacket", func)
    return f"aten.{getattr(packet, '__name__', str(packet))}"


def backward_roots(output: Any) -> list[torch.Tensor]:
    """The tensors the backward starts from: each output that needs a gradient, once. A tensor returned twice
    ((y, y), or as `logits` and in a tuple) would get two seeds and an add of them that the model never does."""
    return list({id(t): t for t in tensors_in(output) if t.requires_grad}.values())


def apply_frozen(model: nn.Module, patterns: Sequence[str]) -> list[nn.Parameter]:
    """Stop gradients for parameters whose name, or any enclosing module's name, matches a pattern."""
    frozen: list[nn.Parameter] = []
    for pattern in patterns:
        matched = False
        for name, param in model.named_parameters():
            parts = name.split(".")
            prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
            if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
                matched = True
                if param.requires_grad:
                    param.requires_grad_(False)
                    frozen.append(param)
        if not matched:
            example = next((n for n, _ in model.named_parameters()), "")
            raise UsageError(
                f"--frozen {pattern!r} matches no parameter or module",
                f"names look like {example!r}; use shell-style patterns such as 'encoder.*'" if example else None,
            )
    return frozen


def _input_infos(call: CallArgs) -> tuple[InputInfo, ...]:
    """Each input tensor, positional ones first, keyword ones by name (a tensor nested in a keyword argument
    carries that argument's name)."""
    return tuple(
        InputInfo(tuple(int(d) for d in formulas.tensor_shape(t)), str(t.dtype).replace("torch.", ""), name)
        for name, value in call.named()
        for t in tensors_in(value)
    )


def count(
    model: nn.Module,
    inputs: Any,
    *,
    backward: bool = True,
    frozen: Sequence[str] = (),
    causal_half: bool = False,
    strict: bool = False,
    name: str | None = None,
    observe: OpObserver | None = None,
    sparsity: bool = False,
    attention_window: int | None = None,
) -> CountReport:
    """Count `model(*inputs)` forward and (unless `backward=False`) backward FLOPs, per module and category.

    `inputs` is a tensor, a tuple/list of positional tensors, a dict of keyword tensors, or `CallArgs` of
    both, on the model's device (use the meta device to count without memory). The backward is that of the
    sum of all outputs, with parameters requiring gradients as the model sets them (minus `frozen` patterns);
    inputs need none.
    `observe`, if given, is called with every op and the module it belongs to (see OpObserver).
    `sparsity=True` reads the weights' values (not on meta): each weight's zeros and N:M pattern, and effective
    FLOPs that leave out the products with a zero weight (counting/sparsity.py).
    `attention_window=W` counts each causal (or masked) attention call as a sliding window of W keys
    (formulas.windowed_causal_pairs), as flash attention's windowed kernels run it; None the full square.
    """
    if attention_window is not None and (
        isinstance(attention_window, bool) or not isinstance(attention_window, int) or attention_window < 1
    ):
        raise UsageError(
            f"attention window {attention_window!r} must be a whole number of keys >= 1",
            "give e.g. --attention-window 4096",
        )
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"count() needs a torch.nn.Module, got {type(model).__name__}", field="model")
    call = CallArgs.of(inputs)
    module_names = {}
    for module_name, module in model.named_modules():
        module_names.setdefault(id(module), module_name)
    attribution = _Attribution(module_names)
    zero_weights = ZeroWeights(model) if sparsity else None
    counter = _FlopDispatchMode(attribution, observe, zero_weights)
    with _gradients_set_aside(model, call, frozen):
        backward_counted, notes = _run(
            model,
            call,
            attribution,
            counter,
            backward=backward,
            causal_half=causal_half,
            attention_window=attention_window,
        )
    if strict and counter.unsupported:
        raise unsupported_ops_error(counter.unsupported)
    notes.extend(_counter_notes(counter))
    device = next((str(t.device) for t in tensors_in(call)), None)
    if device is None:
        device = next((str(p.device) for p in model.parameters()), "cpu")
    params = list(model.parameters())
    experts = expert_layers(model)
    notes.extend(_experts_notes(experts))
    return CountReport(
        model=name or type(model).__name__,
        inputs=_input_infos(call),
        device=device,
        layers=_layers(
            model,
            counter.forward,
            counter.backward,
            (counter.skipped_forward, counter.skipped_backward) if sparsity else None,
        ),
        params=sum(p.numel() for p in params),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        unsupported_ops=dict(sorted(counter.unsupported.items())),
        backward_counted=backward_counted,
        notes=tuple(notes),
        options={
            "backward": backward,
            "frozen": list(frozen),
            "causal_half": causal_half,
            **({"sparsity": True} if sparsity else {}),
            **({"attention_window": attention_window} if attention_window is not None else {}),
        },
        recomputed_by_category={
            c: v
            for c, v in _merge((c, v) for table in counter.recomputed.values() for c, v in table.items()).items()
            if v
        },
        active_params=active_parameters(model, experts) if experts else None,
        sparsity=zero_weights.weights() if zero_weights is not None else None,
        expert_layers=tuple(experts),
    )


@contextlib.contextmanager
def _gradients_set_aside(model: nn.Module, call: CallArgs, frozen: Sequence[str]) -> Iterator[None]:
    """The `frozen` patterns applied, and the gradients already stored set aside (they would turn the
    accumulation into extra adds); both undone after, whatever happens."""
    frozen_params = apply_frozen(model, frozen)
    leaves = list(model.parameters()) + [t for t in tensors_in(call) if t.is_leaf]
    saved_grads = {id(t): (t, t.grad) for t in leaves}
    for tensor in leaves:
        tensor.grad = None
    try:
        yield
    finally:
        for param in frozen_params:
            param.requires_grad_(True)
        for tensor, grad in saved_grads.values():
            tensor.grad = grad


def _run(
    model: nn.Module,
    call: CallArgs,
    attribution: _Attribution,
    counter: _FlopDispatchMode,
    *,
    backward: bool,
    causal_half: bool,
    attention_window: int | None = None,
) -> tuple[bool, list[str]]:
    """The forward and (when asked and some output needs a gradient) the backward under the counting modes.
    Returns whether the backward was counted, and the note saying why not."""
    hooks = [
        nn.modules.module.register_module_forward_pre_hook(attribution.enter_module),
        nn.modules.module.register_module_forward_hook(attribution.exit_module, always_call=True),
    ]
    output = roots = None
    scopes = _ScopeMode(attribution, causal_half, attention_window)
    notes = _window_notes(scopes)
    try:
        with torch.enable_grad() if backward else torch.no_grad(), scopes, counter:
            try:
                output = call.call(model)
            except (Exception, SystemExit) as error:  # the user's forward, whatever it raises (sys.exit too)
                raise ModelRunError(
                    f"the model failed on its inputs ({_describe(call)}): {short_error(error)}",
                    "check inputs shapes and dtypes against what the model's forward expects",
                    field="inputs",
                ) from error
            if not backward:
                return False, notes()
            roots = backward_roots(output)
            if not roots:
                return False, [
                    *notes(),
                    "no output requires a gradient (every parameter frozen?): backward not counted",
                ]
            counter.in_backward = True
            try:
                torch.autograd.backward(roots, [torch.ones_like(t) for t in roots])
            except (Exception, SystemExit) as error:  # the user's backward hooks and custom functions too
                raise ModelRunError(f"the backward pass failed: {short_error(error)}") from error
            finally:
                counter.in_backward = False
            return True, notes()
    finally:
        output = roots = None  # the graph goes now, one node at a time (gradients.NodeKeeper)
        counter.nodes.release()
        for hook in hooks:
            hook.remove()


def _window_notes(scopes: _ScopeMode) -> Callable[[], list[str]]:
    """The note of a sliding-window count, read once the forward has run."""

    def notes() -> list[str]:
        window = scopes.attention_window
        if window is None:
            return []
        said = []
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


def _counter_notes(counter: _FlopDispatchMode) -> list[str]:
    """What the counter saw besides FLOPs: forward re-run by checkpointing, formulas that could not read."""
    notes = []
    recomputed = sum(sum(table.values()) for table in counter.recomputed.values())
    if recomputed:
        notes.append(
            f"activation checkpointing re-ran {format_si(recomputed, 'FLOP')} of forward during the "
            "backward; not included in forward or backward (model FLOPs, as MFU counts them)"
        )
    for op, message in sorted(counter.formula_errors.items()):
        notes.append(f"{op}: formula could not read its arguments ({message}); listed as unsupported")
    return notes


def _experts_notes(experts: Sequence) -> list[str]:
    """What the active parameter count assumed about the mixture-of-experts layers."""
    if not experts:
        return []
    routed = sorted({(layer.top_k, layer.num_experts) for layer in experts if layer.top_k is not None})
    notes = []
    if routed:
        shares = ", ".join(f"top-{k} of {n}" for k, n in routed)
        notes.append(
            f"mixture of experts: {len(experts)} experts layer(s), {shares}; active parameters count "
            "each token's experts only (experts x top-k / experts)"
        )
    unknown = [layer.name for layer in experts if layer.top_k is None]
    if unknown:
        notes.append(
            f"mixture of experts: top-k of {unknown[0]}"
            + (f" and {len(unknown) - 1} more" if len(unknown) > 1 else "")
            + " not found; its experts are all counted as active parameters"
        )
    return notes


def _describe(call: CallArgs) -> str:
    return ", ".join(map(str, _input_infos(call))) or "no inputs"


def _layers(
    model: nn.Module,
    forward: Mapping[str, Counter],
    backward: Mapping[str, Counter],
    skipped: tuple[Mapping[str, Counter], Mapping[str, Counter]] | None = None,
) -> tuple[LayerCount, ...]:
    """Every module of the tree with inclusive counts: a module's own ops plus its descendants'."""
    tree = (
        (module_name, type(module).__name__, sum(p.numel() for p in module.parameters()))
        for module_name, module in model.named_modules()
    )
    return build_layers(tree, forward, backward, skipped=skipped)
