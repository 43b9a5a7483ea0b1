"""fp8 training as Transformer Engine runs it (NVIDIA, "Using FP8 with Transformer Engine"; Micikevicius et al.
2022, "FP8 Formats for Deep Learning"): the transformer blocks' linear layers run their GEMMs in fp8, at the
catalogue's dense fp8 peak; the attention products (softmax(QK^T)V), the embedding and the output head, norms,
softmax, the loss and the optimizer step stay in bf16; weights, gradients and activations are kept in bf16 and
the master weights and Adam's states in fp32, as in bf16 mixed precision."""

from __future__ import annotations

from .hardware import Fleet
from .layout import Layout
from .model import PlanModel
from .precision import TrainingPrecision

FP8 = "fp8"
STAYS_BF16 = (
    "the attention products",
    "the embedding and the output head",
    "norms, softmax and activations",
    "the loss",
    "the optimizer step",
)


def bf16_sustained_flops(fleet: Fleet) -> float:
    """What the GPUs sustain on the ops that stay in 16 bits: the bf16 peak x utilisation under fp8 training,
    else the training precision's own."""
    return (fleet.bf16_throughput or fleet.throughput).sustained_flops


def fp8_share(model: PlanModel) -> float:
    """Fraction of the FLOPs whose GEMMs run in fp8: the blocks' forward less their attention products, of the
    whole forward (the backward's split is the same, twice over)."""
    if not model.forward_flops:
        return 0.0
    return max(0.0, model.block_forward_flops - model.attention_forward_flops) / model.forward_flops


def sustained_flops(model: PlanModel, layout: Layout, fleet: Fleet, precision: TrainingPrecision) -> float:
    """The FLOP/s one GPU sustains on the model's mix: the training precision's, or under fp8 the harmonic mix of
    the fp8 rate on the fp8 GEMMs and the bf16 rate on the rest."""
    fast = fleet.throughput.sustained_flops
    if precision.name != FP8 or fleet.bf16_throughput is None:
        return fast
    share = fp8_share(model)
    return 1.0 / (share / fast + (1.0 - share) / fleet.bf16_throughput.sustained_flops)


def fp8_assumption(model: PlanModel, fleet: Fleet, precision: TrainingPrecision) -> str | None:
    if precision.name != FP8:
        return None
    slow = fleet.bf16_throughput
    rate = (
        f"{slow.peak_flops / 1e12:.4g} TFLOP/s ({slow.origin})" if slow is not None else "the fp8 peak (no bf16 figure)"
    )
    return (
        f"fp8 training (Transformer Engine): the blocks' GEMMs, {fp8_share(model):.1%} of the FLOPs, at the fp8 "
        f"peak; {', '.join(STAYS_BF16)} stay in bf16, at the bf16 peak {rate}; weights, gradients and "
        "activations kept in bf16, master weights and optimizer states in fp32 (the blocks' norms and activations, "
        "under 1% of their FLOPs, are timed with their GEMMs; the fp8 copies of the weights "
        "Transformer Engine caches, 1 byte per block parameter, are not counted); MFU and HFU are against the "
        "fp8 peak"
    )
