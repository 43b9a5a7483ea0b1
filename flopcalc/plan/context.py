"""Context parallelism: each sequence split over `cp` GPUs, attention's keys and values passed around the ring
of them block by block while each GPU computes attention on the block it holds (Ring Attention, Liu et al. 2023;
Megatron-Core's context parallelism). Activations and compute divide by cp; the ring's time is here."""

from __future__ import annotations

from ..errors import UsageError
from ..units import GB
from .hardware import Fleet
from .layout import Layout
from .model import PlanModel

# Ring attention's rule (Liu et al. 2023, "Ring Attention with Blockwise Transformers", Sec. 3): each of the
# cp - 1 steps sends one K/V block while the attention of the block at hand is computed, so a step costs the
# larger of the two. The forward passes K and V; the backward passes K and V again and their gradients.
RING_BLOCKS_FORWARD = 2  # K and V
RING_BLOCKS_BACKWARD = 4  # K, V, dK, dV
LONG_SEQUENCE = 32_768  # --search tries context parallelism from this many tokens per sequence


def has_attention(model: PlanModel) -> bool:
    return bool(model.heads) and bool(model.attention_forward_flops or model.activations is not None)


def check_context(model: PlanModel, layout: Layout) -> None:
    """--cp splits attention's sequence: the model needs attention, and the sequence must split into 2 x cp
    chunks (Megatron-Core gives each GPU two, one early and one late, to balance a causal mask's work)."""
    if layout.cp == 1:
        return
    if not has_attention(model):
        raise UsageError(
            f"--cp {layout.cp} splits attention's sequence, and this model has no attention heads",
            "use --cp 1 (or give --heads for a model whose graph hides its attention)",
        )
    tokens = model.tokens_per_example
    if not tokens:
        raise UsageError(f"--cp {layout.cp} needs the tokens per sequence", "give --seq-len")
    if tokens % (2 * layout.cp):
        raise UsageError(
            f"--cp {layout.cp} does not split the {tokens} tokens of a sequence into 2 x cp equal chunks",
            f"use a cp with 2 x cp dividing {tokens}",
        )


def kv_block_bytes(model: PlanModel, layout: Layout, width: float) -> float:
    """One GPU's K or V block for one micro-batch: its s/cp tokens x the key/value width (hidden x kv_heads /
    heads), 1/tp of it under tensor parallelism (tp splits the heads)."""
    kv_width = (model.hidden or 0) * (model.kv_heads or model.heads or 0) / (model.heads or 1)
    return layout.micro_batch * (model.tokens_per_example or 0) / layout.cp * kv_width * width / layout.tp


def ring_attention_s(
    model: PlanModel, layout: Layout, fleet: Fleet, width: float, attention_forward_s: float
) -> tuple[float, float]:
    """(ring traffic, the part of it not hidden) of one micro-batch on one stage. Per layer: cp - 1 steps, each
    sending K and V (forward) or K, V, dK and dV (backward) point to point at the link's GB/s, overlapped with
    that step's attention compute (`attention_forward_s` is the stage's attention forward per micro-batch on
    this GPU; the backward's is twice it)."""
    if layout.cp <= 1:
        return 0.0, 0.0
    link = fleet.link(layout.cp, layout.tp, layout.num_gpus, "context parallelism")
    layers = (model.blocks or 1) / layout.pp
    block = kv_block_bytes(model, layout, width) / (link.gbps * GB)
    steps = layout.cp - 1
    step_forward = attention_forward_s / layers / layout.cp
    send_forward, send_backward = RING_BLOCKS_FORWARD * block, RING_BLOCKS_BACKWARD * block
    traffic = layers * steps * (send_forward + send_backward)
    exposed = layers * steps * (max(0.0, send_forward - step_forward) + max(0.0, send_backward - 2 * step_forward))
    return traffic, exposed


def context_assumption(layout: Layout) -> str | None:
    if layout.cp <= 1:
        return None
    return (
        f"context parallelism: each sequence split over cp {layout.cp} GPUs, activations and compute / cp, "
        "gradients reduced and ZeRO shards over dp x cp; per layer and micro-batch cp - 1 ring steps passing "
        "K and V (forward) and K, V, dK, dV (backward) point to point, each overlapped with the attention of "
        "the block at hand, only the excess exposed (Ring Attention, Liu et al. 2023, Sec. 3; Megatron-Core "
        "context parallelism); the causal mask's work taken as balanced (2 x cp chunks per sequence); cp ranks "
        "fill nodes after tp, before dp"
    )
