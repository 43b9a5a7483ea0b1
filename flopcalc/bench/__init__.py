"""`flopcalc bench`: measured matmul throughput, model training-step MFU, a fleet's matmul and network figures.

- `hardware`: device choice, CPU facts and peak estimates, which precisions run in hardware.
- `matmul`: the matmul sweep (`run_matmul_bench`).
- `calibration`: calibration YAML files (save, load, validate) and `calibrated_peak`.
- `model`: timing real training steps of a user's model (`run_model_bench`).
- `fleet`: the fleet benchmark's formulas (nccl-tests' busbw), options, layout and result, without torch.
- `distributed`: running it with torch.distributed on every rank (`run_fleet_bench`), or on G ranks of this
  machine through torch's launcher API (`launch_fleet`).

Everything here imports torch lazily, so `import flopcalc.bench` is cheap.
"""
