"""`flopcalc bench --distributed`: what a fleet of GPUs (or CPUs) sustains, measured with torch.distributed.

Every rank is a process started by a launcher (torchrun, srun + torchrun, or `launch_fleet` on one machine,
which uses torch's own `elastic_launch`) that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT.
Each rank runs the matmul ladder on its device; then all ranks time the collectives nccl-tests times, over a
ladder of message sizes, on NCCL (GPUs) or gloo (CPUs), and a ring of send/recv between neighbours. The
formulas and the records are in `flopcalc.bench.fleet`.

A distributed program must never hang an allocation, so: every collective and every store operation has a
timeout (`FleetConfig.timeout_s`); ranks check each other's options and devices through the rendezvous store
before any collective; a heartbeat per rank in the store tells survivors which rank died or froze when a
collective fails; the process group is always destroyed, also on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..calibration import FLEET_OPS
from ..errors import ExitCode, FleetError, FlopcalcError, UsageError, short_error
from ..units import format_bytes
from .fleet import (
    DEFAULT_MAX_BYTES,
    ELEMENT_BYTES,
    P2P_OP,
    SIZE_STEP,
    FleetBenchResult,
    FleetConfig,
    FleetLayout,
    LaunchEnv,
    RankReport,
    RankTiming,
    combine_timings,
    fleet_layout,
    group_elements,
    in_launcher,
    message_sizes,
    where,
)
from .hardware import available_cpus, describe_device, precision_skip_reason, resolve_device
from .matmul import run_matmul_bench

DEFAULT_MATMUL_SECONDS = {"cuda": 10.0, "cpu": 3.0}
WARMUP_OPS = 2
MAX_ITERATIONS = 20  # nccl-tests' default -n
TARGET_SECONDS = {"cuda": 0.2, "cpu": 0.05}  # timed iterations per size: about this long, 1 to MAX_ITERATIONS
HEARTBEAT_S = 0.5
STALE_AFTER_S = 2.5  # a heartbeat that has not moved for this long belongs to a rank that died or froze
INTERRUPTED_EXIT = int(ExitCode.INTERRUPTED)  # a rank ended by Ctrl-C or SIGTERM

ProgressCallback = Callable[[str, float], None]  # (what is running, fraction of the run done)


# --- running one rank ---------------------------------------------------------------------------------


class RankLostError(FleetError):
    """This rank stopped because another rank died, froze or failed: the message names that rank."""


def run_fleet_bench(
    config: FleetConfig | None = None,
    env: LaunchEnv | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> FleetBenchResult | None:
    """Run this rank's part of a fleet benchmark; rank 0 returns the whole fleet's result, the others None.

    Call it on every rank a launcher started (`env` defaults to this process's environment). Raises FleetError
    (one line naming the rank and host at fault) when a rank cannot join, differs from the others, dies,
    freezes or fails; UsageError for options that cannot work. The process group is destroyed whatever happens.
    """
    config = config or FleetConfig()
    env = env or LaunchEnv.from_environ()
    import torch.distributed as dist

    if not dist.is_available():
        raise FleetError("this torch build has no torch.distributed", "install a torch build with distributed support")
    started = time.perf_counter()
    with _sigterm_as_interrupt():
        session = _Session(env, config)
        try:
            return session.run(progress, started)
        except BaseException as error:
            session.record_failure(error)
            raise
        finally:
            session.close()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a launcher stopping its ranks, a cancelled Slurm job) ends the run like Ctrl-C: cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class _Local:
    """This rank's device and backend, or why it cannot take part (sent to the others in its hello)."""

    kind: str = "cpu"
    backend: str = "gloo"
    name: str = ""
    torch_version: str = ""
    precisions: tuple[str, ...] = ()
    error: str | None = None


class _Heartbeat:
    """A thread that counts up this rank's `beat/RANK` key in the store and says what the rank is doing
    (`at/RANK`), on its own store connection, so it keeps beating while the main thread waits in a collective.

    It is also the last resort against a hang no timeout caught: a step still running `limit_s` after it began
    ends the process with one line (`on_hang`, default: print it and exit 2).
    """

    def __init__(self, store: Any | None, rank: int, host: str, *, interval: float = HEARTBEAT_S,
                 on_hang: Callable[[str], None] | None = None):
        self.phase = "joining"
        self._store, self._rank, self._host, self._interval = store, rank, host, interval
        self._on_hang = on_hang or _exit_hung
        self._deadline: float | None = None
        self._limit = 0.0
        self._stop = threading.Event()
        self.running = store is not None
        self._thread = threading.Thread(target=self._run, name="flopcalc-heartbeat", daemon=True)
        self._thread.start()

    def begin(self, phase: str, limit_s: float) -> None:
        self.phase, self._limit, self._deadline = phase, limit_s, time.monotonic() + limit_s

    def _run(self) -> None:
        written = None
        while not self._stop.wait(self._interval):
            if self._deadline is not None and time.monotonic() > self._deadline:
                self._hung()
                return
            if not self.running:
                continue  # no store (gone, or no second connection): still watching for a hang
            try:
                self._store.add(f"beat/{self._rank}", 1)
                if self.phase != written:
                    written = self.phase
                    self._store.set(f"at/{self._rank}", written)
            except Exception:  # the store is gone: the main thread finds out on its own
                self.running = False

    def _hung(self) -> None:
        message = (f"rank {self._rank} on host {self._host} hung in {self.phase} for {self._limit:.0f} s, past every "
                   f"timeout: stopping it")
        if self.running:
            event = {"rank": self._rank, "host": self._host, "kind": "failed", "phase": self.phase, "message": "hung"}
            with contextlib.suppress(Exception):
                self._store.append("events", json.dumps(event) + "\n")
        self._on_hang(message)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * self._interval)


