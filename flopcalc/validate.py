"""`flopcalc validate`: replay published measured training runs through the model and say how far off it lands.

Times go through flopcalc.predict (the step-time model on a device profile), memory per GPU through
flopcalc.plan's public memory arithmetic. One profile figure may be fitted, and only on the rows marked
`role: tuning`; every other row is a prediction, and its error is reported apart (docs/validation.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .compute import Throughput
from .device import resolve_device
from .errors import UsageError
from .files import read_yaml_or_shipped, shipped_text
from .plan import Bandwidth, Fleet, GivenShape, Layout, evaluate, model_from_params
from .predict import OVERLAP_RULES, Curve, DeviceProfile, TrainingLayout, TransformerShape, load_profiles, predict_step
from .units import GIB, LARGEST_NUMBER, LARGEST_WHOLE, SMALLEST_FIGURE

SCHEMA_VERSION = 1
KINDS = ("time", "memory")
ROLES = ("tuning", "held-out")
_MODEL_FIELDS = ("layers", "hidden", "heads", "seq_len", "vocab")
_LAYOUT_FIELDS = ("tp", "pp", "dp", "micro_batch", "global_batch", "virtual", "recompute", "sequence_parallel")


class ValidationFileError(UsageError):
    """A validation table that is missing, malformed, or has a row without a source."""


@dataclass(frozen=True)
class RunRow:
    """One published measured run: what ran (model, layout, device) and what was measured, with its source."""

    id: str
    source: str
    kind: str  # "time": seconds per step; "memory": GiB per GPU (model states + activations)
    role: str  # "tuning": a fitted figure may use it; "held-out": never
    device: str
    shape: TransformerShape
    layout: TrainingLayout
    measured: float  # seconds per step, or GiB per GPU
    measured_activations: float | None = None  # GiB, memory rows
    gradient_bytes: int = 2  # bytes per parameter of the gradient buffer (Megatron-LM's fp32 main_grad: 4)


@dataclass(frozen=True)
class RowResult:
    """One row replayed: flopcalc's figure for it against the measured one."""

    row: RunRow
    predicted: float  # seconds per step (a time row) or GiB per GPU (a memory row)

    @property
    def error(self) -> float:
        """predicted / measured - 1: negative = the model is too fast (or too small)."""
        return self.predicted / self.row.measured - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.row.id,
            "source": self.row.source,
            "kind": self.row.kind,
            "role": self.row.role,
            "device": self.row.device,
            "measured": self.row.measured,
            "predicted": self.predicted,
            "error": self.error,
        }


@dataclass(frozen=True)
class TimeResult(RowResult):
    """A time row: seconds per step, and the model FLOPs utilisation (MFU) and hardware FLOPs utilisation (HFU)
    the predicted step implies."""

    mfu: float
    hfu: float

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "unit": "s", "mfu": self.mfu, "hfu": self.hfu}


@dataclass(frozen=True)
class MemoryResult(RowResult):
    """A memory row: GiB per GPU, and the activations' part of it, which some sources measured apart."""

    predicted_activations: float

    @property
    def activations_error(self) -> float | None:
        if not self.row.measured_activations:
            return None
        return self.predicted_activations / self.row.measured_activations - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "unit": "GiB",
            "measured_activations": self.row.measured_activations,
            "predicted_activations": self.predicted_activations,
            "activations_error": self.activations_error,
        }


@dataclass(frozen=True)
class Summary:
    """Mean and max |error| of some rows."""

    rows: int
    mean_abs_error: float | None
    max_abs_error: float | None

    @staticmethod
    def of(results: list[RowResult]) -> Summary:
        errors = [abs(result.error) for result in results]
        if not errors:
            return Summary(0, None, None)
        return Summary(len(errors), sum(errors) / len(errors), max(errors))

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "mean_abs_error": self.mean_abs_error, "max_abs_error": self.max_abs_error}


@dataclass(frozen=True)
class Fit:
    """The one fitted figure: a scale on every device's matmul efficiency curve, chosen so that the tuning rows'
    mean signed time error is zero."""

    matmul_efficiency_scale: float
    tuning_rows: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"matmul_efficiency_scale": self.matmul_efficiency_scale, "tuning_rows": list(self.tuning_rows)}


