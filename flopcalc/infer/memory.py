"""What fits in the GPU's memory: the weights once, and per sequence its KV cache and the activations of the
largest layer (the least that must be resident at once)."""

from __future__ import annotations

from ..units import format_si
from .hardware import Hardware


def fits(hardware: Hardware, memory: float) -> bool | None:
    """Whether `memory` bytes fit the GPU; None when the catalogue has no memory size."""
    return None if hardware.memory_bytes is None else memory <= hardware.memory_bytes


def max_batch_that_fits(hardware: Hardware, weights: float, per_sequence: float) -> tuple[int | None, str | None]:
    """The largest batch whose weights + per-sequence memory (KV cache, activations) fit the GPU's memory, and
    a note when nothing fits for want of room or it is not known."""
    if hardware.memory_bytes is None:
        return None, f"{hardware.gpu} has no memory size in the catalogue: what fits is not known"
    room = hardware.memory_bytes - weights
    if room < per_sequence:
        note = (
            None
            if room >= 0
            else (
                f"the weights alone ({format_si(weights, 'B')}) exceed the memory of "
                f"{hardware.gpu} ({format_si(hardware.memory_bytes, 'B')})"
            )
        )
        return 0, note
    return (int(room // per_sequence) if per_sequence > 0 else None), None
