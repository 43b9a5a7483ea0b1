"""The fleet benchmark's arithmetic and records, without torch: what `bench --distributed` measures and reports.

Figures, as nccl-tests defines them (S bytes, t seconds per operation, n ranks in the group):

    algbw = S / t
    all_reduce      busbw = algbw * 2(n-1)/n      (S: the buffer every rank reduces)
    all_gather      busbw = algbw * (n-1)/n       (S: the gathered buffer, n x each rank's part)
    reduce_scatter  busbw = algbw * (n-1)/n       (S: the buffer each rank reduces, n x its part of the result)
    sendrecv        busbw = algbw                 (S: what each rank sends to the next and receives from the last)

t is the slowest member's time per operation (a collective ends when its last rank does). Also here: the
options every rank must share (`FleetConfig`), the launcher's environment (`LaunchEnv`) and the result rank 0
assembles (`FleetBenchResult`); the fleet's layout from every rank's hello is `fleet_layout`. Running the ranks
is `flopcalc.bench.distributed`.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..calibration import (
    FLEET_OPS,
    FLEET_SCOPES,
    FleetCalibration,
    ProfileCalibration,
    fleet_key,
    now_utc,
    save_device_entry,
)
from ..errors import CalibrationError, UsageError

SCHEMA_VERSION = 1
DEFAULT_TIMEOUT_S = 60.0
BACKENDS = ("auto", "nccl", "gloo")
FLEET_DEVICES = ("auto", "cuda", "cpu")
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
P2P_OP = "sendrecv"

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
ELEMENT_BYTES = 4  # float32 buffers, nccl-tests' default type
MIN_BYTES = {"cuda": 64 * KiB, "cpu": 4 * KiB}
DEFAULT_MAX_BYTES = {"cuda": GiB, "cpu": 4 * MiB}
SIZE_STEP = 4  # message sizes: max_bytes, max_bytes / 4, ... down to MIN_BYTES
BUFFERS_PER_RANK = 3  # message-sized buffers a rank holds at once, with the backend's staging copy


def bus_factor(op: str, ranks: int) -> float:
    """busbw / algbw of `op` on `ranks` ranks (nccl-tests): the share of the data each rank's link carries."""
    if op == "all_reduce":
        return 2 * (ranks - 1) / ranks
    if op in ("all_gather", "reduce_scatter"):
        return (ranks - 1) / ranks
    if op == P2P_OP:
        return 1.0
    raise ValueError(f"unknown collective {op!r}")


def message_sizes(max_bytes: int, device: str) -> tuple[int, ...]:
    """The ladder of message sizes, smallest first: max_bytes, /4, /16, ... down to the device's smallest."""
    smallest = min(MIN_BYTES[device], max_bytes)
    sizes = []
    size = max_bytes
    while size >= smallest and len(sizes) < 16:
        sizes.append(size)
        size //= SIZE_STEP
    return tuple(reversed(sizes))


def buffer_bytes(max_bytes: int) -> int:
    """Memory a rank's message buffers take at the largest size: two whole messages at once (send/recv's sent
    and received buffers; all-gather's gathered one and its part) and about one more of the backend's staging."""
    return BUFFERS_PER_RANK * max_bytes


