"""Matmul throughput: how many TFLOPS this device really delivers, per precision.

Method (after Bekman's MAMF finder and `triton.testing.do_bench`): a warm-up, then a ladder of
square shapes (multiples of 256, growing until throughput stops rising), then a few rectangular
LLM-like shapes sized from the best square. Each shape is timed in blocks of calls (CUDA events on
GPU, synchronize + perf_counter elsewhere), several samples per shape. Headline: the best per-shape
median; also the best single sample and the spread of the headline shape's samples.

FLOPs of an m x k @ k x n matmul = 2 * m * n * k (one multiply-add = 2 FLOPs).
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..calibration import MatmulCalibration, now_utc, save_device_entry
from ..errors import CalibrationError, UsageError, short_error
from ..units import MATMUL_PRECISIONS
from .hardware import (
    DeviceInfo,
    available_cpus,
    PeakResolver,
    cpu_peak,
    datasheet_peak,
    describe_device,
    load_warning,
    precision_skip_reason,
    resolve_device,
)

Shape = tuple[int, int, int]  # (m, n, k): an m x k matrix times a k x n matrix
ProgressCallback = Callable[[str, Shape, float], None]  # (precision, shape, fraction of the run done)
MIN_SAMPLES = 3  # samples per shape unless the whole run's deadline is reached


def matmul_flops(m: int, n: int, k: int) -> int:
    """FLOPs of one m x k @ k x n matmul: m*n dot products of length k, 2 FLOPs per multiply-add."""
    return 2 * m * n * k


@dataclass(frozen=True)
class SweepPlan:
    """How long and how wide a sweep is. `quick` is the default run, `full` the --full one."""

    seconds: float
    square_multipliers: tuple[int, ...]  # square side = 256 x multiplier
    samples_per_shape: int
    patience: int  # shapes without a >3% gain before the square ladder stops
    max_call_s: float  # a shape whose single call would take longer is not run
    warmup_s: float

    @staticmethod
    def for_device(device: str, seconds: float | None = None, full: bool = False) -> "SweepPlan":
        gpu = device != "cpu"
        default_seconds = (120.0 if gpu else 60.0) if full else (25.0 if gpu else 10.0)
        seconds = default_seconds if seconds is None else float(seconds)
        if not seconds > 0 or not math.isfinite(seconds):
            raise UsageError(f"--seconds must be a positive number, got {seconds}")
        if full:
            multipliers = tuple(range(1, 9)) + tuple(range(10, 33, 2)) + tuple(range(36, 81, 4))
        else:
            multipliers = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
        return SweepPlan(
            seconds=seconds,
            square_multipliers=multipliers,
            samples_per_shape=10 if full else 5,
            patience=3 if full else 2,
            max_call_s=2.0 if full else 1.0,
            warmup_s=min(3.0 if gpu else 1.0, 0.08 * seconds),
        )


@dataclass(frozen=True)
class ShapeTiming:
    """The samples (TFLOPS) measured at one shape."""

    shape: Shape
    kind: str  # "square" or "llm"
    calls_per_sample: int  # the fewest calls a sample of this shape had
    samples_tflops: tuple[float, ...]

    @property
    def median_tflops(self) -> float:
        return statistics.median(self.samples_tflops)

    @property
    def best_tflops(self) -> float:
        return max(self.samples_tflops)

    @property
    def spread_pct(self) -> float:
        """(max - min) / median of the samples, in percent: how repeatable this shape was."""
        return 100.0 * (max(self.samples_tflops) - min(self.samples_tflops)) / self.median_tflops

    def to_dict(self) -> dict:
        return {
            "shape": list(self.shape),
            "kind": self.kind,
            "calls_per_sample": self.calls_per_sample,
            "median_tflops": self.median_tflops,
            "best_tflops": self.best_tflops,
            "spread_pct": self.spread_pct,
            "samples_tflops": list(self.samples_tflops),
        }


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
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }
        return data


# --- running one matmul in a given precision ---------------------------------------------------


@contextlib.contextmanager
def fp32_matmul_mode(precision: str, device: str) -> Iterator[None]:
    """Set CUDA's fp32-matmul switch for the run (tf32: TensorFloat-32 on; fp32: off), then restore it.

    torch >= 2.9 has a per-backend switch (`torch.backends.cuda.matmul.fp32_precision`) and refuses
    to mix it with the legacy one, so the new switch is used where it exists.
    """
    import torch

    if device != "cuda" or precision not in ("fp32", "tf32"):
        yield
        return
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        previous = matmul.fp32_precision
        matmul.fp32_precision = "tf32" if precision == "tf32" else "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision = previous
    else:
        previous_allow, previous_mode = matmul.allow_tf32, torch.get_float32_matmul_precision()
        matmul.allow_tf32 = precision == "tf32"
        torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
        try:
            yield
        finally:
            matmul.allow_tf32 = previous_allow
            torch.set_float32_matmul_precision(previous_mode)


def make_matmul(precision: str, shape: Shape, info: DeviceInfo) -> Callable[[], object]:
    """Random operands of `shape` on the device and a function that runs one matmul on them."""
    import torch

    m, n, k = shape
    device = info.device
    generator_device = "cpu" if device == "mps" else device

    def randn(rows: int, cols: int) -> "torch.Tensor":
        return torch.randn(rows, cols, device=generator_device).to(device)

    if precision in ("fp32", "tf32", "bf16", "fp16"):
        dtype = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        a, b = randn(m, k).to(dtype), randn(k, n).to(dtype)
        out = torch.empty(m, n, dtype=dtype, device=device)
        return lambda: torch.mm(a, b, out=out)
    if precision == "fp8":
        fp8 = torch.float8_e4m3fnuz if info.is_rocm and (info.gcn_arch or "").startswith("gfx94") else torch.float8_e4m3fn
        a = randn(m, k).to(fp8)
        b = randn(n, k).to(fp8).t()  # _scaled_mm wants the second operand column-major
        scale_a = torch.tensor(1.0, device=device)
        scale_b = torch.tensor(1.0, device=device)
        return lambda: torch._scaled_mm(a, b, scale_a=scale_a, scale_b=scale_b, out_dtype=torch.bfloat16)
    if precision == "int8":
        a = torch.randint(-128, 128, (m, k), dtype=torch.int8, device=generator_device).to(device)
        b = torch.randint(-128, 128, (k, n), dtype=torch.int8, device=generator_device).to(device)
        return lambda: torch._int_mm(a, b)
    raise UsageError(f"unknown precision {precision!r}", f"use one of {', '.join(MATMUL_PRECISIONS)}")


# --- timing -----------------------------------------------------------------------------------


class WallTimer:
    """Times a block of calls with synchronize + perf_counter (CPU, MPS)."""

    def __init__(self, device: str):
        import torch

        self._sync = torch.mps.synchronize if device == "mps" else (lambda: None)

    def __call__(self, fn: Callable[[], object], calls: int) -> float:
        self._sync()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        self._sync()
        return time.perf_counter() - start


class CudaEventTimer:
    """Times a block of calls with CUDA events on the current stream (GPU time, not launch time)."""

    def __init__(self) -> None:
        import torch

        self._torch = torch

    def __call__(self, fn: Callable[[], object], calls: int) -> float:
        torch = self._torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3


Timer = Callable[[Callable[[], object], int], float]


def timer_for(device: str) -> Timer:
    return CudaEventTimer() if device == "cuda" else WallTimer(device)


# --- the sweep --------------------------------------------------------------------------------


def llm_shapes(best_square: int) -> list[Shape]:
    """Rectangular shapes like a transformer layer's, with about the work of the best square.

    tokens = 2d, hidden d: MLP up (d -> 3.5d), MLP down (3.5d -> d), fused QKV (d -> 3d);
    d is chosen so 2*(2d)*(3.5d)*d matches the square's 2*s^3, rounded to a multiple of 256.
    """
    d = max(256, int(round(best_square * (1 / 7) ** (1 / 3) / 256)) * 256)
    mlp = _round256(3.5 * d)
    return [(2 * d, mlp, d), (2 * d, d, mlp), (2 * d, 3 * d, d)]


def _round256(x: float) -> int:
    return max(256, int(round(x / 256)) * 256)


class _Deadline:
    def __init__(self, clock: Callable[[], float], end: float):
        self.clock, self.end = clock, end

    def left(self) -> float:
        return self.end - self.clock()


def sweep_precision(
    precision: str,
    info: DeviceInfo,
    plan: SweepPlan,
    end_time: float,
    *,
    timer: Timer,
    clock: Callable[[], float] = time.perf_counter,
    make: Callable[[str, Shape, DeviceInfo], Callable[[], object]] = make_matmul,
    progress: Callable[[Shape], None] | None = None,
    warmup: bool = True,
) -> tuple[list[ShapeTiming], list[str]]:
    """Time the shape ladder of one precision until `end_time` (a `clock()` value).

    The deadline is checked between samples; a shape is skipped when one call of it is predicted
    to take longer than `plan.max_call_s` or than the time left, so a slow CPU cannot overrun.
    """
    deadline = _Deadline(clock, end_time)
    start = clock()
    budget = max(end_time - start, 1e-9)
    timings: list[ShapeTiming] = []
    notes: list[str] = []
    best_rate = None  # FLOP/s, for predicting the next shape's call time
    with fp32_matmul_mode(precision, info.device):
        if warmup:
            _warm_up(precision, info, min(plan.warmup_s, 0.1 * budget), deadline, timer, make)

        def run_shape(shape: Shape, kind: str, share_end: float) -> ShapeTiming | None:
            nonlocal best_rate
            flops = matmul_flops(*shape)
            left = deadline.left()
            if best_rate and flops / best_rate > min(plan.max_call_s, left / (MIN_SAMPLES + 2)):
                return None
            fn = make(precision, shape, info)
            first = timer(fn, 1)  # untimed for the result: the first call pays for allocation and dispatch
            if first > plan.max_call_s * 3:
                return None
            shape_start = clock()
            per_call = max(timer(fn, 1), 1e-7)
            if per_call < 0.002:  # size the blocks from a ~2 ms block, not from one short call
                sizing_calls = int(0.002 / per_call) + 1
                per_call = max(timer(fn, sizing_calls) / sizing_calls, 1e-9)
            sample_target = max(0.005, min(0.5, (share_end - clock()) / (plan.samples_per_shape + 1)))
            calls = fewest_calls = max(1, min(10_000, int(sample_target / per_call)))
            hard_end = share_end + max(share_end - shape_start, 0.0)  # at most twice the share
            samples: list[float] = []
            for _ in range(plan.samples_per_shape):
                if len(samples) >= MIN_SAMPLES and clock() >= share_end:
                    break
                if samples and (deadline.left() <= 0 or clock() >= hard_end):
                    break
                seconds = timer(fn, calls)
                samples.append(flops * calls / max(seconds, 1e-12) / 1e12)
                if seconds > 2 * sample_target and calls > 1:  # the machine slowed down: shorter blocks
                    calls = max(1, int(calls * sample_target / seconds))
                    fewest_calls = min(fewest_calls, calls)
            del fn
            timing = ShapeTiming(shape, kind, fewest_calls, tuple(samples))
            best_rate = max(best_rate or 0.0, timing.median_tflops * 1e12)
            if progress:
                progress(shape)
            return timing

        # squares: about 70% of this precision's time, each shape up to a quarter of what is left of it
        square_end = start + 0.7 * budget
        best_median, stale = 0.0, 0
        best_square = 256
        for multiplier in plan.square_multipliers:
            if clock() >= square_end:
                break
            side = 256 * multiplier
            share_end = min(square_end, clock() + max((square_end - clock()) / 4, 0.02 * budget))
            try:
                timing = run_shape((side, side, side), "square", share_end)
            except _out_of_memory_errors() as error:
                notes.append(f"{precision}: stopped the square ladder at {side}: out of memory ({short_error(error)})")
                _empty_cache(info.device)
                break
            if timing is None:
                break
            timings.append(timing)
            if timing.median_tflops > best_median * 1.03:
                best_median, best_square, stale = timing.median_tflops, side, 0
            else:
                stale += 1
                best_median = max(best_median, timing.median_tflops)
                if stale >= plan.patience:
                    break
        shapes = llm_shapes(best_square)
        for index, shape in enumerate(shapes):
            left = deadline.left()
            if left <= 0:
                break
            share_end = clock() + left / (len(shapes) - index)
            try:
                timing = run_shape(shape, "llm", share_end)
            except _out_of_memory_errors() as error:
                notes.append(f"{precision}: skipped LLM-like shape {shape}: out of memory ({short_error(error)})")
                _empty_cache(info.device)
                continue
            if timing is not None:
                timings.append(timing)
    _empty_cache(info.device)
    return timings, notes


def _warm_up(precision, info, seconds, deadline, timer, make) -> None:
    """Run a mid-size matmul for `seconds` so clocks and libraries settle before timing."""
    side = 1024 if info.device == "cpu" else 4096
    fn = make(precision, (side, side, side), info)
    spent = 0.0
    while spent < seconds and deadline.left() > 0:
        spent += timer(fn, 1)


def probe_precision(precision: str, info: DeviceInfo, make=make_matmul) -> str | None:
    """Run one small matmul; the reason torch refuses it, or None. Catches what the rules miss
    (an fp8 kernel missing from this torch build, an old driver)."""
    try:
        with fp32_matmul_mode(precision, info.device):
            make(precision, (256, 256, 256), info)()
    except (RuntimeError, TypeError, AttributeError, NotImplementedError) as error:
        return f"{precision} skipped: torch refused a test matmul ({short_error(error)})"
    return None


def _out_of_memory_errors() -> tuple[type[BaseException], ...]:
    import torch

    errors: list[type[BaseException]] = [MemoryError]
    if hasattr(torch, "OutOfMemoryError"):
        errors.append(torch.OutOfMemoryError)
    return tuple(errors)


def _empty_cache(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.empty_cache()
    elif device == "mps":
        torch.mps.empty_cache()


def peak_for(info: DeviceInfo, precision: str, resolver: PeakResolver | None) -> tuple[float | None, str]:
    """The peak to compare with: a CPU's datasheet peak (or estimate), or the GPU datasheet figure via `resolver`."""
    if info.device == "cpu":
        found = cpu_peak(info.cpu, precision, resolver) if info.cpu else None
        return (found[0], found[1]) if found else (None, "no CPU peak estimate for this CPU and precision")
    return datasheet_peak(info.device_name, precision, resolver)


