"""How ranks learn that another rank died, froze or failed, so a fleet run never hangs an allocation: a
heartbeat per rank in the rendezvous store, failure events, and the diagnosis that turns a failed collective
into one line naming the rank at fault."""

from __future__ import annotations

import _thread
import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ...errors import FleetError, short_error
from ..fleet_layout import where

HEARTBEAT_S = 0.5
STALE_AFTER_S = 2.5  # a heartbeat that has not moved for this long belongs to a rank that died or froze


class RankLostError(FleetError):
    """This rank stopped because another rank died, froze or failed: the message names that rank."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
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


def interrupt_main(message: str) -> None:
    """What a hung step does when the caller gave no `on_hang`: interrupt the main thread (it sees a
    KeyboardInterrupt as soon as it runs Python again). A library cannot end the process; the CLI can."""
    _thread.interrupt_main()


class Heartbeat:
    """A thread that counts up this rank's `beat/RANK` key in the store and says what the rank is doing
    (`at/RANK`), on its own store connection, so it keeps beating while the main thread waits in a collective.

    It is also the last resort against a hang no timeout caught: a step still running `limit_s` after it began
    is reported to the others and handed to `on_hang(one line)` (the CLI's ends the process with exit 2;
    without one, the main thread is interrupted).
    """

    def __init__(
        self,
        store: Any | None,
        rank: int,
        host: str,
        *,
        interval: float = HEARTBEAT_S,
        on_hang: Callable[[str], None] | None = None,
    ):
        self.phase = "joining"
        self._store, self._rank, self._host, self._interval = store, rank, host, interval
        self._on_hang = on_hang or interrupt_main
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
        message = (
            f"rank {self._rank} on host {self._host} hung in {self.phase} for {self._limit:.0f} s, past every "
            f"timeout: stopping it"
        )
        if self.running:
            event = {"rank": self._rank, "host": self._host, "kind": "failed", "phase": self.phase, "message": "hung"}
            with contextlib.suppress(Exception):
                self._store.append("events", json.dumps(event) + "\n")
        self._on_hang(message)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * self._interval)


# --- what the store says about the other ranks ------------------------------------------------------------


def multi_get(store: Any, keys: Sequence[str]) -> list[bytes]:
    if hasattr(store, "multi_get"):
        return list(store.multi_get(list(keys)))
    return [store.get(key) for key in keys]


def read_events(store: Any) -> list[dict]:
    """The failures the ranks posted so far (`failed`: its own; `left`: it stopped because of another rank)."""
    if not store.check(["events"]):
        return []
    text = store.get("events").decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_beats(store: Any, world_size: int) -> dict[int, int]:
    keys = [f"beat/{rank}" for rank in range(world_size)]
    return {rank: int(value) for rank, value in enumerate(multi_get(store, keys))}


def read_phases(store: Any, world_size: int) -> dict[int, str]:
    keys = [f"at/{rank}" for rank in range(world_size)]
    return {rank: value.decode() for rank, value in enumerate(multi_get(store, keys))}


def diagnose(
    store: Any,
    *,
    me: int,
    world_size: int,
    hosts: Mapping[int, str],
    label: str,
    error: BaseException,
    elapsed: float,
    timeout: float,
    store_text: str,
    store_hint: str | None,
) -> FleetError:
    """Which rank is at fault when `label` failed on rank `me`: one that reported a failure, else one whose
    heartbeat stopped, else a timeout with every rank alive (saying where the others are)."""
    cause = torch_message(error)
    seen = f"seen by {where(me, hosts)} after {elapsed:.1f} s: {cause}"
    try:
        before = read_beats(store, world_size)
        time.sleep(STALE_AFTER_S)
        after = read_beats(store, world_size)
        events = read_events(store)
    except Exception:
        return RankLostError(f"{label} failed and {store_text} is gone ({seen})", store_hint)
    failed = [event for event in events if event["kind"] == "failed" and event["rank"] != me]
    if failed:
        event = failed[0]
        return RankLostError(
            f"rank {event['rank']} on host {event['host']} failed during {event['phase']}: {event['message']}"
        )
    left = {event["rank"]: event for event in events if event["kind"] == "left"}
    heartbeat_works = after.get(me, 0) > before.get(me, 0)
    stopped = [rank for rank in sorted(after) if rank != me and after[rank] == before.get(rank) and rank not in left]
    if heartbeat_works and stopped:
        return RankLostError(
            f"{describe_ranks(stopped, hosts)} stopped responding during {label}: the process died or hangs ({seen})",
            "see that rank's log; raise --timeout if it was only slow",
        )
    if left:
        return RankLostError(next(iter(left.values()))["message"])
    if elapsed >= 0.9 * timeout:
        phases = read_phases(store, world_size)
        behind = [rank for rank, phase in sorted(phases.items()) if phase != label]
        where_behind = "; ".join(f"{where(rank, hosts)} is at {phases[rank]}" for rank in behind[:3])
        return FleetError(
            f"{label} timed out after {timeout:g} s (--timeout) on {where(me, hosts)}; every rank is alive"
            + (f"; {where_behind}" if where_behind else ""),
            "raise --timeout if the network or a rank is that slow",
        )
    return FleetError(f"{label} failed on {where(me, hosts)}: {cause}")


def describe_ranks(ranks: Sequence[int], hosts: Mapping[int, str] | None = None) -> str:
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