def group_elements(nominal_bytes: int, ranks: int) -> int:
    """float32 elements of a message of about `nominal_bytes`: a multiple of `ranks`, so every rank's part is whole."""
    return max(ranks, nominal_bytes // ELEMENT_BYTES // ranks * ranks)


# --- what the launcher and the user asked for -------------------------------------------------------


@dataclass(frozen=True)
class LaunchEnv:
    """This rank's place in the fleet, as the launcher's environment variables say."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int
    node_rank: int | None = None  # GROUP_RANK: torchrun's node index, when the launcher set it
    agent_store: bool = False  # the launcher's agent hosts the rendezvous store (torchrun); else rank 0 does

    @staticmethod
    def from_environ(environ: Mapping[str, str] | None = None) -> LaunchEnv:
        environ = os.environ if environ is None else environ
        missing = [name for name in LAUNCHER_VARIABLES if not environ.get(name)]
        if len(missing) == len(LAUNCHER_VARIABLES):
            raise UsageError(
                "--distributed needs a launcher: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT are not set",
                "run it under torchrun (torchrun --nproc-per-node G -m flopcalc bench --distributed), "
                "or pass --nproc G to start G ranks on this machine",
            )
        if missing:
            raise UsageError(
                f"the launcher's environment lacks {', '.join(missing)}",
                "torchrun sets all five; under srun without torchrun export RANK, WORLD_SIZE, LOCAL_RANK, "
                "MASTER_ADDR, MASTER_PORT",
            )
        rank, world_size, local_rank, port = (
            _env_int(environ, name) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")
        )
        if world_size < 2:
            raise UsageError(
                f"--distributed needs at least 2 ranks; the launcher started WORLD_SIZE={world_size}",
                "for one device run `flopcalc bench`; for several, torchrun --nproc-per-node G or --nproc G",
            )
        if not 0 <= rank < world_size:
            raise UsageError(f"RANK={rank} is outside WORLD_SIZE={world_size}")
        if not 0 < port < 65536:
            raise UsageError(f"MASTER_PORT={port} is not a TCP port")
        node_rank = _env_int(environ, "GROUP_RANK") if environ.get("GROUP_RANK") else None
        return LaunchEnv(
            rank=rank,
            world_size=world_size,
            local_rank=local_rank,
            master_addr=environ["MASTER_ADDR"],
            master_port=port,
            node_rank=node_rank,
            agent_store=environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true",
        )


def in_launcher(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a launcher (torchrun, srun with the variables exported) started this process as a rank."""
    environ = os.environ if environ is None else environ
    return bool(environ.get("RANK")) and bool(environ.get("WORLD_SIZE"))


def _env_int(environ: Mapping[str, str], name: str) -> int:
    try:
        value = int(environ[name])
    except ValueError:
        raise UsageError(f"{name}={environ[name]!r} is not a whole number") from None
    if value < 0:
        raise UsageError(f"{name}={value} is negative")
    return value


@dataclass(frozen=True)
class FleetConfig:
    """How a fleet run measures; every rank must be started with the same one (checked before any collective)."""

    device: str = "auto"  # auto | cuda | cpu
    backend: str = "auto"  # auto (nccl on GPUs, gloo on CPUs) | nccl | gloo
    precisions: tuple[str, ...] | None = (
        None  # matmul precisions; None: bf16 (fp16 before Ampere) on GPUs, fp32 on CPUs
    )
    seconds: float | None = None  # matmul budget per rank; None: 10 s on GPUs, 3 s on CPUs
    max_bytes: int | None = None  # largest message; None: 1 GiB on GPUs, 4 MiB on CPUs
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.device not in FLEET_DEVICES:
            raise UsageError(
                f"--device {self.device} cannot run a fleet",
                "use cuda (NCCL), cpu (gloo) or auto; Apple MPS has no collectives",
            )
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown backend {self.backend!r}", f"use one of {', '.join(BACKENDS)}")
        if not (isinstance(self.timeout_s, (int, float)) and math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise UsageError(f"--timeout must be a positive number of seconds, got {self.timeout_s}")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise UsageError(f"--seconds must be a positive number, got {self.seconds}")
        if self.max_bytes is not None and self.max_bytes < 1 * KiB:
            raise UsageError(f"--max-bytes must be at least 1 KiB, got {self.max_bytes}")

    def options(self) -> dict:
        """What every rank must agree on (a rank with other sizes or budgets would hang the others)."""
        return {
            "device": self.device,
            "backend": self.backend,
            "precisions": list(self.precisions or []),
            "seconds": self.seconds,
            "max_bytes": self.max_bytes,
            "timeout_s": self.timeout_s,
        }


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectiveResult:
    """One collective at one message size in one scope, combined over the ranks that ran it."""

    op: str  # all_reduce | all_gather | reduce_scatter | sendrecv
    scope: str  # world | intra | inter
    bytes: int
    ranks: int  # ranks in each group
    groups: int  # groups that ran it at once (a group per node for intra; one per local rank for inter)
    iterations: int
    time_s: float  # per operation: the slowest member of the slowest group

    @property
    def algbw_gbps(self) -> float:
        return self.bytes / self.time_s / 1e9

    @property
    def busbw_gbps(self) -> float:
        return self.algbw_gbps * bus_factor(self.op, self.ranks)

    def to_dict(self) -> dict:
        return {
            "op": self.op,
            "scope": self.scope,
            "bytes": self.bytes,
            "ranks": self.ranks,
            "groups": self.groups,
            "iterations": self.iterations,
            "time_s": self.time_s,
            "algbw_gbps": self.algbw_gbps,
            "busbw_gbps": self.busbw_gbps,
        }


@dataclass(frozen=True)
class RankTiming:
    """One rank's time per operation of one collective at one size (what each rank reports to rank 0)."""

    scope: str
    op: str
    bytes: int
    ranks: int
    group: int  # which group of the scope
    iterations: int
    time_s: float


def combine_timings(timings: Sequence[RankTiming]) -> tuple[CollectiveResult, ...]:
    """Per scope, collective and size: the slowest member of each group, then the slowest group."""
    groups: dict[tuple, dict[int, list[RankTiming]]] = {}
    for item in timings:
        groups.setdefault((item.scope, item.op, item.bytes, item.ranks), {}).setdefault(item.group, []).append(item)
    results = []
    for (scope, op, size, ranks), members in groups.items():
        slowest = [max(items, key=lambda item: item.time_s) for items in members.values()]
        worst = max(slowest, key=lambda item: item.time_s)
        results.append(CollectiveResult(op, scope, size, ranks, len(members), worst.iterations, worst.time_s))
    order = {name: index for index, name in enumerate((*FLEET_SCOPES, *FLEET_OPS, P2P_OP))}
    return tuple(sorted(results, key=lambda r: (order[r.scope], order[r.op], r.bytes)))


@dataclass(frozen=True)
class RankReport:
    """Who a rank was and what its device did: matmul TFLOPS (the median of the ladder's best shape)."""

    rank: int
    host: str
    local_rank: int
    node: int
    tflops: Mapping[str, float]

    def to_dict(self) -> dict:
        return {
            "rank": self.rank,
            "host": self.host,
            "local_rank": self.local_rank,
            "node": self.node,
            "tflops": dict(self.tflops),
        }


@dataclass(frozen=True)
class FleetBenchResult:
    """A whole fleet run, as rank 0 assembles it."""

    world_size: int
    nodes: int
    ranks_per_node: int
    backend: str
    device: str  # cuda | cpu
    device_name: str
    torch_version: str
    per_rank: tuple[RankReport, ...]
    collectives: tuple[CollectiveResult, ...]
    p2p: tuple[CollectiveResult, ...]
    timeout_s: float
    matmul_seconds: float
    seconds_used: float
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    calibration_file: str | None = None

    @property
    def key(self) -> str:
        return fleet_key(self.backend, self.nodes, self.ranks_per_node)

    def headline(self, scope: str, op: str) -> CollectiveResult | None:
        """The largest message measured of `op` in `scope` (busbw there is the figure to plan with)."""
        found = [r for r in (self.p2p if op == P2P_OP else self.collectives) if r.scope == scope and r.op == op]
        return max(found, key=lambda r: r.bytes) if found else None

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(scope for scope in FLEET_SCOPES if any(r.scope == scope for r in self.collectives))

    def matmul_summary(self) -> dict[str, dict]:
        """Per precision: min / median / max of the ranks' TFLOPS and the slowest rank (it holds the fleet back)."""
        summary = {}
        precisions = [p for report in self.per_rank for p in report.tflops]
        for precision in dict.fromkeys(precisions):
            measured = [(report.tflops[precision], report) for report in self.per_rank if precision in report.tflops]
            slowest_tflops, slowest = min(measured, key=lambda item: item[0])
            summary[precision] = {
                "min_tflops": slowest_tflops,
                "median_tflops": statistics.median(value for value, _ in measured),
                "max_tflops": max(value for value, _ in measured),
                "ranks": len(measured),
                "slowest_rank": slowest.rank,
                "slowest_host": slowest.host,
            }
        return summary

    def headline_busbw(self) -> dict[str, dict[str, float]]:
        return {
            scope: {op: self.headline(scope, op).busbw_gbps for op in FLEET_OPS if self.headline(scope, op)}
            for scope in self.scopes
        }

    def to_calibration(self) -> FleetCalibration:
        p2p = self.headline("world", P2P_OP)
        summary = self.matmul_summary()
        return FleetCalibration(
            backend=self.backend,
            world_size=self.world_size,
            nodes=self.nodes,
            ranks_per_node=self.ranks_per_node,
            busbw_gbps=self.headline_busbw(),
            message_bytes={
                scope: {op: self.headline(scope, op).bytes for op in ops}
                for scope, ops in self.headline_busbw().items()
            },
            measured_at=now_utc(),
            torch_version=self.torch_version,
            p2p_gbps=p2p.busbw_gbps if p2p else None,
            p2p_bytes=p2p.bytes if p2p else None,
            tflops={p: item["median_tflops"] for p, item in summary.items()},
            slowest_tflops={p: item["min_tflops"] for p, item in summary.items()},
        )

    def to_profile(self) -> ProfileCalibration:
        """Bus bandwidth against the message size, per scope and collective (send/recv as `p2p`), for the
        device profile (docs/calibration.md)."""
        busbw: dict[str, dict[str, tuple[tuple[int, float], ...]]] = {}
        for result in sorted(self.collectives + self.p2p, key=lambda r: r.bytes):
            op = "p2p" if result.op == P2P_OP else result.op
            busbw.setdefault(result.scope, {}).setdefault(op, ())
            busbw[result.scope][op] += ((result.bytes, result.busbw_gbps),)
        return ProfileCalibration(self.device_name, now_utc(), self.torch_version, {}, None, busbw)

    def to_dict(self) -> dict:
        p2p = self.headline("world", P2P_OP)
        return {
            "schema_version": SCHEMA_VERSION,
            "world_size": self.world_size,
            "nodes": self.nodes,
            "ranks_per_node": self.ranks_per_node,
            "backend": self.backend,
            "device": self.device,
            "device_name": self.device_name,
            "torch_version": self.torch_version,
            "per_rank": [report.to_dict() for report in self.per_rank],
            "matmul": self.matmul_summary(),
            "collectives": [item.to_dict() for item in self.collectives],
            "p2p": {
                "pattern": "ring: every rank sends to rank + 1 and receives from rank - 1 at once",
                "results": [item.to_dict() for item in self.p2p],
                "busbw_gbps": p2p.busbw_gbps if p2p else None,
                "bytes": p2p.bytes if p2p else None,
            },
            "headline_busbw_gbps": self.headline_busbw(),
            "timeout_s": self.timeout_s,
            "matmul_seconds": self.matmul_seconds,
            "seconds_used": self.seconds_used,
            "calibration_file": self.calibration_file,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


def save_fleet_result(result: FleetBenchResult, path: str | os.PathLike | None = None):
    """Store the fleet figures in a calibration file under the GPU model, keyed by the fleet's shape."""
    if not result.collectives:
        raise CalibrationError("nothing to save: no collective was measured")
    return save_device_entry(
        path,
        result.device_name,
        result.device,
        fleet={result.key: result.to_calibration()},
        profile=result.to_profile(),
    )
