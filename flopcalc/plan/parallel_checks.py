"""What expert parallelism and sharding groups ask of a layout's numbers, checked where the Layout is built so a
bad combination is one line (exit 2) before any arithmetic runs."""

from __future__ import annotations

import math
from typing import Any

from ..errors import UsageError


def check_expert_split(dp: int, ep: int, capacity_factor: Any) -> None:
    """Expert parallelism lives inside data parallelism (Megatron-Core, DeepSpeed-MoE): ep GPUs of the data group
    hold different experts and the same dense weights, so ep divides dp."""
    if dp % ep:
        raise UsageError(
            f"--ep {ep} does not divide the {dp} data-parallel replicas",
            "expert parallelism splits the data-parallel group: use an ep that divides dp",
        )
    if (
        isinstance(capacity_factor, bool)
        or not isinstance(capacity_factor, (int, float))
        or not math.isfinite(capacity_factor)
        or capacity_factor <= 0
    ):
        raise UsageError(
            f"--capacity-factor must be a finite number > 0, got {capacity_factor!r}",
            "1.0 sends every routed token once; 1.25 is a common setting",
        )


def check_shard_group(layout: Any) -> None:
    """A hybrid shard group (FSDP HYBRID_SHARD) divides the data group (dp x cp) it is carved from."""
    group = layout.dp * layout.cp
    if layout.shard_group < 0 or (layout.shard_group and group % layout.shard_group):
        raise UsageError(
            f"the shard group of {layout.shard_group} GPUs does not divide the data group of {group}",
            "shard inside a node over a divisor of dp x cp",
        )
