"""Measure what a model's backward keeps: one forward with grad enabled under saved-tensor hooks.

On the meta device it costs no memory. `torch.autograd.graph.saved_tensors_hooks` sees every tensor an autograd
node saves; each storage is tallied once, parameters and buffers are left out (see counting/activations.py for
the result and what its parts mean). How a saved tensor is placed:

- **The blocks** are the repeated layers: the children of ModuleLists/Sequentials (modules with layers of their
  own) of the one class that is repeated and holds the most parameters (a transformer's layers; T5's encoder
  and decoder blocks together, its first block's extra position bias included).
- Inside a block, every op's outputs are labelled by following the data (a TorchDispatchMode): the block's
  inputs are the hidden stream (replicated over tensor-parallel ranks); a matmul with a weight turns the stream
  into a split tensor (a column-parallel linear: q, k, v, the MLP's inner activations) and a split tensor back
  into the stream (a row-parallel linear); a matmul of two split tensors without a weight starts the attention
  scores (QK^T, softmax, dropout on the probabilities), and their product with V is split again.
- Two functions are kept as a GPU keeps them, whatever the measuring device runs: `scaled_dot_product_attention`
  as a fused kernel (q, k, v, the output and a float32 log-sum-exp per query row; on meta the math decomposition
  runs, which would save the whole attention matrix no GPU kernel keeps), and `dropout` as CUDA's kernel (a
  one-byte mask per element; the CPU and meta save the scaled noise at the input's width). `flex_attention`'s own
  autograd function saves what its kernels keep; its per-row statistics count as float32.
- Outside the blocks, what is saved before the first block belongs to the first pipeline stage, what after the
  last to the last; parameters likewise, by where ops use them.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import ModelRunError, UsageError, short_error
from ..spec import CallArgs, tensors_in
from .activations import ActivationProfile, SavedBytes
from .flex import FLEX_ATTENTION, dispatch_through, runnable_while_counting
from .meta_ops import run_op

# labels of a tensor inside a block; when an op's inputs mix, the higher one wins
REPLICATED, SPLIT, SCORES = 0, 1, 2
# the log-sum-exp a fused attention kernel saves per query row stays float32 whatever the training precision
LOGSUMEXP_BYTES = 4
_MATMULS = frozenset(
    {"mm", "addmm", "bmm", "baddbmm", "addbmm", "matmul", "linear", "mv", "addmv", "einsum", "_scaled_mm"}
)
_KINDS = ("block_replicated", "block_split", "block_scores", "before_blocks", "after_blocks")
_redispatch = getattr(torch.overrides, "redispatch_function", None)


def find_blocks(model: nn.Module) -> tuple[str | None, list[nn.Module], list[str]]:
    """The blocks' container name (the first, when encoder and decoder hold blocks of one class), the blocks in
    the model's order, and notes on other repeated groups left outside them.

    The blocks are the children (modules with layers of their own) of ModuleLists/Sequentials of the one class
    that is repeated (at least twice) and holds the most parameters in all: T5's first block, which alone holds the relative position bias, is a
    block like the others, and its encoder's and decoder's blocks are one pipeline."""
    by_class: dict[type, list[tuple[str, nn.Module]]] = {}
    seen: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, (nn.ModuleList, nn.Sequential)):
            for child_name, child in module.named_children():
                # a block is made of layers: a leaf (a Linear of an MLP) is a layer, not a block
                if (
                    id(child) not in seen
                    and next(child.children(), None) is not None
                    and next(child.parameters(), None) is not None
                ):
                    seen.add(id(child))
                    by_class.setdefault(type(child), []).append((f"{name}.{child_name}" if name else child_name, child))
    groups = [
        (sum(p.numel() for _, m in members for p in m.parameters()), kind, members)
        for kind, members in by_class.items()
        if len(members) >= 2
    ]
    if not groups:
        return None, [], []
    groups.sort(key=lambda group: group[0], reverse=True)
    _, _, chosen = groups[0]
    inside = {id(module) for _, block in chosen for module in block.modules()}
    notes = [
        f"also repeated: {len(members)} x {kind.__name__} ({members[0][0].rpartition('.')[0] or 'the model'}), "
        "planned outside the blocks"
        for _, kind, members in groups[1:]
        if id(members[0][1]) not in inside
    ]
    return chosen[0][0].rpartition(".")[0] or None, [block for _, block in chosen], notes


def _key(tensor: torch.Tensor) -> int:
    """The storage a tensor lives in (views share it)."""
    return tensor.untyped_storage()._cdata


class _Recorder:
    """The state of one measuring forward: the running block, storage labels, the tally, parameters' uses."""

    def __init__(self, blocks: list[nn.Module], params: Mapping[int, nn.Parameter], excluded: set[int]):
        self.depth = 0  # nesting of block calls
        self.started = False  # a block has run: outside the blocks is now "after"
        self.labels: dict[int, int] = {}
        self.params = params  # storage key -> parameter
        self.excluded = excluded  # storages of parameters and buffers
        self.seen: set[int] = set()
        # what was tallied stays referenced until the end: a storage autograd does not hold (the q a fused
        # attention would keep, where meta's decomposition keeps none) could be freed and its key reused
        self.kept: list[torch.Tensor] = []
        self.tally = {kind: [0, 0] for kind in _KINDS}
        self.in_kernel = 0  # inside attention or dropout: their saves are replaced
        self.float32_rows: set[int] = set()  # flex_attention's per-row statistics: float32 whatever the precision
        self.block_input = SavedBytes()
        self.used = {"before": {}, "after": {}}
        self.shape: dict[str, int | None] = {"hidden": None, "seq_len": None, "heads": None, "kv_heads": None}

    @property
    def in_block(self) -> bool:
        return self.depth > 0

    def _phase(self) -> str:
        return "after" if self.started else "before"

    # block hooks -------------------------------------------------------------------------------------------
    def enter(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self.depth += 1
        if self.depth > 1:
            return
        self.started = True
        tensors = tensors_in((args, kwargs))
        for tensor in tensors:
            self.labels[_key(tensor)] = REPLICATED
        hidden = next((t for t in tensors if t.is_floating_point()), None)
        if hidden is not None:
            self.block_input += SavedBytes(hidden.numel(), 0)
            if self.shape["hidden"] is None and hidden.dim() >= 2:
                self.shape["hidden"] = int(hidden.shape[-1])
                self.shape["seq_len"] = int(hidden.shape[-2]) if hidden.dim() >= 3 else None

    def exit(self, *_: Any) -> None:
        self.depth -= 1

    # saved tensors -----------------------------------------------------------------------------------------
    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.in_kernel:
            self.add(tensor)
        return tensor

    def add(self, tensor: torch.Tensor) -> None:
        key = _key(tensor)
        if key in self.excluded or key in self.seen:
            return
        self.seen.add(key)
        self.kept.append(tensor)
        kind = self._kind(tensor)
        nbytes = tensor.untyped_storage().nbytes()
        if (tensor.is_floating_point() or tensor.is_complex()) and key not in self.float32_rows:
            self.tally[kind][0] += nbytes // tensor.element_size()
        else:
            self.tally[kind][1] += nbytes

    def _kind(self, tensor: torch.Tensor) -> str:
        if not self.in_block:
            return f"{self._phase()}_blocks"
        label = self.labels.get(_key(tensor), REPLICATED)
        if label == SCORES:
            if self.shape["heads"] is None and tensor.dim() == 4:
                self.shape["heads"] = int(tensor.shape[1])
            return "block_scores"
        return "block_split" if label == SPLIT else "block_replicated"

    def dropout(self, tensor: torch.Tensor) -> None:
        """What CUDA's dropout keeps: a boolean mask, one byte per element."""
        if torch.is_grad_enabled() and tensor.requires_grad:
            self.tally[self._kind(tensor)][1] += tensor.numel()

    def attention(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, out: torch.Tensor) -> None:
        """What a fused attention kernel keeps: q, k, v, the output, and a float32 log-sum-exp per query row."""
        if not torch.is_grad_enabled() or not any(t.requires_grad for t in (query, key, value)):
            return
        for tensor in (query, key, value, out):
            self.add(tensor)
        self.tally[self._kind(query)][1] += query.numel() // max(int(query.shape[-1]), 1) * LOGSUMEXP_BYTES
        if self.in_block and self.shape["heads"] is None and query.dim() >= 3:
            self.shape["heads"], self.shape["kv_heads"] = int(query.shape[-3]), int(key.shape[-3])

    # labels -------------------------------------------------------------------------------------------------
    def propagate(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        inputs = tensors_in((args, kwargs))
        weights = [self.params[_key(t)] for t in inputs if _key(t) in self.params]
        if not self.in_block:
            for weight in weights:
                self.used[self._phase()][id(weight)] = weight
            return
        known = [self.labels[_key(t)] for t in inputs if _key(t) not in self.params and _key(t) in self.labels]
        label = max(known) if known else None
        packet = getattr(func, "overloadpacket", func)
        if label is not None and getattr(packet, "__name__", "") in _MATMULS:
            if weights:  # a linear layer: stream -> split (column-parallel), split -> stream (row-parallel)
                label = SPLIT if label == REPLICATED else REPLICATED
            elif SCORES in known:  # probabilities x V
                label = SPLIT
            elif len(known) >= 2 and all(x == SPLIT for x in known):  # q x k^T
                label = SCORES
        for tensor in tensors_in(out):
            if label is None:
                self.labels.pop(_key(tensor), None)
            else:
                self.labels[_key(tensor)] = label

    def result(self, kind: str) -> SavedBytes:
        return SavedBytes(*self.tally[kind])


class _LabelMode(TorchDispatchMode):
    """Labels every op's outputs (see the module docstring)."""

    def __init__(self, recorder: _Recorder):
        super().__init__()
        self.recorder = recorder

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = run_op(func, args, kwargs)
        self.recorder.propagate(func, args, kwargs, out)
        return out


def _hold_flex_statistics(mode: _LabelMode, out: Any) -> None:
    """flex_attention's autograd function saves what its kernels keep (q, k, v, the output, the log-sum-exp and
    the maximum score of each query row, the block mask), so its saves are tallied as they come; the two per-row
    statistics are float32 at any training precision, so they count as fixed bytes."""
    statistics = tensors_in(out[1:])
    mode.recorder.kept.extend(statistics)  # held, so that no later tensor can take their storages' keys
    mode.recorder.float32_rows.update(_key(tensor) for tensor in statistics)


dispatch_through(_LabelMode, (FLEX_ATTENTION,), after=_hold_flex_statistics)


class _KernelMode(TorchFunctionMode):
    """Keeps attention and dropout as the GPU's kernels keep them (see the module docstring)."""

    def __init__(self, recorder: _Recorder):
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention or func is F.dropout:
            self.recorder.in_kernel += 1
            try:
                out = func(*args, **kwargs)
            finally:
                self.recorder.in_kernel -= 1
            if func is F.dropout:
                bound = {**dict(zip(("input", "p", "training"), args)), **kwargs}
                if bound.get("p", 0.5) > 0 and bound.get("training", True):
                    self.recorder.dropout(bound["input"])
            else:
                bound = {**dict(zip(("query", "key", "value"), args)), **kwargs}
                self.recorder.attention(bound["query"], bound["key"], bound["value"], out)
            return out
        # torch.nn.functional's Python functions (multi_head_attention_forward) call attention inside: a mode
        # is off while its handler runs, so redispatch them with it on to see those calls too
        if (
            _redispatch is not None
            and getattr(func, "__module__", None) == "torch.nn.functional"
            and inspect.isfunction(func)
        ):
            with self:
                return _redispatch(func, types, args, kwargs)
        return func(*args, **kwargs)


def _config_shape(model: nn.Module) -> dict[str, int]:
    """Shape figures the model states in its `config` (Hugging Face models carry one)."""
    config = getattr(model, "config", None)
    names = {
        "heads": ("num_attention_heads", "n_head", "num_heads"),
        "kv_heads": ("num_key_value_heads", "n_kv_heads", "num_kv_heads"),
        "hidden": ("hidden_size", "n_embd", "d_model"),
        "vocab": ("vocab_size",),
    }
    shape = {}
    for name, keys in names.items():
        values = [getattr(config, key, None) for key in keys]
        value = next((v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0), None)
        if value is not None:
            shape[name] = value
    return shape


def measure_activations(model: nn.Module, inputs: Any) -> ActivationProfile:
    """Run `model(*inputs)` forward in training mode with grad enabled, and tally what autograd saves.

    `inputs` is a tensor, a tuple/list of positional tensors, a dict of keyword tensors or `CallArgs` of both, on
    the model's device (meta: no memory). The modules' train/eval modes are restored afterwards.
    """
    if not isinstance(model, nn.Module):
        raise UsageError(f"measuring activations needs a torch.nn.Module, got {type(model).__name__}")
    call = CallArgs.of(inputs)
    args, kwargs = call.args, call.kwargs
    container, blocks, notes = find_blocks(model)
    param_list = list(model.parameters())
    params = {_key(p): p for p in param_list}
    recorder = _Recorder(blocks, params, set(params) | {_key(b) for b in model.buffers()})
    _record_training_forward(model, call, recorder, blocks)
    if blocks and not recorder.started:
        notes.append(f"the repeated blocks ({container}) did not run: every activation counts outside them")
    in_blocks, before, after = _parameters_by_place(blocks, param_list, recorder)
    names = {id(module): name for name, module in model.named_modules()}
    first = next(iter(tensors_in((args, kwargs))), None)
    shape = {**recorder.shape, "vocab": None, **_config_shape(model)}
    if shape["heads"] is not None and shape["kv_heads"] is None:
        shape["kv_heads"] = shape["heads"]
    total = SavedBytes()
    for kind in _KINDS:
        total = total + recorder.result(kind)
    return ActivationProfile(
        batch_size=int(first.shape[0]) if first is not None and first.dim() else 1,
        total=total,
        blocks=container if recorder.started else None,
        block_names=tuple(names[id(block)] for block in blocks) if recorder.started else (),
        layers=len(blocks) if recorder.started else 0,
        block_replicated=recorder.result("block_replicated"),
        block_split=recorder.result("block_split"),
        block_scores=recorder.result("block_scores"),
        block_input=recorder.block_input,
        before_blocks=recorder.result("before_blocks"),
        after_blocks=recorder.result("after_blocks"),
        params=sum(p.numel() for p in param_list),
        block_params=sum(p.numel() for p in in_blocks.values()),
        params_before=sum(p.numel() for p in before.values()),
        params_after=sum(p.numel() for p in after.values()),
        notes=tuple(notes),
        **shape,
    )


def _record_training_forward(model: nn.Module, call: CallArgs, recorder: _Recorder, blocks) -> None:
    """One forward in training mode with the recorder's hooks in place; hooks and modes restored whatever happens."""
    modes = {module: module.training for module in model.modules()}
    hooks = [block.register_forward_pre_hook(recorder.enter, with_kwargs=True) for block in blocks]
    hooks += [block.register_forward_hook(recorder.exit, always_call=True) for block in blocks]
    model.train()
    try:
        # a TorchScript module runs as written: its profiling executor would otherwise swap in an optimised graph
        # after the first runs (the count's), which saves other tensors
        with (
            torch.enable_grad(),
            torch.jit.optimized_execution(False),
            runnable_while_counting(),
            _LabelMode(recorder),
            _KernelMode(recorder),
            torch.autograd.graph.saved_tensors_hooks(recorder.pack, lambda tensor: tensor),
        ):
            try:
                call.call(model)
            except (Exception, SystemExit) as error:
                raise ModelRunError(
                    f"the model failed while its activations were measured: {short_error(error)}",
                    "check inputs shapes and dtypes against what the model's forward expects",
                    field="inputs",
                ) from error
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in modes.items():
            module.training = training


def _parameters_by_place(blocks, param_list, recorder: _Recorder):
    """The parameters inside the repeated blocks, and those used before and after them (by id)."""
    in_blocks = {id(p): p for block in blocks for p in block.parameters()}
    before = {k: p for k, p in recorder.used["before"].items() if k not in in_blocks}
    after = {k: p for k, p in recorder.used["after"].items() if k not in in_blocks}
    # weights no op outside the blocks touched still live somewhere: on the first stage
    before.update(
        {id(p): p for p in param_list if id(p) not in in_blocks and id(p) not in before and id(p) not in after}
    )
    return in_blocks, before, after
