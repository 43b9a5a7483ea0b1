"""Benchmark: count forward + backward of a Llama-2-7B-shaped model (sequence 2048) on the meta device,
against torch.utils.flop_counter.FlopCounterMode doing the same in the same process; and ResNet-50 against
fvcore. Run by hand: `.venv/bin/python benchmarks/count_llama7b.py` (figures go in the closing note).

Peak RSS is read from the OS (ru_maxrss) after each step; the meta device allocates no weights.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flopcalc.counting.counter import count  # noqa: E402
from flopcalc.loaders import load_model  # noqa: E402
from flopcalc.spec import ModelSpec  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_flopcalc(spec: str, kwargs: dict, inputs) -> tuple[float, object]:
    loaded = load_model(ModelSpec(spec, kwargs=kwargs), device="meta")
    start = time.perf_counter()
    report = count(loaded.module, inputs)
    return time.perf_counter() - start, report


def time_flop_counter_mode(spec: str, kwargs: dict, inputs) -> tuple[float, int]:
    from torch.utils.flop_counter import FlopCounterMode

    loaded = load_model(ModelSpec(spec, kwargs=kwargs), device="meta")
    start = time.perf_counter()
    with FlopCounterMode(display=False) as mode:
        out = loaded.module(*inputs)
        out.backward(torch.ones_like(out))
    return time.perf_counter() - start, mode.get_total_flops()


def main() -> None:
    llama = str(ROOT / "examples" / "llama.py")
    tokens = (torch.zeros(1, 2048, dtype=torch.long, device="meta"),)
    print(f"start: peak RSS {peak_rss_mib():.0f} MiB")
    ours_s, report = time_flopcalc(llama, {"preset": "7b"}, tokens)
    print(
        f"flopcalc  llama-7b seq 2048 fwd+bwd on meta: {ours_s:.2f} s, params {report.params:,}, "
        f"forward {report.forward:.4e}, backward {report.backward:.4e}; peak RSS {peak_rss_mib():.0f} MiB"
    )
    fcm_s, fcm_total = time_flop_counter_mode(llama, {"preset": "7b"}, tokens)
    print(f"FlopCounterMode same model: {fcm_s:.2f} s, total {fcm_total:.4e}; peak RSS {peak_rss_mib():.0f} MiB")
    print(f"ratio flopcalc / FlopCounterMode wall time: {ours_s / fcm_s:.2f}")

    n, seq = report.params, 2048
    layers, heads, head_dim = 32, 32, 128
    kaplan = (6 * n + 12 * layers * heads * head_dim * seq) * seq
    ours = report.forward_by_category["matmul"] + report.forward_by_category["attention"]
    ours += report.backward_by_category["matmul"] + report.backward_by_category["attention"]
    print(
        f"6N + 12LHQT per token x T: {kaplan:.4e}; flopcalc matmul+attention fwd+bwd: {ours:.4e} "
        f"(embedding params are in N but do no matmul: {ours / kaplan:.4f})"
    )

    resnet = str(ROOT / "examples" / "resnet.py")
    image = torch.randn(1, 3, 224, 224)
    loaded = load_model(resnet, device="cpu")
    start = time.perf_counter()
    ours_resnet = count(loaded.module, (image,))
    ours_resnet_s = time.perf_counter() - start
    from fvcore.nn import FlopCountAnalysis

    start = time.perf_counter()
    analysis = FlopCountAnalysis(loaded.module.eval(), (image,))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    fv_total = analysis.total()
    fv_s = time.perf_counter() - start
    print(
        f"resnet-50 1x3x224x224 on cpu: flopcalc fwd+bwd {ours_resnet_s:.2f} s (forward {ours_resnet.forward:.4e}); "
        f"fvcore forward only {fv_s:.2f} s (total {fv_total:.4e} multiply-adds)"
    )


if __name__ == "__main__":
    main()
