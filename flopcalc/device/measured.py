"""A device profile measured on this machine (`flopcalc bench --save`): kernel rates at the sizes they were
timed at, and bus bandwidth against the message size. It sits beside the published profiles (`profile`) so
every rate a prediction reads comes from this room; the calibration file stores it under the device name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import CalibrationError
from ..units import MATMUL_PRECISIONS
from .profile import COLLECTIVES

# Where `bench --distributed` ran a collective: every rank; the ranks of one node; one rank per node.
MEASURED_SCOPES = ("world", "intra", "inter")


STEP_PHASES = ("forward", "backward", "optimizer")


@dataclass(frozen=True)
class KernelRates:
    """One precision's measured kernel rates at the sizes they were measured at (docs/calibration.md): matmul
    TFLOPS per (m, n, k); convolutions' forward, input-gradient and weight-gradient TFLOPS per implicit GEMM
    (m, n, k per group) and groups; memory GB/s per bytes moved by a copy; elementwise G elements/s per tensor
    size; the time of an op that moves nothing (a view: what dispatching one op costs); and what an eager step
    spends per op beyond its kernel in each phase (Python, modules, autograd, the optimizer's loop)."""

    matmul: tuple[tuple[int, int, int, float], ...]  # (m, n, k, TFLOPS)
    memory: tuple[tuple[int, float], ...]  # (bytes moved, GB/s)
    elementwise: tuple[tuple[int, float], ...]  # (elements, G elements/s)
    view_us: float
    step_op_us: Mapping[str, float]  # phase (STEP_PHASES) -> microseconds per op beyond its kernel
    # (m, n, k, groups, forward, input-gradient, weight-gradient TFLOPS); m, n, k: the forward's implicit GEMM
    # per group (output positions, output channels, input channels x kernel)
    convolution: tuple[tuple[int, int, int, int, float, float, float], ...] = ()
    # op name (`mul_` apart from `mul`) -> (elements of its largest tensor, G elements/s): ops
    # timed one by one, which neither their bytes nor the elementwise rate price (empty in older profiles)
    op_rates: Mapping[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "matmul": [list(point) for point in self.matmul],
            "convolution": [list(point) for point in self.convolution],
            "memory": [list(point) for point in self.memory],
            "elementwise": [list(point) for point in self.elementwise],
            "view_us": self.view_us,
            "step_op_us": dict(self.step_op_us),
            "op_rates": {name: [list(point) for point in points] for name, points in self.op_rates.items()},
        }


@dataclass(frozen=True)
class ProfileCalibration:
    """A device profile measured by `flopcalc bench --save`: kernel rates per precision, and (from
    `bench --distributed --save`) bus bandwidth per collective, scope and message size."""

    device_name: str  # the device it was measured on: applying it to another is refused
    measured_at: str
    torch_version: str
    precisions: Mapping[str, KernelRates] = field(default_factory=dict)
    threads: int | None = None
    # scope -> collective (or "p2p") -> [(message bytes, bus GB/s)], from `bench --distributed --save`
    busbw: Mapping[str, Mapping[str, tuple[tuple[int, float], ...]]] = field(default_factory=dict)

    def rates(self, precision: str) -> KernelRates:
        if precision not in self.precisions:
            measured = ", ".join(sorted(self.precisions)) or "none"
            raise CalibrationError(
                f"the device profile of {self.device_name} has no {precision} rates (measured: {measured})",
                f"rerun `flopcalc bench --precision {precision} --save`",
            )
        return self.precisions[precision]

    def for_device(self, device_name: str) -> ProfileCalibration:
        """This profile, when it was measured on `device_name`; refused with one line otherwise."""
        if self.device_name != device_name:
            raise CalibrationError(
                f"the device profile was measured on {self.device_name!r}, not on {device_name!r}",
                "a profile applies only to the device it was measured on: run `flopcalc bench --save` on this device",
            )
        return self

    def merged_with(self, newer: ProfileCalibration) -> ProfileCalibration:
        """`newer` replaces the precisions (and bus-bandwidth scopes) it measured; the others are kept. A profile
        of another device replaces this one whole."""
        if newer.device_name != self.device_name:
            return newer
        return ProfileCalibration(
            newer.device_name,
            newer.measured_at,
            newer.torch_version,
            {**self.precisions, **newer.precisions},
            newer.threads if newer.precisions else self.threads,
            {**self.busbw, **newer.busbw},
        )

    def to_dict(self) -> dict:
        data: dict[str, Any] = {
            "device_name": self.device_name,
            "measured_at": self.measured_at,
            "torch_version": self.torch_version,
            "threads": self.threads,
            "precisions": {precision: rates.to_dict() for precision, rates in self.precisions.items()},
        }
        if self.busbw:
            data["busbw"] = {
                scope: {op: [list(point) for point in points] for op, points in ops.items()}
                for scope, ops in self.busbw.items()
            }
        return data


# --------------------------------------------------------------------------------------------- reading

_PROFILE_KEYS = {"device_name", "measured_at", "torch_version", "threads", "precisions", "busbw"}
_RATES_KEYS = {"matmul", "convolution", "memory", "elementwise", "view_us", "step_op_us"}
_OPTIONAL_RATES_KEYS = {"op_rates"}  # absent from profiles saved before it was measured


def parse_measured_profile(entry: Any, where: str) -> ProfileCalibration:
    """A measured device profile from its mapping: every field required, every point a positive number; errors
    are one line naming `where` (docs/calibration.md)."""
    if not isinstance(entry, dict):
        raise CalibrationError(f"{where}: expected a mapping")
    _no_unknown_keys(entry, _PROFILE_KEYS, where)
    precisions_data = entry.get("precisions")
    if not isinstance(precisions_data, dict) or not (precisions_data or entry.get("busbw")):
        raise CalibrationError(
            f"{where}: 'precisions' is missing or empty (and there is no 'busbw')", "rerun `flopcalc bench --save`"
        )
    precisions = {}
    for precision, rates in precisions_data.items():
        if precision not in MATMUL_PRECISIONS:
            raise CalibrationError(f"{where}: unknown precision {precision!r}", f"use {', '.join(MATMUL_PRECISIONS)}")
        precisions[precision] = _parse_rates(rates, f"{where} {precision}")
    threads = entry.get("threads")
    if threads is not None and not (isinstance(threads, int) and not isinstance(threads, bool) and threads > 0):
        raise CalibrationError(f"{where}: 'threads' must be a positive integer or null")
    busbw_data = entry.get("busbw") or {}
    if not isinstance(busbw_data, dict):
        raise CalibrationError(f"{where}: 'busbw' must map scope to collective to [[bytes, GB/s], ...]")
    busbw = {}
    for scope, ops in busbw_data.items():
        if scope not in MEASURED_SCOPES or not isinstance(ops, dict) or not ops:
            raise CalibrationError(
                f"{where} busbw: {scope!r} must be one of {', '.join(MEASURED_SCOPES)} mapping collectives to points"
            )
        for op in ops:
            if op not in COLLECTIVES:
                raise CalibrationError(
                    f"{where} busbw {scope}: unknown collective {op!r}", f"use {', '.join(COLLECTIVES)}"
                )
        busbw[scope] = {
            op: tuple((int(size), rate) for size, rate in _points(points, f"{where} busbw {scope} {op}", 2))
            for op, points in ops.items()
        }
    return ProfileCalibration(
        device_name=required_text(entry, "device_name", where),
        measured_at=required_text(entry, "measured_at", where),
        torch_version=required_text(entry, "torch_version", where),
        precisions=precisions,
        threads=threads,
        busbw=busbw,
    )


def _parse_rates(entry: Any, where: str) -> KernelRates:
    if not isinstance(entry, dict):
        raise CalibrationError(f"{where}: expected a mapping of {', '.join(sorted(_RATES_KEYS))}")
    _no_unknown_keys(entry, _RATES_KEYS | _OPTIONAL_RATES_KEYS, where)
    missing = sorted(key for key in _RATES_KEYS if entry.get(key) is None)
    if missing:
        raise CalibrationError(f"{where}: missing {', '.join(missing)}", "rerun `flopcalc bench --save`")
    matmul = _points(entry["matmul"], f"{where} matmul", 4)
    if any(any(x != int(x) for x in point[:3]) for point in matmul):
        raise CalibrationError(f"{where} matmul: m, n and k must be whole numbers")
    convolution = (
        _points(entry["convolution"], f"{where} convolution", 7, sizes=4) if entry["convolution"] != [] else ()
    )  # none measured: convolutions are priced as GEMMs
    if any(any(x != int(x) for x in point[:4]) for point in convolution):
        raise CalibrationError(f"{where} convolution: m, n, k and groups must be whole numbers")
    step_op_us = entry["step_op_us"]
    if not isinstance(step_op_us, dict) or set(step_op_us) != set(STEP_PHASES):
        raise CalibrationError(f"{where} step_op_us: expected microseconds for each of {', '.join(STEP_PHASES)}")
    return KernelRates(
        matmul=tuple((int(m), int(n), int(k), tflops) for m, n, k, tflops in matmul),
        memory=tuple((int(size), rate) for size, rate in _points(entry["memory"], f"{where} memory", 2)),
        elementwise=tuple((int(size), rate) for size, rate in _points(entry["elementwise"], f"{where} elementwise", 2)),
        view_us=positive_figure(entry["view_us"], f"{where} view_us"),
        step_op_us={phase: _at_least_zero(step_op_us[phase], f"{where} step_op_us {phase}") for phase in STEP_PHASES},
        convolution=tuple(
            (int(m), int(n), int(k), int(groups), forward, input_grad, weight_grad)
            for m, n, k, groups, forward, input_grad, weight_grad in convolution
        ),
        op_rates=_op_rates({} if entry.get("op_rates") is None else entry["op_rates"], f"{where} op_rates"),
    )


def _op_rates(value: Any, where: str) -> dict[str, tuple[tuple[int, float], ...]]:
    if not isinstance(value, dict) or not all(isinstance(name, str) and name for name in value):
        raise CalibrationError(f"{where}: expected a mapping of op name to [[elements, G elements/s], ...]")
    return {
        name: tuple((int(size), rate) for size, rate in _points(points, f"{where} {name}", 2))
        for name, points in value.items()
    }


def _points(value: Any, where: str, width: int, sizes: int | None = None) -> tuple[tuple[float, ...], ...]:
    """A non-empty list of `width`-number points, every number finite and > 0, the sizes (the first `sizes`
    numbers, default all but the last) distinct."""
    if not isinstance(value, list) or not value:
        raise CalibrationError(f"{where}: expected a non-empty list of points")
    points = []
    for point in value:
        if not (
            isinstance(point, list)
            and len(point) == width
            and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0 for x in point
            )
        ):
            raise CalibrationError(f"{where}: every point must be {width} positive numbers, got {point!r}")
        points.append(tuple(float(x) for x in point))
    if len({point[: sizes or width - 1] for point in points}) != len(points):
        raise CalibrationError(f"{where}: a size appears twice")
    return tuple(points)


def _no_unknown_keys(entry: Mapping, allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in entry if key not in allowed)
    if unknown:
        raise CalibrationError(
            f"{where}: unknown key(s) {', '.join(unknown)}", f"allowed: {', '.join(sorted(allowed))}"
        )


def positive_figure(value: Any, where: str) -> float:
    """`value` as a float when it is a finite number > 0; CalibrationError naming `where` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise CalibrationError(f"{where}: must be a positive number, got {value!r}")
    return float(value)


def _at_least_zero(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise CalibrationError(f"{where}: must be a number >= 0, got {value!r}")
    return float(value)


def required_text(entry: Mapping, key: str, where: str) -> str:
    """`entry[key]` when it is a non-empty string; CalibrationError naming `where` and the key otherwise."""
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CalibrationError(f"{where}: '{key}' must be a non-empty string")
    return value
