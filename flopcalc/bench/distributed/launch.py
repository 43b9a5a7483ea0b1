"""One machine, G ranks: `bench --distributed --nproc G` starts them through torch's own launcher API
(`elastic_launch`, what torchrun runs) and supervises them: every rank's pulse file tells this process which
rank stopped or froze (SIGSTOP, a debugger, a hung driver), and once one rank is lost or has failed the others
are stopped, so the run ends within --timeout with one line instead of waiting for a rank that never exits."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...api import available_memory
from ...errors import ExitCode, FleetError, FlopcalcError, UsageError, short_error
from ...units import format_bytes
from ..fleet import DEFAULT_MAX_BYTES, FleetBenchResult, FleetConfig, LaunchEnv, buffer_bytes, in_launcher
from ..hardware import available_cpus, resolve_device
from .health import HEARTBEAT_S, STALE_AFTER_S, RankLostError
from .session import HangCallback, run_fleet_bench

INTERRUPTED_EXIT = int(ExitCode.INTERRUPTED)  # a rank ended by Ctrl-C or SIGTERM
RANK_PROCESS_BYTES = 512 * 2**20  # a rank's process: torch, its backend and the matmul ladder (about 220 MiB idle)
RANKS_PER_CPU = 4  # more ranks than this per core starve each other's heartbeats and collectives
SUPERVISE_EVERY_S = 0.2
FAILED_RANK_GRACE_S = 2 * STALE_AFTER_S  # after one rank failed, the others' time to end on their own


@dataclass(frozen=True)
class RankFailure:
    """What a rank started by `launch_fleet` returns when it fails: its one line, and whether it only repeats
    another rank's failure (a rank that died, froze or failed first)."""

    rank: int
    message: str
    secondary: bool = False


def launch_fleet(
    config: FleetConfig | None = None,
    nproc: int = 2,
    *,
    progress_factory: Callable[[], Any] | None = None,
    on_hang: HangCallback | None = None,
) -> FleetBenchResult:
    """Start `nproc` ranks on this machine with torch's launcher API and return rank 0's result.
    `progress_factory()` (picklable) makes rank 0's progress display: a context manager with
    `show(label, fraction)`; `on_hang` (picklable) is each rank's `run_fleet_bench(on_hang=...)`.

    A failure is one line: the failing rank's own (before the lines of ranks that only saw it fail), for a
    rank that died, which rank and by which signal, and for one that stopped responding, which one.
    """
    config = config or FleetConfig()
    if not isinstance(nproc, int) or isinstance(nproc, bool) or nproc < 2:
        raise UsageError(f"--nproc must be at least 2, got {nproc}", "for one device run `flopcalc bench`")
    if in_launcher():
        raise UsageError(
            "--nproc starts its own ranks, but a launcher already started this one (RANK is set)",
            "drop --nproc under torchrun or srun",
        )
    check_machine_holds(config, nproc)
    import tempfile

    with contextlib.ExitStack() as stack:
        logs = stack.enter_context(tempfile.TemporaryDirectory(prefix="flopcalc-fleet-"))
        stack.enter_context(_quiet_launcher_logs())
        stack.enter_context(_kept_signal_handlers())
        supervisor = stack.enter_context(Supervisor(Path(logs) / "ranks", nproc, config.timeout_s))
        outcomes = _launch(config, nproc, logs, supervisor, progress_factory, on_hang)
    failures = [item for item in outcomes.values() if isinstance(item, RankFailure)]
    if failures:  # the rank at fault first, then the lowest rank
        raise FleetError(min(failures, key=lambda failure: (failure.secondary, failure.rank)).message)
    return outcomes[0]


def _launch(
    config: FleetConfig,
    nproc: int,
    logs: str,
    supervisor: Supervisor,
    progress_factory: Callable[[], Any] | None,
    on_hang: HangCallback | None,
) -> dict:
    """torchrun --standalone's rendezvous (c10d on a free local port) through `elastic_launch`; every rank's
    outcome by rank, or the one line of what went wrong."""
    import uuid

    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    launch = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"flopcalc-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        rdzv_configs={"timeout": max(1, math.ceil(config.timeout_s))},
        max_restarts=0,
        monitor_interval=0.1,
        logs_specs=DefaultLogsSpecs(log_dir=logs),
        shutdown_timeout=10,
    )
    try:
        outcomes = elastic_launch(launch, rank_main)(config, progress_factory, on_hang, str(supervisor.folder))
    except ChildFailedError as error:
        raise FleetError(supervisor.stop() or _child_failure_text(error)) from None
    except SignalException:
        raise KeyboardInterrupt from None
    verdict = supervisor.stop()
    if verdict:  # it stopped the ranks, and they had ended anyway
        raise FleetError(verdict)
    return outcomes


