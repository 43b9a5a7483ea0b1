"""A 2:4 semi-structured weight counted where no GPU is: torch makes one only on CUDA, so the test builds the
tensor from its parts (the CUTLASS packing of a real 2:4 matrix, moved to meta) and counts on meta, where
the subclass's matmuls have shape kernels. Its kernel runs half the dense products; torch's own counter
prices it at the dense shape, twice that."""

import warnings

import pytest

torch = pytest.importorskip("torch")

semi = pytest.importorskip("torch.sparse._semi_structured_conversions")
SparseSemiStructuredTensorCUTLASS = getattr(torch.sparse, "SparseSemiStructuredTensorCUTLASS", None)
pytestmark = pytest.mark.skipif(SparseSemiStructuredTensorCUTLASS is None, reason="torch without 2:4 tensors")


def _semi_structured_linear_on_meta(features: int) -> torch.nn.Linear:
    dense = torch.randn(features, features, dtype=torch.half)
    dense.view(features, -1, 4)[..., :2] = 0  # two zeros in every four along the input dimension
    packed, metadata = semi.sparse_semi_structured_from_dense_cutlass(dense)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch says the 2:4 API is a prototype
        weight = SparseSemiStructuredTensorCUTLASS(
            dense.shape,
            packed=packed.to("meta"),
            meta=metadata.to("meta"),
            packed_t=None,
            meta_t=None,
            compressed_swizzled_bitmask=None,
        )
    linear = torch.nn.Linear(features, features, bias=False, device="meta", dtype=torch.half)
    linear.weight = torch.nn.Parameter(weight, requires_grad=False)
    return linear


def test_a_2_4_linear_counts_half_the_dense_products_where_torch_counts_them_all():
    from torch.utils.flop_counter import FlopCounterMode

    from flopcalc.counting.counter import count

    batch, features = 32, 128
    linear = _semi_structured_linear_on_meta(features)
    x = torch.empty(batch, features, dtype=torch.half, device="meta")
    report = count(linear, x, backward=False)
    assert report.forward_by_category["matmul"] == 2 * batch * features * features // 2
    with FlopCounterMode(display=False) as torch_counter:
        linear(x)
    assert torch_counter.get_total_flops() == 2 * batch * features * features  # the dense shape: twice the work
    assert report.forward * 2 == torch_counter.get_total_flops()


def test_a_2_4_weight_on_meta_is_described_by_its_layout():
    from flopcalc.counting.counter import count

    batch, features = 8, 64
    linear = _semi_structured_linear_on_meta(features)
    report = count(linear, torch.empty(batch, features, dtype=torch.half, device="meta"), backward=False, sparsity=True)
    (weight,) = report.sparsity
    assert (weight.layout, weight.pattern, weight.zeros, weight.numel) == (
        "semi_structured",
        "2:4",
        features * features // 2,
        features * features,
    )
    assert report.effective_forward == report.forward == 2 * batch * features * features // 2


def test_a_dense_weight_on_meta_still_cannot_be_read_for_its_zeros():
    from flopcalc.counting.counter import count
    from flopcalc.errors import UsageError

    linear = torch.nn.Linear(8, 8, device="meta")
    with pytest.raises(UsageError, match="meta device"):
        count(linear, torch.empty(2, 8, device="meta"), backward=False, sparsity=True)
