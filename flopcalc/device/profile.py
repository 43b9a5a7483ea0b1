"""What the step-time model reads about a device: rates that depend on the size of the work, each with a source.

A datasheet peak alone puts a small GEMM, a LayerNorm and a 100 MB all-reduce at the same fraction of the
hardware; a profile instead says how fast each kind of work runs at its own size. The default profiles ship in
flopcalc/data/device_profiles.yaml (docs/validation.md, "Device profiles", documents the format).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import CalibrationError
from ..files import read_yaml, read_yaml_or_shipped, shipped_text
from ..units import GB, LARGEST_NUMBER, SMALLEST_FIGURE
from .curve import BETWEEN, Curve

SCHEMA_VERSION = 1
KERNEL_TIMES = ("sum", "max")  # a kernel's arithmetic and memory time added (no overlap), or the slower (roofline)
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "p2p")
SCOPES = ("intra_node", "inter_node")
MB = 1e6


@dataclass(frozen=True)
class Rate:
    """A peak (FLOP/s or bytes/s) and the fraction of it achieved as a function of the work's size.
    `size_unit` names what the curve's sizes count (GFLOP per op, MB moved)."""

    peak: float
    peak_source: str
    efficiency: Curve
    size_unit: str

    def achieved(self, size: float) -> float:
        """The rate achieved on one piece of work of `size` (in `size_unit`)."""
        return self.peak * self.efficiency.at(size)


@dataclass(frozen=True)
class Network:
    """One scope of links (within a node, across nodes): per-GPU bandwidth in one direction, the bus-bandwidth
    efficiency of each collective against the message size (MB), and a latency per ring step."""

    scope: str
    gpus: int  # GPUs this scope connects (8 on an NVSwitch node)
    bandwidth: float  # bytes/s per GPU, one direction
    latency_s: float
    source: str
    bus_efficiency: dict[str, Curve]

    def bus_bandwidth(self, collective: str, nbytes: float) -> float:
        """nccl-tests' busbw (bytes/s) of `collective` on a message of `nbytes`."""
        return self.bandwidth * self.bus_efficiency[collective].at(nbytes / MB)


@dataclass(frozen=True)
class DeviceProfile:
    """Matmul, vector (elementwise) and memory rates of one catalogue GPU, and its networks."""

    device: str  # the catalogue id
    description: str
    matmul: Rate  # FLOP/s; sizes in GFLOP per op
    vector: Rate  # FLOP/s; sizes in GFLOP per op
    memory: Rate  # bytes/s; sizes in MB moved per op
    networks: dict[str, Network]
    precisions: tuple[str, ...]  # the precisions the matmul and vector peaks are for
    kernel_time: str = "sum"  # how a kernel's arithmetic and memory times combine (KERNEL_TIMES)
    kernel_time_source: str = ""

    def network(self, scope: str) -> Network:
        if scope not in self.networks:
            raise CalibrationError(
                f"the {self.device} profile has no {scope.replace('_', '-')} network",
                f"add profiles[].network.{scope} to the profile file",
            )
        return self.networks[scope]

    def sources(self) -> tuple[str, ...]:
        """Where every figure came from, one line each: printed with a prediction."""
        lines = [
            f"a kernel's time: its arithmetic and memory times {'added' if self.kernel_time == 'sum' else 'the slower of'}"
            f" ({self.kernel_time_source})",
            f"matmul peak {self.matmul.peak / 1e12:.4g} TFLOP/s ({self.matmul.peak_source}); efficiency per GEMM by "
            f"GFLOP ({self.matmul.efficiency.source})",
            f"vector peak {self.vector.peak / 1e12:.4g} TFLOP/s ({self.vector.peak_source}); efficiency by GFLOP "
            f"({self.vector.efficiency.source})",
            f"memory {self.memory.peak / GB:.4g} GB/s ({self.memory.peak_source}); efficiency by MB moved "
            f"({self.memory.efficiency.source})",
        ]
        for network in self.networks.values():
            lines.append(
                f"{network.scope.replace('_', '-')} network: {network.bandwidth / GB:.4g} GB/s per GPU per "
                f"direction, {network.latency_s * 1e6:.3g} us per ring step ({network.source})"
            )
        return tuple(lines)


# --------------------------------------------------------------------------------------------- reading


