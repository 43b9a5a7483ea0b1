"""The fleet's network figures a planner reads (`plan --calibration`): what `bench --distributed --save` measured,
as one typed record instead of the calibration file's nested entries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..catalog import Catalog
from ..device import LinkMeasurement
from ..errors import CalibrationError
from .records import Calibration, find_device


@dataclass(frozen=True)
class MeasuredBandwidths:
    """A measured fleet's network. Bus bandwidths are nccl-tests' busbw in GB/s (1e9 bytes/s) at the largest
    message measured."""

    intra_node_busbw_gbps: float | None  # all-reduce within one node (one-node fleet: across all its ranks)
    inter_node_busbw_gbps: float | None  # all-reduce between nodes, one rank per node (None: one node)
    world_busbw_gbps: float | None  # all-reduce over every rank of the fleet
    p2p_gbps: float | None  # send/recv between neighbouring ranks (pipeline parallelism's pattern)
    busbw_gbps: Mapping[str, Mapping[str, float]]  # every figure: scope -> collective -> GB/s
    backend: str  # nccl | gloo
    world_size: int
    nodes: int
    ranks_per_node: int
    device: str  # the device name the calibration file is keyed by
    measured_at: str
    label: str  # one line saying what was measured where

    def links(self) -> LinkMeasurement:
        """The all-reduce bus bandwidths within and across nodes, as the device room reads them."""
        return LinkMeasurement(self.intra_node_busbw_gbps, self.inter_node_busbw_gbps, self.label)


def measured_bandwidths(
    calibration: Calibration,
    device_name: str | None = None,
    *,
    shape: str | None = None,
    catalog: Catalog | None = None,
) -> MeasuredBandwidths:
    """The measured network figures of a fleet of `device_name` GPUs, for `plan --calibration`.

    `device_name` None picks the file's only device with fleet figures; a catalogue lets a GPU id (`H100-SXM`)
    find the torch name the file is keyed by. `shape` (`nccl 2x8`) picks a fleet entry; by default the one with
    the most nodes, then the most ranks, then the latest.
    """
    where = f" in {calibration.path}" if calibration.path else ""
    if device_name is None:
        with_fleet = [name for name, entry in calibration.devices.items() if entry.fleet]
        if len(with_fleet) != 1:
            found = (
                f"{len(with_fleet)} devices with fleet figures ({', '.join(with_fleet)})"
                if with_fleet
                else "no fleet figures"
            )
            raise CalibrationError(
                f"the calibration{where} holds {found}",
                "name the GPU" if with_fleet else "run `flopcalc bench --distributed --save` under torchrun first",
            )
        name, entry = with_fleet[0], calibration.devices[with_fleet[0]]
    else:
        name, entry = find_device(calibration, device_name, catalog)
    if not entry.fleet:
        raise CalibrationError(
            f"no fleet measurement for {name}{where}", "run `flopcalc bench --distributed --save` on that fleet"
        )
    if shape is not None:
        if shape not in entry.fleet:
            raise CalibrationError(f"no {shape!r} fleet for {name}{where} (it has: {', '.join(entry.fleet)})")
        fleet = entry.fleet[shape]
    else:
        fleet = max(entry.fleet.values(), key=lambda item: (item.nodes, item.world_size, item.measured_at))
    all_reduce = {scope: ops.get("all_reduce") for scope, ops in fleet.busbw_gbps.items()}
    intra = all_reduce.get("intra") if fleet.nodes > 1 else all_reduce.get("world")
    shape_text = f"{fleet.nodes} node{'s' if fleet.nodes > 1 else ''} x {fleet.ranks_per_node} {name}"
    return MeasuredBandwidths(
        intra_node_busbw_gbps=intra,
        inter_node_busbw_gbps=all_reduce.get("inter") if fleet.nodes > 1 else None,
        world_busbw_gbps=all_reduce.get("world"),
        p2p_gbps=fleet.p2p_gbps,
        busbw_gbps={scope: dict(ops) for scope, ops in fleet.busbw_gbps.items()},
        backend=fleet.backend,
        world_size=fleet.world_size,
        nodes=fleet.nodes,
        ranks_per_node=fleet.ranks_per_node,
        device=name,
        measured_at=fleet.measured_at,
        label=f"measured by flopcalc bench --distributed on {shape_text} ({fleet.backend}, "
        f"{fleet.measured_at[:10]}){where}",
    )
