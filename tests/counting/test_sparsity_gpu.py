"""2:4 semi-structured weights (torch.sparse.to_sparse_semi_structured): CUDA only in torch (its CPU build
refuses to make one), so this runs where a GPU is. A semi-structured linear does half the dense products and
is counted so, where torch's own counter takes its dense shape: twice its work."""

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _semi_structured_linear(features: int):
    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("2:4 sparse tensor cores need sm80 or newer")
    from torch.sparse import to_sparse_semi_structured

    linear = torch.nn.Linear(features, features, bias=False).half().cuda()
    with torch.no_grad():
        linear.weight.view(features, -1, 4)[..., :2] = 0  # 2:4 along the input dimension
    linear.weight = torch.nn.Parameter(to_sparse_semi_structured(linear.weight), requires_grad=False)
    return linear


def test_a_2_4_semi_structured_linear_counts_half_the_dense_products():
    from flopcalc.counting.counter import count

    batch, features = 32, 128
    linear = _semi_structured_linear(features)
    x = torch.randn(batch, features, device="cuda", dtype=torch.half)
    report = count(linear, x, backward=False, sparsity=True)
    assert report.forward_by_category["matmul"] == 2 * batch * features * features // 2
    assert report.effective_forward == report.forward
    (weight,) = report.sparsity
    assert (weight.layout, weight.pattern, weight.zeros) == ("semi_structured", "2:4", features * features // 2)
