"""Where a `bench MODEL` prediction misses, op by op: each op of one training step timed alone next to the kernel
time the profile predicts for it, summed per phase and op name, largest gap first.

Run by hand: `.venv/bin/python benchmarks/predict_ops_cpu.py [MODEL ...] [--calibration FILE] [--top N]`, MODEL
a name (or part of one) from benchmarks/predict_cpu.py's CASES (default: all). One pinned thread, every time in
its CPU seconds (as `predict_cpu.py --clock cpu`), so other jobs on the machine count for little. Each op is
timed under a dispatch mode (flopcalc.predict.time_ops), which leaves out what an eager step spends between
ops; the step's own time is printed next to the sum, and the difference is that per-op time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import predict_cpu  # noqa: E402 (the cases live there)

REPEATS = 7


def compare(source: str, inputs: list[str], rates, top: int) -> list[str]:
    """One case's lines: the step measured and predicted, then the `top` (phase, op) groups by largest time."""
    from flopcalc.bench import model as bench
    from flopcalc.predict import KernelModel, predict_ops, time_ops

    spec = bench.as_spec(source, inputs)
    module, example, _ = bench._load_and_count(spec, "cpu", [])
    step = bench._training_step(spec, module, example, "adamw", "fp32", "cpu", [])
    steps, _ = bench.time_steps(step, seconds=1.0, sync=lambda: None, clock=time.thread_time)
    calls = bench.trace_training_step(module, example, step.optimizer, "fp32", "cpu")
    kernels = KernelModel(rates)
    predicted = [kernels.view_s if call.view else kernels.kernel(call).seconds for call in calls]
    runs = [time_ops(step, time.thread_time) for _ in range(REPEATS)]
    if any(len(run) != len(calls) for run in runs):
        return [f"  the step ran a different number of ops each time ({len(calls)} traced): not compared"]
    measured = [statistics.median(run[i][1] for run in runs) for i in range(len(calls))]
    groups: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for call, want, got in zip(calls, predicted, measured):  # the phase comes from the trace
        entry = groups[(call.phase, call.name)]
        entry[0] += 1
        entry[1] += want
        entry[2] += got
    total = predict_ops(calls, rates).seconds
    lines = [
        f"  step {statistics.median(steps) * 1e3:.2f} ms measured, {total * 1e3:.2f} ms predicted; ops alone "
        f"{sum(measured) * 1e3:.2f} ms measured, kernels {sum(predicted) * 1e3:.2f} ms predicted ({len(calls)} ops)"
    ]
    ranked = sorted(groups.items(), key=lambda item: -max(item[1][1], item[1][2]))
    for (phase, name), (count, want, got) in ranked[:top]:
        lines.append(
            f"  {phase:9} {name:40} x{count:<4d} predicted {want * 1e6:9.0f} us  measured {got * 1e6:9.0f} us  "
            f"x{got / max(want, 1e-12):.2f}"
        )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="parts of case names (default: every case)")
    parser.add_argument("--calibration", default=None, help="a calibration file with this CPU's profile")
    parser.add_argument("--top", type=int, default=12, help="op groups shown per model")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:1])
    torch.set_num_threads(1)

    from flopcalc.bench.hardware import describe_device
    from flopcalc.bench.profile import measure_profile
    from flopcalc.calibration import load_calibration, measured_profile

    info = describe_device("cpu")
    if args.calibration:
        profile = measured_profile(load_calibration(args.calibration), info.device_name)
        if profile is None or "fp32" not in profile.precisions:
            parser.error(f"{args.calibration} has no fp32 profile of {info.device_name}: run `flopcalc bench --save`")
    else:
        profile = measure_profile(info, ("fp32",), clock=time.thread_time)
    rates = profile.precisions["fp32"]
    print(f"{info.device_name}, 1 thread, CPU-time clock, load average {os.getloadavg()[0]:.2f}")
    for name, source, inputs in predict_cpu.CASES:
        if args.models and not any(part in name for part in args.models):
            continue
        print(name)
        print("\n".join(compare(source, inputs, rates, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
