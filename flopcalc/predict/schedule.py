"""Pipeline schedules: how many micro-batch slots a step takes, and how layers fall on stages.

1F1B (Narayanan et al. 2021, Sec. 2.2.1): with p stages and m micro-batches the step lasts (m + p - 1) slots of
one micro-batch on one stage: a bubble of (p - 1)/m of the ideal time. Interleaved 1F1B (Sec. 2.2.2) gives each
GPU v model chunks of layers/(p v) layers: the bubble shrinks to (p - 1)/(v m), paid for with v times the
point-to-point sends. The slowest stage sets the pace of every slot.
"""

from __future__ import annotations

from ..errors import UsageError


def bubble_fraction(stages: int, micro_batches: int, virtual: int = 1) -> float:
    """The bubble relative to the ideal (bubble-free) time: (p - 1) / (v m)."""
    _check(stages, micro_batches, virtual)
    return (stages - 1) / (virtual * micro_batches)


def pipeline_slots(stages: int, micro_batches: int, virtual: int = 1) -> float:
    """The step's length in micro-batch times of the slowest stage: m + (p - 1)/v."""
    _check(stages, micro_batches, virtual)
    return micro_batches + (stages - 1) / virtual


def stage_layers(layers: int, stages: int) -> tuple[int, ...]:
    """Layers per stage: an even split, the remainder one more on the first stages (126 layers on 16 stages:
    14 stages of 8 and 2 of 7; the slowest stage has 8)."""
    if stages < 1 or layers < stages:
        raise UsageError(
            f"{stages} pipeline stages need at least as many layers, got {layers}",
            "use at most as many stages as layers",
        )
    base, extra = divmod(layers, stages)
    return tuple(base + 1 if stage < extra else base for stage in range(stages))


def given_stage_layers(split: tuple[int, ...], layers: int, stages: int) -> tuple[int, ...]:
    """A split the user gave (`--stage-layers 9,8,...,7`), checked: one whole number >= 1 per stage, adding up to
    the layers."""
    if len(split) != stages:
        raise UsageError(
            f"--stage-layers gives {len(split)} stages, and pp is {stages}", "give one layer count per stage"
        )
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in split):
        raise UsageError(f"--stage-layers {','.join(map(str, split))}: every stage needs a whole number >= 1 of layers")
    if sum(split) != layers:
        raise UsageError(
            f"--stage-layers {','.join(map(str, split))} adds up to {sum(split)} layers, and the model has {layers}",
            "give counts that add up to the model's layers",
        )
    return split


def _check(stages: int, micro_batches: int, virtual: int) -> None:
    for value, what in (
        (stages, "pipeline stages"),
        (micro_batches, "micro-batches per step"),
        (virtual, "virtual stages (model chunks) per GPU"),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{what} must be a whole number >= 1, got {value!r}")
    if virtual > 1 and stages == 1:
        raise UsageError("interleaving (virtual stages > 1) needs pipeline parallelism", "give pp > 1, or 1 chunk")
