"""Start-up time of the light commands (`convert`, `gpus list`), which must not import torch.

Run by hand: `.venv/bin/python benchmarks/startup_convert.py [runs]`. Prints the median and best wall time of
each command as a fresh process, and checks torch stays out of sys.modules. Target: well under 1 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).with_name("flopcalc")
COMMANDS = [
    ["convert", "2500 gpu-days", "--gpu", "V100-SXM2", "--precision", "fp16", "--utilization", "0.3"],
    ["gpus", "list"],
]
TORCH_CHECK = (
    "import sys, flopcalc.cli, flopcalc.catalog, flopcalc.compute, flopcalc.render.compute, flopcalc.render.gpus; "
    "print('torch' in sys.modules)"
)


def time_command(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(BIN), *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    for args in COMMANDS:
        times = time_command(args, runs)
        print(
            f"flopcalc {' '.join(args)}: median {statistics.median(times):.3f} s, best {min(times):.3f} s ({runs} runs)"
        )
    imported = subprocess.run([sys.executable, "-c", TORCH_CHECK], check=True, capture_output=True, text=True)
    print(f"torch imported by the light commands' modules: {imported.stdout.strip()}")


if __name__ == "__main__":
    main()