def check_machine_holds(config: FleetConfig, nproc: int) -> None:
    """Refuse, before starting anything, more ranks than this machine can hold: one per GPU; on CPUs, the
    memory of every rank's process and buffers, and at most RANKS_PER_CPU per core."""
    kind = resolve_device(config.device) if config.device != "auto" else _auto_device()
    if kind == "cuda":
        import torch

        visible = torch.cuda.device_count()
        if nproc > visible:
            raise UsageError(
                f"--nproc {nproc} needs {nproc} GPUs (one rank per GPU), but {visible} "
                f"{'is' if visible == 1 else 'are'} visible",
                f"use --nproc {visible} or fewer, or --device cpu",
            )
        return
    cpus = available_cpus()
    if nproc > RANKS_PER_CPU * cpus:
        raise UsageError(
            f"--nproc {nproc} is more than {RANKS_PER_CPU} ranks per CPU core ({cpus} available): the ranks would "
            "starve each other's heartbeats and collectives",
            f"use --nproc {RANKS_PER_CPU * cpus} or fewer",
        )
    per_rank = RANK_PROCESS_BYTES + buffer_bytes(config.max_bytes or DEFAULT_MAX_BYTES["cpu"])
    free = available_memory()
    if free is not None and nproc * per_rank > free:
        fits = free // per_rank
        raise UsageError(
            f"--nproc {nproc} needs about {format_bytes(nproc * per_rank)} of memory ({format_bytes(per_rank)} per "
            f"rank: its process and message buffers), but {format_bytes(free)} is free",
            f"use --nproc {fits} or fewer" if fits >= 2 else "lower --max-bytes, or free some memory",
        )


def _auto_device() -> str:
    kind = resolve_device("auto")
    return "cpu" if kind == "mps" else kind


# --- each rank ----------------------------------------------------------------------------------------


def rank_main(
    config: FleetConfig,
    progress_factory: Callable[[], Any] | None,
    on_hang: HangCallback | None,
    folder: str | None = None,
) -> Any:
    """The function `launch_fleet` starts on every rank (a module-level function, so spawn can pickle it)."""
    rank = int(os.environ.get("RANK", -1))
    pulse = RankPulse(Path(folder), rank) if folder else None
    outcome: Any = None
    try:
        env = LaunchEnv.from_environ()
        if env.rank == 0 and progress_factory is not None:
            with progress_factory() as bar:
                outcome = run_fleet_bench(config, env, progress=bar.show, on_hang=on_hang)
        else:
            outcome = run_fleet_bench(config, env, on_hang=on_hang)
    except FlopcalcError as error:
        outcome = RankFailure(rank, str(error), secondary=isinstance(error, RankLostError))
    except KeyboardInterrupt:  # Ctrl-C, or the launcher stopping the ranks: end now, with the code that says so
        raise SystemExit(INTERRUPTED_EXIT) from None
    except Exception as error:  # a bug: still one line for the user
        outcome = RankFailure(rank, f"internal error on rank {rank}: {short_error(error)}")
    finally:
        if pulse is not None:
            pulse.stop(outcome if isinstance(outcome, RankFailure) else None)
    return outcome


class RankPulse:
    """A rank's heartbeat to the process that started it: a file touched every HEARTBEAT_S by a thread (a
    stopped or frozen process stops touching it), and, when the rank ends, a file saying how."""

    def __init__(self, folder: Path, rank: int):
        self._folder, self._rank = folder, rank
        self._path = folder / f"pulse-{rank}"
        _write_json(self._path, {"pid": os.getpid(), "host": socket.gethostname()})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flopcalc-pulse", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self._path)

    def stop(self, failure: RankFailure | None) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * HEARTBEAT_S)
        ended = {"message": failure.message, "secondary": failure.secondary} if failure else {"message": None}
        with contextlib.suppress(OSError):
            _write_json(self._folder / f"ended-{self._rank}", ended)


