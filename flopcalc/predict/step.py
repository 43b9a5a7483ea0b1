"""The predicted time of one optimizer step of a GPT-style model on a fleet, and the MFU and HFU it implies.

Each kernel runs at the profile's rate for its own size (its FLOPs at the matmul or vector rate and its bytes at
the memory rate, combined by the profile's rule); collectives at their own message size; the pipeline
schedule multiplies the slowest stage's micro-batch time. Overlap rules are stated in OVERLAP_RULES, each with
its source, and printed with every prediction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..device import MB, DeviceProfile
from ..errors import UsageError
from .comm import collective_s
from .layer import ACTIVATION_BYTES, Collective, LayerWork, Op, TransformerShape, embedding_work, head_work, layer_work
from .schedule import bubble_fraction, given_stage_layers, pipeline_slots, stage_layers

RECOMPUTE = ("none", "selective", "full")
# Megatron-LM's mixed-precision Adam step per parameter (fused Adam, fp32 master weights, fp32 gradient buffer):
# reads gradient, master weight, momentum, variance (4 x 4 bytes), writes master, momentum, variance (3 x 4) and
# the 16-bit weight (2); gradient-norm clipping reads the gradients once more (4): 34 bytes.
OPTIMIZER_BYTES_PER_PARAM = 34
DDP_BUCKET_BYTES = 25 * MB  # PyTorch DDP's default bucket_cap_mb: the last bucket's all-reduce cannot overlap
OVERLAP_RULES = (
    "tensor-parallel all-reduces (and sequence parallelism's all-gathers and reduce-scatters) sit on the critical "
    "path: Megatron-LM issues them between the GEMMs that need their result (Shoeybi et al. 2019; Korthikanti et "
    "al. 2022, Sec. 4.2.2)",
    "pipeline sends and receives are on the critical path (Megatron-LM's 1F1B blocks on them; Narayanan et al. "
    "2021, Sec. 4.1: the scatter/gather optimisation sends 1/t of the activation across nodes, then all-gathers "
    "it inside the node)",
    "data-parallel all-reduce (ZeRO-0/1): bucketed, overlapping the last micro-batch's backward; the last bucket "
    "(25 MB, PyTorch DDP's default) and what does not fit under the backward are exposed (Li et al. 2020, "
    "PyTorch Distributed, VLDB)",
    "ZeRO-2: gradient reduce-scatters overlap each micro-batch's backward; the all-gather of the updated weights "
    "after the step is exposed (Rajbhandari et al. 2020)",
    "ZeRO-3: parameter all-gathers are prefetched one layer ahead, so each layer's gathers (forward and backward) "
    "and gradient reduce-scatter hide only under that layer's compute: per layer, what exceeds it is exposed, and "
    "the first layer's gather always is (not free: DeepSpeed's prefetch depth of one layer)",
    "the optimizer step runs after the last backward, exposed, memory-bound",
)


@dataclass(frozen=True)
class TrainingLayout:
    """How a run is split: dp x tp x pp GPUs, v model chunks per GPU (interleaved 1F1B), micro- and global batch."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    micro_batch: int = 1
    global_batch: int = 1
    virtual: int = 1  # model chunks per GPU (interleaved 1F1B); 1 = plain 1F1B
    recompute: str = "none"
    sequence_parallel: bool = False
    zero: int = 0
    fused_attention: bool = False
    gpus_per_node: int = 8
    stage_split: tuple[int, ...] = ()  # layers per pipeline stage; () = even, one more on the first stages

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "micro_batch", "global_batch", "virtual", "gpus_per_node"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.recompute not in RECOMPUTE:
            raise UsageError(f"recompute must be none, selective or full, got {self.recompute!r}")
        if self.zero not in (0, 1, 2, 3):
            raise UsageError(f"zero must be 0, 1, 2 or 3, got {self.zero!r}")
        if self.global_batch % (self.dp * self.micro_batch):
            raise UsageError(
                f"global batch {self.global_batch} is not a multiple of dp x micro-batch = "
                f"{self.dp} x {self.micro_batch}"
            )
        if self.virtual > 1 and self.pp == 1:
            raise UsageError("virtual stages > 1 need pipeline parallelism", "give pp > 1, or virtual 1")

    @property
    def num_gpus(self) -> int:
        return self.dp * self.tp * self.pp

    @property
    def micro_batches(self) -> int:
        return self.global_batch // (self.dp * self.micro_batch)


