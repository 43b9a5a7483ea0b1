"""Benchmark: `flopcalc plan` counts the model once and then only does arithmetic. Times (1) counting and
measuring the activations of a Llama-2-7B-shaped model (sequence 2048) on the meta device, (2) `--search` over
every layout of 8, 64, 512 and 1,024 GPUs for it and for a 70B shape, (3) the bounded search at sizes a walk of
1..n never finished (a million and a billion GPUs, a global batch of 1e15; issue 25), and (4) the whole
`flopcalc plan --search` command. The targets: thousands of layouts in under 2 s; a million GPUs in seconds. Run by
hand:
`.venv/bin/python benchmarks/plan_search.py` (figures go in the closing note).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flopcalc.compute import Throughput  # noqa: E402
from flopcalc.plan import Bandwidth, Fleet, RunSize, model_from_params, model_from_spec, search  # noqa: E402
from flopcalc.spec import ModelSpec  # noqa: E402
from tests._shapes import LLAMA_3_70B, plan_flags  # noqa: E402

H100 = Fleet(
    Throughput(989.5e12, 0.4, "H100-SXM", "bf16"),
    80e9,
    "benchmark",
    intra_node=Bandwidth(450, "NVLink 4"),
    inter_node=Bandwidth(50, "NDR"),
)


# (4): the 70B shape's search on 1,024 GPUs as a user types it (main adds --format json)
WHOLE_COMMAND = (
    *("plan", "--params", "70e9", "--seq-len", "4096", *plan_flags(LLAMA_3_70B), "--gpu", "H100-SXM", "-n", "1024"),
    *("--search", "--global-batch", "3072", "--tokens", "2T"),
)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_search(name: str, model, gpus: int, global_batch: int) -> None:
    start = time.perf_counter()
    result = search(model, H100, gpus, global_batch=global_batch, run=RunSize(1e9))
    seconds = time.perf_counter() - start
    best = result.best.layout.label() if result.best else "none fits"
    print(
        f"{name:>10} on {gpus:>5} GPUs: {result.evaluated:>6,} layouts in {seconds:6.3f} s "
        f"({seconds / max(result.evaluated, 1) * 1e6:5.1f} us each); best: {best}"
    )


def main() -> None:
    start = time.perf_counter()
    llama = model_from_spec(
        ModelSpec(str(ROOT / "examples" / "llama.py"), inputs=("1x2048:int64",), kwargs={"preset": "7b"})
    )
    print(
        f"count + activations of examples/llama.py 7b, 1x2048 on meta: {time.perf_counter() - start:.2f} s, "
        f"peak RSS {peak_rss_mib():.0f} MiB; {llama.params / 1e9:.2f}B parameters, "
        f"{llama.activations.total.bytes_at(2) / 1e9:.2f} GB of activations per sequence in bf16"
    )
    # the whole Llama-3-70B shape: without its SwiGLU and vocabulary, plan refuses --params 70e9 as 27% off the shape
    seventy = model_from_params(70e9, 4096, **LLAMA_3_70B)
    for gpus, batch in ((8, 512), (64, 1024), (512, 2048), (1024, 3072)):
        timed_search("llama-7b", llama, gpus, batch)
    for gpus, batch in ((64, 1024), (512, 2048), (1024, 3072)):
        timed_search("70b shape", seventy, gpus, batch)
    for gpus, batch in ((10**6, 2**22 * 5**6), (10**9, 3072), (10**9, 2**30 * 5**9)):
        timed_search("70b shape", seventy, gpus, batch)
    timed_search("llama-7b", llama, 1024, 10**15)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "flopcalc", *WHOLE_COMMAND, "--format", "json"],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    print(
        f"flopcalc plan --params 70e9 ... -n 1024 --search (whole command, a fresh process): "
        f"{time.perf_counter() - start:.2f} s"
    )


if __name__ == "__main__":
    main()
