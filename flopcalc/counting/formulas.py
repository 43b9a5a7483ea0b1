"""The formula registry: one pure function of shapes per aten op, and nothing else.

Every cost flopcalc reports comes from a function here (docs/formulas.md lists them with the reasoning).
A formula receives the op's arguments with every tensor replaced by its shape (`torch.Size`), the output
shape(s) as `out`, and returns FLOPs (1 multiply-add = 2 FLOPs) either as an int, counted in the category
it was registered with, or as a `{category: flops}` mapping when one op does two kinds of work (a matmul
plus a bias add). Ops listed in ZERO_FLOP_OPS or marked as views cost nothing; pointwise ops without a
formula of their own cost one FLOP per output element; anything else has no formula and is reported as
unsupported, never silently zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch.utils._pytree import tree_map

from .report import CATEGORIES

aten = torch.ops.aten

FlopResult = Union[int, Mapping[str, int]]  # noqa: UP007 (a runtime alias: the | form needs 3.10 objects)


@dataclass(frozen=True)
class Formula:
    op: Any  # an OpOverloadPacket, e.g. "mm"
    category: str
    fn: Callable[..., FlopResult]


FORMULAS: dict[Any, Formula] = {}


def _packet(op: Any) -> Any | None:
    """An op given by name ("mm") or object -> its overload packet; None if this torch lacks it."""
    if isinstance(op, str):
        op = getattr(aten, op, None)
    return getattr(op, "overloadpacket", op)


def register(*ops: Any, category: str) -> Callable[[Callable[..., FlopResult]], Callable[..., FlopResult]]:
    """Register `fn` as the formula of `ops` (aten op names or objects). A second formula for an op is a bug.

    Names this torch version lacks are skipped, so one registry serves every supported release."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")

    def decorate(fn: Callable[..., FlopResult]) -> Callable[..., FlopResult]:
        for op in ops:
            packet = _packet(op)
            if packet is None:
                continue
            if packet in FORMULAS:
                raise ValueError(f"a formula for {packet} is already registered ({FORMULAS[packet].fn.__name__})")
            FORMULAS[packet] = Formula(packet, category, fn)
        return fn

    return decorate


def _numel(shape: Any) -> int:
    return math.prod(shape) if shape is not None else 0


def _first_shape(out: Any) -> Any:
    """The shape of an op's (first) output; ops with several outputs pass a tuple of shapes."""
    if isinstance(out, (tuple, list)) and not isinstance(out, torch.Size):
        return out[0] if out else None
    return out


# --------------------------------------------------------------------------------------------- matmul


@register("mm", "_int_mm", category="matmul")
def mm_flops(a, b, *_, out=None, **__) -> int:
    """[m, k] @ [k, n]: m*n*k multiply-adds."""
    m, k = a
    n = b[1]
    return 2 * m * n * k


@register("_scaled_mm", category="matmul")
def scaled_mm_flops(a, b, *_, out=None, **__) -> int:
    """fp8 matmul with scales: the scaling is folded into the epilogue, so only the matmul counts."""
    return mm_flops(a, b)


def _grouped_mm_flops(a, b) -> int:
    """A grouped GEMM (mixture-of-experts experts): each group multiplies its own slice, and the slices tile
    the grouped dimension, so the shapes alone give the sum over the groups of 2 x rows x k x n:

    - a [M, K] @ b [G, K, N] (offsets split M among G experts: the forward): 2*M*K*N;
    - a [K, M] @ b [M, N] (offsets split the contraction M: a weight gradient, out [G, K, N]): 2*K*M*N;
    - a [G, M, K] @ b [K, N] (offsets split N): 2*M*K*N;  a [G, M, K] @ b [G, K, N] (batched): 2*G*M*K*N.

    Rows past the last offset (expert-parallel padding) are skipped by the kernel; on shapes alone they are
    counted: with every token routed they do not exist."""
    if len(a) == 2 and len(b) == 2:
        return 2 * a[0] * a[1] * b[1]
    rows = a[0] if len(a) == 2 else (a[0] * a[1] if len(b) == 3 else a[1])
    return 2 * rows * a[-1] * b[-1]


@register("_grouped_mm", category="matmul")
def grouped_mm_flops(a, b, *_, out=None, **__) -> int:
    return _grouped_mm_flops(a, b)


@register("_scaled_grouped_mm", "_scaled_grouped_mm_v2", category="matmul")
def scaled_grouped_mm_flops(a, b, *_, out=None, **__) -> int:
    """fp8 grouped GEMM: the scales are applied in the epilogue, as for _scaled_mm."""
    return _grouped_mm_flops(a, b)


def grouped_mm_output_shape(a, b, offsets) -> tuple[int, ...]:
    """The output shape of a grouped GEMM (layouts as in _grouped_mm_flops; `offsets` has one entry a group).

    torch's meta kernel first checks what the CUDA kernel accepts (bf16 or fp8 inputs, 16-byte strides), so a
    float32 model on the meta device stops there; a count needs only this shape."""
    if len(a) == 2 and len(b) == 2:
        return (offsets[0], a[0], b[1])
    if len(a) == 2:
        return (a[0], b[-1])
    if len(b) == 2:
        return (a[1], b[1])
    return (a[0], a[1], b[-1])


@register("addmm", "_sparse_addmm", category="matmul")
def addmm_flops(bias, a, b, *_, out=None, **__) -> dict:
    """bias + a @ b: the matmul, plus one add per output element for the bias."""
    return {"matmul": mm_flops(a, b), "elementwise": _numel(out)}


@register("bmm", category="matmul")
def bmm_flops(a, b, *_, out=None, **__) -> int:
    """[B, m, k] @ [B, k, n]: B*m*n*k multiply-adds. Broadcast matmuls reach here already expanded."""
    batch, m, k = a
    n = b[2]
    return 2 * batch * m * n * k


@register("baddbmm", category="matmul")
def baddbmm_flops(bias, a, b, *_, out=None, **__) -> dict:
    return {"matmul": bmm_flops(a, b), "elementwise": _numel(out)}


@register("addbmm", category="matmul")
def addbmm_flops(bias, a, b, *_, out=None, **__) -> dict:
    """bias + sum_i a[i] @ b[i]: the batch sum is part of the multiply-adds."""
    return {"matmul": bmm_flops(a, b), "elementwise": _numel(out)}


@register("mv", category="matmul")
def mv_flops(a, v, *_, out=None, **__) -> int:
    m, n = a
    return 2 * m * n


@register("addmv", category="matmul")
def addmv_flops(bias, a, v, *_, out=None, **__) -> dict:
    return {"matmul": mv_flops(a, v), "elementwise": _numel(out)}


@register("dot", "vdot", category="matmul")
def dot_flops(a, b, *_, out=None, **__) -> int:
    return 2 * _numel(a)


@register("addr", category="elementwise")
def addr_flops(bias, u, v, *_, out=None, **__) -> int:
    """bias + outer(u, v): one multiply and one add per output element, no reduction."""
    return 2 * _numel(out)


