"""`flopcalc plan`: does a training run fit in GPU memory, how to split it over GPUs, how long it takes.

The model is counted once (`model_from_spec`: FLOPs per micro-batch forward and backward, parameters, and the
bytes its backward keeps, measured on the graph; or `model_from_params`: the 6N rule and Korthikanti et al.'s
per-layer activations). Everything after is arithmetic on those figures (`evaluate` one layout, `search` all
of them), so thousands of layouts take well under a second. Every formula is in docs/plan.md with its source:

- model states (Rajbhandari et al. 2020, ZeRO): mixed-precision Adam keeps 2 + 2 + 12 bytes per parameter;
  ZeRO-1/2/3 partition the optimizer states / + gradients / + weights over the data-parallel group;
- activations (Korthikanti et al. 2022): split over tensor-parallel ranks (all of them with sequence
  parallelism), scores dropped by selective recomputation, only block inputs kept by full recomputation; the
  first pipeline stage holds `pp` micro-batches in flight (1F1B, Narayanan et al. 2021);
- time per step: compute at the sustained FLOP/s, ring collectives 2(n-1)/n x bytes / bus bandwidth (nccl-tests'
  busbw), Megatron's 4 tensor-parallel all-reduces per block and micro-batch, pipeline point-to-point, and the
  1F1B bubble (p-1)/(m+p-1).

Plain floats throughout (the search evaluates thousands of layouts); result objects are frozen, with `to_dict()`
the `plan --format json` contract (docs/plan.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from .compute import Throughput, step_flops
from .counting.activations import ActivationProfile, SavedBytes
from .errors import CalibrationError, UsageError
from .spec import ModelSpec

if TYPE_CHECKING:
    from .counting.report import CountReport

SCHEMA_VERSION = 1
RECOMPUTE = ("none", "selective", "full")
OPTIMIZERS = ("adamw", "sgd")
ZERO_STAGES = (0, 1, 2, 3)
DEFAULT_GPUS_PER_NODE = 8
# One 200 Gb/s InfiniBand HDR NIC per GPU (DGX A100) moves 25 GB/s; nccl-tests' inter-node busbw is about this.
DEFAULT_INTER_NODE_GBPS = 25.0
DEFAULT_TOP = 10
GB = 1e9
SECONDS_PER_DAY = 86_400
SECONDS_PER_HOUR = 3_600
# Megatron-LM: each transformer block all-reduces its activations twice in the forward (after attention and
# after the MLP) and twice in the backward; full recomputation re-runs the forward, and its two.
TP_ALL_REDUCES_PER_BLOCK = 4
TP_ALL_REDUCES_RECOMPUTED = 2


# --------------------------------------------------------------------------------------------- precision


@dataclass(frozen=True)
class TrainingPrecision:
    """Bytes per parameter and per activation element of one training precision.

    Mixed precision (bf16, fp16) keeps 16-bit weights and gradients and an fp32 master copy of the weights
    next to the fp32 optimizer states (ZeRO paper, Sec. 3.1); fp32/tf32 and fp64 train in place.
    """

    name: str
    weight_bytes: int
    gradient_bytes: int
    master_bytes: int
    state_bytes: int
    activation_bytes: int

    def optimizer_bytes(self, optimizer: str) -> int:
        """Master weights plus the optimizer's states: Adam keeps two (momentum, variance), SGD one (momentum)."""
        return self.master_bytes + OPTIMIZER_STATES[optimizer] * self.state_bytes

    def describe(self, optimizer: str) -> str:
        mixed = f"{self.name} mixed precision" if self.master_bytes else f"{self.name} training"
        total = self.weight_bytes + self.gradient_bytes + self.optimizer_bytes(optimizer)
        return (f"{mixed} with {OPTIMIZER_NAMES[optimizer]}: {self.weight_bytes} (weights) + {self.gradient_bytes} "
                f"(gradients) + {self.optimizer_bytes(optimizer)} (optimizer) = {total} bytes per parameter; "
                f"activations {self.activation_bytes} bytes per element")


TRAINING_PRECISIONS = {
    "bf16": TrainingPrecision("bf16", 2, 2, 4, 4, 2),
    "fp16": TrainingPrecision("fp16", 2, 2, 4, 4, 2),
    "tf32": TrainingPrecision("tf32", 4, 4, 0, 4, 4),
    "fp32": TrainingPrecision("fp32", 4, 4, 0, 4, 4),
    "fp64": TrainingPrecision("fp64", 8, 8, 0, 8, 8),
}
OPTIMIZER_STATES = {"adamw": 2, "sgd": 1}
OPTIMIZER_NAMES = {"adamw": "AdamW (momentum and variance)", "sgd": "SGD with momentum"}


def training_precision(name: str) -> TrainingPrecision:
    if name not in TRAINING_PRECISIONS:
        raise UsageError(f"plan trains in {', '.join(TRAINING_PRECISIONS)}, not {name}",
                         "pass --precision bf16 (fp8 training keeps bf16 weights and is not modelled)")
    return TRAINING_PRECISIONS[name]


