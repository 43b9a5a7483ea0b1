"""Bytes per GPU: model states partitioned by ZeRO (Rajbhandari et al. 2020) and activations split by tensor and
sequence parallelism, dropped by recomputation (Korthikanti et al. 2022), held in flight by 1F1B (Narayanan 2021)."""

from __future__ import annotations

from .experts import expert_data_group, expert_params_on_stage
from .layout import Layout
from .model import PlanModel
from .precision import TrainingPrecision
from .result import MemoryPerGpu


def model_states(model: PlanModel, layout: Layout, precision: TrainingPrecision, optimizer: str, params: float) -> tuple[float, float, float]:
    """Weights, gradients and optimizer bytes per GPU of a stage holding `params` (ZeRO paper, Sec. 5): the dense
    ones / tp, sharded over the data group; a mixture of experts' experts / (tp x ep), sharded over the GPUs
    holding the same experts (plan/experts.py)."""
    experts = expert_params_on_stage(model, layout.pp)
    parts = (((params - experts) / layout.tp, layout.sharded_over),
             (experts / layout.tp / layout.ep, expert_data_group(layout)))
    weights = gradients = optimizer_bytes = 0.0
    for per_gpu, group in parts:
        weights += per_gpu * precision.weight_bytes / (group if layout.zero >= 3 else 1)
        gradients += per_gpu * precision.gradient_bytes / (group if layout.zero >= 2 else 1)
        optimizer_bytes += per_gpu * precision.optimizer_bytes(optimizer) / (group if layout.zero >= 1 else 1)
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
    # context parallelism: each GPU keeps the activations of its 1/cp of every sequence
    return (in_flight * held + working) * layout.micro_batch / profile.batch_size / layout.cp


def layout_memory(model: PlanModel, layout: Layout, precision: TrainingPrecision, optimizer: str) -> MemoryPerGpu:
    worst: MemoryPerGpu | None = None
    for stage, params in stage_params(model, layout.pp):
        weights, gradients, optimizer_bytes = model_states(model, layout, precision, optimizer, params)
        activations = activation_bytes(model, layout, precision.activation_bytes, stage)
        memory = MemoryPerGpu(weights, gradients, optimizer_bytes, activations, stage)
        if worst is None or memory.total > worst.total:
            worst = memory
    assert worst is not None
    return worst
