"""The fleet's layout, from every rank's hello: which ranks share a node, where each runs, and the first rank
that cannot run with the others (its device, backend or options differ), named the one way every message
names a rank (`where`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import FleetError


@dataclass(frozen=True)
class FleetLayout:
    """Which ranks share a node, and where each rank runs."""

    nodes: tuple[tuple[int, ...], ...]  # each node's ranks, by local rank
    hosts: tuple[str, ...]  # by rank
    local_ranks: tuple[int, ...]  # by rank

    @property
    def ranks_per_node(self) -> int:
        return len(self.nodes[0])

    def node_of(self, rank: int) -> int:
        return next(index for index, ranks in enumerate(self.nodes) if rank in ranks)

    def groups(self, scope: str) -> tuple[tuple[int, ...], ...]:
        """world: all ranks; intra: each node's ranks; inter: the i-th rank of every node, for each i."""
        if scope == "world":
            return (tuple(range(len(self.hosts))),)
        if scope == "intra":
            return self.nodes
        return tuple(tuple(node[i] for node in self.nodes) for i in range(self.ranks_per_node))

    def scopes(self) -> tuple[str, ...]:
        """world always; intra and inter when there is more than one node (intra only with 2+ ranks per node)."""
        if len(self.nodes) == 1:
            return ("world",)
        return ("world", "intra", "inter") if self.ranks_per_node > 1 else ("world", "inter")


def where(rank: int, hosts: Mapping[int, str] | Sequence[str]) -> str:
    """`rank 3 on host gpu-07`: how every message names a rank."""
    try:
        host = hosts[rank]
    except (IndexError, KeyError):
        host = "unknown"
    return f"rank {rank} on host {host}"


def fleet_layout(hellos: Sequence[Mapping[str, Any]]) -> FleetLayout:
    """Check that every rank can run with every other (devices, backends, options) and group them into nodes.

    Nodes are the launcher's node index (torchrun's GROUP_RANK) when every rank has one, else the host names.
    Raises FleetError naming the first rank that cannot take part, or the first that differs from rank 0.
    """
    hosts = tuple(str(hello["host"]) for hello in hellos)
    for hello in hellos:
        if hello.get("error"):
            raise FleetError(f"{where(hello['rank'], hosts)} cannot take part: {hello['error']}")
    first = hellos[0]
    checks = (
        ("backend", "backend", "start every rank with the same --backend (auto picks nccl on GPUs, gloo on CPUs)"),
        ("device", "device", "every rank must run on the same kind of device"),
        ("device_name", "device", "a fleet is measured and calibrated per GPU model: run one per model"),
        ("options", "options", "start every rank with the same command line"),
    )
    for hello in hellos[1:]:
        for key, what, hint in checks:
            if hello[key] != first[key]:
                mine, theirs = _describe_difference(key, first[key], hello[key])
                raise FleetError(
                    f"mismatched {what}: {where(hello['rank'], hosts)} has {theirs}, {where(0, hosts)} has {mine}", hint
                )
    by_launcher = all(hello.get("node_rank") is not None for hello in hellos)
    nodes: dict[Any, list[Mapping]] = {}
    for hello in hellos:
        nodes.setdefault(hello["node_rank"] if by_launcher else hello["host"], []).append(hello)
    node_ranks = []
    for members in nodes.values():
        seen: dict[int, int] = {}
        for hello in members:
            if hello["local_rank"] in seen:
                raise FleetError(
                    f"{where(hello['rank'], hosts)} and rank {seen[hello['local_rank']]} both have LOCAL_RANK "
                    f"{hello['local_rank']} on one node",
                    "every rank of a node needs its own LOCAL_RANK",
                )
            seen[hello["local_rank"]] = hello["rank"]
        node_ranks.append(tuple(hello["rank"] for hello in sorted(members, key=lambda h: h["local_rank"])))
    sizes = {len(ranks) for ranks in node_ranks}
    if len(sizes) > 1:
        counts = ", ".join(f"{hosts[ranks[0]]}: {len(ranks)}" for ranks in node_ranks)
        raise FleetError(
            f"the nodes have different numbers of ranks ({counts})", "start the same number of ranks on every node"
        )
    return FleetLayout(tuple(node_ranks), hosts, tuple(int(hello["local_rank"]) for hello in hellos))


def _describe_difference(key: str, mine: Any, theirs: Any) -> tuple[str, str]:
    if key == "options":
        differing = [name for name in mine if mine.get(name) != theirs.get(name)]
        return (
            ", ".join(f"{name}={mine.get(name)}" for name in differing),
            ", ".join(f"{name}={theirs.get(name)}" for name in differing),
        )
    return repr(mine), repr(theirs)
