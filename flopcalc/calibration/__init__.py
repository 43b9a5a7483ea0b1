"""Calibration files: what `flopcalc bench --save` measured, for `convert`/`train --calibration`.

One YAML file holds any number of devices, keyed by the device name torch reports. Per device: the
measured matmul TFLOPS per precision (the headline median of the sweep) with when and how it was
measured, the measured training-step throughput of models (`flopcalc bench MODEL --save`), and the
fleet's network figures (`flopcalc bench --distributed --save`) per fleet shape.

    version: 1
    devices:
      NVIDIA H100 80GB HBM3:
        device: cuda
        matmul:
          tflops: {bf16: 712.4, fp32: 51.2}
          best_tflops: {bf16: 731.0, fp32: 52.0}
          shapes: {bf16: [8192, 8192, 8192], fp32: [4096, 4096, 4096]}
          measured_at: '2026-11-28T13:00:00+00:00'
          torch_version: 2.13.0
          seconds: 25.0
          full: false
          threads: null
        models:
          /abs/path/model.py:build --input 8x1024:int64: {...}
        fleet:                       # `flopcalc bench --distributed --save`, one entry per fleet shape
          nccl 2x8: {backend: nccl, world_size: 16, nodes: 2, ranks_per_node: 8, busbw_gbps: {...}, ...}
        profile: {device_name: ..., precisions: {fp32: {matmul: [[m, n, k, tflops], ...], ...}}}  # docs/calibration.md

The package: `records` (the file's entries), `store` (reading, validating, writing), `throughput` (the
measured-or-datasheet policy), `network` (the fleet figures a planner reads). Loading validates everything and
raises CalibrationError (one line naming the file and the entry). Writing is atomic and keeps the other
devices' and models' entries.
"""

from ..device import KernelRates, ProfileCalibration
from .network import MeasuredBandwidths, measured_bandwidths
from .records import (
    CALIBRATION_ENV_VAR,
    DEVICE_KINDS,
    FLEET_BACKENDS,
    FLEET_OPS,
    FLEET_SCOPES,
    FORMAT_VERSION,
    Calibration,
    DeviceCalibration,
    FleetCalibration,
    MatmulCalibration,
    ModelCalibration,
    fleet_key,
)
from .store import (
    default_calibration_path,
    load_calibration,
    measured_profile,
    now_utc,
    parse_calibration,
    profile_file_of,
    resolve_calibration_path,
    save_device_entry,
)
from .throughput import (
    ThroughputChoice,
    calibrated_peak,
    calibrated_throughput,
    choose_throughput,
    default_calibrated_precision,
    model_utilization,
)

__all__ = [
    "CALIBRATION_ENV_VAR",
    "DEVICE_KINDS",
    "FLEET_BACKENDS",
    "FLEET_OPS",
    "FLEET_SCOPES",
    "FORMAT_VERSION",
    "Calibration",
    "DeviceCalibration",
    "FleetCalibration",
    "KernelRates",
    "MatmulCalibration",
    "MeasuredBandwidths",
    "ModelCalibration",
    "ProfileCalibration",
    "ThroughputChoice",
    "calibrated_peak",
    "calibrated_throughput",
    "choose_throughput",
    "default_calibrated_precision",
    "default_calibration_path",
    "fleet_key",
    "load_calibration",
    "measured_bandwidths",
    "measured_profile",
    "model_utilization",
    "now_utc",
    "parse_calibration",
    "profile_file_of",
    "resolve_calibration_path",
    "save_device_entry",
]
