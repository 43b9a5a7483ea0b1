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

Loading validates everything and raises CalibrationError (one line naming the file and the entry).
Writing is atomic and keeps the other devices' and models' entries.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .catalog import Catalog, load_catalog
from .compute import DEFAULT_UTILIZATION, Throughput
from .errors import CalibrationError, FlopcalcError, UsageError
from .files import parse_yaml, write_atomic
from .units import MATMUL_PRECISIONS, normalize_precision

FORMAT_VERSION = 1
CALIBRATION_ENV_VAR = "FLOPCALC_CALIBRATION"
DEVICE_KINDS = ("cpu", "cuda", "mps")

_MATMUL_KEYS = {"tflops", "best_tflops", "shapes", "measured_at", "torch_version", "seconds", "full", "threads"}
_MODEL_KEYS = {
    "model",
    "inputs",
    "batch_size",
    "kwargs",
    "precision",
    "optimizer",
    "flops_per_step",
    "step_seconds",
    "achieved_tflops",
    "peak_tflops",
    "mfu",
    "measured_at",
    "torch_version",
    "steps",
}
_FLEET_KEYS = {
    "backend",
    "world_size",
    "nodes",
    "ranks_per_node",
    "busbw_gbps",
    "message_bytes",
    "p2p_gbps",
    "p2p_bytes",
    "tflops",
    "slowest_tflops",
    "measured_at",
    "torch_version",
}
FLEET_BACKENDS = ("nccl", "gloo")
# Where a collective ran: every rank; the ranks of one node (a group per node); one rank per node.
FLEET_SCOPES = ("world", "intra", "inter")
FLEET_OPS = ("all_reduce", "all_gather", "reduce_scatter")


@dataclass(frozen=True)
class MatmulCalibration:
    """Measured matmul throughput of one device, in TFLOPS per precision."""

    tflops: Mapping[str, float]
    measured_at: str
    torch_version: str
    seconds: float
    best_tflops: Mapping[str, float] = field(default_factory=dict)
    shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    full: bool = False
    threads: int | None = None

    def to_dict(self) -> dict:
        return {
            "tflops": dict(self.tflops),
            "best_tflops": dict(self.best_tflops),
            "shapes": {precision: list(shape) for precision, shape in self.shapes.items()},
            "measured_at": self.measured_at,
            "torch_version": self.torch_version,
            "seconds": self.seconds,
            "full": self.full,
            "threads": self.threads,
        }


@dataclass(frozen=True)
class ModelCalibration:
    """Measured training-step throughput of one model on one device."""

    model: str
    inputs: tuple[str, ...]
    batch_size: int | None
    kwargs: Mapping[str, Any]
    precision: str
    optimizer: str
    flops_per_step: float
    step_seconds: float
    achieved_tflops: float
    measured_at: str
    torch_version: str
    steps: int
    peak_tflops: float | None = None
    mfu: float | None = None  # achieved / datasheet (or estimated) peak

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "inputs": list(self.inputs),
            "batch_size": self.batch_size,
            "kwargs": dict(self.kwargs),
            "precision": self.precision,
            "optimizer": self.optimizer,
            "flops_per_step": self.flops_per_step,
            "step_seconds": self.step_seconds,
            "achieved_tflops": self.achieved_tflops,
            "peak_tflops": self.peak_tflops,
            "mfu": self.mfu,
            "measured_at": self.measured_at,
            "torch_version": self.torch_version,
            "steps": self.steps,
        }