# --------------------------------------------------------------------------------------------- the model


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

    @property
    def blocks(self) -> int:
        return self.layers or 0

    def per_example(self, flops: float) -> float:
        return flops / self.batch


def _positive_int(value: Any, what: str) -> int:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value != int(value) or value < 1):
        raise UsageError(f"{what} must be a whole number >= 1, got {value!r}")
    return int(value)


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


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
    n = _positive(params, "--params")
    s = _positive_int(seq_len, "--seq-len")
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
            _positive_int(value, flag)
    forward = 2 * n * s
    method = ["--params: forward 2N FLOPs per token (Kaplan et al. 2020), backward 2x forward"]
    activations = None
    attention = 0.0
    if given:
        if hidden % heads:
            raise UsageError(f"--hidden {hidden} is not divisible by --heads {heads}", "hidden = heads x head size")
        kv = heads if kv_heads is None else kv_heads
        if heads % kv:
            raise UsageError(f"--heads {heads} is not divisible by --kv-heads {kv}", "each K/V head serves whole query heads")
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
        tokens_per_example=s, method=tuple(method),
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
            _positive_int(value, flag)
    heads = heads if heads is not None else profile.heads
    kv_heads = kv_heads if kv_heads is not None else (profile.kv_heads if profile.heads == heads else heads)
    first = report.inputs[0] if report.inputs else None
    tokens = None
    if first is not None and len(first.shape) >= 2 and not first.dtype.startswith(("float", "bfloat", "complex")):
        tokens = first.shape[1]
    elif profile.seq_len:
        tokens = profile.seq_len
    if report.batch_size != profile.batch_size:
        raise UsageError(f"the count saw a batch of {report.batch_size} and the activations one of {profile.batch_size}")
    return PlanModel(
        source=source, params=report.params, batch=report.batch_size, forward_flops=float(forward),
        backward_flops=float(backward), block_forward_flops=block_forward, attention_forward_flops=attention,
        activations=profile, layers=profile.layers or None, hidden=profile.hidden, heads=heads, kv_heads=kv_heads,
        tokens_per_example=tokens, notes=tuple(dict.fromkeys(notes)),
        method=(f"counted: {forward:,} forward + {backward:,} backward FLOP per micro-batch of {report.batch_size} "
                "(1 multiply-add = 2 FLOPs); activations measured on the graph (tensors autograd saves, each storage "
                "once, parameters excluded), floating-point ones priced at the training precision, attention as a "
                "fused kernel keeps it, dropout masks 1 byte",),
    )


def model_from_spec(spec: ModelSpec, *, heads: int | None = None, kv_heads: int | None = None) -> PlanModel:
    """Count the spec's model once and measure its activations (flopcalc.api), for planning."""
    from .api import count_with_activations

    report, profile = count_with_activations(spec)
    return model_from_report(report, profile, source=spec.source, heads=heads, kv_heads=kv_heads)


# --------------------------------------------------------------------------------------------- the fleet


@dataclass(frozen=True)
class Bandwidth:
    """An achievable bus bandwidth per GPU in GB/s (nccl-tests' busbw), and where the figure came from."""

    gbps: float
    origin: str

    def __post_init__(self) -> None:
        _positive(self.gbps, "bandwidth (GB/s)")


@dataclass(frozen=True)
class Fleet:
    """The GPUs: what one sustains while computing, its memory, how they are wired, what they cost."""

    throughput: Throughput
    gpu_memory_bytes: float
    memory_origin: str = ""
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE
    intra_node: Bandwidth | None = None
    inter_node: Bandwidth = Bandwidth(DEFAULT_INTER_NODE_GBPS, "assumed")
    tdp_w: float | None = None
    pue: float = 1.0
    price_per_gpu_hour: float | None = None
    notes: tuple[str, ...] = ()  # where the fleet's figures came from, printed with the assumptions

    def __post_init__(self) -> None:
        _positive(self.gpu_memory_bytes, "GPU memory")
        _positive_int(self.gpus_per_node, "--gpus-per-node")
        if not 1 <= self.pue < math.inf:
            raise UsageError(f"PUE must be a number >= 1, got {self.pue!r}")
        if self.price_per_gpu_hour is not None and self.price_per_gpu_hour < 0:
            raise UsageError(f"--price-per-gpu-hour must be >= 0, got {self.price_per_gpu_hour!r}")

    def link(self, group: int, stride: int, num_gpus: int, what: str) -> Bandwidth:
        """The bandwidth of a group of `group` GPUs whose ranks are `stride` apart, in a job of `num_gpus`:
        intra-node when every such group sits inside one node (ranks fill nodes in order), else inter-node."""
        span = group * stride
        if num_gpus <= self.gpus_per_node or (span <= self.gpus_per_node and self.gpus_per_node % span == 0):
            if self.intra_node is None:
                raise UsageError(f"{what} runs inside a node, and the catalogue has no intra-node link figure for "
                                 f"{self.throughput.gpu or 'this GPU'}", "give --intra-node-gbps (nccl-tests busbw, GB/s)")
            return self.intra_node
        return self.inter_node


