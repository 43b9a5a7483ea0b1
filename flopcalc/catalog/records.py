"""The catalogue's records: one accelerator or CPU (`Accelerator`), a CPU's core groups, a node's link.

What the rest of flopcalc reads; the YAML schema that builds them is `catalog.schema`. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, get_args

from ..compute import DEFAULT_UTILIZATION, Throughput
from ..errors import UsageError
from ..units import GIB, PRECISIONS, normalize_precision

# What an entry is; a file may set the default for its entries (`kind: tpu` in google.yaml), else gpu.
DeviceKind = Literal["gpu", "tpu", "cpu"]
KINDS: tuple[DeviceKind, ...] = get_args(DeviceKind)
DEFAULT_KIND: DeviceKind = "gpu"

# Which clock a CPU peak uses (docs/catalogue.md, "CPU conventions").
CPU_CLOCKS: tuple[str, ...] = ("base", "all_core_turbo", "max", "fixed", "avx_base", "avx512_base", "avx512_all_core")

BYTES_PER_CHANNEL_TRANSFER = 8  # one 64-bit memory channel moves 8 bytes per transfer
# Device memory is binary: an "80GB" A100 has 80 GiB of HBM. `memory_gb` holds the datasheet's figure, in GiB
# (units.GIB bytes each).


@dataclass(frozen=True)
class CoreGroup:
    """Alike cores of a CPU and what each does per cycle: their peak is cores x clock_ghz x flop_per_cycle."""

    cores: int
    clock_ghz: float
    clock: str  # which clock: one of CPU_CLOCKS
    flop_per_cycle: Mapping[str, float]  # per core and cycle, by precision (int8: ops)
    how: Mapping[str, str]  # by precision: how the figure follows from the vector/matrix units
    name: str | None = None  # "performance", "efficiency" on hybrid chips

    def peak_tflops(self, precision: str) -> Decimal:
        """cores x clock (GHz) x FLOP/cycle / 1000, exact in decimal; 0 without that precision."""
        if precision not in self.flop_per_cycle:
            return Decimal(0)
        return (
            exact_decimal(self.cores)
            * exact_decimal(self.clock_ghz)
            * exact_decimal(self.flop_per_cycle[precision])
            / 1000
        )

    def formula(self, precision: str) -> str:
        """`40 cores x 2.3 GHz (base) x 64 FLOP/cycle`."""
        unit = "ops" if precision == "int8" else "FLOP"
        who = f"{self.name} cores" if self.name else "cores"
        return (
            f"{self.cores} {who} x {plain(self.clock_ghz)} GHz ({self.clock}) x "
            f"{plain(self.flop_per_cycle[precision])} {unit}/cycle"
        )


@dataclass(frozen=True)
class Link:
    """How one device reaches the others in its node (NVLink, ICI): GB/s as its datasheet states it, which is
    both directions added (`bidirectional`) or one direction, and where the figure comes from."""

    name: str
    gbps: float
    bidirectional: bool
    source: str | None = None

    @property
    def per_direction_gbps(self) -> float:
        """What one direction carries: what a ring collective's bus bandwidth is bounded by."""
        return self.gbps / 2 if self.bidirectional else self.gbps

    def describe(self) -> str:
        both = "both directions together" if self.bidirectional else "per direction"
        return f"{self.name}: {plain(self.gbps)} GB/s {both} = {plain(self.per_direction_gbps)} GB/s per direction"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "gbps": self.gbps,
            "bidirectional": self.bidirectional,
            "per_direction_gbps": self.per_direction_gbps,
            "source": self.source,
        }