def _exit_hung(message: str) -> None:
    """The main thread is stuck where no Python can reach it: say so in one line and end the process."""
    sys.stderr.write(f"flopcalc: error: {message}\n")
    sys.stderr.flush()
    os._exit(2)


class _Session:
    """One rank's run: the store, the handshake, the process group and its groups, the measurements."""

    def __init__(self, env: LaunchEnv, config: FleetConfig):
        self.env, self.config = env, config
        self.host = socket.gethostname()
        self.hosts: dict[int, str] = {env.rank: self.host}
        self.timeout = float(config.timeout_s)
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self._hosting = env.rank == 0 and not env.agent_store  # this rank's process serves the store
        self._failed = False
        self._previous_excepthook = sys.excepthook
        self._heart: _Heartbeat | None = None
        self._base = self._connect()
        import torch.distributed as dist

        self.store = dist.PrefixStore("flopcalc", self._base)
        self.store.add(f"beat/{env.rank}", 1)  # the keys exist before anyone reads them
        self.store.set(f"at/{env.rank}", "joining")
        second = self._base.clone() if hasattr(self._base, "clone") else None
        self._heart = _Heartbeat(None if second is None else dist.PrefixStore("flopcalc", second), env.rank, self.host)

    # -- the store ---------------------------------------------------------------------------------

    @property
    def _store_text(self) -> str:
        owner = "torchrun's agent on the first node" if self.env.agent_store else "rank 0"
        return f"the rendezvous store at {self.env.master_addr}:{self.env.master_port} (hosted by {owner})"

    def _connect(self) -> Any:
        """A TCPStore client (or, on rank 0 without an agent store, the server): torch's own rendezvous store.

        A client retries in short attempts until the timeout, so an absent store host is reported in about
        --timeout (one long attempt of torch's takes up to twice its timeout)."""
        from datetime import timedelta

        import torch.distributed as dist

        env = self.env
        deadline = time.monotonic() + self.timeout
        while True:
            attempt = self.timeout if self._hosting else max(0.5, min(5.0, (deadline - time.monotonic()) / 2))
            try:
                store = dist.TCPStore(
                    env.master_addr, env.master_port, env.world_size, is_master=self._hosting,
                    timeout=timedelta(seconds=attempt), wait_for_workers=False, multi_tenant=True,
                )
                store.set_timeout(timedelta(seconds=self.timeout))
                return store
            except RuntimeError as error:
                if self._hosting:
                    raise FleetError(
                        f"rank 0 on host {self.host} cannot host the rendezvous store at "
                        f"{env.master_addr}:{env.master_port}: {torch_message(error)}", "pick a free MASTER_PORT"
                    ) from None
                if time.monotonic() + attempt > deadline:
                    address = f"{env.master_addr}:{env.master_port}"
                    if env.agent_store:
                        raise FleetError(
                            f"{where(env.rank, self.hosts)} cannot reach torchrun's rendezvous store at {address} "
                            f"within {self.timeout:g} s (--timeout): {torch_message(error)}"
                        ) from None
                    raise FleetError(
                        f"rank 0 never joined: {where(env.rank, self.hosts)} found no rendezvous store at {address} "
                        f"(rank 0 hosts it) within {self.timeout:g} s (--timeout)",
                        "check that rank 0 started, and MASTER_ADDR/MASTER_PORT",
                    ) from None

    def _set_phase(self, phase: str, limit_s: float | None = None) -> None:
        """What this rank does now, and how long it may take before the heartbeat calls it hung."""
        if self._heart is not None:
            self._heart.begin(phase, limit_s if limit_s is not None else 2 * self.timeout + 30)

    # -- the run -----------------------------------------------------------------------------------

    def run(self, progress: ProgressCallback | None, started: float) -> FleetBenchResult | None:
        env = self.env
        local = self._local_device()
        layout = self._handshake(local)
        self.hosts = dict(enumerate(layout.hosts))
        self._init_process_group(local)
        progress = progress if env.rank == 0 else None
        tflops, matmul_seconds = self._matmul(local, layout, progress)
        timings = self._network(local, layout, progress)
        report = {
            "tflops": tflops, "notes": self.notes, "warnings": self.warnings,
            "timings": [[t.scope, t.op, t.bytes, t.ranks, t.group, t.iterations, t.time_s] for t in timings],
        }
        self.store.set(f"result/{env.rank}", json.dumps(report))
        if env.rank != 0:
            return None
        reports = self._gather_reports()
        if progress:
            progress("done", 1.0)
        return self._assemble(local, layout, reports, matmul_seconds, time.perf_counter() - started)

    def _local_device(self) -> _Local:
        """Resolve this rank's device and backend; a problem is kept for the hello, so every rank hears of it."""
        import torch

        config, env = self.config, self.env
        local = _Local(torch_version=str(torch.__version__))
        try:
            local.kind = resolve_device(config.device)
            if local.kind == "mps":
                raise UsageError("Apple MPS has no torch.distributed collectives", "use --device cpu")
            local.backend = config.backend if config.backend != "auto" else ("nccl" if local.kind == "cuda" else "gloo")
            if local.backend == "nccl" and local.kind != "cuda":
                raise UsageError("--backend nccl needs CUDA/ROCm GPUs", "use --backend gloo (or auto) on CPUs")
            if local.kind == "cuda":
                count = torch.cuda.device_count()
                if env.local_rank >= count:
                    raise UsageError(f"LOCAL_RANK {env.local_rank} but {count} GPU(s) are visible on {self.host}",
                                     "start at most one rank per GPU")
                torch.cuda.set_device(env.local_rank)
            info = describe_device(local.kind)
            local.name = info.device_name
            local.precisions = config.precisions or _default_precisions(info)
        except FlopcalcError as error:
            local.error = str(error)
        return local

    def _handshake(self, local: _Local) -> FleetLayout:
        """Every rank posts a hello (host, device, backend, options) in the store and waits for all the others'."""
        env, store = self.env, self.store
        hello = {
            "rank": env.rank, "host": self.host, "pid": os.getpid(), "local_rank": env.local_rank,
            "node_rank": env.node_rank, "device": local.kind, "device_name": local.name, "backend": local.backend,
            "torch_version": local.torch_version, "options": self.config.options(), "error": local.error,
        }
        self._set_phase("joining")
        keys = [f"hello/{rank}" for rank in range(env.world_size)]
        deadline = time.monotonic() + self.timeout
        delay = 0.02
        try:
            store.set(f"hello/{env.rank}", json.dumps(hello))
            while not store.check(keys):
                events = self._events()  # a rank that stopped, or one that found out first which never joined
                if events and store.check(keys):
                    # every hello arrived before that rank stopped: it judged them (options that differ), and
                    # this rank reaches the same verdict from the same hellos, so every rank says the same line
                    break
                for event in events:
                    if event["kind"] == "left":
                        raise RankLostError(event["message"])
                    raise RankLostError(f"rank {event['rank']} on host {event['host']} stopped: {event['message']}")
                if time.monotonic() > deadline:
                    missing = [rank for rank, key in enumerate(keys) if not store.check([key])]
                    raise RankLostError(
                        f"{_ranks(missing)} never joined within {self.timeout:g} s (--timeout): "
                        f"{env.world_size - len(missing)} of {env.world_size} ranks reached {self._store_text}",
                        "start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, or raise --timeout",
                    )
                time.sleep(delay)
                delay = min(0.5, delay * 1.5)
            values = _multi_get(store, keys)
        except FlopcalcError:
            raise
        except RuntimeError as error:
            raise RankLostError(
                f"lost {self._store_text} while the ranks were joining: {torch_message(error)}",
                "rank 0 stopped; see its error" if not env.agent_store else None,
            ) from None
        hellos = [json.loads(value) for value in values]
        layout = fleet_layout(hellos)
        versions = {hello["torch_version"] for hello in hellos}
        if len(versions) > 1:
            self.warnings.append(f"the ranks run different torch versions ({', '.join(sorted(versions))})")
        return layout

    def _init_process_group(self, local: _Local) -> None:
        from datetime import timedelta

        import torch
        import torch.distributed as dist

        env = self.env
        if local.backend == "nccl":
            # a timed-out collective raises in this thread (and flopcalc reports it) instead of the watchdog
            # tearing the process down
            os.environ.setdefault("TORCH_NCCL_BLOCKING_WAIT", "1")
        options: dict[str, Any] = {}
        if local.backend == "nccl":
            options["device_id"] = torch.device("cuda", env.local_rank)
        with self.step("starting the process group"):
            dist.init_process_group(
                backend=local.backend, store=dist.PrefixStore("process_group", self._base), rank=env.rank,
                world_size=env.world_size, timeout=timedelta(seconds=self.timeout), **options,
            )

    def _matmul(self, local: _Local, layout: FleetLayout, progress: ProgressCallback | None) -> tuple[dict, float]:
        """This rank's matmul ladder; the ranks of a CPU node share its cores."""
        seconds = self.config.seconds or DEFAULT_MATMUL_SECONDS[local.kind]
        threads = None
        if local.kind == "cpu":
            threads = max(1, available_cpus() // len(layout.nodes[layout.node_of(self.env.rank)]))
        self._set_phase("matmul", 3 * seconds + self.timeout + 30)

        def on_shape(precision: str, shape: Sequence[int], fraction: float) -> None:
            if progress:
                label = f"matmul {precision} {'x'.join(map(str, shape))}" if precision else "matmul"
                progress(label, 0.5 * fraction)

        result = run_matmul_bench(local.kind, local.precisions, seconds=seconds, progress=on_shape, threads=threads)
        self.notes.extend(result.notes)
        self.warnings.extend(result.warnings)
        return {item.precision: item.median_tflops for item in result.results}, seconds

    def _network(self, local: _Local, layout: FleetLayout, progress: ProgressCallback | None) -> list[RankTiming]:
        """Time every collective over the size ladder in every scope, then the send/recv ring, on every rank."""
        import torch
        import torch.distributed as dist

        rank = self.env.rank
        device = torch.device("cuda", self.env.local_rank) if local.backend == "nccl" else torch.device("cpu")
        sizes = message_sizes(self.config.max_bytes or DEFAULT_MAX_BYTES[local.kind], local.kind)
        scopes = layout.scopes()
        plan: list[tuple[str, Any, tuple[int, ...], int, str]] = []  # scope, group handle, members, group index, op
        with self.step("creating the groups"):
            for scope in scopes:
                for index, members in enumerate(layout.groups(scope)):
                    handle = None if scope == "world" else dist.new_group(list(members),
                                                                          timeout=_timedelta(self.timeout))
                    if rank in members:
                        plan.extend((scope, handle, members, index, op) for op in FLEET_OPS)
        plan.append(("world", None, tuple(range(self.env.world_size)), 0, P2P_OP))
        total = len(plan) * len(sizes)
        done = 0
        timings: list[RankTiming] = []
        target = TARGET_SECONDS[local.kind]
        for scope, group, members, index, op in plan:
            for size in sizes:
                done += 1
                elements = group_elements(size, len(members)) if op != P2P_OP else max(1, size // ELEMENT_BYTES)
                label = f"{op} of {format_bytes(elements * ELEMENT_BYTES)} ({scope})"
                if progress:
                    progress(label, 0.5 + 0.5 * (done - 1) / total)
                with self.step(label):
                    timing, one = _time_collective(op, group, members, rank, elements, device, target)
                timings.append(RankTiming(scope, op, elements * ELEMENT_BYTES, len(members), index, *timing))
                if one * SIZE_STEP > self.timeout / 4 and size != sizes[-1]:
                    self.notes.append(
                        f"{op} ({scope}) stopped at {format_bytes(elements * ELEMENT_BYTES)}: one operation took "
                        f"{one:.2g} s, the next size would come near --timeout {self.timeout:g} s"
                    )
                    done += len(sizes) - sizes.index(size) - 1
                    break
        return timings

    def _gather_reports(self) -> list[dict]:
        """Rank 0 reads every rank's report from the store, waiting at most the timeout."""
        keys = [f"result/{rank}" for rank in range(self.env.world_size)]
        began = time.monotonic()
        with self.step("collecting the results"):
            delay = 0.02
            while not self.store.check(keys):
                if time.monotonic() - began > self.timeout:
                    raise TimeoutError(f"results missing after {self.timeout:g} s")
                time.sleep(delay)
                delay = min(0.5, delay * 1.5)
            return [json.loads(value) for value in _multi_get(self.store, keys)]

    def _assemble(self, local: _Local, layout: FleetLayout, reports: list[dict], matmul_seconds: float,
                  seconds_used: float) -> FleetBenchResult:
        timings = [RankTiming(*row) for report in reports for row in report["timings"]]
        per_rank = tuple(
            RankReport(rank, layout.hosts[rank], layout.local_ranks[rank], layout.node_of(rank), report["tflops"])
            for rank, report in enumerate(reports)
        )
        notes = [note for report in reports for note in report["notes"]]
        warnings = [warning for report in reports for warning in report["warnings"]]
        if local.backend == "gloo":
            notes.append("gloo moves the data through host memory and TCP sockets: its figures are not a GPU "
                         "interconnect's (NCCL runs on GPUs)")
        return FleetBenchResult(
            world_size=self.env.world_size, nodes=len(layout.nodes), ranks_per_node=layout.ranks_per_node,
            backend=local.backend, device=local.kind, device_name=local.name, torch_version=local.torch_version,
            per_rank=per_rank,
            collectives=combine_timings([t for t in timings if t.op != P2P_OP]),
            p2p=combine_timings([t for t in timings if t.op == P2P_OP]),
            timeout_s=self.timeout, matmul_seconds=matmul_seconds, seconds_used=seconds_used,
            notes=tuple(dict.fromkeys(notes)), warnings=tuple(dict.fromkeys(warnings)),
        )

    # -- failures ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        """Run a step that talks to other ranks; a failure becomes one line naming the rank at fault."""
        self._set_phase(label)
        began = time.monotonic()
        try:
            yield
        except (FlopcalcError, KeyboardInterrupt):
            raise
        except Exception as error:  # torch.distributed's errors are RuntimeErrors; a CUDA error, a timeout
            raise self._diagnose(label, error, time.monotonic() - began) from error

    def _diagnose(self, label: str, error: BaseException, elapsed: float) -> FleetError:
        """Which rank is at fault: one that reported a failure, else one whose heartbeat stopped."""
        me, cause = self.env.rank, torch_message(error)
        seen = f"seen by {where(me, self.hosts)} after {elapsed:.1f} s: {cause}"
        try:
            before = self._beats()
            time.sleep(STALE_AFTER_S)
            after = self._beats()
            events = self._events()
        except Exception:
            return RankLostError(f"{label} failed and {self._store_text} is gone ({seen})",
                                 "rank 0 stopped; see its error" if not self.env.agent_store else None)
        failed = [event for event in events if event["kind"] == "failed" and event["rank"] != me]
        if failed:
            event = failed[0]
            return RankLostError(
                f"rank {event['rank']} on host {event['host']} failed during {event['phase']}: {event['message']}")
        left = {event["rank"]: event for event in events if event["kind"] == "left"}
        heartbeat_works = after.get(me, 0) > before.get(me, 0)
        stopped = [rank for rank in sorted(after) if rank != me and after[rank] == before.get(rank) and rank not in left]
        if heartbeat_works and stopped:
            return RankLostError(
                f"{_ranks(stopped, self.hosts)} stopped responding during {label}: the process died or hangs ({seen})",
                "see that rank's log; raise --timeout if it was only slow",
            )
        if left:
            return RankLostError(next(iter(left.values()))["message"])
        if elapsed >= 0.9 * self.timeout:
            phases = self._phases()
            behind = [rank for rank, phase in sorted(phases.items()) if phase != label]
            where_behind = "; ".join(f"{where(rank, self.hosts)} is at {phases[rank]}" for rank in behind[:3])
            return FleetError(
                f"{label} timed out after {self.timeout:g} s (--timeout) on {where(me, self.hosts)}; every rank is alive"
                + (f"; {where_behind}" if where_behind else ""),
                "raise --timeout if the network or a rank is that slow",
            )
        return FleetError(f"{label} failed on {where(me, self.hosts)}: {cause}")

    def _beats(self) -> dict[int, int]:
        keys = [f"beat/{rank}" for rank in range(self.env.world_size)]
        return {rank: int(value) for rank, value in enumerate(_multi_get(self.store, keys))}

    def _phases(self) -> dict[int, str]:
        keys = [f"at/{rank}" for rank in range(self.env.world_size)]
        return {rank: value.decode() for rank, value in enumerate(_multi_get(self.store, keys))}

    def _events(self) -> list[dict]:
        if not self.store.check(["events"]):
            return []
        text = self.store.get("events").decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def record_failure(self, error: BaseException) -> None:
        """Tell the other ranks why this one stops (before the process group goes, so they find it)."""
        from datetime import timedelta

        if isinstance(error, KeyboardInterrupt):
            message = f"interrupted ({error.args[0] if error.args else 'Ctrl-C'})"
        else:
            message = str(error) if isinstance(error, FlopcalcError) else short_error(error)
        self._failed = True
        event = {
            "rank": self.env.rank, "host": self.host, "kind": "left" if isinstance(error, RankLostError) else "failed",
            "phase": self._heart.phase if self._heart else "joining", "message": message,
        }
        try:
            self.store.set_timeout(timedelta(seconds=min(5.0, self.timeout)))
            self.store.append("events", json.dumps(event) + "\n")
        except Exception:  # the store is gone too: nothing more to tell
            pass

    def close(self) -> None:
        import torch.distributed as dist

        try:
            if dist.is_initialized():
                dist.destroy_process_group()
            if self._hosting and self._failed:  # keep the store up a moment so the others read why this rank stops
                time.sleep(2 * HEARTBEAT_S)
        finally:
            sys.excepthook = self._previous_excepthook  # init_process_group wraps it to prefix the rank
            if self._heart is not None:
                self._heart.stop()


def _default_precisions(info: Any) -> tuple[str, ...]:
    if info.device == "cuda":
        return ("bf16",) if precision_skip_reason(info, "bf16") is None else ("fp16",)
    return ("fp32",)


def _time_collective(op: str, group: Any, members: Sequence[int], rank: int, elements: int, device: Any,
                     target_s: float) -> tuple[tuple[int, float], float]:
    """Warm up, time one operation, agree with the group on the slowest, then time a block of operations.

    Returns ((iterations, seconds per operation), the agreed time of one operation).
    """
    import torch
    import torch.distributed as dist

    run = _collective(op, group, members, rank, elements, device)
    cuda = device.type == "cuda"

    def timed(count: int) -> float:
        if cuda:
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        if cuda:  # queue them all, as nccl-tests does, and wait at the end
            works = [run(True) for _ in range(count)]
            for work in works:
                work.wait()
            torch.cuda.synchronize(device)
        else:
            for _ in range(count):
                run(False)
        return time.perf_counter() - began

    timed(WARMUP_OPS)
    one = torch.tensor([timed(1)], dtype=torch.float64, device=device)
    dist.all_reduce(one, op=dist.ReduceOp.MAX, group=group)  # every member sizes the block alike; a barrier too
    slowest_one = float(one.item())
    iterations = max(1, min(MAX_ITERATIONS, math.ceil(target_s / max(slowest_one, 1e-9))))
    return (iterations, timed(iterations) / iterations), slowest_one


def _collective(op: str, group: Any, members: Sequence[int], rank: int, elements: int, device: Any) -> Callable:
    """A function running one `op` on float32 buffers of `elements` (the whole message) in `group`."""
    import torch
    import torch.distributed as dist

    def zeros(count: int) -> "torch.Tensor":
        return torch.zeros(count, dtype=torch.float32, device=device)

    parts = len(members)
    if op == "all_reduce":
        buffer = zeros(elements)
        return lambda async_op: dist.all_reduce(buffer, group=group, async_op=async_op)
    if op == "all_gather":  # torch >= 2.13 names the tensor forms *_single (the old names warn on every call)
        gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
        gathered, mine = zeros(elements), zeros(elements // parts)
        return lambda async_op: gather(gathered, mine, group=group, async_op=async_op)
    if op == "reduce_scatter":
        scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
        whole, mine = zeros(elements), zeros(elements // parts)
        return lambda async_op: scatter(mine, whole, group=group, async_op=async_op)
    if op == P2P_OP:
        sent, received = zeros(elements), zeros(elements)
        position = list(members).index(rank)
        following, previous = members[(position + 1) % parts], members[(position - 1) % parts]

        def exchange(async_op: bool):
            works = dist.batch_isend_irecv([
                dist.P2POp(dist.isend, sent, following, group), dist.P2POp(dist.irecv, received, previous, group),
            ])
            if async_op:
                return _AllWorks(works)
            for work in works:
                work.wait()
            return None

        return exchange
    raise ValueError(f"unknown collective {op!r}")


class _AllWorks:
    """Several pending operations waited for as one."""

    def __init__(self, works: Sequence[Any]):
        self._works = works

    def wait(self) -> None:
        for work in self._works:
            work.wait()


def _multi_get(store: Any, keys: Sequence[str]) -> list[bytes]:
    if hasattr(store, "multi_get"):
        return list(store.multi_get(list(keys)))
    return [store.get(key) for key in keys]


def _timedelta(seconds: float):
    from datetime import timedelta

    return timedelta(seconds=seconds)


def _ranks(ranks: Sequence[int], hosts: Mapping[int, str] | None = None) -> str:
    """`rank 2` / `ranks 2, 5`, with hosts where known: `rank 2 on host a, rank 5 on host b`."""
    if hosts:
        shown = ", ".join(where(rank, hosts) for rank in ranks[:8])
    else:
        shown = ", ".join(str(rank) for rank in ranks[:8])
        shown = ("rank " if len(ranks) == 1 else "ranks ") + shown
    return shown + (f" and {len(ranks) - 8} more" if len(ranks) > 8 else "")


def torch_message(error: BaseException) -> str:
    """torch.distributed's message without its source location (`[/path/pair.cc:553] Connection closed ...`),
    first sentence only: what a one-line error can carry."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if text.startswith("[") and "] " in text:
        text = text.split("] ", 1)[1]
    sentence = text.split(". ", 1)[0].rstrip(".")
    return short_error(type(error)(sentence) if sentence else error, limit=160)


# --- one machine: G ranks through torch's own launcher --------------------------------------------------


@dataclass(frozen=True)
class _RankFailure:
    """What a rank started by `launch_fleet` returns when it fails: its one line, and whether it only repeats
    another rank's failure (a rank that died, froze or failed first)."""

    rank: int
    message: str
    secondary: bool = False


def _rank_main(config: FleetConfig, progress_factory: Callable[[], Any] | None) -> Any:
    """The function `launch_fleet` starts on every rank (a module-level function, so spawn can pickle it)."""
    rank = int(os.environ.get("RANK", -1))
    try:
        env = LaunchEnv.from_environ()
        if env.rank == 0 and progress_factory is not None:
            with progress_factory() as bar:
                return run_fleet_bench(config, env, progress=bar.show)
        return run_fleet_bench(config, env)
    except FlopcalcError as error:
        return _RankFailure(rank, str(error), secondary=isinstance(error, RankLostError))
    except KeyboardInterrupt:  # Ctrl-C, or the launcher stopping the ranks: end now, with the code that says so
        raise SystemExit(INTERRUPTED_EXIT) from None
    except Exception as error:  # a bug: still one line for the user
        return _RankFailure(rank, f"internal error on rank {rank}: {short_error(error)}")


def launch_fleet(
    config: FleetConfig | None = None,
    nproc: int = 2,
    *,
    progress_factory: Callable[[], Any] | None = None,
) -> FleetBenchResult:
    """Start `nproc` ranks on this machine with torch's launcher API (`elastic_launch`, what torchrun runs)
    and return rank 0's result. `progress_factory()` (picklable) makes rank 0's progress display: a context
    manager with `show(label, fraction)`.

    A failure is one line: the failing rank's own (before the lines of ranks that only saw it fail), or, for a
    rank that died, which rank and by which signal.
    """
    config = config or FleetConfig()
    if not isinstance(nproc, int) or nproc < 2:
        raise UsageError(f"--nproc must be at least 2, got {nproc}", "for one device run `flopcalc bench`")
    if in_launcher():
        raise UsageError("--nproc starts its own ranks, but a launcher already started this one (RANK is set)",
                         "drop --nproc under torchrun or srun")
    import tempfile
    import uuid

    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    with contextlib.ExitStack() as stack:
        logs = stack.enter_context(tempfile.TemporaryDirectory(prefix="flopcalc-fleet-"))
        stack.enter_context(_quiet_launcher_logs())
        stack.enter_context(_kept_signal_handlers())
        launch = LaunchConfig(  # torchrun --standalone's rendezvous: c10d on a free local port
            min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"flopcalc-{uuid.uuid4().hex[:12]}",
            rdzv_backend="c10d", rdzv_endpoint="localhost:0",
            rdzv_configs={"timeout": max(1, math.ceil(config.timeout_s))}, max_restarts=0, monitor_interval=0.1,
            logs_specs=DefaultLogsSpecs(log_dir=logs), shutdown_timeout=10,
        )
        try:
            outcomes = elastic_launch(launch, _rank_main)(config, progress_factory)
        except ChildFailedError as error:
            raise FleetError(_child_failure_text(error)) from None
        except SignalException:
            raise KeyboardInterrupt from None
    failures = [item for item in outcomes.values() if isinstance(item, _RankFailure)]
    if failures:  # the rank at fault first, then the lowest rank
        raise FleetError(min(failures, key=lambda failure: (failure.secondary, failure.rank)).message)
    return outcomes[0]


def _child_failure_text(error: Any) -> str:
    """One line for a rank process that died (killed, crashed): which rank, where, how."""
    rank, failure = error.get_first_failure()
    host = socket.gethostname()
    detail = failure.message if isinstance(failure.message, str) else ""
    if failure.exitcode is not None and failure.exitcode < 0:
        how, detail = f"was killed by {failure.signal_name()}", ""
    elif failure.exitcode == INTERRUPTED_EXIT:
        how, detail = "was interrupted (Ctrl-C or SIGTERM)", ""
    else:
        how = f"exited with code {failure.exitcode}"
    if detail.startswith("To enable traceback"):  # the launcher's placeholder when the rank left no error file
        detail = ""
    text = f"rank {rank} on host {host} {how}" + (f": {detail.splitlines()[0]}" if detail else "")
    return text + "; the launcher stopped the other ranks"


@contextlib.contextmanager
def _kept_signal_handlers() -> Iterator[None]:
    """The launcher installs its own SIGINT/SIGTERM/SIGHUP/SIGQUIT handlers and leaves them; put ours back."""
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
    numbers = [getattr(signal, name) for name in names if hasattr(signal, name)]
    main = threading.current_thread() is threading.main_thread()
    handlers = [signal.getsignal(number) for number in numbers] if main else []
    variable = os.environ.get("TORCHELASTIC_SIGNALS_TO_HANDLE")
    try:
        yield
    finally:
        for number, handler in zip(numbers, handlers):
            if handler is not None:  # None: a handler not installed from Python, which cannot be put back
                signal.signal(number, handler)
        if variable is None:
            os.environ.pop("TORCHELASTIC_SIGNALS_TO_HANDLE", None)
        else:
            os.environ["TORCHELASTIC_SIGNALS_TO_HANDLE"] = variable


@contextlib.contextmanager
def _quiet_launcher_logs() -> Iterator[None]:
    """torch's launcher logs every worker start and stop; flopcalc reports failures itself, in one line.

    Its loggers each carry their own level, so each one is silenced (and restored), not only their parent."""
    import logging

    prefixes = ("torch.distributed.elastic", "torch.distributed.launcher", "torch.multiprocessing")
    names = [name for name in list(logging.root.manager.loggerDict) if name.startswith(prefixes)]
    loggers = [logging.getLogger(name) for name in dict.fromkeys([*prefixes, *names])]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, previous):
            logger.setLevel(level)


def quiet_torch_c_logs() -> None:
    """Keep c10d's C++ warnings (socket retries, store timeouts) off stderr: flopcalc reports failures in one
    line. Takes effect only before torch is imported; an explicit TORCH_CPP_LOG_LEVEL is kept."""
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "FATAL")
