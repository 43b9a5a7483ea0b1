"""The work of one GPT layer on one GPU: its GEMMs at their M, N, K, its memory-bound ops at their bytes, and
its tensor-parallel collectives at their message size.

The counter records FLOPs per module and per category, not the M, N, K of each matmul, so the shapes are
computed here from the layer's dimensions, as Megatron-LM lays a layer out over t tensor-parallel GPUs
(Shoeybi et al. 2019; sequence parallelism: Korthikanti et al. 2022, Sec. 4.2.2). The FLOPs they add up to are
those `flopcalc count` measures on such a layer (tests/predict check one against the other).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

ACTIVATION_BYTES = 2  # fp16 / bf16
MASK_BYTES = 1  # a dropout mask
FP32_BYTES = 4


@dataclass(frozen=True)
class TransformerShape:
    """A GPT-style decoder: `layers` blocks of attention (`heads`, `kv_heads`) and a `ffn`-wide MLP."""

    layers: int
    hidden: int
    heads: int
    seq_len: int
    vocab: int
    ffn: int | None = None  # default 4 x hidden
    kv_heads: int | None = None  # default = heads

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "heads", "seq_len", "vocab"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.hidden % self.heads:
            raise UsageError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        if self.heads % self.kv_width_heads:
            raise UsageError(f"heads {self.heads} is not divisible by kv_heads {self.kv_width_heads}")

    @property
    def inner(self) -> int:
        return self.ffn or 4 * self.hidden

    @property
    def kv_width_heads(self) -> int:
        return self.kv_heads or self.heads

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def params_per_layer(self) -> int:
        """Weights of one block (biases and norms excluded, as in Narayanan et al.'s 12h^2 for a 4h MLP)."""
        h, kv = self.hidden, self.kv_width_heads * self.head_dim
        return h * (h + 2 * kv) + h * h + 2 * h * self.inner


@dataclass(frozen=True)
class Op:
    """One kernel: a GEMM (`batch` x M x K @ K x N) or a memory-bound op (`flops`, `bytes`)."""

    name: str
    kind: str  # "gemm" or "memory"
    flops: float
    bytes: float

    @staticmethod
    def gemm(name: str, m: int, k: int, n: int, batch: int = 1) -> Op:
        return Op(name, "gemm", 2.0 * batch * m * k * n, float(ACTIVATION_BYTES * batch * (m * k + k * n + m * n)))


@dataclass(frozen=True)
class Collective:
    """One tensor-parallel collective of the layer: `kind` on a buffer of `bytes` over the tp group."""

    name: str
    kind: str
    bytes: float


@dataclass(frozen=True)
class LayerWork:
    """One layer's kernels and collectives on one GPU, for one micro-batch."""

    forward: tuple[Op, ...]
    backward: tuple[Op, ...]
    attention_core: tuple[Op, ...]  # what selective recomputation re-runs
    forward_comm: tuple[Collective, ...]
    backward_comm: tuple[Collective, ...]


def _elementwise(name: str, elements: float, flops_per_element: float, read: float, write: float) -> Op:
    return Op(name, "memory", elements * flops_per_element, elements * (read + write))


def _tensor_parallel_collectives(buffer: float, tp: int, sequence_parallel: bool) -> tuple[Collective, ...]:
    """A layer's tensor-parallel traffic on the hidden stream of `buffer` bytes, the same forward and backward:
    with sequence parallelism an all-gather before each column-parallel linear and a reduce-scatter after each
    row-parallel one; without, an all-reduce after each row-parallel linear (forward) and before each
    column-parallel one (backward)."""
    if tp == 1:
        return ()
    if sequence_parallel:
        return (
            Collective("attention all-gather", "all_gather", buffer),
            Collective("attention reduce-scatter", "reduce_scatter", buffer),
            Collective("mlp all-gather", "all_gather", buffer),
            Collective("mlp reduce-scatter", "reduce_scatter", buffer),
        )
    return (
        Collective("attention all-reduce", "all_reduce", buffer),
        Collective("mlp all-reduce", "all_reduce", buffer),
    )


def layer_work(
    shape: TransformerShape, micro_batch: int, tp: int, sequence_parallel: bool, fused_attention: bool = False
) -> LayerWork:
    """The kernels of one layer, Megatron-LM's layout: column-parallel QKV and first MLP linear, row-parallel
    output projection and second MLP linear; materialised softmax and dropout on the scores (no fused attention,
    as in Megatron-LM of 2022); fused bias-GELU and bias-dropout-add kernels; LayerNorm. 16-bit activations,
    1-byte dropout masks. Backward: two GEMMs (input and weight gradients) per forward GEMM; elementwise ops
    read the saved input and the incoming gradient and write one gradient (a dropout reads its mask).
    `fused_attention`: the scores, softmax, dropout and context run as one kernel (FlashAttention, Dao et al.
    2022) at the matmul rate: forward the two products' FLOPs, backward 2.5x them (it recomputes the scores:
    five products against the forward's two), reading Q, K, V and writing the output."""
    s, b, h, t = shape.seq_len, micro_batch, shape.hidden, tp
    a, d, f = shape.heads, shape.head_dim, shape.inner
    kv = shape.kv_width_heads * d
    if a % t or shape.kv_width_heads % t:
        raise UsageError(f"tp {t} does not divide the {a} heads / {shape.kv_width_heads} key-value heads")
    tokens = s * b
    e, mask = ACTIVATION_BYTES, MASK_BYTES
    stream = tokens * h / (t if sequence_parallel else 1)  # elements of the hidden stream on one GPU
    scores = b * a / t * s * s
    mlp = tokens * f / t
    gemms = [
        Op.gemm("qkv", tokens, h, (h + 2 * kv) // t),
        Op.gemm("scores", s, d, s, batch=b * a // t),
        Op.gemm("context", s, s, d, batch=b * a // t),
        Op.gemm("projection", tokens, h // t, h),
        Op.gemm("mlp up", tokens, h, f // t),
        Op.gemm("mlp down", tokens, f // t, h),
    ]
    softmax = _elementwise("scale-mask-softmax", scores, 5, e, e)
    attention_dropout = _elementwise("attention dropout", scores, 2, e, e + mask)
    norm = _elementwise("layernorm", stream, 5, e, e)
    gelu = _elementwise("bias-gelu", mlp, 8, e, e)
    residual = _elementwise("bias-dropout-add", stream, 4, 2 * e, e + mask)
    core = (gemms[1], softmax, attention_dropout, gemms[2])
    core_backward: tuple[Op, ...] = (
        _elementwise("softmax backward", scores, 4, 2 * e, e),
        _elementwise("attention dropout backward", scores, 1, e + mask, e),
        *(Op(g.name + grad, "gemm", g.flops, g.bytes) for g in gemms[1:3] for grad in (" input grad", " weight grad")),
    )
    if fused_attention:
        products = gemms[1].flops + gemms[2].flops
        qkvo = 4 * tokens * h / t * e
        core = (Op("fused attention", "gemm", products, qkvo),)
        core_backward = (Op("fused attention backward", "gemm", 2.5 * products, 2 * qkvo),)
    forward = (norm, gemms[0], *core, gemms[3], residual, norm, gemms[4], gelu, gemms[5], residual)
    backward_memory = (
        _elementwise("layernorm backward", stream, 8, 2 * e, e),
        _elementwise("layernorm backward", stream, 8, 2 * e, e),
        _elementwise("bias-gelu backward", mlp, 10, 2 * e, e),
        _elementwise("bias-dropout-add backward", stream, 2, e + mask, e),
        _elementwise("bias-dropout-add backward", stream, 2, e + mask, e),
    )
    linears = (gemms[0], gemms[3], gemms[4], gemms[5])
    backward = (
        tuple(Op(g.name + grad, "gemm", g.flops, g.bytes) for g in linears for grad in (" input grad", " weight grad"))
        + core_backward
        + backward_memory
    )
    comm = _tensor_parallel_collectives(tokens * h * e, t, sequence_parallel)
    return LayerWork(forward, backward, core, comm, comm)


def head_work(shape: TransformerShape, micro_batch: int, tp: int, sequence_parallel: bool) -> LayerWork:
    """The last stage's extra work: the final LayerNorm, the vocabulary-parallel output GEMM (V/t columns per
    GPU) and the cross-entropy on fp32 logits (read 16-bit, write fp32 softmax; backward reads it, writes 16-bit)."""
    tokens = shape.seq_len * micro_batch
    h, t, e = shape.hidden, tp, ACTIVATION_BYTES
    stream = tokens * h / (t if sequence_parallel else 1)
    logits = tokens * shape.vocab / t
    output = Op.gemm("output", tokens, h, shape.vocab // t)
    forward = (
        _elementwise("final layernorm", stream, 5, e, e),
        output,
        _elementwise("cross-entropy", logits, 5, e, FP32_BYTES),
    )
    backward = (
        Op("output input grad", "gemm", output.flops, output.bytes),
        Op("output weight grad", "gemm", output.flops, output.bytes),
        _elementwise("cross-entropy backward", logits, 2, FP32_BYTES, e),
        _elementwise("final layernorm backward", stream, 8, 2 * e, e),
    )
    comm = (Collective("head all-gather", "all_gather", tokens * h * e),) if (t > 1 and sequence_parallel) else ()
    return LayerWork(forward, backward, (), comm, comm)


def embedding_work(shape: TransformerShape, micro_batch: int, tp: int, sequence_parallel: bool) -> LayerWork:
    """The first stage's extra work: the vocabulary-parallel embedding lookup plus position embedding, whose
    partial sums are all-reduced (reduce-scattered with sequence parallelism) over the tp group."""
    tokens = shape.seq_len * micro_batch
    h, t, e = shape.hidden, tp, ACTIVATION_BYTES
    forward = (_elementwise("embedding lookup", tokens * h, 1, 2 * e, e),)
    backward = (_elementwise("embedding backward", tokens * h, 1, e, 2 * e),)
    kind = "reduce_scatter" if sequence_parallel else "all_reduce"
    comm = (Collective("embedding " + kind.replace("_", "-"), kind, tokens * h * e),) if t > 1 else ()
    return LayerWork(forward, backward, (), comm, ())
