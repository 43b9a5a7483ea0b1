"""How close `flopcalc bench MODEL`'s predicted step time lands on this CPU: the shipped examples and a few more
shapes (a wide MLP, a depthwise CNN, a small transformer encoder), each timed for real and predicted from one
device profile. Goal: median |error| <= 15% (docs/validation.md, "On this CPU").

Run by hand: `.venv/bin/python benchmarks/predict_cpu.py [--clock cpu|wall] [--seconds S] [--threads N]
[--calibration FILE]`. Without --calibration the profile is measured first, in this run, with the same threads and
clock as the models. On a machine other work shares, use `--clock cpu`: one pinned thread, the profile and the
steps timed alike in its CPU seconds, which leave out the time other jobs take (a second torch thread that the OS
deschedules makes every small op wait for it). Prints one row per model, the median and the largest |error|,
and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve()


def wide_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(1024, 1024), nn.GELU(), nn.Linear(1024, 1024), nn.GELU(), nn.Linear(1024, 10))


def depthwise_cnn(width: int = 32) -> nn.Module:
    """MobileNet-style: a stem, then depthwise 3x3 + pointwise 1x1 blocks, pooling and a linear head."""
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
    for _ in range(3):
        layers += [
            nn.Conv2d(width, width, 3, padding=1, groups=width),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
        ]
        width *= 2
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
    return nn.Sequential(*layers)


def small_transformer() -> nn.Module:
    layer = nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


# (name, model source, inputs)
CASES = (
    ("mlp (examples/mlp.py)", f"{ROOT / 'examples' / 'mlp.py'}:build", ["64x784"]),
    ("cnn (examples/cnn.py)", f"{ROOT / 'examples' / 'cnn.py'}:build", ["32x3x32x32"]),
    ("gpt tiny (examples/gpt.py)", f"{ROOT / 'examples' / 'gpt.py'}", ["8x32:int64"]),
    ("llama tiny (examples/llama.py)", f"{ROOT / 'examples' / 'llama.py'}", ["8x64:int64"]),
    ("resnet-50 (examples/resnet.py)", f"{ROOT / 'examples' / 'resnet.py'}", ["2x3x64x64"]),
    ("wide mlp 1024", f"{HERE}:wide_mlp", ["128x1024"]),
    ("depthwise cnn", f"{HERE}:depthwise_cnn", ["16x3x32x32"]),
    ("transformer encoder d128", f"{HERE}:small_transformer", ["8x64x128"]),
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="timing budget per model")
    parser.add_argument("--threads", type=int, default=None, help="pin this many CPUs (default: all)")
    parser.add_argument("--calibration", default=None, help="a calibration file with this CPU's profile")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="wall",
        help="cpu: time the profile and the steps in the one pinned thread's CPU seconds, which "
        "leave out the time other jobs take on a shared machine (implies --threads 1)",
    )
    args = parser.parse_args(argv)
    if args.clock == "cpu":
        args.threads = 1
    if args.threads:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter

    from flopcalc.bench.hardware import describe_device
    from flopcalc.bench.model import run_model_bench
    from flopcalc.bench.profile import measure_profile
    from flopcalc.calibration import Calibration, DeviceCalibration, load_calibration

    load_before = os.getloadavg()
    info = describe_device("cpu")
    if args.calibration:
        calibration = load_calibration(args.calibration)
    else:
        profile = measure_profile(info, ("fp32",), clock=clock)
        calibration = Calibration({info.device_name: DeviceCalibration("cpu", profile=profile)})
    print(
        f"{info.device_name}, {info.threads} thread(s), {args.clock} clock, torch {torch.__version__}; load average before "
        f"{load_before[0]:.2f} (1 min) on {os.cpu_count()} CPUs"
    )
    print(f"{'model':34} {'measured':>10} {'predicted':>10} {'error':>8}")
    errors = []
    for name, source, inputs in CASES:
        result = run_model_bench(
            source, inputs, device="cpu", seconds=args.seconds, calibration=calibration, clock=clock
        )
        errors.append(result.prediction_error)
        print(
            f"{name:34} {result.median_step_seconds * 1e3:8.2f}ms {result.predicted_step_seconds * 1e3:8.2f}ms "
            f"{result.prediction_error:+8.1%}"
        )
    absolute = [abs(error) for error in errors]
    print(
        f"median |error| {statistics.median(absolute):.1%}, max {max(absolute):.1%}; load average after "
        f"{os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
