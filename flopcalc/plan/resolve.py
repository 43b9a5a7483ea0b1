"""Where a plan's GPU figures come from: one function from plain values (a GPU name, catalogues, a calibration
file, overrides) to the Fleet, each figure labelled with its origin. The figures are `flopcalc.device`'s; this
adds the user's overrides and the measured network. The CLI only parses and hands them here."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..calibration import MeasuredBandwidths, choose_throughput, load_calibration, measured_bandwidths, profile_file_of
from ..catalog import load_catalog
from ..compute import Throughput
from ..device import (
    ASSUMED_INTER_NODE_SOURCE,
    Device,
    DeviceProfile,
    Figure,
    load_profiles,
    profile_for,
    profiled_device,
    with_bus_bandwidth,
    with_network,
)
from ..emissions import GridIntensity
from ..errors import CalibrationError, UsageError
from ..predict import datasheet_profile
from ..units import GIB
from .checks import positive
from .hardware import (
    DEFAULT_GPUS_PER_NODE,
    RESERVE_CONTEXT_GIB,
    RESERVE_FRAGMENTATION,
    Bandwidth,
    Fleet,
    default_reserve_bytes,
)
from .model import PlanModel
from .precision import training_precision
from .predicted import PREDICTED_PRECISIONS, predicted_utilization, training_prediction

INTER_NODE_ORIGIN = ASSUMED_INTER_NODE_SOURCE


def calibrated_bandwidths(
    calibration: Any, device: str | None, catalog: Any = None
) -> tuple[MeasuredBandwidths | None, tuple[str, ...]]:
    """The network figures `flopcalc bench --distributed --save` measured on a fleet of `device` (a
    calibration.MeasuredBandwidths), or None and a line saying so; (None, ()) without a calibration file."""
    if calibration is None:
        return None, ()
    try:
        return measured_bandwidths(load_calibration(calibration), device, catalog=catalog), ()
    except CalibrationError as error:
        return None, (f"no measured bandwidths ({error.message}): the network figures below are not measurements",)


def resolve_fleet(
    *,
    gpu: str | None,
    precision: str | None = None,
    utilization: float | None = None,
    calibration: str | os.PathLike | None = None,
    catalogs: Sequence[str | os.PathLike] = (),
    model_key: str | None = None,
    gpu_memory_gib: float | None = None,
    memory_reserve_gib: float | None = None,
    intra_node_gbps: float | None = None,
    inter_node_gbps: float | None = None,
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE,
    pue: float = 1.0,
    price_per_gpu_hour: float | None = None,
    grid: GridIntensity | None = None,
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
    choice = choose_throughput(
        gpu=gpu,
        precision=precision,
        utilization=utilization,
        calibration=calibration,
        catalogs=catalogs,
        model_key=model_key,
    )
    throughput = choice.throughput
    training_precision(throughput.precision)
    name = gpu or throughput.gpu
    measured, notes = calibrated_bandwidths(calibration, name, load_catalog(tuple(catalogs)))
    device = choice.device if measured is None else with_network(choice.device, measured.links())
    memory, memory_origin = _gpu_memory(gpu_memory_gib, device, name)
    reserve, reserve_origin = _memory_reserve(memory_reserve_gib, memory)
    intra = _link(intra_node_gbps, "--intra-node-gbps", device.intra_node)
    inter = _link(inter_node_gbps, "--inter-node-gbps", device.inter_node)
    assert inter is not None  # the device always has an inter-node figure (measured or assumed)
    bf16 = _bf16_choice(throughput, gpu, calibration, catalogs)
    # fp8 training is predicted on the GPU's bf16 profile, its blocks' linear GEMMs then at the fp8 peak (fp8.py)
    profile, timing = step_profile(
        choice.device if bf16 is None else bf16.device,
        utilization=utilization,
        calibration=calibration,
        profile_file=profile_file,
        gpus_per_node=gpus_per_node,
    )
    if profile is not None:  # bus bandwidths given or measured replace the profile's
        profile = _with_chosen_links(
            profile,
            (
                ("intra_node", intra_node_gbps, device.intra_node, intra),
                ("inter_node", inter_node_gbps, device.inter_node, inter),
            ),
        )
    return Fleet(
        throughput=throughput,
        gpu_memory_bytes=memory,
        memory_origin=memory_origin,
        gpus_per_node=gpus_per_node,
        intra_node=intra,
        inter_node=inter,
        tdp_w=choice.tdp_w,
        pue=pue,
        price_per_gpu_hour=price_per_gpu_hour,
        notes=notes,
        memory_reserve_bytes=reserve,
        reserve_origin=reserve_origin,
        profile=profile,
        timing_notes=timing,
        grid=grid,
        bf16_throughput=None if bf16 is None else bf16.throughput,
    )


def _gpu_memory(gpu_memory_gib: float | None, device: Device, name: str | None) -> tuple[float, str]:
    """One GPU's memory in bytes and its origin: --gpu-memory, else the catalogue's figure."""
    if gpu_memory_gib is not None:
        return positive(gpu_memory_gib, "--gpu-memory") * GIB, "--gpu-memory"
    if device.memory_bytes is not None:
        return device.memory_bytes.value, device.memory_bytes.source
    raise UsageError(f"the catalogue has no memory figure for {name}", "give --gpu-memory GiB")


def _memory_reserve(memory_reserve_gib: float | None, memory: float) -> tuple[float, str]:
    """The bytes kept back from `memory` and their origin: --memory-reserve, else the default rule."""
    if memory_reserve_gib is not None:
        if not isinstance(memory_reserve_gib, (int, float)) or not memory_reserve_gib >= 0:
            raise UsageError(f"--memory-reserve must be a number of GiB >= 0, got {memory_reserve_gib!r}")
        return memory_reserve_gib * GIB, "--memory-reserve"
    return default_reserve_bytes(memory), (
        f"default: {RESERVE_CONTEXT_GIB:g} GiB for the CUDA context and library workspaces + "
        f"{RESERVE_FRAGMENTATION:.0%} of the memory for allocator fragmentation; "
        "--memory-reserve GiB changes it"
    )


def _with_chosen_links(
    profile: DeviceProfile, scopes: Sequence[tuple[str, float | None, Figure | None, Bandwidth | None]]
) -> DeviceProfile:
    """The profile with each scope's bus bandwidth replaced where the user gave one or the calibration measured
    it (scope, the figure given, the device's figure, the link the plan uses)."""
    for scope, given, figure, link in scopes:
        if link is not None and (given is not None or (figure is not None and figure.origin == "measured")):
            profile = with_bus_bandwidth(profile, scope, link.gbps, link.origin)
    return profile


def _bf16_choice(throughput: Any, gpu: str | None, calibration: Any, catalogs: Sequence[str | os.PathLike]) -> Any:
    """Under fp8 training, the same GPU at bf16, for the ops that stay in bf16 and the profile the step is
    predicted on (plan/fp8.py); else None."""
    if throughput.precision != "fp8":
        return None
    return choose_throughput(
        gpu=gpu or throughput.gpu,
        precision="bf16",
        utilization=throughput.utilization,
        calibration=calibration,
        catalogs=catalogs,
    )


def _link(given: float | None, flag: str, resolved: Figure | None) -> Bandwidth | None:
    """The figure the user gave, else the device's (a measured busbw or the catalogue's link peak)."""
    if given is not None:
        return Bandwidth(given, flag)
    return None if resolved is None else Bandwidth(resolved.value, resolved.source)


def step_profile(
    device: Device,
    *,
    utilization: float | None = None,
    calibration: str | os.PathLike | None = None,
    profile_file: Path | None = None,
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE,
) -> tuple[DeviceProfile | None, tuple[str, ...]]:
    """The device profile the step-time model runs on, and lines saying where it came from; None (and why) when
    the step is timed at peak x utilization instead. A profile file without this GPU is refused: a profile
    measured on one device does not apply to another."""
    if utilization is not None:
        return None, (
            f"--utilization {utilization:g} replaced the step-time prediction: compute at peak x "
            f"{utilization:g}, communication added on top (docs/plan.md)",
        )
    if calibration is not None:
        return None, (
            "the calibration file holds a measured matmul peak, not a device profile: step time is that "
            "peak x utilization, not a prediction (give a device profile file for one)",
        )
    precision = device.precision
    if device.accelerator is None:
        return None, ("the catalogue does not know this GPU: no device profile, step time is peak x utilization",)
    if precision not in PREDICTED_PRECISIONS:
        return None, (
            f"the step-time model covers 16-bit training (bf16, fp16), not {precision}: step time is peak "
            "x utilization",
        )
    if profile_file is not None:
        return profile_for(device.id, profile_file, precision=precision), (
            f"device profile of {device.id} from {profile_file}",
        )
    shipped = load_profiles(precision=precision)
    if device.id in shipped:
        return shipped[device.id], (f"device profile of {device.id}: the shipped one (docs/validation.md)",)
    profile, line = datasheet_profile(device, gpus_per_node=gpus_per_node)
    return profile, (line,) if profile is not None else (f"{line}: step time is peak x utilization",)


def training_throughput(
    throughput: Throughput,
    model: PlanModel | None,
    *,
    device: Device,
    num_gpus: int = 1,
    profile_file: Path | None = None,
    utilization_given: bool = False,
) -> tuple[Throughput, tuple[str, ...]]:
    """`train`'s per-GPU throughput. With a device profile file and no --utilization: the utilization at which the
    model's counted FLOPs take the step the step-time model predicts on that profile (data parallel, one counted
    batch per GPU). Otherwise `throughput` as it is, with the predicted MFU on the GPU's profile (shipped, or
    from its datasheet) as a line when the model has a transformer shape, or a line saying why not."""
    if model is None:
        if profile_file is not None and not utilization_given:
            raise UsageError(
                "a device profile predicts the step of a MODEL file (its transformer shape), not of FLOPs "
                "per example or 6ND",
                "give a MODEL, or --gpu with --utilization",
            )
        return throughput, ("no predicted MFU: the step-time model needs a MODEL file with a transformer shape",)
    profile, origin = step_profile(device, profile_file=profile_file)
    if profile is None:
        return throughput, (f"no predicted MFU: {origin[0]}",)
    prediction, lines = training_prediction(model, profile, num_gpus)
    if prediction is None:
        return throughput, lines
    utilization = min(1.0, predicted_utilization(model, prediction, throughput.peak_flops))
    summary = (
        f"predicted MFU {utilization:.1%}: a step of {prediction.step_s:.4g} s by the step-time model ({origin[0]})"
    )
    if profile_file is not None and not utilization_given:
        return (
            replace(
                throughput,
                utilization=utilization,
                origin=f"{throughput.origin}; utilization predicted on the device profile",
            ),
            (summary, *lines),
        )
    tail = (
        "--utilization replaced it"
        if utilization_given
        else f"this estimate uses utilization {throughput.utilization:g}: give a device profile file as --calibration "
        "to use the prediction"
    )
    return throughput, (f"{summary}; {tail}", *lines)
