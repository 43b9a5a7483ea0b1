"""flex_attention counted as its kernels run it: only the (query block, key block) pairs its block mask computes.

The block mask is read from the call itself (the higher-order op's block-mask tuple), so the figure is that of
the blocks the kernel visits, not of the full square. torch 2.13's Python entry refuses flex_attention's backward
on the CPU (a check of the inputs' requires_grad: the higher-order op's eager implementation runs both ways
there) and compiles the call with dynamo, which refuses a dispatch mode; `runnable_while_counting` sets both
aside for the length of a count, so a model using it counts forward and backward on the CPU.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

import torch

FLEX_ATTENTION = getattr(torch.ops.higher_order, "flex_attention", None)
FLEX_ATTENTION_BACKWARD = getattr(torch.ops.higher_order, "flex_attention_backward", None)


def dispatch_through(mode_type: type, hops: Sequence[Any], after: Callable[[Any, Any], None] | None = None) -> None:
    """Let `mode_type` see each higher-order op of `hops` (None: absent from this torch) like any op: such an op
    reaches a dispatch mode only through a rule registered for the mode's type (torch pops the mode while the rule
    runs), which here hands the call to the mode's `__torch_dispatch__`; `after(mode, out)` then sees its
    outputs."""

    def rule_for(hop: Any) -> Callable[..., Any]:
        def rule(mode: Any, *args: Any, **kwargs: Any) -> Any:
            out = mode.__torch_dispatch__(hop, (), args, kwargs)
            if after is not None:
                after(mode, out)
            return out

        return rule

    for hop in hops:
        if hop is not None:
            hop.py_impl(mode_type)(rule_for(hop))


def _flex_entry() -> ModuleType | None:
    """torch's Python entry of flex_attention (imported here, a few milliseconds: a model that imports it only
    inside its forward is covered too); None in a torch without it."""
    try:
        return importlib.import_module("torch.nn.attention.flex_attention")
    except ImportError:
        return None


# Where the flattened BlockMask.as_tuple() keeps what the count reads (torch 2.13): the partial and full key
# blocks of each query block, and the block sizes.
_KV_NUM_BLOCKS, _KV_INDICES, _FULL_KV_NUM_BLOCKS, _FULL_KV_INDICES = 2, 3, 4, 5
_BLOCK_SIZE_Q, _BLOCK_SIZE_KV = 14, 15


def computed_pairs(block_mask: Sequence[Any], len_q: int, len_k: int, batch: int, heads: int) -> int:
    """Query-key pairs in the blocks the kernel computes, over every batch and head: for each query block its
    partial (`kv_num_blocks`) and full (`full_kv_num_blocks`) key blocks, each block clipped at the sequence
    ends. A mask made for one batch or one head (size 1 there) applies to all of them."""
    if len(block_mask) <= _BLOCK_SIZE_KV:
        raise NotImplementedError(f"a block mask of {len(block_mask)} fields (torch's layout has changed)")
    block_q, block_k = int(block_mask[_BLOCK_SIZE_Q]), int(block_mask[_BLOCK_SIZE_KV])
    lists = [
        (block_mask[count].tolist(), block_mask[indices].tolist())
        for count, indices in ((_KV_NUM_BLOCKS, _KV_INDICES), (_FULL_KV_NUM_BLOCKS, _FULL_KV_INDICES))
        if block_mask[count] is not None
    ]
    mask_batch, mask_heads = block_mask[_KV_NUM_BLOCKS].shape[:2]
    pairs = 0
    for counts, indices in lists:
        for b in range(mask_batch):
            for h in range(mask_heads):
                for i, (used, row) in enumerate(zip(counts[b][h], indices[b][h])):
                    rows = max(0, min(block_q, len_q - i * block_q))
                    pairs += rows * sum(max(0, min(block_k, len_k - j * block_k)) for j in row[:used])
    return pairs * (batch // mask_batch) * (heads // mask_heads)


@contextlib.contextmanager
def runnable_while_counting() -> Iterator[None]:
    """flex_attention's Python entry made to run under the counter's modes on the CPU with gradients (see the
    module docstring); every other check of the entry stays. Restored after, whatever happens. A torch without
    these switches is left as it is."""
    module = _flex_entry()
    if (
        module is None
        or not hasattr(module, "_validate_device")
        or not hasattr(module, "_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG")
    ):
        yield
        return
    check_device, compile_off = module._validate_device, module._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG

    def device_checked_without_gradients(query, key, value) -> None:
        check_device(query.detach(), key.detach(), value.detach())

    module._validate_device = device_checked_without_gradients
    module._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = True
    try:
        yield
    finally:
        module._validate_device = check_device
        module._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = compile_off