@register("_trilinear", category="matmul")
def trilinear_flops(i1, i2, i3, expand1, expand2, expand3, sumdim, *_, out=None, **__) -> int:
    """sum over `sumdim` of i1 * i2 * i3 (nn.Bilinear: x1^T W_k x2), each input unsqueezed at its `expand`
    dims. torch contracts it in two products: i1 with i2 over the dims they span (summing the sumdims i3
    lacks), then that with i3. Each is one multiply-add per point of the dims its operands span. For
    nn.Bilinear (B rows, in1, in2, out): B*out*in1*in2 + B*out*in2 multiply-adds."""
    rank = len(i1) + len(expand1)

    def spanned(shape, expand):
        kept = [d for d in range(rank) if d not in set(expand)]
        return dict(zip(kept, shape))

    spans = [spanned(i1, expand1), spanned(i2, expand2), spanned(i3, expand3)]
    size = {d: max(span.get(d, 1) for span in spans) for d in range(rank)}
    first = set(spans[0]) | set(spans[1])
    kept = first - {d for d in sumdim if d not in spans[2]}
    second = kept | set(spans[2])
    return 2 * (math.prod(size[d] for d in first) + math.prod(size[d] for d in second))


# ----------------------------------------------------------------------------------------- convolution


def _conv_forward_flops(x_shape, w_shape, out_shape, transposed: bool) -> int:
    """2 * (multiply-adds). A normal conv: each output element sums Cin/groups * prod(kernel) products
    (weight shape [Cout, Cin/g, *k]). A transposed conv: each input element scatters into Cout/groups *
    prod(kernel) outputs (weight shape [Cin, Cout/g, *k]). Groups, stride and dilation are in the shapes."""
    per_element = w_shape[1] * math.prod(w_shape[2:])
    elements = _numel(x_shape) if transposed else _numel(out_shape)
    return 2 * elements * per_element


@register("convolution", "_convolution", category="conv")
def convolution_flops(x, w, bias, stride, padding, dilation, transposed, *_, out=None, **__) -> dict:
    flops = {"conv": _conv_forward_flops(x, w, out, bool(transposed))}
    if bias is not None:
        flops["elementwise"] = _numel(out)
    return flops


@register("convolution_backward", category="conv")
def convolution_backward_flops(
    grad_out,
    x,
    w,
    bias_sizes,
    stride,
    padding,
    dilation,
    transposed,
    output_padding,
    groups,
    output_mask,
    *_,
    out=None,
    **__,
) -> dict:
    """The input gradient is a transposed conv of grad_out with the same multiply-adds as the forward; so is
    the weight gradient (each weight element meets every output position it touched). Bias: a sum."""
    forward = _conv_forward_flops(x, w, grad_out, bool(transposed))
    flops = {"conv": forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))}
    if output_mask[2]:
        flops["reduction"] = _numel(grad_out)
    return flops


# ------------------------------------------------------------------------------------------- attention


def attention_forward_flops(batch: int, heads: int, len_q: int, len_k: int, dim_qk: int, dim_v: int) -> int:
    """Q @ K^T (L*S*E multiply-adds per head) and P @ V (L*S*Ev). The softmax and scaling inside the kernel
    are not counted, so every kernel and the math decomposition give the same figure."""
    return 2 * batch * heads * len_q * len_k * (dim_qk + dim_v)


def attention_backward_flops(
    batch: int,
    heads: int,
    len_q: int,
    len_k: int,
    dim_qk: int,
    dim_v: int,
    needs: tuple[bool, bool, bool] = (True, True, True),
) -> int:
    """The gradients asked for, per head (S = QK^T, P = softmax(S), O = PV; dS from dP is softmax work):

    - dV = P^T dO: S*L*Ev multiply-adds, when V needs a gradient;
    - dP = dO V^T: L*S*Ev, when Q or K needs one (dS, hence dQ and dK, come from it);
    - dQ = dS K: L*S*E, when Q needs one; dK = dS^T Q: L*S*E, when K needs one.

    With all three that is 2*L*S*(E + Ev): twice the forward. `needs` is (q, k, v) requiring a gradient.
    Fused kernels also recompute Q @ K^T; that recomputation is hardware work, not model work (as in MFU),
    and is not counted."""
    need_q, need_k, need_v = needs
    per_pair = dim_v * (int(need_v) + int(need_q or need_k)) + dim_qk * (int(need_q) + int(need_k))
    return 2 * batch * heads * len_q * len_k * per_pair


def attention_shapes(q, k, v):
    """Shapes in [B, H, L, E] layout -> (B, H, L, S, E, Ev). Grouped-query K/V have fewer heads; Q's count."""
    *batch, heads, len_q, dim_qk = q
    len_k, dim_v = k[-2], v[-1]
    return math.prod(batch), heads, len_q, len_k, dim_qk, dim_v


def _blhe(q, k, v):
    """Shapes in [B, L, H, E] layout (the _flash/_efficient_attention_* ops)."""
    batch, len_q, heads, dim_qk = q
    return batch, heads, len_q, k[1], dim_qk, v[-1]


@register(
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
    category="attention",
)
def sdpa_forward_flops(q, k, v, *_, out=None, **__) -> int:
    return attention_forward_flops(*attention_shapes(q, k, v))


@register(
    "_scaled_dot_product_flash_attention_backward",
    "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_cudnn_attention_backward",
    "_scaled_dot_product_fused_attention_overrideable_backward",
    category="attention",
)
def sdpa_backward_flops(grad_out, q, k, v, *_, out=None, **__) -> int:
    return attention_backward_flops(*attention_shapes(q, k, v))


@register("_flash_attention_forward", "_efficient_attention_forward", category="attention")
def flash_forward_flops(q, k, v, *_, out=None, **__) -> int:
    if len(q) != 4:
        raise NotImplementedError("variable-length (packed) attention: FLOPs depend on the sequence lengths")
    return attention_forward_flops(*_blhe(q, k, v))


@register("_flash_attention_backward", "_efficient_attention_backward", category="attention")
def flash_backward_flops(grad_out, q, k, v, *_, out=None, **__) -> int:
    if len(q) != 4:
        raise NotImplementedError("variable-length (packed) attention: FLOPs depend on the sequence lengths")
    return attention_backward_flops(*_blhe(q, k, v))


@register("_cudnn_attention_forward", category="attention")
def cudnn_attention_forward_flops(q, k, v, *_, out=None, **__) -> int:
    return attention_forward_flops(*attention_shapes(q, k, v))


@register("_cudnn_attention_backward", category="attention")
def cudnn_attention_backward_flops(grad_out, q, k, v, *_, out=None, **__) -> int:
    return attention_backward_flops(*attention_shapes(q, k, v))


def causal_pairs(len_q: int, len_k: int) -> int:
    """Query-key pairs a causal (top-left aligned, as torch's is_causal) mask keeps: row i sees min(i+1, S) keys."""
    if len_q <= len_k:
        return len_q * (len_q + 1) // 2
    return len_k * (len_k + 1) // 2 + (len_q - len_k) * len_k


