"""Where a plan's GPU figures come from: one function from plain values (a GPU name, catalogues, a calibration
file, overrides) to the Fleet, each figure labelled with its origin. The CLI only parses and hands them here."""

from __future__ import annotations

import os
from typing import Any, Sequence

from dataclasses import replace
from pathlib import Path

from ..calibration import choose_throughput, load_calibration, measured_bandwidths
from ..catalog import Catalog, GpuSpec, load_catalog
from ..compute import Throughput
from ..errors import CalibrationError, FlopcalcError, UsageError
from ..predict import (DeviceProfile, datasheet_profile, load_profiles, profile_file_of, profile_for,
                       profiled_device, with_bus_bandwidth)
from .hardware import DEFAULT_GPUS_PER_NODE, DEFAULT_INTER_NODE_GBPS, GB, Bandwidth, Fleet
from .model import PlanModel
from .precision import training_precision
from .predicted import PREDICTED_PRECISIONS, predicted_utilization, training_prediction

INTER_NODE_ORIGIN = ("assumed: one 200 Gb/s InfiniBand HDR NIC per GPU, as in a DGX A100; give --inter-node-gbps "
                     "(nccl-tests busbw across nodes)")


def calibrated_bandwidths(calibration: Any, device: str | None, catalog: Any = None) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The network figures `flopcalc bench --distributed --save` measured on a fleet of `device` (see
    calibration.measured_bandwidths), or none and a line saying so; ({}, ()) without a calibration file."""
    if calibration is None:
        return {}, ()
    try:
        return measured_bandwidths(load_calibration(calibration), device, catalog=catalog), ()
    except CalibrationError as error:
        return {}, (f"no measured bandwidths ({error.message}): the network figures below are not measurements",)


def resolve_fleet(
    *,
    gpu: str | None,
    precision: str | None = None,
    utilization: float | None = None,
    calibration: str | os.PathLike | None = None,
    catalogs: Sequence[str | os.PathLike] = (),
    model_key: str | None = None,
    gpu_memory_gb: float | None = None,
    intra_node_gbps: float | None = None,
    inter_node_gbps: float | None = None,
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE,
    pue: float = 1.0,
    price_per_gpu_hour: float | None = None,
) -> Fleet:
    """The fleet of `gpu`s a plan runs on: its FLOP/s measured (`calibration`) or from the datasheet, its memory
    and links from the overrides, else the calibration's measurements, else the catalogue; the inter-node link
    otherwise assumed. `Fleet.notes` says where the network figures did not come from a measurement asked for."""
    if gpu is None and calibration is None:
        raise UsageError("no GPU given", "pass --gpu NAME (or --calibration FILE|auto)")
    profile_file = profile_file_of(calibration)
    if profile_file is not None:  # a device profile file: the datasheet's peak, the profile's rates
        calibration = None
        gpu = gpu or profiled_device(profile_file, precision)
    choice = choose_throughput(gpu=gpu, precision=precision, utilization=utilization, calibration=calibration,
                               catalogs=catalogs, model_key=model_key)
    throughput = choice.throughput
    training_precision(throughput.precision)
    name = gpu or throughput.gpu
    catalog = load_catalog(tuple(catalogs))
    entry = _catalog_entry(catalog, name)
    if gpu_memory_gb is not None:
        memory, memory_origin = gpu_memory_gb * GB, "--gpu-memory"
    elif entry is not None and entry.memory_gb:
        memory, memory_origin = entry.memory_gb * GB, f"catalogue, {entry.id}"
    else:
        raise UsageError(f"the catalogue has no memory figure for {name}", "give --gpu-memory GB")
    measured, notes = calibrated_bandwidths(calibration, name, catalog)
    intra, inter = _intra_node(intra_node_gbps, measured, entry), _inter_node(inter_node_gbps, measured)
    profile, timing = step_profile(entry, throughput.precision, utilization=utilization, calibration=calibration,
                                   profile_file=profile_file, gpus_per_node=gpus_per_node)
    if profile is not None:  # bus bandwidths given or measured replace the profile's
        for scope, link in (("intra_node", intra), ("inter_node", inter)):
            if link is not None and (link.origin.startswith("--") or link.origin.startswith("measured")):
                profile = with_bus_bandwidth(profile, scope, link.gbps, link.origin)
    return Fleet(
        throughput=throughput, gpu_memory_bytes=memory, memory_origin=memory_origin, gpus_per_node=gpus_per_node,
        intra_node=intra, inter_node=inter, tdp_w=choice.tdp_w, pue=pue, price_per_gpu_hour=price_per_gpu_hour,
        notes=notes, profile=profile, timing_notes=timing,
    )


def step_profile(entry: GpuSpec | None, precision: str, *, utilization: float | None = None,
                 calibration: str | os.PathLike | None = None, profile_file: Path | None = None,
                 gpus_per_node: int = DEFAULT_GPUS_PER_NODE) -> tuple[DeviceProfile | None, tuple[str, ...]]:
    """The device profile the step-time model runs on, and lines saying where it came from; None (and why) when
    the step is timed at peak x utilization instead. A profile file without this GPU is refused: a profile
    measured on one device does not apply to another."""
    if utilization is not None:
        return None, (f"--utilization {utilization:g} replaced the step-time prediction: compute at peak x "
                      f"{utilization:g}, communication added on top (docs/plan.md)",)
    if calibration is not None:
        return None, ("the calibration file holds a measured matmul peak, not a device profile: step time is that "
                      "peak x utilization, not a prediction (give a device profile file for one)",)
    if entry is None:
        return None, ("the catalogue does not know this GPU: no device profile, step time is peak x utilization",)
    if precision not in PREDICTED_PRECISIONS:
        return None, (f"the step-time model covers 16-bit training (bf16, fp16), not {precision}: step time is peak "
                      "x utilization",)
    if profile_file is not None:
        return profile_for(entry.id, profile_file, precision=precision), (f"device profile of {entry.id} from "
                                                                          f"{profile_file}",)
    shipped = load_profiles(precision=precision)
    if entry.id in shipped:
        return shipped[entry.id], (f"device profile of {entry.id}: the shipped one (docs/validation.md)",)
    profile, line = datasheet_profile(entry, precision, gpus_per_node=gpus_per_node)
    return profile, (line,) if profile is not None else (f"{line}: step time is peak x utilization",)



def _catalog_entry(catalog: Catalog, name: str) -> GpuSpec | None:
    try:
        return catalog.resolve(name)
    except FlopcalcError:
        return None  # a calibrated device the catalogue lacks


def _intra_node(given: float | None, measured: dict[str, Any], entry: GpuSpec | None) -> Bandwidth | None:
    """--intra-node-gbps, else the calibration's all-reduce busbw inside a node, else the catalogue's link peak."""
    if given is not None:
        return Bandwidth(given, "--intra-node-gbps")
    if measured.get("intra_node_busbw_gbps"):
        return Bandwidth(measured["intra_node_busbw_gbps"], f"{measured['label']}, all-reduce busbw")
    if entry is not None and entry.intra_node_link is not None:
        link = entry.intra_node_link
        return Bandwidth(link.per_direction_gbps, f"catalogue, {entry.id}: {link.describe()}; a link peak, not a "
                         "measured bus bandwidth: give --intra-node-gbps to use nccl-tests' busbw")
    return None


def _inter_node(given: float | None, measured: dict[str, Any]) -> Bandwidth:
    """--inter-node-gbps, else the calibration's all-reduce busbw between nodes, else one HDR NIC per GPU."""
    if given is not None:
        return Bandwidth(given, "--inter-node-gbps")
    if measured.get("inter_node_busbw_gbps"):
        return Bandwidth(measured["inter_node_busbw_gbps"], f"{measured['label']}, all-reduce busbw")
    return Bandwidth(DEFAULT_INTER_NODE_GBPS, INTER_NODE_ORIGIN)


