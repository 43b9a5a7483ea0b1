"""Training compute and its conversions: FLOP <-> PF-days <-> GPU-days/hours, fleet time, energy, cost.

Plain functions returning frozen result objects with `to_dict()` (the JSON contracts of `convert` and
`train`, see docs/conversions.md). Nothing here knows the GPU catalogue: callers pass a `Throughput`
(a per-GPU peak FLOP/s, the utilisation, and where the peak came from: a datasheet or a measurement),
so the same arithmetic serves datasheet and measured figures.

Arithmetic is exact on the decimal values given (each input goes through `Fraction(repr(x))`) and
rounded once at the end, so 30% x 125e12 x 2,500 days is 8.1e21 FLOP and 93.75 PF-days to the digit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .counting.report import unsupported_ops_note
from .emissions import GridIntensity, emissions_kg
from .errors import UsageError
from .units import PETAFLOP, PF_DAY_FLOP, SECONDS_PER_DAY, ComputeQuantity, format_si

if TYPE_CHECKING:
    from .counting.report import CountReport

SECONDS_PER_HOUR = 3_600
# Epoch AI's recommendation for the GPU-time method: 0.3 for language models, 0.4 for other models.
DEFAULT_UTILIZATION = 0.3
# Backward pass ~ 2x forward (Epoch AI; Kaplan et al.: 6N = 2N forward + 4N backward per token).
BACKWARD_TO_FORWARD = 2


def _exact(value: float | int | Fraction) -> Fraction:
    """The decimal value the user meant: 0.3 -> 3/10, not the nearest binary double."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(repr(float(value)))


def check_utilization(utilization: float) -> float:
    if isinstance(utilization, bool) or not isinstance(utilization, (int, float)) or not 0 < utilization <= 1:
        raise UsageError(
            f"utilization must be in (0, 1], got {utilization!r}",
            "give a fraction of peak such as 0.3 (30%); Epoch AI recommends 0.3 for language models, 0.4 otherwise",
        )
    return float(utilization)


def _check_positive(value: float, what: str, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float, Fraction)) and not isinstance(value, bool) and value == value
    if not ok or value < 0 or (value == 0 and not allow_zero) or value == float("inf"):
        bound = ">= 0" if allow_zero else "> 0"
        shown = float(value) if isinstance(value, Fraction) else value  # a counted 0 is 0.0, not Fraction(0, 1)
        raise UsageError(f"{what} must be a finite number {bound}, got {shown!r}")


@dataclass(frozen=True)
class Throughput:
    """What one GPU sustains: `peak_flops` (FLOP/s at 100%) x `utilization`.

    `origin` says where the peak came from, e.g. "datasheet dense bf16" (or, with a calibration file,
    "measured ..."): it is printed so nobody mistakes a datasheet peak for a measurement.
    """

    peak_flops: float
    utilization: float = DEFAULT_UTILIZATION
    gpu: str = ""
    precision: str = ""
    origin: str = "datasheet"

    def __post_init__(self) -> None:
        _check_positive(self.peak_flops, "peak FLOP/s per GPU")
        check_utilization(self.utilization)

    @property
    def sustained_flops(self) -> float:
        return float(self._sustained())

    def _sustained(self) -> Fraction:
        return _exact(self.peak_flops) * _exact(self.utilization)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu": self.gpu,
            "precision": self.precision,
            "peak_flops": float(self.peak_flops),
            "peak_origin": self.origin,
            "utilization": float(self.utilization),
            "sustained_flops_per_gpu": self.sustained_flops,
        }


def check_pue(pue: float) -> float:
    """A data centre's power usage effectiveness: total power over the IT equipment's, so >= 1."""
    if isinstance(pue, bool) or not isinstance(pue, (int, float)) or not 1 <= pue < float("inf"):
        raise UsageError(
            f"PUE must be a number >= 1, got {pue!r}", "1.0 counts the GPUs alone; data centres run 1.1-1.6"
        )
    return float(pue)


