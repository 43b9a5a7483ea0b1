"""One rank's run of the fleet benchmark: join, check the others, start the process group, time the matmul
ladder and every collective, post the measurements; rank 0 collects them into the fleet's result.

A distributed program must never hang an allocation, so every collective and store operation has a timeout
(`FleetConfig.timeout_s`), every step that talks to other ranks turns a failure into one line naming the rank
at fault (`health.diagnose`), and the process group is always destroyed, also on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ...api import available_memory
from ...calibration import FLEET_OPS
from ...errors import FleetError, FlopcalcError, UsageError, short_error
from ...units import format_bytes
from ..fleet import (
    DEFAULT_MAX_BYTES,
    ELEMENT_BYTES,
    P2P_OP,
    SIZE_STEP,
    FleetBenchResult,
    FleetConfig,
    LaunchEnv,
    RankTiming,
    buffer_bytes,
    group_elements,
    message_sizes,
)
from ..fleet_layout import FleetLayout, fleet_layout
from ..hardware import available_cpus, describe_device, precision_skip_reason, resolve_device
from ..matmul import run_matmul_bench
from .collectives import TARGET_SECONDS, time_collective
from .health import HEARTBEAT_S, Heartbeat, RankLostError, diagnose, multi_get, sigterm_as_interrupt
from .rendezvous import connect_store, exchange_hellos, store_text
from .result import LocalDevice, assemble_result, encode_report

DEFAULT_MATMUL_SECONDS = {"cuda": 10.0, "cpu": 3.0}

ProgressCallback = Callable[[str, float], None]  # (what is running, fraction of the run done)
HangCallback = Callable[[str], None]  # called with one line when a step outlives every timeout


def run_fleet_bench(
    config: FleetConfig | None = None,
    env: LaunchEnv | None = None,
    *,
    progress: ProgressCallback | None = None,
    on_hang: HangCallback | None = None,
) -> FleetBenchResult | None:
    """Run this rank's part of a fleet benchmark; rank 0 returns the whole fleet's result, the others None.

    Call it on every rank a launcher started (`env` defaults to this process's environment). Raises FleetError
    (one line naming the rank and host at fault) when a rank cannot join, differs from the others, dies,
    freezes or fails; UsageError for options that cannot work. The process group is destroyed whatever happens.
    `on_hang(line)` runs on the heartbeat's thread when a step outlives every timeout (stuck where no Python
    can reach it): an entry point that must end the process then does it there (the CLI exits 2).
    """
    config = config or FleetConfig()
    env = env or LaunchEnv.from_environ()
    import torch.distributed as dist

    if not dist.is_available():
        raise FleetError("this torch build has no torch.distributed", "install a torch build with distributed support")
    started = time.perf_counter()
    with sigterm_as_interrupt():
        session = Session(env, config, on_hang=on_hang)
        try:
            return session.run(progress, started)
        except BaseException as error:
            session.record_failure(error)
            raise
        finally:
            session.close()


class Session:
    """One rank's run: the store, the handshake, the process group and its groups, the measurements."""

    def __init__(self, env: LaunchEnv, config: FleetConfig, *, on_hang: HangCallback | None = None):
        self.env, self.config = env, config
        self.host = socket.gethostname()
        self.hosts: dict[int, str] = {env.rank: self.host}
        self.timeout = float(config.timeout_s)
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self._hosting = env.rank == 0 and not env.agent_store  # this rank's process serves the store
        self._failed = False
        self._previous_excepthook = sys.excepthook
        self._heart: Heartbeat | None = None
        self._base = connect_store(env, self.timeout, self.host, hosting=self._hosting)
        import torch.distributed as dist

        self.store = dist.PrefixStore("flopcalc", self._base)
        self.store.add(f"beat/{env.rank}", 1)  # the keys exist before anyone reads them
        self.store.set(f"at/{env.rank}", "joining")
        second = self._base.clone() if hasattr(self._base, "clone") else None
        self._heart = Heartbeat(
            None if second is None else dist.PrefixStore("flopcalc", second), env.rank, self.host, on_hang=on_hang
        )

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
        self.store.set(f"result/{env.rank}", encode_report(tflops, self.notes, self.warnings, timings))
        if env.rank != 0:
            return None
        reports = self._gather_reports()
        if progress:
            progress("done", 1.0)
        return assemble_result(
            local,
            layout,
            reports,
            world_size=env.world_size,
            timeout_s=self.timeout,
            matmul_seconds=matmul_seconds,
            seconds_used=time.perf_counter() - started,
        )

    def _local_device(self) -> LocalDevice:
        """Resolve this rank's device and backend; a problem is kept for the hello, so every rank hears of it."""
        import torch

        config, env = self.config, self.env
        local = LocalDevice(torch_version=str(torch.__version__))
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
                    raise UsageError(
                        f"LOCAL_RANK {env.local_rank} but {count} GPU(s) are visible on {self.host}",
                        "start at most one rank per GPU",
                    )
                torch.cuda.set_device(env.local_rank)
            self._check_buffers_fit(local.kind)
            info = describe_device(local.kind)
            local.name = info.device_name
            local.precisions = config.precisions or _default_precisions(info)
        except FlopcalcError as error:
            local.error = str(error)
        return local

    def _check_buffers_fit(self, kind: str) -> None:
        """The largest message's buffers must fit in what the device has free (on a CPU node, for every rank
        the launcher started there: LOCAL_WORLD_SIZE)."""
        max_bytes = self.config.max_bytes or DEFAULT_MAX_BYTES[kind]
        if kind == "cuda":
            import torch

            free, sharing = torch.cuda.mem_get_info(self.env.local_rank)[0], 1
            where = f"GPU {self.env.local_rank} on host {self.host}"
        else:
            free, sharing, where = available_memory(), int(os.environ.get("LOCAL_WORLD_SIZE") or 1), f"host {self.host}"
        needed = buffer_bytes(max_bytes) * sharing
        if free is not None and needed > free:
            ranks = f" for {sharing} ranks" if sharing > 1 else ""
            raise UsageError(
                f"--max-bytes {format_bytes(max_bytes)} needs about {format_bytes(needed)} of message buffers{ranks}, "
                f"but {where} has {format_bytes(free)} free",
                "lower --max-bytes",
            )

    def _handshake(self, local: LocalDevice) -> FleetLayout:
        """Every rank posts a hello (host, device, backend, options) in the store and waits for all the others'."""
        env = self.env
        hello = {
            "rank": env.rank,
            "host": self.host,
            "pid": os.getpid(),
            "local_rank": env.local_rank,
            "node_rank": env.node_rank,
            "device": local.kind,
            "device_name": local.name,
            "backend": local.backend,
            "torch_version": local.torch_version,
            "options": self.config.options(),
            "error": local.error,
        }
        self._set_phase("joining")
        hellos = exchange_hellos(self.store, env, hello, self.timeout)
        layout = fleet_layout(hellos)
        versions = {hello["torch_version"] for hello in hellos}
        if len(versions) > 1:
            self.warnings.append(f"the ranks run different torch versions ({', '.join(sorted(versions))})")
        return layout

    def _init_process_group(self, local: LocalDevice) -> None:
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
                backend=local.backend,
                store=dist.PrefixStore("process_group", self._base),
                rank=env.rank,
                world_size=env.world_size,
                timeout=timedelta(seconds=self.timeout),
                **options,
            )

    def _matmul(self, local: LocalDevice, layout: FleetLayout, progress: ProgressCallback | None) -> tuple[dict, float]:
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

    def _groups(self, layout: FleetLayout) -> list[tuple[str, Any, tuple[int, ...], int, str]]:
        """What this rank times: (scope, group handle, members, group index, op), each scope's groups made by
        every rank (torch requires it), then the send/recv ring over the world."""
        import torch.distributed as dist

        plan: list[tuple[str, Any, tuple[int, ...], int, str]] = []
        with self.step("creating the groups"):
            for scope in layout.scopes():
                for index, members in enumerate(layout.groups(scope)):
                    handle = (
                        None if scope == "world" else dist.new_group(list(members), timeout=_timedelta(self.timeout))
                    )
                    if self.env.rank in members:
                        plan.extend((scope, handle, members, index, op) for op in FLEET_OPS)
        plan.append(("world", None, tuple(range(self.env.world_size)), 0, P2P_OP))
        return plan

    def _network(self, local: LocalDevice, layout: FleetLayout, progress: ProgressCallback | None) -> list[RankTiming]:
        """Time every collective over the size ladder in every scope, then the send/recv ring, on every rank."""
        import torch

        rank = self.env.rank
        device = torch.device("cuda", self.env.local_rank) if local.backend == "nccl" else torch.device("cpu")
        sizes = message_sizes(self.config.max_bytes or DEFAULT_MAX_BYTES[local.kind], local.kind)
        plan = self._groups(layout)
        total, done = len(plan) * len(sizes), 0
        timings: list[RankTiming] = []
        for scope, group, members, index, op in plan:
            for size in sizes:
                done += 1
                elements = group_elements(size, len(members)) if op != P2P_OP else max(1, size // ELEMENT_BYTES)
                label = f"{op} of {format_bytes(elements * ELEMENT_BYTES)} ({scope})"
                if progress:
                    progress(label, 0.5 + 0.5 * (done - 1) / total)
                with self.step(label):
                    timing, one = time_collective(
                        op, group, members, rank, elements, device, TARGET_SECONDS[local.kind]
                    )
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
            return [json.loads(value) for value in multi_get(self.store, keys)]

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
            raise diagnose(
                self.store,
                me=self.env.rank,
                world_size=self.env.world_size,
                hosts=self.hosts,
                label=label,
                error=error,
                elapsed=time.monotonic() - began,
                timeout=self.timeout,
                store_text=store_text(self.env),
                store_hint="rank 0 stopped; see its error" if not self.env.agent_store else None,
            ) from error

    def record_failure(self, error: BaseException) -> None:
        """Tell the other ranks why this one stops (before the process group goes, so they find it)."""
        if isinstance(error, KeyboardInterrupt):
            message = f"interrupted ({error.args[0] if error.args else 'Ctrl-C'})"
        else:
            message = str(error) if isinstance(error, FlopcalcError) else short_error(error)
        self._failed = True
        event = {
            "rank": self.env.rank,
            "host": self.host,
            "kind": "left" if isinstance(error, RankLostError) else "failed",
            "phase": self._heart.phase if self._heart else "joining",
            "message": message,
        }
        try:
            self.store.set_timeout(_timedelta(min(5.0, self.timeout)))
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


def _timedelta(seconds: float):
    from datetime import timedelta

    return timedelta(seconds=seconds)
