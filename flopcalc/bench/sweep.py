"""The matmul sweep of one precision: a ladder of square shapes (multiples of 256, growing until throughput
stops rising), then a few rectangular LLM-like shapes sized from the best square, each timed in blocks of calls
(CUDA events on GPU, synchronize + perf_counter elsewhere), several samples per shape, within a deadline.

FLOPs of an m x k @ k x n matmul = 2 * m * n * k (one multiply-add = 2 FLOPs).
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import UsageError, short_error
from ..units import MATMUL_PRECISIONS
from .hardware import DeviceInfo

Shape = tuple[int, int, int]  # (m, n, k): an m x k matrix times a k x n matrix
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
    def for_device(device: str, seconds: float | None = None, full: bool = False) -> SweepPlan:
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

    @property
    def middle_spread_pct(self) -> float:
        """The interquartile range / median of the samples, in percent: one disturbed sample does not count.
        With fewer than four samples, the whole spread."""
        if len(self.samples_tflops) < 4:
            return self.spread_pct
        first, _, third = statistics.quantiles(self.samples_tflops, n=4)
        return 100.0 * (third - first) / self.median_tflops

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

    def randn(rows: int, cols: int) -> torch.Tensor:
        return torch.randn(rows, cols, device=generator_device).to(device)

    if precision in ("fp32", "tf32", "bf16", "fp16"):
        dtype = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        a, b = randn(m, k).to(dtype), randn(k, n).to(dtype)
        out = torch.empty(m, n, dtype=dtype, device=device)
        return lambda: torch.mm(a, b, out=out)
    if precision == "fp8":
        fp8 = (
            torch.float8_e4m3fnuz if info.is_rocm and (info.gcn_arch or "").startswith("gfx94") else torch.float8_e4m3fn
        )
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
    """Times a block of calls with synchronize + `clock` (CPU, MPS): perf_counter, or a thread's CPU time
    (`time.thread_time`) to leave out the time other work on a shared machine takes."""

    def __init__(self, device: str, clock: Callable[[], float] = time.perf_counter):
        import torch

        self._sync = torch.mps.synchronize if device == "mps" else (lambda: None)
        self._clock = clock

    def __call__(self, fn: Callable[[], object], calls: int) -> float:
        self._sync()
        start = self._clock()
        for _ in range(calls):
            fn()
        self._sync()
        return self._clock() - start


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


def timer_for(device: str, clock: Callable[[], float] = time.perf_counter) -> Timer:
    """CUDA events on a GPU; elsewhere blocks of calls timed by `clock`."""
    return CudaEventTimer() if device == "cuda" else WallTimer(device, clock)


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
    runner = _ShapeRunner(precision, info, plan, deadline, timer, clock, make, progress)
    with fp32_matmul_mode(precision, info.device):
        if warmup:  # a mid-size shape's rate: a better guess of the next shapes' call times than the first,
            # smallest square's alone (on a busy machine that one is slowed most by thread hand-offs)
            runner.best_rate = _warm_up(precision, info, min(plan.warmup_s, 0.1 * budget), deadline, timer, make)
        # squares: about 70% of this precision's time, each shape up to a quarter of what is left of it
        timings, notes, best_square = _square_ladder(runner, start + 0.7 * budget, budget)
        llm_timings, llm_notes = _llm_pass(runner, best_square)
    _empty_cache(info.device)
    return timings + llm_timings, notes + llm_notes


class _ShapeRunner:
    """Times one shape after another of one precision; remembers the best rate seen, to predict how long the
    next shape's call would take (and skip it when too long)."""

    def __init__(
        self,
        precision: str,
        info: DeviceInfo,
        plan: SweepPlan,
        deadline: _Deadline,
        timer: Timer,
        clock: Callable[[], float],
        make: Callable[[str, Shape, DeviceInfo], Callable[[], object]],
        progress: Callable[[Shape], None] | None,
    ):
        self.precision, self.info, self.plan, self.deadline = precision, info, plan, deadline
        self.timer, self.clock, self.make, self.progress = timer, clock, make, progress
        self.best_rate: float | None = None  # FLOP/s

    def run(self, shape: Shape, kind: str, share_end: float) -> ShapeTiming | None:
        """Samples of `shape` until its share of the time ends (at least MIN_SAMPLES within the deadline);
        None when one call of it would take too long."""
        plan, timer, clock = self.plan, self.timer, self.clock
        flops = matmul_flops(*shape)
        if self.best_rate and flops / self.best_rate > min(plan.max_call_s, self.deadline.left() / (MIN_SAMPLES + 2)):
            return None
        fn = self.make(self.precision, shape, self.info)
        first = timer(fn, 1)  # untimed for the result: the first call pays for allocation and dispatch
        if first > plan.max_call_s * 3:
            return None
        shape_start = clock()
        per_call = max(timer(fn, 1), 1e-7)
        if per_call < 0.002:  # size the blocks from a ~2 ms block, not from one short call
            sizing_calls = int(0.002 / per_call) + 1
            per_call = max(timer(fn, sizing_calls) / sizing_calls, 1e-9)
        sample_target = max(0.005, min(0.5, (share_end - clock()) / (plan.samples_per_shape + 1)))
        calls = max(1, min(10_000, int(sample_target / per_call)))
        hard_end = share_end + max(share_end - shape_start, 0.0)  # at most twice the share
        samples, fewest_calls = self._samples(fn, flops, calls, sample_target, share_end, hard_end)
        del fn
        timing = ShapeTiming(shape, kind, fewest_calls, tuple(samples))
        self.best_rate = max(self.best_rate or 0.0, timing.median_tflops * 1e12)
        if self.progress:
            self.progress(shape)
        return timing

    def _samples(
        self, fn: Callable[[], object], flops: int, calls: int, sample_target: float, share_end: float, hard_end: float
    ) -> tuple[list[float], int]:
        """TFLOPS of each block of `calls` calls; blocks shrink when the machine slows down."""
        clock = self.clock
        samples: list[float] = []
        fewest_calls = calls
        for _ in range(self.plan.samples_per_shape):
            if len(samples) >= MIN_SAMPLES and clock() >= share_end:
                break
            if samples and (self.deadline.left() <= 0 or clock() >= hard_end):
                break
            seconds = self.timer(fn, calls)
            samples.append(flops * calls / max(seconds, 1e-12) / 1e12)
            if seconds > 2 * sample_target and calls > 1:  # the machine slowed down: shorter blocks
                calls = max(1, int(calls * sample_target / seconds))
                fewest_calls = min(fewest_calls, calls)
        return samples, fewest_calls


