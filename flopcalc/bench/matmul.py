"""Matmul throughput: how many TFLOPS this device really delivers, per precision.

Method (after Bekman's MAMF finder and `triton.testing.do_bench`): a warm-up, then a ladder of
square shapes (multiples of 256, growing until throughput stops rising), then a few rectangular
LLM-like shapes sized from the best square. Each shape is timed in blocks of calls (CUDA events on
GPU, synchronize + perf_counter elsewhere), several samples per shape. Headline: the best per-shape
median; also the best single sample and the spread of the headline shape's samples.

FLOPs of an m x k @ k x n matmul = 2 * m * n * k (one multiply-add = 2 FLOPs). One precision's sweep is
`flopcalc.bench.sweep`; here: every precision in turn, the results and their calibration entry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..calibration import MatmulCalibration, ProfileCalibration, now_utc, save_device_entry
from ..errors import CalibrationError, UsageError
from ..units import MATMUL_PRECISIONS
from .hardware import (
    BUSY,
    DeviceInfo,
    PeakResolver,
    available_cpus,
    cpu_peak,
    datasheet_peak,
    describe_device,
    load_warning,
    precision_skip_reason,
    resolve_device,
)
from .profile import PROFILE_PRECISIONS, measure_profile
from .sweep import Shape, ShapeTiming, SweepPlan, Timer, probe_precision, sweep_precision, timer_for

SPREAD_LIMIT_PCT = 25.0  # a headline shape's samples spreading wider than this: the run was disturbed
ProgressCallback = Callable[[str, Shape, float], None]  # (precision, shape, fraction of the run done)


@dataclass(frozen=True)
class PrecisionResult:
    """One precision's sweep: every shape timed, and the peak it is compared with."""

    precision: str
    timings: tuple[ShapeTiming, ...]
    peak_flops: float | None
    peak_source: str

    @property
    def headline(self) -> ShapeTiming:
        """The shape with the best median: its median is the figure to calibrate with."""
        return max(self.timings, key=lambda timing: timing.median_tflops)

    @property
    def median_tflops(self) -> float:
        return self.headline.median_tflops

    @property
    def best_tflops(self) -> float:
        """Best single sample over all shapes (an optimistic figure; the median is the honest one)."""
        return max(timing.best_tflops for timing in self.timings)

    @property
    def fraction_of_peak(self) -> float | None:
        return self.median_tflops * 1e12 / self.peak_flops if self.peak_flops else None

    def to_dict(self) -> dict:
        return {
            "precision": self.precision,
            "best_tflops": self.best_tflops,
            "median_tflops": self.median_tflops,
            "spread_pct": self.headline.spread_pct,
            "shape": list(self.headline.shape),
            "peak_tflops": self.peak_flops / 1e12 if self.peak_flops else None,
            "fraction_of_peak": self.fraction_of_peak,
            "peak_source": self.peak_source,
            "shapes": [timing.to_dict() for timing in self.timings],
        }


@dataclass(frozen=True)
class MatmulBenchResult:
    """A whole `flopcalc bench` run."""

    info: DeviceInfo
    results: tuple[PrecisionResult, ...]
    seconds_budget: float
    seconds_used: float
    full: bool
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    calibration_file: str | None = None
    profile: ProfileCalibration | None = None  # measured when the run is to be saved

    def disturbances(self) -> tuple[str, ...]:
        """Why the figures may not be the device's own: a busy machine, samples that spread wide."""
        reasons = [warning for warning in self.warnings if warning.startswith(BUSY)]
        for result in self.results:
            spread = result.headline.middle_spread_pct
            if spread > SPREAD_LIMIT_PCT:
                reasons.append(
                    f"the {result.precision} samples spread {spread:.0f}% (more than {SPREAD_LIMIT_PCT:.0f}%)"
                )
        return tuple(reasons)

    def to_calibration(self) -> MatmulCalibration:
        """The calibration entry of this run: the headline median TFLOPS of each precision."""
        return MatmulCalibration(
            tflops={item.precision: item.median_tflops for item in self.results},
            best_tflops={item.precision: item.best_tflops for item in self.results},
            shapes={item.precision: tuple(item.headline.shape) for item in self.results},
            measured_at=now_utc(),
            torch_version=self.info.torch_version,
            seconds=self.seconds_budget,
            full=self.full,
            threads=self.info.threads,
        )

    def result_for(self, precision: str) -> PrecisionResult | None:
        return next((result for result in self.results if result.precision == precision), None)

    def to_dict(self) -> dict:
        info = self.info
        data = {
            "device": info.device,
            "device_name": info.device_name,
            "torch_version": info.torch_version,
            "results": [result.to_dict() for result in self.results],
            "calibration_file": self.calibration_file,
            "cuda_version": info.cuda_version,
            "hip_version": info.hip_version,
            "compute_capability": list(info.compute_capability) if info.compute_capability else None,
            "threads": info.threads,
            "cpu_flags": sorted(info.cpu.flags) if info.cpu else None,
            "seconds_budget": self.seconds_budget,
            "seconds_used": self.seconds_used,
            "full": self.full,
            "profile": self.profile.to_dict() if self.profile else None,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }
        return data