@dataclass(frozen=True)
class FleetCalibration:
    """What `bench --distributed` measured on a fleet of one GPU model: bus bandwidth (GB/s, 1e9 bytes/s, as
    nccl-tests prints it) of each collective at the largest message, per scope; ring send/recv; matmul TFLOPS."""

    backend: str  # nccl | gloo
    world_size: int
    nodes: int
    ranks_per_node: int
    busbw_gbps: Mapping[str, Mapping[str, float]]  # scope -> op -> busbw at the largest message measured
    message_bytes: Mapping[str, Mapping[str, int]]  # scope -> op -> that message's size
    measured_at: str
    torch_version: str
    p2p_gbps: float | None = None
    p2p_bytes: int | None = None
    tflops: Mapping[str, float] = field(default_factory=dict)  # median over ranks of each rank's median
    slowest_tflops: Mapping[str, float] = field(default_factory=dict)  # the slowest rank's median

    @property
    def key(self) -> str:
        """The fleet's shape, e.g. `nccl 2x8`: a later run of the same shape replaces the entry."""
        return fleet_key(self.backend, self.nodes, self.ranks_per_node)

    def to_dict(self) -> dict:
        return {
            "backend": self.backend,
            "world_size": self.world_size,
            "nodes": self.nodes,
            "ranks_per_node": self.ranks_per_node,
            "busbw_gbps": {scope: dict(ops) for scope, ops in self.busbw_gbps.items()},
            "message_bytes": {scope: dict(ops) for scope, ops in self.message_bytes.items()},
            "p2p_gbps": self.p2p_gbps,
            "p2p_bytes": self.p2p_bytes,
            "tflops": dict(self.tflops),
            "slowest_tflops": dict(self.slowest_tflops),
            "measured_at": self.measured_at,
            "torch_version": self.torch_version,
        }


def fleet_key(backend: str, nodes: int, ranks_per_node: int) -> str:
    return f"{backend} {nodes}x{ranks_per_node}"


@dataclass(frozen=True)
class DeviceCalibration:
    device: str  # cpu | cuda | mps
    matmul: MatmulCalibration | None = None
    models: Mapping[str, ModelCalibration] = field(default_factory=dict)
    fleet: Mapping[str, FleetCalibration] = field(default_factory=dict)

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"device": self.device}
        if self.matmul is not None:
            data["matmul"] = self.matmul.to_dict()
        if self.models:
            data["models"] = {key: model.to_dict() for key, model in self.models.items()}
        if self.fleet:
            data["fleet"] = {key: entry.to_dict() for key, entry in self.fleet.items()}
        return data


@dataclass(frozen=True)
class Calibration:
    """A whole calibration file: devices by name."""

    devices: Mapping[str, DeviceCalibration]
    path: Path | None = None

    def to_yaml(self) -> str:
        import yaml

        data = {"version": FORMAT_VERSION, "devices": {name: dev.to_dict() for name, dev in self.devices.items()}}
        header = "# flopcalc calibration: measured throughput per device (written by `flopcalc bench --save`)\n"
        return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None)

    def device(self, device_name: str | None) -> tuple[str, DeviceCalibration]:
        """The entry for `device_name` (exact, then case/space-insensitive); None picks the only one."""
        where = f" in {self.path}" if self.path else ""
        if not self.devices:
            raise CalibrationError(f"the calibration{where} holds no devices", "run `flopcalc bench --save`")
        if device_name is None:
            if len(self.devices) == 1:
                return next(iter(self.devices.items()))
            raise CalibrationError(
                f"the calibration{where} holds {len(self.devices)} devices ({', '.join(self.devices)})",
                "name one with --gpu",
            )
        if device_name in self.devices:
            return device_name, self.devices[device_name]
        wanted = _loose(device_name)
        for name, entry in self.devices.items():
            if _loose(name) == wanted:
                return name, entry
        raise CalibrationError(
            f"the calibration{where} has no device {device_name!r} (it has: {', '.join(self.devices)})",
            "run `flopcalc bench --save` on that device, or drop --gpu",
        )


def _loose(name: str) -> str:
    return "".join(name.lower().split()).replace("-", "").replace("_", "")


# --- paths ------------------------------------------------------------------------------------


