"""One layout evaluated: memory, step time and the whole run (`evaluate`, the plan's entry point)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .assumptions import assumptions, layout_notes
from .context import check_context, context_assumption
from .experts import check_experts, expert_assumption
from .fp8 import fp8_assumption
from .hardware import Fleet
from .layout import Layout, check_layout
from .memory import layout_memory, stage_params
from .model import PlanModel
from .precision import TrainingPrecision, check_optimizer, training_precision
from .predicted import predicted_step_time, prediction_shape
from .result import MemoryPerGpu, Plan, RunTotals, StepTime
from .schedule import step_time
from .sharding import fsdp_assumption
from .totals import RunSize, run_totals


@dataclass(frozen=True)
class LayoutFigures:
    """What the search ranks a layout by, before it becomes a Plan."""

    memory: MemoryPerGpu
    step: StepTime | None  # None without FLOPs per example (--params without --seq-len)
    training: RunTotals | None

    def plan(self, model: PlanModel, layout: Layout, fleet: Fleet, given: tuple[str, ...]) -> Plan:
        """The Plan of `layout` with these figures, on `fleet`, under the assumptions `given`."""
        return Plan(
            model,
            layout,
            self.memory,
            fleet.gpu_memory_bytes,
            self.step,
            self.training,
            given,
            layout_notes(model, layout),
            fleet.throughput.gpu,
            fleet.memory_reserve_bytes,
        )


def layout_figures(
    model: PlanModel, layout: Layout, fleet: Fleet, precision: TrainingPrecision, optimizer: str, run: RunSize | None
) -> LayoutFigures:
    memory = layout_memory(model, layout, precision, optimizer)
    if not model.flops_known:
        return LayoutFigures(memory, None, None)
    shape, _ = prediction_shape(model, fleet, precision)
    if shape is not None:
        step = predicted_step_time(model, layout, fleet, shape, precision)
    else:
        largest_stage = max(params for _, params in stage_params(model, layout.pp, layout.stage_layers))
        step = step_time(model, layout, fleet, precision, largest_stage)
    return LayoutFigures(memory, step, None if run is None else run_totals(model, layout, fleet, step, run))


def layout_assumptions(model: PlanModel, layout: Layout, fleet: Fleet, precision: TrainingPrecision) -> tuple[str, ...]:
    """The rules a layout's expert and context parallelism, FSDP name and fp8 GEMMs were planned by."""
    lines = (
        expert_assumption(model, layout, precision.activation_bytes),
        context_assumption(layout),
        fsdp_assumption(layout.fsdp, layout.zero, layout.dp, layout.cp, layout.shard_group),
        fp8_assumption(model, fleet, precision),
    )
    return tuple(line for line in lines if line)


def evaluate(
    model: PlanModel,
    layout: Layout,
    fleet: Fleet,
    *,
    precision: str = "bf16",
    optimizer: str = "adamw",
    run: RunSize | None = None,
) -> Plan:
    """Memory per GPU, time per step and the whole run of one layout."""
    setup = training_precision(precision)
    check_optimizer(optimizer)
    if fleet.gpus_per_node != layout.gpus_per_node:
        layout = replace(layout, gpus_per_node=fleet.gpus_per_node)
    check_layout(model, layout)
    check_experts(model, layout)
    check_context(model, layout)
    figures = layout_figures(model, layout, fleet, setup, optimizer, run)
    given = assumptions(model, fleet, setup, optimizer, layout.num_gpus) + layout_assumptions(
        model, layout, fleet, setup
    )
    if layout.global_batch is None:
        given += (
            f"global batch = dp x micro-batch = {layout.batch} (no --global-batch): one micro-batch per replica "
            "per step",
        )
    return figures.plan(model, layout, fleet, given)
