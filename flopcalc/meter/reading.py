"""A window of a training loop's steps as rates and utilisations, each labelled with the peak it divides by:
apart from the meter so a reading can be built, summed over ranks and rendered without the loop's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..units import format_si
from .peaks import Peak


@dataclass(frozen=True)
class MeterReading:
    """Throughput over a window of steps, and the utilisation it makes of each known peak.

    `model_flops` are the counted forward + backward FLOPs of the window's steps (MFU's numerator);
    `hardware_flops` add what activation checkpointing re-ran (HFU's). `peaks` are per device for a rank's
    reading and summed over the ranks for the fleet's (`scope`).
    """

    steps: int
    seconds: float
    samples: float
    tokens: float | None
    model_flops: float
    hardware_flops: float
    peaks: tuple[Peak, ...] = ()
    scope: str = "rank"  # "rank" or "fleet"
    world_size: int = 1
    notes: tuple[str, ...] = field(default=())

    def _rate(self, amount: float | None) -> float | None:
        return amount / self.seconds if amount is not None and self.seconds > 0 else None

    @property
    def steps_per_second(self) -> float | None:
        return self._rate(self.steps)

    @property
    def samples_per_second(self) -> float | None:
        return self._rate(self.samples)

    @property
    def tokens_per_second(self) -> float | None:
        return self._rate(self.tokens)

    @property
    def achieved_flops(self) -> float | None:
        """Model FLOP/s: counted FLOPs of the window's steps / the window's wall time."""
        return self._rate(self.model_flops)

    @property
    def hardware_flops_per_second(self) -> float | None:
        return self._rate(self.hardware_flops)

    @property
    def recomputing(self) -> bool:
        return self.hardware_flops > self.model_flops

    def peak(self, kind: str | None = None) -> Peak | None:
        """The peak of `kind` (given | datasheet | measured), or the first one known."""
        return next((p for p in self.peaks if kind is None or p.kind == kind), None)

    def mfu(self, kind: str | None = None) -> float | None:
        """Model FLOPs utilisation: achieved model FLOP/s / the peak of `kind` (default: the first known)."""
        peak, achieved = self.peak(kind), self.achieved_flops
        return achieved / peak.flops if peak is not None and achieved is not None else None

    def hfu(self, kind: str | None = None) -> float | None:
        """Hardware FLOPs utilisation (recomputation included); None when nothing is recomputed."""
        peak, achieved = self.peak(kind), self.hardware_flops_per_second
        if not self.recomputing or peak is None or achieved is None:
            return None
        return achieved / peak.flops

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat numbers for a logger: steps_per_second, samples_per_second, tokens_per_second, tflops, mfu (against
        the first peak), mfu_<kind> per peak, and hfu, hfu_<kind> when activation checkpointing re-runs work."""
        values: dict[str, float | None] = {
            "steps_per_second": self.steps_per_second,
            "samples_per_second": self.samples_per_second,
            "tokens_per_second": self.tokens_per_second,
            "tflops": None if self.achieved_flops is None else self.achieved_flops / 1e12,
            "mfu": self.mfu(),
        }
        for peak in self.peaks:
            values[f"mfu_{peak.kind}"] = self.mfu(peak.kind)
        if self.recomputing:
            values["hardware_tflops"] = None if self.seconds <= 0 else self.hardware_flops / self.seconds / 1e12
            values["hfu"] = self.hfu()
            for peak in self.peaks:
                values[f"hfu_{peak.kind}"] = self.hfu(peak.kind)
        return {prefix + key: float(value) for key, value in values.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        """Every figure with the peak it divides by (docs/mfu.md)."""
        return {
            "scope": self.scope,
            "world_size": self.world_size,
            "steps": self.steps,
            "seconds": self.seconds,
            "samples": self.samples,
            "tokens": self.tokens,
            "model_flops": self.model_flops,
            "hardware_flops": self.hardware_flops,
            "steps_per_second": self.steps_per_second,
            "samples_per_second": self.samples_per_second,
            "tokens_per_second": self.tokens_per_second,
            "achieved_flops": self.achieved_flops,
            "mfu": [{"value": self.mfu(p.kind), **p.to_dict()} for p in self.peaks],
            "hfu": [{"value": self.hfu(p.kind), **p.to_dict()} for p in self.peaks] if self.recomputing else [],
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        if self.steps == 0 or self.seconds <= 0:
            return "no timed steps yet"
        parts = [f"{self.steps_per_second:.3g} steps/s", f"{format_si(self.samples_per_second)} samples/s"]
        if self.tokens_per_second is not None:
            parts.append(f"{format_si(self.tokens_per_second)} tokens/s")
        parts.append(f"{format_si(self.achieved_flops, 'FLOP/s')} model")
        text = ", ".join(parts)
        for peak in self.peaks:
            text += f"; MFU {self.mfu(peak.kind):.1%} of {peak.label}"
            if self.recomputing:
                text += f" (HFU {self.hfu(peak.kind):.1%})"
        return text
