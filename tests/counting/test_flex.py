"""flex_attention with a block mask: only the computed blocks are counted, forward and backward, on the CPU."""

import sys

import pytest
import torch
from torch import nn

from flopcalc.counting.counter import count
from flopcalc.counting.flex import computed_pairs, runnable_while_counting
from tests._models import causal_mask

flex = pytest.importorskip("torch.nn.attention.flex_attention")

SEQ, BLOCK, HEADS, DIM = 1024, 128, 2, 16


def _window_256(b, h, q, kv):
    return (q >= kv) & (q - kv < 256)


class FlexAttention(nn.Module):
    """q, k, v from one projection (so they need gradients), then flex_attention with the given mask."""

    def __init__(self, mask_mod=None):
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM, bias=False)
        self.mask_mod = mask_mod

    def forward(self, x):
        q, k, v = self.qkv(x).unflatten(-1, (3, HEADS, -1)).permute(2, 0, 3, 1, 4)
        block_mask = None
        if self.mask_mod is not None:
            block_mask = flex.create_block_mask(self.mask_mod, None, None, SEQ, SEQ, device=x.device)
        return flex.flex_attention(q, k, v, block_mask=block_mask)


def _attention_flops(pairs: int, head_dim: int = DIM // HEADS) -> int:
    """QK^T and PV over `pairs` query-key pairs (per head pairs x heads): 2 * pairs * (E + Ev)."""
    return 2 * pairs * (head_dim + head_dim)


def test_a_causal_block_mask_computes_36_of_64_blocks():
    # 8 query blocks of 128: query block i sees key blocks 0..i, 1 + 2 + ... + 8 = 36 of 8 x 8 = 64
    mask = flex.create_block_mask(causal_mask, None, None, SEQ, SEQ, device="cpu")
    assert computed_pairs(mask.as_tuple(), SEQ, SEQ, batch=1, heads=1) == 36 * BLOCK * BLOCK
    # a mask made for one batch and one head applies to each: 2 x 3 of them
    assert computed_pairs(mask.as_tuple(), SEQ, SEQ, batch=2, heads=3) == 6 * 36 * BLOCK * BLOCK


def test_a_sliding_window_mask_computes_its_band_of_blocks():
    # window 256 = 2 blocks: query block i (i >= 2) sees key blocks i-2 (partly), i-1 (wholly), i (the
    # diagonal); blocks 0 and 1 see 1 and 2: 1 + 2 + 6 x 3 = 21 blocks
    mask = flex.create_block_mask(_window_256, None, None, SEQ, SEQ, device="cpu")
    assert computed_pairs(mask.as_tuple(), SEQ, SEQ, batch=1, heads=1) == 21 * BLOCK * BLOCK


def test_a_mask_per_batch_element_and_a_sequence_that_ends_mid_block():
    # element 0 causal (36 blocks), element 1 everything (64): one mask per element, not broadcast
    per_batch = flex.create_block_mask(lambda b, h, q, kv: (q >= kv) | (b == 1), 2, None, SEQ, SEQ, device="cpu")
    assert computed_pairs(per_batch.as_tuple(), SEQ, SEQ, batch=2, heads=2) == 2 * (36 + 64) * BLOCK * BLOCK
    # 200 tokens: query block 0 (128 rows) sees key block 0; query block 1 (the last 72 rows) sees key block 0
    # (128 columns) and key block 1 (the last 72)
    short = flex.create_block_mask(causal_mask, None, None, 200, 200, device="cpu")
    assert computed_pairs(short.as_tuple(), 200, 200, batch=1, heads=1) == 128 * 128 + 72 * (128 + 72)


@pytest.mark.parametrize(("mask_mod", "blocks"), [(causal_mask, 36), (_window_256, 21), (None, 64)])
def test_flex_attention_counts_the_computed_blocks_forward_and_backward(mask_mod, blocks):
    x = torch.randn(1, SEQ, DIM)
    report = count(FlexAttention(mask_mod), x, strict=True)
    pairs = HEADS * blocks * BLOCK * BLOCK
    assert report.forward_by_category["attention"] == _attention_flops(pairs)
    # dQ, dK, dV and dP: twice the forward, as for scaled_dot_product_attention (docs/formulas.md)
    assert report.backward_by_category["attention"] == 2 * _attention_flops(pairs)
    assert report.forward_by_category["matmul"] == 2 * SEQ * DIM * 3 * DIM
    assert any(f"{pairs:,} of {HEADS * SEQ * SEQ:,} query-key pairs" in note for note in report.notes)


def test_without_a_block_mask_flex_attention_is_the_dense_square_torch_counts():
    """torch's FlopCounterMode counts flex_attention (in a compiled graph) as the dense square whatever the mask:
    its formulas, read from its registry, agree with ours for the full mask."""
    from torch.utils.flop_counter import flop_registry

    q = torch.randn(1, HEADS, SEQ, DIM // HEADS)
    torch_forward = flop_registry[torch.ops.higher_order.flex_attention](q, q, q, out_val=None)
    torch_backward = flop_registry[torch.ops.higher_order.flex_attention_backward](q, q, q, q, None, q, out_val=None)
    report = count(FlexAttention(), torch.randn(1, SEQ, DIM), strict=True)
    assert report.forward_by_category["attention"] == torch_forward == _attention_flops(HEADS * SEQ * SEQ)
    # torch's backward also recomputes QK^T (the flash kernels' 2.5x); model FLOPs leave that out (2x)
    recomputed_scores = 2 * HEADS * SEQ * SEQ * (DIM // HEADS)
    assert report.backward_by_category["attention"] == torch_backward - recomputed_scores


def test_torchs_entry_is_restored_after_a_count():
    module = sys.modules["torch.nn.attention.flex_attention"]
    check, compile_off = module._validate_device, module._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG
    count(FlexAttention(causal_mask), torch.randn(1, SEQ, DIM))
    assert module._validate_device is check
    assert module._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG is compile_off
    with pytest.raises(NotImplementedError, match="backward on CPU"):  # torch's own refusal is back
        FlexAttention()(torch.randn(1, SEQ, DIM))


def test_while_counting_flex_attention_runs_its_backward_on_the_cpu():
    model = FlexAttention(causal_mask)
    with runnable_while_counting():
        model(torch.randn(1, SEQ, DIM)).sum().backward()
    assert model.qkv.weight.grad is not None and model.qkv.weight.grad.abs().sum() > 0


def test_grouped_query_flex_attention_counts_the_query_heads():
    """4 query heads over 2 key/value heads (enable_gqa): each query head computes its own blocks, as sdpa's
    grouped-query rule (256 tokens, causal: 3 of 4 blocks)."""

    class GroupedQuery(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.kv = nn.Linear(64, 64, bias=False), nn.Linear(64, 32, bias=False)

        def forward(self, x):
            q = self.q(x).unflatten(-1, (4, 16)).transpose(1, 2)
            k, v = self.kv(x).unflatten(-1, (2, 2, 8)).repeat_interleave(2, -1).permute(2, 0, 3, 1, 4)
            mask = flex.create_block_mask(causal_mask, None, None, 256, 256, device=x.device)
            return flex.flex_attention(q, k, v, block_mask=mask, enable_gqa=True)

    report = count(GroupedQuery(), torch.randn(1, 256, 64), strict=True)
    assert report.forward_by_category["attention"] == 2 * 4 * 3 * BLOCK * BLOCK * (16 + 16)
    assert report.backward_by_category["attention"] == 2 * report.forward_by_category["attention"]
