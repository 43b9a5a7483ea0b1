"""Benchmark: `flopcalc infer` of a Llama-2-7B-shaped config on the meta device (prompt 512, generate 128, batch
sizes 1, 8, 64): wall time of the build and of the analysis, peak RSS. Run by hand:
`.venv/bin/python benchmarks/infer_llama7b.py` (figures go in the closing note).
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flopcalc.infer import infer  # noqa: E402
from flopcalc.spec import ModelSpec  # noqa: E402

LLAMA_2_7B = ROOT / "examples" / "hf" / "llama-2-7b" / "config.json"


def main() -> None:
    import transformers  # noqa: F401  (imported before the clock starts: it takes seconds on its own)

    for sizes in ("1", "1,8,64"):
        start = time.perf_counter()
        result = infer(
            ModelSpec(str(LLAMA_2_7B)),
            gpu="A100-SXM4-80GB",
            precision="fp16",
            batch_sizes=sizes,
            prompt=512,
            generate=128,
        )
        seconds = time.perf_counter() - start
        print(
            f"batch sizes {sizes}: {seconds:.1f} s, time per token at batch 1 "
            f"{result.decode.time_per_token_s * 1e3:.3f} ms, "
            f"KV {int(result.kv_cache_bytes_per_token):,} B/token, "
            f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        )


if __name__ == "__main__":
    main()
