"""FLOP formulas for ONNX nodes, keyed by op type. Each one delegates to the aten formula in formulas.py.

The shape functions and per-element constants live once, in formulas.py; this table only translates an
ONNX node (its input/output shapes and attributes) into the arguments those functions take, so an ONNX
Conv and a PyTorch conv of the same shapes get the same figure by construction. Keys are the op type for
the default domain ("MatMul") and `domain.op_type` for others ("com.microsoft.Attention"). Ops in
ZERO_COST_OPS move or describe data; an op in neither table has no formula and is reported unsupported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from . import formulas
from .formulas import FlopResult
from .report import CATEGORIES

Shape = torch.Size


@dataclass(frozen=True)
class OnnxNode:
    """What a formula sees of one node: shapes as torch.Size (None for an absent optional input), attributes."""

    op_type: str
    inputs: tuple[Shape | None, ...]
    outputs: tuple[Shape | None, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    causal_half: bool = False  # count causal attention over the kept query-key pairs only

    def input(self, index: int) -> Shape | None:
        return self.inputs[index] if index < len(self.inputs) else None

    @property
    def out(self) -> Shape:
        return self.outputs[0]


@dataclass(frozen=True)
class OnnxFormula:
    key: str
    category: str
    fn: Callable[[OnnxNode], FlopResult]


ONNX_FORMULAS: dict[str, OnnxFormula] = {}


def op_key(op_type: str, domain: str = "") -> str:
    """The table key of a node: `MatMul` in the default domain, `com.microsoft.Attention` elsewhere."""
    return op_type if domain in ("", "ai.onnx") else f"{domain}.{op_type}"


def onnx_op(
    *keys: str, category: str
) -> Callable[[Callable[[OnnxNode], FlopResult]], Callable[[OnnxNode], FlopResult]]:
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")

    def decorate(fn: Callable[[OnnxNode], FlopResult]) -> Callable[[OnnxNode], FlopResult]:
        for key in keys:
            if key in ONNX_FORMULAS:
                raise ValueError(f"a formula for ONNX {key} is already registered")
            ONNX_FORMULAS[key] = OnnxFormula(key, category, fn)
        return fn

    return decorate


def flops_of_node(key: str, node: OnnxNode) -> dict[str, int] | None:
    """FLOPs of one node by category, `{}` for a zero-cost op, None when no formula covers it."""
    if key in ZERO_COST_OPS:
        return {}
    formula = ONNX_FORMULAS.get(key)
    if formula is None:
        return None
    result = formula.fn(node)
    if isinstance(result, Mapping):
        return {category: int(value) for category, value in result.items() if value}
    return {formula.category: int(result)} if result else {}


def _numel(shape: Sequence[int] | None) -> int:
    return math.prod(shape) if shape is not None else 0


# --------------------------------------------------------------------------------------------- matmul


@onnx_op("MatMul", "MatMulInteger", "com.microsoft.MatMulInteger16", category="matmul")
def matmul_flops(node: OnnxNode) -> int:
    """numpy matmul: 1-D operands are promoted, batch dims broadcast; then a batched [m,k] @ [k,n]."""
    a, b = node.inputs[0], node.inputs[1]
    if len(a) == 1 and len(b) == 1:
        return formulas.dot_flops(a, b)
    a = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    batch = math.prod(torch.broadcast_shapes(torch.Size(a[:-2]), torch.Size(b[:-2])))
    (m, k), n = a[-2:], b[-1]
    return formulas.bmm_flops((batch, m, k), (batch, k, n))


@onnx_op("Gemm", category="matmul")
def gemm_flops(node: OnnxNode) -> FlopResult:
    """alpha * A' @ B' + beta * C, as addmm: the matmul plus one add per output element for C."""
    a, b, c = node.inputs[0], node.inputs[1], node.input(2)
    a = tuple(reversed(a)) if node.attrs.get("transA", 0) else tuple(a)
    b = tuple(reversed(b)) if node.attrs.get("transB", 0) else tuple(b)
    if c is None:
        return formulas.mm_flops(a, b)
    return formulas.addmm_flops(c, a, b, out=node.out)


# ----------------------------------------------------------------------------------------- convolution


def _conv(node: OnnxNode, transposed: bool) -> FlopResult:
    x, w, bias = node.inputs[0], node.inputs[1], node.input(2)
    return formulas.convolution_flops(x, w, bias, None, None, None, transposed, out=node.out)


@onnx_op("Conv", "ConvInteger", category="conv")
def conv_flops(node: OnnxNode) -> FlopResult:
    return _conv(node, transposed=False)


@onnx_op("ConvTranspose", category="conv")
def conv_transpose_flops(node: OnnxNode) -> FlopResult:
    """ONNX keeps the transposed-conv weight as [Cin, Cout/groups, *k], the layout formulas.py reads."""
    return _conv(node, transposed=True)


# ------------------------------------------------------------------------------------------- attention


def _attention(
    node: OnnxNode, batch: int, heads: int, len_q: int, len_k: int, dim_qk: int, dim_v: int, causal: bool
) -> int:
    flops = formulas.attention_forward_flops(batch, heads, len_q, len_k, dim_qk, dim_v)
    if causal and node.causal_half:
        flops = flops * formulas.causal_pairs(len_q, len_k) // (len_q * len_k)
    return flops


@onnx_op("Attention", category="attention")
def attention_flops(node: OnnxNode) -> int:
    """ONNX Attention (opset 23): Q/K/V as [B, H, L, E], or [B, L, H*E] with q_num_heads/kv_num_heads."""
    q, k, v, past_key = node.inputs[0], node.inputs[1], node.inputs[2], node.input(4)
    if len(q) == 4:
        batch, heads, len_q, dim_qk = q
        len_k, dim_v = k[2], v[3]
    else:
        heads, kv_heads = int(node.attrs["q_num_heads"]), int(node.attrs["kv_num_heads"])
        batch, len_q = q[0], q[1]
        dim_qk, len_k, dim_v = q[2] // heads, k[1], v[2] // kv_heads
    if past_key is not None:
        len_k += past_key[2]
    return _attention(node, batch, heads, len_q, len_k, dim_qk, dim_v, bool(node.attrs.get("is_causal", 0)))


@onnx_op("com.microsoft.Attention", category="attention")
def contrib_attention_flops(node: OnnxNode) -> dict:
    """Fused QKV projection (input [B, S, D] @ weights [D, q+k+v] + bias), then attention over S (+ past)."""
    x, weights, bias, past = node.inputs[0], node.inputs[1], node.input(2), node.input(4)
    batch, seq, hidden = x
    heads = int(node.attrs["num_heads"])
    total = weights[1]
    q_hidden, _, v_hidden = node.attrs.get("qkv_hidden_sizes") or (total // 3,) * 3
    projection = formulas.mm_flops((batch * seq, hidden), (hidden, total))
    len_k = seq + (past[3] if past is not None else 0)
    attention = _attention(
        node, batch, heads, seq, len_k, q_hidden // heads, v_hidden // heads, bool(node.attrs.get("unidirectional", 0))
    )
    return {"matmul": projection, "elementwise": batch * seq * total if bias is not None else 0, "attention": attention}


@onnx_op("com.microsoft.MultiHeadAttention", category="attention")
def multi_head_attention_flops(node: OnnxNode) -> dict:
    """Q [B, L, D] with K/V [B, S, D] or [B, H, S, E], or packed QKV [B, L, H, 3, E]; optional QKV bias."""
    q, k, v, bias, past_key = node.inputs[0], node.input(1), node.input(2), node.input(3), node.input(6)
    heads = int(node.attrs["num_heads"])
    batch, len_q = q[0], q[1]
    if k is None:
        if len(q) != 5:
            raise NotImplementedError("packed KV input: FLOPs need the separate key shape")
        len_k, dim_qk, dim_v = len_q, q[4], q[4]
        projected = _numel(q)
    elif len(k) == 4:
        len_k, dim_qk, dim_v = k[2], k[3], v[3]
        projected = _numel(q)
    else:
        len_k, dim_qk, dim_v = k[1], q[2] // heads, v[2] // heads
        projected = _numel(q) + _numel(k) + _numel(v)
    if past_key is not None:
        len_k += past_key[2]
    attention = _attention(node, batch, heads, len_q, len_k, dim_qk, dim_v, bool(node.attrs.get("unidirectional", 0)))
    return {"attention": attention, "elementwise": projected if bias is not None else 0}


# ------------------------------------------------------------------------------------------------ norms


@onnx_op("BatchNormalization", category="norm")
def batch_norm_flops(node: OnnxNode) -> int:
    x, scale, bias = node.inputs[0], node.inputs[1], node.inputs[2]
    if node.attrs.get("training_mode", 0):
        return formulas.batch_norm_flops(x, scale, bias, True)
    return formulas.batch_norm_inference_flops(x, scale, bias)


@onnx_op("LayerNormalization", category="norm")
def layer_norm_flops(node: OnnxNode) -> int:
    return formulas.layer_norm_flops(node.inputs[0], None, node.inputs[1], node.input(2))


@onnx_op("GroupNormalization", "InstanceNormalization", category="norm")
def group_norm_flops(node: OnnxNode) -> int:
    return formulas.group_norm_flops(node.inputs[0], node.inputs[1], node.input(2))


@onnx_op("RMSNormalization", "SimplifiedLayerNormalization", category="norm")
def rms_norm_flops(node: OnnxNode) -> int:
    return formulas.rms_norm_flops(node.inputs[0], None, node.input(1))


@onnx_op("com.microsoft.SkipLayerNormalization", category="norm")
def skip_layer_norm_flops(node: OnnxNode) -> dict:
    """The residual add (and an optional bias add), then a layer norm."""
    x = node.inputs[0]
    adds = _numel(x) * (1 + int(node.input(4) is not None))
    return {"elementwise": adds, "norm": formulas.layer_norm_flops(x, None, node.inputs[2], node.input(3))}


@onnx_op("com.microsoft.SkipSimplifiedLayerNormalization", category="norm")
def skip_rms_norm_flops(node: OnnxNode) -> dict:
    x = node.inputs[0]
    adds = _numel(x) * (1 + int(node.input(3) is not None))
    return {"elementwise": adds, "norm": formulas.rms_norm_flops(x, None, node.inputs[2])}


# ------------------------------------------------------------------------------------ softmax, activations


@onnx_op("Softmax", "LogSoftmax", category="activation")
def softmax_flops(node: OnnxNode) -> int:
    return formulas.softmax_flops(node.inputs[0])


_ACTIVATION = formulas.formula_for("relu")  # one FLOP per output element, as the aten activations


@onnx_op(
    "Relu",
    "Gelu",
    "Sigmoid",
    "Tanh",
    "LeakyRelu",
    "Elu",
    "Selu",
    "Celu",
    "Softplus",
    "Softsign",
    "HardSigmoid",
    "HardSwish",
    "Mish",
    "PRelu",
    "ThresholdedRelu",
    "Swish",
    "com.microsoft.Gelu",
    "com.microsoft.QuickGelu",
    category=_ACTIVATION.category,
)
def activation_flops(node: OnnxNode) -> int:
    return _ACTIVATION.fn(out=node.out)


@onnx_op("com.microsoft.FastGelu", "com.microsoft.BiasGelu", category=_ACTIVATION.category)
def bias_activation_flops(node: OnnxNode) -> dict:
    """An optional bias add fused in front of the activation."""
    bias_add = formulas.pointwise_flops(node.out) if node.input(1) is not None else 0
    return {_ACTIVATION.category: _ACTIVATION.fn(out=node.out), "elementwise": bias_add}


# ---------------------------------------------------------------------------------------- elementwise


@onnx_op(
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Mod",
    "Sqrt",
    "Exp",
    "Log",
    "Neg",
    "Abs",
    "Reciprocal",
    "Erf",
    "Clip",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "Not",
    "And",
    "Or",
    "Xor",
    "IsNaN",
    "IsInf",
    "BitShift",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
    "BitwiseNot",
    category="elementwise",
)
def elementwise_flops(node: OnnxNode) -> int:
    return formulas.pointwise_flops(node.out)


@onnx_op("Sum", "Max", "Min", "Mean", category="elementwise")
def variadic_elementwise_flops(node: OnnxNode) -> int:
    """n inputs combine with n-1 binary ops per element (Mean adds the division)."""
    operations = max(len([i for i in node.inputs if i is not None]) - 1, 1) + int(node.op_type == "Mean")
    return operations * formulas.pointwise_flops(node.out)


# ------------------------------------------------------------------------------------------------ pooling


@onnx_op("MaxPool", "AveragePool", "LpPool", category="pool")
def pool_flops(node: OnnxNode) -> int:
    return formulas.pool_flops(node.inputs[0], list(node.attrs["kernel_shape"]), out=node.out)


@onnx_op("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", category="pool")
def global_pool_flops(node: OnnxNode) -> int:
    return formulas.adaptive_pool_flops(node.inputs[0], node.out[2:], out=node.out)


# --------------------------------------------------------------------------------------------- reductions


@onnx_op(
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
    "ArgMax",
    "ArgMin",
    "CumSum",
    category="reduction",
)
def reduction_flops(node: OnnxNode) -> int:
    return formulas.reduction_flops(node.inputs[0])


# ---------------------------------------------------------------------------------------------- einsum


@onnx_op("Einsum", category="matmul")
def einsum_flops(node: OnnxNode) -> FlopResult:
    """A two-operand einsum is a batched matmul: batch letters (in both and the output), contracted letters
    (in both, not the output) and each side's free letters. One operand: a reduction, or free (a view)."""
    equation = str(node.attrs["equation"]).replace(" ", "")
    lhs, _, rhs = equation.partition("->")
    operands = lhs.split(",")
    if "." in lhs:
        raise NotImplementedError(f"einsum {equation!r}: ellipses are not supported")
    sizes: dict[str, int] = {}
    for term, shape in zip(operands, node.inputs):
        sizes.update(zip(term, shape))
    if "->" not in equation:  # implicit output: the letters that appear once, in alphabetical order
        rhs = "".join(sorted(letter for letter in sizes if lhs.count(letter) == 1))
    out = set(rhs)
    if len(operands) == 1:
        return {"reduction": formulas.reduction_flops(node.inputs[0])} if set(operands[0]) - out else {}
    if len(operands) != 2:
        raise NotImplementedError(f"einsum {equation!r}: more than two operands")
    a, b = set(operands[0]), set(operands[1])

    def size(letters: set[str]) -> int:
        return math.prod(sizes[letter] for letter in letters)

    batch, contracted = size(a & b & out), size((a & b) - out)
    m, n = size((a - b) & out), size((b - a) & out)
    flops = {"matmul": formulas.bmm_flops((batch, m, contracted), (batch, contracted, n))}
    # a letter only one operand has and the output drops is summed over first, on that operand alone
    alone = [
        shape for letters, other, shape in ((a, b, node.inputs[0]), (b, a, node.inputs[1])) if letters - other - out
    ]
    if alone:
        flops["reduction"] = sum(formulas.reduction_flops(shape) for shape in alone)
    return flops