def _window_prefix(rows: int, window: int) -> int:
    """sum of min(n, window) for n = 1..rows: the keys rows 0..rows-1 of a causal window see."""
    if rows <= window:
        return rows * (rows + 1) // 2
    return window * (window + 1) // 2 + (rows - window) * window


def windowed_causal_pairs(len_q: int, len_k: int, window: int) -> int:
    """Query-key pairs a causal sliding window of `window` keys computes, as flash attention's windowed kernels
    run it (window_size=(window - 1, 0)): the L queries are the last L positions of the S keys (bottom-right
    aligned, as a KV cache decodes) and the query at position p sees min(p + 1, window) keys. With L > S the
    rows are top-left aligned, as causal_pairs: row i sees min(i + 1, S, window)."""
    if window < 1:
        raise ValueError(f"attention window {window} must be at least 1")
    if len_q <= len_k:
        return _window_prefix(len_k, window) - _window_prefix(len_k - len_q, window)
    return _window_prefix(len_q, min(window, len_k))


# ------------------------------------------------------------------------------------------------ norms

# Per element, normalising costs 5 FLOPs: the mean (1 add), subtracting it (1), squaring (1), the variance
# sum (1) and scaling by 1/std (1). An affine weight and bias add one each.
_NORMALIZE_PER_ELEMENT = 5
# The input gradient of a normalisation is about twice its forward work.
_NORMALIZE_BACKWARD_PER_ELEMENT = 10


def _affine(weight, bias) -> int:
    return int(weight is not None) + int(bias is not None)


@register("native_layer_norm", category="norm")
def layer_norm_flops(x, normalized_shape, weight, bias, *_, out=None, **__) -> int:
    return _numel(x) * (_NORMALIZE_PER_ELEMENT + _affine(weight, bias))


@register("native_group_norm", category="norm")
def group_norm_flops(x, weight, bias, *_, out=None, **__) -> int:
    return _numel(x) * (_NORMALIZE_PER_ELEMENT + _affine(weight, bias))


@register(
    "native_batch_norm",
    "_native_batch_norm_legit",
    "_batch_norm_with_update",
    "_batch_norm_impl_index",
    category="norm",
)
def batch_norm_flops(x, weight, bias, *args, out=None, **kwargs) -> int:
    """Training mode computes the statistics (5 per element); eval mode only applies them (2 per element)."""
    training = next((a for a in args if isinstance(a, bool)), True)
    per_element = _NORMALIZE_PER_ELEMENT if training else 2
    return _numel(x) * (per_element + _affine(weight, bias))


@register("_native_batch_norm_legit_no_training", "_batch_norm_no_update", category="norm")
def batch_norm_inference_flops(x, weight, bias, *_, out=None, **__) -> int:
    return _numel(x) * (2 + _affine(weight, bias))


@register("_fused_rms_norm", category="norm")
def rms_norm_flops(x, normalized_shape, weight, *_, out=None, **__) -> int:
    """Square (1), mean (1), scale by 1/rms (1), and the weight (1)."""
    return _numel(x) * (3 + int(weight is not None))


@register("_weight_norm_interface", category="norm")
def weight_norm_flops(v, g, *_, out=None, **__) -> int:
    """Weight normalisation, w = g * v / ||v|| (nn.utils.weight_norm; wav2vec 2.0's positional convolution):
    the norm's square-and-sum (2 per element of v), then one multiply each by the per-slice g / ||v||
    (one division per element of g)."""
    return 3 * _numel(v) + _numel(g)


@register("_weight_norm_interface_backward", category="norm")
def weight_norm_backward_flops(grad_w, v, g, norms, *_, out=None, **__) -> int:
    """grad_g = sum(grad_w * v) / ||v|| (2 per element), grad_v = (g / ||v||) * (grad_w - v * grad_g / ||v||)
    (a multiply, a subtract and a multiply: 3 per element, the per-slice factors once per element of g)."""
    return 5 * _numel(v) + 2 * _numel(g)


# In eval mode batch norm is a fixed per-channel affine map, y = x * (weight * invstd) + shift: its input
# gradient is the incoming gradient times that per-channel scale, one multiply per element.
_FROZEN_STATS_BACKWARD_PER_ELEMENT = 1


def _norm_backward(x, output_mask, reduce_per_element: int = 2, training: bool = True) -> int:
    """Input gradient ~2x the forward normalisation (with batch statistics; with frozen statistics a
    multiply); weight gradient a multiply and a sum; bias a sum."""
    numel = _numel(x)
    flops = 0
    if output_mask[0]:
        flops += numel * (_NORMALIZE_BACKWARD_PER_ELEMENT if training else _FROZEN_STATS_BACKWARD_PER_ELEMENT)
    if len(output_mask) > 1 and output_mask[1]:
        flops += numel * reduce_per_element
    if len(output_mask) > 2 and output_mask[2]:
        flops += numel
    return flops


@register("native_layer_norm_backward", category="norm")
def layer_norm_backward_flops(grad_out, x, normalized_shape, mean, rstd, weight, bias, output_mask, *_, out=None, **__):
    return _norm_backward(x, output_mask)


@register("native_group_norm_backward", category="norm")
def group_norm_backward_flops(grad_out, x, mean, rstd, weight, n, c, hxw, group, output_mask, *_, out=None, **__):
    return _norm_backward(x, output_mask)


@register("native_batch_norm_backward", category="norm")
def batch_norm_backward_flops(
    grad_out, x, weight, running_mean, running_var, save_mean, save_invstd, train, eps, output_mask, *_, out=None, **__
):
    return _norm_backward(x, output_mask, training=bool(train))


@register("batch_norm_backward", category="norm")
def batch_norm_backward_new_flops(
    grad_out, x, weight, running_mean, running_var, save_mean, save_var, update, eps, output_mask, *_, out=None, **__
):
    return _norm_backward(x, output_mask, training=bool(update))


@register("_fused_rms_norm_backward", category="norm")
def rms_norm_backward_flops(grad_out, x, normalized_shape, rstd, weight, output_mask, *_, out=None, **__):
    return _norm_backward(x, output_mask, reduce_per_element=2)


# ------------------------------------------------------------------------------------ softmax, activations

# softmax per element: the max (1), subtracting it (1), exp (1), the sum (1), the division (1).
_SOFTMAX_PER_ELEMENT = 5
# its backward: grad * y (1), the sum (1), subtracting it (1), times y (1).
_SOFTMAX_BACKWARD_PER_ELEMENT = 4


@register("_softmax", "_log_softmax", "_safe_softmax", category="activation")
def softmax_flops(x, *_, out=None, **__) -> int:
    return _SOFTMAX_PER_ELEMENT * _numel(x)


@register("_softmax_backward_data", "_log_softmax_backward_data", category="activation")
def softmax_backward_flops(grad, y, *_, out=None, **__) -> int:
    return _SOFTMAX_BACKWARD_PER_ELEMENT * _numel(grad)