class _Reader:
    """Field access that names the file and the field path in every error."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, path: str, problem: str, hint: str | None = None) -> CalibrationError:
        return CalibrationError(f"{self.where}: {path}: {problem}", hint)

    def mapping(self, data: Any, path: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(path, f"expected a mapping, got {type(data).__name__}")
        return data

    def field(self, data: dict[str, Any], key: str, path: str) -> Any:
        if key not in data or data[key] is None:
            raise self.fail(f"{path}.{key}", "missing", "every profile figure is required")
        return data[key]

    def number(self, data: dict[str, Any], key: str, path: str, *, minimum: float = 0.0) -> float:
        value = self.field(data, key, path)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= minimum
        ):
            raise self.fail(f"{path}.{key}", f"must be a number > {minimum:g}, got {value!r}")
        if not SMALLEST_FIGURE <= value <= LARGEST_NUMBER:
            raise self.fail(
                f"{path}.{key}", f"must be between {SMALLEST_FIGURE:g} and {LARGEST_NUMBER:g}, got {value!r}"
            )
        return float(value)

    def text(self, data: dict[str, Any], key: str, path: str) -> str:
        value = self.field(data, key, path)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{path}.{key}", "must be a non-empty string", "say where the figure came from")
        return value

    def curve(self, data: Any, path: str) -> Curve:
        data = self.mapping(data, path)
        points = self.field(data, "points", path)
        if (
            not isinstance(points, list)
            or not points
            or not all(
                isinstance(p, list)
                and len(p) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in p)
                for p in points
            )
        ):
            raise self.fail(f"{path}.points", "must be a list of [size, value] pairs")
        between = data.get("between", "step")
        if between not in BETWEEN:
            raise self.fail(f"{path}.between", f"must be one of {', '.join(BETWEEN)}, got {between!r}")
        if any(value > 1 for _, value in points):
            raise self.fail(f"{path}.points", "an efficiency is a fraction of the peak: at most 1")
        try:
            return Curve(tuple((float(a), float(b)) for a, b in points), self.text(data, "source", path), between)
        except CalibrationError as error:
            raise self.fail(path, error.message) from None

    def rate(self, data: Any, path: str, peak_key: str, scale: float, unit: str, precision: str) -> Rate:
        data = self.mapping(data, path)
        peaks = self.mapping(self.field(data, peak_key, path), f"{path}.{peak_key}")
        if precision not in peaks:
            raise self.fail(f"{path}.{peak_key}", f"has no {precision} figure")
        peak = self.number(peaks, precision, f"{path}.{peak_key}") * scale
        return Rate(
            peak,
            self.text(data, "peak_source", path),
            self.curve(self.field(data, "efficiency", path), f"{path}.efficiency"),
            unit,
        )


def _network(reader: _Reader, data: Any, path: str, scope: str) -> Network:
    data = reader.mapping(data, path)
    efficiencies = reader.mapping(reader.field(data, "bus_efficiency", path), f"{path}.bus_efficiency")
    curves = {}
    for collective in COLLECTIVES:
        curves[collective] = reader.curve(
            reader.field(efficiencies, collective, f"{path}.bus_efficiency"), f"{path}.bus_efficiency.{collective}"
        )
    gpus = reader.number(data, "gpus", path)
    if gpus != int(gpus):
        raise reader.fail(f"{path}.gpus", f"must be a whole number, got {gpus!r}")
    latency = reader.field(data, "latency_us", path)
    if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not math.isfinite(latency) or latency < 0:
        raise reader.fail(f"{path}.latency_us", f"must be a number >= 0, got {latency!r}")
    return Network(
        scope,
        int(gpus),
        reader.number(data, "bandwidth_gbps", path) * GB,
        float(latency) * 1e-6,
        reader.text(data, "source", path),
        curves,
    )


def _profile(reader: _Reader, data: Any, path: str, precision: str) -> DeviceProfile:
    data = reader.mapping(data, path)
    device = reader.text(data, "device", path)
    matmul = reader.rate(reader.field(data, "matmul", path), f"{path}.matmul", "peak_tflops", 1e12, "GFLOP", precision)
    vector = reader.rate(reader.field(data, "vector", path), f"{path}.vector", "peak_tflops", 1e12, "GFLOP", precision)
    memory_data = reader.mapping(reader.field(data, "memory", path), f"{path}.memory")
    memory = Rate(
        reader.number(memory_data, "bandwidth_gbps", f"{path}.memory") * GB,
        reader.text(memory_data, "peak_source", f"{path}.memory"),
        reader.curve(reader.field(memory_data, "efficiency", f"{path}.memory"), f"{path}.memory.efficiency"),
        "MB",
    )
    networks_data = reader.mapping(reader.field(data, "network", path), f"{path}.network")
    unknown = sorted(set(networks_data) - set(SCOPES))
    if unknown:
        raise reader.fail(f"{path}.network", f"unknown scope {unknown[0]!r}", f"use {' or '.join(SCOPES)}")
    networks = {
        scope: _network(reader, networks_data[scope], f"{path}.network.{scope}", scope)
        for scope in SCOPES
        if scope in networks_data
    }
    precisions = tuple(reader.mapping(reader.field(reader.mapping(data["matmul"], path), "peak_tflops", path), path))
    kernel = reader.mapping(reader.field(data, "kernel_time", path), f"{path}.kernel_time")
    rule = reader.field(kernel, "rule", f"{path}.kernel_time")
    if rule not in KERNEL_TIMES:
        raise reader.fail(f"{path}.kernel_time.rule", f"must be sum or max, got {rule!r}")
    return DeviceProfile(
        device,
        str(data.get("description", "")),
        matmul,
        vector,
        memory,
        networks,
        precisions,
        rule,
        reader.text(kernel, "source", f"{path}.kernel_time"),
    )


def default_profiles_text() -> str:
    """The shipped profile file's text."""
    return shipped_text("device_profiles.yaml")


