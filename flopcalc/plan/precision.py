"""Bytes per parameter and per activation element of each training precision and optimizer (ZeRO paper, Sec. 3.1)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError, one_of

OPTIMIZERS = ("adamw", "sgd")


@dataclass(frozen=True)
class TrainingPrecision:
    """Bytes per parameter and per activation element of one training precision.

    Mixed precision (bf16, fp16) keeps 16-bit weights and gradients and an fp32 master copy of the weights
    next to the fp32 optimizer states (ZeRO paper, Sec. 3.1); fp32/tf32 and fp64 train in place.
    """

    name: str
    weight_bytes: int
    gradient_bytes: int
    master_bytes: int
    state_bytes: int
    activation_bytes: int

    def optimizer_bytes(self, optimizer: str) -> int:
        """Master weights plus the optimizer's states: Adam keeps two (momentum, variance), SGD one (momentum)."""
        return self.master_bytes + OPTIMIZER_STATES[optimizer] * self.state_bytes

    def describe(self, optimizer: str) -> str:
        mixed = f"{self.name} mixed precision" if self.master_bytes else f"{self.name} training"
        total = self.weight_bytes + self.gradient_bytes + self.optimizer_bytes(optimizer)
        return (
            f"{mixed} with {OPTIMIZER_NAMES[optimizer]}: {self.weight_bytes} (weights) + {self.gradient_bytes} "
            f"(gradients) + {self.optimizer_bytes(optimizer)} (optimizer) = {total} bytes per parameter; "
            f"activations {self.activation_bytes} bytes per element"
        )


TRAINING_PRECISIONS = {
    "bf16": TrainingPrecision("bf16", 2, 2, 4, 4, 2),
    "fp16": TrainingPrecision("fp16", 2, 2, 4, 4, 2),
    # fp8 GEMMs (Transformer Engine) keep bf16 weights, gradients and activations, fp32 master and states
    "fp8": TrainingPrecision("fp8", 2, 2, 4, 4, 2),
    "tf32": TrainingPrecision("tf32", 4, 4, 0, 4, 4),
    "fp32": TrainingPrecision("fp32", 4, 4, 0, 4, 4),
    "fp64": TrainingPrecision("fp64", 8, 8, 0, 8, 8),
}
OPTIMIZER_STATES = {"adamw": 2, "sgd": 1}
OPTIMIZER_NAMES = {"adamw": "AdamW (momentum and variance)", "sgd": "SGD with momentum"}


def training_precision(name: str) -> TrainingPrecision:
    return one_of(
        TRAINING_PRECISIONS,
        name,
        f"plan trains in {', '.join(TRAINING_PRECISIONS)}, not {name}",
        "pass --precision bf16 (or fp8 for fp8 GEMMs with bf16 weights)",
    )


def check_optimizer(optimizer: str) -> str:
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"--optimizer must be adamw or sgd, got {optimizer!r}")
    return optimizer