def _square_ladder(runner: _ShapeRunner, square_end: float, budget: float) -> tuple[list[ShapeTiming], list[str], int]:
    """Growing squares until `square_end`, a shape too slow, or `plan.patience` shapes without a >3% gain;
    the timings, notes and the best square's side."""
    clock, plan = runner.clock, runner.plan
    timings: list[ShapeTiming] = []
    notes: list[str] = []
    best_median, stale, best_square = 0.0, 0, 256
    for multiplier in plan.square_multipliers:
        if clock() >= square_end:
            break
        side = 256 * multiplier
        share_end = min(square_end, clock() + max((square_end - clock()) / 4, 0.02 * budget))
        try:
            timing = runner.run((side, side, side), "square", share_end)
        except _out_of_memory_errors() as error:
            notes.append(
                f"{runner.precision}: stopped the square ladder at {side}: out of memory ({short_error(error)})"
            )
            _empty_cache(runner.info.device)
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
    return timings, notes, best_square


def _llm_pass(runner: _ShapeRunner, best_square: int) -> tuple[list[ShapeTiming], list[str]]:
    """The LLM-like shapes of the best square's size, sharing what is left of the time equally."""
    timings: list[ShapeTiming] = []
    notes: list[str] = []
    shapes = llm_shapes(best_square)
    for index, shape in enumerate(shapes):
        left = runner.deadline.left()
        if left <= 0:
            break
        share_end = runner.clock() + left / (len(shapes) - index)
        try:
            timing = runner.run(shape, "llm", share_end)
        except _out_of_memory_errors() as error:
            notes.append(f"{runner.precision}: skipped LLM-like shape {shape}: out of memory ({short_error(error)})")
            _empty_cache(runner.info.device)
            continue
        if timing is not None:
            timings.append(timing)
    return timings, notes


def _warm_up(precision, info, seconds, deadline, timer, make) -> float | None:
    """Run a mid-size matmul for `seconds` so clocks and libraries settle before timing; its rate (FLOP/s of
    the calls after the first), or None when there was no second call."""
    side = 1024 if info.device == "cpu" else 4096
    fn = make(precision, (side, side, side), info)
    spent = timer(fn, 1) if deadline.left() > 0 else seconds  # the first call pays for allocation and dispatch
    calls, settled = 0, 0.0
    while spent < seconds and deadline.left() > 0:
        took = timer(fn, 1)
        spent, settled, calls = spent + took, settled + took, calls + 1
    return matmul_flops(side, side, side) * calls / settled if calls and settled > 0 else None


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