def save_matmul_result(result: MatmulBenchResult, path: str | os.PathLike | None = None) -> Path:
    """Store a matmul run in a calibration file under its device name (keeps the device's model entries)."""
    if not result.results:
        raise CalibrationError("nothing to save: no precision was measured", "raise --seconds")
    return save_device_entry(path, result.info.device_name, result.info.device, matmul=result.to_calibration())


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
) -> MatmulBenchResult:
    """Measure matmul TFLOPS for each precision on `device` within `seconds` (the whole run).

    `precisions=None` means all the device runs in hardware; ones it cannot run are skipped with
    a note (asking only for those is an error). `threads` (CPU only): torch threads to use, default
    all the CPUs this process may run on (several ranks on one machine share them).
    """
    import torch

    started = clock()
    resolved = resolve_device(device)
    info = describe_device(resolved)
    if threads is not None and resolved == "cpu":
        info = replace(info, threads=max(1, int(threads)))
    plan = SweepPlan.for_device(resolved, seconds, full)
    notes: list[str] = []
    warnings: list[str] = []
    if resolved == "cpu":
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(info.threads or previous_threads)
        warning = load_warning(cpus=available_cpus())
        if warning:
            warnings.append(warning)
    else:
        previous_threads = None
    try:
        chosen: list[str] = []
        for precision in precisions or MATMUL_PRECISIONS:
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
        timer = timer_for(resolved)
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
    )