def check_price(price_per_gpu_hour: float | None) -> float | None:
    if price_per_gpu_hour is not None:
        _check_positive(price_per_gpu_hour, "price per GPU-hour", allow_zero=True)
    return price_per_gpu_hour


def energy_kwh(tdp_w: float | Fraction | None, gpu_hours: float | Fraction, pue: float | Fraction) -> float | None:
    """Energy = TDP x GPU-hours x PUE, in kWh (every GPU drawing its TDP all the time); None without a TDP.
    Exact on Fractions (`fleet_estimate`), plain float arithmetic on floats (`plan`, thousands of layouts)."""
    return None if tdp_w is None else float(tdp_w * gpu_hours * pue / 1000)


def gpu_hours_cost(gpu_hours: float | Fraction, price_per_gpu_hour: float | Fraction | None) -> float | None:
    """Cost = GPU-hours x the price of one; None without a price (exact on Fractions, as `energy_kwh`)."""
    return None if price_per_gpu_hour is None else float(gpu_hours * price_per_gpu_hour)


@dataclass(frozen=True)
class FleetEstimate:
    """A FLOP amount run on `num_gpus` GPUs at `throughput`: GPU time, wall clock, energy and cost.

    Wall clock assumes the work splits evenly over the GPUs (utilisation covers the losses).
    Energy = TDP x GPU-hours x PUE (None without a TDP); cost = GPU-hours x price (None without a price).
    """

    flop: float
    throughput: Throughput
    num_gpus: int
    gpu_hours: float
    wall_clock_hours: float
    tdp_w: float | None = None
    pue: float = 1.0
    energy_kwh: float | None = None
    price_per_gpu_hour: float | None = None
    cost: float | None = None
    grid: GridIntensity | None = None  # with --grid-intensity or --region
    emissions_kg_co2e: float | None = None  # energy_kwh x the grid's intensity; None without both

    @property
    def gpu_days(self) -> float:
        return float(_exact(self.gpu_hours) / 24)

    @property
    def wall_clock_days(self) -> float:
        return float(_exact(self.wall_clock_hours) / 24)

    def wall_clock_days_on(self, num_gpus: int) -> float:
        """Wall clock on another number of GPUs, the work split evenly as here (equal to wall_clock_days on
        this fleet's own size)."""
        return float(_exact(self.wall_clock_hours) * self.num_gpus / num_gpus / 24)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "gpu_hours": self.gpu_hours,
            "gpu_days": self.gpu_days,
            "wall_clock_hours": self.wall_clock_hours,
            "wall_clock_days": self.wall_clock_days,
            "num_gpus": self.num_gpus,
            **self.throughput.to_dict(),
            "tdp_w": self.tdp_w,
            "pue": self.pue,
            "energy_kwh": self.energy_kwh,
        }
        if self.cost is not None:
            data["price_per_gpu_hour"] = self.price_per_gpu_hour
            data["cost"] = self.cost
        if self.grid is not None:
            data["grid_intensity"] = self.grid.to_dict()
            data["emissions_kg_co2e"] = self.emissions_kg_co2e
        return data


