"""The matmul sweep: exact statistics, the ladder's stopping rules and deadline (with a fake clock),
and one short real CPU run checked against an independent timing."""

import time

import pytest

from flopcalc.bench.hardware import CpuInfo, DeviceInfo, catalog_peak_resolver
from flopcalc.bench.matmul import PrecisionResult, peak_for, run_matmul_bench
from flopcalc.bench.sweep import (
    ShapeTiming,
    SweepPlan,
    fp32_matmul_mode,
    llm_shapes,
    make_matmul,
    matmul_flops,
    sweep_precision,
)

CPU_INFO = DeviceInfo(
    "cpu", "test cpu", "x", threads=1, cpu=CpuInfo("test", 1, 1, 1000.0, "test", frozenset({"avx2", "fma"}))
)


def test_cpu_peak_is_the_datasheet_one_when_the_catalogue_has_the_cpu():
    xeon = CpuInfo("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", 40, 1, 3400.0, "test", frozenset({"avx512f"}))
    info = DeviceInfo("cpu", xeon.model_name, "x", threads=40, cpu=xeon)
    assert peak_for(info, "fp32", catalog_peak_resolver()) == (
        5.888e12,
        "datasheet Xeon-8380: 40 cores x 2.3 GHz (base) x 64 FLOP/cycle",
    )
    assert peak_for(CPU_INFO, "fp32", catalog_peak_resolver())[1].startswith("estimate:")


def test_matmul_flops_counts_a_multiply_add_as_two():
    assert matmul_flops(2, 3, 4) == 48
    assert matmul_flops(4096, 4096, 4096) == 2 * 4096**3


def test_shape_timing_statistics():
    timing = ShapeTiming((256, 256, 256), "square", 10, (1.0, 1.2, 0.9, 1.1, 1.0))
    assert timing.median_tflops == 1.0
    assert timing.best_tflops == 1.2
    assert timing.spread_pct == pytest.approx(30.0)


def test_headline_is_the_best_median_and_best_is_the_best_sample():
    steady = ShapeTiming((512, 512, 512), "square", 1, (2.0, 2.0, 2.0))
    noisy = ShapeTiming((256, 256, 256), "square", 1, (1.0, 3.0, 1.5))
    result = PrecisionResult("fp32", (noisy, steady), 4e12, "test")
    assert result.headline is steady
    assert result.median_tflops == 2.0 and result.best_tflops == 3.0
    assert result.fraction_of_peak == 0.5
    data = result.to_dict()
    assert data["shape"] == [512, 512, 512] and data["peak_tflops"] == 4.0 and data["spread_pct"] == 0.0


def test_llm_shapes_are_multiples_of_256_with_about_the_squares_work():
    for side in (1024, 4096, 16384):
        for m, n, k in llm_shapes(side):
            assert m % 256 == n % 256 == k % 256 == 0
            assert 0.3 < matmul_flops(m, n, k) / matmul_flops(side, side, side) < 3


class FakeMachine:
    """A clock that the timer advances by flops / rate(shape): deterministic sweeps."""

    def __init__(self, rate):
        self.now = 0.0
        self.rate = rate
        self.shapes_made = []

    def clock(self):
        return self.now

    def make(self, precision, shape, info):
        self.shapes_made.append(shape)
        fn = lambda: None  # noqa: E731
        fn.shape = shape
        return fn

    def timer(self, fn, calls):
        seconds = matmul_flops(*fn.shape) * calls / self.rate(fn.shape)
        self.now += seconds
        return seconds


def test_square_ladder_stops_when_throughput_stops_rising():
    machine = FakeMachine(lambda shape: min(shape[0], 1024) / 1024 * 1e12)  # plateau from 1024 on
    plan = SweepPlan.for_device("cpu", seconds=100)
    timings, notes = sweep_precision(
        "fp32", CPU_INFO, plan, 100.0, timer=machine.timer, clock=machine.clock, make=machine.make
    )
    squares = [t.shape[0] for t in timings if t.kind == "square"]
    assert squares == [256, 512, 768, 1024, 1536, 2048]  # two shapes without a 3% gain after 1024
    assert [t.shape for t in timings if t.kind == "llm"] == llm_shapes(1024)
    result = PrecisionResult("fp32", tuple(timings), None, "")
    assert result.median_tflops == pytest.approx(1.0)
    assert all(len(t.samples_tflops) >= 3 for t in timings)
    assert notes == []


