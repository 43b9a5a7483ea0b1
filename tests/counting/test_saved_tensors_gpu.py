"""On a GPU, the memory a forward leaves allocated for its backward is what the meta measure predicts:
the CUDA kernels' own saves (flash attention's q, k, v, output and log-sum-exp; dropout's 1-byte mask) are what
saved_tensors.py stands in for on meta."""

import importlib.util

import pytest

torch = pytest.importorskip("torch")

from flopcalc.counting.saved_tensors import measure_activations  # noqa: E402
from tests.conftest import EXAMPLES  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA (or ROCm) device"),
]


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}_gpu", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name, options, dtype, width",
    [
        # eager attention with dropout (CUDA's 1-byte masks), in bf16
        ("gpt", dict(dim=256, n_layers=4, n_heads=4, seq_len=256, vocab=512, dropout=0.1), torch.bfloat16, 2),
        # scaled_dot_product_attention (a fused kernel), in fp32: llama.py's rotary tables are fp32 and would promote
        # a bf16 q and k
        ("llama", dict(dim=256, n_layers=4, n_heads=4, n_kv_heads=2, ffn_dim=688, vocab=512), torch.float32, 4),
    ],
)
def test_a_cuda_forward_keeps_what_the_meta_measure_predicts(name, options, dtype, width):
    vocab = options["vocab"]
    build = example(name).build
    with torch.device("meta"):
        predicted = measure_activations(build(**options), torch.zeros(8, 256, dtype=torch.long))
    model = build(**options).to("cuda", dtype).train()
    tokens = torch.randint(0, vocab, (8, 256), device="cuda")
    model(tokens).float().sum().backward()  # warm-up: cuBLAS workspaces and the like are allocated now
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    output = model(tokens)
    torch.cuda.synchronize()
    kept = torch.cuda.memory_allocated() - before - output.numel() * output.element_size()
    assert kept == pytest.approx(predicted.total.bytes_at(width), rel=0.05)