def default_calibration_path() -> Path:
    """$FLOPCALC_CALIBRATION, else calibration.yaml in the platform's user config folder."""
    override = os.environ.get(CALIBRATION_ENV_VAR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_config_path("flopcalc") / "calibration.yaml"


def resolve_calibration_path(value: str | os.PathLike | None) -> Path:
    """`--calibration FILE|auto`: `auto` (or nothing) is the default path."""
    if value is None or str(value).strip().lower() in ("", "auto"):
        return default_calibration_path()
    return Path(value).expanduser()


# --- loading and validating --------------------------------------------------------------------


def load_calibration(path: str | os.PathLike | None = None) -> Calibration:
    """Read and validate a calibration file (`None`/"auto": the default path)."""
    target = resolve_calibration_path(path)
    if not target.is_file():
        raise CalibrationError(f"no calibration file at {target}", "run `flopcalc bench --save` first, or pass --calibration FILE")
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CalibrationError(f"cannot read calibration {target}: {error}") from None
    return parse_calibration(text, target)


def parse_calibration(text: str, path: Path | None = None) -> Calibration:
    """Validate calibration YAML text; every problem is a CalibrationError naming file and entry."""
    where = str(path) if path else "calibration"
    data = parse_yaml(text, CalibrationError, where, hint="fix it, or delete it and rerun `flopcalc bench --save`")
    if not isinstance(data, dict):
        raise CalibrationError(f"{where}: expected a mapping with 'version' and 'devices'")
    _no_unknown_keys(data, {"version", "devices"}, where)
    if data.get("version") != FORMAT_VERSION:
        raise CalibrationError(f"{where}: version must be {FORMAT_VERSION}, got {data.get('version')!r}")
    devices_data = data.get("devices")
    if not isinstance(devices_data, dict):
        raise CalibrationError(f"{where}: 'devices' must be a mapping of device name to entry")
    devices: dict[str, DeviceCalibration] = {}
    for name, entry in devices_data.items():
        devices[str(name)] = _parse_device(entry, f"{where}: device {name!r}")
    return Calibration(devices, path)


def _parse_device(entry: Any, where: str) -> DeviceCalibration:
    if not isinstance(entry, dict):
        raise CalibrationError(f"{where}: expected a mapping")
    _no_unknown_keys(entry, {"device", "matmul", "models", "fleet"}, where)
    kind = entry.get("device")
    if kind not in DEVICE_KINDS:
        raise CalibrationError(f"{where}: 'device' must be one of {', '.join(DEVICE_KINDS)}, got {kind!r}")
    matmul = _parse_matmul(entry["matmul"], f"{where} matmul") if entry.get("matmul") is not None else None
    models_data = entry.get("models") or {}
    if not isinstance(models_data, dict):
        raise CalibrationError(f"{where}: 'models' must be a mapping")
    models = {str(key): _parse_model(value, f"{where} model {key!r}") for key, value in models_data.items()}
    fleet_data = entry.get("fleet") or {}
    if not isinstance(fleet_data, dict):
        raise CalibrationError(f"{where}: 'fleet' must be a mapping of fleet shape to entry")
    fleet = {}
    for key, value in fleet_data.items():
        parsed = _parse_fleet(value, f"{where} fleet {key!r}")
        if parsed.key != str(key):
            raise CalibrationError(f"{where}: fleet entry {key!r} holds a {parsed.key!r} fleet", f"name it {parsed.key!r}")
        fleet[parsed.key] = parsed
    if matmul is None and not models and not fleet:
        raise CalibrationError(f"{where}: holds none of 'matmul', 'models' or 'fleet'")
    return DeviceCalibration(kind, matmul, models, fleet)


def _parse_matmul(entry: Any, where: str) -> MatmulCalibration:
    if not isinstance(entry, dict):
        raise CalibrationError(f"{where}: expected a mapping")
    _no_unknown_keys(entry, _MATMUL_KEYS, where)
    tflops = _precision_map(entry.get("tflops"), f"{where} tflops", required=True)
    best = _precision_map(entry.get("best_tflops") or {}, f"{where} best_tflops", required=False)
    shapes_data = entry.get("shapes") or {}
    if not isinstance(shapes_data, dict):
        raise CalibrationError(f"{where}: 'shapes' must map precision to [m, n, k]")
    shapes = {}
    for precision, shape in shapes_data.items():
        if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(x, int) and x > 0 for x in shape)):
            raise CalibrationError(f"{where}: shape of {precision} must be [m, n, k] of positive integers")
        shapes[str(precision)] = tuple(shape)
    threads = entry.get("threads")
    if threads is not None and not (isinstance(threads, int) and threads > 0):
        raise CalibrationError(f"{where}: 'threads' must be a positive integer or null")
    return MatmulCalibration(
        tflops=tflops,
        best_tflops=best,
        shapes=shapes,
        measured_at=_text(entry, "measured_at", where),
        torch_version=_text(entry, "torch_version", where),
        seconds=_positive(entry.get("seconds"), f"{where} seconds"),
        full=bool(entry.get("full", False)),
        threads=threads,
    )