@dataclass(frozen=True)
class ValidationReport:
    runs_file: str
    results: tuple[RowResult, ...]
    fit: Fit | None
    sources: tuple[str, ...]  # the profiles' sources and the model's overlap rules, once

    def of(self, kind: str, role: str | None = None) -> list[RowResult]:
        return [r for r in self.results if r.row.kind == kind and (role is None or r.row.role == role)]

    def summary(self, kind: str, role: str | None = None) -> Summary:
        return Summary.of(self.of(kind, role))

    @property
    def max_abs_error(self) -> float:
        return max(abs(result.error) for result in self.results)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "runs_file": self.runs_file,
            "fit": None if self.fit is None else self.fit.to_dict(),
        }
        for kind in KINDS:
            data[kind] = {
                "rows": [result.to_dict() for result in self.of(kind)],
                "all": self.summary(kind).to_dict(),
                "tuning": self.summary(kind, "tuning").to_dict(),
                "held_out": self.summary(kind, "held-out").to_dict(),
            }
        data["sources"] = list(self.sources)
        return data


# --------------------------------------------------------------------------------------------- reading the table


def _fail(where: str, path: str, problem: str, hint: str | None = None) -> ValidationFileError:
    return ValidationFileError(f"{where}: {path}: {problem}", hint)


