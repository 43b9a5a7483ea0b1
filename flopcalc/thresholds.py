"""Training-compute thresholds in law and policy: which ones a total crosses (docs/mfu.md).

The figures, sources and dates live in one data table, `flopcalc/data/thresholds.yaml`, not in code: this
module reads it and compares. No torch: `convert` uses it and must start fast.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from .errors import CatalogError
from .files import read_yaml
from .schemas import Problem, refuse, validated


def _positive_flop(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        refuse(f"flop must be a positive number, got {value!r}")
    return float(value)


class Threshold(BaseModel):
    """One threshold, as the table gives it (every key, nothing else, a positive finite `flop`): crossed by a
    total greater than `flop`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    id: str
    flop: Annotated[float, BeforeValidator(_positive_flop)]
    what: str
    law: str
    status: str
    dates: str
    counts: str
    source: str

    def note(self, total: float) -> str:
        revoked = " (revoked)" if self.status == "revoked" else ""
        return (
            f"{total:.3g} FLOP is above {self.flop:.0e} FLOP, the threshold of {self.law}{revoked}: "
            f"{self.what} ({self.dates}; {self.source})"
        )

    def to_dict(self) -> dict:
        return self.model_dump()


_KEYS = tuple(Threshold.model_fields)


def table_path() -> Path:
    return Path(str(resources.files("flopcalc") / "data" / "thresholds.yaml"))


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    thresholds: list[Threshold]


@lru_cache(maxsize=1)
def load_thresholds() -> tuple[Threshold, ...]:
    """The shipped table, validated: every entry has every key, and a positive `flop`."""
    path = table_path()
    data = read_yaml(path, CatalogError, "threshold table")
    table = validated(_Table, data, lambda problem: _say(problem, data, path), CatalogError)
    return tuple(table.thresholds)


def _say(problem: Problem, data: Any, path: Path) -> tuple[str, str | None]:
    """The table's problem in one line naming the file, the threshold and the key."""
    number = problem.loc[1] if len(problem.loc) > 1 and isinstance(problem.loc[1], int) else None
    raw = data["thresholds"][number] if number is not None else None
    if number is None or not isinstance(raw, dict):
        return f"{path}: expected a 'thresholds' list of mappings with the keys {', '.join(_KEYS)}", None
    where = f"{path}: {raw.get('id') or f'threshold #{number + 1}'}"
    if problem.kind == "own":
        return f"{where}: {problem.message}", None
    if problem.kind in ("missing", "unknown"):
        return (
            f"{where}: each threshold needs exactly the keys {', '.join(_KEYS)}",
            f"{problem.kind}: {', '.join(problem.keys)}",
        )
    return f"{where}: key {problem.loc[-1]!r}: {problem.message}, got {problem.value!r}", None


def crossed(total: float) -> tuple[Threshold, ...]:
    """The thresholds a training total is greater than, in the table's order."""
    return tuple(threshold for threshold in load_thresholds() if total > threshold.flop)
