"""The GPU a serving bound is priced on: the peak, bandwidth and memory `flopcalc.device` resolves (through the
throughput policy, so a calibration's measured peak counts), at the serving and the compute precision; and, when
`--calibration` is a device profile file, that device's profile, which turns the roofline into a prediction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..calibration import choose_throughput, profile_file_of
from ..device import DeviceProfile, profile_for, profiled_device
from ..errors import CatalogError
from ..units import normalize_precision


@dataclass(frozen=True)
class Hardware:
    """The peak that prices FLOPs, the bandwidth that prices bytes, the memory that must hold it all."""

    gpu: str
    precision: str
    peak_flops: float  # FLOP/s (ops/s for int8), dense
    peak_origin: str
    bandwidth: float  # bytes/s
    memory_bytes: float | None  # None when the catalogue has no memory size
    # size-dependent rates from a device profile file: each layer's time is predicted, not bounded
    profile: DeviceProfile | None = None
    profile_origin: str = ""  # the file the profile came from

    @property
    def time_model(self) -> str:
        """`predicted` on a device profile, `roofline` (lower bounds at the peak and bandwidth) without one."""
        return "roofline" if self.profile is None else "predicted"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.gpu,
            "precision": self.precision,
            "peak_tflops": self.peak_flops / 1e12,
            "peak_origin": self.peak_origin,
            "bandwidth_gbps": self.bandwidth / 1e9,
            "memory_gb": None if self.memory_bytes is None else self.memory_bytes / 2**30,  # GiB, as the catalogue
        }


def resolve_hardware(
    gpu: str | None,
    precision: str | None = None,
    compute_precision: str | None = None,
    *,
    calibration: str | None = None,
    catalogs: Sequence[str] = (),
    sparse_peak: bool = False,
) -> tuple[Hardware, str]:
    """The GPU's peak at the compute precision (datasheet, or measured with a calibration), its bandwidth and
    memory from the catalogue; and the serving precision (--precision, default the GPU's fastest 16-bit one).
    A `calibration` that is a device profile file attaches the GPU's profile at the compute precision (the GPU
    defaults to the one it profiles); a file without a profile of this GPU is refused: a profile measured on one
    device does not apply to another."""
    profile_file = profile_file_of(calibration)
    if profile_file is not None:  # the datasheet's peak, the profile's size-dependent rates
        calibration = None
        gpu = gpu or profiled_device(profile_file, precision)
    base = choose_throughput(gpu=gpu, precision=precision, calibration=calibration, catalogs=catalogs)
    serving = base.throughput.precision
    compute = normalize_precision(compute_precision) if compute_precision else serving
    chosen = (
        base
        if compute == serving and not sparse_peak
        else choose_throughput(
            gpu=gpu, precision=compute, calibration=calibration, catalogs=catalogs, sparse_peak=sparse_peak
        )
    )
    device = chosen.device
    if device.accelerator is None:
        raise CatalogError(
            f"{device.id} is not in the GPU catalogue, so it has no memory bandwidth ({device.catalog_miss})",
            "pass --gpu with a catalogue id, or add the GPU with --catalog FILE",
        )
    if device.memory_bandwidth is None:
        raise CatalogError(
            f"{device.id} has no memory bandwidth in the catalogue",
            "add memory_bandwidth_gbps (GB/s) to its entry with --catalog FILE (docs/catalogue.md)",
        )
    memory = None if device.memory_bytes is None else device.memory_bytes.value
    throughput = chosen.throughput
    profile = None if profile_file is None else profile_for(device.id, profile_file, precision=throughput.precision)
    hardware = Hardware(
        device.id,
        throughput.precision,
        throughput.peak_flops,
        throughput.origin,
        device.memory_bandwidth.value,
        memory,
        profile,
        "" if profile_file is None else str(profile_file),
    )
    return hardware, serving
