"""FSDP's sharding strategies by their PyTorch names, as the ZeRO stages they are (Zhao et al. 2023, "PyTorch
FSDP", Sec. 3.2): FULL_SHARD = ZeRO-3, SHARD_GRAD_OP = ZeRO-2, HYBRID_SHARD = ZeRO-3 inside a shard group (a
node) with the model states replicated across groups."""

from __future__ import annotations

from ..errors import UsageError, one_of

FSDP_STRATEGIES = {"full": 3, "grad-op": 2, "hybrid": 3}
FSDP_NAMES = {"full": "FULL_SHARD", "grad-op": "SHARD_GRAD_OP", "hybrid": "HYBRID_SHARD"}


def fsdp_setting(
    fsdp: str | None, zero: int | None, *, dp: int, tp: int, cp: int, gpus_per_node: int
) -> tuple[int | None, int]:
    """The ZeRO stage and shard group (0: the whole data group) that `--fsdp` names; `zero` must agree if given.
    Hybrid sharding shards over the data group's GPUs inside one node (ranks fill nodes tp first), and replicates
    across nodes."""
    if fsdp is None:
        return zero, 0
    stage = one_of(
        FSDP_STRATEGIES,
        fsdp,
        f"--fsdp must be {', '.join(FSDP_STRATEGIES)}, got {fsdp!r}",
        "full = ZeRO-3, grad-op = ZeRO-2, hybrid = ZeRO-3 inside a node, replicated across nodes",
    )
    if zero is not None and zero != stage:
        raise UsageError(
            f"--fsdp {fsdp} is ZeRO-{stage}, and --zero {zero} says otherwise", "give one of --fsdp and --zero"
        )
    if fsdp != "hybrid":
        return stage, 0
    group = dp * cp
    per_node = max(1, gpus_per_node // tp)
    shard = min(group, per_node)
    while group % shard:  # the largest divisor of the data group that fits in a node
        shard -= 1
    return stage, shard


def hybrid_replicas(layout_dp: int, layout_cp: int, shard_group: int) -> int:
    """Replicas of each shard under hybrid sharding (1 when the shard group is the whole data group)."""
    return 1 if not shard_group else layout_dp * layout_cp // shard_group


def fsdp_assumption(fsdp: str | None, zero: int, dp: int, cp: int, shard_group: int) -> str | None:
    """What `--fsdp` was taken to mean, said with the plan."""
    if fsdp is None:
        return None
    line = f"--fsdp {fsdp}: PyTorch FSDP's {FSDP_NAMES[fsdp]}, planned as ZeRO-{zero}"
    replicas = hybrid_replicas(dp, cp, shard_group)
    if fsdp == "hybrid":
        line += (
            f" over the {shard_group or dp * cp} GPUs of the data group inside a node, replicated across "
            f"{replicas} such group{'s' if replicas > 1 else ''}: its all-gathers and reduce-scatters on the "
            "intra-node link, one all-reduce of each gradient shard across the groups per step"
        )
    return line + ' (Zhao et al. 2023, "PyTorch FSDP", Sec. 3.2)'
