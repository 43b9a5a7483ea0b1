"""The whole run: how much training, its steps, FLOPs, wall clock, utilisation, GPU-hours, energy and cost."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..compute import SECONDS_PER_HOUR, energy_kwh, gpu_hours_cost
from ..emissions import emissions_kg
from ..errors import UsageError
from .checks import positive
from .hardware import Fleet
from .layout import Layout
from .model import PlanModel
from .result import RunTotals, StepTime
from .schedule import recompute_flops


@dataclass(frozen=True)
class RunSize:
    """How much training: `examples` in all (epochs included), of `unit` (sequence or example)."""

    examples: float
    unit: str = "example"

    def __post_init__(self) -> None:
        positive(self.examples, "training size")


def run_size(
    model: PlanModel, *, tokens: float | None = None, examples: float | None = None, epochs: float | None = None
) -> RunSize | None:
    """`--tokens` (divided by the tokens per sequence) or `--examples` x `--epochs`; None when neither."""
    if not model.flops_known and (tokens is not None or examples is not None):
        raise UsageError(
            f"{'--tokens' if tokens is not None else '--examples'} needs the FLOPs per example, and "
            "--params without --seq-len has none",
            "give --seq-len (tokens per sequence)",
        )
    if tokens is not None and (examples is not None or epochs is not None):
        raise UsageError("--tokens excludes --examples/--epochs", "give the tokens, or the examples and epochs")
    if tokens is not None:
        positive(tokens, "--tokens")
        if not model.tokens_per_example:
            raise UsageError(
                "--tokens needs the tokens per example, and this model's input shows none",
                "give --examples (and --epochs) instead",
            )
        return RunSize(tokens / model.tokens_per_example, "sequence")
    if examples is None:
        if epochs is not None:
            raise UsageError("--epochs needs --examples")
        return None
    return RunSize(positive(examples, "--examples") * (positive(epochs, "--epochs") if epochs is not None else 1.0))


def run_totals(model: PlanModel, layout: Layout, fleet: Fleet, step: StepTime, run: RunSize) -> RunTotals:
    """The run of `run.examples` at this layout's step time; energy and cost by compute's rules."""
    per_example = (model.forward_flops + model.backward_flops + model.teacher_forward_flops) / model.batch
    recomputed = recompute_flops(model, layout.recompute) / model.batch
    model_flops = per_example * run.examples
    hardware_flops = (per_example + recomputed) * run.examples
    steps = math.ceil(run.examples / layout.batch - 1e-9)
    wall = steps * step.step_s
    gpus = layout.num_gpus
    gpu_hours = wall * gpus / SECONDS_PER_HOUR
    capacity = wall * gpus * fleet.throughput.peak_flops
    energy = energy_kwh(fleet.tdp_w, gpu_hours, fleet.pue)
    return RunTotals(
        model_flops=model_flops,
        hardware_flops=hardware_flops,
        steps=steps,
        wall_clock_s=wall,
        gpu_hours=gpu_hours,
        mfu=model_flops / capacity if capacity else 0.0,
        hfu=hardware_flops / capacity if capacity else 0.0,
        energy_kwh=energy,
        cost=gpu_hours_cost(gpu_hours, fleet.price_per_gpu_hour),
        grid=fleet.grid,
        emissions_kg_co2e=None if fleet.grid is None or energy is None else emissions_kg(energy, fleet.grid),
    )
