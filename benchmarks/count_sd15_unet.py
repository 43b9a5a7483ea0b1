"""Benchmark: load and count forward + backward of Stable Diffusion 1.5's UNet (examples/diffusion/sd15-unet)
on the meta device, from a fresh process, against issue 23's bar (under 30 s and 2 GB), and its forward against
torch.utils.flop_counter.FlopCounterMode on the same inputs. Run by hand:
`.venv/bin/python benchmarks/count_sd15_unet.py` (figures go in the closing note).

The time includes importing torch and diffusers, as a user's `flopcalc count` pays it; peak RSS is the OS's.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

START = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flopcalc.counting.counter import count  # noqa: E402
from flopcalc.loaders import load_model, make_inputs  # noqa: E402
from flopcalc.spec import ModelSpec  # noqa: E402

SD15_UNET = ROOT / "examples" / "diffusion" / "sd15-unet" / "config.json"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_and_count(config: Path):
    """The loaded model, its inputs and flopcalc's report (forward and backward) on meta."""
    spec = ModelSpec(str(config))
    loaded = load_model(spec, device="meta")
    inputs = make_inputs(spec, loaded.example_inputs, device="meta", module=loaded.module)
    return loaded, inputs, count(loaded.module, inputs)


def flop_counter_mode_forward(loaded, inputs) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        loaded.module(**inputs)
    return counter.get_total_flops()


def main() -> None:
    loaded, inputs, report = load_and_count(SD15_UNET)
    seconds = time.perf_counter() - START
    peak = peak_rss_mib()
    print(f"SD 1.5 UNet: {report.params:,} params, forward {report.forward:,} FLOP, backward {report.backward:,}")
    print(f"  process start to counted: {seconds:.1f} s, peak RSS {peak:,.0f} MiB (bar: 30 s, 2,048 MiB)")
    print(f"  unsupported ops: {dict(report.unsupported_ops) or 'none'}")
    torch_forward = flop_counter_mode_forward(loaded, inputs)
    print(f"  FlopCounterMode forward {torch_forward:,} FLOP ({report.forward / torch_forward:.3f}x of it)")


if __name__ == "__main__":
    main()
