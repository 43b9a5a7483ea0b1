"""Where a plan's GPU figures come from: one function from plain values (a GPU name, catalogues, a calibration
file, overrides) to the Fleet, each figure labelled with its origin. The figures are `flopcalc.device`'s; this
adds the user's overrides and the measured network. The CLI only parses and hands them here."""

from __future__ import annotations

import os
from typing import Any, Sequence

from ..calibration import MeasuredBandwidths, choose_throughput, load_calibration, measured_bandwidths
from ..catalog import load_catalog
from ..device import ASSUMED_INTER_NODE_SOURCE, Figure, with_network
from ..errors import CalibrationError, UsageError
from .checks import positive
from .hardware import (DEFAULT_GPUS_PER_NODE, GIB, RESERVE_CONTEXT_GIB, RESERVE_FRAGMENTATION, Bandwidth, Fleet,
                       default_reserve_bytes)
from .precision import training_precision

INTER_NODE_ORIGIN = ASSUMED_INTER_NODE_SOURCE


def calibrated_bandwidths(calibration: Any, device: str | None,
                          catalog: Any = None) -> tuple[MeasuredBandwidths | None, tuple[str, ...]]:
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
) -> Fleet:
    """The fleet of `gpu`s a plan runs on: its FLOP/s measured (`calibration`) or from the datasheet, its memory
    and links from the overrides, else the calibration's measurements, else the catalogue; the inter-node link
    otherwise assumed. `Fleet.notes` says where the network figures did not come from a measurement asked for."""
    if gpu is None and calibration is None:
        raise UsageError("no GPU given", "pass --gpu NAME (or --calibration FILE|auto)")
    choice = choose_throughput(gpu=gpu, precision=precision, utilization=utilization, calibration=calibration,
                               catalogs=catalogs, model_key=model_key)
    throughput = choice.throughput
    training_precision(throughput.precision)
    name = gpu or throughput.gpu
    measured, notes = calibrated_bandwidths(calibration, name, load_catalog(tuple(catalogs)))
    device = choice.device if measured is None else with_network(choice.device, measured.links())
    if gpu_memory_gib is not None:
        memory, memory_origin = positive(gpu_memory_gib, "--gpu-memory") * GIB, "--gpu-memory"
    elif device.memory_bytes is not None:
        memory, memory_origin = device.memory_bytes.value, device.memory_bytes.source
    else:
        raise UsageError(f"the catalogue has no memory figure for {name}", "give --gpu-memory GiB")
    if memory_reserve_gib is not None:
        if not isinstance(memory_reserve_gib, (int, float)) or not memory_reserve_gib >= 0:
            raise UsageError(f"--memory-reserve must be a number of GiB >= 0, got {memory_reserve_gib!r}")
        reserve, reserve_origin = memory_reserve_gib * GIB, "--memory-reserve"
    else:
        reserve = default_reserve_bytes(memory)
        reserve_origin = (f"default: {RESERVE_CONTEXT_GIB:g} GiB for the CUDA context and library workspaces + "
                          f"{RESERVE_FRAGMENTATION:.0%} of the memory for allocator fragmentation; "
                          "--memory-reserve GiB changes it")
    return Fleet(
        throughput=throughput, gpu_memory_bytes=memory, memory_origin=memory_origin, gpus_per_node=gpus_per_node,
        intra_node=_link(intra_node_gbps, "--intra-node-gbps", device.intra_node),
        inter_node=Bandwidth(inter_node_gbps, "--inter-node-gbps") if inter_node_gbps is not None
        else Bandwidth(device.inter_node.value, device.inter_node.source),
        tdp_w=choice.tdp_w, pue=pue, price_per_gpu_hour=price_per_gpu_hour, notes=notes,
        memory_reserve_bytes=reserve, reserve_origin=reserve_origin,
    )


def _link(given: float | None, flag: str, resolved: Figure | None) -> Bandwidth | None:
    """The figure the user gave, else the device's (a measured busbw or the catalogue's link peak)."""
    if given is not None:
        return Bandwidth(given, flag)
    return None if resolved is None else Bandwidth(resolved.value, resolved.source)
