"""The one resolver from a device name (catalogue id, alias or the name torch reports) and a precision to the
device's figures, so every command prices FLOPs, bytes and messages on the same figures with the same labels.

A measurement (`flopcalc bench --save`, handed in by `calibration`) replaces the datasheet peak; a network
measurement replaces the links; a device profile is attached only to the device it describes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..catalog import Accelerator, Catalog, load_catalog
from ..errors import CalibrationError, CatalogError, UsageError
from ..units import GB, normalize_precision
from .figures import (
    ASSUMED_INTER_NODE_GBPS,
    ASSUMED_INTER_NODE_SOURCE,
    Device,
    Figure,
    LinkMeasurement,
    MatmulMeasurement,
)
from .profile import DeviceProfile, device_profile

SHIPPED_PROFILES = "shipped"  # `profile_file` value that reads flopcalc/data/device_profiles.yaml


def resolve_device(
    name: str | None,
    precision: str | None = None,
    *,
    catalog: Catalog | None = None,
    catalogs: Sequence[str | os.PathLike] = (),
    measured: MatmulMeasurement | None = None,
    network: LinkMeasurement | None = None,
    profile: DeviceProfile | None = None,
    profile_file: str | os.PathLike | None = None,
) -> Device:
    """The figures of device `name` at `precision` (default: its fastest 16-bit one, measured or datasheet).

    - Without `measured`, `name` must be in the catalogue (CatalogError otherwise) and the peak is the
      datasheet's dense one. With it, the measured FLOP/s is the peak and the catalogue only adds memory,
      bandwidth, links and power when it knows the device (`name`, else the measured device's name).
    - `network`: measured all-reduce bus bandwidths, which replace the catalogue's link peak and the assumed
      inter-node figure.
    - `profile` (or `profile_file`, a profile file or "shipped"): the device's size-dependent rates; a profile
      of another device is refused.
    """
    if name is None and measured is None:
        raise UsageError("no GPU given", "pass --gpu NAME (or --calibration FILE|auto)")
    catalog = catalog if catalog is not None else load_catalog(tuple(catalogs))
    accelerator: Accelerator | None
    if measured is None:
        entry = catalog.resolve(str(name))
        accelerator, catalog_miss = entry, None
        chosen = normalize_precision(precision) if precision else entry.default_precision()
        peak = _datasheet(entry, chosen)
    else:
        accelerator, catalog_miss = _lookup(catalog, name or measured.device)
        chosen = normalize_precision(precision) if precision else measured.default_precision()
        peak = measured.peak(chosen)
    device_id = accelerator.id if accelerator is not None else str(name or (measured and measured.device))
    if profile is None and profile_file is not None:
        where = None if str(profile_file) == SHIPPED_PROFILES else Path(profile_file)
        profile = device_profile(device_id, where, precision=chosen)
    if profile is not None and profile.device != device_id:
        raise CalibrationError(
            f"the device profile is for {profile.device}, not {device_id}",
            f"a profile holds only for the device it was measured on: use one for {device_id} "
            "(`flopcalc bench --save` on it)",
        )
    return Device(
        id=device_id,
        precision=chosen,
        peak=peak,
        peaks=_peaks(accelerator, measured),
        memory_bytes=_memory(accelerator),
        memory_bandwidth=_memory_bandwidth(accelerator),
        intra_node=_intra_node(accelerator, network),
        inter_node=_inter_node(network),
        tdp_w=None if accelerator is None else accelerator.tdp_w,
        accelerator=accelerator,
        profile=profile,
        catalog_miss=catalog_miss,
    )


def with_network(device: Device, network: LinkMeasurement) -> Device:
    """The same device with measured bus bandwidths in place of its link peak and the assumed inter-node figure."""
    return replace(device, intra_node=_intra_node(device.accelerator, network), inter_node=_inter_node(network))


def find_accelerator(catalog: Catalog, name: str) -> Accelerator | None:
    """The catalogue entry of `name`, or None when the catalogue does not know it (a measured device)."""
    return _lookup(catalog, name)[0]


def _lookup(catalog: Catalog, name: str) -> tuple[Accelerator | None, str | None]:
    try:
        return catalog.resolve(name), None
    except CatalogError as error:
        return None, error.message


def _peaks(accelerator: Accelerator | None, measured: MatmulMeasurement | None) -> dict[str, Figure]:
    peaks = (
        {}
        if accelerator is None
        else {precision: _datasheet(accelerator, precision) for precision in accelerator.precisions}
    )
    if measured is not None:
        peaks.update({precision: measured.peak(precision) for precision in measured.flops})
    return peaks


def _datasheet(accelerator: Accelerator, precision: str) -> Figure:
    """The dense datasheet peak, labelled as the catalogue's Throughput labels it (`datasheet dense bf16`)."""
    throughput = accelerator.datasheet_throughput(precision)
    return Figure(throughput.peak_flops, throughput.origin, "datasheet")


def _memory(accelerator: Accelerator | None) -> Figure | None:
    if accelerator is None or not accelerator.memory_gb:
        return None
    return Figure(accelerator.memory_bytes, f"catalogue, {accelerator.id}", "datasheet")  # GiB x 2^30


def _memory_bandwidth(accelerator: Accelerator | None) -> Figure | None:
    if accelerator is None or accelerator.memory_bandwidth_gbps is None:
        return None
    return Figure(accelerator.memory_bandwidth_gbps * GB, f"catalogue, {accelerator.id}", "datasheet")


def _intra_node(accelerator: Accelerator | None, network: LinkMeasurement | None) -> Figure | None:
    """The measured all-reduce busbw inside a node, else the catalogue's link peak (one direction)."""
    if network is not None and network.intra_node_gbps:
        return Figure(network.intra_node_gbps, f"{network.label}, all-reduce busbw", "measured")
    if accelerator is not None and accelerator.intra_node_link is not None:
        link = accelerator.intra_node_link
        return Figure(
            link.per_direction_gbps,
            f"catalogue, {accelerator.id}: {link.describe()}; a link peak, not a "
            "measured bus bandwidth: give --intra-node-gbps to use nccl-tests' busbw",
            "datasheet",
        )
    return None


def _inter_node(network: LinkMeasurement | None) -> Figure:
    """The measured all-reduce busbw between nodes, else one HDR NIC per GPU."""
    if network is not None and network.inter_node_gbps:
        return Figure(network.inter_node_gbps, f"{network.label}, all-reduce busbw", "measured")
    return Figure(ASSUMED_INTER_NODE_GBPS, ASSUMED_INTER_NODE_SOURCE, "assumed")
