"""Collective and point-to-point times at their own message size, from a network's bus-bandwidth curve.

nccl-tests' convention (its PERFORMANCE.md): bus bandwidth = algorithm bandwidth x 2(n-1)/n for all-reduce and
x (n-1)/n for all-gather and reduce-scatter, the traffic of a ring; so a collective on a buffer of B bytes over
n GPUs takes B x 2(n-1)/n / busbw (all-reduce) or B x (n-1)/n / busbw (the others; B the whole gathered buffer),
plus one latency per ring step: 2(n-1) steps for an all-reduce, n-1 for the others, 1 for a point-to-point send.
"""

from __future__ import annotations

from ..device import COLLECTIVES, Network


def traffic_factor(collective: str, group: int) -> float:
    """Bytes each GPU sends per byte of buffer, for a ring of `group` GPUs."""
    if collective == "p2p":
        return 1.0
    if group <= 1:
        return 0.0
    share = (group - 1) / group
    return 2 * share if collective == "all_reduce" else share


def ring_steps(collective: str, group: int) -> int:
    if collective == "p2p":
        return 1
    return 0 if group <= 1 else (2 * (group - 1) if collective == "all_reduce" else group - 1)


def ring_s(collective: str, nbytes: float, group: int, bytes_per_s: float, latency_s: float = 0.0) -> float:
    """Seconds of one ring `collective` on `nbytes` over `group` GPUs at a bus bandwidth of `bytes_per_s`, with
    `latency_s` per ring step: the one formula plan, infer and the step prediction all price collectives with."""
    return nbytes * traffic_factor(collective, group) / bytes_per_s + ring_steps(collective, group) * latency_s


def collective_s(network: Network, collective: str, nbytes: float, group: int) -> float:
    """Seconds of one `collective` on a buffer of `nbytes` over `group` GPUs (p2p: `nbytes` sent once), at the
    network's bus bandwidth for that message size."""
    if collective not in COLLECTIVES:
        raise ValueError(f"unknown collective {collective!r}")
    if nbytes <= 0 or (collective != "p2p" and group <= 1):
        return 0.0
    return ring_s(collective, nbytes, group, network.bus_bandwidth(collective, nbytes), network.latency_s)
