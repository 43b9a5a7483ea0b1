"""The calibration file's records: what one file holds per device (matmul, models, fleet), and finding a device
in it by name. Parsing and writing are `store`; using the figures is `throughput` and `network`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..device import MEASURED_SCOPES, ProfileCalibration
from ..errors import CalibrationError, FlopcalcError

FORMAT_VERSION = 1
CALIBRATION_ENV_VAR = "FLOPCALC_CALIBRATION"
DEVICE_KINDS = ("cpu", "cuda", "mps")

FLEET_BACKENDS = ("nccl", "gloo")
# Where a collective ran: every rank; the ranks of one node (a group per node); one rank per node.
FLEET_SCOPES = MEASURED_SCOPES
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
    profile: ProfileCalibration | None = None

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"device": self.device}
        if self.matmul is not None:
            data["matmul"] = self.matmul.to_dict()
        if self.profile is not None:
            data["profile"] = self.profile.to_dict()
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


def find_device(calibration: Calibration, device_name: str | None, catalog: Any) -> tuple[str, DeviceCalibration]:
    """`Calibration.device`, and failing that the one device whose name the catalogue resolves to the same GPU
    as `device_name` (so `--gpu H100-SXM` finds "NVIDIA H100 80GB HBM3")."""
    try:
        return calibration.device(device_name)
    except CalibrationError:
        if device_name is None or catalog is None:
            raise
        wanted = catalog.resolve(device_name).id
        same = [name for name in calibration.devices if resolved_id(catalog, name) == wanted]
        if len(same) != 1:
            raise
        return same[0], calibration.devices[same[0]]


def resolved_id(catalog: Any, name: str) -> str | None:
    try:
        return catalog.resolve(name).id
    except FlopcalcError:
        return None
