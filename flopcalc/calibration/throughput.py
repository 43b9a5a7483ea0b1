"""The one policy for "how fast is a GPU": measured matmul figures from a calibration file when one is given
(`calibrated_peak`, a benchmarked model's `model_utilization`), else the catalogue's datasheet peak."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from ..catalog import Catalog, load_catalog
from ..compute import DEFAULT_UTILIZATION, Throughput
from ..errors import CalibrationError, FlopcalcError, UsageError
from ..units import normalize_precision
from .records import Calibration, DeviceCalibration, find_device
from .store import load_calibration


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
