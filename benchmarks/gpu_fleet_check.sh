#!/usr/bin/env bash
# The one-shot GPU check of `flopcalc bench --distributed` (issue 11), on whatever one machine has.
# Run by hand from the repository root: `bash benchmarks/gpu_fleet_check.sh [OUT_DIR]`.
# It runs the gpu-marked fleet tests; then, with two or more GPUs, the NCCL fleet on all of them through
# `--nproc` (torch's launcher API) and through torchrun, and nccl-tests' all_reduce_perf when it is on PATH,
# so the busbw columns can be compared; with one GPU (NCCL needs two) the 2-rank gloo fleet on the CPU.
# JSON and the calibration file go to OUT_DIR (default: ./gpu-fleet-out).
set -euo pipefail
out="${1:-gpu-fleet-out}"
mkdir -p "$out"
py="${PYTHON:-.venv/bin/python}"
gpus=$("$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA/ROCm device'; print(torch.cuda.device_count())")
"$py" -c "import torch; print(torch.__version__, torch.version.cuda or torch.version.hip, torch.cuda.get_device_name(), '$gpus GPU(s)')"
timeout 900 "$py" -m pytest -q -m gpu tests/test_bench_distributed_gpu.py | tee "$out/pytest_gpu.txt"
if [ "$gpus" -ge 2 ]; then
    timeout 600 "$py" -m flopcalc bench --distributed --nproc "$gpus" --format json --output "$out/fleet.json" \
        --save --calibration "$out/calibration.yaml"
    timeout 600 "$(dirname "$py")/torchrun" --standalone --nproc-per-node "$gpus" -m flopcalc bench --distributed \
        --max-bytes 256M --format json --output "$out/fleet_torchrun.json"
    if command -v all_reduce_perf >/dev/null; then
        all_reduce_perf -b 64K -e 1G -f 4 -g "$gpus" -a 3 | tee "$out/nccl_tests_all_reduce.txt"
    fi
    summary="$out/fleet.json"
else
    echo "one GPU: an NCCL fleet needs two; running the 2-rank gloo fleet on the CPU instead"
    timeout 300 "$py" -m flopcalc bench --distributed --nproc 2 --device cpu --format json --output "$out/fleet_cpu.json"
    summary="$out/fleet_cpu.json"
fi
"$py" - "$summary" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
print(f"{data['world_size']} ranks of {data['device_name']} ({data['backend']}, torch {data['torch_version']})")
for precision, item in data["matmul"].items():
    print(f"matmul {precision}: min {item['min_tflops']:.1f} / median {item['median_tflops']:.1f} / max "
          f"{item['max_tflops']:.1f} TFLOPS, slowest rank {item['slowest_rank']}")
print(f"{'scope':6} {'op':15} {'bytes':>12} {'time us':>10} {'algbw':>9} {'busbw':>9}")
for item in data["collectives"] + data["p2p"]["results"]:
    print(f"{item['scope']:6} {item['op']:15} {item['bytes']:12d} {item['time_s'] * 1e6:10.1f} "
          f"{item['algbw_gbps']:9.2f} {item['busbw_gbps']:9.2f}")
for note in data["notes"]:
    print("note:", note)
PY