def training_throughput(throughput: Throughput, model: PlanModel | None, *, num_gpus: int = 1,
                        profile_file: Path | None = None, utilization_given: bool = False,
                        catalogs: Sequence[str | os.PathLike] = ()) -> tuple[Throughput, tuple[str, ...]]:
    """`train`'s per-GPU throughput. With a device profile file and no --utilization: the utilization at which the
    model's counted FLOPs take the step the step-time model predicts on that profile (data parallel, one counted
    batch per GPU). Otherwise `throughput` as it is, with the predicted MFU on the GPU's profile (shipped, or
    from its datasheet) as a line when the model has a transformer shape, or a line saying why not."""
    if model is None:
        if profile_file is not None and not utilization_given:
            raise UsageError("a device profile predicts the step of a MODEL file (its transformer shape), not of FLOPs "
                             "per example or 6ND", "give a MODEL, or --gpu with --utilization")
        return throughput, ("no predicted MFU: the step-time model needs a MODEL file with a transformer shape",)
    entry = _catalog_entry(load_catalog(tuple(catalogs)), throughput.gpu)
    profile, origin = step_profile(entry, throughput.precision, profile_file=profile_file)
    if profile is None:
        return throughput, (f"no predicted MFU: {origin[0]}",)
    prediction, lines = training_prediction(model, profile, num_gpus)
    if prediction is None:
        return throughput, lines
    utilization = min(1.0, predicted_utilization(model, prediction, throughput.peak_flops))
    summary = (f"predicted MFU {utilization:.1%}: a step of {prediction.step_s:.4g} s by the step-time model "
               f"({origin[0]})")
    if profile_file is not None and not utilization_given:
        return (replace(throughput, utilization=utilization,
                        origin=f"{throughput.origin}; utilization predicted on the device profile"), (summary, *lines))
    tail = ("--utilization replaced it" if utilization_given else
            f"this estimate uses utilization {throughput.utilization:g}: give a device profile file as --calibration "
            "to use the prediction")
    return throughput, (f"{summary}; {tail}", *lines)
