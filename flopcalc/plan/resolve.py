"""Where a plan's GPU figures come from: one function from plain values (a GPU name, catalogues, a calibration
file, overrides) to the Fleet, each figure labelled with its origin. The CLI only parses and hands them here."""

from __future__ import annotations

import os
from typing import Any, Sequence

from ..calibration import MeasuredBandwidths, choose_throughput, load_calibration, measured_bandwidths
from ..catalog import Accelerator, Catalog, load_catalog
from ..errors import CalibrationError, FlopcalcError, UsageError
from .hardware import DEFAULT_GPUS_PER_NODE, DEFAULT_INTER_NODE_GBPS, GB, Bandwidth, Fleet
from .precision import training_precision

INTER_NODE_ORIGIN = ("assumed: one 200 Gb/s InfiniBand HDR NIC per GPU, as in a DGX A100; give --inter-node-gbps "
                     "(nccl-tests busbw across nodes)")


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
    return Fleet(
        throughput=throughput, gpu_memory_bytes=memory, memory_origin=memory_origin, gpus_per_node=gpus_per_node,
        intra_node=_intra_node(intra_node_gbps, measured, entry), inter_node=_inter_node(inter_node_gbps, measured),
        tdp_w=choice.tdp_w, pue=pue, price_per_gpu_hour=price_per_gpu_hour, notes=notes,
    )


def _catalog_entry(catalog: Catalog, name: str) -> Accelerator | None:
    try:
        return catalog.resolve(name)
    except FlopcalcError:
        return None  # a calibrated device the catalogue lacks


def _intra_node(given: float | None, measured: MeasuredBandwidths | None, entry: Accelerator | None) -> Bandwidth | None:
    """--intra-node-gbps, else the calibration's all-reduce busbw inside a node, else the catalogue's link peak."""
    if given is not None:
        return Bandwidth(given, "--intra-node-gbps")
    if measured is not None and measured.intra_node_busbw_gbps:
        return Bandwidth(measured.intra_node_busbw_gbps, f"{measured.label}, all-reduce busbw")
    if entry is not None and entry.intra_node_link is not None:
        link = entry.intra_node_link
        return Bandwidth(link.per_direction_gbps, f"catalogue, {entry.id}: {link.describe()}; a link peak, not a "
                         "measured bus bandwidth: give --intra-node-gbps to use nccl-tests' busbw")
    return None


def _inter_node(given: float | None, measured: MeasuredBandwidths | None) -> Bandwidth:
    """--inter-node-gbps, else the calibration's all-reduce busbw between nodes, else one HDR NIC per GPU."""
    if given is not None:
        return Bandwidth(given, "--inter-node-gbps")
    if measured is not None and measured.inter_node_busbw_gbps:
        return Bandwidth(measured.inter_node_busbw_gbps, f"{measured.label}, all-reduce busbw")
    return Bandwidth(DEFAULT_INTER_NODE_GBPS, INTER_NODE_ORIGIN)
