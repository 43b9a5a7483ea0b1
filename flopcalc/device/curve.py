"""A measured figure that depends on a size (GEMM FLOPs, bytes moved, message bytes), read between its points.

A profile's efficiencies are such curves: a few (size, fraction) points from a sweep or a published system
description, each curve with the source it came from, so every predicted time can say where its rates came from.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from ..errors import CalibrationError

BETWEEN = ("step", "log-linear")


@dataclass(frozen=True)
class Curve:
    """Points (size, value), sizes ascending. `between`: "step" holds each point's value from its size up to the
    next point (a table of "at >= size" thresholds); "log-linear" interpolates linearly in log(size). Outside the
    points the nearest end's value holds."""

    points: tuple[tuple[float, float], ...]
    source: str
    between: str = "step"

    def __post_init__(self) -> None:
        if not self.points:
            raise CalibrationError("a curve needs at least one (size, value) point")
        sizes = [size for size, _ in self.points]
        if any(b <= a for a, b in zip(sizes, sizes[1:])):
            raise CalibrationError(f"curve sizes must be strictly ascending, got {sizes}")
        if any(size < 0 or not math.isfinite(size) for size in sizes):
            raise CalibrationError(f"curve sizes must be finite and >= 0, got {sizes}")
        if any(not (0 < value < math.inf) for _, value in self.points):
            raise CalibrationError(f"curve values must be finite and > 0, got {[v for _, v in self.points]}")
        if self.between not in BETWEEN:
            raise CalibrationError(f"a curve is read 'step' or 'log-linear', not {self.between!r}")
        if not self.source.strip():
            raise CalibrationError("a curve without a source: say where its points came from")

    def at(self, size: float) -> float:
        """The value at `size`."""
        sizes = [point[0] for point in self.points]
        index = bisect.bisect_right(sizes, size) - 1
        if index < 0:
            return self.points[0][1]
        if index >= len(sizes) - 1 or self.between == "step":
            return self.points[index][1]
        (low, low_value), (high, high_value) = self.points[index], self.points[index + 1]
        if low <= 0:  # log(0): read linearly on the first span
            fraction = size / high
        else:
            fraction = math.log(size / low) / math.log(high / low)
        return low_value + (high_value - low_value) * fraction
