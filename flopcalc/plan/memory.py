"""Bytes per GPU: model states partitioned by ZeRO (Rajbhandari et al. 2020) and activations split by tensor and
sequence parallelism, dropped by recomputation (Korthikanti et al. 2022), held in flight by 1F1B (Narayanan 2021)."""

from __future__ import annotations

from dataclasses import replace

from ..predict import stage_layers
from .experts import expert_data_group, expert_params
from .layout import Layout
from .model import PlanModel
from .precision import TrainingPrecision
from .result import MemoryPerGpu


def model_states(
    model: PlanModel,
    layout: Layout,
    precision: TrainingPrecision,
    optimizer: str,
    params: float,
    blocks_share: float | None = None,
) -> tuple[float, float, float]:
    """Weights, gradients and optimizer bytes per GPU of a stage holding `params` (ZeRO paper, Sec. 5): the dense
    ones / tp, sharded over the data group; a mixture of experts' experts / (tp x ep), sharded over the GPUs
    holding the same experts (plan/experts.py). `blocks_share`: the stage's share of the blocks, and so of the
    experts (uneven stages); None: 1/pp. A frozen base (LoRA) has no gradients or optimizer states and is held at
    its own dtype."""
    experts = expert_params(model) * (1 / layout.pp if blocks_share is None else blocks_share)
    parts = (
        ((params - experts) / layout.tp, layout.sharded_over),
        (experts / layout.tp / layout.ep, expert_data_group(layout)),
    )
    weights = gradients = optimizer_bytes = 0.0
    for per_gpu, group in parts:
        trained = per_gpu * model.trainable_share
        frozen = per_gpu * model.frozen_bytes_per_param
        weights += (trained * precision.weight_bytes + frozen) / (group if layout.zero >= 3 else 1)
        gradients += trained * precision.gradient_bytes / (group if layout.zero >= 2 else 1)
        optimizer_bytes += trained * precision.optimizer_bytes(optimizer) / (group if layout.zero >= 1 else 1)
    return weights, gradients, optimizer_bytes


def stage_split(model: PlanModel, pp: int, given: tuple[int, ...] = ()) -> tuple[float, ...]:
    """Blocks on each pipeline stage: `given` (--stage-layers), else layers / pp each, or, when pp does not divide
    them, one more on the first stages (126 layers on 16 stages: 8 on the first 14, 7 on the last 2)."""
    if given:
        return tuple(float(n) for n in given)
    layers = model.activations.layers if model.activations is not None else model.blocks
    if not layers or layers % pp == 0:
        return (layers / pp,) * pp
    return tuple(float(n) for n in stage_layers(layers, pp))


def stage_blocks(model: PlanModel, pp: int, given: tuple[int, ...] = ()) -> tuple[float, float]:
    """Blocks on the first and on the last pipeline stage (stage_split)."""
    split = stage_split(model, pp, given)
    return split[0], split[-1]


def stage_roles(pp: int) -> list[str]:
    """Each stage's role: the one stage of an unpipelined model, else first, middle ones, last."""
    return ["only"] if pp == 1 else ["first", *["middle"] * (pp - 2), "last"]


def stage_params(model: PlanModel, pp: int, given: tuple[int, ...] = ()) -> list[tuple[str, float]]:
    """Parameters of each pipeline stage, in order: whole model on one stage; else each stage's blocks, plus
    what runs before the blocks on the first stage and after them on the last (a tied embedding on both)."""
    profile = model.activations
    if pp == 1 or profile is None:
        return [("only", float(model.params) / pp)]
    per_block = profile.block_params / profile.layers if profile.layers else 0.0
    split = stage_split(model, pp, given) if profile.layers else (0.0,) * pp
    extra = {"first": profile.params_before, "last": profile.params_after}
    return [
        (role, (blocks * per_block if profile.layers else profile.block_params / pp) + extra.get(role, 0.0))
        for role, blocks in zip(stage_roles(pp), split)
    ]


