"""`flopcalc bench`: measured matmul throughput, model training-step MFU, a fleet's matmul and network figures.

- `hardware`: device choice, CPU facts and peak estimates, which precisions run in hardware.
- `sweep`: one precision's matmul sweep (the shape ladder, timers, the deadline).
- `matmul`: every precision in turn and the result (`run_matmul_bench`); saving it to a calibration file.
- `model`: timing real training steps of a user's model (`run_model_bench`).
- `fleet`: the fleet benchmark's formulas (nccl-tests' busbw), options, layout and result, without torch.
- `distributed`: running it with torch.distributed on every rank (`run_fleet_bench`), or on G supervised ranks
  of this machine through torch's launcher API (`launch_fleet`).

Everything here imports torch lazily, so `import flopcalc.bench` is cheap.
"""
