"""The peaks an MFU divides by: a figure the user gives, the datasheet's dense peak, the measured matmul peak.

Each peak carries a label that says what it is, so no MFU is printed without its denominator. The datasheet
peak is `flopcalc.device`'s (the device name torch reports, or a name given); the measured one comes from a
calibration file written by `flopcalc bench --save`, through the same resolver.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..calibration import calibrated_throughput, load_calibration
from ..catalog import load_catalog
from ..device import cpu_peak_estimate, read_cpu_info, resolve_device
from ..errors import CatalogError, UsageError
from ..units import format_number, normalize_precision

# the order figures are listed in; the first one present is "the" MFU
PEAK_KINDS = ("given", "datasheet", "measured")


@dataclass(frozen=True)
class Peak:
    """FLOP/s an MFU divides by. `kind` is given | datasheet | measured (a CPU the catalogue lacks has its
    estimated peak, cores x clock x FLOP per cycle, as its datasheet one: the label says so); `label` says where
    it came from."""

    kind: str
    flops: float
    label: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "peak_flops": self.flops, "label": self.label}


def resolve_peaks(
    *,
    device_name: str | None,
    gpu_given: bool,
    precision: str | None = None,
    peak_flops: float | None = None,
    calibration: str | os.PathLike | None = None,
    catalogs: Sequence[str | os.PathLike] = (),
) -> tuple[tuple[Peak, ...], tuple[str, ...]]:
    """The peaks of one device, and notes on the ones that could not be had.

    - `peak_flops`: a figure the user gives (FLOP/s), labelled as such.
    - the datasheet's dense peak of `device_name` at `precision` (default: the GPU's fastest 16-bit one); a
      name the user gave (`gpu_given`) that the catalogue lacks is an error, a detected one (a CPU) a note.
      Without a name (no CUDA device), the catalogue's entry for this machine's CPU when it names one, else
      the CPU's estimated peak (cores x clock x FLOP per cycle from its SIMD flags).
    - the measured matmul peak of the device in `calibration` (a file, or "auto").
    """
    peaks: list[Peak] = []
    if peak_flops is not None:
        peaks.append(_given_peak(peak_flops))
    catalog = load_catalog(tuple(catalogs))
    if device_name:
        datasheet, note = _named_device_peak(device_name, precision, catalog, gpu_given)
    else:
        datasheet, note = _cpu_peak(precision, catalog)
    peaks += [datasheet] if datasheet is not None else []
    if calibration is not None:
        peaks.append(_measured_peak(calibration, device_name, precision, catalog))
    return tuple(peaks), (note,) if note is not None else ()


def _given_peak(peak_flops: float) -> Peak:
    """The peak the caller gives, checked to be a positive number of FLOP/s."""
    if isinstance(peak_flops, bool) or not isinstance(peak_flops, (int, float)) or not peak_flops > 0:
        raise UsageError(f"peak_flops must be a positive number of FLOP/s, got {peak_flops!r}")
    return Peak("given", float(peak_flops), f"given peak {format_number(peak_flops / 1e12)} TFLOP/s")


def _named_device_peak(device_name: str, precision, catalog, gpu_given: bool) -> tuple[Peak | None, str | None]:
    """The datasheet peak of a named device; a name the user gave that the catalogue lacks is an error, a
    detected one a note."""
    try:
        device = resolve_device(device_name, precision, catalog=catalog)
    except CatalogError as error:
        if gpu_given:
            raise
        return None, f"no datasheet peak: {error.message}"
    flops = device.peak.value
    return Peak(
        "datasheet", flops, f"{device.peak.source} peak of {device.id}: {format_number(flops / 1e12)} TFLOP/s"
    ), None


def _cpu_peak(precision, catalog) -> tuple[Peak | None, str | None]:
    """This machine's CPU: the catalogue's peak when it names the CPU, else the estimate from its cores, clock
    and SIMD flags, else a note saying neither could be had."""
    cpu = read_cpu_info()
    entry = catalog.match_cpu(cpu.model_name)
    chosen = normalize_precision(precision) if precision else "fp32"
    estimate = cpu_peak_estimate(cpu, chosen)
    if entry is not None and chosen in entry.peak_tflops:
        figures = resolve_device(entry.id, chosen, catalog=catalog)
        flops = figures.peak.value
        return Peak(
            "datasheet",
            flops,
            f"{figures.peak.source} peak of the CPU {figures.id} (all "
            f"{entry.cores} cores): {format_number(flops / 1e12)} TFLOP/s",
        ), None
    if estimate is not None:  # a CPU the catalogue lacks: what its cores, clock and SIMD flags give
        flops, how = estimate
        return Peak(
            "datasheet",
            flops,
            f"{chosen} peak of the CPU {cpu.model_name}, not in the catalogue, "
            f"by {how}: {format_number(flops / 1e12)} TFLOP/s",
        ), None
    return None, (
        f"no datasheet peak: no device name (this CPU, {cpu.model_name}, is not in the catalogue "
        f"and its {chosen} peak cannot be estimated; pass device_name='H100-SXM' or the like)"
    )


def _measured_peak(calibration, device_name: str | None, precision, catalog) -> Peak:
    """The measured matmul peak of the device in the calibration file."""
    throughput, _ = calibrated_throughput(
        load_calibration(calibration),
        device_name=device_name,
        precision=precision,
        catalog=catalog if device_name else None,
    )
    return Peak(
        "measured",
        throughput.peak_flops,
        f"measured {throughput.precision} matmul peak of {throughput.gpu}: "
        f"{format_number(throughput.peak_flops / 1e12)} TFLOP/s ({throughput.origin.split(';')[0]})",
    )