def _per_output_element(cost: int) -> Callable[..., int]:
    def flops(*_, out=None, **__) -> int:
        return cost * _numel(_first_shape(out))

    flops.__name__ = f"per_output_element_x{cost}"
    return flops


# Activations cost 1 FLOP per element forward (as most counters take them); their backward is 2 per element
# (evaluate the derivative, multiply by the incoming gradient), except ReLU's, which only selects.
register(
    "relu",
    "relu_",
    "gelu",
    "gelu_",
    "silu",
    "silu_",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "tanh_",
    "hardtanh",
    "hardtanh_",
    "leaky_relu",
    "leaky_relu_",
    "elu",
    "elu_",
    "mish",
    "mish_",
    "hardswish",
    "hardswish_",
    "hardsigmoid",
    "hardsigmoid_",
    "softplus",
    "prelu",
    "_prelu_kernel",
    "glu",
    "celu",
    "selu",
    "rrelu_with_noise",
    "logit",
    "log_sigmoid_forward",
    category="activation",
)(_per_output_element(1))

# backwards that only select where the gradient passes (the derivative is 0 or 1)
register("threshold_backward", "hardshrink_backward", "softshrink_backward", category="activation")(
    _per_output_element(1)
)

register(
    "gelu_backward",
    "silu_backward",
    "sigmoid_backward",
    "tanh_backward",
    "hardtanh_backward",
    "leaky_relu_backward",
    "elu_backward",
    "mish_backward",
    "hardswish_backward",
    "hardsigmoid_backward",
    "softplus_backward",
    "_prelu_kernel_backward",
    "glu_backward",
    "logit_backward",
    "log_sigmoid_backward",
    "rrelu_with_noise_backward",
    category="activation",
)(_per_output_element(2))


@register("native_dropout", category="elementwise")
def dropout_flops(x, *_, out=None, **__) -> int:
    """Scaling the kept elements: one multiply each (drawing the mask is not arithmetic on the data)."""
    return _numel(x)


register("native_dropout_backward", category="elementwise")(_per_output_element(1))

# ------------------------------------------------------------------------------- fused recurrent layers

# torch's RNN modes (the `mode` argument of the fused kernels): 0 RNN_RELU, 1 RNN_TANH, 2 LSTM, 3 GRU.
_RNN_GATES = {0: 1, 1: 1, 2: 4, 3: 3}
# Per hidden unit and time step, besides the two gate products: (elementwise, activation) FLOPs.
# - RNN: the two products added (1), tanh or relu (1);
# - LSTM: the products added (4), 3 sigmoids and 2 tanh (5), c' = f*c + i*g (3), h' = o*tanh(c') (1);
# - GRU (torch's gru_cell): r and z summed (2), n = tanh(x_n + r*h_n): a multiply and an add (2),
#   h' = n + z*(h - n) (3); 2 sigmoids and a tanh (3).
_RNN_POINTWISE = {0: (1, 1), 1: (1, 1), 2: (8, 5), 3: (7, 3)}


def rnn_step_flops(mode: int, batch: int, input_size: int, hidden: int, biases: bool) -> dict[str, int]:
    """One time step of one layer in one direction, as the fused kernels compute it (cuDNN's, oneDNN's and
    torch's decomposed cells agree): the input and hidden products W_ih x and W_hh h (G gates of `hidden`
    units: 2*G*H*(I + H) FLOPs per sequence), both biases added (2*G*H) and the gates' pointwise work."""
    mode = int(mode)
    if mode not in _RNN_GATES:
        raise NotImplementedError(f"RNN mode {mode}")
    gates = _RNN_GATES[mode] * hidden
    elementwise, activation = _RNN_POINTWISE[mode]
    return {
        "matmul": 2 * batch * gates * (input_size + hidden),
        "elementwise": batch * (elementwise * hidden + (2 * gates if biases else 0)),
        "activation": batch * activation * hidden,
    }


def rnn_step_backward_flops(
    mode: int, batch: int, input_size: int, hidden: int, biases: bool, weights: bool = True
) -> dict[str, int]:
    """The backward of one time step as the fused kernels run it (oneDNN's and cuDNN's): from the gates'
    gradient dG (G*H per sequence), the data gradients dx = dG W_ih and dh = dG W_hh (the forward's products
    again), and with `weights` the weight gradients dW_ih += dG^T x and dW_hh += dG^T h (once more) and the
    bias gradients (a sum over the batch of dG, per bias); the gates' pointwise work twice over (each
    activation's derivative and its product with the incoming gradient; each product's gradient for each of
    its operands)."""
    forward = rnn_step_flops(mode, batch, input_size, hidden, biases)
    gates = _RNN_GATES[int(mode)] * hidden
    bias_adds = 2 * batch * gates if biases else 0
    return {
        "matmul": forward["matmul"] * (2 if weights else 1),
        "elementwise": 2 * (forward["elementwise"] - bias_adds),
        "activation": 2 * forward["activation"],
        "reduction": bias_adds if weights else 0,
    }


def _times(flops: Mapping[str, int], count: int) -> dict[str, int]:
    return {category: value * count for category, value in flops.items()}