def calibrated_bandwidths(calibration: Any, device: str | None, catalog: Any = None) -> tuple[Any, tuple[str, ...]]:
    """The network figures `flopcalc bench --distributed --save` measured on a fleet of `device` (a
    calibration.MeasuredBandwidths), or None and a line saying so; (None, ()) without a calibration file."""
    if calibration is None:
        return None, ()
    from .calibration import load_calibration, measured_bandwidths

    try:
        return measured_bandwidths(load_calibration(calibration), device, catalog=catalog), ()
    except CalibrationError as error:
        return None, (f"no measured bandwidths ({error.message}): the network figures below are not measurements",)


# --------------------------------------------------------------------------------------------- a layout


@dataclass(frozen=True)
class Layout:
    """How the GPUs split the work: dp x tp x pp GPUs, ZeRO stage, recomputation, micro- and global batch."""

    dp: int = 1
    tp: int = 1
    pp: int = 1
    zero: int = 0
    recompute: str = "none"
    sequence_parallel: bool = False
    micro_batch: int = 1
    global_batch: int | None = None  # examples per optimizer step; None = dp x micro_batch
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE

    def __post_init__(self) -> None:
        for name in ("dp", "tp", "pp", "micro_batch"):
            _positive_int(getattr(self, name), f"--{name.replace('_', '-')}")
        if self.zero not in ZERO_STAGES:
            raise UsageError(f"--zero must be 0, 1, 2 or 3, got {self.zero!r}")
        if self.recompute not in RECOMPUTE:
            raise UsageError(f"--recompute must be none, selective or full, got {self.recompute!r}")
        if self.global_batch is not None:
            _positive_int(self.global_batch, "--global-batch")
            if self.global_batch % (self.dp * self.micro_batch):
                raise UsageError(
                    f"--global-batch {self.global_batch} is not a multiple of dp x micro-batch = "
                    f"{self.dp} x {self.micro_batch}", "each optimizer step runs whole micro-batches on every replica")

    @property
    def num_gpus(self) -> int:
        return self.dp * self.tp * self.pp

    @property
    def batch(self) -> int:
        return self.global_batch if self.global_batch is not None else self.dp * self.micro_batch

    @property
    def grad_accum(self) -> int:
        """Micro-batches per replica per optimizer step (m in the bubble formula)."""
        return self.batch // (self.dp * self.micro_batch)

    @property
    def split_sequence(self) -> bool:
        return self.sequence_parallel and self.tp > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "dp": self.dp, "tp": self.tp, "pp": self.pp, "zero": self.zero, "recompute": self.recompute,
            "sequence_parallel": self.sequence_parallel, "micro_batch": self.micro_batch,
            "global_batch": self.batch, "grad_accum": self.grad_accum, "num_gpus": self.num_gpus,
            "gpus_per_node": self.gpus_per_node,
        }

    def label(self) -> str:
        return (f"dp {self.dp} x tp {self.tp} x pp {self.pp}, ZeRO-{self.zero}, recompute {self.recompute}"
                f"{', sequence parallel' if self.split_sequence else ''}, micro-batch {self.micro_batch}")


def check_layout(model: PlanModel, layout: Layout) -> None:
    """What a layout asks of the model's shape: tensor parallelism splits heads, pipeline stages take whole blocks."""
    if layout.tp > 1:
        if not model.blocks:
            raise UsageError(f"--tp {layout.tp} splits a transformer's layers, and this model shows no repeated blocks",
                             "give --layers, --hidden and --heads with --params; a TorchScript module hides its "
                             "blocks: plan its Python model")
        if not model.heads:
            raise UsageError(f"--tp {layout.tp} needs the model's attention heads, which its graph does not show",
                             "give --heads (and --kv-heads)")
        if model.heads % layout.tp:
            raise UsageError(f"--tp {layout.tp} does not divide the {model.heads} attention heads",
                             f"use a tp that divides {model.heads}")
        if model.kv_heads and model.kv_heads % layout.tp:
            raise UsageError(f"--tp {layout.tp} does not divide the {model.kv_heads} key/value heads",
                             f"use a tp that divides {model.kv_heads}")
    if layout.pp > 1:
        if not model.blocks:
            raise UsageError(f"--pp {layout.pp} needs repeated blocks to split, and the model shows none",
                             "use --pp 1, or give --layers with --params")
        if layout.pp > model.blocks:
            raise UsageError(f"--pp {layout.pp} is more than the model's {model.blocks} layers",
                             f"use at most {model.blocks} pipeline stages")
        if model.blocks % layout.pp:
            raise UsageError(f"--pp {layout.pp} does not divide the model's {model.blocks} layers",
                             "every pipeline stage takes the same number of layers")


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class MemoryPerGpu:
    """Bytes on the most loaded GPU (`stage`: only, first or last pipeline stage). `activations` None: unknown."""

    weights: float
    gradients: float
    optimizer: float
    activations: float | None
    stage: str = "only"

    @property
    def model_states(self) -> float:
        return self.weights + self.gradients + self.optimizer

    @property
    def total(self) -> float:
        return self.model_states + (self.activations or 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "gradients": self.gradients, "optimizer": self.optimizer,
                "activations": self.activations, "total": self.total}


