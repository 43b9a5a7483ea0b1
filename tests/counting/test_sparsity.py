"""Sparsity counted from weight values: zeros, N:M patterns, effective FLOPs and sparse-stored weights, each
checked against arithmetic done by hand."""

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from flopcalc.counting.counter import count
from flopcalc.counting.sparsity import nm_pattern, stored_fraction
from flopcalc.errors import UsageError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _pruned_example():
    spec = importlib.util.spec_from_file_location("pruned_example", EXAMPLES / "pruned.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_magnitude_pruned_and_2_4_layers_count_dense_and_effective_exactly():
    """examples/pruned.py, batch 8: Linear(64, 32) 2:4 (1,024 of 2,048 zeros), ReLU, Linear(32, 16) with 384
    of 512 zeros. The input needs no gradient, so the first layer has no input gradient."""
    example = _pruned_example()
    report = count(example.build(), example.example_inputs(), sparsity=True)
    first, second = 2 * 8 * 64 * 32, 2 * 8 * 32 * 16  # 32,768 and 8,192
    assert report.forward == first + 8 * 32 + 8 * 32 + second + 8 * 16  # matmuls, bias, ReLU, matmul, bias
    assert report.effective_forward == first // 2 + 8 * 32 + 8 * 32 + second // 4 + 8 * 16 == 19_072
    # backward: second layer input gradient (zeros skipped) + weight gradient (dense) + bias sum; ReLU; first
    # layer weight gradient and bias sum
    assert report.backward == (second + second + 8 * 16) + 8 * 32 + (first + 8 * 32) == 49_792
    assert report.effective_backward == (second // 4 + second + 8 * 16) + 8 * 32 + (first + 8 * 32) == 43_648
    assert report.layer("0").effective_forward == first // 2 + 8 * 32
    assert report.layer("2").effective_backward == second // 4 + second + 8 * 16
    weights = {w.name: w for w in report.sparsity}
    assert (weights["0.weight"].zeros, weights["0.weight"].numel, weights["0.weight"].pattern) == (1024, 2048, "2:4")
    assert (weights["2.weight"].zeros, weights["2.weight"].pattern) == (384, None)
    assert weights["2.weight"].zero_fraction == 0.75
    assert report.sparse_pattern is None  # not every weight is 2:4


def test_a_model_whose_every_weight_is_2_4_is_2_4():
    model = nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0, 2, 0, 0, 3, 0, 4]] * 4))
    report = count(model, torch.randn(5, 8), sparsity=True)
    assert report.sparse_pattern == "2:4"
    assert (report.forward, report.effective_forward) == (2 * 5 * 8 * 4, 5 * 8 * 4)


def test_convolution_input_gradient_skips_zero_weights_and_weight_gradient_stays_dense():
    """Two convolutions: the second one's input gradient multiplies by its weight, one third of it zero."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Conv2d(4, 6, 3, padding=1, bias=False))
    with torch.no_grad():
        model[1].weight.view(6, -1)[:, ::3] = 0  # 12 of 36 per output channel
    report = count(model, torch.randn(2, 3, 5, 5), sparsity=True)
    conv2 = 2 * (2 * 6 * 5 * 5) * (4 * 9)  # output elements x products each
    assert report.layer("1").forward == conv2
    assert report.layer("1").effective_forward == conv2 * 2 // 3
    assert report.layer("1").backward == 2 * conv2  # input gradient + weight gradient
    assert report.layer("1").effective_backward == conv2 * 2 // 3 + conv2
    assert report.layer("0").effective_forward == report.layer("0").forward  # no zeros there


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ([1, 0, 2, 0, 0, 3, 4, 0], "2:4"),
        ([1, 2, 3, 0, 0, 0, 0, 4], "4:8"),  # first group of 4 has 3 non-zeros
        ([1, 2, 3, 0, 0, 0, 4, 5], None),
    ],
)
def test_nm_pattern_along_the_reduction_dimension(row, pattern):
    assert nm_pattern(torch.tensor([row, row], dtype=torch.float32)) == pattern


def test_nm_pattern_needs_whole_groups():
    assert nm_pattern(torch.zeros(2, 6)) is None  # 6 is not a multiple of 4 or 8
    assert nm_pattern(torch.zeros(2, 4)) == "2:4"
    assert nm_pattern(torch.zeros(4)) is None


def test_convolution_rows_are_flattened_for_the_pattern():
    weight = torch.ones(2, 2, 2, 2)  # reduction dimension 2 x 2 x 2 = 8
    weight.view(2, -1)[:, 1::2] = 0
    assert nm_pattern(weight) == "2:4"


def test_mac_unit_halves_the_effective_figures_too():
    example = _pruned_example()
    report = count(example.build(), example.example_inputs(), sparsity=True).in_unit("mac")
    assert report.layer("0").effective_forward == 8 * 64 * 32 // 2 + 8 * 32


def test_json_carries_effective_figures_only_with_sparsity():
    example = _pruned_example()
    plain = count(example.build(), example.example_inputs()).to_dict()
    assert "sparsity" not in plain and "effective_forward" not in plain["totals"]
    assert "effective_forward" not in plain["layers"][0] and "sparsity" not in plain["options"]
    data = count(example.build(), example.example_inputs(), sparsity=True).to_dict()
    assert data["totals"]["effective_total"] == 19_072 + 43_648
    assert data["layers"][1]["effective_forward"] == 2 * 8 * 64 * 32 // 2 + 8 * 32
    assert data["sparsity"]["weights"][0]["pattern"] == "2:4"
    assert data["options"]["sparsity"] is True


def test_sparsity_on_the_meta_device_is_refused():
    with torch.device("meta"):
        model = nn.Linear(4, 4)
    with pytest.raises(UsageError, match="meta device"):
        count(model, torch.randn(2, 4, device="meta"), sparsity=True)


def test_torch_sparse_coo_matmul_is_counted_at_its_stored_products():
    """torch.sparse.mm runs one multiply-add per stored value and dense column: 2 x nnz x n, in both figures."""
    weight = torch.zeros(8, 16)
    weight[torch.arange(8), torch.arange(8) * 2] = 1.0  # 8 stored values
    weight[0, 1] = 2.0  # 9
    sparse = nn.Parameter(weight.to_sparse(), requires_grad=False)

    class SparseLinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = sparse

        def forward(self, x):
            return torch.sparse.mm(self.weight, x.t())

    report = count(SparseLinear(), torch.randn(4, 16), backward=False, sparsity=True)
    assert report.forward_by_category["matmul"] == 2 * 9 * 4
    assert report.effective_forward == report.forward
    (described,) = report.sparsity
    assert (described.layout, described.zeros, described.numel) == ("sparse_coo", 128 - 9, 128)


def test_a_csr_weight_in_a_linear_is_counted_at_its_stored_products():
    weight = torch.zeros(6, 8)
    weight[:, :3] = 1.0  # 18 stored values
    csr = weight.to_sparse_csr()
    x = torch.randn(5, 8)

    class CsrLinear(nn.Module):
        def forward(self, x):
            return torch.nn.functional.linear(x, csr)

    report = count(CsrLinear(), x, backward=False)
    assert report.forward_by_category["matmul"] == 2 * 5 * 18


def test_stored_fraction_of_layouts():
    dense = torch.eye(4)
    assert stored_fraction(dense) is None
    assert stored_fraction(dense.to_sparse()) == pytest.approx(4 / 16)
    assert stored_fraction(dense.to_sparse_csr()) == pytest.approx(4 / 16)
