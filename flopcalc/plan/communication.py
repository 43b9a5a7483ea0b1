"""Time of the ring collectives at nccl-tests' bus bandwidth (busbw), and how many Megatron's blocks run."""

from __future__ import annotations

from ..units import GB
from .hardware import Bandwidth, Fleet
from .layout import Layout

# Megatron-LM: each transformer block all-reduces its activations twice in the forward (after attention and
# after the MLP) and twice in the backward; full recomputation re-runs the forward, and its two.
TP_ALL_REDUCES_PER_BLOCK = 4
TP_ALL_REDUCES_RECOMPUTED = 2


def ring_all_reduce_s(nbytes: float, group: int, bandwidth: Bandwidth) -> float:
    """nccl-tests: busbw = algbw x 2(n-1)/n for all-reduce, so time = bytes x 2(n-1)/n / busbw."""
    return 0.0 if group <= 1 else nbytes * 2 * (group - 1) / group / (bandwidth.gbps * GB)


def ring_gather_s(nbytes: float, group: int, bandwidth: Bandwidth) -> float:
    """All-gather or reduce-scatter of `nbytes` (the whole buffer): bytes x (n-1)/n / busbw."""
    return 0.0 if group <= 1 else nbytes * (group - 1) / group / (bandwidth.gbps * GB)


def tensor_parallel_s(hidden_bytes: float, layout: Layout, blocks: int, fleet: Fleet) -> float:
    """Megatron's all-reduces of one micro-batch's hidden stream on one stage: 4 per block (6 with full recompute)."""
    if layout.tp <= 1:
        return 0.0
    all_reduces = (TP_ALL_REDUCES_PER_BLOCK + (TP_ALL_REDUCES_RECOMPUTED if layout.recompute == "full" else 0))
    link = fleet.link(layout.tp, 1, layout.num_gpus, "tensor parallelism")
    fullest = -(-blocks // layout.pp)  # the first stages take one more block when pp does not divide them
    return all_reduces * fullest * ring_all_reduce_s(hidden_bytes, layout.tp, link)


def pipeline_transfer_s(hidden_bytes: float, layout: Layout, fleet: Fleet) -> float:
    """One micro-batch's activation sent to the next stage and its gradient sent back, point to point."""
    if layout.pp <= 1:
        return 0.0
    link = fleet.link(layout.pp, layout.tp * layout.dp, layout.num_gpus, "pipeline parallelism")
    sends = 2 * layout.virtual  # interleaving: each of the v chunks receives its input and returns its gradient
    return sends * hidden_bytes / (layout.tp if layout.split_sequence else 1) / (link.gbps * GB)


def data_parallel_s(layout: Layout, fleet: Fleet, gradient_bytes: float, weight_bytes: float, forward_mb: float,
                    backward_mb: float) -> tuple[float, float]:
    """The data-parallel traffic of one step, and the part of it no forward or backward covers (ZeRO paper, Sec. 7)."""
    dp, m = layout.dp, layout.grad_accum
    if dp <= 1:
        return 0.0, 0.0
    link = fleet.link(dp, layout.tp, layout.num_gpus, "data parallelism")
    if layout.zero <= 1:  # all-reduce (ZeRO-1: reduce-scatter + all-gather, the same volume) once per step,
        dp_comm = ring_all_reduce_s(gradient_bytes, dp, link)  # under the last micro-batch's backward
        return dp_comm, max(0.0, dp_comm - backward_mb)
    if layout.zero == 2:  # reduce-scatter per micro-batch under its backward; all-gather of the new weights
        scatter = m * ring_gather_s(gradient_bytes, dp, link)
        gather = ring_gather_s(weight_bytes, dp, link)
        return scatter + gather, max(0.0, scatter - m * backward_mb) + gather
    # ZeRO-3: per micro-batch, all-gather the weights for forward and backward, reduce-scatter gradients
    dp_comm = m * (2 * ring_gather_s(weight_bytes, dp, link) + ring_gather_s(gradient_bytes, dp, link))
    return dp_comm, max(0.0, dp_comm - m * (forward_mb + backward_mb))
