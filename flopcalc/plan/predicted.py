"""One optimizer step by the step-time model (flopcalc.predict) on the fleet's device profile: each GEMM at its own
size's efficiency, memory-bound kernels at their bytes, collectives at their message size with the stated overlap
rules, the (interleaved) 1F1B schedule with the fullest stage setting the pace (docs/plan.md, "Time per step")."""

from __future__ import annotations

from dataclasses import replace

from ..errors import CalibrationError
from ..predict import (
    DeviceProfile,
    LayerWork,
    Op,
    StepPrediction,
    TrainingLayout,
    TransformerShape,
    kernel_seconds,
    layer_work,
    op_s,
    ops_s,
    predict_step,
)
from .context import ring_attention_s
from .experts import expert_all_to_all_s
from .fp8 import FP8
from .hardware import Fleet
from .layout import Layout
from .model import PlanModel
from .precision import TrainingPrecision
from .result import StepTime
from .schedule import utilization

PREDICTED_PRECISIONS = ("bf16", "fp16")  # the profiles' peaks and the model's 2-byte activations are 16-bit
LINEAR_GEMMS = ("qkv", "projection", "mlp up", "mlp down")  # the blocks' GEMMs fp8 training runs in fp8


def prediction_shape(
    model: PlanModel, fleet: Fleet, precision: TrainingPrecision
) -> tuple[TransformerShape | None, tuple[str, ...]]:
    """The shape the step-time model predicts this plan's steps from, with where it came from; or None and why
    the plan falls back to peak x utilization."""
    if fleet.profile is None:
        return None, ()
    if precision.name not in PREDICTED_PRECISIONS and not (precision.name == FP8 and fleet.bf16_throughput):
        return None, (
            f"the step-time model covers 16-bit training (bf16, fp16), not {precision.name}: step time is "
            "peak x utilization",
        )
    shape, lines = model.gemm_shape()
    if shape is None:
        return None, (
            f"no step-time prediction: {lines[0]}; step time is peak x utilization (give --layers, "
            "--hidden and --heads with --params for a prediction)",
        )
    return shape, lines


def fp8_saved_s(work: LayerWork, profile: DeviceProfile, speedup: float, recompute: str) -> float:
    """Seconds one layer's micro-batch saves when its linear GEMMs (forward, both backward gradients, and a full
    recomputation's forward) run at `speedup` x the bf16 matmul rate: each kernel's arithmetic / speedup, its
    bytes unchanged, the two combined by the profile's rule."""

    def saved(op: Op) -> float:
        if op.kind != "gemm" or not op.name.startswith(LINEAR_GEMMS):
            return 0.0
        compute, memory = kernel_seconds(op, profile)
        fast = compute / speedup
        return op_s(op, profile) - (fast + memory if profile.kernel_time == "sum" else max(fast, memory))

    forward = sum(saved(op) for op in work.forward)
    return forward * (2 if recompute == "full" else 1) + sum(saved(op) for op in work.backward)