def _parse_model(entry: Any, where: str) -> ModelCalibration:
    if not isinstance(entry, dict):
        raise CalibrationError(f"{where}: expected a mapping")
    _no_unknown_keys(entry, _MODEL_KEYS, where)
    precision = entry.get("precision")
    if precision not in MATMUL_PRECISIONS:
        raise CalibrationError(f"{where}: 'precision' must be one of {', '.join(MATMUL_PRECISIONS)}, got {precision!r}")
    inputs = entry.get("inputs") or []
    if not isinstance(inputs, list) or not all(isinstance(item, str) for item in inputs):
        raise CalibrationError(f"{where}: 'inputs' must be a list of input specs")
    batch_size = entry.get("batch_size")
    if batch_size is not None and not (isinstance(batch_size, int) and batch_size > 0):
        raise CalibrationError(f"{where}: 'batch_size' must be a positive integer or null")
    kwargs = entry.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise CalibrationError(f"{where}: 'kwargs' must be a mapping")
    steps = entry.get("steps")
    if not (isinstance(steps, int) and steps > 0):
        raise CalibrationError(f"{where}: 'steps' must be a positive integer")
    peak = entry.get("peak_tflops")
    mfu = entry.get("mfu")
    return ModelCalibration(
        model=_text(entry, "model", where),
        inputs=tuple(inputs),
        batch_size=batch_size,
        kwargs=kwargs,
        precision=precision,
        optimizer=_text(entry, "optimizer", where),
        flops_per_step=_positive(entry.get("flops_per_step"), f"{where} flops_per_step"),
        step_seconds=_positive(entry.get("step_seconds"), f"{where} step_seconds"),
        achieved_tflops=_positive(entry.get("achieved_tflops"), f"{where} achieved_tflops"),
        measured_at=_text(entry, "measured_at", where),
        torch_version=_text(entry, "torch_version", where),
        steps=steps,
        peak_tflops=None if peak is None else _positive(peak, f"{where} peak_tflops"),
        mfu=None if mfu is None else _positive(mfu, f"{where} mfu"),
    )


def _parse_fleet(entry: Any, where: str) -> FleetCalibration:
    if not isinstance(entry, dict):
        raise CalibrationError(f"{where}: expected a mapping")
    _no_unknown_keys(entry, _FLEET_KEYS, where)
    backend = entry.get("backend")
    if backend not in FLEET_BACKENDS:
        raise CalibrationError(f"{where}: 'backend' must be one of {', '.join(FLEET_BACKENDS)}, got {backend!r}")
    world_size, nodes, per_node = (_count(entry.get(key), f"{where} {key}")
                                   for key in ("world_size", "nodes", "ranks_per_node"))
    if world_size < 2 or world_size != nodes * per_node:
        raise CalibrationError(
            f"{where}: world_size {world_size} must be nodes x ranks_per_node ({nodes} x {per_node}), at least 2")
    busbw = _scoped(entry.get("busbw_gbps"), f"{where} busbw_gbps", _positive)
    sizes = _scoped(entry.get("message_bytes"), f"{where} message_bytes", _count)
    if {scope: set(ops) for scope, ops in busbw.items()} != {scope: set(ops) for scope, ops in sizes.items()}:
        raise CalibrationError(f"{where}: 'message_bytes' must name the same scopes and collectives as 'busbw_gbps'")
    p2p, p2p_bytes = entry.get("p2p_gbps"), entry.get("p2p_bytes")
    if (p2p is None) != (p2p_bytes is None):
        raise CalibrationError(f"{where}: 'p2p_gbps' and 'p2p_bytes' go together")
    return FleetCalibration(
        backend=backend,
        world_size=world_size,
        nodes=nodes,
        ranks_per_node=per_node,
        busbw_gbps=busbw,
        message_bytes=sizes,
        p2p_gbps=None if p2p is None else _positive(p2p, f"{where} p2p_gbps"),
        p2p_bytes=None if p2p_bytes is None else _count(p2p_bytes, f"{where} p2p_bytes"),
        tflops=_precision_map(entry.get("tflops") or {}, f"{where} tflops", required=False),
        slowest_tflops=_precision_map(entry.get("slowest_tflops") or {}, f"{where} slowest_tflops", required=False),
        measured_at=_text(entry, "measured_at", where),
        torch_version=_text(entry, "torch_version", where),
    )