def activation_bytes(model: PlanModel, layout: Layout, width: float, stage: str, index: int = 0) -> float | None:
    """Activation bytes per GPU on a stage (Korthikanti et al. 2022, Sec. 4; 1F1B in flight: Narayanan 2021).
    `index`: the stage's place in the pipeline, which sets a middle stage's blocks and micro-batches in flight."""
    profile = model.activations
    if profile is None:
        return None
    tp = layout.tp
    stream = tp if layout.split_sequence else 1  # the hidden stream is split only by sequence parallelism
    layers = profile.layers or 1
    full = (
        profile.block_replicated.bytes_at(width) / stream
        + profile.block_split.bytes_at(width) / tp
        + profile.block_scores.bytes_at(width) / tp
    ) / layers
    if layout.recompute == "none":
        kept = full
    elif layout.recompute == "selective":
        kept = full - profile.block_scores.bytes_at(width) / tp / layers
    else:
        kept = profile.block_input.bytes_at(width) / stream / layers
    first_layers, last_layers = stage_blocks(model, layout.pp, layout.stage_layers)
    before = profile.before_blocks.bytes_at(width) / stream
    after = profile.after_blocks.bytes_at(width) / stream
    interleaving = 1.0
    if stage == "only":
        held = first_layers * kept + before + after
        in_flight = 1
    elif stage == "first":
        held = first_layers * kept + before
        in_flight = min(layout.pp, layout.grad_accum)
        if layout.virtual > 1:  # Korthikanti et al. 2022, Sec. 4.2.3: the first stage holds 1 + (p-1)/(p v) times more
            interleaving = 1 + (layout.pp - 1) / (layout.pp * layout.virtual)
    elif stage == "middle":  # stage i of p holds p - i micro-batches under 1F1B (Narayanan et al. 2021)
        p, v = layout.pp, layout.virtual
        held = stage_split(model, p, layout.stage_layers)[index] * kept
        # interleaved (Megatron-LM's schedule): 2(p - i - 1) + (v - 1)p + 1 model chunks of 1/v of the blocks in
        # flight, which for the first stage is Korthikanti's p x (1 + (p-1)/(pv))
        in_flight = (
            min(p - index, layout.grad_accum)
            if v == 1
            else min(2 * (p - index - 1) + (v - 1) * p + 1, layout.grad_accum * v) / v
        )
    else:
        held = last_layers * kept + after
        in_flight = 1
    working = full if layout.recompute == "full" and profile.layers else 0.0  # the block being re-run
    # context parallelism: each GPU keeps the activations of its 1/cp of every sequence
    return (in_flight * held + working) * interleaving * layout.micro_batch / profile.batch_size / layout.cp


def teacher_bytes(model: PlanModel, layout: Layout, width: float) -> float:
    """A distillation teacher on every GPU: its frozen weights whole, and its outputs for one micro-batch (the
    logits the loss reads) at the activation width; its forward keeps nothing for a backward."""
    tuning = model.tuning
    if tuning is None or not tuning.has_teacher:
        return 0.0
    return tuning.teacher_bytes + tuning.teacher_output_elements * width * layout.micro_batch / model.batch


def layout_memory(model: PlanModel, layout: Layout, precision: TrainingPrecision, optimizer: str) -> MemoryPerGpu:
    """The most loaded GPU's bytes, with every pipeline stage's in `stages` (the first holds the embedding and
    the most micro-batches in flight, the last the head and the logits; a middle one neither)."""
    stages = []
    blocks = (
        stage_split(model, layout.pp, layout.stage_layers) if model.activations is not None or model.blocks else None
    )
    for index, (stage, params) in enumerate(stage_params(model, layout.pp, layout.stage_layers)):
        share = blocks[index] / sum(blocks) if blocks and sum(blocks) else None
        weights, gradients, optimizer_bytes = model_states(model, layout, precision, optimizer, params, share)
        activations = activation_bytes(model, layout, precision.activation_bytes, stage, index)
        layers = None if not blocks or not blocks[index] else blocks[index]
        stages.append(
            MemoryPerGpu(
                weights,
                gradients,
                optimizer_bytes,
                activations,
                stage,
                index,
                layers,
                teacher=teacher_bytes(model, layout, precision.activation_bytes),
            )
        )
    worst = max(stages, key=lambda memory: memory.total)  # the first of equals
    return replace(worst, stages=tuple(stages))
