"""Expert parallelism: a mixture of experts' experts split over `ep` GPUs of the data-parallel group, each
token sent to the GPUs holding its top-k experts and back (GShard, Lepikhin et al. 2020; Megatron-Core MoE).
The memory split and the all-to-all time are here so the rest of the plan only asks for them."""

from __future__ import annotations

from ..errors import UsageError
from .communication import ring_gather_s
from .hardware import Fleet
from .layout import Layout
from .model import PlanModel

# Each MoE layer runs two all-to-alls in the forward (dispatch the tokens to their experts, combine the outputs
# back) and their two gradients in the backward; full recomputation re-runs the forward's two.
ALL_TO_ALLS_PER_MOE_LAYER = 4
ALL_TO_ALLS_RECOMPUTED = 2


def expert_params(model: PlanModel) -> float:
    """Parameters of every experts module (all experts of all MoE layers)."""
    return float(sum(layer.params for layer in model.experts))


def expert_params_on_stage(model: PlanModel, pp: int) -> float:
    """Expert parameters one pipeline stage holds: the experts live in the blocks, which split evenly."""
    return expert_params(model) / pp


def expert_data_group(layout: Layout) -> int:
    """GPUs holding the same experts, over which their gradients reduce and ZeRO shards their states: the
    shard group over ep (each ep-th GPU of it holds the same experts)."""
    return max(1, layout.sharded_over // layout.ep)


def check_experts(model: PlanModel, layout: Layout) -> None:
    """--ep splits experts: the model must have them, ep must divide each layer's, and top-k must be known."""
    if layout.ep == 1:
        return
    if not model.experts:
        raise UsageError(
            f"--ep {layout.ep} splits a mixture of experts' experts, and this model has none",
            "use --ep 1 for a dense model",
        )
    for layer in model.experts:
        if layer.num_experts % layout.ep:
            raise UsageError(
                f"--ep {layout.ep} does not divide the {layer.num_experts} experts of {layer.name}",
                f"use an ep that divides {layer.num_experts}",
            )
        if layer.top_k is None:
            raise UsageError(
                f"the number of experts each token is routed to (top-k) of {layer.name} is unknown, "
                "and the all-to-all's message size needs it",
                "plan it with --ep 1",
            )
    if not model.hidden or not model.tokens_per_example:
        raise UsageError(
            f"--ep {layout.ep} needs the hidden size and the tokens per example to size the all-to-all, "
            "and this model's graph shows neither",
            "plan it with --ep 1",
        )


def all_to_all_bytes(model: PlanModel, layout: Layout, width: float) -> list[float]:
    """Bytes one GPU dispatches per MoE layer for one micro-batch: its tokens x hidden x top-k x capacity factor
    at `width` bytes per element. A GPU's tokens are the micro-batch's sequences, 1/cp of each (context
    parallelism), 1/tp of those with sequence parallelism (Megatron-Core dispatches each tp rank's own)."""
    tokens = (
        layout.micro_batch * (model.tokens_per_example or 0) / layout.cp / (layout.tp if layout.split_sequence else 1)
    )
    return [
        tokens * (model.hidden or 0) * (layer.top_k or 0) * layout.capacity_factor * width for layer in model.experts
    ]


def expert_all_to_all_s(model: PlanModel, layout: Layout, fleet: Fleet, width: float) -> float:
    """The all-to-alls of one micro-batch on one pipeline stage (its 1/pp of the MoE layers): 4 per layer, 6
    with full recomputation, each of B bytes per GPU over ep GPUs taking B x (ep-1)/ep / busbw (nccl-tests'
    alltoall convention: busbw = algbw x (n-1)/n), on the link the ep group spans."""
    if layout.ep <= 1 or not model.experts:
        return 0.0
    count = ALL_TO_ALLS_PER_MOE_LAYER + (ALL_TO_ALLS_RECOMPUTED if layout.recompute == "full" else 0)
    link = fleet.link(layout.ep, layout.tp * layout.cp, layout.num_gpus, "expert parallelism")
    per_layer = [ring_gather_s(nbytes, layout.ep, link) for nbytes in all_to_all_bytes(model, layout, width)]
    return count * sum(per_layer) / layout.pp


def expert_assumption(model: PlanModel, layout: Layout, width: float) -> str | None:
    """The rule, said once with the plan."""
    if layout.ep <= 1 or not model.experts:
        return None
    first = model.experts[0]
    return (
        f"expert parallelism: {len(model.experts)} MoE layers of {first.num_experts} experts (top-{first.top_k}) "
        f"split over ep {layout.ep} GPUs of the data-parallel group; expert weights, gradients and optimizer "
        f"states / ep, their ZeRO partition and gradient reduction over the {expert_data_group(layout)} GPUs "
        f"holding the same experts; per MoE layer and micro-batch 4 all-to-alls (dispatch, combine and their "
        f"gradients; 6 with full recomputation) of tokens x hidden x top-k x capacity factor "
        f"{layout.capacity_factor:g} x {width:g} bytes per GPU, time = bytes x (ep-1)/ep / busbw on the link "
        f"the ep group spans (ep ranks {layout.tp * layout.cp} apart: after tp and cp, inside dp), routing "
        "taken as even and the all-to-alls exposed (GShard, Lepikhin et al. 2020; Megatron-Core MoE)"
    )