def fleet_estimate(
    flop: float | Fraction,
    throughput: Throughput,
    num_gpus: int = 1,
    *,
    tdp_w: float | None = None,
    pue: float = 1.0,
    price_per_gpu_hour: float | None = None,
    grid: GridIntensity | None = None,
) -> FleetEstimate:
    """GPU-hours = FLOP / (peak x utilisation x 3600); wall clock = GPU-hours / num_gpus; energy; cost;
    emissions = energy x the grid's intensity (with `grid` and a TDP)."""
    _check_positive(flop, "FLOP", allow_zero=True)
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 1:
        raise UsageError(f"number of GPUs must be a whole number >= 1, got {num_gpus!r}")
    check_pue(pue)
    check_price(price_per_gpu_hour)
    if tdp_w is not None:
        _check_positive(tdp_w, "TDP")
    gpu_hours = _exact(flop) / (throughput._sustained() * SECONDS_PER_HOUR)
    energy = energy_kwh(None if tdp_w is None else _exact(tdp_w), gpu_hours, _exact(pue))
    cost = gpu_hours_cost(gpu_hours, None if price_per_gpu_hour is None else _exact(price_per_gpu_hour))
    emissions = (
        None if grid is None or tdp_w is None else emissions_kg(_exact(tdp_w) * gpu_hours * _exact(pue) / 1000, grid)
    )
    return FleetEstimate(
        flop=float(flop),
        throughput=throughput,
        num_gpus=num_gpus,
        gpu_hours=float(gpu_hours),
        wall_clock_hours=float(gpu_hours / num_gpus),
        tdp_w=None if tdp_w is None else float(tdp_w),
        pue=float(pue),
        energy_kwh=energy,
        price_per_gpu_hour=None if price_per_gpu_hour is None else float(price_per_gpu_hour),
        cost=cost,
        grid=grid,
        emissions_kg_co2e=emissions,
    )


# ---------------------------------------------------------------- convert


def quantity_to_flop(quantity: ComputeQuantity, throughput: Throughput | None = None) -> Fraction:
    """FLOP in `quantity`; GPU-days and GPU-hours need the per-GPU `throughput`."""
    value = _exact(quantity.value)
    if quantity.unit == "flop":
        return value
    if quantity.unit == "pf_days":
        return value * _exact(PF_DAY_FLOP)
    if quantity.unit in ("gpu_days", "gpu_hours"):
        if throughput is None:
            raise UsageError(f"{quantity.text or quantity.unit} needs a GPU to become FLOP", "pass --gpu NAME")
        seconds = SECONDS_PER_DAY if quantity.unit == "gpu_days" else SECONDS_PER_HOUR
        return value * seconds * throughput._sustained()
    raise UsageError(f"unknown compute unit {quantity.unit!r}", "use flop, pf_days, gpu_days or gpu_hours")


@dataclass(frozen=True)
class Conversion:
    """One amount of compute in every form: FLOP, PetaFLOP, PF-days, GPU-days/hours, wall clock on K GPUs."""

    quantity: ComputeQuantity
    fleet: FleetEstimate
    energy: bool = False  # energy (and emissions) asked for: --pue, --grid-intensity or --region

    @property
    def flop(self) -> float:
        return self.fleet.flop

    @property
    def petaflop(self) -> float:
        return float(_exact(self.flop) / _exact(PETAFLOP))

    @property
    def petaflop_days(self) -> float:
        return float(_exact(self.flop) / _exact(PF_DAY_FLOP))

    def to_dict(self) -> dict[str, Any]:
        """The `convert --format json` contract (floats in base units)."""
        return {
            "input": {"text": self.quantity.text, "value": self.quantity.value, "unit": self.quantity.unit},
            "flop": self.flop,
            "petaflop": self.petaflop,
            "petaflop_days": self.petaflop_days,
            **{k: v for k, v in self.fleet.to_dict().items() if self.energy or k not in ("tdp_w", "pue", "energy_kwh")},
        }


def convert(
    quantity: ComputeQuantity,
    throughput: Throughput,
    num_gpus: int = 1,
    *,
    tdp_w: float | None = None,
    pue: float | None = None,
    grid: GridIntensity | None = None,
) -> Conversion:
    """Express `quantity` in all units, given what one GPU sustains and how many GPUs share the work; with a
    `pue` or a `grid`, also its energy from the GPUs' `tdp_w` and its emissions."""
    flop = quantity_to_flop(quantity, throughput)
    energy = pue is not None or grid is not None
    fleet = fleet_estimate(
        flop, throughput, num_gpus, tdp_w=tdp_w if energy else None, pue=1.0 if pue is None else pue, grid=grid
    )
    return Conversion(quantity=quantity, fleet=fleet, energy=energy)


# ---------------------------------------------------------------- training compute


