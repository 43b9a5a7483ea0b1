"""The ONNX op table: translations onto the aten formulas, checked against torch's own counts."""

import pytest
import torch
from torch import nn

from flopcalc.counting import formulas
from flopcalc.counting.counter import count
from flopcalc.counting.formulas_onnx import ONNX_FORMULAS, ZERO_COST_OPS, OnnxNode, flops_of_node


def node(op_type, inputs, outputs, causal_half=False, **attrs):
    size = lambda shape: None if shape is None else torch.Size(shape)  # noqa: E731
    return OnnxNode(op_type, tuple(map(size, inputs)), tuple(map(size, outputs)), attrs, causal_half)


def test_no_op_is_both_costed_and_free():
    assert not set(ONNX_FORMULAS) & ZERO_COST_OPS
    assert flops_of_node("Reshape", node("Reshape", [(2, 3), (2,)], [(3, 2)])) == {}
    assert flops_of_node("Loop", node("Loop", [], [])) is None


@pytest.mark.parametrize(
    "a, b",
    [
        ((8, 16), (16, 4)),
        ((2, 5, 16), (16, 4)),
        ((3, 1, 5, 16), (2, 16, 4)),
        ((16,), (16, 4)),
        ((5, 16), (16,)),
        ((16,), (16,)),
    ],
)
def test_matmul_broadcasting_matches_torch(a, b):
    x, y = torch.randn(a), torch.randn(b)
    out = torch.matmul(x, y)

    class MatMul(nn.Module):
        def forward(self, p, q):
            return p @ q

    expected = count(MatMul(), (x, y), backward=False).forward
    assert flops_of_node("MatMul", node("MatMul", [a, b], [tuple(out.shape)])) == {"matmul": expected}


def test_gemm_transposes_and_bias_as_addmm():
    gemm = node("Gemm", [(16, 8), (4, 16), (4,)], [(8, 4)], transA=1, transB=1)
    assert flops_of_node("Gemm", gemm) == {"matmul": 2 * 8 * 16 * 4, "elementwise": 8 * 4}
    assert flops_of_node("Gemm", node("Gemm", [(8, 16), (16, 4)], [(8, 4)])) == {"matmul": 2 * 8 * 16 * 4}


def test_conv_and_conv_transpose_match_the_aten_formula():
    x, w, out = (2, 8, 10, 10), (16, 4, 3, 3), (2, 16, 8, 8)  # groups = 2
    assert flops_of_node("Conv", node("Conv", [x, w], [out])) == {"conv": 2 * 2 * 16 * 8 * 8 * 4 * 9}
    transposed = node("ConvTranspose", [(2, 6, 5, 5), (6, 4, 4, 4), (4,)], [(2, 4, 10, 10)])
    assert flops_of_node("ConvTranspose", transposed) == {"conv": 2 * 2 * 6 * 25 * 4 * 16, "elementwise": 2 * 4 * 100}


def test_standard_attention_in_both_layouts_and_causal_half():
    batch, heads, kv_heads, seq, dim = 2, 8, 2, 10, 16
    four_d = node(
        "Attention",
        [(batch, heads, seq, dim), (batch, kv_heads, seq, dim), (batch, kv_heads, seq, dim)],
        [(batch, heads, seq, dim)],
    )
    three_d = node(
        "Attention",
        [(batch, seq, heads * dim), (batch, seq, kv_heads * dim), (batch, seq, kv_heads * dim)],
        [(batch, seq, heads * dim)],
        q_num_heads=heads,
        kv_num_heads=kv_heads,
    )
    expected = formulas.attention_forward_flops(batch, heads, seq, seq, dim, dim)
    assert flops_of_node("Attention", four_d) == flops_of_node("Attention", three_d) == {"attention": expected}
    causal = node("Attention", four_d.inputs, four_d.outputs, causal_half=True, is_causal=1)
    assert flops_of_node("Attention", causal) == {"attention": expected * (seq * (seq + 1) // 2) // (seq * seq)}


def test_contrib_attention_counts_its_fused_projection():
    batch, seq, hidden, heads = 2, 6, 32, 4
    fused = node(
        "Attention",
        [(batch, seq, hidden), (hidden, 3 * hidden), (3 * hidden,)],
        [(batch, seq, hidden)],
        num_heads=heads,
    )
    assert flops_of_node("com.microsoft.Attention", fused) == {
        "matmul": 2 * batch * seq * hidden * 3 * hidden,
        "elementwise": batch * seq * 3 * hidden,
        "attention": formulas.attention_forward_flops(batch, heads, seq, seq, hidden // heads, hidden // heads),
    }


@pytest.mark.parametrize(
    "equation, shapes",
    [
        ("bld,bsd->bls", [(2, 5, 8), (2, 7, 8)]),
        ("ij,jk", [(4, 6), (6, 3)]),
        ("bhld,hde->bhle", [(2, 3, 5, 4), (3, 4, 6)]),
    ],
)
def test_einsum_matches_torch(equation, shapes):
    operands = [torch.randn(s) for s in shapes]
    out = torch.einsum(equation, *operands)

    class Einsum(nn.Module):
        def forward(self, *xs):
            return torch.einsum(equation, *xs)

    expected = count(Einsum(), tuple(operands), backward=False).forward_by_category["matmul"]
    result = flops_of_node("Einsum", node("Einsum", shapes, [tuple(out.shape)], equation=equation))
    assert result == {"matmul": expected}


def test_norms_activations_and_pools_delegate_to_the_aten_constants():
    x = (2, 5, 16)
    assert flops_of_node("LayerNormalization", node("LayerNormalization", [x, (16,), (16,)], [x])) == {
        "norm": formulas.layer_norm_flops(x, (16,), (16,), (16,))
    }
    assert flops_of_node("Softmax", node("Softmax", [x], [x])) == {"activation": formulas.softmax_flops(x)}
    assert flops_of_node("Gelu", node("Gelu", [x], [x])) == {"activation": 2 * 5 * 16}
    image, pooled = (2, 4, 8, 8), (2, 4, 4, 4)
    assert flops_of_node("MaxPool", node("MaxPool", [image], [pooled], kernel_shape=[2, 2])) == {"pool": 2 * 4 * 16 * 4}
    assert flops_of_node("Sum", node("Sum", [x, x, x], [x])) == {"elementwise": 2 * 2 * 5 * 16}
    with pytest.raises(NotImplementedError):
        flops_of_node("Resize", node("Resize", [image], [image], mode="linear"))