def _scoped(value: Any, where: str, check) -> dict[str, dict[str, Any]]:
    """`{scope: {collective: number}}` with known scopes and collectives, each number passing `check`."""
    if not isinstance(value, dict) or not value:
        raise CalibrationError(f"{where}: expected a mapping of scope ({', '.join(FLEET_SCOPES)}) to collectives")
    result: dict[str, dict[str, Any]] = {}
    for scope, ops in value.items():
        if scope not in FLEET_SCOPES:
            raise CalibrationError(f"{where}: unknown scope {scope!r}", f"use {', '.join(FLEET_SCOPES)}")
        if not isinstance(ops, dict) or not ops:
            raise CalibrationError(f"{where} {scope}: expected a mapping of collective to number")
        for op, number in ops.items():
            if op not in FLEET_OPS:
                raise CalibrationError(f"{where} {scope}: unknown collective {op!r}", f"use {', '.join(FLEET_OPS)}")
        result[scope] = {op: check(number, f"{where} {scope} {op}") for op, number in ops.items()}
    return result


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CalibrationError(f"{where}: must be a positive integer, got {value!r}")
    return value


def _no_unknown_keys(entry: Mapping, allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in entry if key not in allowed)
    if unknown:
        raise CalibrationError(f"{where}: unknown key(s) {', '.join(unknown)}", f"allowed: {', '.join(sorted(allowed))}")


def _precision_map(value: Any, where: str, *, required: bool) -> dict[str, float]:
    if not isinstance(value, dict) or (required and not value):
        raise CalibrationError(f"{where}: expected a mapping of precision to TFLOPS")
    result = {}
    for precision, number in value.items():
        if precision not in MATMUL_PRECISIONS:
            raise CalibrationError(f"{where}: unknown precision {precision!r}", f"use {', '.join(MATMUL_PRECISIONS)}")
        result[precision] = _positive(number, f"{where} {precision}")
    return result


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise CalibrationError(f"{where}: must be a positive number, got {value!r}")
    return float(value)