def _write_json(path: Path, data: dict) -> None:
    """Whole or not at all: the supervisor never reads half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data), encoding="utf-8")
    os.replace(partial, path)


# --- the supervisor, in the process that started the ranks ---------------------------------------------


class Supervisor:
    """Watches the ranks' pulse files from a thread while the launcher waits for them.

    A rank whose pulse has not moved for `stale_s` (half the timeout, at least STALE_AFTER_S) is stopped or
    frozen; once a rank is lost, or has failed and the others have not ended FAILED_RANK_GRACE_S later, every
    rank still running is killed, so the launcher returns. `stop()` gives the verdict: one line, or None.
    """

    def __init__(self, folder: Path, nproc: int, timeout_s: float):
        self.folder, self._nproc = folder, nproc
        self.stale_s = max(STALE_AFTER_S, min(timeout_s / 2, 30.0))
        self._verdict: str | None = None
        self._first_failure: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flopcalc-supervisor", daemon=True)

    def __enter__(self) -> Supervisor:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> str | None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * SUPERVISE_EVERY_S + 1)
        return self._verdict

    def _run(self) -> None:
        while not self._stop.wait(SUPERVISE_EVERY_S):
            pulses, ended = self._read("pulse-"), self._read("ended-")
            verdict = self.judge(pulses, ended, time.time())
            if verdict:
                self._verdict = verdict
                self._kill_unfinished(pulses, ended)
                return

    def _read(self, prefix: str) -> dict[int, tuple[float, dict]]:
        """rank -> (when the file last changed, its content), for every whole file named prefix + rank."""
        found = {}
        for path in self.folder.glob(f"{prefix}*"):
            suffix = path.name[len(prefix) :]
            if not suffix.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError):
                found[int(suffix)] = (path.stat().st_mtime, json.loads(path.read_text(encoding="utf-8")))
        return found

    def judge(
        self, pulses: dict[int, tuple[float, dict]], ended: dict[int, tuple[float, dict]], now: float
    ) -> str | None:
        """The one line that ends the run now, or None while it may go on."""
        for rank, (beat, about) in sorted(pulses.items()):
            silent = now - beat
            if rank not in ended and silent > self.stale_s:
                return (
                    f"rank {rank} on host {about.get('host', 'unknown')} stopped responding: its heartbeat has "
                    f"not moved for {silent:.0f} s (the process is stopped or frozen); flopcalc stopped the "
                    "other ranks"
                )
        failures = sorted(
            (info.get("secondary", False), rank, info["message"])
            for rank, (_, info) in ended.items()
            if info.get("message")
        )
        if not failures or len(ended) >= self._nproc:
            return None
        self._first_failure = self._first_failure or now
        if now - self._first_failure > FAILED_RANK_GRACE_S:
            return failures[0][2]
        return None

    def _kill_unfinished(self, pulses: dict[int, tuple[float, dict]], ended: dict[int, tuple[float, dict]]) -> None:
        """SIGKILL (a stopped process takes no other signal) every rank that has not ended, if it is still this
        process's child (a pid the system reused is left alone). A rank that never pulsed (stopped while it
        imported torch) is found among this process's children by the RANK the launcher gave it."""
        children = _rank_children()
        for rank in range(self._nproc):
            pid = pulses[rank][1].get("pid") if rank in pulses else children.get(rank)
            if rank in ended or not isinstance(pid, int) or not _is_my_child(pid):
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _is_my_child(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return not Path("/proc").is_dir()  # no /proc to ask (not Linux): trust the pid the rank wrote moments ago
    return int(fields[1]) == os.getpid()


def _rank_children() -> dict[int, int]:
    """rank -> pid of this process's children the launcher started (their environment holds RANK), on Linux."""
    found: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or not _is_my_child(int(entry.name)):
                continue
            with contextlib.suppress(OSError, ValueError):
                variables = dict(
                    item.split("=", 1)
                    for item in (entry / "environ").read_bytes().decode(errors="replace").split("\0")
                    if "=" in item
                )
                if "TORCHELASTIC_RUN_ID" in variables and variables.get("RANK", "").isdigit():
                    found[int(variables["RANK"])] = int(entry.name)
    return found


# --- what the launcher does around the ranks ------------------------------------------------------------


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

        for logger, level in zip(loggers, previous):
            logger.setLevel(level)


def quiet_torch_c_logs() -> None:
    """Keep c10d's C++ warnings (socket retries, store timeouts) off stderr: flopcalc reports failures in one
    line. Takes effect only before torch is imported; an explicit TORCH_CPP_LOG_LEVEL is kept."""
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "FATAL")