@dataclass(frozen=True)
class TrainingCompute:
    """Training compute = (forward + backward FLOPs per example) x examples x epochs.

    For the 6ND rule an "example" is a token: forward 2N, backward 4N per token.
    """

    forward_flops_per_example: float
    backward_flops_per_example: float
    examples: float
    epochs: float
    method: str
    example_unit: str = "example"
    notes: tuple[str, ...] = ()
    # distillation: the teacher's forward per example, run `teacher_passes` times over the examples (every epoch
    # with live logits, once with cached ones); not part of `flops_per_example`, which is the student's step
    teacher_forward_flops_per_example: float = 0
    teacher_passes: float = 0

    @property
    def flops_per_example(self) -> float:
        return float(self._per_example())

    def _per_example(self) -> Fraction:
        return _exact(self.forward_flops_per_example) + _exact(self.backward_flops_per_example)

    def _teacher_total(self) -> Fraction:
        return _exact(self.teacher_forward_flops_per_example) * _exact(self.examples) * _exact(self.teacher_passes)

    def parts(self) -> tuple[tuple[str, Fraction], ...]:
        """The training FLOPs in its parts, exactly: forward and backward over every example and epoch, then the
        teacher's forward passes (distillation) when there are any; they add up to `training_flops`."""
        runs = _exact(self.examples) * _exact(self.epochs)
        parts = [
            ("forward", _exact(self.forward_flops_per_example) * runs),
            ("backward", _exact(self.backward_flops_per_example) * runs),
        ]
        if self.teacher_passes:
            parts.append(("teacher forward", self._teacher_total()))
        return tuple(parts)

    def _total(self) -> Fraction:
        return sum((flops for _, flops in self.parts()), Fraction(0))

    @property
    def training_flops(self) -> float:
        return float(self._total())

    @property
    def petaflop_days(self) -> float:
        return float(self._total() / _exact(PF_DAY_FLOP))

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "training_flops": self.training_flops,
            "forward_flops_per_example": float(self.forward_flops_per_example),
            "backward_flops_per_example": float(self.backward_flops_per_example),
            "flops_per_example": self.flops_per_example,
            "example_unit": self.example_unit,
            "examples": float(self.examples),
            "epochs": float(self.epochs),
            "petaflop": float(self._total() / _exact(PETAFLOP)),
            "petaflop_days": self.petaflop_days,
            "notes": list(self.notes),
            **(
                {
                    "teacher": {
                        "forward_flops_per_example": float(self.teacher_forward_flops_per_example),
                        "passes": float(self.teacher_passes),
                        "flops": float(self._teacher_total()),
                    }
                }
                if self.teacher_passes
                else {}
            ),
        }


def with_teacher(
    training: TrainingCompute, teacher_forward_flops_per_example: float, *, cached_logits: bool = False
) -> TrainingCompute:
    """Distillation: the teacher's forward per example added to the student's training compute, every epoch
    (live logits) or once (`cached_logits`: computed on the first pass and stored)."""
    _check_positive(teacher_forward_flops_per_example, "teacher forward FLOPs per example")
    passes = 1 if cached_logits else training.epochs
    note = (
        f"distillation: + teacher forward {float(teacher_forward_flops_per_example):,.6g} FLOP per example x "
        f"{format_si(training.examples)} examples x {passes:g} pass{'es' if passes != 1 else ''} ("
        + (
            "logits cached: the teacher runs once over the examples"
            if cached_logits
            else "live logits: the teacher runs every epoch"
        )
        + "); the teacher is frozen: no backward"
    )
    return replace(
        training,
        teacher_forward_flops_per_example=teacher_forward_flops_per_example,
        teacher_passes=passes,
        notes=tuple(training.notes) + (note,),
    )


def check_run_size(examples: float, epochs: float) -> None:
    """Examples and epochs must be positive: callers check it before counting a model, the builders again."""
    _check_positive(examples, "number of examples")
    _check_positive(epochs, "number of epochs")


