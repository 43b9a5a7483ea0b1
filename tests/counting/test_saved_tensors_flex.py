"""flex_attention's activations: its autograd function's own saves, tallied as a fused kernel keeps them."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from flopcalc.counting.saved_tensors import measure_activations
from tests._cli import invoke_json
from tests._models import causal_mask

flex = pytest.importorskip("torch.nn.attention.flex_attention")

SEQ, HEADS, DIM, LAYERS, BATCH = 256, 2, 32, 2, 2


class Attention(nn.Module):
    """q, k, v from one projection, causal attention (flex_attention with a block mask, or fused sdpa), out."""

    def __init__(self, use_flex: bool):
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM, bias=False)
        self.out = nn.Linear(DIM, DIM)
        self.use_flex = use_flex

    def forward(self, x):
        q, k, v = self.qkv(x).unflatten(-1, (3, HEADS, -1)).permute(2, 0, 3, 1, 4)
        if self.use_flex:
            mask = flex.create_block_mask(causal_mask, None, None, SEQ, SEQ, device=x.device)
            y = flex.flex_attention(q, k, v, block_mask=mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).flatten(2))


class Stack(nn.Module):
    def __init__(self, use_flex: bool):
        super().__init__()
        self.layers = nn.ModuleList([Attention(use_flex) for _ in range(LAYERS)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def _measured(use_flex: bool):
    return measure_activations(Stack(use_flex), (torch.randn(BATCH, SEQ, DIM),))


def test_flex_attention_keeps_what_fused_attention_keeps_plus_its_row_maxima_and_mask():
    fused, flexed = _measured(False), _measured(True)
    # the same floating-point tensors: the layers' inputs, q, k, v, the attention output
    assert flexed.total.floating_elements == fused.total.floating_elements
    assert flexed.block_split.floating_elements == fused.block_split.floating_elements
    # fused attention keeps a float32 log-sum-exp per query row; flex keeps it and the row's maximum score,
    # both float32 whatever the training precision, and its block mask's integer tensors
    rows = BATCH * HEADS * SEQ * LAYERS
    assert fused.block_split.fixed_bytes == rows * 4
    mask = flex.create_block_mask(causal_mask, None, None, SEQ, SEQ, device="cpu")
    mask_bytes = sum(t.untyped_storage().nbytes() for t in mask.as_tuple() if isinstance(t, torch.Tensor))
    assert flexed.block_split.fixed_bytes == 2 * rows * 4
    assert flexed.block_replicated.fixed_bytes == LAYERS * mask_bytes


def flex_stack() -> nn.Module:
    """The flex_attention stack, as `plan` loads it from this file."""
    return Stack(True)


def test_plan_measures_a_flex_attention_model_on_the_cpu():
    # torch refuses flex_attention on meta, so plan builds it on the CPU, where torch refuses its backward unless
    # the counter's switch is on while the activations are measured
    plan = invoke_json("plan", f"{__file__}:flex_stack", "--input", f"{BATCH}x{SEQ}x{DIM}", "--gpu", "H100-SXM")
    measured = _measured(True).total  # priced at plan's default bf16: 2 bytes per floating-point element
    assert plan["memory_per_gpu_bytes"]["activations"] == 2 * measured.floating_elements + measured.fixed_bytes


def test_infer_follows_the_bytes_of_a_flex_attention_model():
    # the traffic observer used to ask the higher-order op for an aten overload packet it does not have
    served = invoke_json("infer", f"{__file__}:flex_stack", "--input", f"1x{SEQ}x{DIM}", "--gpu", "H100-SXM")
    attention = [layer for layer in served["layers"] if layer["type"] == "Attention"]
    assert len(attention) == LAYERS
    causal_pairs = HEADS * 3 * 128 * 128  # per head, 3 of the 4 128-blocks of a 256 x 256 causal mask
    for layer in attention:
        # QK^T and PV over the computed pairs, plus the mask built inside forward
        assert layer["flops"] >= 2 * causal_pairs * (DIM // HEADS) * 2
        # q, k and v read and the output written, in bf16
        assert layer["bytes"] >= 4 * SEQ * DIM * 2
