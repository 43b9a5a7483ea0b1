"""One optimizer step on the slowest GPU: compute at the sustained FLOP/s, the exposed communication, and the
1F1B bubble (p-1)/(m+p-1), interleaved (p-1)/v/(m+(p-1)/v) (docs/plan.md, "Time per step")."""

from __future__ import annotations

from .communication import data_parallel_s, pipeline_transfer_s, tensor_parallel_s
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


def step_time(model: PlanModel, layout: Layout, fleet: Fleet, precision: TrainingPrecision,
              stage_params: float) -> StepTime:
    """One optimizer step on the slowest GPU (docs/plan.md, "Time per step")."""
    sustained = fleet.throughput.sustained_flops
    scale = layout.micro_batch / model.batch
    m, pp, tp = layout.grad_accum, layout.pp, layout.tp
    forward, backward = model.forward_flops * scale, model.backward_flops * scale
    recomputed = recompute_flops(model, layout.recompute) * scale
    teacher = model.teacher_forward_flops * scale  # a distillation teacher's forward, whole on each GPU (tp = pp = 1)
    total = forward + backward + recomputed + teacher
    if pp > 1:  # the slowest stage: its share of the blocks plus everything outside them (embedding, head)
        blocks_share = model.block_forward_flops / (model.forward_flops or 1)
        fullest = ((max(layout.stage_layers) if layout.stage_layers else -(-model.blocks // pp)) / model.blocks
                   if model.blocks else 1 / pp)  # uneven: the fullest stage (the first ones, or --stage-layers')
        stage_fraction = blocks_share * fullest + (1 - blocks_share)
    else:
        stage_fraction = 1.0
    compute_mb = total * stage_fraction / tp / sustained
    backward_mb = backward * stage_fraction / tp / sustained
    forward_mb = (forward + recomputed + teacher) * stage_fraction / tp / sustained
    width = precision.activation_bytes
    profile = model.activations
    hidden_bytes = (profile.block_input.bytes_at(width) / max(profile.layers, 1) * scale / profile.batch_size
                    if profile is not None else 0.0)
    tp_mb = tensor_parallel_s(hidden_bytes, layout, model.blocks, fleet)
    pp_mb = pipeline_transfer_s(hidden_bytes, layout, fleet)
    # only what trains is all-reduced (LoRA: the adapters); ZeRO-3 gathers the frozen base at its own dtype too
    gradient_bytes = stage_params * model.trainable_share / tp * precision.gradient_bytes
    frozen = model.frozen_bytes_per_param if layout.zero >= 3 else 0.0  # ZeRO-2 gathers only updated weights
    weight_bytes = stage_params / tp * (model.trainable_share * precision.weight_bytes + frozen)
    dp_comm, exposed_dp = data_parallel_s(layout, fleet, gradient_bytes, weight_bytes, forward_mb, backward_mb)
    compute_s, tp_comm_s, pp_comm_s = m * compute_mb, m * tp_mb, m * pp_mb
    bubble_slots = (pp - 1) / layout.virtual  # interleaved 1F1B: (p-1)/v slots (Narayanan et al. 2021, Sec. 2.2.2)
    bubble = bubble_slots / (m + bubble_slots)
    pipeline_s = (compute_s + tp_comm_s + pp_comm_s) / (1 - bubble)
    step_s = pipeline_s + exposed_dp
    return StepTime(compute_s, dp_comm, tp_comm_s, pp_comm_s, bubble, tp_comm_s + pp_comm_s + exposed_dp, step_s,
                    "utilization", *utilization(model, layout, fleet, step_s))
