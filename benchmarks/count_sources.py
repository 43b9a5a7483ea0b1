"""Benchmark: a Llama-2-7B Hugging Face config.json (sequence 2048) counted on the meta device, against the
shipped examples/llama.py 7b preset; and an exported ONNX graph of the example CNN against its PyTorch count.
Run by hand: `.venv/bin/python benchmarks/count_sources.py` (needs the onnx and hf extras).

Peak RSS is read from the OS (ru_maxrss) after each step: no weights are allocated for either source.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flopcalc.api import count  # noqa: E402
from flopcalc.loaders import load_model  # noqa: E402

LLAMA_2_7B = ROOT / "examples" / "hf" / "llama-2-7b" / "config.json"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        seconds, hf = timed(lambda: count(str(LLAMA_2_7B), seq_len=2048))
        print(
            f"HF config llama-2-7b seq 2048 fwd+bwd on {hf.device}: {seconds:.2f} s, params {hf.params:,}, "
            f"forward {hf.forward:.4e}, backward {hf.backward:.4e}; peak RSS {peak_rss_mib():.0f} MiB"
        )
        seconds, example = timed(
            lambda: count(str(ROOT / "examples" / "llama.py"), kwargs={"preset": "7b"}, inputs=["1x2048:int64"])
        )
        print(f"examples/llama.py 7b: {seconds:.2f} s, forward {example.forward:.4e}, backward {example.backward:.4e}")
        for category in ("matmul", "attention", "norm"):
            print(
                f"  {category}: HF {hf.forward_by_category[category]:,} vs example "
                f"{example.forward_by_category[category]:,} (forward)"
            )

        path = Path(folder) / "cnn.onnx"
        module = load_model(str(ROOT / "examples" / "cnn.py"), device="cpu").module.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (torch.randn(8, 3, 32, 32),), str(path), dynamo=False)
        seconds, graph = timed(lambda: count(str(path)))
        pytorch = count(str(ROOT / "examples" / "cnn.py"), inputs=["8x3x32x32"], backward=False)
        print(
            f"ONNX cnn 8x3x32x32: {seconds:.3f} s, conv {graph.forward_by_category['conv']:,} "
            f"(PyTorch {pytorch.forward_by_category['conv']:,}), matmul {graph.forward_by_category['matmul']:,} "
            f"(PyTorch {pytorch.forward_by_category['matmul']:,})"
        )


if __name__ == "__main__":
    main()