# ---------------------------------------------------------------------------------------- zero cost


@onnx_op("Resize", "Upsample", category="elementwise")
def resize_flops(node: OnnxNode) -> int:
    """Nearest-neighbour resizing copies (as aten's upsample_nearest); interpolating modes have no formula."""
    mode = node.attrs.get("mode", "nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "nearest":
        raise NotImplementedError(f"Resize mode {mode!r} has no formula")
    return 0


# Data movement, shape arithmetic, casts, constants and random draws: no arithmetic on the values.
# Dropout is the identity in an inference graph.
ZERO_COST_OPS = frozenset(
    {
        "Reshape",
        "Transpose",
        "Gather",
        "GatherElements",
        "GatherND",
        "Concat",
        "Shape",
        "Size",
        "Slice",
        "Split",
        "SplitToSequence",
        "Squeeze",
        "Unsqueeze",
        "Flatten",
        "Identity",
        "Cast",
        "CastLike",
        "Constant",
        "ConstantOfShape",
        "Expand",
        "Tile",
        "Pad",
        "Range",
        "Where",
        "ScatterND",
        "ScatterElements",
        "Scatter",
        "NonZero",
        "OneHot",
        "Trilu",
        "DepthToSpace",
        "SpaceToDepth",
        "Dropout",
        "EyeLike",
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
        "TopK",
        "Compress",
        "ReverseSequence",
        "SequenceConstruct",
        "SequenceAt",
        "SequenceEmpty",
        "ConcatFromSequence",
    }
)