def test_slow_device_keeps_to_the_deadline_and_skips_long_shapes():
    machine = FakeMachine(lambda shape: 1e9)  # 1 GFLOP/s: a 1024^3 matmul would take 2.1 s
    plan = SweepPlan.for_device("cpu", seconds=5)
    timings, _ = sweep_precision(
        "fp32", CPU_INFO, plan, 5.0, timer=machine.timer, clock=machine.clock, make=machine.make
    )
    assert timings, "something was measured"
    assert machine.now <= 5.0 + plan.max_call_s
    assert max(matmul_flops(*shape) for shape in machine.shapes_made) / 1e9 <= plan.max_call_s * 3


def test_a_machine_that_slows_down_mid_shape_does_not_eat_the_budget():
    """Blocks sized while the machine was fast get shorter when it slows 10x (another job started)."""
    calls_at_256 = [0]

    def rate(shape):
        if shape[0] != 256:
            return 1e12
        calls_at_256[0] += 1
        return 1e12 if calls_at_256[0] <= 3 else 1e11  # fast while sizing, then 10x slower

    machine = FakeMachine(rate)
    plan = SweepPlan.for_device("cpu", seconds=10)
    timings, _ = sweep_precision(
        "fp32", CPU_INFO, plan, 10.0, timer=machine.timer, clock=machine.clock, make=machine.make, warmup=False
    )
    assert machine.now <= 10.0 + plan.max_call_s
    assert len(timings) >= 6, [t.shape for t in timings]  # not one shape stuck in 10x longer samples
    assert timings[0].calls_per_sample < 1000


def test_plan_defaults_and_bad_seconds():
    assert SweepPlan.for_device("cpu").seconds == 10
    assert SweepPlan.for_device("cuda").seconds == 25
    assert SweepPlan.for_device("cpu", full=True).seconds > 10
    with pytest.raises(Exception, match="--seconds"):
        SweepPlan.for_device("cpu", seconds=0)


def test_fp32_mode_switches_tf32_and_restores_it():
    import torch

    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    with fp32_matmul_mode("tf32", "cuda"):
        assert matmul.fp32_precision == "tf32"
    assert matmul.fp32_precision == before
    with fp32_matmul_mode("fp32", "cuda"):
        assert matmul.fp32_precision == "ieee"
    assert matmul.fp32_precision == before


def test_make_matmul_computes_the_product():
    import torch

    fn = make_matmul("fp32", (256, 512, 128), CPU_INFO)
    out = fn()
    assert out.shape == (256, 512) and out.dtype == torch.float32 and torch.isfinite(out).all()


def _independent_fp32_tflops() -> float:
    """The best of three blocks of five 1024^3 fp32 matmuls, timed plainly."""
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.mm(a, b)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(5):
            torch.mm(a, b)
        best = max(best, 5 * matmul_flops(1024, 1024, 1024) / (time.perf_counter() - start) / 1e12)
    return best


def test_short_cpu_run_is_plausible_and_on_time():
    """A 2-second run gives positive figures within 5x of a plain timing taken just before and just after it
    (the machine's load may change: the run is compared with the timings that bracket it), and ends on time."""
    before = _independent_fp32_tflops()
    started = time.perf_counter()
    result = run_matmul_bench("cpu", ["fp32"], seconds=2)
    elapsed = time.perf_counter() - started
    after = _independent_fp32_tflops()
    (fp32,) = result.results
    assert fp32.precision == "fp32"
    assert 0 < fp32.median_tflops <= fp32.best_tflops
    low, high = min(before, after), max(before, after)
    assert low / 5 < fp32.median_tflops < high * 5, (fp32.median_tflops, before, after)
    assert elapsed < 2 + 15.0, elapsed  # the deadline holds (generous: a loaded CI machine is slow to warm up)
    if fp32.peak_flops:  # a CPU estimate: measured should not exceed it by much
        assert fp32.fraction_of_peak < 1.5, (fp32.median_tflops, fp32.peak_flops)


def test_asking_only_for_precisions_the_cpu_lacks_is_an_error():
    from flopcalc.errors import UsageError

    with pytest.raises(UsageError, match="none of the precisions"):
        run_matmul_bench("cpu", ["fp8"], seconds=1)


def test_a_disturbed_run_is_refused_unless_forced():
    from flopcalc.bench.matmul import refuse_disturbed
    from flopcalc.errors import CalibrationError

    with pytest.raises(CalibrationError, match="will not save a disturbed measurement: busy; spread 30%"):
        refuse_disturbed(["busy", "spread 30%"], force=False)
    refuse_disturbed(["busy"], force=True)
    refuse_disturbed([], force=False)
