"""Ops models use that were reported unsupported: image features scattered into token embeddings
(masked_scatter), a truth check on a boolean tensor (_is_all_true), complex rotation factors (polar)."""

import torch
import torch.nn as nn

from flopcalc.counting.counter import count
from flopcalc.counting.formulas import flops_of

aten = torch.ops.aten


def _call(op, *args):
    return flops_of(op, args, {}, op(*args))


def test_masked_scatter_moves_data_and_costs_nothing_forward_and_backward():
    embeddings, mask, features = torch.zeros(2, 5, 4), torch.zeros(2, 5, 1, dtype=torch.bool), torch.ones(3, 4)
    mask[0, 1:4] = True
    assert _call(aten.masked_scatter.default, embeddings, mask.expand(2, 5, 4), features) == {}
    assert _call(aten.masked_scatter_backward.default, embeddings, mask.expand(2, 5, 4), [3, 4]) == {}


def test_is_all_true_reads_each_element_once():
    assert _call(aten._is_all_true.default, torch.ones(6, 7, dtype=torch.bool)) == {"reduction": 42}
    assert _call(aten._is_any_true.default, torch.ones(6, 7, dtype=torch.bool)) == {"reduction": 42}


def test_polar_is_a_cosine_a_sine_and_two_products_per_element():
    assert _call(aten.polar.default, torch.ones(8, 1), torch.ones(8, 16)) == {"elementwise": 4 * 8 * 16}


class SpliceImageFeatures(nn.Module):
    """A vision-language model's splice: projected image features into the embeddings at image-token slots."""

    def __init__(self):
        super().__init__()
        self.project = nn.Linear(4, 4, bias=False)

    def forward(self, embeddings, mask, features):
        return embeddings.masked_scatter(mask, self.project(features))


def test_a_model_that_splices_features_has_no_unsupported_op():
    mask = torch.zeros(1, 5, 4, dtype=torch.bool)
    mask[0, :3] = True
    report = count(SpliceImageFeatures(), (torch.zeros(1, 5, 4, requires_grad=True), mask, torch.ones(3, 4)))
    assert not report.unsupported_ops
    assert report.forward_by_category["matmul"] == 2 * 3 * 4 * 4
