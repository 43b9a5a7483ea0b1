"""Numbers with SI prefixes: parse what users type, format what we print.

One place for the prefix table, so `9G` in a budget file, `1.5 zflop` on the command line and
`8.18 GFLOP` in a table all mean the same thing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal, cast, get_args

from .errors import UsageError

# SI prefixes as powers of ten (case-insensitive), for exact decimal scaling: `4.1G` is 4.1e9 exactly,
# `1.1 zflop` is 1.1e21. FLOP counts take the prefix on the number (`9G flop`) or glued to the unit
# (kflop ... yflop; `m` is mega there: a fraction of a FLOP is no count).
_PREFIX_EXPONENT = {"k": 3, "m": 6, "g": 9, "t": 12, "p": 15, "e": 18, "z": 21, "y": 24}

_FORMAT_PREFIXES = [("Y", 1e24), ("Z", 1e21), ("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)]

# The largest number any option or file value may hold: far beyond every real amount (all the compute ever
# run is ~1e27 FLOP) and far enough below a float's 1.8e308 that products and quotients of a few such numbers
# stay finite, so no overflow reaches the arithmetic, a table or a JSON file.
LARGEST_NUMBER = 1e40
RANGE_HINT = f"numbers are at most {LARGEST_NUMBER:g}"
# The smallest positive figure a data file (a catalogue's peaks, memory, bandwidth, power) may give: far below any
# real device's (a microcontroller has ~1e-6 TFLOPS), and large enough that LARGEST_NUMBER divided by it stays a
# float (1e-300 TFLOPS overflowed a duration).
SMALLEST_FIGURE = 1e-9
# The largest whole-number option (a layer count, a batch, a sequence, GPUs): exact in a float, so no size
# overflows the arithmetic; the commands' own, tighter limits (a batch, tokens in all) apply below it.
LARGEST_WHOLE = 2**53 - 1

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
                f"{what} {text!r} is not a number",
                "write a number with an optional SI suffix k M G T P E, e.g. 9G or 1e18",
            )
        # decimal scaling: "4.1G" is exactly 4.1e9, not 4.1 * 1e9 = 4099999999.9999995
        try:
            value = float(Decimal(match.group(1)).scaleb(_PREFIX_EXPONENT.get(match.group(2).lower(), 0)))
        except ArithmeticError:  # an exponent past what a decimal holds (1e3000000)
            value = math.inf
    return check_magnitude(value, what, text)


def check_magnitude(value: float, what: str, text: object = None) -> float:
    """A finite number no larger than LARGEST_NUMBER (either sign); the message names `what` and the range."""
    shown = value if text is None else text
    if not math.isfinite(value):
        raise UsageError(f"{what} {shown!r} is not a finite number", f"write a number; {RANGE_HINT}")
    if abs(value) > LARGEST_NUMBER:
        raise UsageError(f"{what} {shown!r} is too large", f"{RANGE_HINT}")
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
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not a number or percentage", "write e.g. 5% or 0.05") from None
    return check_magnitude(value, what, text)


# ---------------------------------------------------------------- message sizes in bytes

# Binary prefixes, as nccl-tests reads `-e 1G`: 1 KiB = 1024 bytes, 1 GiB = 2**30 bytes.
_BYTE_PREFIXES = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_bytes(text: str | int, what: str = "size") -> int:
    """`64K`, `64KiB`, `1G`, `1 GiB`, `4096` -> bytes; prefixes are binary (K = 1024), as in nccl-tests."""
    match = _BYTES.match(str(text))
    if not match:
        raise UsageError(
            f"{what} {text!r} is not a size in bytes", "write e.g. 4096, 64K, 256MiB or 1G (binary prefixes)"
        )
    value = float(match.group(1)) * 2 ** _BYTE_PREFIXES[match.group(2).lower()]
    if value < 1 or value != int(value):
        raise UsageError(f"{what} {text!r} is not a whole, positive number of bytes")
    return int(value)


def format_bytes(size: float) -> str:
    """`65536` -> `64 KiB`, `1073741824` -> `1 GiB`, `4092` -> `4092 B`: binary prefixes, 3 significant digits."""
    for prefix, shift in (("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if size >= 2**shift:
            return f"{_sig(size / 2**shift, 3)} {prefix}B"
    return f"{int(size)} B"


# ---------------------------------------------------------------- quantities of compute

SECONDS_PER_DAY = 86_400
PETAFLOP = 1e15
# 1 PF-day = 1e15 FLOP/s sustained for a day = 8.64e19 FLOP, exactly.
PF_DAY_FLOP = PETAFLOP * SECONDS_PER_DAY

# canonical unit -> the spellings accepted (compared lower-case, without spaces, '-', '_' and '/')
_COMPUTE_UNITS: dict[str, tuple[str, ...]] = {
    "flop": ("flop", "flops"),
    "pf_days": (
        "pfdays",
        "pfday",
        "pfsdays",
        "pfsday",
        "pflopdays",
        "pflopsdays",
        "pflopday",
        "pflopsday",
        "petaflopdays",
        "petaflopsdays",
        "petaflopday",
        "petaflopsday",
    ),
    "gpu_days": ("gpudays", "gpuday", "gpud"),
    "gpu_hours": ("gpuhours", "gpuhour", "gpuhrs", "gpuhr", "gpuh"),
}
_UNIT_LOOKUP = {spelling: unit for unit, spellings in _COMPUTE_UNITS.items() for spelling in spellings}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d[\d_,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)?\s*$")
QUANTITY_HINT = (
    "write a number and a unit, e.g. '3.14e23 flop', '1.5 zflop', '93.75 pf-days', '2500 gpu-days', '60000 gpu-hours'"
)


@dataclass(frozen=True)
class ComputeQuantity:
    """An amount of compute as typed: a value in one of the canonical units flop, pf_days, gpu_days, gpu_hours."""

    value: float
    unit: str
    text: str = ""
    gpu: str = ""  # the GPU the unit names: '2500 V100-days' -> 'V100' (gpu_days); empty for 'gpu-days'


# '2500 V100-days', '3 H100-hours', '10 A100 80GB days': a GPU's name (with a digit), then the time unit
_GPU_TIME_UNIT = re.compile(r"^(?P<gpu>[A-Za-z][\w.+ ]*?)[\s_-]*(?P<unit>days?|hours?|hrs?)$", re.I)


def parse_compute_quantity(text: str) -> ComputeQuantity:
    """`3.14e23 flop`, `1.5 zflop`, `93.75 pf-days`, `2500 gpu-days`, `60k gpu-hours` -> ComputeQuantity;
    `2500 V100-days`, `3 H100-hours` name the GPU in the unit (kept in `gpu`).

    FLOP amounts are stored in FLOP (`1.5 zflop` -> 1.5e21 flop); other units keep their value.
    Negative, non-numeric or unit-less quantities and unknown units raise UsageError.
    """
    raw = str(text)
    match = _QUANTITY.match(raw)
    if not match:
        raise UsageError(f"quantity {raw!r} is not a number followed by a unit", QUANTITY_HINT)
    number_text, unit_text = match.groups()
    if not unit_text:
        raise UsageError(f"quantity {raw!r} has no unit", QUANTITY_HINT)
    unit, exponent = _parse_compute_unit(unit_text)
    gpu = ""
    if unit is None:
        named = _GPU_TIME_UNIT.match(unit_text.strip())
        if named and re.search(r"\d", named["gpu"]):  # a GPU's name has a number in it: V100, T4, MI300X
            gpu = named["gpu"].strip()
            unit = "gpu_days" if named["unit"].lower().startswith("d") else "gpu_hours"
    if unit is None:
        raise UsageError(
            f"unknown unit {unit_text!r} in {raw!r}",
            "use flop (with a prefix: kflop ... zflop, yflop), pf-days, gpu-days or gpu-hours (or a GPU's: V100-days)",
        )
    try:
        value = float(Decimal(number_text.replace("_", "").replace(",", "")).scaleb(exponent))
    except InvalidOperation:
        raise UsageError(f"quantity {raw!r} is not a number followed by a unit", QUANTITY_HINT) from None
    except ArithmeticError:  # an exponent past what a decimal holds
        value = math.inf
    check_magnitude(value, "quantity", raw)
    if value < 0:
        raise UsageError(f"quantity {raw!r} is negative", "compute cannot be negative")
    return ComputeQuantity(value=value, unit=unit, text=raw.strip(), gpu=gpu)


def _parse_compute_unit(unit_text: str) -> tuple[str | None, int]:
    """`pf-days` -> (pf_days, 0), `zflop` -> (flop, 21), `G flop` -> (flop, 9); (None, 0) if unknown."""
    unit_key = re.sub(r"[\s\-_/]", "", unit_text.lower())
    if unit_key in _UNIT_LOOKUP:
        return _UNIT_LOOKUP[unit_key], 0
    prefix, rest = unit_key[:1], unit_key[1:]
    if prefix in _PREFIX_EXPONENT and rest:
        glued = _UNIT_LOOKUP.get(rest)
        spaced = unit_text.lstrip()[1:2].isspace()
        if glued == "flop" or (spaced and glued is not None):
            return glued, _PREFIX_EXPONENT[prefix]
    return None, 0


def format_duration(seconds: float) -> str:
    """A duration as people say it: `45 min`, `3.2 h`, `12.4 days`, `6.8 years` (3 significant digits at most)."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{_sig(seconds, 3)} s"
    if seconds < 3600:
        return f"{_sig(seconds / 60, 3)} min"
    if seconds < 2 * SECONDS_PER_DAY:
        return f"{_sig(seconds / 3600, 3)} h"
    if seconds < 2 * 365 * SECONDS_PER_DAY:
        return f"{_sig(seconds / SECONDS_PER_DAY, 3)} days"
    return f"{_sig(seconds / (365.25 * SECONDS_PER_DAY), 3)} years"


