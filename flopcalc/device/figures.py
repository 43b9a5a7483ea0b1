"""The record of one device's figures, each with where it came from, and the measurements that can replace
datasheet figures. Plain values only: `resolve` builds the record, the commands read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..catalog import Accelerator, DeviceKind
from ..errors import CalibrationError
from ..units import Precision
from .profile import DeviceProfile

# Where a figure came from: a catalogue datasheet, a flopcalc bench measurement, a published profile, or an
# assumption stated in its label.
FigureOrigin = Literal["datasheet", "measured", "published", "assumed"]

# One 200 Gb/s InfiniBand HDR NIC per GPU (DGX A100) moves 25 GB/s; nccl-tests' inter-node busbw is about this.
ASSUMED_INTER_NODE_GBPS = 25.0
ASSUMED_INTER_NODE_SOURCE = (
    "assumed: one 200 Gb/s InfiniBand HDR NIC per GPU, as in a DGX A100; give "
    "--inter-node-gbps (nccl-tests busbw across nodes)"
)


@dataclass(frozen=True)
class Figure:
    """One figure of a device in its base unit (FLOP/s, bytes/s, bytes, GB/s for links) and its source."""

    value: float
    source: str  # "datasheet dense bf16", "measured by flopcalc bench 2026-11-28 in cal.yaml", ...
    origin: FigureOrigin


@dataclass(frozen=True)
class MatmulMeasurement:
    """What `flopcalc bench --save` measured on one device: matmul FLOP/s per precision, and when and where."""

    device: str  # the device name the measurement is keyed by (as torch reports it)
    flops: Mapping[str, float]  # precision -> FLOP/s
    measured_at: str  # ISO time
    where: str = ""  # the file it was read from, "" when not from a file

    @property
    def source(self) -> str:
        """`measured by flopcalc bench 2026-11-28 in cal.yaml`."""
        where = f" in {self.where}" if self.where else ""
        return f"measured by flopcalc bench {self.measured_at[:10]}{where}"

    def peak(self, precision: str) -> Figure:
        """The measured FLOP/s of `precision`; CalibrationError naming the measured ones when it lacks it."""
        if precision not in self.flops:
            measured = ", ".join(self.flops)
            where = f" in {self.where}" if self.where else ""
            raise CalibrationError(
                f"no {precision} measurement for {self.device}{where} (measured: {measured})",
                f"use --precision with one of {measured}, or rerun `flopcalc bench --precision {precision} --save`",
            )
        return Figure(self.flops[precision], self.source, "measured")

    def default_precision(self) -> str:
        """Like the catalogue's default: the faster measured 16-bit precision, else fp32, else the fastest."""
        sixteen = [p for p in ("bf16", "fp16") if p in self.flops]
        if sixteen:
            return max(sixteen, key=lambda p: (self.flops[p], p == "bf16"))
        if "fp32" in self.flops:
            return "fp32"
        if self.flops:
            return max(self.flops, key=lambda p: self.flops[p])
        raise CalibrationError("the calibration holds no matmul measurement", "run `flopcalc bench --save`")


@dataclass(frozen=True)
class LinkMeasurement:
    """All-reduce bus bandwidths `flopcalc bench --distributed --save` measured (GB/s), and a line saying where."""

    intra_node_gbps: float | None
    inter_node_gbps: float | None
    label: str


@dataclass(frozen=True)
class Device:
    """Everything flopcalc knows about one device at one precision, each figure labelled with its source.

    `id` is the catalogue id, or the measured device name when the catalogue lacks it (`accelerator` None).
    `peaks` holds the dense peak of every precision known (measured ones replace the datasheet's); `peak` is
    the one at `precision`. Links are per GPU and direction, in GB/s: within a node (the catalogue's link peak
    or a measured bus bandwidth) and across nodes (measured, else assumed).
    """

    id: str
    precision: Precision
    peak: Figure  # FLOP/s (ops/s for int8), dense
    peaks: Mapping[str, Figure]
    memory_bytes: Figure | None
    memory_bandwidth: Figure | None  # bytes/s
    intra_node: Figure | None  # GB/s
    inter_node: Figure  # GB/s
    tdp_w: float | None = None
    accelerator: Accelerator | None = None
    profile: DeviceProfile | None = None
    catalog_miss: str | None = None  # why the catalogue has no entry for a measured device (its one-line error)

    @property
    def kind(self) -> DeviceKind | None:
        """gpu, tpu or cpu from the catalogue; None for a measured device the catalogue lacks."""
        return None if self.accelerator is None else self.accelerator.kind
