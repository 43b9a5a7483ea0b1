"""What a plan answers: memory per GPU, time per step, the whole run, and a search's ranking; `to_dict()` is the
`plan --format json` contract (docs/plan.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..units import SECONDS_PER_DAY
from .layout import Layout
from .model import PlanModel

SCHEMA_VERSION = 1


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
    step: StepTime | None  # None when the tokens per example are unknown (--params without --seq-len)
    training: RunTotals | None
    assumptions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    gpu: str = ""  # the GPU's name, for titles
    memory_reserve_bytes: float = 0.0  # set aside on each GPU (CUDA context, fragmentation)

    @property
    def usable_memory_bytes(self) -> float:
        return self.gpu_memory_bytes - self.memory_reserve_bytes

    @property
    def fits(self) -> bool | None:
        """True or False against the memory less the reserve; None when activations are unknown and the model
        states alone fit."""
        if self.memory.total > self.usable_memory_bytes:
            return False
        return None if self.memory.activations is None else True

    def layout_dict(self) -> dict[str, Any]:
        """The parts of the contract that differ between layouts (a `--search` candidate)."""
        return {
            "parallelism": self.layout.to_dict(),
            "memory_per_gpu_bytes": self.memory.to_dict(),
            "gpu_memory_bytes": self.gpu_memory_bytes,
            "fits": self.fits,
            "step": None if self.step is None else self.step.to_dict(),
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
                                          "backward": self.model.backward_flops * factor}
                if self.model.flops_known else {"forward": None, "backward": None},
                "source": self.model.source,
            },
            **self.layout_dict(),
            "memory_reserve_bytes": self.memory_reserve_bytes,
            "assumptions": list(self.assumptions),
            "notes": list(self.notes),
        }


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
