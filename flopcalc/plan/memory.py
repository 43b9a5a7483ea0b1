"""Bytes per GPU: model states partitioned by ZeRO (Rajbhandari et al. 2020) and activations split by tensor and
sequence parallelism, dropped by recomputation (Korthikanti et al. 2022), held in flight by 1F1B (Narayanan 2021)."""

from __future__ import annotations

from .layout import Layout
from .model import PlanModel
from .precision import TrainingPrecision
from .result import MemoryPerGpu


def model_states(model: PlanModel, layout: Layout, precision: TrainingPrecision, optimizer: str, params: float) -> tuple[float, float, float]:
    """Weights, gradients and optimizer bytes per GPU of a stage holding `params` (ZeRO paper, Sec. 5)."""
    per_gpu = params / layout.tp
    trained = per_gpu * model.trainable_share  # a frozen base (LoRA) has no gradients or optimizer states
    frozen = per_gpu * model.frozen_bytes_per_param  # held at its own dtype
    dp = layout.dp
    weights = (trained * precision.weight_bytes + frozen) / (dp if layout.zero >= 3 else 1)
    gradients = trained * precision.gradient_bytes / (dp if layout.zero >= 2 else 1)
    optimizer_bytes = trained * precision.optimizer_bytes(optimizer) / (dp if layout.zero >= 1 else 1)
    return weights, gradients, optimizer_bytes


def stage_params(model: PlanModel, pp: int) -> list[tuple[str, float]]:
    """Parameters per pipeline stage: whole model on one stage; else each stage's blocks, plus what runs before
    the blocks on the first stage and after them on the last (a tied embedding on both)."""
    profile = model.activations
    if pp == 1 or profile is None:
        return [("only", float(model.params) / pp)]
    share = profile.block_params / pp
    return [("first", share + profile.params_before), ("last", share + profile.params_after)]


def activation_bytes(model: PlanModel, layout: Layout, width: float, stage: str) -> float | None:
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


def teacher_bytes(model: PlanModel, layout: Layout, width: float) -> float:
    """A distillation teacher on every GPU: its frozen weights whole, and its outputs for one micro-batch (the
    logits the loss reads) at the activation width; its forward keeps nothing for a backward."""
    tuning = model.tuning
    if tuning is None or not tuning.has_teacher:
        return 0.0
    return tuning.teacher_bytes + tuning.teacher_output_elements * width * layout.micro_batch / model.batch


def layout_memory(model: PlanModel, layout: Layout, precision: TrainingPrecision, optimizer: str) -> MemoryPerGpu:
    worst: MemoryPerGpu | None = None
    for stage, params in stage_params(model, layout.pp):
        weights, gradients, optimizer_bytes = model_states(model, layout, precision, optimizer, params)
        activations = activation_bytes(model, layout, precision.activation_bytes, stage)
        memory = MemoryPerGpu(weights, gradients, optimizer_bytes, activations, stage,
                              teacher=teacher_bytes(model, layout, precision.activation_bytes))
        if worst is None or memory.total > worst.total:
            worst = memory
    assert worst is not None
    return worst
