"""Checking a budget file: count its models (once per distinct model), compare with the limits and a baseline.

Everything here returns result objects: it never prints and never exits (the CLI turns a failed result into
exit 1, a FlopcalcError into exit 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..compute import TrainingCompute, step_flops, training_from_params_tokens, training_from_report
from ..counting.report import unsupported_ops_note
from ..errors import FlopcalcError, ModelRunError, UsageError, short_error
from ..spec import ModelSpec
from .baseline import BASELINE_METRICS
from .schema import Budget, BudgetFile

if TYPE_CHECKING:
    from ..counting.report import CountReport

# what counts one entry's model: ModelSpec -> CountReport; `flopcalc.api.count_spec` by default
CountFunction = Callable[[ModelSpec], "CountReport"]


@dataclass(frozen=True)
class Check:
    """One limit of one entry. `headroom` is the percentage of the limit still unused (negative when over)."""

    name: str
    model: str
    metric: str
    value: float
    limit: float
    passed: bool
    headroom: float

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "model": self.model,
            "metric": self.metric,
            "value": _plain_number(self.value),
            "limit": _plain_number(self.limit),
            "passed": self.passed,
            "headroom": round(self.headroom, 4),
        }


@dataclass(frozen=True)
class Regression:
    """One baseline comparison. `growth_pct` is None when the baseline was 0 and the value is not."""

    name: str
    metric: str
    baseline: int
    value: int
    growth_pct: float | None
    tolerance_pct: float
    passed: bool

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "metric": self.metric,
            "baseline": self.baseline,
            "value": self.value,
            "growth_pct": None if self.growth_pct is None else round(self.growth_pct, 4),
            "tolerance_pct": round(self.tolerance_pct, 4),
            "passed": self.passed,
        }


@dataclass(frozen=True)
class CheckResult:
    checks: tuple[Check, ...]
    regressions: tuple[Regression, ...] = ()
    # human notes for the table and Markdown (not in the JSON contract): uncounted ops, entries new to the baseline
    notes: tuple[str, ...] = field(default=())

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def failed_regressions(self) -> tuple[Regression, ...]:
        return tuple(r for r in self.regressions if not r.passed)

    @property
    def passed(self) -> bool:
        return not self.failed_checks and not self.failed_regressions

    def to_dict(self) -> dict:
        """The JSON contract of `flopcalc check --format json` (docs/ci.md)."""
        return {
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "regressions": [r.to_dict() for r in self.regressions],
        }


# ---------------------------------------------------------------------------------------------------------------
# Counting


def count_budgets(budget_file: BudgetFile, counter: CountFunction | None = None) -> dict[str, CountReport]:
    """Count every entry's model, once per distinct (model, inputs, kwargs); returns entry name -> report.

    A model that cannot be loaded or run raises its FlopcalcError with the entry named, so a check never passes
    because a model crashed.
    """
    if counter is None:
        from ..api import count_spec as counter
    by_key: dict[str, CountReport] = {}
    reports: dict[str, CountReport] = {}
    for budget in budget_file.budgets:
        key = budget.spec.key()  # entries that count the same model the same way are counted once
        if key not in by_key:
            by_key[key] = _count_one(budget, budget_file.path, counter)
        reports[budget.name] = by_key[key]
    return reports


def _count_one(budget: Budget, path: Path, counter: CountFunction) -> CountReport:
    try:
        return counter(budget.spec)
    except FlopcalcError as error:
        raise type(error)(f"{path}: {budget.label}: {error.message}", error.hint) from error
    except Exception as error:  # a model that raises something unexpected still fails the check (exit 2)
        raise ModelRunError(
            f"{path}: {budget.label}: counting {budget.model} failed: {short_error(error)}",
            "rerun with --debug for the traceback",
        ) from error


def training_compute(report: CountReport, budget: Budget) -> TrainingCompute:
    """Training compute for the entry's training size: `flopcalc train`'s arithmetic (flopcalc.compute).

    With `examples`: (forward + backward) per example x examples x epochs, per example being the counted batch
    divided by the report's batch size (a forward-only source assumes backward = 2x forward, noted). With
    `tokens`: the 6 x params x tokens rule (Kaplan et al. 2020), with the active parameters of a mixture of
    experts (each token runs through top-k of its experts).
    """
    if budget.examples is not None:
        return training_from_report(report, budget.examples, budget.epochs if budget.epochs is not None else 1)
    if budget.tokens is not None:
        return training_from_params_tokens(report.active, budget.tokens, active=report.active != report.params)
    raise UsageError(f"{budget.label}: no training size", "add `examples:` or `tokens:`")


def metric_values(report: CountReport, budget: Budget) -> dict[str, float]:
    """Every metric a limit of `budget` can name, measured on `report`."""
    forward, backward, _ = step_flops(report)
    values: dict[str, float] = {"forward_flops": forward, "backward_flops": backward, "params": report.params}
    if report.sparsity is not None:  # counted with sparsity: the step with the products by a zero weight left out
        values["effective_flops"] = report.effective_total
    if budget.examples is not None or budget.tokens is not None:
        try:
            training = training_compute(report, budget)
        except FlopcalcError as error:  # e.g. a model that counts 0 forward FLOPs: say which entry
            raise type(error)(f"{budget.label}: training compute: {error.message}", error.hint) from error
        values["training_flops"] = training.training_flops
        values["training_pf_days"] = training.petaflop_days
    return values


# ---------------------------------------------------------------------------------------------------------------
# Checking


def evaluate(
    budget_file: BudgetFile,
    reports: Mapping[str, CountReport],
    baseline: Mapping[str, Mapping[str, int]] | None = None,
    tolerance: float = 0.0,
) -> CheckResult:
    """Compare counted `reports` (entry name -> report) with the limits, and with `baseline` when given."""
    if tolerance < 0 or not math.isfinite(tolerance):
        raise UsageError(f"tolerance must be 0 or more, got {tolerance!r}", "write e.g. 5% or 0.05")
    checks: list[Check] = []
    regressions: list[Regression] = []
    notes: list[str] = []
    for budget in budget_file.budgets:
        report = reports[budget.name]
        values = metric_values(report, budget)
        for metric, limit in budget.limits.items():
            value = values[metric]
            checks.append(
                Check(
                    name=budget.name,
                    model=budget.model,
                    metric=metric,
                    value=value,
                    limit=limit,
                    passed=value <= limit,
                    headroom=(limit - value) / limit * 100.0,
                )
            )
        unsupported = unsupported_ops_note(report.unsupported_ops)
        if unsupported:
            notes.append(f"{budget.name}: {unsupported}")
        notes.extend(f"{budget.name}: {note}" for note in (*step_flops(report)[2], *report.notes))
        if baseline is not None:
            recorded = baseline.get(budget.name)
            if recorded is None:
                notes.append(f"{budget.name}: not in the baseline yet (record it with --update-baseline)")
                continue
            regressions.extend(
                compare_with_baseline(budget.name, metric, recorded[metric], int(values[metric]), tolerance)
                for metric in BASELINE_METRICS
            )
    if not checks and not regressions:
        raise UsageError(
            f"{budget_file.path}: nothing to check: no entry has a max_* limit and no baseline was compared",
            "add limits such as `max_forward_flops: 9G`, or pass --baseline FILE",
        )
    return CheckResult(checks=tuple(checks), regressions=tuple(regressions), notes=tuple(notes))


def compare_with_baseline(name: str, metric: str, baseline: int, value: int, tolerance: float) -> Regression:
    """Fails when `value` grew by more than `tolerance` (a fraction) over `baseline`; shrinking always passes."""
    if baseline == 0:
        growth = 0.0 if value == 0 else None
        passed = value == 0
    else:
        growth = (value - baseline) / baseline
        passed = growth <= tolerance * (1 + 1e-12)  # the relative slack absorbs float rounding only
    return Regression(
        name=name,
        metric=metric,
        baseline=baseline,
        value=value,
        growth_pct=None if growth is None else growth * 100.0,
        tolerance_pct=tolerance * 100.0,
        passed=passed,
    )


def run_checks(
    budget_file: BudgetFile,
    *,
    baseline: Mapping[str, Mapping[str, int]] | None = None,
    tolerance: float = 0.0,
    counter: CountFunction | None = None,
) -> CheckResult:
    """Count the budget file's models and check them: the whole of `flopcalc check` without the rendering."""
    return evaluate(budget_file, count_budgets(budget_file, counter), baseline, tolerance)


def _plain_number(value: float) -> int | float:
    """Integral values as JSON integers (9G -> 9000000000, not 9000000000.0)."""
    if isinstance(value, int):
        return value
    return int(value) if float(value).is_integer() and abs(value) < 2**63 else value
