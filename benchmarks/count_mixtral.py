"""Benchmark: a Mixtral-8x7B-shaped Hugging Face config.json (2,048 tokens) counted forward + backward on the
meta device through the whole road (config -> meta build -> count), with wall time and peak memory (target:
under 60 s and 2 GB), and the counted matmul FLOPs against the closed form of the routed experts.
Run by hand: `.venv/bin/python benchmarks/count_mixtral.py` (needs the hf extra; figures go in the closing note).

Peak RSS is read from the OS (ru_maxrss): on meta no weight is allocated, so it is the process itself
(torch, transformers) plus the counter's tables. On the CPU the same model would need 187 GB of float32
weights; flopcalc checks that before it would ever build there (`api.check_fits_in_memory`).
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flopcalc.api import count_spec, load  # noqa: E402
from flopcalc.spec import ModelSpec  # noqa: E402

MIXTRAL_8X7B = ROOT / "examples" / "hf" / "mixtral-8x7b" / "config.json"  # the published architecture, no weights
TOKENS = 2048


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    print(f"start: peak RSS {peak_rss_mib():.0f} MiB")
    spec = ModelSpec(str(MIXTRAL_8X7B), seq_len=TOKENS)
    start = time.perf_counter()
    load(spec, "meta")
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    report = count_spec(spec, strict=True)  # builds again: the whole road, as `flopcalc count` runs it
    total_s = time.perf_counter() - start
    print(f"meta build alone: {build_s:.2f} s")
    print(f"count (build + forward + backward on {report.device}): {total_s:.2f} s; peak RSS {peak_rss_mib():.0f} MiB")
    print(
        f"params {report.params:,} ({report.params / 1e9:.2f} B), active {report.active:,} ({report.active / 1e9:.2f} B)"
    )
    print(
        f"forward {report.forward:.6e} FLOP, backward {report.backward:.6e} FLOP, unsupported {dict(report.unsupported_ops)}"
    )

    h, f, layers, kv, vocab, experts, top_k = 4096, 14336, 32, 8 * 128, 32000, 8, 2
    per_layer = 2 * h * h + 2 * h * kv + h * experts + top_k * 3 * h * f  # q, o, k, v, router, routed experts
    closed = 2 * TOKENS * (layers * per_layer + h * vocab)
    counted = report.forward_by_category["matmul"]
    print(f"forward matmul: counted {counted:.6e}, closed form {closed:.6e}, equal: {counted == closed}")
    print(f"backward / forward matmul: {report.backward_by_category['matmul'] / counted:.4f}")
    six_nd = 6 * report.active * TOKENS
    matmul_attention = sum(
        report.forward_by_category[c] + report.backward_by_category[c] for c in ("matmul", "attention")
    )
    print(
        f"6 x active params x tokens: {six_nd:.4e}; counted matmul+attention fwd+bwd: {matmul_attention:.4e} "
        f"(ratio {matmul_attention / six_nd:.4f}: embeddings are in N but do no matmul; attention is not in 6N)"
    )


if __name__ == "__main__":
    main()
