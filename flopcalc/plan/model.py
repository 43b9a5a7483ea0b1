"""What a plan needs of a model: FLOPs per micro-batch, parameters, activations and shape, counted
(`model_from_spec`, `model_from_report`) or from the parameter count and shape (`model_from_params`, with
shape.py's formulas)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..compute import step_flops
from ..counting.activations import ActivationProfile
from ..counting.report import ExpertLayer, unsupported_ops_note
from ..errors import UsageError
from ..predict import TransformerShape
from ..spec import ModelSpec
from .checks import positive, positive_int
from .shape import GivenShape, Shape, ShapeFigures, gemm_ffn, kernel_words

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's is Python 3.11; only a type checker reads it

    from ..counting.report import CountReport


@dataclass(frozen=True)
class FineTuning:
    """What LoRA adapters and a distillation teacher change in a plan (docs/adapters.md).

    `trainable_params` get gradients and optimizer states; the rest of the model's parameters are a frozen base
    held in `frozen_bytes` (at `base_dtype`, quantisation scales included). A teacher adds its frozen weights
    (`teacher_bytes`, at `teacher_dtype`), its forward FLOPs and its outputs (kept for the loss), per counted
    batch of the student."""

    trainable_params: int
    frozen_bytes: float = 0.0
    base_dtype: str | None = None
    adapters: dict[str, object] | None = None
    teacher_source: str | None = None
    teacher_params: int = 0
    teacher_bytes: float = 0.0
    teacher_dtype: str | None = None
    teacher_forward_flops: float = 0.0
    teacher_output_elements: float = 0.0

    @property
    def has_teacher(self) -> bool:
        return self.teacher_source is not None


@dataclass(frozen=True)
class PlanModel:
    """What a plan needs of a model, for `batch` examples (the micro-batch it was counted with).

    FLOPs are of the whole model for `batch` examples; `block_forward_flops` is the forward of the repeated
    blocks (what full recomputation re-runs), `attention_forward_flops` that of their attention products
    (what selective recomputation re-runs). `activations` is None when unknown (--params without a shape).
    """

    source: str
    params: int
    batch: int
    forward_flops: float
    backward_flops: float
    block_forward_flops: float
    attention_forward_flops: float
    activations: ActivationProfile | None
    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    tokens_per_example: int | None = None
    method: tuple[str, ...] = ()  # how the figures were obtained: printed with the assumptions
    notes: tuple[str, ...] = ()
    vocab: int | None = None
    ffn: int | None = None  # the MLP's inner width; None: 4 x hidden, or read off the blocks' parameters
    fused_attention: bool = False  # the attention keeps no score matrix (a fused kernel): its time is one kernel's
    shape_source: str = ""  # where layers, hidden, heads came from: said with the step-time prediction
    head_dim: int | None = None  # None: hidden / heads
    flops_known: bool = True  # False: --params without --seq-len, model states only
    tuning: FineTuning | None = None  # LoRA adapters and/or a distillation teacher
    experts: tuple[ExpertLayer, ...] = ()  # mixture-of-experts layers (plan/experts.py splits them over ep)

    @property
    def blocks(self) -> int:
        return self.layers or 0

    @property
    def trainable_share(self) -> float:
        """The fraction of the parameters that train (1 without adapters)."""
        return 1.0 if self.tuning is None else self.tuning.trainable_params / self.params

    @property
    def frozen_bytes_per_param(self) -> float:
        """Bytes of frozen base weights per parameter of the model (0 without adapters)."""
        return 0.0 if self.tuning is None else self.tuning.frozen_bytes / self.params

    @property
    def teacher_forward_flops(self) -> float:
        return 0.0 if self.tuning is None else self.tuning.teacher_forward_flops

    def per_example(self, flops: float) -> float:
        return flops / self.batch

    def gemm_shape(self) -> tuple[TransformerShape | None, tuple[str, ...]]:
        """The GPT shape the step-time model lays its GEMMs out from, and lines saying where each figure came from
        (the counter records FLOPs per module, not each matmul's M, N, K); None and why when there is none."""
        if not (self.layers and self.hidden and self.heads):
            return None, ("the model shows no transformer shape (layers, hidden, heads)",)
        if not self.tokens_per_example:
            return None, ("the model's tokens per example are unknown",)
        if self.head_dim is not None and self.head_dim * self.heads != self.hidden:
            return None, (
                f"heads x head_dim = {self.heads} x {self.head_dim} is not hidden {self.hidden}: the "
                "step-time model lays out attention heads of hidden / heads",
            )
        h, layers = self.hidden, self.layers
        kv = (self.kv_heads or self.heads) * (h // self.heads)
        lines = [
            f"GEMM shapes: Megatron-LM's layout of a GPT layer with {layers} layers, hidden {h}, {self.heads} "
            f"heads ({self.kv_heads or self.heads} key-value), {self.tokens_per_example} tokens per example, "
            f"from {self.shape_source or 'the model'}: the counter gives FLOPs per module, not each matmul's M, N, K"
        ]
        ffn = self.ffn
        counted = self.activations is not None and self.activations.blocks != "(formula)"
        if ffn is None and counted and self.activations.block_params:
            # a mixture of experts computes with the top-k of each layer's experts (even routing): those count
            idle = sum(
                layer.params - layer.params // layer.num_experts * layer.top_k
                for layer in self.experts
                if layer.top_k is not None
            )
            per_layer = (self.activations.block_params - idle) / layers
            derived = round((per_layer - h * (h + 2 * kv) - h * h) / (2 * h))
            if derived > 0:
                ffn = derived
                lines.append(
                    f"MLP width {ffn}: the blocks' {self.activations.block_params - idle:,} parameters "
                    f"{'a token uses (top-k of the experts) ' if idle else ''}less the attention's, over 2 x "
                    "hidden (a gated MLP's three matrices count as a 1.5x wider one)"
                )
        ffn = ffn or 4 * h
        vocab = self.vocab
        if vocab is None and counted and self.activations.params_before >= h:
            vocab = round(self.activations.params_before / h)
            lines.append(
                f"vocabulary {vocab:,}: the parameters before the first block (the embedding tables) over hidden"
            )
        elif vocab is None:
            outside = self.params - layers * (h * (h + 2 * kv) + h * h + 2 * h * ffn)
            vocab = max(1, round(outside / h))
            lines.append(f"vocabulary {vocab:,}: the parameters outside the blocks over hidden (give --vocab)")
        try:
            shape = TransformerShape(layers, h, self.heads, self.tokens_per_example, vocab, ffn, self.kv_heads)
        except UsageError as error:
            return None, (f"the model's shape does not make a GPT layer: {error.message}",)
        return shape, tuple(lines)


def model_from_params(
    params: float | None,
    seq_len: int | None,
    shape: GivenShape | None = None,
    *,
    params_tolerance: float | None = None,
    **given: Unpack[ShapeFigures],
) -> PlanModel:
    """A model known by its parameter count N (or its shape, which gives N) and sequence length s, one sequence
    per example. The shape is a GivenShape, or its fields by keyword (`layers=32, hidden=4096, heads=32`), which
    also override a GivenShape's.

    Forward = 2N FLOPs per token (Kaplan et al. 2020), plus, with the shape, the attention products
    4 x layers x s x heads x head_dim per token (PaLM's 6LH(2QT) for forward and backward); backward = 2x
    forward. With `layers`, `hidden` and `heads`, activations follow Korthikanti et al. 2022's GPT layer
    (LayerNorm, dropout, a `ffn`-wide GELU or SwiGLU MLP), with `kv_heads` narrowing K and V, and the s x s scores
    kept only by `attention="math"`; parameters split evenly over pipeline stages. `params_tolerance`: refuse an N
    further than this fraction from the shape's. Without `seq_len` the model has no FLOPs per example: only its
    model states are planned, and `notes` say what the activations need.
    """
    described = replace(shape or GivenShape(), **given)
    resolved = described.resolved()
    n, method = _params_count(params, resolved, params_tolerance, described)
    s = None if seq_len is None else positive_int(seq_len, "--seq-len")
    forward = 0.0 if s is None else 2 * n * s
    if s is not None:
        method.append("--params: forward 2N FLOPs per token (Kaplan et al. 2020), backward 2x forward")
    attention_flops, activations, shape_method, notes = _shape_flops_and_activations(resolved, n, s)
    forward += attention_flops
    method += shape_method
    if s is None:
        method.append(
            "no --seq-len: model states only (weights, gradients, optimizer after ZeRO); FLOPs per example, "
            "step time and activations need --seq-len"
        )
    return PlanModel(
        source=_params_source(params, n, s, described),
        params=int(round(n)),
        batch=1,
        forward_flops=forward,
        backward_flops=2 * forward,
        block_forward_flops=forward,
        attention_forward_flops=attention_flops,
        activations=activations,
        layers=described.layers,
        hidden=described.hidden,
        heads=described.heads,
        kv_heads=resolved.kv_heads if resolved is not None else None,
        tokens_per_example=s,
        method=tuple(method),
        notes=tuple(notes),
        flops_known=s is not None,
        vocab=described.vocab,
        ffn=gemm_ffn(resolved),
        fused_attention=resolved is not None and resolved.attention == "flash",
        head_dim=described.head_dim,
        shape_source="--layers, --hidden, --heads" if resolved is not None else "",
    )


def _params_count(
    params: float | None, shape: Shape | None, params_tolerance: float | None, described: GivenShape
) -> tuple[float, list[str]]:
    """N: the one given (checked against the shape's within `params_tolerance`) or the shape's, and how."""
    if params is None:
        if shape is None:
            raise UsageError(
                "nothing to plan", "give --params N, or the shape (--layers, --hidden, --heads) to derive it"
            )
        return float(shape.params), [f"--params not given: {shape.formula()}"]
    n = positive(params, "--params")
    if shape is not None and params_tolerance is not None and abs(n - shape.params) > params_tolerance * shape.params:
        given = " ".join(f"{flag} {value}" for flag, value in described.sizes().items() if value is not None)
        raise UsageError(
            f"--params {n:.4g} is {abs(n / shape.params - 1):.0%} away from the {shape.params:,} "
            f"({shape.params:.4g}) parameters of {given} ({shape.mlp} MLP of {shape.ffn}), more "
            f"than {params_tolerance:.0%}",
            "fix the shape (--ffn, --mlp swiglu, --kv-heads, --vocab) or --params, or leave "
            "--params out to take the shape's",
        )
    return n, []


def _shape_flops_and_activations(
    shape: Shape | None, n: float, s: int | None
) -> tuple[float, ActivationProfile | None, list[str], list[str]]:
    """What the shape adds to 2N: the attention products' forward FLOPs per example, the activations (with s),
    and the method and notes lines saying so or what is missing."""
    method: list[str] = []
    if shape is None:
        if s is not None:
            method.append(
                "--params without --layers/--hidden/--heads: activations unknown, so memory is model states "
                "only, and tensor and pipeline parallelism are not planned"
            )
            return 0.0, None, method, []
        return 0.0, None, method, ["activations need --seq-len and the shape (--layers, --hidden, --heads)"]
    if shape.mlp == "swiglu":
        method.append(f"SwiGLU MLP: 3 matrices of hidden x ffn = {shape.hidden} x {shape.ffn} per layer")
    if s is None:
        return 0.0, None, method, [_activations_per_sequence(shape)]
    attention_flops = 4.0 * shape.layers * s * s * shape.heads * shape.head_dim
    activations = shape.activations(s, params=n)
    method.append(
        "--params with a shape: attention products 4 x layers x seq x heads x head_dim FLOPs per "
        f"token added; activations by Korthikanti et al. 2022 ({kernel_words(shape.attention)}, dropout, "
        f"{'SwiGLU' if shape.mlp == 'swiglu' else 'GELU'} MLP); embedding and output-layer "
        "activations and the loss are not included"
    )
    return attention_flops, activations, method, []


def _activations_per_sequence(shape: Shape) -> str:
    """Without --seq-len: the activations of one sequence of s tokens, as a formula in s."""
    per_token = shape.activations(1, attention="flash")
    kept = per_token.blocks_total
    scores = (
        f" + {5 * shape.layers * shape.heads} x s^2 bytes of attention scores (--attention math)"
        if shape.attention == "math"
        else ""
    )
    return (
        f"activations need --seq-len: per sequence of s tokens, {kept.bytes_at(2):,.0f} x s bytes "
        f"at 16 bits ({shape.layers} layers, Korthikanti et al. 2022, {kernel_words(shape.attention)})"
        f"{scores}, before tensor/sequence parallelism and recomputation divide them"
    )


def _params_source(params: float | None, n: float, s: int | None, described: GivenShape) -> str:
    """The options that describe the model, as the plan's source line."""
    words = [f"--params {n:.4g}"] if params is not None else []
    words += [f"--seq-len {s}"] if s is not None else []
    words += [f"{flag} {value}" for flag, value in described.flags().items() if value]
    if params is None:
        words.append(f"(N = {n:.4g} from the shape)")
    return " ".join(words)


def model_from_report(
    report: CountReport,
    profile: ActivationProfile,
    *,
    source: str,
    heads: int | None = None,
    kv_heads: int | None = None,
) -> PlanModel:
    """A counted model: FLOPs from its CountReport, activations and structure from its ActivationProfile;
    `heads`/`kv_heads` override what the graph and the model's config show."""
    forward, backward, assumed = step_flops(report)
    blocks = [layer for layer in report.layers if layer.name in set(profile.block_names)]
    block_forward = float(sum(layer.forward for layer in blocks))
    attention = float(sum(layer.forward_by_category.get("attention", 0) for layer in blocks))
    notes = [*assumed, *report.notes, *profile.notes]
    if profile.block_scores.floating_elements and not attention and profile.hidden and profile.seq_len:
        # eager attention: its QK^T and x V products were counted as matmul; selective recomputation re-runs them
        attention = 4.0 * profile.layers * profile.batch_size * profile.seq_len**2 * profile.hidden
        notes.append(
            "the attention is eager (no scaled_dot_product_attention): selective recomputation re-runs "
            "its products, taken as 4 x layers x batch x seq^2 x hidden FLOPs"
        )
    unsupported = unsupported_ops_note(report.unsupported_ops)
    if unsupported:
        notes.append(unsupported)
    for flag, value in (("--heads", heads), ("--kv-heads", kv_heads)):
        if value is not None:
            positive_int(value, flag)
    heads = heads if heads is not None else profile.heads
    kv_heads = kv_heads if kv_heads is not None else (profile.kv_heads if profile.heads == heads else heads)
    tokens = _tokens_per_example(report, profile)
    if report.transformer is not None:
        shape_source = f"{report.transformer.source} and the graph (the blocks' input, the attention calls)"
    else:
        shape_source = "the graph (the blocks, their input, the attention calls)"
    if report.batch_size != profile.batch_size:
        raise UsageError(
            f"the count saw a batch of {report.batch_size} and the activations one of {profile.batch_size}"
        )
    return PlanModel(
        source=source,
        params=report.params,
        batch=report.batch_size,
        forward_flops=float(forward),
        backward_flops=float(backward),
        block_forward_flops=block_forward,
        attention_forward_flops=attention,
        activations=profile,
        layers=profile.layers or None,
        hidden=profile.hidden,
        heads=heads,
        kv_heads=kv_heads,
        tokens_per_example=tokens,
        notes=tuple(dict.fromkeys(notes)),
        experts=report.expert_layers,
        vocab=profile.vocab,
        fused_attention=not profile.block_scores.floating_elements,
        shape_source=shape_source,
        method=(
            f"counted: {forward:,} forward + {backward:,} backward FLOP per micro-batch of {report.batch_size} "
            "(1 multiply-add = 2 FLOPs); activations measured on the graph (tensors autograd saves, each storage "
            "once, parameters excluded), floating-point ones priced at the training precision, attention as a "
            "fused kernel keeps it, dropout masks 1 byte",
        ),
    )


def _tokens_per_example(report: CountReport, profile: ActivationProfile) -> int | None:
    """Tokens per example: the second dimension of an integer first input (token ids), else the sequence
    length the activations' pass saw."""
    first = report.inputs[0] if report.inputs else None
    if first is not None and len(first.shape) >= 2 and not first.dtype.startswith(("float", "bfloat", "complex")):
        return first.shape[1]
    return profile.seq_len or None


def model_from_spec(spec: ModelSpec, *, heads: int | None = None, kv_heads: int | None = None) -> PlanModel:
    """Count the spec's model once and measure its activations (flopcalc.api), for planning."""
    from ..api import count_with_activations

    report, profile = count_with_activations(spec)
    return model_from_report(report, profile, source=spec.source, heads=heads, kv_heads=kv_heads)
