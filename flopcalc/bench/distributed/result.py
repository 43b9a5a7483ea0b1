"""What each rank reports to rank 0 through the store, and the fleet's result rank 0 assembles from them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..fleet import P2P_OP, FleetBenchResult, RankReport, RankTiming, combine_timings
from ..fleet_layout import FleetLayout

GLOO_NOTE = (
    "gloo moves the data through host memory and TCP sockets: its figures are not a GPU interconnect's "
    "(NCCL runs on GPUs)"
)


@dataclass
class LocalDevice:
    """This rank's device and backend, or why it cannot take part (sent to the others in its hello)."""

    kind: str = "cpu"
    backend: str = "gloo"
    name: str = ""
    torch_version: str = ""
    precisions: tuple[str, ...] = ()
    error: str | None = None


def encode_report(tflops: dict, notes: Sequence[str], warnings: Sequence[str], timings: Sequence[RankTiming]) -> str:
    """One rank's measurements as the JSON text it posts under `result/RANK`."""
    return json.dumps(
        {
            "tflops": tflops,
            "notes": list(notes),
            "warnings": list(warnings),
            "timings": [[t.scope, t.op, t.bytes, t.ranks, t.group, t.iterations, t.time_s] for t in timings],
        }
    )


def assemble_result(
    local: LocalDevice,
    layout: FleetLayout,
    reports: Sequence[dict],
    *,
    world_size: int,
    timeout_s: float,
    matmul_seconds: float,
    seconds_used: float,
) -> FleetBenchResult:
    """The fleet's result from every rank's report (rank order): collectives combined over the ranks."""
    timings = [RankTiming(*row) for report in reports for row in report["timings"]]
    per_rank = tuple(
        RankReport(rank, layout.hosts[rank], layout.local_ranks[rank], layout.node_of(rank), report["tflops"])
        for rank, report in enumerate(reports)
    )
    notes = [note for report in reports for note in report["notes"]]
    warnings = [warning for report in reports for warning in report["warnings"]]
    if local.backend == "gloo":
        notes.append(GLOO_NOTE)
    return FleetBenchResult(
        world_size=world_size,
        nodes=len(layout.nodes),
        ranks_per_node=layout.ranks_per_node,
        backend=local.backend,
        device=local.kind,
        device_name=local.name,
        torch_version=local.torch_version,
        per_rank=per_rank,
        collectives=combine_timings([t for t in timings if t.op != P2P_OP]),
        p2p=combine_timings([t for t in timings if t.op == P2P_OP]),
        timeout_s=timeout_s,
        matmul_seconds=matmul_seconds,
        seconds_used=seconds_used,
        notes=tuple(dict.fromkeys(notes)),
        warnings=tuple(dict.fromkeys(warnings)),
    )
