#!/usr/bin/env bash
# The one-shot GPU check of `flopcalc bench` (issue 4), for a machine with a CUDA or ROCm GPU.
# Run by hand from the repository root: `bash benchmarks/gpu_bench_check.sh [OUT_DIR]`.
# It runs the gpu-marked tests, then the full matmul bench (25 s) and a model-step bench, writing
# JSON to OUT_DIR (default: ./gpu-bench-out) so the figures can go next to the datasheet peaks.
set -euo pipefail
out="${1:-gpu-bench-out}"
mkdir -p "$out"
py="${PYTHON:-.venv/bin/python}"
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA/ROCm device'; print(torch.__version__, torch.version.cuda or torch.version.hip, torch.cuda.get_device_name())"
timeout 300 "$py" -m pytest -q -m gpu tests/test_bench_gpu.py | tee "$out/pytest_gpu.txt"
timeout 120 "$py" -m flopcalc bench --device cuda --seconds 25 --precision fp32,tf32,bf16,fp16,fp8,int8 \
    --format json --output "$out/matmul.json" --calibration "$out/calibration.yaml" --save
timeout 120 "$py" -m flopcalc bench examples/llama.py --kwargs '{"dim": 1024, "n_layers": 8, "n_heads": 16, "n_kv_heads": 8, "ffn_dim": 2816, "vocab": 32000}' --input 8x1024:int64 \
    --device cuda --seconds 15 --calibration "$out/calibration.yaml" --save --format json --output "$out/model.json"
"$py" - "$out/matmul.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
print(data["device_name"], data["torch_version"], data.get("cuda_version") or data.get("hip_version"))
for r in data["results"]:
    peak = f"{r['peak_tflops']:.1f}" if r["peak_tflops"] else "-"
    frac = f"{r['fraction_of_peak']:.1%}" if r["fraction_of_peak"] else "-"
    print(f"{r['precision']:5} median {r['median_tflops']:8.1f}  best {r['best_tflops']:8.1f}  "
          f"spread {r['spread_pct']:5.1f}%  shape {r['shape']}  peak {peak}  {frac}")
for note in data["notes"]:
    print("note:", note)
PY