def _whole(value: Any, where: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LARGEST_WHOLE:
        raise _fail(where, path, f"must be a whole number from 1 to {LARGEST_WHOLE:,}, got {value!r}")
    return value


def _positive(value: Any, where: str, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise _fail(where, path, f"must be a number > 0, got {value!r}")
    if not SMALLEST_FIGURE <= value <= LARGEST_NUMBER:
        raise _fail(where, path, f"must be between {SMALLEST_FIGURE:g} and {LARGEST_NUMBER:g}, got {value!r}")
    return float(value)


def _required(data: dict[str, Any], key: str, where: str, path: str) -> Any:
    if key not in data or data[key] is None:
        raise _fail(where, f"{path}.{key}", "missing", "every row names its source, model, layout and measurement")
    return data[key]


def _row(data: Any, where: str, path: str) -> RunRow:
    if not isinstance(data, dict):
        raise _fail(where, path, "must be a mapping")
    source = _required(data, "source", where, path)
    if not isinstance(source, str) or not source.strip():
        raise _fail(where, f"{path}.source", "must say where the measurement was published (paper, table, figure)")
    run_id = str(_required(data, "id", where, path))
    kind = _required(data, "kind", where, path)
    if kind not in KINDS:
        raise _fail(where, f"{path}.kind", f"must be time or memory, got {kind!r}")
    role = _required(data, "role", where, path)
    if role not in ROLES:
        raise _fail(where, f"{path}.role", f"must be tuning or held-out, got {role!r}")
    model = _required(data, "model", where, path)
    layout = _required(data, "layout", where, path)
    measured = _required(data, "measured", where, path)
    for name, value in (("model", model), ("layout", layout), ("measured", measured)):
        if not isinstance(value, dict):
            raise _fail(where, f"{path}.{name}", "must be a mapping")
    shape, train = _shape_and_layout(data, model, layout, where, path)
    value, activations = _measured(measured, kind, where, path)
    gradient_bytes = data.get("gradient_bytes", 2)
    if gradient_bytes not in (2, 4):
        raise _fail(where, f"{path}.gradient_bytes", f"must be 2 or 4, got {gradient_bytes!r}")
    device = _required(data, "device", where, path)
    return RunRow(run_id, source.strip(), kind, role, str(device), shape, train, value, activations, gradient_bytes)


def _shape_and_layout(
    data: dict, model: dict, layout: dict, where: str, path: str
) -> tuple[TransformerShape, TrainingLayout]:
    """The transformer and the training layout a row's `model` and `layout` mappings describe."""
    shape_args = {
        key: _whole(_required(model, key, where, f"{path}.model"), where, f"{path}.model.{key}")
        for key in _MODEL_FIELDS
    }
    for key in ("ffn", "kv_heads"):
        if model.get(key) is not None:
            shape_args[key] = _whole(model[key], where, f"{path}.model.{key}")
    layout_args: dict[str, Any] = {}
    for key in _LAYOUT_FIELDS:
        value = _required(layout, key, where, f"{path}.layout")
        if key == "recompute":
            layout_args[key] = value
        elif key == "sequence_parallel":
            if not isinstance(value, bool):
                raise _fail(where, f"{path}.layout.{key}", f"must be true or false, got {value!r}")
            layout_args[key] = value
        else:
            layout_args[key] = _whole(value, where, f"{path}.layout.{key}")
    try:
        return TransformerShape(**shape_args), TrainingLayout(
            **layout_args, gpus_per_node=_whole(data.get("gpus_per_node", 8), where, f"{path}.gpus_per_node")
        )
    except UsageError as error:
        raise _fail(where, path, error.message) from None


def _measured(measured: dict, kind: str, where: str, path: str) -> tuple[float, float | None]:
    """(the measured figure, the measured activations for a memory row): seconds per step, or GiB per GPU."""

    def figure(key: str) -> float:
        return _positive(_required(measured, key, where, f"{path}.measured"), where, f"{path}.measured.{key}")

    if kind == "time":
        return figure("step_s"), None
    states, activations = figure("model_states_gib"), figure("activations_gib")
    return states + activations, activations


def default_runs_text() -> str:
    return shipped_text("validation_runs.yaml")


def load_runs(path: Path | None = None) -> tuple[str, tuple[RunRow, ...]]:
    """The rows of a validation table (default: the shipped one), and the name it is known by."""
    where, data = read_yaml_or_shipped(path, "validation_runs.yaml", ValidationFileError, "validation table")
    if not isinstance(data, dict):
        raise _fail(where, "(top)", "must be a mapping with schema_version and runs")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise _fail(where, "schema_version", f"must be {SCHEMA_VERSION}, got {data.get('schema_version')!r}")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise _fail(where, "runs", "must be a non-empty list of rows")
    rows = tuple(_row(entry, where, f"runs[{index}]") for index, entry in enumerate(runs))
    seen: set[str] = set()
    for index, row in enumerate(rows):
        if row.id in seen:
            raise _fail(where, f"runs[{index}].id", f"{row.id} appears twice")
        seen.add(row.id)
    return where, rows


# --------------------------------------------------------------------------------------------- replaying


def scaled_matmul(profile: DeviceProfile, scale: float) -> DeviceProfile:
    """The profile with every point of its matmul efficiency curve times `scale` (capped at 1)."""
    curve = profile.matmul.efficiency
    points = tuple((size, min(1.0, value * scale)) for size, value in curve.points)
    fitted = Curve(points, f"{curve.source}, x {scale:.4f} fitted on the validation table's tuning rows", curve.between)
    return replace(profile, matmul=replace(profile.matmul, efficiency=fitted))


def predicted_time(row: RunRow, profile: DeviceProfile) -> tuple[float, float, float]:
    """Seconds per step, MFU and HFU."""
    prediction = predict_step(row.shape, row.layout, profile)
    return prediction.step_s, prediction.mfu, prediction.hfu


def predicted_memory(row: RunRow, profile: DeviceProfile) -> tuple[float, float]:
    """GiB per GPU (model states + activations) and the activations' GiB, by flopcalc.plan's arithmetic on the
    row's shape: Korthikanti et al.'s activations, ZeRO-0 mixed-precision Adam states of the blocks' 12h^2 per
    layer (what Figure 1 counts), the row's gradient buffer; plan's interleaving keeps (1 + (p-1)/(p v)) times the
    first stage's activations (Korthikanti et al. 2022, Sec. 4.3)."""
    shape, layout = row.shape, row.layout
    params = shape.layers * shape.params_per_layer
    # Megatron-LM of 2022 kept the s^2 scores (no flash attention)
    model = model_from_params(params, shape.seq_len, GivenShape.of_gemm_shape(shape, attention="math"))
    link = profile.network("intra_node")
    device = resolve_device(row.device, "fp16", profile=profile)
    fleet = Fleet(
        Throughput(profile.matmul.peak, 1.0, row.device, "fp16", profile.matmul.peak_source),
        gpu_memory_bytes=device.memory_bytes.value if device.memory_bytes else GIB,  # only `fits` reads it
        gpus_per_node=layout.gpus_per_node,
        intra_node=Bandwidth(link.bandwidth / 1e9, link.source),
        inter_node=Bandwidth(profile.network("inter_node").bandwidth / 1e9, profile.network("inter_node").source),
    )
    plan = evaluate(
        model,
        Layout(**{key: getattr(layout, key) for key in (*_LAYOUT_FIELDS, "gpus_per_node")}),  # the same names in plan
        fleet,
        precision="fp16",
    )
    memory = plan.memory
    gradients = memory.gradients * row.gradient_bytes / 2  # plan counts 2 bytes per fp16 gradient
    activations = memory.activations or 0.0
    return (memory.weights + gradients + memory.optimizer + activations) / GIB, activations / GIB


def _time_results(rows: list[RunRow], profiles: dict[str, DeviceProfile], scale: float) -> list[TimeResult]:
    return [TimeResult(row, *predicted_time(row, scaled_matmul(_profile(row, profiles), scale))) for row in rows]


def _profile(row: RunRow, profiles: dict[str, DeviceProfile]) -> DeviceProfile:
    if row.device not in profiles:
        raise ValidationFileError(
            f"run {row.id} ran on {row.device}, and there is no device profile for it",
            f"profiles exist for {', '.join(sorted(profiles))}",
        )
    return profiles[row.device]


def fit_matmul_scale(rows: list[RunRow], profiles: dict[str, DeviceProfile]) -> float:
    """The scale on the matmul efficiency curves at which the rows' mean signed time error is zero (bisection:
    the error falls as the scale grows)."""

    def mean_error(scale: float) -> float:
        results = _time_results(rows, profiles, scale)
        return sum(result.error for result in results) / len(results)

    low, high = 0.3, 1.5
    if mean_error(low) < 0 or mean_error(high) > 0:
        raise ValidationFileError(
            "the tuning rows cannot be matched by scaling the matmul efficiency within 0.3-1.5",
            "check the tuning rows' layouts and device",
        )
    for _ in range(60):
        middle = (low + high) / 2
        if mean_error(middle) > 0:
            low = middle
        else:
            high = middle
    return round((low + high) / 2, 4)


def validate(runs: Path | None = None, profiles: Path | None = None, *, fit: bool = True) -> ValidationReport:
    """Replay every row of the validation table (default: the shipped one) on the device profiles (default: the
    shipped ones): fit the matmul scale on the tuning time rows (unless `fit` is False: the profiles as they
    are), predict every row, measure the errors."""
    where, rows = load_runs(runs)
    device_profiles = load_profiles(profiles)
    time_rows = [row for row in rows if row.kind == "time"]
    tuning = [row for row in time_rows if row.role == "tuning"]
    fitted = None
    scale = 1.0
    if tuning and fit:
        scale = fit_matmul_scale(tuning, device_profiles)
        fitted = Fit(scale, tuple(row.id for row in tuning))
    by_id: dict[str, RowResult] = {result.row.id: result for result in _time_results(time_rows, device_profiles, scale)}
    for row in rows:
        if row.kind == "memory":
            total, activations = predicted_memory(row, _profile(row, device_profiles))
            by_id[row.id] = MemoryResult(row, total, activations)
    results = tuple(by_id[row.id] for row in rows)
    sources: list[str] = []
    for device in dict.fromkeys(row.device for row in rows):
        profile = scaled_matmul(device_profiles[device], scale) if fitted else device_profiles[device]
        sources.extend(f"{device}: {line}" for line in profile.sources())
    if time_rows:
        sources.extend(OVERLAP_RULES)
    return ValidationReport(where, results, fitted, tuple(sources))