@dataclass(frozen=True)
class StageTime:
    """Seconds of one micro-batch on one pipeline stage, by part."""

    stage: int
    layers: int
    forward_s: float
    backward_s: float
    recompute_s: float
    tp_comm_s: float
    p2p_s: float

    @property
    def total_s(self) -> float:
        return self.forward_s + self.backward_s + self.recompute_s + self.tp_comm_s + self.p2p_s


@dataclass(frozen=True)
class StepPrediction:
    """One optimizer step: the slowest stage's micro-batch times the schedule's slots, plus what is exposed."""

    step_s: float
    slowest: StageTime
    slots: float
    bubble_fraction: float  # (p - 1)/(v m): of the ideal time
    dp_comm_s: float
    dp_exposed_s: float
    embedding_sync_s: float
    optimizer_s: float
    model_flops: float  # per step, whole fleet: forward + backward
    hardware_flops: float  # + recomputation
    num_gpus: int
    peak_flops: float
    sources: tuple[str, ...] = field(default=())
    rules: tuple[str, ...] = field(default=())

    @property
    def mfu(self) -> float:
        return self.model_flops / (self.step_s * self.num_gpus * self.peak_flops)

    @property
    def hfu(self) -> float:
        return self.hardware_flops / (self.step_s * self.num_gpus * self.peak_flops)

    def to_dict(self) -> dict[str, Any]:
        slowest = asdict(self.slowest)
        slowest["total_s"] = self.slowest.total_s
        return {
            "step_s": self.step_s,
            "slowest_stage_micro_batch": slowest,
            "slots": self.slots,
            "bubble_fraction": self.bubble_fraction,
            "dp_comm_s": self.dp_comm_s,
            "dp_exposed_s": self.dp_exposed_s,
            "embedding_sync_s": self.embedding_sync_s,
            "optimizer_s": self.optimizer_s,
            "model_flops": self.model_flops,
            "hardware_flops": self.hardware_flops,
            "mfu": self.mfu,
            "hfu": self.hfu,
            "sources": list(self.sources),
            "rules": list(self.rules),
        }


def kernel_seconds(op: Op, profile: DeviceProfile) -> tuple[float, float]:
    """One kernel's arithmetic and memory seconds, each at the rate the profile gives work of its size (a GEMM at
    the matmul curve, anything else at the vector one; its bytes at the memory curve)."""
    rate = profile.matmul if op.kind == "gemm" else profile.vector
    compute = op.flops / rate.achieved(op.flops / 1e9) if op.flops else 0.0
    memory = op.bytes / profile.memory.achieved(op.bytes / MB) if op.bytes else 0.0
    return compute, memory


def op_s(op: Op, profile: DeviceProfile) -> float:
    """One kernel's seconds: its arithmetic and memory times (kernel_seconds) added or the slower of the two as
    the profile's kernel_time rule says (its efficiencies were fitted under that rule)."""
    compute, memory = kernel_seconds(op, profile)
    return compute + memory if profile.kernel_time == "sum" else max(compute, memory)


def ops_s(ops: tuple[Op, ...], profile: DeviceProfile) -> float:
    return sum(op_s(op, profile) for op in ops)


def _scope(group: int, stride: int, layout: TrainingLayout) -> str:
    """Ranks fill nodes tensor-parallel first, then data-parallel, then pipeline (Megatron-LM's order): a group
    whose `group` ranks `stride` apart fit in one node runs on the intra-node network."""
    span = group * stride
    fits = layout.num_gpus <= layout.gpus_per_node or (
        span <= layout.gpus_per_node and layout.gpus_per_node % span == 0
    )
    return "intra_node" if fits else "inter_node"


