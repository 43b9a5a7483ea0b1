"""G decode steps summed from two counted ones: each layer's FLOPs and bytes grow linearly with the context
(attention and the KV read), so the steps between the first and the last are summed in closed form."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..errors import ModelRunError
from .bounds import LayerBound, PassBound


def midpoint(first: PassBound, last: PassBound) -> PassBound:
    """The mean decode step: each layer's FLOPs and bytes halfway between the first step's and the last's."""

    def mean(a: LayerBound, b: LayerBound) -> LayerBound:
        return LayerBound(
            a.name,
            a.type,
            (a.flops + b.flops) / 2,
            (a.weight_bytes + b.weight_bytes) / 2,
            (a.activation_bytes + b.activation_bytes) / 2,
            (a.kv_cache_bytes + b.kv_cache_bytes) / 2,
            (a.other_bytes + b.other_bytes) / 2,
            (a.compute_s + b.compute_s) / 2,
            (a.memory_s + b.memory_s) / 2,
            a.kernel_time,
            (a.matmul_flops + b.matmul_flops) / 2,
            a.profile,
        )

    return PassBound(tuple(mean(a, b) for a, b in paired(first, last)))


def paired(first: PassBound, last: PassBound) -> Iterable[tuple[LayerBound, LayerBound]]:
    names = [layer.name for layer in first.layers]
    if names != [layer.name for layer in last.layers]:
        raise ModelRunError(
            "the decode steps at two context lengths ran different layers",
            "a model whose graph changes with the context is not supported by --generate",
        )
    return zip(first.layers, last.layers)


def steps_time(first: PassBound, last: PassBound, steps: int) -> tuple[float, float]:
    """The summed bound of `steps` decode steps, split into compute- and memory-bound time. Each layer's FLOPs
    and bytes grow linearly with the context, from the first step's to the last's (attention and the KV read)."""
    compute = memory = 0.0
    for a, b in paired(first, last):
        if a.kernel_time == "sum":  # a profile's rule: both times, each linear in the context, so their sum is too
            part_compute, part_memory = sum_of_sum(a.compute_s, b.compute_s, a.memory_s, b.memory_s, steps)
        else:
            part_compute, part_memory = sum_of_max(a.compute_s, b.compute_s, a.memory_s, b.memory_s, steps)
        compute += part_compute
        memory += part_memory
    return compute, memory


def sum_of_sum(c_first: float, c_last: float, m_first: float, m_last: float, steps: int) -> tuple[float, float]:
    """sum over i < steps of c(i) + m(i), c and m linear from the first step to the last: steps x the mean of the
    two ends; returned as compute-bound time when the arithmetic is the larger part, else as memory-bound."""
    compute, memory = steps * (c_first + c_last) / 2, steps * (m_first + m_last) / 2
    return (compute + memory, 0.0) if compute >= memory else (0.0, compute + memory)


def sum_of_max(c_first: float, c_last: float, m_first: float, m_last: float, steps: int) -> tuple[float, float]:
    """sum over i < steps of max(c(i), m(i)), c and m linear from (c_first, m_first) at i = 0 to (c_last, m_last)
    at i = steps - 1; returned as (the steps where c >= m, the steps where m > c)."""
    if steps == 1:
        return (c_first, 0.0) if c_first >= m_first else (0.0, m_first)
    c_step, m_step = (c_last - c_first) / (steps - 1), (m_last - m_first) / (steps - 1)
    gap, gap_step = c_first - m_first, c_step - m_step  # c(i) - m(i) = gap + gap_step * i

    def total(start: float, step: float, lo: int, hi: int) -> float:  # sum of start + step * i for lo <= i < hi
        count = hi - lo
        return count * start + step * (lo + hi - 1) * count / 2 if count > 0 else 0.0

    if gap_step == 0:
        split = 0 if gap >= 0 else steps  # compute-bound from `split` on
        return total(c_first, c_step, split, steps), total(m_first, m_step, 0, split)
    crossing = -gap / gap_step
    if gap_step > 0:  # compute-bound from the crossing on
        split = min(max(math.ceil(crossing), 0), steps)
        return total(c_first, c_step, split, steps), total(m_first, m_step, 0, split)
    split = min(max(math.floor(crossing) + 1, 0), steps)  # compute-bound up to the crossing
    return total(c_first, c_step, 0, split), total(m_first, m_step, split, steps)
