"""One optimizer step on the slowest GPU: compute at the sustained FLOP/s, the exposed communication, and the
1F1B bubble (p-1)/(m+p-1), interleaved (p-1)/v/(m+(p-1)/v) (docs/plan.md, "Time per step")."""

from __future__ import annotations

from .communication import data_parallel_s, pipeline_transfer_s, tensor_parallel_s
from .context import ring_attention_s
from .experts import expert_all_to_all_s, expert_params_on_stage
from .fp8 import bf16_sustained_flops, sustained_flops
from .hardware import Fleet
from .layout import Layout
from .model import PlanModel
from .precision import TrainingPrecision
from .result import StepTime


def recompute_flops(model: PlanModel, recompute: str) -> float:
    """FLOPs re-run per counted batch: the blocks' forward (full) or their attention products (selective)."""
    if recompute == "full":
        return model.block_forward_flops
    if recompute == "selective":
        return model.attention_forward_flops
    return 0.0


def utilization(model: PlanModel, layout: Layout, fleet: Fleet, step_s: float) -> tuple[float, float]:
    """MFU and HFU of a step of `step_s` seconds: its model FLOPs (and + recomputation) over the GPUs' peak."""
    per_example = (model.forward_flops + model.backward_flops) / model.batch
    recomputed = recompute_flops(model, layout.recompute) / model.batch
    capacity = step_s * layout.num_gpus * fleet.throughput.peak_flops
    if not capacity:
        return 0.0, 0.0
    return per_example * layout.batch / capacity, (per_example + recomputed) * layout.batch / capacity


def slowest_stage_fraction(model: PlanModel, layout: Layout) -> float:
    """The share of a micro-batch's work on the slowest pipeline stage: its share of the blocks plus everything
    outside them (embedding, head); uneven stages count the fullest (the first ones, or --stage-layers')."""
    pp = layout.pp
    if pp <= 1:
        return 1.0
    blocks_share = model.block_forward_flops / (model.forward_flops or 1)
    fullest = (
        (max(layout.stage_layers) if layout.stage_layers else -(-model.blocks // pp)) / model.blocks
        if model.blocks
        else 1 / pp
    )
    return blocks_share * fullest + (1 - blocks_share)


def hidden_stream_bytes(model: PlanModel, layout: Layout, width: int, scale: float) -> float:
    """One block's input for one micro-batch (`scale` of the counted batch) at `width` bytes an element, on one
    GPU of the context-parallel group: the message tensor and pipeline parallelism send."""
    profile = model.activations
    if profile is None:
        return 0.0
    return profile.block_input.bytes_at(width) / max(profile.layers, 1) * scale / profile.batch_size / layout.cp


def data_parallel_traffic(
    model: PlanModel,
    layout: Layout,
    fleet: Fleet,
    precision: TrainingPrecision,
    stage_params: float,
    forward_mb: float,
    backward_mb: float,
) -> tuple[float, float]:
    """The data-parallel traffic of one step and its exposed part, for the dense and expert parameters one GPU
    holds of its stage's `stage_params`."""
    experts = expert_params_on_stage(model, layout.pp) / layout.tp
    dense = stage_params / layout.tp - experts
    experts /= layout.ep
    # only what trains is all-reduced (LoRA: the adapters); ZeRO-3 gathers the frozen base at its own dtype too
    share = model.trainable_share
    frozen = model.frozen_bytes_per_param if layout.zero >= 3 else 0.0  # ZeRO-2 gathers only updated weights
    return data_parallel_s(
        layout,
        fleet,
        dense * share * precision.gradient_bytes,
        dense * (share * precision.weight_bytes + frozen),
        forward_mb,
        backward_mb,
        experts * share * precision.gradient_bytes,
        experts * (share * precision.weight_bytes + frozen),
    )


def step_time(
    model: PlanModel, layout: Layout, fleet: Fleet, precision: TrainingPrecision, stage_params: float
) -> StepTime:
    """One optimizer step on the slowest GPU (docs/plan.md, "Time per step")."""
    sustained = sustained_flops(model, layout, fleet, precision)
    scale = layout.micro_batch / model.batch
    m, pp, tp = layout.grad_accum, layout.pp, layout.tp
    forward, backward = model.forward_flops * scale, model.backward_flops * scale
    recomputed = recompute_flops(model, layout.recompute) * scale
    teacher = model.teacher_forward_flops * scale  # a distillation teacher's forward, whole on each GPU (tp = pp = 1)
    total = forward + backward + recomputed + teacher
    stage_fraction = slowest_stage_fraction(model, layout)
    split = tp * layout.cp  # context parallelism splits every sequence's work too
    compute_mb = total * stage_fraction / split / sustained
    backward_mb = backward * stage_fraction / split / sustained
    forward_mb = (forward + recomputed + teacher) * stage_fraction / split / sustained
    width = precision.activation_bytes
    hidden_bytes = hidden_stream_bytes(model, layout, width, scale)
    tp_mb = tensor_parallel_s(hidden_bytes, layout, model.blocks, fleet)
    pp_mb = pipeline_transfer_s(hidden_bytes, layout, fleet)
    ep_mb = expert_all_to_all_s(model, layout, fleet, width)
    attention_mb = model.attention_forward_flops * scale / pp / split / bf16_sustained_flops(fleet)
    cp_mb, cp_exposed_mb = ring_attention_s(model, layout, fleet, width, attention_mb)
    dp_comm, exposed_dp = data_parallel_traffic(model, layout, fleet, precision, stage_params, forward_mb, backward_mb)
    compute_s, tp_comm_s, pp_comm_s = m * compute_mb, m * tp_mb, m * pp_mb
    ep_comm_s, cp_comm_s, cp_exposed_s = m * ep_mb, m * cp_mb, m * cp_exposed_mb
    bubble_slots = (pp - 1) / layout.virtual  # interleaved 1F1B: (p-1)/v slots (Narayanan et al. 2021, Sec. 2.2.2)
    bubble = bubble_slots / (m + bubble_slots)
    critical = tp_comm_s + pp_comm_s + ep_comm_s + cp_exposed_s
    pipeline_s = (compute_s + critical) / (1 - bubble)
    step_s = pipeline_s + exposed_dp
    return StepTime(
        compute_s,
        dp_comm,
        tp_comm_s,
        pp_comm_s,
        bubble,
        critical + exposed_dp,
        step_s,
        "utilization",
        *utilization(model, layout, fleet, step_s),
        ep_comm_s=ep_comm_s,
        cp_comm_s=cp_comm_s,
    )
