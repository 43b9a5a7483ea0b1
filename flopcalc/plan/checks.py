"""The plan's checks of a number given to it: whole and >= 1, or finite and > 0; one wording for all of plan."""

from __future__ import annotations

import math
from typing import Any

from ..errors import UsageError


def positive_int(value: Any, what: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value != int(value)
        or value < 1
    ):
        raise UsageError(f"{what} must be a whole number >= 1, got {value!r}")
    return int(value)


def positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)
