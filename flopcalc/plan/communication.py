"""Time of the ring collectives at nccl-tests' bus bandwidth (busbw), and how many Megatron's blocks run."""

from __future__ import annotations

from ..predict.comm import ring_s
from ..units import GB
from .hardware import Bandwidth, Fleet
from .layout import Layout

# Megatron-LM: each transformer block all-reduces its activations twice in the forward (after attention and
# after the MLP) and twice in the backward; full recomputation re-runs the forward, and its two.
TP_ALL_REDUCES_PER_BLOCK = 4
TP_ALL_REDUCES_RECOMPUTED = 2


def ring_all_reduce_s(nbytes: float, group: int, bandwidth: Bandwidth) -> float:
    """nccl-tests: busbw = algbw x 2(n-1)/n for all-reduce, so time = bytes x 2(n-1)/n / busbw (plan's links
    carry no latency)."""
    return ring_s("all_reduce", nbytes, group, bandwidth.gbps * GB)


def ring_gather_s(nbytes: float, group: int, bandwidth: Bandwidth) -> float:
    """All-gather or reduce-scatter of `nbytes` (the whole buffer): bytes x (n-1)/n / busbw."""
    return ring_s("all_gather", nbytes, group, bandwidth.gbps * GB)


def tensor_parallel_s(hidden_bytes: float, layout: Layout, blocks: int, fleet: Fleet) -> float:
    """Megatron's all-reduces of one micro-batch's hidden stream on one stage: 4 per block (6 with full recompute)."""
    if layout.tp <= 1:
        return 0.0
    all_reduces = TP_ALL_REDUCES_PER_BLOCK + (TP_ALL_REDUCES_RECOMPUTED if layout.recompute == "full" else 0)
    link = fleet.link(layout.tp, 1, layout.num_gpus, "tensor parallelism")
    fullest = -(-blocks // layout.pp)  # the first stages take one more block when pp does not divide them
    return all_reduces * fullest * ring_all_reduce_s(hidden_bytes, layout.tp, link)


def pipeline_transfer_s(hidden_bytes: float, layout: Layout, fleet: Fleet) -> float:
    """One micro-batch's activation sent to the next stage and its gradient sent back, point to point."""
    if layout.pp <= 1:
        return 0.0
    link = fleet.link(layout.pp, layout.tp * layout.data_group, layout.num_gpus, "pipeline parallelism")
    sends = 2 * layout.virtual  # interleaving: each of the v chunks receives its input and returns its gradient
    return sends * hidden_bytes / (layout.tp if layout.split_sequence else 1) / (link.gbps * GB)


def data_parallel_s(
    layout: Layout,
    fleet: Fleet,
    gradient_bytes: float,
    weight_bytes: float,
    forward_mb: float,
    backward_mb: float,
    expert_gradient_bytes: float = 0.0,
    expert_weight_bytes: float = 0.0,
) -> tuple[float, float]:
    """The data-parallel traffic of one step, and the part of it no forward or backward covers (ZeRO paper, Sec. 7).

    The dense states travel over the GPUs they are sharded over (the data group dp x cp, ranks tp apart; a hybrid
    shard group inside a node), a mixture of experts' over the GPUs holding the same experts (plan/experts.py);
    hybrid sharding adds an all-reduce of each gradient shard across the shard groups, once per step."""
    m = layout.grad_accum
    shard = layout.sharded_over
    groups = [(shard, layout.tp, gradient_bytes, weight_bytes)]
    if expert_gradient_bytes:
        groups.append(
            (max(1, shard // layout.ep), layout.tp * layout.cp * layout.ep, expert_gradient_bytes, expert_weight_bytes)
        )
    hidden_under, exposed = 0.0, 0.0  # what may overlap the window below, and what never does
    for group, stride, gradients, weights in groups:
        if group <= 1:
            continue
        link = fleet.link(group, stride, layout.num_gpus, "data parallelism")
        if layout.zero <= 1:  # all-reduce (ZeRO-1: reduce-scatter + all-gather, the same volume) once per step
            hidden_under += ring_all_reduce_s(gradients, group, link)
        elif layout.zero == 2:  # reduce-scatter per micro-batch; all-gather of the new weights after the step
            hidden_under += m * ring_gather_s(gradients, group, link)
            exposed += ring_gather_s(weights, group, link)
        else:  # ZeRO-3: per micro-batch, all-gather the weights for forward and backward, reduce-scatter gradients
            hidden_under += m * (2 * ring_gather_s(weights, group, link) + ring_gather_s(gradients, group, link))
    replicas = layout.data_group // shard
    if replicas > 1:  # hybrid sharding: each shard's gradients all-reduced across the shard groups
        link = fleet.link(replicas, layout.tp * shard, layout.num_gpus, "hybrid sharding's replication")
        hidden_under += ring_all_reduce_s((gradient_bytes + expert_gradient_bytes) / shard, replicas, link)
    window = (
        backward_mb if layout.zero <= 1 else m * backward_mb if layout.zero == 2 else m * (forward_mb + backward_mb)
    )  # the last backward; every backward; every forward and backward
    return hidden_under + exposed, max(0.0, hidden_under - window) + exposed
