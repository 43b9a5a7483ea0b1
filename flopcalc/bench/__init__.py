"""`flopcalc bench`: measured matmul throughput, model training-step MFU, and calibration files.

- `hardware`: device choice, CPU facts and peak estimates, which precisions run in hardware.
- `matmul`: the matmul sweep (`run_matmul_bench`).
- `calibration`: calibration YAML files (save, load, validate) and `calibrated_peak`.
- `model`: timing real training steps of a user's model (`run_model_bench`).

Everything here imports torch lazily, so `import flopcalc.bench` is cheap.
"""