def predicted_step_time(
    model: PlanModel, layout: Layout, fleet: Fleet, shape: TransformerShape, precision: TrainingPrecision | None = None
) -> StepTime:
    """The step of `layout` as flopcalc.predict times it, in plan's StepTime terms: compute, tensor- and
    pipeline-parallel time summed over the m micro-batches of the slowest stage, the bubble as a fraction of the
    step's pipeline time ((p-1)/v slots of m + (p-1)/v), the data-parallel time and what of it is exposed.
    Context parallelism is predicted as cp x more data-parallel ranks on sequences of s/cp (gradients reduce
    over dp x cp), plus the attention of each GPU's queries on the other cp - 1 K/V blocks and the ring's
    exposed traffic (context.py); expert parallelism adds its all-to-alls (experts.py); fp8 runs the blocks'
    linear GEMMs at the fp8 peak / bf16 peak x the profile's bf16 rate (fp8.py). These terms are on the slowest
    stage's micro-batch, so the schedule's slots multiply them."""
    _check_links(layout, fleet)
    assert fleet.profile is not None
    profile = fleet.profile
    local = replace(shape, seq_len=shape.seq_len // layout.cp) if layout.cp > 1 else shape
    prediction = predict_step(local, training_layout(model, layout), profile)
    m, slowest = layout.grad_accum, prediction.slowest
    width = precision.activation_bytes if precision is not None else 2.0
    work = layer_work(local, layout.micro_batch, layout.tp, layout.split_sequence, model.fused_attention)
    extra_compute, cp_comm, cp_exposed = _context_parallel_terms(
        model, layout, fleet, width, work, slowest.layers, shape.layers
    )
    ep_comm = expert_all_to_all_s(model, layout, fleet, width)
    if precision is not None and precision.name == FP8 and fleet.bf16_throughput is not None:
        speedup = fleet.throughput.peak_flops / fleet.bf16_throughput.peak_flops
        extra_compute -= slowest.layers * fp8_saved_s(work, profile, speedup, layout.recompute)
    step = prediction.step_s + prediction.slots * (extra_compute + ep_comm + cp_exposed)
    compute = m * (slowest.forward_s + slowest.backward_s + slowest.recompute_s + extra_compute)
    tp_comm, pp_comm = m * slowest.tp_comm_s, m * slowest.p2p_s
    bubble_slots = (layout.pp - 1) / layout.virtual
    exposed = tp_comm + pp_comm + m * (ep_comm + cp_exposed) + prediction.dp_exposed_s + prediction.embedding_sync_s
    mfu, hfu = utilization(model, layout, fleet, step)
    figures = prediction.to_dict()
    for key in ("sources", "rules", "mfu", "hfu"):  # said once in the assumptions; MFU and HFU are the step's
        figures.pop(key)
    figures["step_s"] = step  # with plan's context-, expert-parallel and fp8 terms (0 without them)
    return StepTime(
        compute,
        prediction.dp_comm_s,
        tp_comm,
        pp_comm,
        bubble_slots / (m + bubble_slots),
        exposed,
        step,
        "predicted",
        mfu,
        hfu,
        prediction.optimizer_s,
        figures,
        ep_comm_s=m * ep_comm,
        cp_comm_s=m * cp_comm,
    )


def _check_links(layout: Layout, fleet: Fleet) -> None:
    """Refuse a layout whose parallel groups need a link figure the fleet lacks (a group inside a node needs an
    intra-node figure)."""
    for group, stride, what in (
        (layout.tp, 1, "tensor parallelism"),
        (layout.cp, layout.tp, "context parallelism"),
        (layout.dp, layout.tp * layout.cp, "data parallelism"),
        (layout.pp, layout.tp * layout.data_group, "pipeline parallelism"),
    ):
        if group > 1:
            fleet.link(group, stride, layout.num_gpus, what)


def training_layout(model: PlanModel, layout: Layout) -> TrainingLayout:
    """plan's layout as the step-time model takes it: context parallelism as cp x more data-parallel ranks."""
    return TrainingLayout(
        tp=layout.tp,
        pp=layout.pp,
        dp=layout.data_group,
        micro_batch=layout.micro_batch,
        global_batch=layout.batch * layout.cp,
        virtual=layout.virtual,
        recompute=layout.recompute,
        sequence_parallel=layout.split_sequence,
        zero=layout.zero,
        fused_attention=model.fused_attention,
        gpus_per_node=layout.gpus_per_node,
        stage_split=layout.stage_layers,
    )


def _context_parallel_terms(
    model: PlanModel, layout: Layout, fleet: Fleet, width: float, work: LayerWork, stage_layers: int, layers: int
) -> tuple[float, float, float]:
    """Context parallelism's extra compute on the slowest stage's micro-batch (each GPU's s/cp queries also attend
    to the other cp - 1 blocks of keys: forward, backward 2x, recompute 1x), its ring's traffic and the exposed
    part of it; zeros without context parallelism."""
    cp = layout.cp
    if cp <= 1:
        return 0.0, 0.0, 0.0
    assert fleet.profile is not None
    core = ops_s(work.attention_core, fleet.profile)
    passes = 3 + (1 if layout.recompute != "none" else 0)
    cp_comm, cp_exposed = ring_attention_s(
        model, layout, fleet, width, (model.blocks or layers) / layout.pp * cp * core
    )
    return stage_layers * (cp - 1) * core * passes, cp_comm, cp_exposed


def training_prediction(
    model: PlanModel, profile: DeviceProfile, num_gpus: int
) -> tuple[StepPrediction | None, tuple[str, ...]]:
    """`train`'s step on `num_gpus` GPUs of `profile`: plain data parallelism, one micro-batch of the counted batch
    per GPU per step, ZeRO-0, no recomputation; and lines saying what was assumed (None and why when the model has
    no transformer shape to lay GEMMs out from, or the profile lacks a network the step needs)."""
    shape, lines = model.gemm_shape()
    if shape is None:
        return None, (f"no predicted MFU: {lines[0]}",)
    layout = TrainingLayout(
        dp=num_gpus, micro_batch=model.batch, global_batch=model.batch * num_gpus, fused_attention=model.fused_attention
    )
    try:
        prediction = predict_step(shape, layout, profile)
    except CalibrationError as error:
        return None, (f"no predicted MFU: {error.message}",)
    return prediction, (
        *lines,
        f"predicted step: data parallel over {num_gpus} GPU{'s' if num_gpus > 1 else ''}, a "
        f"micro-batch of {model.batch} per GPU per step, ZeRO-0, no recomputation",
    )


def predicted_utilization(model: PlanModel, prediction: StepPrediction, peak_flops: float) -> float:
    """The counted FLOPs of one micro-batch's forward and backward over the predicted step x the peak: the
    utilization at which the training's FLOPs take the predicted time."""
    return (model.forward_flops + model.backward_flops) / (prediction.step_s * peak_flops)