def format_number(value: float, digits: int = 6) -> str:
    """Plain numbers for people: `2500` -> `2,500`, `93.75` -> `93.75`, `8.1e21` -> `8.1e21` (`digits` significant)."""
    value = float(value)
    if value == 0:
        return "0"
    if not math.isfinite(value):  # never produced from checked inputs; a table still says what it is
        return "unbounded" if value > 0 else ("-unbounded" if value < 0 else "undefined")
    magnitude = abs(value)
    if magnitude >= 10 ** (digits + 3) or magnitude < 1e-3:
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(magnitude))))
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# Memory is binary (an "80 GB" GPU holds 80 GiB of HBM); bandwidths and links are decimal GB/s, as datasheets
# and nccl-tests count them.
GIB = 2**30
GB = 10**9

# Every precision flopcalc knows: a catalogue peak, a calibration or a bench can name one; int8 is in TOPS.
Precision = Literal["fp64", "fp64_tensor", "fp32", "tf32", "bf16", "fp16", "fp8", "fp4", "int8"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)

# Spellings users and frameworks use for the same precision.
PRECISION_SYNONYMS: dict[str, str] = {
    "float64": "fp64",
    "double": "fp64",
    "f64": "fp64",
    "fp64tensor": "fp64_tensor",
    "fp64tc": "fp64_tensor",
    "float32": "fp32",
    "float": "fp32",
    "f32": "fp32",
    "single": "fp32",
    "tensorfloat32": "tf32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "f16": "fp16",
    "float8": "fp8",
    "e4m3": "fp8",
    "e5m2": "fp8",
    "float4": "fp4",
}

# The precisions a matmul can be timed in with torch (`flopcalc bench`), in the order they are swept.
MATMUL_PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")


def normalize_precision(text: str) -> Precision:
    """`BF16`, `bfloat16`, `torch.bfloat16` -> `bf16`; UsageError for names that are no precision."""
    key = re.sub(r"[\s\-]", "", str(text).strip().lower()).removeprefix("torch.")
    key = PRECISION_SYNONYMS.get(key, key)
    if key not in PRECISIONS:
        raise UsageError(f"unknown precision {text!r}", f"use one of: {', '.join(PRECISIONS)}")
    return cast(Precision, key)
