"""Numbers with SI prefixes: parse what users type, format what we print.

One place for the prefix table, so `9G` in a budget file, `1.5 zflop` on the command line and
`8.18 GFLOP` in a table all mean the same thing.
"""

from __future__ import annotations

import math
import re

from .errors import UsageError

SI_PREFIXES: dict[str, float] = {
    "": 1.0,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Z": 1e21,
    "Y": 1e24,
}

_FORMAT_PREFIXES = [("Y", 1e24), ("Z", 1e21), ("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)]

_NUMBER_WITH_PREFIX = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([kKMGTPEZY]?)\s*$")


def parse_si_number(text: str | int | float, what: str = "value") -> float:
    """`9G` -> 9e9, `26M` -> 2.6e7, `1e18` -> 1e18; plain numbers pass through."""
    if isinstance(text, bool):
        raise UsageError(f"{what} must be a number, got {text!r}", "write e.g. 9G, 26M or 1e18")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _NUMBER_WITH_PREFIX.match(str(text))
        if not match:
            raise UsageError(
                f"{what} {text!r} is not a number", "write a number with an optional SI suffix k M G T P E, e.g. 9G or 1e18"
            )
        value = float(match.group(1)) * SI_PREFIXES[match.group(2)]
    if not math.isfinite(value):
        raise UsageError(f"{what} {text!r} is not a finite number")
    return value


def format_si(value: float, unit: str = "", digits: int = 3) -> str:
    """`8_180_000_000, "FLOP"` -> `8.18 GFLOP`: three significant digits, SI prefix, unit."""
    if value == 0:
        return f"0 {unit}".rstrip()
    magnitude = abs(value)
    for prefix, scale in _FORMAT_PREFIXES:
        if magnitude >= scale * 0.9995:
            return f"{_sig(value / scale, digits)} {prefix}{unit}".rstrip()
    return f"{_sig(value, digits)} {unit}".rstrip()


def _sig(x: float, digits: int) -> str:
    if x == int(x) and abs(x) < 10**digits:
        return str(int(x))
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_fraction(text: str | float, what: str = "value") -> float:
    """`5%` -> 0.05, `0.05` -> 0.05."""
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            return float(raw[:-1]) / 100.0
        return float(raw)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not a number or percentage", "write e.g. 5% or 0.05") from None