def _comm_s(collectives: tuple[Collective, ...], profile: DeviceProfile, layout: TrainingLayout) -> float:
    if layout.tp == 1 or not collectives:
        return 0.0
    network = profile.network(_scope(layout.tp, 1, layout))
    return sum(collective_s(network, c.kind, c.bytes, layout.tp) for c in collectives)


def _gemm_flops(ops: tuple[Op, ...]) -> float:
    return sum(op.flops for op in ops if op.kind == "gemm")


def predict_step(shape: TransformerShape, layout: TrainingLayout, profile: DeviceProfile) -> StepPrediction:
    """The predicted seconds of one optimizer step (docs/validation.md, "The model")."""
    tp, pp, dp, b, v = layout.tp, layout.pp, layout.dp, layout.micro_batch, layout.virtual
    sp = layout.sequence_parallel and tp > 1
    m = layout.micro_batches
    layer = layer_work(shape, b, tp, sp, layout.fused_attention)
    head = head_work(shape, b, tp, sp)
    embedding = embedding_work(shape, b, tp, sp)
    split = (
        given_stage_layers(layout.stage_split, shape.layers, pp)
        if layout.stage_split
        else stage_layers(shape.layers, pp)
    )
    p2p = _pipeline_p2p_s(shape, layout, profile, sp)
    stages = _stage_times(split, layer, embedding, head, p2p, layout, profile)
    slowest = max(stages, key=lambda stage: stage.total_s)
    slots = pipeline_slots(pp, m, v)
    # model states of the slowest stage on one GPU
    stage_params = slowest.layers * shape.params_per_layer / tp
    if slowest.stage in (0, pp - 1):
        stage_params += shape.vocab * shape.hidden / tp
    dp_comm, dp_exposed = _data_parallel(stage_params, slowest, layout, profile, shape)
    embedding_sync = 0.0
    if pp > 1:  # the tied embedding's gradients, all-reduced between the first and the last stage once per step
        network = profile.network(_scope(2, (pp - 1) * tp * dp, layout))
        embedding_sync = collective_s(network, "all_reduce", shape.vocab * shape.hidden / tp * ACTIVATION_BYTES, 2)
    optimizer_params = stage_params / (dp if layout.zero >= 1 else 1)
    optimizer_bytes = optimizer_params * OPTIMIZER_BYTES_PER_PARAM
    optimizer = optimizer_bytes / profile.memory.achieved(optimizer_bytes / MB)
    step = slots * slowest.total_s + dp_exposed + embedding_sync + optimizer
    model_flops, hardware_flops = _step_flops(shape, layer, head, layout)
    return StepPrediction(
        step,
        slowest,
        slots,
        bubble_fraction(pp, m, v) if pp > 1 else 0.0,
        dp_comm,
        dp_exposed,
        embedding_sync,
        optimizer,
        model_flops,
        hardware_flops,
        layout.num_gpus,
        profile.matmul.peak,
        profile.sources(),
        OVERLAP_RULES,
    )


def _pipeline_p2p_s(shape: TransformerShape, layout: TrainingLayout, profile: DeviceProfile, sp: bool) -> float:
    """Seconds of pipeline sends per micro-batch: each of the v chunks receives its input and sends its gradient
    back (0 without pipeline parallelism)."""
    tp, pp, dp = layout.tp, layout.pp, layout.dp
    if pp <= 1:
        return 0.0
    piece = shape.seq_len * layout.micro_batch * shape.hidden * ACTIVATION_BYTES / tp
    network = profile.network(_scope(pp, tp * dp, layout))
    sends = 2 * layout.virtual
    p2p = sends * collective_s(network, "p2p", piece, 2)
    if tp > 1 and not sp:  # the scatter/gather optimisation: all-gather the received slices inside the node
        p2p += sends * collective_s(profile.network(_scope(tp, 1, layout)), "all_gather", piece * tp, tp)
    return p2p


