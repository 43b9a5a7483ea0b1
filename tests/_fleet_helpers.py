"""Helpers the fleet tests hand to rank processes (importable by name, so spawn can pickle them)."""

from __future__ import annotations

import os
import signal
import time

from flopcalc.bench.fleet import CollectiveResult, FleetBenchResult, RankReport


class SignalSelfAt:
    """A progress display for rank 0 that sends its own process `signum` when a step whose label starts with
    `prefix` begins: a rank killed (or interrupted) for real in the middle of the run."""

    def __init__(self, prefix: str, signum: int = signal.SIGKILL, mark: str | None = None):
        self.prefix, self.signum, self.mark = prefix, signum, mark  # mark: a file to write the signal's time to

    def __enter__(self) -> SignalSelfAt:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def show(self, label: str, fraction: float) -> None:
        if label.startswith(self.prefix):
            if self.mark:
                with open(self.mark, "w") as handle:
                    handle.write(repr(time.time()))
            os.kill(os.getpid(), self.signum)


# Run as `python -c VICTIM ARGS...` with the launcher's variables set: the `flopcalc bench` command line, except
# that the process sends itself $VICTIM_SIGNAL when it starts its $VICTIM_AT-th collective. With
# $VICTIM_REPORT set, it appends to that file whether the process group still existed once the signal ended the run.
VICTIM = """
import os, signal, sys
from flopcalc.bench import distributed
from flopcalc.bench.distributed import session
timed = session.time_collective
calls = []

def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) == int(os.environ["VICTIM_AT"]):
        os.kill(os.getpid(), getattr(signal, os.environ["VICTIM_SIGNAL"]))
    return timed(*args, **kwargs)

session.time_collective = dying
report = os.environ.get("VICTIM_REPORT")
if report:
    import torch.distributed as dist
    real = distributed.run_fleet_bench

    def checked(*args, **kwargs):
        try:
            return real(*args, **kwargs)
        finally:
            with open(report, "a") as handle:
                handle.write(f"initialized={dist.is_initialized()}\\n")

    distributed.run_fleet_bench = checked
from flopcalc.cli import main
sys.argv = ["flopcalc", *sys.argv[1:]]
main()
"""


def two_node_result() -> FleetBenchResult:
    """A made-up 2 x 8 H100 fleet: 1 GiB all-reduce in 20 ms, all-gather and reduce-scatter in 12 ms, in every
    scope; rank 11 runs its matmuls 90 TFLOPS slower."""
    collectives = []
    for scope, ranks, groups in (("world", 16, 1), ("intra", 8, 2), ("inter", 2, 8)):
        for op, seconds in (("all_reduce", 0.02), ("all_gather", 0.012), ("reduce_scatter", 0.012)):
            collectives.append(CollectiveResult(op, scope, 2**28, ranks, groups, 20, seconds / 4))
            collectives.append(CollectiveResult(op, scope, 2**30, ranks, groups, 5, seconds))
    per_rank = tuple(
        RankReport(rank, f"gpu-{rank // 8}", rank % 8, rank // 8, {"bf16": 700.0 - (rank == 11) * 90})
        for rank in range(16)
    )
    return FleetBenchResult(
        world_size=16,
        nodes=2,
        ranks_per_node=8,
        backend="nccl",
        device="cuda",
        device_name="NVIDIA H100 80GB HBM3",
        torch_version="2.13.0",
        per_rank=per_rank,
        collectives=tuple(collectives),
        p2p=(CollectiveResult("sendrecv", "world", 2**30, 16, 1, 5, 0.05),),
        timeout_s=60,
        matmul_seconds=10,
        seconds_used=75.0,
    )