@dataclass(frozen=True)
class StepTime:
    """Seconds of one optimizer step per GPU, and how they add up (docs/plan.md)."""

    compute_s: float
    dp_comm_s: float
    tp_comm_s: float
    pp_comm_s: float
    bubble_fraction: float
    exposed_comm_s: float
    step_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunTotals:
    """The whole run: steps, model and hardware FLOPs, wall clock, utilisation, GPU-hours, energy, cost."""

    model_flops: float
    hardware_flops: float
    steps: int
    wall_clock_s: float
    gpu_hours: float
    mfu: float
    hfu: float
    energy_kwh: float | None
    cost: float | None

    @property
    def wall_clock_days(self) -> float:
        return self.wall_clock_s / SECONDS_PER_DAY

    def to_dict(self) -> dict[str, Any]:
        return {"model_flops": self.model_flops, "hardware_flops": self.hardware_flops, "steps": self.steps,
                "wall_clock_s": self.wall_clock_s, "wall_clock_days": self.wall_clock_days,
                "gpu_hours": self.gpu_hours, "mfu": self.mfu, "hfu": self.hfu, "energy_kwh": self.energy_kwh,
                "cost": self.cost}


@dataclass(frozen=True)
class Plan:
    """One layout evaluated: memory per GPU against the GPU's, step time, and the whole run."""

    model: PlanModel
    layout: Layout
    memory: MemoryPerGpu
    gpu_memory_bytes: float
    step: StepTime
    training: RunTotals | None
    assumptions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    gpu: str = ""  # the GPU's name, for titles

    @property
    def fits(self) -> bool | None:
        """True or False; None when activations are unknown and the model states alone fit."""
        if self.memory.total > self.gpu_memory_bytes:
            return False
        return None if self.memory.activations is None else True

    def layout_dict(self) -> dict[str, Any]:
        """The parts of the contract that differ between layouts (a `--search` candidate)."""
        return {
            "parallelism": self.layout.to_dict(),
            "memory_per_gpu_bytes": self.memory.to_dict(),
            "gpu_memory_bytes": self.gpu_memory_bytes,
            "fits": self.fits,
            "step": self.step.to_dict(),
            "training": None if self.training is None else self.training.to_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        """The `plan --format json` contract (docs/plan.md)."""
        factor = self.layout.micro_batch / self.model.batch
        return {
            "schema_version": SCHEMA_VERSION,
            "model": {
                "params": self.model.params,
                "flops_per_micro_batch": {"forward": self.model.forward_flops * factor,
                                          "backward": self.model.backward_flops * factor},
                "source": self.model.source,
            },
            **self.layout_dict(),
            "assumptions": list(self.assumptions),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class RunSize:
    """How much training: `examples` in all (epochs included), of `unit` (sequence or example)."""

    examples: float
    unit: str = "example"

    def __post_init__(self) -> None:
        _positive(self.examples, "training size")


def run_size(model: PlanModel, *, tokens: float | None = None, examples: float | None = None,
             epochs: float | None = None) -> RunSize | None:
    """`--tokens` (divided by the tokens per sequence) or `--examples` x `--epochs`; None when neither."""
    if tokens is not None and (examples is not None or epochs is not None):
        raise UsageError("--tokens excludes --examples/--epochs", "give the tokens, or the examples and epochs")
    if tokens is not None:
        _positive(tokens, "--tokens")
        if not model.tokens_per_example:
            raise UsageError("--tokens needs the tokens per example, and this model's input shows none",
                             "give --examples (and --epochs) instead")
        return RunSize(tokens / model.tokens_per_example, "sequence")
    if examples is None:
        if epochs is not None:
            raise UsageError("--epochs needs --examples")
        return None
    return RunSize(_positive(examples, "--examples") * (_positive(epochs, "--epochs") if epochs is not None else 1.0))


# --------------------------------------------------------------------------------------------- arithmetic


def _states(model: PlanModel, layout: Layout, precision: TrainingPrecision, optimizer: str, params: float) -> tuple[float, float, float]:
    """Weights, gradients and optimizer bytes per GPU of a stage holding `params` (ZeRO paper, Sec. 5)."""
    per_gpu = params / layout.tp
    dp = layout.dp
    weights = per_gpu * precision.weight_bytes / (dp if layout.zero >= 3 else 1)
    gradients = per_gpu * precision.gradient_bytes / (dp if layout.zero >= 2 else 1)
    optimizer_bytes = per_gpu * precision.optimizer_bytes(optimizer) / (dp if layout.zero >= 1 else 1)
    return weights, gradients, optimizer_bytes


def _stage_params(model: PlanModel, pp: int) -> list[tuple[str, float]]:
    """Parameters per pipeline stage: whole model on one stage; else each stage's blocks, plus what runs before
    the blocks on the first stage and after them on the last (a tied embedding on both)."""
    profile = model.activations
    if pp == 1 or profile is None:
        return [("only", float(model.params) / pp)]
    share = profile.block_params / pp
    return [("first", share + profile.params_before), ("last", share + profile.params_after)]


def _activation_bytes(model: PlanModel, layout: Layout, width: float, stage: str) -> float | None:
    """Activation bytes per GPU on a stage (Korthikanti et al. 2022, Sec. 4; 1F1B in flight: Narayanan 2021)."""
    profile = model.activations
    if profile is None:
        return None
    tp = layout.tp
    stream = tp if layout.split_sequence else 1  # the hidden stream is split only by sequence parallelism
    layers = profile.layers or 1
    full = (profile.block_replicated.bytes_at(width) / stream + profile.block_split.bytes_at(width) / tp
            + profile.block_scores.bytes_at(width) / tp) / layers
    if layout.recompute == "none":
        kept = full
    elif layout.recompute == "selective":
        kept = full - profile.block_scores.bytes_at(width) / tp / layers
    else:
        kept = profile.block_input.bytes_at(width) / stream / layers
    per_stage_layers = profile.layers / layout.pp
    before = profile.before_blocks.bytes_at(width) / stream
    after = profile.after_blocks.bytes_at(width) / stream
    if stage == "only":
        held = per_stage_layers * kept + before + after
        in_flight = 1
    elif stage == "first":
        held = per_stage_layers * kept + before
        in_flight = min(layout.pp, layout.grad_accum)
    else:
        held = per_stage_layers * kept + after
        in_flight = 1
    working = full if layout.recompute == "full" and profile.layers else 0.0  # the block being re-run
    return (in_flight * held + working) * layout.micro_batch / profile.batch_size


def _memory(model: PlanModel, layout: Layout, precision: TrainingPrecision, optimizer: str) -> MemoryPerGpu:
    worst: MemoryPerGpu | None = None
    for stage, params in _stage_params(model, layout.pp):
        weights, gradients, optimizer_bytes = _states(model, layout, precision, optimizer, params)
        activations = _activation_bytes(model, layout, precision.activation_bytes, stage)
        memory = MemoryPerGpu(weights, gradients, optimizer_bytes, activations, stage)
        if worst is None or memory.total > worst.total:
            worst = memory
    assert worst is not None
    return worst


def ring_all_reduce_s(nbytes: float, group: int, bandwidth: Bandwidth) -> float:
    """nccl-tests: busbw = algbw x 2(n-1)/n for all-reduce, so time = bytes x 2(n-1)/n / busbw."""
    return 0.0 if group <= 1 else nbytes * 2 * (group - 1) / group / (bandwidth.gbps * GB)


def ring_gather_s(nbytes: float, group: int, bandwidth: Bandwidth) -> float:
    """All-gather or reduce-scatter of `nbytes` (the whole buffer): bytes x (n-1)/n / busbw."""
    return 0.0 if group <= 1 else nbytes * (group - 1) / group / (bandwidth.gbps * GB)


def _recompute_flops(model: PlanModel, recompute: str) -> float:
    """FLOPs re-run per counted batch: the blocks' forward (full) or their attention products (selective)."""
    if recompute == "full":
        return model.block_forward_flops
    if recompute == "selective":
        return model.attention_forward_flops
    return 0.0


def _step(model: PlanModel, layout: Layout, fleet: Fleet, precision: TrainingPrecision,
          stage_params: float) -> StepTime:
    """One optimizer step on the slowest GPU (docs/plan.md, "Time per step")."""
    sustained = fleet.throughput.sustained_flops
    scale = layout.micro_batch / model.batch
    m, pp, tp, dp = layout.grad_accum, layout.pp, layout.tp, layout.dp
    forward, backward = model.forward_flops * scale, model.backward_flops * scale
    recomputed = _recompute_flops(model, layout.recompute) * scale
    total = forward + backward + recomputed
    if pp > 1:  # the slowest stage: its share of the blocks plus everything outside them (embedding, head)
        blocks_share = model.block_forward_flops / (model.forward_flops or 1)
        stage_fraction = blocks_share / pp + (1 - blocks_share)
    else:
        stage_fraction = 1.0
    compute_mb = total * stage_fraction / tp / sustained
    backward_mb = backward * stage_fraction / tp / sustained
    forward_mb = (forward + recomputed) * stage_fraction / tp / sustained
    width = precision.activation_bytes
    profile = model.activations
    hidden_bytes = (profile.block_input.bytes_at(width) / max(profile.layers, 1) * scale / profile.batch_size
                    if profile is not None else 0.0)
    tp_mb = 0.0
    if tp > 1:
        all_reduces = (TP_ALL_REDUCES_PER_BLOCK + (TP_ALL_REDUCES_RECOMPUTED if layout.recompute == "full" else 0))
        tp_mb = all_reduces * model.blocks / pp * ring_all_reduce_s(hidden_bytes, tp, fleet.link(tp, 1, layout.num_gpus, "tensor parallelism"))
    pp_mb = 0.0
    if pp > 1:
        link = fleet.link(pp, tp * dp, layout.num_gpus, "pipeline parallelism")
        pp_mb = 2 * hidden_bytes / (tp if layout.split_sequence else 1) / (link.gbps * GB)
    gradient_bytes = stage_params / tp * precision.gradient_bytes
    weight_bytes = stage_params / tp * precision.weight_bytes
    dp_comm = exposed_dp = 0.0
    if dp > 1:
        link = fleet.link(dp, tp, layout.num_gpus, "data parallelism")
        if layout.zero <= 1:  # all-reduce (ZeRO-1: reduce-scatter + all-gather, the same volume) once per step,
            dp_comm = ring_all_reduce_s(gradient_bytes, dp, link)  # under the last micro-batch's backward
            exposed_dp = max(0.0, dp_comm - backward_mb)
        elif layout.zero == 2:  # reduce-scatter per micro-batch under its backward; all-gather of the new weights
            scatter = m * ring_gather_s(gradient_bytes, dp, link)
            gather = ring_gather_s(weight_bytes, dp, link)
            dp_comm = scatter + gather
            exposed_dp = max(0.0, scatter - m * backward_mb) + gather
        else:  # ZeRO-3: per micro-batch, all-gather the weights for forward and backward, reduce-scatter gradients
            dp_comm = m * (2 * ring_gather_s(weight_bytes, dp, link) + ring_gather_s(gradient_bytes, dp, link))
            exposed_dp = max(0.0, dp_comm - m * (forward_mb + backward_mb))
    compute_s, tp_comm_s, pp_comm_s = m * compute_mb, m * tp_mb, m * pp_mb
    bubble = (pp - 1) / (m + pp - 1)
    pipeline_s = (compute_s + tp_comm_s + pp_comm_s) / (1 - bubble)
    return StepTime(compute_s, dp_comm, tp_comm_s, pp_comm_s, bubble, tp_comm_s + pp_comm_s + exposed_dp,
                    pipeline_s + exposed_dp)


def _totals(model: PlanModel, layout: Layout, fleet: Fleet, step: StepTime, run: RunSize) -> RunTotals:
    per_example = (model.forward_flops + model.backward_flops) / model.batch
    recomputed = _recompute_flops(model, layout.recompute) / model.batch
    model_flops = per_example * run.examples
    hardware_flops = (per_example + recomputed) * run.examples
    steps = math.ceil(run.examples / layout.batch - 1e-9)
    wall = steps * step.step_s
    gpus = layout.num_gpus
    gpu_hours = wall * gpus / SECONDS_PER_HOUR
    capacity = wall * gpus * fleet.throughput.peak_flops
    return RunTotals(
        model_flops=model_flops, hardware_flops=hardware_flops, steps=steps, wall_clock_s=wall,
        gpu_hours=gpu_hours, mfu=model_flops / capacity if capacity else 0.0,
        hfu=hardware_flops / capacity if capacity else 0.0,
        energy_kwh=None if fleet.tdp_w is None else fleet.tdp_w * gpu_hours * fleet.pue / 1000,
        cost=None if fleet.price_per_gpu_hour is None else gpu_hours * fleet.price_per_gpu_hour,
    )


@dataclass(frozen=True)
class _Figures:
    memory: MemoryPerGpu
    step: StepTime
    training: RunTotals | None


def _figures(model: PlanModel, layout: Layout, fleet: Fleet, precision: TrainingPrecision, optimizer: str,
             run: RunSize | None) -> _Figures:
    memory = _memory(model, layout, precision, optimizer)
    stage_params = max(params for _, params in _stage_params(model, layout.pp))
    step = _step(model, layout, fleet, precision, stage_params)
    return _Figures(memory, step, None if run is None else _totals(model, layout, fleet, step, run))


# --------------------------------------------------------------------------------------------- what is assumed


def assumptions(model: PlanModel, fleet: Fleet, precision: TrainingPrecision, optimizer: str,
                num_gpus: int) -> tuple[str, ...]:
    """The figures a plan takes as given, each with its origin: printed so nobody mistakes them for measurements."""
    t = fleet.throughput
    lines = [
        *model.method,
        f"{t.gpu or 'GPU'}, {t.precision}: peak {t.peak_flops / 1e12:.4g} TFLOP/s ({t.origin}) x utilization "
        f"{t.utilization:.4g} while computing = {t.sustained_flops / 1e12:.4g} TFLOP/s per GPU",
        f"GPU memory {fleet.gpu_memory_bytes / GB:.4g} GB ({fleet.memory_origin or 'given'}); nothing set aside for "
        "the CUDA context, communication buffers or fragmentation",
        precision.describe(optimizer) + " (ZeRO paper, Rajbhandari et al. 2020)",
    ]
    if num_gpus > 1:
        lines.extend(fleet.notes)
        if fleet.intra_node is not None:
            lines.append(f"intra-node bus bandwidth {fleet.intra_node.gbps:.4g} GB/s per GPU ({fleet.intra_node.origin})")
        if num_gpus > fleet.gpus_per_node:
            lines.append(f"inter-node bus bandwidth {fleet.inter_node.gbps:.4g} GB/s per GPU ({fleet.inter_node.origin})")
        lines.append(f"{fleet.gpus_per_node} GPUs per node, filled tensor-parallel ranks first, then data-parallel, "
                     "then pipeline stages (Megatron-LM's order)")
        lines.append("data-parallel gradient communication overlaps the backward (ZeRO-3's gathers also the forward); "
                     "tensor- and pipeline-parallel communication is exposed")
    return tuple(lines)


def _notes(model: PlanModel, layout: Layout) -> tuple[str, ...]:
    notes = list(model.notes)
    if layout.zero and layout.dp == 1:
        notes.append(f"ZeRO-{layout.zero} with dp 1 partitions nothing: the model states are those of ZeRO-0")
    if layout.sequence_parallel and layout.tp == 1:
        notes.append("--sequence-parallel with tp 1 splits nothing")
    if layout.zero >= 2 and layout.pp > 1:
        notes.append(f"ZeRO-{layout.zero} with pipeline parallelism: DeepSpeed's pipeline engine refuses ZeRO-2/3 (it "
                     "takes ZeRO-1); check that your framework combines them (FSDP with torch.distributed.pipelining "
                     "does)")
    if layout.recompute == "selective" and model.activations is not None and not model.activations.block_scores.floating_elements:
        notes.append("selective recomputation drops nothing here: the attention keeps no score matrix (a fused kernel)")
    return tuple(notes)


# --------------------------------------------------------------------------------------------- entry points


def evaluate(model: PlanModel, layout: Layout, fleet: Fleet, *, precision: str = "bf16", optimizer: str = "adamw",
             run: RunSize | None = None) -> Plan:
    """Memory per GPU, time per step and the whole run of one layout."""
    setup = training_precision(precision)
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"--optimizer must be adamw or sgd, got {optimizer!r}")
    if fleet.gpus_per_node != layout.gpus_per_node:
        layout = replace(layout, gpus_per_node=fleet.gpus_per_node)
    check_layout(model, layout)
    figures = _figures(model, layout, fleet, setup, optimizer, run)
    given = assumptions(model, fleet, setup, optimizer, layout.num_gpus)
    if layout.global_batch is None:
        given += (f"global batch = dp x micro-batch = {layout.batch} (no --global-batch): one micro-batch per replica "
                  "per step",)
    return Plan(model, layout, figures.memory, fleet.gpu_memory_bytes, figures.step, figures.training, given,
                _notes(model, layout), fleet.throughput.gpu)


@dataclass(frozen=True)
class SearchResult:
    """The best layouts that fit, best first, and why the families (tp x pp) with none that fits failed."""

    candidates: tuple[Plan, ...]
    rejected: tuple[str, ...]
    evaluated: int
    closest: Plan | None = None  # the layout needing the least memory, when none fits

    @property
    def best(self) -> Plan | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        shown = self.best or self.closest
        data = shown.to_dict() if shown is not None else {"schema_version": SCHEMA_VERSION}
        notes = data.pop("notes", [])
        data["candidates"] = [plan.layout_dict() for plan in self.candidates]
        data["rejected"] = list(self.rejected)
        data["evaluated"] = self.evaluated
        data["notes"] = notes
        return data


def _tp_rule(model: PlanModel, tp: int, gpus_per_node: int) -> str | None:
    """Why tensor parallelism of `tp` cannot be used, or None."""
    if tp == 1:
        return None
    if tp > gpus_per_node or gpus_per_node % tp:
        return f"tensor parallelism stays inside a node of {gpus_per_node} GPUs"
    if not model.blocks:
        return "the model shows no repeated blocks to split"
    if not model.heads:
        return "the model's attention heads are unknown (give --heads)"
    if model.heads % tp or (model.kv_heads and model.kv_heads % tp):
        kv = f" / {model.kv_heads} key-value" if model.kv_heads and model.kv_heads != model.heads else ""
        return f"does not divide the {model.heads}{kv} heads"
    return None


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def search(
    model: PlanModel,
    fleet: Fleet,
    num_gpus: int,
    *,
    global_batch: int,
    precision: str = "bf16",
    optimizer: str = "adamw",
    run: RunSize | None = None,
    fixed: dict[str, Any] | None = None,
    top: int = DEFAULT_TOP,
) -> SearchResult:
    """Every dp x tp x pp x ZeRO x recompute x micro-batch layout of `num_gpus` GPUs, tensor parallelism inside a
    node and dividing the heads, pipeline stages dividing the layers; keep what fits, fastest first.

    `fixed` pins dimensions (`{"tp": 8}`); sequence parallelism is on whenever tp > 1 (it only saves memory).
    Layouts rank by wall clock (by step time without a training size), then by memory.
    """
    setup = training_precision(precision)
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"--optimizer must be adamw or sgd, got {optimizer!r}")
    _positive_int(num_gpus, "--num-gpus")
    _positive_int(global_batch, "--global-batch")
    _positive_int(top, "--top")
    if model.activations is None:
        raise UsageError("--search needs the activations to tell what fits",
                         "give a model, or --layers, --hidden and --heads with --params")
    fixed = dict(fixed or {})
    gpn = fleet.gpus_per_node
    rejected: dict[str, dict[str, None]] = {}  # reason -> the values it rules out, in order
    families: dict[tuple[int, int], list[tuple[float, Layout]]] = {}
    fitting: list[tuple[tuple[float, float], Layout, _Figures]] = []
    evaluated = 0
    recomputes = [r for r in RECOMPUTE if r != "selective" or model.activations.block_scores.floating_elements]
    for tp in _divisors(num_gpus):
        reason = _tp_rule(model, tp, gpn)
        if reason or fixed.get("tp", tp) != tp:
            if reason and "tp" not in fixed:
                rejected.setdefault(reason, {})[f"tp={tp}"] = None
            continue
        for pp in _divisors(num_gpus // tp):
            if fixed.get("pp", pp) != pp or pp > max(model.blocks, 1):
                continue
            if pp > 1 and model.blocks % pp:
                rejected.setdefault(f"does not divide the {model.blocks} layers", {})[f"pp={pp}"] = None
                continue
            dp = num_gpus // (tp * pp)
            if fixed.get("dp", dp) != dp:
                continue
            if global_batch % dp:
                rejected.setdefault(f"does not divide the global batch {global_batch}", {})[
                    f"dp={dp} (tp={tp} pp={pp})"] = None
                continue
            family = families.setdefault((tp, pp), [])
            for zero in ZERO_STAGES:
                if fixed.get("zero", zero) != zero or (zero and dp == 1 and "zero" not in fixed):
                    continue
                for recompute in recomputes:
                    if fixed.get("recompute", recompute) != recompute:
                        continue
                    for micro_batch in _divisors(global_batch // dp):
                        if fixed.get("micro_batch", micro_batch) != micro_batch:
                            continue
                        layout = Layout(dp, tp, pp, zero, recompute, tp > 1, micro_batch, global_batch, gpn)
                        figures = _figures(model, layout, fleet, setup, optimizer, run)
                        evaluated += 1
                        total = figures.memory.total
                        if total <= fleet.gpu_memory_bytes:
                            speed = figures.training.wall_clock_s if figures.training else figures.step.step_s
                            fitting.append(((speed, total), layout, figures))
                        else:
                            family.append((total, layout))
    fitting.sort(key=lambda item: item[0])
    lines = [f"{'/'.join(values)}: {reason}" for reason, values in rejected.items()]
    fits_by_family = {(layout.tp, layout.pp) for _, layout, _ in fitting}
    closest: tuple[float, Layout] | None = None
    for (tp, pp), tried in families.items():
        if (tp, pp) in fits_by_family or not tried:
            continue
        need, layout = min(tried, key=lambda item: item[0])
        if closest is None or need < closest[0]:
            closest = (need, layout)
        lines.append(f"tp={tp} pp={pp}: {need / GB:.3g} GB > {fleet.gpu_memory_bytes / GB:.3g} GB at best "
                     f"(dp {layout.dp}, ZeRO-{layout.zero}, recompute {layout.recompute}, micro-batch {layout.micro_batch})")
    common = assumptions(model, fleet, setup, optimizer, num_gpus)
    if num_gpus > 1:
        common += ("the search turns sequence parallelism on whenever tp > 1: it splits activations at no extra "
                   "communication volume",)
    candidates = tuple(
        Plan(model, layout, figures.memory, fleet.gpu_memory_bytes, figures.step, figures.training, common,
             _notes(model, layout), fleet.throughput.gpu)
        for _, layout, figures in fitting[:top]
    )
    closest_plan = None
    if not candidates and closest is not None:
        closest_plan = evaluate(model, closest[1], fleet, precision=precision, optimizer=optimizer, run=run)
        closest_plan = replace(closest_plan, assumptions=common)
    return SearchResult(candidates, tuple(lines), evaluated, closest_plan)