def load_profiles(path: Path | None = None, *, precision: str = "fp16") -> dict[str, DeviceProfile]:
    """Every profile in `path` (default: the shipped one), by catalogue id, rates for `precision`."""
    where, data = read_yaml_or_shipped(path, "device_profiles.yaml", CalibrationError, "device profile file")
    reader = _Reader(where)
    data = reader.mapping(data, "(top)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise reader.fail("schema_version", f"must be {SCHEMA_VERSION}, got {version!r}")
    entries = reader.field(data, "profiles", "(top)")
    if not isinstance(entries, list) or not entries:
        raise reader.fail("profiles", "must be a non-empty list")
    profiles: dict[str, DeviceProfile] = {}
    for index, entry in enumerate(entries):
        profile = _profile(reader, entry, f"profiles[{index}]", precision)
        if profile.device in profiles:
            raise reader.fail(f"profiles[{index}].device", f"{profile.device} appears twice")
        profiles[profile.device] = profile
    return profiles


def device_profile(device: str, path: Path | None = None, *, precision: str = "fp16") -> DeviceProfile:
    """The profile of catalogue GPU `device`; a device the file has no profile for is refused with one line."""
    profiles = load_profiles(path, precision=precision)
    if device not in profiles:
        raise CalibrationError(
            f"no device profile for {device} in {path or 'the shipped profiles'}",
            f"profiles exist for {', '.join(sorted(profiles))}",
        )
    return profiles[device]


def profile_for(device: str, path: Path, *, precision: str) -> DeviceProfile:
    """The profile of `device` in the file `path`; a file that profiles other devices is refused in one line: a
    profile measured on one device does not apply to another."""
    profiles = load_profiles(path, precision=precision)
    if device not in profiles:
        theirs = ", ".join(profiles)
        raise CalibrationError(
            f"{path} profiles {theirs}, not {device}: a profile measured on one device does not apply to another",
            f"use it for {theirs}, or profile {device}",
        )
    return profiles[device]


def profiled_device(path: Path, precision: str | None = None) -> str:
    """The one device a profile file profiles (a file of several needs --gpu to choose)."""
    profiles = load_profiles(path, precision=precision or "bf16")
    if len(profiles) != 1:
        raise CalibrationError(f"{path} holds profiles of {', '.join(profiles)}", "name the GPU with --gpu")
    return next(iter(profiles))


def is_profile_file(path: Path) -> bool:
    """Whether `path` is a device profile file (a `profiles:` list), not `bench --save`'s calibration file."""
    data = read_yaml(Path(path), CalibrationError, "calibration file")
    return isinstance(data, dict) and "profiles" in data


def with_bus_bandwidth(profile: DeviceProfile, scope: str, gbps: float, origin: str) -> DeviceProfile:
    """The profile with the `scope` network's bus bandwidth replaced by `gbps` (an nccl-tests busbw: efficiency 1
    for every collective), the latency kept; a profile without that scope gets one with no latency."""
    flat = {name: Curve(((0.0, 1.0),), f"{origin}: a bus bandwidth, used as it is") for name in COLLECTIVES}
    old = profile.networks.get(scope)
    network = Network(scope, old.gpus if old else 8, gbps * GB, old.latency_s if old else 0.0, origin, flat)
    return replace(profile, networks={**profile.networks, scope: network})
