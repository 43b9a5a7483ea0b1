"""Baselines: the counts a budget file's entries had, recorded as JSON and compared with on later runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..compute import step_flops
from ..errors import BudgetFileError
from ..files import read_json, to_json, write_atomic
from .schema import BudgetFile

if TYPE_CHECKING:
    from ..counting.report import CountReport

BASELINE_SCHEMA_VERSION = 1
# what a baseline records per entry, and what `--baseline` compares
BASELINE_METRICS = ("forward_flops", "backward_flops", "params")


def baseline_data(budget_file: BudgetFile, reports: Mapping[str, CountReport]) -> dict:
    """The baseline document recording the current counts of every entry (docs/ci.md)."""
    entries = {}
    for budget in budget_file.budgets:
        report = reports[budget.name]
        forward, backward, _ = step_flops(report)  # what the checks compare: a forward-only source's assumed backward
        entries[budget.name] = {
            "model": budget.model,
            "forward_flops": forward,
            "backward_flops": backward,
            "params": report.params,
        }
    return {"schema_version": BASELINE_SCHEMA_VERSION, "budgets": entries}


def write_baseline(path: str | Path, budget_file: BudgetFile, reports: Mapping[str, CountReport]) -> Path:
    """Record the current counts as the new baseline, atomically (a crash never leaves half a file)."""
    return write_atomic(path, to_json(baseline_data(budget_file, reports)))


def load_baseline(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a baseline written by `write_baseline`: entry name -> {metric: count}."""
    target = Path(path)
    if not target.is_file():
        raise BudgetFileError(
            f"baseline file {target} not found", f"record one with `flopcalc check --update-baseline {target}`"
        )
    data = read_json(target, BudgetFileError, "baseline file", hint="rewrite it with --update-baseline")
    if not isinstance(data, dict) or not isinstance(data.get("budgets"), dict):
        raise BudgetFileError(
            f"baseline file {target}: expected an object with a `budgets` object", "rewrite it with --update-baseline"
        )
    if data.get("schema_version") != BASELINE_SCHEMA_VERSION:
        raise BudgetFileError(
            f"baseline file {target}: schema_version {data.get('schema_version')!r} is not {BASELINE_SCHEMA_VERSION}",
            "rewrite it with --update-baseline",
        )
    entries: dict[str, dict[str, int]] = {}
    for name, recorded in data["budgets"].items():
        if not isinstance(recorded, dict):
            raise BudgetFileError(f"baseline file {target}: entry {name!r} is not an object")
        counts = {}
        for metric in BASELINE_METRICS:
            value = recorded.get(metric)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BudgetFileError(
                    f"baseline file {target}: entry {name!r} key {metric!r} must be a count (integer >= 0), got {value!r}",
                    "rewrite it with --update-baseline",
                )
            counts[metric] = value
        entries[name] = counts
    return entries