def training_from_counts(
    forward_flops_per_example: float,
    backward_flops_per_example: float,
    examples: float,
    epochs: float = 1,
    *,
    method: str = "counted",
    notes: tuple[str, ...] = (),
) -> TrainingCompute:
    """From counted forward and backward FLOPs per example (e.g. a CountReport divided by its batch size)."""
    _check_positive(forward_flops_per_example, "forward FLOPs per example")
    _check_positive(backward_flops_per_example, "backward FLOPs per example", allow_zero=True)
    check_run_size(examples, epochs)
    return TrainingCompute(forward_flops_per_example, backward_flops_per_example, examples, epochs, method, notes=notes)


def training_from_forward(flops_per_example: float, examples: float, epochs: float = 1) -> TrainingCompute:
    """From forward FLOPs per example only: backward assumed 2x forward (Epoch AI's 2:1 ratio)."""
    _check_positive(flops_per_example, "forward FLOPs per example")
    check_run_size(examples, epochs)
    backward = float(_exact(flops_per_example) * BACKWARD_TO_FORWARD)
    return TrainingCompute(
        flops_per_example,
        backward,
        examples,
        epochs,
        "forward-x3",
        notes=("backward assumed 2x forward (Epoch AI's typical 2:1 ratio), so training = 3 x forward",),
    )


def training_from_params_tokens(params: float, tokens: float, *, active: bool = False) -> TrainingCompute:
    """The 6ND rule (Kaplan et al. 2020): 2N forward + 4N backward FLOPs per token, D tokens, one pass.

    For a mixture of experts N is the active parameter count (the experts a token is routed to, top-k of
    them, plus everything else), not the total: `active=True` says N is that, in a note."""
    _check_positive(params, "number of parameters")
    _check_positive(tokens, "number of tokens")
    two_n = float(_exact(params) * 2)
    notes = (
        "C = 6 x N x D: 2N forward + 4N backward FLOPs per token (Kaplan et al. 2020); attention "
        "FLOPs beyond the parameter matmuls are not included",
    )
    if active:
        notes += (
            f"N = {format_si(params)} active parameters: each token runs through its top-k experts only "
            "(mixture of experts), so the experts it skips are not in N",
        )
    return TrainingCompute(two_n, float(_exact(params) * 4), tokens, 1, "6ND", example_unit="token", notes=notes)


ASSUMED_BACKWARD_NOTE = (
    f"backward not counted for this source: backward = {BACKWARD_TO_FORWARD}x forward assumed (Epoch AI's typical 2:1 "
    "ratio)"
)


def step_flops(report: CountReport) -> tuple[int, int, tuple[str, ...]]:
    """Forward and backward FLOPs of the counted batch, and notes on how they were obtained.

    A report whose backward pass was not counted (an ONNX graph, `--no-backward`) gets backward = 2x forward,
    said in a note: `train`, `check` and everything else that needs a training step read it from here.
    """
    if report.backward_counted:
        return report.forward, report.backward, ()
    return report.forward, report.forward * BACKWARD_TO_FORWARD, (ASSUMED_BACKWARD_NOTE,)


def training_from_report(report: CountReport, examples: float, epochs: float = 1) -> TrainingCompute:
    """Training compute of a counted model: its batch's (forward + backward) / batch size x examples x epochs.

    The notes carry the per-batch figures, the ops without a formula and the report's own notes, so every
    command that prints training compute says the same things about it.
    """
    forward, backward, assumed = step_flops(report)
    batch = report.batch_size
    notes = [
        f"counted: {forward:,} forward + {backward:,} backward FLOP per batch of {batch} "
        f"(leading dimension of the first input), divided by {batch}",
        *assumed,
    ]
    unsupported = unsupported_ops_note(report.unsupported_ops)
    if unsupported:
        notes.append(unsupported)
    notes.extend(report.notes)
    return training_from_counts(
        Fraction(forward, batch), Fraction(backward, batch), examples, epochs, method="counted", notes=tuple(notes)
    )
