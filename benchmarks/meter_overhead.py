"""Per-step cost of the MFU meter in a training loop. Target: under 1% of a 100 ms step (1 ms).

Run by hand: `.venv/bin/python benchmarks/meter_overhead.py [calls]`. Times `meter.step()` in each of its
forms (no arguments, batch_size=, tokens=, batch= of a shape already counted), `meter.reading()` over a full
window, and a loop of 20 ms sleeps with and without the meter. Prints microseconds per call and the share of
a 100 ms step.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from torch import nn

from flopcalc import ThroughputMeter

STEP_SECONDS = 0.1


def per_call(function, calls: int) -> float:
    """Median over 5 rounds of the mean seconds per call."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        rounds.append((time.perf_counter() - start) / calls)
    return statistics.median(rounds)


def main(calls: int = 20_000) -> None:
    model = nn.Sequential(nn.Embedding(1000, 64), nn.Linear(64, 1000))
    batch = torch.zeros(8, 128, dtype=torch.long)
    meter = ThroughputMeter(model, batch, peak_flops=1e12, window=100)
    meter.start()
    forms = {
        "step()": meter.step,
        "step(batch_size=8)": lambda: meter.step(batch_size=8),
        "step(batch_size=8, tokens=1024)": lambda: meter.step(batch_size=8, tokens=1024),
        "step(batch=batch)": lambda: meter.step(batch=batch),
        "reading() of 100 steps": meter.reading,
        "reading().metrics()": lambda: meter.reading().metrics(),
    }
    print(f"torch {torch.__version__}; {calls:,} calls per form, median of 5 rounds")
    for name, function in forms.items():
        seconds = per_call(function, calls if "reading" not in name else calls // 10)
        print(f"{name:34s} {seconds * 1e6:8.2f} us  = {seconds / STEP_SECONDS:.4%} of a 100 ms step")

    sleep, steps = 0.02, 50
    start = time.perf_counter()
    for _ in range(steps):
        time.sleep(sleep)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        time.sleep(sleep)
        meter.step(batch_size=8)
    metered = time.perf_counter() - start
    print(
        f"loop of {steps} x {sleep * 1e3:.0f} ms sleeps: {plain:.4f} s plain, {metered:.4f} s with the meter "
        f"({(metered - plain) / steps * 1e6:+.1f} us per step; sleep jitter dominates)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
