"""The one policy for "how fast is a GPU": measured matmul figures from a calibration file when one is given
(`calibrated_peak`, a benchmarked model's `model_utilization`), else the catalogue's datasheet peak. The figures
themselves come from `flopcalc.device`; this module hands it the file's measurements."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..catalog import Catalog, load_catalog
from ..compute import DEFAULT_UTILIZATION, Throughput
from ..device import Device, MatmulMeasurement, resolve_device
from ..errors import CalibrationError, UsageError
from ..units import normalize_precision
from .records import Calibration, DeviceCalibration, find_device
from .store import load_calibration


def matmul_measurement(name: str, entry: DeviceCalibration, path: object = None) -> MatmulMeasurement:
    """A device entry's matmul figures in the device room's terms (FLOP/s per precision, when, which file)."""
    matmul = entry.matmul
    return MatmulMeasurement(
        device=name,
        flops={} if matmul is None else {p: tflops * 1e12 for p, tflops in matmul.tflops.items()},
        measured_at="" if matmul is None else matmul.measured_at,
        where=str(path or ""),
    )


def calibrated_peak(calibration: Calibration, device_name: str | None, precision: str) -> tuple[float, str]:
    """Measured matmul throughput (FLOP/s) of `precision` on a device, and a label saying so.

    `convert`/`train --calibration` use it in place of the datasheet peak; `--utilization` then
    means "of measured". `device_name=None` picks the file's only device.
    """
    name, entry = calibration.device(device_name)
    where = f" in {calibration.path}" if calibration.path else ""
    if entry.matmul is None:
        raise CalibrationError(f"no matmul measurement for {name}{where}", "run `flopcalc bench --save` on it")
    peak = matmul_measurement(name, entry, calibration.path).peak(precision)
    tflops = entry.matmul.tflops[precision]
    label = f"measured {tflops:.4g} TFLOPS {precision} on {name} (flopcalc bench, {entry.matmul.measured_at[:10]})"
    return peak.value, label


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


def default_calibrated_precision(entry: DeviceCalibration) -> str:
    """Like the catalogue's default: the faster measured 16-bit precision, else fp32, else the fastest."""
    return matmul_measurement(entry.device, entry).default_precision()


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
    throughput, notes, _ = _calibrated(
        calibration,
        device_name=device_name,
        precision=precision,
        utilization=utilization,
        model=model,
        catalog=catalog,
        figures_catalog=catalog if catalog is not None else Catalog(()),
    )
    return throughput, notes


def _calibrated(
    calibration: Calibration,
    *,
    device_name: str | None,
    precision: str | None,
    utilization: float | None,
    model: str | None,
    catalog: Catalog | None,
    figures_catalog: Catalog,
) -> tuple[Throughput, tuple[str, ...], Device]:
    """`calibrated_throughput`, and the device's figures with the measurement in place of the datasheet peak;
    `catalog` finds the file's entry for a catalogue id, `figures_catalog` adds the device's other figures."""
    name, entry = find_device(calibration, device_name, catalog)
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
    if entry.matmul is None:
        where = f" in {calibration.path}" if calibration.path else ""
        if chosen is None:
            raise CalibrationError("the calibration holds no matmul measurement", "run `flopcalc bench --save`")
        raise CalibrationError(f"no matmul measurement for {name}{where}", "run `flopcalc bench --save` on it")
    measured = matmul_measurement(name, entry, calibration.path)
    if chosen is None:
        chosen = measured.default_precision()
    device = resolve_device(device_name or name, chosen, catalog=figures_catalog, measured=measured)
    throughput = Throughput(
        peak_flops=device.peak.value,
        utilization=DEFAULT_UTILIZATION if utilization is None else utilization,
        gpu=name,
        precision=device.precision,
        origin=f"{device.peak.source}; utilization is of measured",
    )
    return throughput, tuple(notes), device


@dataclass(frozen=True)
class ThroughputChoice:
    """The per-GPU throughput a conversion uses, the GPU's power for energy, and where the figures came from;
    `device` holds every figure of the GPU (memory, bandwidth, links) as `flopcalc.device` resolved them."""

    throughput: Throughput
    tdp_w: float | None
    device: Device
    notes: tuple[str, ...] = ()


def choose_throughput(
    *,
    gpu: str | None = None,
    precision: str | None = None,
    utilization: float | None = None,
    calibration: str | os.PathLike | None = None,
    catalogs: Sequence[str | os.PathLike] = (),
    model_key: str | None = None,
    sparse_peak: bool = False,
) -> ThroughputChoice:
    """The one policy for "how fast is a GPU": measured when a calibration file is given, else the datasheet.

    - With `calibration` (a file, or "auto"): the measured matmul figure of `gpu` (or the file's only device),
      and a benchmarked model's measured utilisation when `model_key` names one (`utilization` must then be
      None: one of the two would silently lose).
    - Else the catalogue's dense peak of `gpu` (required) at `precision` (default: its fastest 16-bit one).
    - `sparse_peak`: the catalogue's 2:4-sparse tensor-core peak instead (never measured; refused for a GPU
      whose entry has none at that precision). The caller checks that the model's weights are 2:4.
    `utilization` None means the default (0.3). The TDP comes from the catalogue when the GPU is in it.
    """
    catalog = load_catalog(tuple(catalogs))
    if sparse_peak and calibration is not None:
        raise UsageError(
            "--sparse-peak uses the datasheet's 2:4-sparse peak; a calibration file holds measured dense figures",
            "drop --calibration, or drop --sparse-peak",
        )
    if calibration is not None:
        throughput, notes, device = _calibrated(
            load_calibration(calibration),
            device_name=gpu,
            precision=precision,
            utilization=utilization,
            model=model_key,
            catalog=catalog if gpu else None,
            figures_catalog=catalog,
        )
        return ThroughputChoice(throughput, device.tdp_w, device, notes)
    device = resolve_device(gpu, precision, catalog=catalog)
    chosen = DEFAULT_UTILIZATION if utilization is None else utilization
    if sparse_peak:
        throughput = catalog.resolve(str(gpu)).sparse_throughput(device.precision, chosen)
        return ThroughputChoice(throughput, device.tdp_w, device)
    return ThroughputChoice(
        Throughput(
            peak_flops=device.peak.value,
            utilization=chosen,
            gpu=device.id,
            precision=device.precision,
            origin=device.peak.source,
        ),
        device.tdp_w,
        device,
    )
