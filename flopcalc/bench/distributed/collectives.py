"""Timing one collective the way nccl-tests does: warm up, agree with the group on the slowest single
operation, then time a block of operations sized to take about a target time. The formulas are in
`flopcalc.bench.fleet`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..fleet import P2P_OP

WARMUP_OPS = 2
MAX_ITERATIONS = 20  # nccl-tests' default -n
TARGET_SECONDS = {"cuda": 0.2, "cpu": 0.05}  # timed iterations per size: about this long, 1 to MAX_ITERATIONS


def time_collective(
    op: str, group: Any, members: Sequence[int], rank: int, elements: int, device: Any, target_s: float
) -> tuple[tuple[int, float], float]:
    """Warm up, time one operation, agree with the group on the slowest, then time a block of operations.

    Returns ((iterations, seconds per operation), the agreed time of one operation).
    """
    import torch
    import torch.distributed as dist

    run = make_collective(op, group, members, rank, elements, device)
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


def make_collective(op: str, group: Any, members: Sequence[int], rank: int, elements: int, device: Any) -> Callable:
    """A function running one `op` on float32 buffers of `elements` (the whole message) in `group`."""
    import torch
    import torch.distributed as dist

    def zeros(count: int) -> torch.Tensor:
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
        return _ring_exchange(group, members, rank, zeros(elements), zeros(elements))
    raise ValueError(f"unknown collective {op!r}")


def _ring_exchange(group: Any, members: Sequence[int], rank: int, sent: Any, received: Any) -> Callable:
    """Send to the next member and receive from the previous one at once (pipeline parallelism's pattern)."""
    import torch.distributed as dist

    position = list(members).index(rank)
    following, previous = members[(position + 1) % len(members)], members[(position - 1) % len(members)]

    def exchange(async_op: bool):
        works = dist.batch_isend_irecv(
            [
                dist.P2POp(dist.isend, sent, following, group),
                dist.P2POp(dist.irecv, received, previous, group),
            ]
        )
        if async_op:
            return AllWorks(works)
        for work in works:
            work.wait()
        return None

    return exchange


class AllWorks:
    """Several pending operations waited for as one."""

    def __init__(self, works: Sequence[Any]):
        self._works = works

    def wait(self) -> None:
        for work in self._works:
            work.wait()