def peak_for(info: DeviceInfo, precision: str, resolver: PeakResolver | None) -> tuple[float | None, str]:
    """The peak to compare with: a CPU's datasheet peak (or estimate), or the GPU datasheet figure via `resolver`."""
    if info.device == "cpu":
        found = cpu_peak(info.cpu, precision, resolver) if info.cpu else None
        return (found[0], found[1]) if found else (None, "no CPU peak estimate for this CPU and precision")
    return datasheet_peak(info.device_name, precision, resolver)


def save_matmul_result(
    result: MatmulBenchResult, path: str | os.PathLike | None = None, *, force: bool = False
) -> Path:
    """Store a matmul run (and its device profile) in a calibration file under its device name (keeps the
    device's model entries). A disturbed run (busy machine, wide spread) is refused unless `force`."""
    if not result.results:
        raise CalibrationError("nothing to save: no precision was measured", "raise --seconds")
    refuse_disturbed(result.disturbances(), force)
    return save_device_entry(
        path, result.info.device_name, result.info.device, matmul=result.to_calibration(), profile=result.profile
    )


def refuse_disturbed(disturbed: Sequence[str], force: bool) -> None:
    """A calibration store is only as good as its run: a busy machine or a wide spread refuses it unless `force`."""
    if disturbed and not force:
        raise CalibrationError(
            f"will not save a disturbed measurement: {'; '.join(disturbed)}",
            "rerun when the machine is idle, or pass --force to save it anyway",
        )


def run_matmul_bench(
    device: str = "auto",
    precisions: Sequence[str] | None = None,
    *,
    seconds: float | None = None,
    full: bool = False,
    peak_resolver: PeakResolver | None = None,
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
    threads: int | None = None,
    profile: bool = False,
) -> MatmulBenchResult:
    """Measure matmul TFLOPS for each precision on `device` within `seconds` (the whole run).

    `precisions=None` means all the device runs in hardware; ones it cannot run are skipped with
    a note (asking only for those is an error). `threads` (CPU only): torch threads to use, default
    all the CPUs this process may run on (several ranks on one machine share them). `profile`: also measure
    the device profile (matmul ladder, copy bandwidth, elementwise rate) of each precision a model can run in.
    """
    import torch

    started = clock()
    resolved = resolve_device(device)
    info = describe_device(resolved)
    if threads is not None and resolved == "cpu":
        info = replace(info, threads=max(1, int(threads)))
    plan = SweepPlan.for_device(resolved, seconds, full)
    warnings: list[str] = []
    previous_threads = None
    if resolved == "cpu":
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(info.threads or previous_threads)
        warnings.extend(warning for warning in [load_warning(cpus=available_cpus())] if warning)
    try:
        chosen, notes = _runnable_precisions(info, precisions or MATMUL_PRECISIONS)
        results = _sweep_each(chosen, info, plan, started, timer_for(resolved), clock, peak_resolver, progress, notes)
        profiled = tuple(precision for precision in chosen if precision in PROFILE_PRECISIONS)
        measured_profile = (
            measure_profile(info, profiled, seconds=plan.seconds, clock=clock) if profile and profiled else None
        )
    finally:
        if previous_threads is not None:
            torch.set_num_threads(previous_threads)
    if progress:
        progress("", (0, 0, 0), 1.0)
    return MatmulBenchResult(
        info=info,
        results=tuple(results),
        seconds_budget=plan.seconds,
        seconds_used=clock() - started,
        full=full,
        notes=tuple(notes),
        warnings=tuple(warnings),
        profile=measured_profile,
    )


def _runnable_precisions(info: DeviceInfo, precisions: Sequence[str]) -> tuple[list[str], list[str]]:
    """The precisions the device runs in hardware and torch accepts; a note for each one skipped (and an error
    when none is left)."""
    chosen: list[str] = []
    notes: list[str] = []
    for precision in precisions:
        reason = precision_skip_reason(info, precision) or probe_precision(precision, info)
        if reason:
            notes.append(reason)
        else:
            chosen.append(precision)
    if not chosen:
        raise UsageError(
            f"none of the precisions asked for runs fast on {info.device_name}: " + "; ".join(notes),
            "pick another --precision (fp32 runs everywhere)",
        )
    return chosen, notes


def _sweep_each(
    chosen: Sequence[str],
    info: DeviceInfo,
    plan: SweepPlan,
    started: float,
    timer: Timer,
    clock: Callable[[], float],
    peak_resolver: PeakResolver | None,
    progress: ProgressCallback | None,
    notes: list[str],
) -> list[PrecisionResult]:
    """Sweep every chosen precision, each in an equal share of what is left of the run (notes appended)."""
    end_time = started + plan.seconds
    results: list[PrecisionResult] = []
    for index, precision in enumerate(chosen):
        now = clock()
        share_end = now + (end_time - now) / (len(chosen) - index)

        def on_shape(shape: Shape, precision: str = precision) -> None:
            if progress:
                progress(precision, shape, min(1.0, (clock() - started) / plan.seconds))

        timings, sweep_notes = sweep_precision(
            precision, info, plan, share_end, timer=timer, clock=clock, progress=on_shape
        )
        notes.extend(sweep_notes)
        if not timings:
            notes.append(f"{precision}: no shape finished in the time given; raise --seconds")
            continue
        peak, source = peak_for(info, precision, peak_resolver)
        results.append(PrecisionResult(precision, tuple(timings), peak, source))
    return results