def _sum(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for category, value in part.items():
            total[category] = total.get(category, 0) + value
    return total


@dataclass(frozen=True)
class _RnnStack:
    """What a fused RNN op's FLOPs depend on, read once from its arguments: the gate mode, the hidden size,
    each layer's input width, the directions, whether the weights carry biases, the sequences' steps times
    batch (the layout does not change the product) and, for a backward, whether the weights' gradients are
    asked for."""

    mode: int
    hidden: int
    widths: tuple[int, ...]
    directions: int
    biases: bool
    steps_times_batch: int
    weight_gradients: bool


def _rnn_stack(op: Any, args: tuple, kwargs: Mapping[str, Any]) -> _RnnStack:
    """The fused RNN kernels (cuDNN's whole stack, oneDNN's one layer in one direction, and their backwards)
    take 16 to 23 positional arguments: they are read here by the names the op's aten schema gives them.
    cuDNN's weights carry biases when there are four tensors per layer and direction (two without); a cuDNN
    layer after the first reads the directions' outputs concatenated."""
    schema = op.default._schema
    call = {argument.name: value for argument, value in zip(schema.arguments, args)} | dict(kwargs)
    if call["batch_sizes"]:
        raise NotImplementedError("packed sequences: FLOPs depend on the sequence lengths")
    if call.get("proj_size"):
        raise NotImplementedError("LSTM with proj_size")
    x, hidden, mask = call["input"], int(call["hidden_size"]), call.get("output_mask")
    if "has_biases" in call:  # oneDNN: one layer in one direction per op
        widths, directions, biases = (x[-1],), 1, bool(call["has_biases"])
    else:
        layers, directions = int(call["num_layers"]), 2 if call["bidirectional"] else 1
        biases = len(call["weight"]) > 2 * layers * directions
        widths = tuple(x[-1] if layer == 0 else hidden * directions for layer in range(layers))
    return _RnnStack(int(call["mode"]), hidden, widths, directions, biases, x[0] * x[1], mask is None or bool(mask[3]))


def _rnn_forward(stack: _RnnStack) -> dict[str, int]:
    layers = (rnn_step_flops(stack.mode, 1, width, stack.hidden, stack.biases) for width in stack.widths)
    return _times(_sum(layers), stack.steps_times_batch * stack.directions)


def _rnn_backward(stack: _RnnStack) -> dict[str, int]:
    layers = (
        rnn_step_backward_flops(stack.mode, 1, width, stack.hidden, stack.biases, stack.weight_gradients)
        for width in stack.widths
    )
    return _times(_sum(layers), stack.steps_times_batch * stack.directions)


@register("mkldnn_rnn_layer", category="matmul")
def mkldnn_rnn_layer_flops(*args, out=None, **kwargs) -> dict:
    """oneDNN's LSTM on the CPU (what aten.lstm runs there): one layer, one direction, every time step."""
    return _rnn_forward(_rnn_stack(aten.mkldnn_rnn_layer, args, kwargs))


@register("_cudnn_rnn", category="matmul")
def cudnn_rnn_flops(*args, out=None, **kwargs) -> dict:
    """cuDNN's whole RNN in one op: per time step, per layer, per direction."""
    return _rnn_forward(_rnn_stack(aten._cudnn_rnn, args, kwargs))


@register("mkldnn_rnn_layer_backward", category="matmul")
def mkldnn_rnn_layer_backward_flops(*args, out=None, **kwargs) -> dict:
    """oneDNN's LSTM backward (one layer, one direction): every gradient, each time step."""
    return _rnn_backward(_rnn_stack(aten.mkldnn_rnn_layer_backward, args, kwargs))


@register("_cudnn_rnn_backward", category="matmul")
def cudnn_rnn_backward_flops(*args, out=None, **kwargs) -> dict:
    """cuDNN's whole RNN backward: the data gradients always (the weights' need them), the weight and bias
    gradients when asked for (output_mask's last entry); per time step, per layer, per direction."""
    return _rnn_backward(_rnn_stack(aten._cudnn_rnn_backward, args, kwargs))


# ------------------------------------------------------------------------------------------------ pooling


def _kernel_elements(kernel_size, spatial_dims: int) -> int:
    kernel = list(kernel_size) if isinstance(kernel_size, (list, tuple)) else [kernel_size]
    if len(kernel) == 1:
        kernel = kernel * spatial_dims
    return math.prod(kernel)


@register(
    "max_pool1d",
    "max_pool2d",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    category="pool",
)
def pool_flops(x, kernel_size, *_, out=None, **__) -> int:
    """Each output element compares (max) or adds (avg) its window: prod(kernel) ops."""
    output = _first_shape(out)
    spatial_dims = len(x) - 2 if len(x) > 2 else 1
    return _numel(output) * _kernel_elements(kernel_size, spatial_dims)


@register(
    "_adaptive_avg_pool2d",
    "_adaptive_avg_pool3d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_max_pool1d",
    category="pool",
)
def adaptive_pool_flops(x, output_size, *_, out=None, **__) -> int:
    """Windows tile the input: every input element is read into about one window (plus one op per output)."""
    return _numel(x) + _numel(_first_shape(out))


@register(
    "max_pool2d_with_indices_backward",
    "max_pool3d_with_indices_backward",
    "avg_pool2d_backward",
    "avg_pool3d_backward",
    "_adaptive_avg_pool2d_backward",
    "_adaptive_avg_pool3d_backward",
    "adaptive_max_pool2d_backward",
    "adaptive_max_pool3d_backward",
    category="pool",
)
def pool_backward_flops(grad_out, x, *_, out=None, **__) -> int:
    """Routing (max) or spreading (avg) each gradient back: one op per input element."""
    return _numel(x)


# ---------------------------------------------------------------------------- resampling (F.interpolate)


def _interpolation(taps: int) -> Callable[..., int]:
    """Linear-family interpolation: every output element is a weighted sum of `taps` input elements (2 per
    spatial dim for linear, 4 for cubic): `taps` multiply-adds, 2*taps FLOPs. The weights depend on the
    output coordinate only and are not counted. The backward scatters each output gradient back to the same
    taps with the same weights, so it costs the same per grad_output element (its first argument, whose
    shape is `out` of the forward)."""

    def forward(x, *_, out=None, **__) -> int:
        return 2 * taps * _numel(_first_shape(out))

    def backward(grad_out, *_, out=None, **__) -> int:
        return 2 * taps * _numel(grad_out)

    forward.__name__, backward.__name__ = f"interpolation_x{taps}_flops", f"interpolation_x{taps}_backward_flops"
    return forward, backward


for _taps, _ops in (
    (2, ("upsample_linear1d",)),
    (4, ("upsample_bilinear2d",)),
    (8, ("upsample_trilinear3d",)),
    (16, ("upsample_bicubic2d",)),
):
    _forward, _backward = _interpolation(_taps)
    register(*_ops, category="pool")(_forward)
    register(*(f"{op}_backward" for op in _ops), category="pool")(_backward)


def _aa_scale(input_size: int, output_size: int, align_corners: bool, scale: float | None) -> float:
    """Input pixels per output pixel, as torch's area_pixel_compute_scale works it out."""
    if align_corners:
        return (input_size - 1) / (output_size - 1) if output_size > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else input_size / output_size


def antialias_taps(input_size: int, output_size: int, interp_size: int, align_corners: bool, scale=None) -> int:
    """Input elements read along one dimension by antialiased resampling, summed over the output positions.
    Downscaling by s widens the filter's support to s times interp_size/2 (interp_size 2 bilinear, 4 bicubic);
    output i, centred on s*(i + 0.5), reads the inputs from int(centre - support + 0.5) (at least 0) up to
    int(centre + support + 0.5) (at most the input size), as torch's separable CPU/CUDA kernels loop."""
    ratio = _aa_scale(input_size, output_size, align_corners, scale)
    support = interp_size * 0.5 * ratio if ratio >= 1.0 else interp_size * 0.5
    taps = 0
    for i in range(output_size):
        centre = ratio * (i + 0.5)
        first = max(int(centre - support + 0.5), 0)
        taps += min(int(centre + support + 0.5), input_size) - first
    return taps


def _antialias(interp_size: int) -> tuple[Callable[..., dict], Callable[..., dict]]:
    """Antialiased 2-D interpolation (F.interpolate(..., antialias=True)). The forward is separable, as torch
    runs it: a horizontal pass over every input row (skipped when the width is unchanged), then a vertical pass
    over every output column (skipped when the height is unchanged); each output of a pass is one multiply-add
    per tap (2 FLOPs). The backward scatters each output gradient to its taps in both directions at once: a
    multiply-add per (row tap, column tap) pair. Weights depend on the output position only, not counted."""

    def taps(input_size, output_size, align_corners, scale):
        return antialias_taps(int(input_size), int(output_size), interp_size, bool(align_corners), scale)

    def forward(x, output_size, align_corners, scales_h=None, scales_w=None, *_, out=None, **__) -> int:
        *outer, in_h, in_w = x
        out_h, out_w = output_size
        planes = math.prod(outer)
        flops = 0
        if out_w != in_w:
            flops += 2 * planes * in_h * taps(in_w, out_w, align_corners, scales_w)
        if out_h != in_h:
            flops += 2 * planes * out_w * taps(in_h, out_h, align_corners, scales_h)
        return flops

    def backward(
        grad_out, output_size, input_size, align_corners, scales_h=None, scales_w=None, *_, out=None, **__
    ) -> int:
        *outer, in_h, in_w = input_size
        out_h, out_w = output_size
        rows = taps(in_h, out_h, align_corners, scales_h)
        columns = taps(in_w, out_w, align_corners, scales_w)
        return 2 * math.prod(outer) * rows * columns

    forward.__name__ = f"antialias_x{interp_size}_flops"
    backward.__name__ = f"antialias_x{interp_size}_backward_flops"
    return forward, backward


for _interp_size, _op in ((2, "_upsample_bilinear2d_aa"), (4, "_upsample_bicubic2d_aa")):
    _forward, _backward = _antialias(_interp_size)
    register(_op, category="pool")(_forward)
    register(f"{_op}_backward", category="pool")(_backward)


@register(
    "upsample_nearest1d_backward",
    "upsample_nearest2d_backward",
    "upsample_nearest3d_backward",
    "_upsample_nearest_exact1d_backward",
    "_upsample_nearest_exact2d_backward",
    "_upsample_nearest_exact3d_backward",
    category="pool",
)
def nearest_upsample_backward_flops(grad_out, output_size, input_size, *_, out=None, **__) -> int:
    """Nearest upsampling copies (0 FLOPs); its backward sums, into each input element, the k gradients of the
    outputs that copied it: k - 1 adds each, numel(grad_output) - numel(input) in all (0 when downsampling,
    where each input is copied at most once)."""
    return max(0, _numel(grad_out) - _numel(input_size))


@register(
    "reflection_pad1d_backward",
    "reflection_pad2d_backward",
    "reflection_pad3d_backward",
    "replication_pad1d_backward",
    "replication_pad2d_backward",
    "replication_pad3d_backward",
    category="elementwise",
)
def pad_backward_flops(grad_out, x, *_, out=None, **__) -> int:
    """Padding copies; its backward adds each border gradient into the input element it copied:
    numel(grad_output) - numel(input) adds."""
    return max(0, _numel(grad_out) - _numel(x))


# grid_sample's interpolation_mode: 0 bilinear (trilinear in 3-D), 1 nearest, 2 bicubic (2-D only).
def _grid_sample_taps(mode: int, spatial_dims: int) -> int:
    return {0: 2**spatial_dims, 1: 0, 2: 16}.get(int(mode), 2**spatial_dims)


@register("grid_sampler_2d", "grid_sampler_3d", category="pool")
def grid_sample_flops(x, grid, mode, *_, out=None, **__) -> int:
    """Each output element is a weighted sum of its taps (4 bilinear, 8 trilinear, 16 bicubic; nearest
    copies): 2*taps FLOPs, as F.interpolate. The weights, computed once per grid point, are not counted."""
    return 2 * _grid_sample_taps(mode, len(x) - 2) * _numel(_first_shape(out))


@register("grid_sampler_2d_backward", "grid_sampler_3d_backward", category="pool")
def grid_sample_backward_flops(
    grad_out, x, grid, mode, padding_mode, align_corners, output_mask, *_, out=None, **__
) -> int:
    """Input gradient: each output gradient scattered to its taps (2*taps per grad_output element; nearest:
    1 add). Grid gradient: each tap's value times its weight's derivative along every spatial dim,
    accumulated (2*taps*dims per grad_output element; nearest: 0)."""
    dims = len(x) - 2
    taps = _grid_sample_taps(mode, dims)
    flops = 0
    if output_mask[0]:
        flops += (2 * taps if taps else 1) * _numel(grad_out)
    if output_mask[1]:
        flops += 2 * taps * dims * _numel(grad_out)
    return flops


@register("_cdist_forward", category="reduction")
def cdist_flops(x1, x2, *_, out=None, **__) -> int:
    """[B, P, M] against [B, R, M]: per pair and coordinate a difference, its |d|^p (a square for p=2) and
    the sum: 3*B*P*R*M. The root taken per pair is not counted. (For p=2 on large inputs torch takes the
    matmul route instead, which is counted as its bmm and pointwise ops.)"""
    return 3 * _numel(_first_shape(out)) * x1[-1]


@register("_cdist_backward", category="reduction")
def cdist_backward_flops(grad, x1, x2, *_, out=None, **__) -> int:
    """The gradient of x1 (torch calls it again, swapped, for x2): per pair and coordinate the difference,
    times the pair's factor (grad / distance^(p-1)), accumulated: 3*B*P*R*M."""
    return 3 * _numel(grad) * x1[-1]


def _fft_flops(signal_shape, dims) -> int:
    """5 N log2 N per complex transform of N points (the classic radix-2 count, as FFTW's benchmarks quote
    it), N the product of the transformed dims; numel / N transforms: 5 * numel * log2 N in all."""
    points = math.prod(signal_shape[d] for d in dims)
    if points <= 1:
        return 0
    return round(5 * _numel(signal_shape) * math.log2(points))


@register("_fft_c2c", category="elementwise")
def fft_c2c_flops(x, dims, *_, out=None, **__) -> int:
    return _fft_flops(x, dims)


@register("_fft_r2c", category="elementwise")
def fft_r2c_flops(x, dims, *_, out=None, **__) -> int:
    """Counted as a complex transform of the real signal's length (an upper bound: real-input kernels do
    about half the work, which this count does not assume)."""
    return _fft_flops(x, dims)


@register("_fft_c2r", category="elementwise")
def fft_c2r_flops(x, dims, *_, out=None, **__) -> int:
    """Counted as a complex transform of the real output's length, as _fft_r2c."""
    return _fft_flops(_first_shape(out), dims)


@register("max_unpool2d", "max_unpool3d", category="pool")
def max_unpool_flops(*_, out=None, **__) -> int:
    """Writes each input value at its index in a zero-filled output: moves data, no arithmetic (its
    backward is a gather, which costs nothing either)."""
    return 0


# --------------------------------------------------------------------------------------------- reductions


@register(
    "sum",
    "mean",
    "amax",
    "amin",
    "max",
    "min",
    "prod",
    "argmax",
    "argmin",
    "cumsum",
    "cumprod",
    "any",
    "all",
    "nansum",
    "aminmax",
    category="reduction",
)
def reduction_flops(x, *_, out=None, **__) -> int:
    """One op per input element read."""
    return _numel(x)


@register("var", "std", "var_mean", "std_mean", category="reduction")
def variance_flops(x, *_, out=None, **__) -> int:
    """Per element: the mean's add (1), subtracting it (1), squaring (1) and the sum of squares (1) -- the
    same four steps the norms count (the square-and-sum is a multiply-add: 2 FLOPs, not 1)."""
    return 4 * _numel(x)


@register("linalg_vector_norm", "norm", category="reduction")
def vector_norm_flops(x, ord=2, *_, out=None, **__) -> int:
    """A p-norm transforms each element (|x|^p: for p=2 a square) and sums it: 2 per element, as a dot
    product's multiply-add. The max-norms (p = +-inf) and the count of non-zeros (p = 0) compare or test
    once per element: 1. The root taken per output element is not counted."""
    p = ord if isinstance(ord, (int, float)) else 2
    return _numel(x) * (1 if p in (0, math.inf, -math.inf) else 2)


@register("logsumexp", category="reduction")
def logsumexp_flops(x, *_, out=None, **__) -> int:
    """The max (1), subtracting it (1), exp (1) and the sum (1) per element, as softmax without its division;
    the log and the add back of the max are per output element and not counted."""
    return 4 * _numel(x)


@register("histc", category="reduction")
def histc_flops(x, *_, out=None, **__) -> int:
    """Binning each element and adding it to its bin's count: one op per input element (mixture-of-experts
    routing counts the tokens each expert receives this way)."""
    return _numel(x)


@register("floor_divide", "floor_divide_", category="elementwise")
def floor_divide_flops(*_, out=None, **__) -> int:
    """One division (rounded down) per output element; torch's schema does not tag it pointwise."""
    return _numel(_first_shape(out))


@register("embedding_dense_backward", category="elementwise")
def embedding_backward_flops(grad_out, indices, *_, out=None, **__) -> int:
    """Scatter-adding each row's gradient into the table: one add per gradient element."""
    return _numel(grad_out)


@register("nll_loss_forward", "nll_loss2d_forward", category="reduction")
def nll_loss_flops(x, target, *_, out=None, **__) -> int:
    return _numel(target)


@register("nll_loss_backward", "nll_loss2d_backward", category="reduction")
def nll_loss_backward_flops(grad_out, x, target, *_, out=None, **__) -> int:
    return _numel(target)


@register("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", category="elementwise")
def pointwise_loss_flops(x, target, *_, out=None, **__) -> int:
    """Difference, its square (or abs), and the mean: 3 per element."""
    return 3 * _numel(x)


@register(
    "mse_loss_backward", "l1_loss_backward", "smooth_l1_loss_backward", "huber_loss_backward", category="elementwise"
)
def pointwise_loss_backward_flops(grad_out, x, *_, out=None, **__) -> int:
    return 2 * _numel(x)


@register("binary_cross_entropy_with_logits", category="elementwise")
def bce_with_logits_flops(x, *_, out=None, **__) -> int:
    """log-sigmoid and the weighted sum: about 5 per element."""
    return 5 * _numel(x)


@register("binary_cross_entropy", category="elementwise")
def bce_flops(p, target, *_, out=None, **__) -> int:
    """-(t log p + (1 - t) log(1 - p)) per element: 1 - p, two logs, 1 - t, two products, the sum, the
    negation: 8 (the mean over elements is the reduction the sum already is)."""
    return 8 * _numel(p)


@register("binary_cross_entropy_backward", category="elementwise")
def bce_backward_flops(grad_out, p, target, *_, out=None, **__) -> int:
    """grad * (p - t) / (p (1 - p)): p - t, 1 - p, their product with p, the division, times grad: 5."""
    return 5 * _numel(p)


@register("_embedding_bag", "_embedding_bag_forward_only", category="elementwise")
def embedding_bag_flops(
    weight,
    indices,
    offsets,
    scale_grad_by_freq=False,
    mode=0,
    sparse=False,
    per_sample_weights=None,
    *_,
    out=None,
    **__,
) -> int:
    """Each looked-up row is added into its bag: numel(indices) * D adds (sum, mean; max compares as many),
    plus as many multiplies with per-sample weights. The division of a mean is one per output element."""
    rows = _numel(indices) * weight[-1]
    divisions = _numel(_first_shape(out)) if mode == 1 else 0
    return rows * (2 if per_sample_weights is not None else 1) + divisions


@register("_embedding_bag_backward", "_embedding_bag_dense_backward", category="elementwise")
def embedding_bag_backward_flops(grad, indices, *_, out=None, **__) -> int:
    """Scatter-adding each index's bag gradient row into the table: numel(indices) * D adds."""
    return _numel(indices) * grad[-1]


@register("scatter_add", "scatter_add_", "index_add", "index_add_", "scatter_reduce", category="elementwise")
def scatter_add_flops(x, dim, index, src, *_, out=None, **__) -> int:
    return _numel(src)


@register("index_put", "index_put_", "_index_put_impl_", category="elementwise")
def index_put_flops(x, indices, values, accumulate=False, *_, out=None, **__) -> int:
    """An accumulating index_put adds each value; a plain one only copies."""
    return _numel(values) if accumulate else 0


@register("_is_all_true", "_is_any_true", category="reduction")
def is_all_true_flops(x, *_, out=None, **__) -> int:
    """`torch._check` / `torch._assert_async` reduce a boolean tensor to one truth value: like all()/any(),
    one op per element read."""
    return _numel(x)


@register("polar", category="elementwise")
def polar_flops(magnitude, angle, *_, out=None, **__) -> int:
    """magnitude * (cos(angle) + i sin(angle)): a cosine, a sine and two products per complex output element
    (RoPE's rotation factors, `torch.polar(ones, freqs)`)."""
    return 4 * _numel(_first_shape(out))


# ---------------------------------------------------------------------------------- ops that cost nothing

# Data movement, creation, indexing, views and random draws: no arithmetic on the values.
ZERO_FLOP_OPS = frozenset(
    _packet(op)
    for op in [
        "view",
        "_unsafe_view",
        "reshape",
        "expand",
        "permute",
        "transpose",
        "t",
        "squeeze",
        "unsqueeze",
        "slice",
        "select",
        "as_strided",
        "alias",
        "detach",
        "clone",
        "copy",
        "copy_",
        "_to_copy",
        "contiguous",
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "zeros",
        "zeros_like",
        "new_zeros",
        "ones",
        "ones_like",
        "new_ones",
        "full",
        "full_like",
        "new_full",
        "fill",
        "fill_",
        "zero_",
        "arange",
        "scalar_tensor",
        "lift_fresh",
        "lift_fresh_copy",
        "_sparse_coo_tensor_with_dims_and_tensors",
        "cat",
        "stack",
        "split",
        "split_with_sizes",
        "chunk",
        "unsafe_split",
        "unsafe_split_with_sizes",
        "unsafe_chunk",
        "unbind",
        "index",
        "_unsafe_index",
        "index_select",
        "gather",
        "embedding",
        "narrow",
        "flip",
        "roll",
        "repeat",
        "tril",
        "triu",
        "tril_",
        "triu_",
        "constant_pad_nd",
        "_local_scalar_dense",
        "masked_fill",
        "masked_fill_",
        "where",
        "scatter",
        "scatter_",
        "bernoulli",
        "bernoulli_",
        "rand",
        "rand_like",
        "randn",
        "randn_like",
        "randint",
        "randperm",
        "normal_",
        "uniform_",
        "randint_like",
        "sort",
        "topk",
        "unfold",
        "im2col",
        "col2im",
        "pixel_shuffle",
        "pixel_unshuffle",
        "channel_shuffle",
        "reflection_pad1d",
        "reflection_pad2d",
        "replication_pad1d",
        "replication_pad2d",
        "upsample_nearest2d",
        "upsample_nearest1d",
        "upsample_nearest3d",
        "_upsample_nearest_exact1d",
        "_upsample_nearest_exact2d",
        "_upsample_nearest_exact3d",
        "reflection_pad3d",
        "replication_pad3d",
        "diagonal",
        "unfold_backward",
        "select_backward",
        "slice_backward",
        "new_empty",
        "resize_",
        "set_",
        "view_as_real",
        "view_as_complex",
        "_reshape_alias",
        "masked_select",
        "masked_scatter",
        "masked_scatter_",
        "masked_scatter_backward",
        "repeat_interleave",
        "nonzero",
        "item",
        "sym_size",
        "dim",  # a nested tensor's metadata queries reach the dispatcher as ops
        "sym_is_contiguous",
        "_nested_get_jagged_dummy",
        "_nested_get_lengths",
        "_nested_get_max_seqlen",
        "_nested_get_min_seqlen",
        "_nested_get_offsets",
        "_nested_get_ragged_idx",
        "_nested_get_values",
        "_nested_view_from_jagged",
        "_nested_tensor_size",
        "_nested_tensor_strides",
        "_nested_tensor_storage_offsets",
        torch.ops.prim.layout,
        "sym_stride",
        "sym_numel",
        "is_same_size",
        "_assert_async",
        "_linalg_check_errors",
        "_assert_tensor_metadata",
        "_functional_assert_async",
        "expand_as",
        "view_as",
        "linspace",
        "eye",
        "one_hot",
        "equal",
        "allclose",
        "bucketize",
        "searchsorted",
        "unique_dim",
        "_unique2",
        "dropout",
        "feature_dropout",
    ]
    if _packet(op) is not None
)


# What torch's op schemas say about an op that moves or relabels data and computes nothing: a view
# (`is_view`), an in-place view (`inplace_view` tag: as_strided_, squeeze_, t_, set_, ...), a view's copy
# (`view_copy` tag: permute_copy, expand_copy.out, ...). Any overload of a zero-FLOP op (its `out=` form), its
# in-place form (`copy_`, `fill_`) and the copy of a view (`*_copy`) cost nothing either.
_ZERO_COST_TAGS = frozenset({torch.Tag.inplace_view, torch.Tag.view_copy})
_zero_cost_cache: dict[Any, bool] = {}


def is_zero_cost(func: Any) -> bool:
    """True for an op that does no arithmetic on values, by its schema and tags or its functional form."""
    known = _zero_cost_cache.get(func)
    if known is None:
        known = _zero_cost_cache[func] = _derive_zero_cost(func)
    return known


def _derive_zero_cost(func: Any) -> bool:
    if getattr(func, "is_view", False) or _ZERO_COST_TAGS & set(getattr(func, "tags", ())):
        return True
    packet = func.overloadpacket
    if packet in ZERO_FLOP_OPS:
        return True
    name = getattr(packet, "__name__", "")
    for functional in {name.rstrip("_"), name.removesuffix("_copy")} - {name}:
        relative = _packet(functional) if functional else None
        if relative is not None and (relative in ZERO_FLOP_OPS or _has_view_overload(relative)):
            return True
    return False


def _has_view_overload(packet: Any) -> bool:
    return any(getattr(getattr(packet, overload, None), "is_view", False) for overload in packet.overloads())


def formula_for(op: str) -> Formula:
    """The registered formula of an aten op by name ("mm"): for other graph formats that delegate here."""
    return FORMULAS[_packet(op)]


def pointwise_flops(out: Any) -> int:
    """A pointwise op without a formula of its own: one FLOP per output element."""
    return _numel(_first_shape(out))


def _is_pointwise(func) -> bool:
    return torch.Tag.pointwise in getattr(func, "tags", ())


def flops_of(func, args: tuple, kwargs: Mapping[str, Any], out: Any) -> dict[str, int] | None:
    """FLOPs of one op call by category, `{}` for a zero-FLOP op, or None when no formula covers it."""
    packet = func.overloadpacket
    formula = FORMULAS.get(packet)
    if formula is None:
        if is_zero_cost(func):
            return {}
        if _is_pointwise(func):
            return {"elementwise": pointwise_flops(_shapes(out))}
        return None
    result = formula.fn(*_shapes(args), out=_shapes(out), **_shapes(dict(kwargs)))
    if isinstance(result, Mapping):
        return {category: int(value) for category, value in result.items() if value}
    return {formula.category: int(result)} if result else {}


def _shapes(tree: Any) -> Any:
    return tree_map(lambda x: tensor_shape(x) if isinstance(x, torch.Tensor) else x, tree)


def tensor_shape(tensor: torch.Tensor) -> torch.Size:
    """A tensor's shape as the formulas read it. A nested tensor's is its packed shape: the rows of all its
    components stacked (a jagged tensor's values, [sum of lengths, ...]); an op that acts on the last
    dimension (linear, the pointwise ops) does the same work per row whichever component holds it."""
    if not getattr(tensor, "is_nested", False):
        return tensor.shape
    if tensor.layout == torch.jagged:
        return tensor.values().shape
    sizes = tensor._nested_tensor_size().tolist()
    if not sizes:
        return torch.Size((0,))
    if any(len(size) != len(sizes[0]) or size[-1] != sizes[0][-1] for size in sizes):
        raise NotImplementedError("a nested tensor whose components differ in their last dimension")
    return torch.Size((sum(math.prod(size[:-1]) for size in sizes), sizes[0][-1]))


@register("linear", category="matmul")
def linear_flops(x, weight, bias=None, *_, out=None, **__) -> dict:
    """linear reaches the counter only where it does not decompose into mm/addmm: with a nested input. Every
    row of x (packed) times the [out, in] weight, plus the bias add per output element."""
    rows = math.prod(x[:-1])
    flops = {"matmul": 2 * rows * weight[-1] * weight[0]}
    if bias is not None:
        flops["elementwise"] = rows * weight[0]
    return flops


@register("linear_backward", category="matmul")
def linear_backward_flops(x, grad_out, weight, output_mask, *_, out=None, **__) -> dict:
    """The input gradient (grad_out @ W) and the weight gradient (grad_out^T @ x), each the forward's products,
    when asked for; the bias gradient sums grad_out over the rows."""
    products = 2 * math.prod(x[:-1]) * weight[-1] * weight[0]
    flops = {"matmul": products * (int(bool(output_mask[0])) + int(bool(output_mask[1])))}
    if output_mask[2]:
        flops["reduction"] = math.prod(grad_out)
    return flops
