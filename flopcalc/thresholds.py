"""Training-compute thresholds in law and policy: which ones a total crosses (docs/mfu.md).

The figures, sources and dates live in one data table, `flopcalc/data/thresholds.yaml`, not in code: this
module reads it and compares. No torch: `convert` uses it and must start fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import CatalogError
from .files import read_yaml

_KEYS = ("id", "flop", "what", "law", "status", "dates", "counts", "source")


@dataclass(frozen=True)
class Threshold:
    """One threshold: crossed by a total greater than `flop`."""

    id: str
    flop: float
    what: str
    law: str
    status: str
    dates: str
    counts: str
    source: str

    def note(self, total: float) -> str:
        revoked = " (revoked)" if self.status == "revoked" else ""
        return (f"{total:.3g} FLOP is above {self.flop:.0e} FLOP, the threshold of {self.law}{revoked}: "
                f"{self.what} ({self.dates}; {self.source})")

    def to_dict(self) -> dict:
        return {key: getattr(self, key) for key in _KEYS}


def table_path() -> Path:
    return Path(str(resources.files("flopcalc") / "data" / "thresholds.yaml"))


@lru_cache(maxsize=1)
def load_thresholds() -> tuple[Threshold, ...]:
    """The shipped table, validated: every entry has every key, and a positive `flop`."""
    data = read_yaml(table_path(), CatalogError, "threshold table")
    entries = data.get("thresholds") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise CatalogError(f"{table_path()}: expected a 'thresholds' list")
    thresholds = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != set(_KEYS):
            raise CatalogError(f"{table_path()}: each threshold needs exactly the keys {', '.join(_KEYS)}")
        flop = entry["flop"]
        if isinstance(flop, bool) or not isinstance(flop, (int, float)) or flop <= 0:
            raise CatalogError(f"{table_path()}: {entry['id']}: flop must be a positive number")
        thresholds.append(Threshold(**{key: (float(flop) if key == "flop" else str(entry[key])) for key in _KEYS}))
    return tuple(thresholds)


def crossed(total: float) -> tuple[Threshold, ...]:
    """The thresholds a training total is greater than, in the table's order."""
    return tuple(threshold for threshold in load_thresholds() if total > threshold.flop)
