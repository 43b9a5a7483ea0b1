"""What a plan answers: memory per GPU, time per step, the whole run, and a search's ranking; `to_dict()` is the
`plan --format json` contract (docs/plan.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..emissions import GridIntensity
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
    stage: str = "only"  # only, first, middle or last
    index: int = 0  # the stage's place in the pipeline
    layers: float | None = None  # the blocks on the stage (None: the model shows none)
    stages: tuple[MemoryPerGpu, ...] = ()  # every pipeline stage's bytes, in order (this one among them)
    teacher: float = 0.0  # a distillation teacher's frozen weights and outputs (0 without one)

    @property
    def model_states(self) -> float:
        return self.weights + self.gradients + self.optimizer

    @property
    def total(self) -> float:
        return self.model_states + (self.activations or 0.0) + self.teacher

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
            **({"teacher": self.teacher} if self.teacher else {}),
            "total": self.total,
        }

    def stages_list(self) -> list[dict[str, Any]]:
        """The JSON `stages` list: each stage's place, role and bytes."""
        return [
            {"stage": memory.index, "role": memory.stage, "layers": memory.layers, **memory.to_dict()}
            for memory in self.stages or (self,)
        ]


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
    # "predicted": by flopcalc.predict on a device profile; "utilization": FLOPs at peak x one utilisation factor
    time_model: str = "utilization"
    mfu: float | None = None  # model FLOPs per step / (step_s x GPUs x peak): an output of the step time
    hfu: float | None = None  # + recomputation
    optimizer_s: float = 0.0  # the optimizer step after the last backward (predicted only)
    prediction: dict[str, Any] | None = None  # the step-time model's figures (StepPrediction.to_dict, no sources)
    ep_comm_s: float = 0.0  # expert parallelism's all-to-alls (plan/experts.py), all exposed
    cp_comm_s: float = 0.0  # context parallelism's K/V ring (plan/context.py), mostly under attention

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
    grid: GridIntensity | None = None  # with --grid-intensity or --region
    emissions_kg_co2e: float | None = None  # energy_kwh x the grid's gCO2e/kWh / 1000; None without a TDP

    @property
    def wall_clock_days(self) -> float:
        return self.wall_clock_s / SECONDS_PER_DAY

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_flops": self.model_flops,
            "hardware_flops": self.hardware_flops,
            "steps": self.steps,
            "wall_clock_s": self.wall_clock_s,
            "wall_clock_days": self.wall_clock_days,
            "gpu_hours": self.gpu_hours,
            "mfu": self.mfu,
            "hfu": self.hfu,
            "energy_kwh": self.energy_kwh,
            "cost": self.cost,
            **(
                {}
                if self.grid is None
                else {"grid_intensity": self.grid.to_dict(), "emissions_kg_co2e": self.emissions_kg_co2e}
            ),
        }


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
    offload: Any = None  # plan.offload.Offload with --offload: what moved to the host, and its traffic

    @property
    def usable_memory_bytes(self) -> float:
        return self.gpu_memory_bytes - self.memory_reserve_bytes

    @property
    def fits(self) -> bool | None:
        """True or False against the memory less the reserve; None when activations are unknown and the model
        states alone fit."""
        if self.memory.total > self.usable_memory_bytes or (self.offload is not None and not self.offload.host_fits):
            return False
        return None if self.memory.activations is None else True

    def layout_dict(self) -> dict[str, Any]:
        """The parts of the contract that differ between layouts (a `--search` candidate)."""
        return {
            "parallelism": self.layout.to_dict(),
            "memory_per_gpu_bytes": self.memory.to_dict(),
            "stages": self.memory.stages_list(),
            "gpu_memory_bytes": self.gpu_memory_bytes,
            "fits": self.fits,
            "step": None if self.step is None else self.step.to_dict(),
            "training": None if self.training is None else self.training.to_dict(),
            **({} if self.offload is None else {"offload": self.offload.to_dict()}),
        }

    def to_dict(self) -> dict[str, Any]:
        """The `plan --format json` contract (docs/plan.md)."""
        factor = self.layout.micro_batch / self.model.batch
        return {
            "schema_version": SCHEMA_VERSION,
            "model": {
                "params": self.model.params,
                "flops_per_micro_batch": {
                    "forward": self.model.forward_flops * factor,
                    "backward": self.model.backward_flops * factor,
                }
                if self.model.flops_known
                else {"forward": None, "backward": None},
                "source": self.model.source,
                **(tuning_dict(self.model) if self.model.tuning is not None else {}),
            },
            **self.layout_dict(),
            "memory_reserve_bytes": self.memory_reserve_bytes,
            "assumptions": list(self.assumptions),
            "notes": list(self.notes),
        }


def tuning_dict(model: PlanModel) -> dict[str, Any]:
    """The keys LoRA and distillation add under "model" (docs/json.md)."""
    tuning = model.tuning
    assert tuning is not None
    data: dict[str, Any] = {"trainable_params": tuning.trainable_params}
    if tuning.adapters is not None:
        data["adapters"] = {**tuning.adapters, "base_dtype": tuning.base_dtype, "frozen_bytes": tuning.frozen_bytes}
    if tuning.has_teacher:
        data["teacher"] = {
            "source": tuning.teacher_source,
            "params": tuning.teacher_params,
            "dtype": tuning.teacher_dtype,
            "weight_bytes": tuning.teacher_bytes,
            "forward_flops_per_micro_batch": tuning.teacher_forward_flops,
        }
    return data


@dataclass(frozen=True)
class SearchResult:
    """The best layouts that fit, best first, and why the families (tp x pp) with none that fits failed."""

    candidates: tuple[Plan, ...]
    rejected: tuple[str, ...]
    evaluated: int
    closest: Plan | None = None  # the layout needing the least memory, when none fits
    # (step seconds, bytes on the most loaded GPU) of every evaluated layout that fits, for the HTML scatter;
    # not in the JSON (its contract lists the candidates shown)
    fitting: tuple[tuple[float, float], ...] = ()

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
