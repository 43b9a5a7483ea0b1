"""flopcalc: count a model's FLOPs (1 multiply-add = 2 FLOPs) and size its training compute.

The library stands on its own; the CLI (`flopcalc.cli`) only parses, calls and renders.
Heavy modules (torch) load on first use, so `import flopcalc` stays fast for conversions.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily)
_EXPORTS = {
    "count": "flopcalc.api",
    "training": "flopcalc.api",
    "activations": "flopcalc.api",
    "ModelSpec": "flopcalc.spec",
    "CallArgs": "flopcalc.spec",
    "CountReport": "flopcalc.counting.report",
    "LayerCount": "flopcalc.counting.report",
    "load_model": "flopcalc.loaders",
    "load_catalog": "flopcalc.catalog",
    "resolve_device": "flopcalc.device",
    "Device": "flopcalc.device",
    "convert": "flopcalc.compute",
    "fleet_estimate": "flopcalc.compute",
    "training_from_counts": "flopcalc.compute",
    "training_from_forward": "flopcalc.compute",
    "training_from_params_tokens": "flopcalc.compute",
    "training_from_report": "flopcalc.compute",
    "Throughput": "flopcalc.compute",
    "run_matmul_bench": "flopcalc.bench.matmul",
    "run_model_bench": "flopcalc.bench.model",
    "run_fleet_bench": "flopcalc.bench.distributed",
    "launch_fleet": "flopcalc.bench.distributed",
    "FleetConfig": "flopcalc.bench.fleet",
    "measured_bandwidths": "flopcalc.calibration",
    "load_calibration": "flopcalc.calibration",
    "choose_throughput": "flopcalc.calibration",
    "load_budget_file": "flopcalc.budget",
    "run_checks": "flopcalc.budget",
    "FlopcalcError": "flopcalc.errors",
    "ThroughputMeter": "flopcalc.meter",
    "MeterReading": "flopcalc.meter",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flopcalc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
