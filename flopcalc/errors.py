"""Typed errors. Each message is one line that says what is wrong and how to fix it.

The library raises these; only the CLI turns them into an exit code (2) and a line on stderr. An error about
one argument carries its name in `field` and says it in the message as a Python caller wrote it (`batch_size`);
the CLI puts its own flag (`--batch-size`) in its place.
"""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Mapping
from typing import Any, TypeVar

Entry = TypeVar("Entry")


class ExitCode(enum.IntEnum):
    """What a flopcalc process exits with: CI scripts branch on these (docs/ci.md)."""

    OK = 0
    CHECK_FAILED = 1  # a budget limit was exceeded, or a count grew past the baseline's tolerance
    BAD_INPUT = 2  # bad input, a model that cannot be counted, a missing dependency
    INTERNAL_ERROR = 3  # a bug in flopcalc: please report it (the traceback with --debug)
    INTERRUPTED = 130  # Ctrl-C


def short_error(error: BaseException, limit: int = 240) -> str:
    """The first line of an exception, shortened: what a one-line error message can carry. A first line that
    ends in a colon announces the reason on the next one (validators write so), which is kept."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = " ".join(lines[:2]) if len(lines) > 1 and lines[0].endswith(":") else (lines[0] if lines else "")
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FlopcalcError(Exception):
    """Something the user can fix: bad input, a missing file, a model that fails."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, hint: str | None = None, *, field: str | None = None):
        self.message = message
        self.hint = hint
        self.field = field  # the argument at fault, as the library names it (`batch_size`), or None
        super().__init__(message if not hint else f"{message} ({hint})")


class UsageError(FlopcalcError):
    """A flag or value that cannot be used as given."""


class InputSpecError(FlopcalcError):
    """An `--input` spec that does not parse."""


class ModelLoadError(FlopcalcError):
    """A model source that does not exist, does not import, or yields no nn.Module."""


class ModelBuildError(ModelLoadError):
    """The model's own factory (or example_inputs) raised while building: it may work on another device."""


class ModelRunError(FlopcalcError):
    """A model that raised while it ran on the example inputs."""


class UnsupportedOpsError(FlopcalcError):
    """Ops without a formula were seen and `--strict` was asked for."""


class CatalogError(FlopcalcError):
    """A GPU catalogue that is malformed, or a GPU name that does not resolve."""


class BudgetFileError(FlopcalcError):
    """A budget or baseline file that is malformed."""


class CalibrationError(FlopcalcError):
    """A calibration file that is missing, malformed or for another device."""


class FleetError(FlopcalcError):
    """A distributed run (`bench --distributed`) that cannot start, or that lost a rank: the message names it."""


class MissingDependencyError(FlopcalcError):
    """An optional extra that is not installed; the message names the pip command."""


class InsufficientMemoryError(FlopcalcError):
    """A model that would not fit in the memory of the device it would be built on: stopped before building."""


class ArgumentValueError(UsageError, ValueError):
    """A library argument out of range (negative, NaN, infinite): a ValueError to a Python caller."""


class ArgumentTypeError(UsageError, TypeError):
    """A library argument of the wrong type (a string for a number): a TypeError to a Python caller."""


def check_number(
    value: Any, name: str, *, whole: bool = False, minimum: float = 0, above: bool = True, optional: bool = False
) -> Any:
    """`value` if it is a finite number (a whole one when `whole`) above `minimum` (or at least it when
    `above=False`); else ArgumentTypeError / ArgumentValueError naming `name`. None passes when `optional`."""
    if value is None and optional:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if whole else numbers.Real):
        wanted = "a whole number" if whole else "a number"
        raise ArgumentTypeError(f"{name} must be {wanted}, got {type(value).__name__} {value!r}", field=name)
    if not math.isfinite(value):
        raise ArgumentValueError(f"{name} must be finite, got {value!r}", field=name)
    if value < minimum or (above and value == minimum):
        bound = f"above {minimum:g}" if above else f"at least {minimum:g}"
        raise ArgumentValueError(f"{name} must be {bound}, got {value!r}", field=name)
    return value


def one_of(table: Mapping[str, Entry], name: str, message: str, hint: str | None = None) -> Entry:
    """The entry `name` of a vocabulary `table`, or a UsageError saying `message` (and `hint`) when it has none."""
    if name not in table:
        raise UsageError(message, hint)
    return table[name]
