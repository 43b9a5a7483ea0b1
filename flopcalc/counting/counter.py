"""Run a model forward and backward and attribute every op's FLOPs to the module that ran it.

- A TorchDispatchMode sees every aten op after autograd, whatever the device (meta, CPU, CUDA), and asks
  the formula registry for its cost; the module (or attention/norm scope) it belongs to comes from
  attribution.py, forward and backward alike, and the attention calls' costs from scopes.py.
- An op in the backward with grad mode on is activation checkpointing re-running a forward: kept apart
  (a note), not counted as model FLOPs.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import ArgumentTypeError, ModelRunError, UsageError, short_error
from ..spec import CallArgs, check_attention_window, tensors_in
from ..units import format_si
from . import formulas
from .attribution import Attribution, Context
from .experts import active_parameters, expert_layers
from .flex import FLEX_ATTENTION, FLEX_ATTENTION_BACKWARD, dispatch_through, runnable_while_counting
from .gradients import NodeKeeper, SliceGradients
from .meta_ops import run_op
from .report import (
    CATEGORIES,
    CountReport,
    InputInfo,
    LayerCount,
    build_layers,
    formula_flops,
    unsupported_ops_error,
)
from .scopes import ScopeMode, attention_notes
from .sparsity import ZeroWeights, stored_products

_NON_MATMUL = frozenset(CATEGORIES) - {"matmul", "conv", "attention"}

# Sees every op the counter sees: (func, args, kwargs, out, module path, in the backward). counting/traffic.py
# uses it to follow the bytes each module reads and writes.
OpObserver = Callable[[Any, tuple, Mapping[str, Any], Any, str, bool], None]


class _FlopDispatchMode(TorchDispatchMode):
    """Counts every aten op into per-module, per-category tables for the forward and the backward."""

    def __init__(
        self, attribution: Attribution, observe: OpObserver | None = None, zero_weights: ZeroWeights | None = None
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
        self._charged: dict[tuple[int, bool], Context] = {}
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

    def _account(self, func, args, kwargs, out, context: Context, table: Counter, backward: bool) -> None:
        if context.scope == "attention":  # the whole call is counted once, from its shapes (_attention_context)
            key = (id(context), backward)
            if context.attention_flops is not None and key not in self._charged:
                self._charged[key] = context
                flops = context.attention_flops[1 if backward else 0]
                if flops:
                    table["attention"] += flops
            return
        name = _op_name(func)

        def sliced_or_formula() -> float | None:
            sliced = self.slices.flops(func, args, out)
            return formulas.flops_of(func, args, kwargs, out) if sliced is None else sliced

        flops = formula_flops(sliced_or_formula, name, self.unsupported, self.formula_errors)
        if flops is None:
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


# flex_attention's forward and backward are counted like any op, inside their scope
dispatch_through(_FlopDispatchMode, (FLEX_ATTENTION, FLEX_ATTENTION_BACKWARD))


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
    `sparsity=True` reads the weights' values (not on meta, where only 2:4 semi-structured weights are described,
    by their layout): each weight's zeros and N:M pattern, and effective FLOPs that leave out the products with a
    zero weight (counting/sparsity.py).
    `attention_window=W` counts each causal (or masked) attention call as a sliding window of W keys
    (formulas.windowed_causal_pairs), as flash attention's windowed kernels run it; None the full square.
    """
    check_attention_window(attention_window)
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"count() needs a torch.nn.Module, got {type(model).__name__}", field="model")
    call = CallArgs.of(inputs)
    module_names = {}
    for module_name, module in model.named_modules():
        module_names.setdefault(id(module), module_name)
    attribution = Attribution(module_names)
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
    options = {
        "backward": backward,
        "frozen": list(frozen),
        "causal_half": causal_half,
        **({"sparsity": True} if sparsity else {}),
        **({"attention_window": attention_window} if attention_window is not None else {}),
    }
    return _report(model, call, counter, name, backward_counted, notes, options)


def _report(
    model: nn.Module,
    call: CallArgs,
    counter: _FlopDispatchMode,
    name: str | None,
    backward_counted: bool,
    notes: list[str],
    options: dict[str, Any],
) -> CountReport:
    """The report of a counted run: the counter's tables over the module tree, the parameters, the notes."""
    notes = [*notes, *_counter_notes(counter)]
    device = next((str(t.device) for t in tensors_in(call)), None)
    if device is None:
        device = next((str(p.device) for p in model.parameters()), "cpu")
    params = list(model.parameters())
    experts = expert_layers(model)
    notes.extend(_experts_notes(experts))
    sparsity = counter.zero_weights is not None
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
        options=options,
        recomputed_by_category={
            c: v
            for c, v in _merge((c, v) for table in counter.recomputed.values() for c, v in table.items()).items()
            if v
        },
        active_params=active_parameters(model, experts) if experts else None,
        sparsity=counter.zero_weights.weights() if counter.zero_weights is not None else None,
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
    attribution: Attribution,
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
    scopes = ScopeMode(attribution, causal_half, attention_window)
    notes = attention_notes(scopes)
    try:
        with torch.enable_grad() if backward else torch.no_grad(), runnable_while_counting(), scopes, counter:
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
