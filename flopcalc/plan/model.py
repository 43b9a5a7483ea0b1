"""What a plan needs of a model: FLOPs per micro-batch, parameters, activations and shape, counted
(`model_from_spec`, `model_from_report`) or from the parameter count (`model_from_params`, Korthikanti et al.)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..compute import step_flops
from ..counting.activations import ActivationProfile, SavedBytes
from ..errors import UsageError
from ..predict import TransformerShape
from ..spec import ModelSpec
from .checks import positive, positive_int

if TYPE_CHECKING:
    from ..counting.report import CountReport


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

    @property
    def blocks(self) -> int:
        return self.layers or 0

    def per_example(self, flops: float) -> float:
        return flops / self.batch

    def gemm_shape(self) -> tuple[TransformerShape | None, tuple[str, ...]]:
        """The GPT shape the step-time model lays its GEMMs out from, and lines saying where each figure came from
        (the counter records FLOPs per module, not each matmul's M, N, K); None and why when there is none."""
        if not (self.layers and self.hidden and self.heads):
            return None, ("the model shows no transformer shape (layers, hidden, heads)",)
        if not self.tokens_per_example:
            return None, ("the model's tokens per example are unknown",)
        h, layers = self.hidden, self.layers
        kv = (self.kv_heads or self.heads) * (h // self.heads)
        lines = [f"GEMM shapes: Megatron-LM's layout of a GPT layer with {layers} layers, hidden {h}, {self.heads} "
                 f"heads ({self.kv_heads or self.heads} key-value), {self.tokens_per_example} tokens per example, "
                 f"from {self.shape_source or 'the model'}: the counter gives FLOPs per module, not each matmul's M, N, K"]
        ffn = self.ffn
        counted = self.activations is not None and self.activations.blocks != "(formula)"
        if ffn is None and counted and self.activations.block_params:
            per_layer = self.activations.block_params / layers
            derived = round((per_layer - h * (h + 2 * kv) - h * h) / (2 * h))
            if derived > 0:
                ffn = derived
                lines.append(f"MLP width {ffn}: the blocks' {self.activations.block_params:,} parameters less the "
                             "attention's, over 2 x hidden (a gated MLP's three matrices count as a 1.5x wider one)")
        ffn = ffn or 4 * h
        vocab = self.vocab
        if vocab is None and counted and self.activations.params_before >= h:
            vocab = round(self.activations.params_before / h)
            lines.append(f"vocabulary {vocab:,}: the parameters before the first block (the embedding tables) over "
                         "hidden")
        elif vocab is None:
            outside = self.params - layers * (h * (h + 2 * kv) + h * h + 2 * h * ffn)
            vocab = max(1, round(outside / h))
            lines.append(f"vocabulary {vocab:,}: the parameters outside the blocks over hidden (give --vocab)")
        try:
            shape = TransformerShape(layers, h, self.heads, self.tokens_per_example, vocab, ffn, self.kv_heads)
        except UsageError as error:
            return None, (f"the model's shape does not make a GPT layer: {error.message}",)
        return shape, tuple(lines)


def _check_shape(layers: int | None, hidden: int | None, heads: int | None, kv_heads: int | None,
                 ffn: int | None, vocab: int | None) -> bool:
    """Whether a transformer shape is given (--layers, --hidden and --heads, all or none), each value checked."""
    shape = {"--layers": layers, "--hidden": hidden, "--heads": heads}
    given = [flag for flag, value in shape.items() if value is not None]
    extra = [flag for flag, value in (("--kv-heads", kv_heads), ("--ffn", ffn), ("--vocab", vocab)) if value is not None]
    if given and len(given) < 3:
        raise UsageError(f"{', '.join(given)} without {', '.join(f for f in shape if f not in given)}",
                         "a transformer shape is --layers, --hidden and --heads together")
    if extra and not given:
        raise UsageError(f"{', '.join(extra)} need{'s' if len(extra) == 1 else ''} --layers, --hidden and --heads")
    for flag, value in (*shape.items(), ("--kv-heads", kv_heads), ("--ffn", ffn), ("--vocab", vocab)):
        if value is not None:
            positive_int(value, flag)
    if given:
        if hidden % heads:
            raise UsageError(f"--hidden {hidden} is not divisible by --heads {heads}", "hidden = heads x head size")
        kv = heads if kv_heads is None else kv_heads
        if heads % kv:
            raise UsageError(f"--heads {heads} is not divisible by --kv-heads {kv}", "each K/V head serves whole query heads")
    return bool(given)


def model_from_params(
    params: float,
    seq_len: int,
    *,
    layers: int | None = None,
    hidden: int | None = None,
    heads: int | None = None,
    kv_heads: int | None = None,
    ffn: int | None = None,
    vocab: int | None = None,
) -> PlanModel:
    """A model known by its parameter count N and sequence length s, one sequence per example.

    Forward = 2N FLOPs per token (Kaplan et al. 2020), plus, with the shape, the attention products
    4 x layers x s x hidden per token (PaLM's 6LH(2QT) for forward and backward); backward = 2x forward.
    With `layers`, `hidden` and `heads`, activations follow Korthikanti et al. 2022's GPT layer (LayerNorm,
    dropout, a `ffn`-wide GELU MLP, default 4 x hidden), with `kv_heads` narrowing K and V; parameters split
    evenly over pipeline stages. `vocab` only documents the shape.
    """
    n = positive(params, "--params")
    s = positive_int(seq_len, "--seq-len")
    given = _check_shape(layers, hidden, heads, kv_heads, ffn, vocab)
    forward = 2 * n * s
    method = ["--params: forward 2N FLOPs per token (Kaplan et al. 2020), backward 2x forward"]
    activations = None
    attention = 0.0
    if given:
        kv = heads if kv_heads is None else kv_heads
        attention = 4.0 * layers * s * s * hidden
        forward += attention
        activations = korthikanti_profile(layers, hidden, heads, s, kv_heads=kv, ffn=ffn or 4 * hidden,
                                          params=n)
        method.append("--params with a shape: attention products 4 x layers x seq x hidden FLOPs per token added; "
                     "activations by Korthikanti et al. 2022 (materialised attention, dropout, GELU MLP); "
                     "embedding and output-layer activations and the loss are not included")
    else:
        method.append("--params without --layers/--hidden/--heads: activations unknown, so memory is model states "
                     "only, and tensor and pipeline parallelism are not planned")
    described = (("--layers", layers), ("--hidden", hidden), ("--heads", heads), ("--kv-heads", kv_heads),
                 ("--ffn", ffn), ("--vocab", vocab))
    text = " ".join([f"--params {n:.4g} --seq-len {s}", *(f"{flag} {value}" for flag, value in described if value)])
    return PlanModel(
        source=text, params=int(round(n)), batch=1, forward_flops=forward, backward_flops=2 * forward,
        block_forward_flops=forward, attention_forward_flops=attention, activations=activations,
        layers=layers, hidden=hidden, heads=heads, kv_heads=(heads if kv_heads is None else kv_heads) if given else None,
        tokens_per_example=s, method=tuple(method), vocab=vocab, ffn=ffn,
        shape_source="--layers, --hidden, --heads" if given else "",
    )


def korthikanti_profile(layers: int, hidden: int, heads: int, seq_len: int, *, kv_heads: int | None = None,
                        ffn: int | None = None, params: float = 0) -> ActivationProfile:
    """Korthikanti et al. 2022's activations of one sequence through `layers` GPT blocks, as an ActivationProfile.

    Per block (s tokens, h hidden, a heads, 16-bit = 2 bytes per element, dropout masks 1 byte):
    replicated 10sh bytes (the two LayerNorm inputs 4sh, the QKV and MLP inputs 4sh, two dropout masks 2sh),
    split 24sh (Q, K, V 6sh, the output projection's input 2sh, the GELU's input and output 16sh with a 4h MLP),
    scores 5as^2 (softmax output 2as^2, its dropout mask as^2 and output 2as^2): sh(34 + 5as/h) in all.
    """
    s, h, a = seq_len, hidden, heads
    kv_width = h * (kv_heads or heads) // heads
    inner = ffn or 4 * h
    per_block_replicated = SavedBytes(4 * s * h, 2 * s * h)
    per_block_split = SavedBytes(s * h + 2 * s * kv_width + s * h + 2 * s * inner, 0)
    per_block_scores = SavedBytes(2 * a * s * s, a * s * s)
    blocks = per_block_replicated.scaled(layers), per_block_split.scaled(layers), per_block_scores.scaled(layers)
    return ActivationProfile(
        batch_size=1, total=blocks[0] + blocks[1] + blocks[2], blocks="(formula)", layers=layers,
        block_replicated=blocks[0], block_split=blocks[1], block_scores=blocks[2],
        block_input=SavedBytes(s * h * layers, 0), params=int(params), block_params=int(params),
        hidden=h, seq_len=s, heads=a, kv_heads=kv_heads or heads,
    )


def model_from_report(
    report: "CountReport", profile: ActivationProfile, *, source: str, heads: int | None = None,
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
        attention = 4.0 * profile.layers * profile.batch_size * profile.seq_len ** 2 * profile.hidden
        notes.append("the attention is eager (no scaled_dot_product_attention): selective recomputation re-runs "
                     "its products, taken as 4 x layers x batch x seq^2 x hidden FLOPs")
    if report.unsupported_ops:
        listed = ", ".join(f"{op} x{n}" for op, n in report.unsupported_ops.items())
        notes.append(f"unsupported ops (no formula, not counted): {listed}")
    for flag, value in (("--heads", heads), ("--kv-heads", kv_heads)):
        if value is not None:
            positive_int(value, flag)
    heads = heads if heads is not None else profile.heads
    kv_heads = kv_heads if kv_heads is not None else (profile.kv_heads if profile.heads == heads else heads)
    first = report.inputs[0] if report.inputs else None
    tokens = None
    if first is not None and len(first.shape) >= 2 and not first.dtype.startswith(("float", "bfloat", "complex")):
        tokens = first.shape[1]
    elif profile.seq_len:
        tokens = profile.seq_len
    if report.transformer is not None:
        shape_source = f"{report.transformer.source} and the graph (the blocks' input, the attention calls)"
    else:
        shape_source = "the graph (the blocks, their input, the attention calls)"
    if report.batch_size != profile.batch_size:
        raise UsageError(f"the count saw a batch of {report.batch_size} and the activations one of {profile.batch_size}")
    return PlanModel(
        source=source, params=report.params, batch=report.batch_size, forward_flops=float(forward),
        backward_flops=float(backward), block_forward_flops=block_forward, attention_forward_flops=attention,
        activations=profile, layers=profile.layers or None, hidden=profile.hidden, heads=heads, kv_heads=kv_heads,
        tokens_per_example=tokens, notes=tuple(dict.fromkeys(notes)), vocab=profile.vocab,
        fused_attention=not profile.block_scores.floating_elements, shape_source=shape_source,
        method=(f"counted: {forward:,} forward + {backward:,} backward FLOP per micro-batch of {report.batch_size} "
                "(1 multiply-add = 2 FLOPs); activations measured on the graph (tensors autograd saves, each storage "
                "once, parameters excluded), floating-point ones priced at the training precision, attention as a "
                "fused kernel keeps it, dropout masks 1 byte",),
    )


def model_from_spec(spec: ModelSpec, *, heads: int | None = None, kv_heads: int | None = None) -> PlanModel:
    """Count the spec's model once and measure its activations (flopcalc.api), for planning."""
    from ..api import count_with_activations

    report, profile = count_with_activations(spec)
    return model_from_report(report, profile, source=spec.source, heads=heads, kv_heads=kv_heads)