def _stage_times(
    split,
    layer: LayerWork,
    embedding: LayerWork,
    head: LayerWork,
    p2p: float,
    layout: TrainingLayout,
    profile: DeviceProfile,
) -> list[StageTime]:
    """Each pipeline stage's forward, backward, recomputation and communication seconds per micro-batch: its
    layers, the embedding on the first stage and the head on the last."""
    layer_forward = ops_s(layer.forward, profile)
    layer_backward = ops_s(layer.backward, profile)
    layer_fwd_comm = _comm_s(layer.forward_comm, profile, layout)
    layer_bwd_comm = _comm_s(layer.backward_comm, profile, layout)
    if layout.recompute == "full":
        layer_recompute, layer_recompute_comm = layer_forward, layer_fwd_comm
    elif layout.recompute == "selective":
        layer_recompute, layer_recompute_comm = ops_s(layer.attention_core, profile), 0.0
    else:
        layer_recompute = layer_recompute_comm = 0.0
    stages = []
    for index, layers in enumerate(split):
        extras: list[LayerWork] = []
        if index == 0:
            extras.append(embedding)
        if index == layout.pp - 1:
            extras.append(head)
        forward = layers * layer_forward + sum(ops_s(w.forward, profile) for w in extras)
        backward = layers * layer_backward + sum(ops_s(w.backward, profile) for w in extras)
        comm = layers * (layer_fwd_comm + layer_bwd_comm + layer_recompute_comm) + sum(
            _comm_s(w.forward_comm + w.backward_comm, profile, layout) for w in extras
        )
        stages.append(StageTime(index, layers, forward, backward, layers * layer_recompute, comm, p2p))
    return stages


def _step_flops(
    shape: TransformerShape, layer: LayerWork, head: LayerWork, layout: TrainingLayout
) -> tuple[float, float]:
    """The step's model FLOPs (3x the forward GEMMs) and hardware FLOPs (plus the recomputed forward)."""
    tp, m, dp = layout.tp, layout.micro_batches, layout.dp
    per_micro_batch = (shape.layers * _gemm_flops(layer.forward) + _gemm_flops(head.forward)) * tp
    model_flops = 3 * per_micro_batch * m * dp
    recomputed = (
        {"none": 0.0, "full": _gemm_flops(layer.forward), "selective": _gemm_flops(layer.attention_core)}[
            layout.recompute
        ]
        * shape.layers
        * tp
        * m
        * dp
    )
    return model_flops, model_flops + recomputed


def _data_parallel(
    stage_params: float, slowest: StageTime, layout: TrainingLayout, profile: DeviceProfile, shape: TransformerShape
) -> tuple[float, float]:
    """Data-parallel seconds per step, and the part of them exposed (OVERLAP_RULES)."""
    dp, m = layout.dp, layout.micro_batches
    if dp == 1:
        return 0.0, 0.0
    network = profile.network(_scope(dp, layout.tp, layout))
    grads = stage_params * ACTIVATION_BYTES
    if layout.zero <= 1:
        total = collective_s(network, "all_reduce", grads, dp)
        last_bucket = collective_s(network, "all_reduce", min(grads, DDP_BUCKET_BYTES), dp)
        return total, max(0.0, total - slowest.backward_s) + last_bucket
    if layout.zero == 2:
        scatter = collective_s(network, "reduce_scatter", grads, dp)
        gather = collective_s(network, "all_gather", grads, dp)
        return m * scatter + gather, m * max(0.0, scatter - slowest.backward_s) + gather
    layers = max(slowest.layers, 1)
    per_layer_bytes = grads / layers
    gather = collective_s(network, "all_gather", per_layer_bytes, dp)
    scatter = collective_s(network, "reduce_scatter", per_layer_bytes, dp)
    forward = slowest.forward_s / layers
    backward = (slowest.backward_s + slowest.recompute_s) / layers
    exposed = gather + layers * (max(0.0, gather - forward) + max(0.0, gather + scatter - backward))
    return m * layers * (2 * gather + scatter), m * exposed
