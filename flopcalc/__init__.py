"""flopcalc: count a model's FLOPs (1 multiply-add = 2 FLOPs) and size its training compute.

The library stands on its own; the CLI (`flopcalc.cli`) only parses, calls and renders.
Heavy modules (torch) load on first use, so `import flopcalc` stays fast for conversions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what a type checker follows; at run time `__getattr__` imports each name on first use
    from .api import activations as activations
    from .api import count as count
    from .api import training as training
    from .bench.distributed import launch_fleet as launch_fleet
    from .bench.distributed import run_fleet_bench as run_fleet_bench
    from .bench.fleet import FleetConfig as FleetConfig
    from .bench.matmul import run_matmul_bench as run_matmul_bench
    from .bench.model import run_model_bench as run_model_bench
    from .budget import load_budget_file as load_budget_file
    from .budget import run_checks as run_checks
    from .calibration import choose_throughput as choose_throughput
    from .calibration import load_calibration as load_calibration
    from .calibration import measured_bandwidths as measured_bandwidths
    from .catalog import load_catalog as load_catalog
    from .compute import Throughput as Throughput
    from .compute import convert as convert
    from .compute import fleet_estimate as fleet_estimate
    from .compute import training_from_counts as training_from_counts
    from .compute import training_from_forward as training_from_forward
    from .compute import training_from_params_tokens as training_from_params_tokens
    from .compute import training_from_report as training_from_report
    from .counting.report import CountReport as CountReport
    from .counting.report import LayerCount as LayerCount
    from .device import Device as Device
    from .device import resolve_device as resolve_device
    from .errors import FlopcalcError as FlopcalcError
    from .loaders import load_model as load_model
    from .meter import MeterReading as MeterReading
    from .meter import ThroughputMeter as ThroughputMeter
    from .spec import CallArgs as CallArgs
    from .spec import ModelSpec as ModelSpec

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
