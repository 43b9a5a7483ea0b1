"""GPU path of the grouped GEMMs: torch's CUDA kernel (bf16, sm80+) counts what the meta shapes count."""

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA (or ROCm) device"),
]


class _Experts(torch.nn.Module):
    def __init__(self, experts, k, n, device, dtype):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(experts, k, n, device=device, dtype=dtype))

    def forward(self, x, offsets):
        return torch._grouped_mm(x, self.weight, offsets)


def test_cuda_grouped_mm_counts_as_on_meta():
    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("torch's grouped GEMM kernel needs sm80 or newer")
    from flopcalc.counting.counter import count

    tokens, experts, k, n = 16, 4, 64, 32
    reports = {}
    for device, dtype in (("cuda", torch.bfloat16), ("meta", torch.float32)):
        x = torch.randn(tokens, k, device=device, dtype=dtype, requires_grad=True)
        offsets = torch.tensor([4, 6, 12, 16], dtype=torch.int32, device=device)
        reports[device] = count(_Experts(experts, k, n, device, dtype), {"x": x, "offsets": offsets})
    assert reports["cuda"].device.startswith("cuda") and not reports["cuda"].unsupported_ops
    assert (
        reports["cuda"].forward_by_category["matmul"]
        == reports["meta"].forward_by_category["matmul"]
        == 2 * tokens * k * n
    )
    assert reports["cuda"].backward_by_category["matmul"] == reports["meta"].backward_by_category["matmul"]