def _text(entry: Mapping, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CalibrationError(f"{where}: '{key}' must be a non-empty string")
    return value


# --- using a calibration --------------------------------------------------------------------------


def calibrated_peak(calibration: Calibration, device_name: str | None, precision: str) -> tuple[float, str]:
    """Measured matmul throughput (FLOP/s) of `precision` on a device, and a label saying so.

    `convert`/`train --calibration` use it in place of the datasheet peak; `--utilization` then
    means "of measured". `device_name=None` picks the file's only device.
    """
    name, entry = calibration.device(device_name)
    where = f" in {calibration.path}" if calibration.path else ""
    if entry.matmul is None:
        raise CalibrationError(f"no matmul measurement for {name}{where}", "run `flopcalc bench --save` on it")
    tflops = entry.matmul.tflops.get(precision)
    if tflops is None:
        measured = ", ".join(entry.matmul.tflops)
        raise CalibrationError(
            f"no {precision} measurement for {name}{where} (measured: {measured})",
            f"use --precision with one of {measured}, or rerun `flopcalc bench --precision {precision} --save`",
        )
    label = f"measured {tflops:.4g} TFLOPS {precision} on {name} (flopcalc bench, {entry.matmul.measured_at[:10]})"
    return tflops * 1e12, label


def model_utilization(
    calibration: Calibration, device_name: str | None, key: str, precision: str | None = None
) -> tuple[float, str] | None:
    """Utilisation of a benchmarked model as a fraction of the measured matmul throughput.

    measured matmul TFLOPS x this utilisation = the model's measured training throughput, which is
    what `train MODEL --calibration` should use. None when the model was not benchmarked on it.
    """
    name, entry = calibration.device(device_name)
    model = entry.models.get(key)
    if model is None:
        return None
    if precision is not None and precision != model.precision:
        raise CalibrationError(
            f"{key} was benchmarked on {name} in {model.precision}, not {precision}",
            f"use --precision {model.precision}, or rerun `flopcalc bench MODEL --precision {precision} --save`",
        )
    measured, _ = calibrated_peak(calibration, name, model.precision)
    utilization = model.achieved_tflops * 1e12 / measured
    label = (
        f"{utilization:.1%} of measured matmul throughput: {model.achieved_tflops:.4g} TFLOPS achieved by "
        f"training steps of this model on {name} (flopcalc bench MODEL, {model.measured_at[:10]})"
    )
    return utilization, label


# --- saving -------------------------------------------------------------------------------------


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _existing(target: Path) -> Calibration:
    if not target.exists():
        return Calibration({}, target)
    try:
        return load_calibration(target)
    except CalibrationError as error:
        raise CalibrationError(
            f"will not overwrite {target}: {error.message}", "fix or delete it, or pass another --calibration FILE"
        ) from None


def _write(calibration: Calibration, target: Path) -> Path:
    if target == default_calibration_path():
        target.parent.mkdir(parents=True, exist_ok=True)
    elif not target.parent.is_dir():
        raise UsageError(f"cannot write calibration {target}: folder {target.parent} does not exist")
    write_atomic(target, calibration.to_yaml())
    return target


def save_device_entry(
    path: str | os.PathLike | None,
    device_name: str,
    device: str,
    *,
    matmul: MatmulCalibration | None = None,
    models: Mapping[str, ModelCalibration] | None = None,
    fleet: Mapping[str, FleetCalibration] | None = None,
) -> Path:
    """Merge a matmul measurement, model measurements and/or fleet measurements for one device into the file,
    atomically. Other devices, and the parts of this device not given, are kept; an entry with the same key
    (model key, fleet shape) is replaced.
    """
    target = resolve_calibration_path(path)
    existing = _existing(target)
    devices = dict(existing.devices)
    old = devices.get(device_name)
    merged_models = dict(old.models) if old else {}
    merged_models.update(models or {})
    merged_fleet = dict(old.fleet) if old else {}
    merged_fleet.update(fleet or {})
    devices[device_name] = DeviceCalibration(
        device=device,
        matmul=matmul if matmul is not None else (old.matmul if old else None),
        models=merged_models,
        fleet=merged_fleet,
    )
    return _write(Calibration(devices, target), target)


# --- throughput for `convert` / `train --calibration` ---------------------------------------------


def default_calibrated_precision(entry: DeviceCalibration) -> str:
    """Like the catalogue's default: the faster measured 16-bit precision, else fp32, else the fastest."""
    measured = dict(entry.matmul.tflops) if entry.matmul else {}
    sixteen = [p for p in ("bf16", "fp16") if p in measured]
    if sixteen:
        return max(sixteen, key=lambda p: (measured[p], p == "bf16"))
    if "fp32" in measured:
        return "fp32"
    if measured:
        return max(measured, key=measured.get)
    raise CalibrationError("the calibration holds no matmul measurement", "run `flopcalc bench --save`")


def _device_for(calibration: Calibration, device_name: str | None, catalog: Any) -> tuple[str, DeviceCalibration]:
    """`Calibration.device`, and failing that the one device whose name the catalogue resolves to the same GPU
    as `device_name` (so `--gpu H100-SXM` finds "NVIDIA H100 80GB HBM3")."""
    try:
        return calibration.device(device_name)
    except CalibrationError:
        if device_name is None or catalog is None:
            raise
        wanted = catalog.resolve(device_name).id
        same = [name for name in calibration.devices if _resolved_id(catalog, name) == wanted]
        if len(same) != 1:
            raise
        return same[0], calibration.devices[same[0]]


def _resolved_id(catalog: Any, name: str) -> str | None:
    try:
        return catalog.resolve(name).id
    except FlopcalcError:
        return None


def calibrated_throughput(
    calibration: Calibration,
    *,
    device_name: str | None = None,
    precision: str | None = None,
    utilization: float | None = None,
    model: str | None = None,
    catalog: Catalog | None = None,
) -> tuple[Throughput, tuple[str, ...]]:
    """Per-device throughput from a calibration: measured matmul FLOP/s of the precision x utilisation.

    - `device_name`: the device in the file (None: its only device); a catalogue (`catalog.resolve`)
      lets a GPU id like `H100-SXM` find the torch name the file is keyed by.
    - `precision`: default, the faster measured 16-bit precision (else fp32), or the model's.
    - `utilization` is "of measured" (default 0.3). With `model` (a `ModelSpec.key()`) benchmarked on the
      device by `flopcalc bench MODEL --save`, the model's measured utilisation is used instead, and
      giving `utilization` as well is an error (one would silently lose).
    Returns the Throughput and notes saying where the figures came from.
    """
    name, entry = _device_for(calibration, device_name, catalog)
    chosen = normalize_precision(precision) if precision else None
    notes: list[str] = []
    measured_model = entry.models.get(model) if model else None
    if measured_model is not None:
        chosen = chosen or measured_model.precision
        fraction, label = model_utilization(calibration, name, model, chosen)
        if utilization is not None:
            raise UsageError(
                f"--utilization conflicts with the measured utilisation of this model ({fraction:.1%} of measured)",
                "drop --utilization to use the measurement, or drop --calibration",
            )
        if not 0 < fraction <= 1:
            raise CalibrationError(
                f"the model's measured throughput is {fraction:.0%} of the measured matmul figure on {name}",
                "the matmul measurement looks disturbed: rerun `flopcalc bench --save` on an idle machine",
            )
        utilization = fraction
        notes.append(f"utilization {label}")
    chosen = chosen or default_calibrated_precision(entry)
    peak, _ = calibrated_peak(calibration, name, chosen)
    where = f" in {calibration.path}" if calibration.path else ""
    origin = f"measured by flopcalc bench {entry.matmul.measured_at[:10]}{where}; utilization is of measured"
    throughput = Throughput(
        peak_flops=peak,
        utilization=DEFAULT_UTILIZATION if utilization is None else utilization,
        gpu=name,
        precision=chosen,
        origin=origin,
    )
    return throughput, tuple(notes)


@dataclass(frozen=True)
class ThroughputChoice:
    """The per-GPU throughput a conversion uses, the GPU's power for energy, and where the figures came from."""

    throughput: Throughput
    tdp_w: float | None
    notes: tuple[str, ...] = ()


def choose_throughput(
    *,
    gpu: str | None = None,
    precision: str | None = None,
    utilization: float | None = None,
    calibration: str | os.PathLike | None = None,
    catalogs: Sequence[str | os.PathLike] = (),
    model_key: str | None = None,
) -> ThroughputChoice:
    """The one policy for "how fast is a GPU": measured when a calibration file is given, else the datasheet.

    - With `calibration` (a file, or "auto"): the measured matmul figure of `gpu` (or the file's only device),
      and a benchmarked model's measured utilisation when `model_key` names one (`utilization` must then be
      None: one of the two would silently lose).
    - Else the catalogue's dense peak of `gpu` (required) at `precision` (default: its fastest 16-bit one).
    `utilization` None means the default (0.3). The TDP comes from the catalogue when the GPU is in it.
    """
    catalog = load_catalog(tuple(catalogs))
    if calibration is not None:
        throughput, notes = calibrated_throughput(
            load_calibration(calibration), device_name=gpu, precision=precision, utilization=utilization,
            model=model_key, catalog=catalog if gpu else None,
        )
        try:
            tdp_w = catalog.resolve(gpu or throughput.gpu).tdp_w
        except FlopcalcError:  # a CPU, or a GPU the catalogue lacks: no energy figure
            tdp_w = None
        return ThroughputChoice(throughput, tdp_w, notes)
    if gpu is None:
        raise UsageError("no GPU given", "pass --gpu NAME (or --calibration FILE|auto)")
    spec = catalog.resolve(gpu)
    chosen = DEFAULT_UTILIZATION if utilization is None else utilization
    return ThroughputChoice(spec.datasheet_throughput(precision, chosen), spec.tdp_w)


# --- the network: what `bench --distributed --save` measured, for a planner ----------------------------


def measured_bandwidths(
    calibration: Calibration,
    device_name: str | None = None,
    *,
    shape: str | None = None,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """The measured network figures of a fleet of `device_name` GPUs, for `plan --calibration`.

    Bus bandwidths are nccl-tests' busbw in GB/s (1e9 bytes/s) at the largest message measured:

    - `intra_node_busbw_gbps`: all-reduce within one node (on a one-node fleet: across all its ranks);
    - `inter_node_busbw_gbps`: all-reduce between nodes, one rank per node (None for a one-node fleet);
    - `world_busbw_gbps`: all-reduce over every rank of the fleet;
    - `p2p_gbps`: send/recv between neighbouring ranks (pipeline parallelism's pattern), or None;
    - `busbw_gbps`: every figure, `{scope: {collective: GB/s}}`; `backend`, `world_size`, `nodes`,
      `ranks_per_node`, `device`, `measured_at`; `label`: one line saying what was measured where.

    `device_name` None picks the file's only device with fleet figures; a catalogue lets a GPU id (`H100-SXM`)
    find the torch name the file is keyed by. `shape` (`nccl 2x8`) picks a fleet entry; by default the one with
    the most nodes, then the most ranks, then the latest.
    """
    where = f" in {calibration.path}" if calibration.path else ""
    if device_name is None:
        with_fleet = [name for name, entry in calibration.devices.items() if entry.fleet]
        if len(with_fleet) != 1:
            found = (f"{len(with_fleet)} devices with fleet figures ({', '.join(with_fleet)})" if with_fleet
                     else "no fleet figures")
            raise CalibrationError(
                f"the calibration{where} holds {found}",
                "name the GPU" if with_fleet else "run `flopcalc bench --distributed --save` under torchrun first",
            )
        name, entry = with_fleet[0], calibration.devices[with_fleet[0]]
    else:
        name, entry = _device_for(calibration, device_name, catalog)
    if not entry.fleet:
        raise CalibrationError(f"no fleet measurement for {name}{where}",
                               "run `flopcalc bench --distributed --save` on that fleet")
    if shape is not None:
        if shape not in entry.fleet:
            raise CalibrationError(f"no {shape!r} fleet for {name}{where} (it has: {', '.join(entry.fleet)})")
        fleet = entry.fleet[shape]
    else:
        fleet = max(entry.fleet.values(), key=lambda item: (item.nodes, item.world_size, item.measured_at))
    all_reduce = {scope: ops.get("all_reduce") for scope, ops in fleet.busbw_gbps.items()}
    intra = all_reduce.get("intra") if fleet.nodes > 1 else all_reduce.get("world")
    shape_text = f"{fleet.nodes} node{'s' if fleet.nodes > 1 else ''} x {fleet.ranks_per_node} {name}"
    return {
        "intra_node_busbw_gbps": intra,
        "inter_node_busbw_gbps": all_reduce.get("inter") if fleet.nodes > 1 else None,
        "world_busbw_gbps": all_reduce.get("world"),
        "p2p_gbps": fleet.p2p_gbps,
        "busbw_gbps": {scope: dict(ops) for scope, ops in fleet.busbw_gbps.items()},
        "backend": fleet.backend,
        "world_size": fleet.world_size,
        "nodes": fleet.nodes,
        "ranks_per_node": fleet.ranks_per_node,
        "device": name,
        "measured_at": fleet.measured_at,
        "label": f"measured by flopcalc bench --distributed on {shape_text} ({fleet.backend}, "
                 f"{fleet.measured_at[:10]}){where}",
    }
