"""The counter on real torch.nn building blocks: the same figures on meta and CPU, and exact arithmetic."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from flopcalc.counting.counter import count

DEVICES = ["meta", "cpu"]


def _count_on(device, build, make_inputs, *, train=True, **options):
    torch.manual_seed(0)
    with torch.device(device):
        model = build()
        inputs = make_inputs()
    model.train(train)
    return count(model, inputs, **options)


def _same_on_meta_and_cpu(build, make_inputs, **options):
    """Both reports, after checking every per-layer, per-category figure agrees across devices."""
    meta, cpu = (_count_on(d, build, make_inputs, **options) for d in DEVICES)
    assert [layer.to_dict() for layer in meta.layers] == [layer.to_dict() for layer in cpu.layers]
    assert meta.unsupported_ops == cpu.unsupported_ops
    return meta


class SelfAttention(nn.Module):
    def __init__(self, dim=16, heads=4, need_weights=False):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x):
        return self.attn(x, x, x, need_weights=self.need_weights)[0]


B, L, D, HEADS = 2, 5, 16, 4


def _tokens():
    return torch.randn(B, L, D)


def test_multihead_attention_counts_its_sdpa_as_attention_on_every_device():
    """F.multi_head_attention_forward calls SDPA from inside a torch function: the scope must still see it."""
    report = _same_on_meta_and_cpu(SelfAttention, _tokens)
    assert report.forward_by_category["matmul"] == 2 * B * L * D * 3 * D + 2 * B * L * D * D  # in and out projections
    assert report.forward_by_category["attention"] == 2 * B * HEADS * L * L * (D // HEADS) * 2
    assert report.backward_by_category["attention"] == 2 * report.forward_by_category["attention"]
    assert not report.unsupported_ops


@pytest.mark.parametrize("train", [True, False])
def test_transformer_encoder_layer_same_on_meta_and_cpu_even_where_a_fast_path_exists(train):
    """In eval mode without grad, nn.TransformerEncoderLayer has a fused CPU fast path; counting must not take it
    (or must count it the same)."""
    report = _same_on_meta_and_cpu(
        lambda: nn.TransformerEncoderLayer(D, HEADS, 32, batch_first=True), _tokens, train=train, backward=train
    )
    assert report.forward_by_category["attention"] == 2 * B * HEADS * L * L * (D // HEADS) * 2
    assert report.forward_by_category["matmul"] == 2 * B * L * (3 * D * D + D * D + D * 32 + 32 * D)
    assert not report.unsupported_ops