@dataclass(frozen=True)
class Accelerator:
    """One accelerator or CPU: dense peaks per precision (TFLOPS; int8 in TOPS) and what else the datasheet says."""

    id: str
    name: str
    vendor: str
    peak_tflops: Mapping[str, float]
    aliases: tuple[str, ...] = ()
    year: int | None = None
    form_factor: str | None = None
    sparse_peak_tflops: Mapping[str, float] = field(default_factory=dict)
    memory_gb: float | None = None  # GiB, as the datasheet's "80GB" means (see memory_bytes)
    memory_bandwidth_gbps: float | None = None
    tdp_w: float | None = None
    sources: tuple[str, ...] = ()
    notes: str | None = None
    origin: str = ""  # the file it came from
    kind: DeviceKind = DEFAULT_KIND
    core_groups: tuple[CoreGroup, ...] = ()  # kind cpu only
    memory_channels: int | None = None  # kind cpu only: 64-bit channels
    memory_mt_s: float | None = None  # kind cpu only: transfers per second per channel, in millions
    intra_node_link: Link | None = None  # NVLink / ICI to the other devices of a node
    host_link: Link | None = None  # PCIe / NVLink-C2C to the host's memory (offload traffic)

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(p for p in PRECISIONS if p in self.peak_tflops)

    @property
    def memory_bytes(self) -> float | None:
        """Memory in bytes: `memory_gb` GiB x 2^30 (an 80 GB A100 holds 85.9e9 bytes); None when unknown."""
        return None if self.memory_gb is None else self.memory_gb * GIB

    @property
    def cores(self) -> int | None:
        """All cores of a CPU entry (None for other kinds)."""
        return sum(group.cores for group in self.core_groups) if self.core_groups else None

    def peak_formula(self, precision: str) -> str | None:
        """How a CPU peak follows: `40 cores x 2.3 GHz (base) x 64 FLOP/cycle` (groups joined by +); None otherwise."""
        parts = [group.formula(precision) for group in self.core_groups if precision in group.flop_per_cycle]
        return " + ".join(parts) or None

    def bandwidth_formula(self) -> str | None:
        """`8 channels x 3200 MT/s x 8 B` for a CPU entry that gives its channels; None otherwise."""
        if self.memory_channels is None or self.memory_mt_s is None:
            return None
        return f"{self.memory_channels} channels x {plain(self.memory_mt_s)} MT/s x {BYTES_PER_CHANNEL_TRANSFER} B"

    def peak_flops(self, precision: str) -> float:
        """Dense peak in FLOP/s (ops/s for int8) for `precision`; UsageError naming the ones it has."""
        canonical = normalize_precision(precision)
        if canonical not in self.peak_tflops:
            raise UsageError(
                f"{self.id} has no {canonical} peak in the catalogue",
                f"it has: {', '.join(self.precisions)}",
            )
        return float(self.peak_tflops[canonical]) * 1e12

    def default_precision(self) -> str:
        """The fastest dense 16-bit tensor precision (bf16 on a tie), else fp32, else the fastest it has."""
        sixteen = [p for p in ("bf16", "fp16") if p in self.peak_tflops]
        if sixteen:
            return max(sixteen, key=lambda p: (self.peak_tflops[p], p == "bf16"))
        if "fp32" in self.peak_tflops:
            return "fp32"
        return max(self.precisions, key=lambda p: self.peak_tflops[p])

    def datasheet_throughput(
        self, precision: str | None = None, utilization: float = DEFAULT_UTILIZATION
    ) -> Throughput:
        """Per-GPU throughput from the datasheet: dense peak of `precision` (default: `default_precision()`) x utilisation."""
        chosen = normalize_precision(precision) if precision else self.default_precision()
        return Throughput(
            peak_flops=self.peak_flops(chosen),
            utilization=utilization,
            gpu=self.id,
            precision=chosen,
            origin=f"datasheet dense {chosen}",
        )

    def sparse_throughput(self, precision: str | None = None, utilization: float = DEFAULT_UTILIZATION) -> Throughput:
        """Per-GPU throughput at the datasheet's 2:4-sparse tensor-core peak (dense-equivalent FLOP/s: a 2:4
        matmul's dense FLOPs over this peak is its time); only for layers whose weights are all 2:4."""
        chosen = normalize_precision(precision) if precision else self.default_precision()
        sparse = self.sparse_peak_tflops.get(chosen)
        if sparse is None:
            has = ", ".join(p for p in PRECISIONS if p in self.sparse_peak_tflops)
            raise UsageError(
                f"--sparse-peak: {self.id} has no 2:4-sparse tensor-core peak at {chosen} in the catalogue",
                f"its sparse peaks are at {has}: pass --precision"
                if has
                else "this GPU has no sparse tensor cores (NVIDIA's start with Ampere): drop --sparse-peak",
            )
        return Throughput(
            peak_flops=float(sparse) * 1e12,
            utilization=utilization,
            gpu=self.id,
            precision=chosen,
            origin=f"datasheet 2:4-sparse {chosen} (dense-equivalent)",
        )

    def to_dict(self) -> dict[str, Any]:
        """The `gpus show --format json` contract (peaks in FLOP/s, dense and sparse apart)."""
        return {
            "id": self.id,
            "name": self.name,
            "vendor": self.vendor,
            "kind": self.kind,
            "aliases": list(self.aliases),
            "year": self.year,
            "form_factor": self.form_factor,
            "peak_flops": {p: float(self.peak_tflops[p]) * 1e12 for p in self.precisions},
            "sparse_peak_flops": {
                p: float(self.sparse_peak_tflops[p]) * 1e12 for p in PRECISIONS if p in self.sparse_peak_tflops
            },
            "default_precision": self.default_precision(),
            "memory_gb": self.memory_gb,
            "memory_bandwidth_gbps": self.memory_bandwidth_gbps,
            "tdp_w": self.tdp_w,
            "sources": list(self.sources),
            "notes": self.notes,
            "catalog_file": self.origin,
            "cores": self.cores,
            "core_groups": [
                {
                    "name": group.name,
                    "cores": group.cores,
                    "clock_ghz": group.clock_ghz,
                    "clock": group.clock,
                    "flop_per_cycle": {p: group.flop_per_cycle[p] for p in PRECISIONS if p in group.flop_per_cycle},
                    "flop_per_cycle_how": {p: group.how[p] for p in PRECISIONS if p in group.how},
                }
                for group in self.core_groups
            ],
            "memory_channels": self.memory_channels,
            "memory_mt_s": self.memory_mt_s,
            "intra_node_link": None if self.intra_node_link is None else self.intra_node_link.to_dict(),
            "host_link": None if self.host_link is None else self.host_link.to_dict(),
        }


def exact_decimal(value: float | int) -> Decimal:
    """The decimal a YAML number was written as (2.3 -> Decimal('2.3'), not the binary float's expansion)."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(float(value)))


def plain(value: float | int) -> str:
    """2.3 -> `2.3`, 64.0 -> `64`: a figure as the YAML gave it."""
    return format(exact_decimal(value).normalize(), "f")
