"""Meeting the other ranks before any collective: torch's TCPStore (hosted by rank 0, or by torchrun's agent),
reached in short attempts so an absent host is reported in about --timeout, and every rank's hello (host,
device, options) posted there and read back, so ranks that cannot work together stop before they hang."""

from __future__ import annotations

import json
import time
from typing import Any

from ...errors import FleetError, FlopcalcError
from ..fleet import LaunchEnv
from ..fleet_layout import where
from .health import RankLostError, describe_ranks, multi_get, read_events, torch_message


def store_text(env: LaunchEnv) -> str:
    """How messages name the rendezvous store."""
    owner = "torchrun's agent on the first node" if env.agent_store else "rank 0"
    return f"the rendezvous store at {env.master_addr}:{env.master_port} (hosted by {owner})"


def connect_store(env: LaunchEnv, timeout: float, host: str, *, hosting: bool) -> Any:
    """A TCPStore client (or, when `hosting`, the server): torch's own rendezvous store.

    A client retries in short attempts until the timeout, so an absent store host is reported in about
    --timeout (one long attempt of torch's takes up to twice its timeout)."""
    from datetime import timedelta

    import torch.distributed as dist

    deadline = time.monotonic() + timeout
    while True:
        attempt = timeout if hosting else max(0.5, min(5.0, (deadline - time.monotonic()) / 2))
        try:
            store = dist.TCPStore(
                env.master_addr,
                env.master_port,
                env.world_size,
                is_master=hosting,
                timeout=timedelta(seconds=attempt),
                wait_for_workers=False,
                multi_tenant=True,
            )
            store.set_timeout(timedelta(seconds=timeout))
            return store
        except RuntimeError as error:
            if hosting:
                raise FleetError(
                    f"rank 0 on host {host} cannot host the rendezvous store at "
                    f"{env.master_addr}:{env.master_port}: {torch_message(error)}",
                    "pick a free MASTER_PORT",
                ) from None
            if time.monotonic() + attempt > deadline:
                raise _unreachable(env, timeout, host, error) from None


def _unreachable(env: LaunchEnv, timeout: float, host: str, error: RuntimeError) -> FleetError:
    address = f"{env.master_addr}:{env.master_port}"
    if env.agent_store:
        return FleetError(
            f"{where(env.rank, {env.rank: host})} cannot reach torchrun's rendezvous store at {address} "
            f"within {timeout:g} s (--timeout): {torch_message(error)}"
        )
    return FleetError(
        f"rank 0 never joined: {where(env.rank, {env.rank: host})} found no rendezvous store at {address} "
        f"(rank 0 hosts it) within {timeout:g} s (--timeout)",
        "check that rank 0 started, and MASTER_ADDR/MASTER_PORT",
    )


def exchange_hellos(store: Any, env: LaunchEnv, hello: dict, timeout: float) -> list[dict]:
    """Post this rank's hello and wait for every other rank's; a rank that stopped, or never came within
    `timeout`, is a RankLostError naming it."""
    keys = [f"hello/{rank}" for rank in range(env.world_size)]
    deadline = time.monotonic() + timeout
    delay = 0.02
    try:
        store.set(f"hello/{env.rank}", json.dumps(hello))
        while not store.check(keys):
            events = read_events(store)  # a rank that stopped, or one that found out first which never joined
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
                    f"{describe_ranks(missing)} never joined within {timeout:g} s (--timeout): "
                    f"{env.world_size - len(missing)} of {env.world_size} ranks reached {store_text(env)}",
                    "start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, or raise --timeout",
                )
            time.sleep(delay)
            delay = min(0.5, delay * 1.5)
        values = multi_get(store, keys)
    except FlopcalcError:
        raise
    except RuntimeError as error:
        raise RankLostError(
            f"lost {store_text(env)} while the ranks were joining: {torch_message(error)}",
            "rank 0 stopped; see its error" if not env.agent_store else None,
        ) from None
    return [json.loads(value) for value in values]
