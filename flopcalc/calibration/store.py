"""Reading, validating and writing calibration files: one-line errors naming the file and entry; atomic writes
that keep the other devices' and models' entries."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..device import is_profile_file, parse_measured_profile
from ..device.measured import positive_figure, required_text
from ..errors import CalibrationError, UsageError
from ..files import parse_yaml, write_atomic
from ..units import MATMUL_PRECISIONS
from . import records

# An entry may hold the keys its record's fields name, and no other (each record's to_dict writes them all).
_DEVICE_KEYS, _MATMUL_KEYS, _MODEL_KEYS, _FLEET_KEYS = (
    {field.name for field in fields(record)}
    for record in (
        records.DeviceCalibration,
        records.MatmulCalibration,
        records.ModelCalibration,
        records.FleetCalibration,
    )
)


# --- paths ------------------------------------------------------------------------------------


def default_calibration_path() -> Path:
    """$FLOPCALC_CALIBRATION, else calibration.yaml in the platform's user config folder."""
    override = os.environ.get(records.CALIBRATION_ENV_VAR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_config_path("flopcalc") / "calibration.yaml"


def resolve_calibration_path(value: str | os.PathLike | None) -> Path:
    """`--calibration FILE|auto`: `auto` (or nothing) is the default path."""
    if value is None or str(value).strip().lower() in ("", "auto"):
        return default_calibration_path()
    return Path(value).expanduser()


def profile_file_of(calibration: str | os.PathLike[str] | None) -> Path | None:
    """`--calibration FILE` when FILE is a device profile file (a `profiles:` list), else None (no calibration,
    or `flopcalc bench --save`'s calibration file)."""
    if calibration is None:
        return None
    path = resolve_calibration_path(calibration)
    return path if path.is_file() and is_profile_file(path) else None


# --- loading and validating --------------------------------------------------------------------


def load_calibration(path: str | os.PathLike | None = None) -> records.Calibration:
    """Read and validate a calibration file (`None`/"auto": the default path)."""
    target = resolve_calibration_path(path)
    if not target.is_file():
        raise CalibrationError(
            f"no calibration file at {target}", "run `flopcalc bench --save` first, or pass --calibration FILE"
        )
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CalibrationError(f"cannot read calibration {target}: {error}") from None
    return parse_calibration(text, target)


def parse_calibration(text: str, path: Path | None = None) -> records.Calibration:
    """Validate calibration YAML text; every problem is a CalibrationError naming file and entry."""
    where = str(path) if path else "calibration"
    data = parse_yaml(text, CalibrationError, where, hint="fix it, or delete it and rerun `flopcalc bench --save`")
    if not isinstance(data, dict):
        raise CalibrationError(f"{where}: expected a mapping with 'version' and 'devices'")
    _no_unknown_keys(data, {"version", "devices"}, where)
    if data.get("version") != records.FORMAT_VERSION:
        raise CalibrationError(f"{where}: version must be {records.FORMAT_VERSION}, got {data.get('version')!r}")
    devices_data = data.get("devices")
    if not isinstance(devices_data, dict):
        raise CalibrationError(f"{where}: 'devices' must be a mapping of device name to entry")
    devices: dict[str, records.DeviceCalibration] = {}
    for name, entry in devices_data.items():
        devices[str(name)] = _parse_device(entry, f"{where}: device {name!r}")
    return records.Calibration(devices, path)


def _parse_device(entry: Any, where: str) -> records.DeviceCalibration:
    _mapping_of(entry, _DEVICE_KEYS, where)
    kind = _one_of(entry, "device", records.DEVICE_KINDS, where)
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
            raise CalibrationError(
                f"{where}: fleet entry {key!r} holds a {parsed.key!r} fleet", f"name it {parsed.key!r}"
            )
        fleet[parsed.key] = parsed
    profile = parse_measured_profile(entry["profile"], f"{where} profile") if entry.get("profile") is not None else None
    if matmul is None and not models and not fleet and profile is None:
        raise CalibrationError(f"{where}: holds none of 'matmul', 'models' or 'fleet' (nor a 'profile')")
    return records.DeviceCalibration(kind, matmul, models, fleet, profile)


def measured_profile(calibration: records.Calibration, device_name: str) -> records.ProfileCalibration | None:
    """The device profile measured on `device_name`, None when the file has none for it. A file whose only
    profiles were measured on other devices is refused: a profile applies to the device it was measured on."""
    entry = calibration.devices.get(device_name)
    if entry is not None and entry.profile is not None:
        return entry.profile.for_device(device_name)
    others = [name for name, other in calibration.devices.items() if other.profile is not None]
    if others and entry is None:
        where = f" in {calibration.path}" if calibration.path else ""
        raise CalibrationError(
            f"the device profile{where} was measured on {', '.join(others)}, not on {device_name}",
            "a profile applies only to the device it was measured on: run `flopcalc bench --save` here, "
            "or pass another --calibration FILE",
        )
    return None


def _parse_matmul(entry: Any, where: str) -> records.MatmulCalibration:
    _mapping_of(entry, _MATMUL_KEYS, where)
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
    return records.MatmulCalibration(
        tflops=tflops,
        best_tflops=best,
        shapes=shapes,
        measured_at=required_text(entry, "measured_at", where),
        torch_version=required_text(entry, "torch_version", where),
        seconds=positive_figure(entry.get("seconds"), f"{where} seconds"),
        full=bool(entry.get("full", False)),
        threads=threads,
    )


def _parse_model(entry: Any, where: str) -> records.ModelCalibration:
    _mapping_of(entry, _MODEL_KEYS, where)
    precision = _one_of(entry, "precision", MATMUL_PRECISIONS, where)
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
    return records.ModelCalibration(
        model=required_text(entry, "model", where),
        inputs=tuple(inputs),
        batch_size=batch_size,
        kwargs=kwargs,
        precision=precision,
        optimizer=required_text(entry, "optimizer", where),
        flops_per_step=positive_figure(entry.get("flops_per_step"), f"{where} flops_per_step"),
        step_seconds=positive_figure(entry.get("step_seconds"), f"{where} step_seconds"),
        achieved_tflops=positive_figure(entry.get("achieved_tflops"), f"{where} achieved_tflops"),
        measured_at=required_text(entry, "measured_at", where),
        torch_version=required_text(entry, "torch_version", where),
        steps=steps,
        peak_tflops=None if peak is None else positive_figure(peak, f"{where} peak_tflops"),
        mfu=None if mfu is None else positive_figure(mfu, f"{where} mfu"),
    )


def _parse_fleet(entry: Any, where: str) -> records.FleetCalibration:
    _mapping_of(entry, _FLEET_KEYS, where)
    backend = _one_of(entry, "backend", records.FLEET_BACKENDS, where)
    world_size, nodes, per_node = (
        _count(entry.get(key), f"{where} {key}") for key in ("world_size", "nodes", "ranks_per_node")
    )
    if world_size < 2 or world_size != nodes * per_node:
        raise CalibrationError(
            f"{where}: world_size {world_size} must be nodes x ranks_per_node ({nodes} x {per_node}), at least 2"
        )
    busbw = _scoped(entry.get("busbw_gbps"), f"{where} busbw_gbps", positive_figure)
    sizes = _scoped(entry.get("message_bytes"), f"{where} message_bytes", _count)
    if {scope: set(ops) for scope, ops in busbw.items()} != {scope: set(ops) for scope, ops in sizes.items()}:
        raise CalibrationError(f"{where}: 'message_bytes' must name the same scopes and collectives as 'busbw_gbps'")
    p2p, p2p_bytes = entry.get("p2p_gbps"), entry.get("p2p_bytes")
    if (p2p is None) != (p2p_bytes is None):
        raise CalibrationError(f"{where}: 'p2p_gbps' and 'p2p_bytes' go together")
    return records.FleetCalibration(
        backend=backend,
        world_size=world_size,
        nodes=nodes,
        ranks_per_node=per_node,
        busbw_gbps=busbw,
        message_bytes=sizes,
        p2p_gbps=None if p2p is None else positive_figure(p2p, f"{where} p2p_gbps"),
        p2p_bytes=None if p2p_bytes is None else _count(p2p_bytes, f"{where} p2p_bytes"),
        tflops=_precision_map(entry.get("tflops") or {}, f"{where} tflops", required=False),
        slowest_tflops=_precision_map(entry.get("slowest_tflops") or {}, f"{where} slowest_tflops", required=False),
        measured_at=required_text(entry, "measured_at", where),
        torch_version=required_text(entry, "torch_version", where),
    )


def _scoped(value: Any, where: str, check) -> dict[str, dict[str, Any]]:
    """`{scope: {collective: number}}` with known scopes and collectives, each number passing `check`."""
    if not isinstance(value, dict) or not value:
        raise CalibrationError(
            f"{where}: expected a mapping of scope ({', '.join(records.FLEET_SCOPES)}) to collectives"
        )
    result: dict[str, dict[str, Any]] = {}
    for scope, ops in value.items():
        if scope not in records.FLEET_SCOPES:
            raise CalibrationError(f"{where}: unknown scope {scope!r}", f"use {', '.join(records.FLEET_SCOPES)}")
        if not isinstance(ops, dict) or not ops:
            raise CalibrationError(f"{where} {scope}: expected a mapping of collective to number")
        for op in ops:
            if op not in records.FLEET_OPS:
                raise CalibrationError(
                    f"{where} {scope}: unknown collective {op!r}", f"use {', '.join(records.FLEET_OPS)}"
                )
        result[scope] = {op: check(number, f"{where} {scope} {op}") for op, number in ops.items()}
    return result


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CalibrationError(f"{where}: must be a positive integer, got {value!r}")
    return value


def _mapping_of(entry: Any, allowed: set[str], where: str) -> None:
    """An entry is a mapping holding no key but the `allowed` ones."""
    if not isinstance(entry, dict):
        raise CalibrationError(f"{where}: expected a mapping")
    _no_unknown_keys(entry, allowed, where)


def _one_of(entry: Mapping, key: str, choices: Any, where: str) -> Any:
    """The entry's `key`, which must be one of `choices`."""
    value = entry.get(key)
    if value not in choices:
        raise CalibrationError(f"{where}: {key!r} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _no_unknown_keys(entry: Mapping, allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in entry if key not in allowed)
    if unknown:
        raise CalibrationError(
            f"{where}: unknown key(s) {', '.join(unknown)}", f"allowed: {', '.join(sorted(allowed))}"
        )


def _precision_map(value: Any, where: str, *, required: bool) -> dict[str, float]:
    if not isinstance(value, dict) or (required and not value):
        raise CalibrationError(f"{where}: expected a mapping of precision to TFLOPS")
    result = {}
    for precision, number in value.items():
        if precision not in MATMUL_PRECISIONS:
            raise CalibrationError(f"{where}: unknown precision {precision!r}", f"use {', '.join(MATMUL_PRECISIONS)}")
        result[precision] = positive_figure(number, f"{where} {precision}")
    return result


# --- saving -------------------------------------------------------------------------------------


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _existing(target: Path) -> records.Calibration:
    if not target.exists():
        return records.Calibration({}, target)
    try:
        return load_calibration(target)
    except CalibrationError as error:
        raise CalibrationError(
            f"will not overwrite {target}: {error.message}", "fix or delete it, or pass another --calibration FILE"
        ) from None


def _write(calibration: records.Calibration, target: Path) -> Path:
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
    matmul: records.MatmulCalibration | None = None,
    models: Mapping[str, records.ModelCalibration] | None = None,
    fleet: Mapping[str, records.FleetCalibration] | None = None,
    profile: records.ProfileCalibration | None = None,
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
    devices[device_name] = records.DeviceCalibration(
        device=device,
        matmul=matmul if matmul is not None else (old.matmul if old else None),
        models=merged_models,
        fleet=merged_fleet,
        profile=_merged_profile(old.profile if old else None, profile),
    )
    return _write(records.Calibration(devices, target), target)


def _merged_profile(
    old: records.ProfileCalibration | None, new: records.ProfileCalibration | None
) -> records.ProfileCalibration | None:
    """A new measurement replaces the precisions (and bus-bandwidth scopes) it measured and keeps the others."""
    if new is None or old is None:
        return new if new is not None else old
    return old.merged_with(new)
