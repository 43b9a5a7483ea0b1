"""Compute budgets for CI: load and validate a budget file, count its models, compare with limits and a baseline.

A budget file (`flopcalc.yaml`) lists models with limits on forward/backward FLOPs, parameters and training
compute. Each limit of each entry becomes one `Check`; with a baseline, each entry's forward FLOPs, backward
FLOPs and parameters become one `Regression` comparison each. Everything here returns result objects: it never
prints and never exits (the CLI turns a failed result into exit 1, a FlopcalcError into exit 2).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Mapping

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

from .compute import TrainingCompute, step_flops, training_from_params_tokens, training_from_report
from .errors import BudgetFileError, FlopcalcError, ModelRunError, UsageError, short_error
from .files import read_json, read_yaml, to_json, write_atomic
from .schemas import Problem, dotted, first_problem, refuse
from .spec import ModelSpec
from .units import parse_si_number

if TYPE_CHECKING:
    from .counting.report import CountReport

BUDGET_FILE_NAME = "flopcalc.yaml"
BASELINE_SCHEMA_VERSION = 1

# budget-file key -> the metric its check reports
LIMIT_KEYS: dict[str, str] = {
    "max_forward_flops": "forward_flops",
    "max_backward_flops": "backward_flops",
    "max_params": "params",
    "max_training_flops": "training_flops",
    "max_training_pf_days": "training_pf_days",
}
TRAINING_METRICS = frozenset({"training_flops", "training_pf_days"})
TRAINING_SIZE_KEYS = ("examples", "epochs", "tokens")
# budget-file key -> the ModelSpec field it sets (besides `model` and `inputs`)
SPEC_KEYS = {"kwargs": "kwargs", "batch_size": "batch_size", "seq_len": "seq_len",
             "decoder_seq_len": "decoder_seq_len", "dims": "dims", "frozen": "frozen", "causal_half": "causal_half"}
ENTRY_KEYS = ("name", "model", "inputs", *SPEC_KEYS, *LIMIT_KEYS, *TRAINING_SIZE_KEYS)
TOP_LEVEL_KEYS = ("budgets",)
# what a baseline records per entry, and what `--baseline` compares
BASELINE_METRICS = ("forward_flops", "backward_flops", "params")

# what counts one entry's model: ModelSpec -> CountReport; `flopcalc.api.count_spec` by default
CountFunction = Callable[[ModelSpec], "CountReport"]


@dataclass(frozen=True)
class Budget:
    """One entry of a budget file: which model to count, how, and the limits it must stay under."""

    index: int
    name: str
    spec: ModelSpec  # the model and how it is counted
    limits: Mapping[str, float]  # metric -> limit, in budget-file order
    examples: float | None = None
    epochs: float | None = None
    tokens: float | None = None

    @property
    def label(self) -> str:
        return f"budgets[{self.index}] ({self.name})"

    @property
    def model(self) -> str:
        return self.spec.source


@dataclass(frozen=True)
class BudgetFile:
    path: Path
    budgets: tuple[Budget, ...]


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
# Loading and validation: the budget file's schema (docs/ci.md) as pydantic models


def _si_number(value: Any) -> float:
    try:
        number = parse_si_number(value, what="{field}")
    except UsageError as error:
        refuse(f"key '{{field}}': {error.message}", error.hint)
    if number <= 0:
        refuse(f"key '{{field}}': must be greater than 0, got {value!r}")
    return number


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        refuse(f"key '{{field}}': must be a whole number >= 1, got {value!r}")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        refuse(f"key 'name': must be a non-empty string, got {value!r}")
    return value


def _model(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        refuse(f"key 'model': must be a model spec string, got {value!r}")
    return value


def _kwargs(value: Any) -> dict:
    value = value or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        refuse("key 'kwargs': must be a mapping of argument names to values")
    return value


def _dims(value: Any) -> dict:
    value = value or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1 for k, v in value.items()
    ):
        refuse("key 'dims': must map symbolic dimension names to sizes >= 1", "e.g. dims: {batch: 8}")
    return value


def _frozen(value: Any) -> tuple[str, ...]:
    value = [value] if isinstance(value, str) else (value or [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        refuse("key 'frozen': must be a list of parameter/module patterns", 'e.g. frozen: ["encoder.*"]')
    return tuple(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        refuse(f"key '{{field}}': must be true or false, got {value!r}")
    return value


def _inputs(value: Any) -> tuple[str, ...]:
    """A list of `--input` specs (`1x3x224x224`, `pixel_values=1x3x224x224`), or a mapping of input names to
    shapes (`{input_ids: "1x512:int64"}`), which is the named form."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if isinstance(value, dict) and value and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        value = [f"{name}={shape}" for name, shape in value.items()]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        refuse(f"key 'inputs': must be a list of input specs or a mapping of names to shapes, got {value!r}",
               'write e.g. inputs: ["1x3x224x224"] or inputs: {input_ids: "1x512:int64"}')
    return tuple(value)


Limit = Annotated[float | None, BeforeValidator(lambda value: None if value is None else _si_number(value))]
RunSize = Annotated[int | None, BeforeValidator(lambda value: None if value is None else _whole(value))]


class BudgetEntry(BaseModel):
    """One `budgets:` item as the file gives it; `Budget` is what the checks use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str | None, BeforeValidator(lambda value: None if value is None else _name(value))] = None
    model: Annotated[str, BeforeValidator(_model)]
    inputs: Annotated[tuple[str, ...], BeforeValidator(_inputs)] = ()
    kwargs: Annotated[dict, BeforeValidator(_kwargs)] = {}
    batch_size: RunSize = None
    seq_len: RunSize = None
    decoder_seq_len: RunSize = None
    dims: Annotated[dict, BeforeValidator(_dims)] = {}
    frozen: Annotated[tuple[str, ...], BeforeValidator(_frozen)] = ()
    causal_half: Annotated[bool, BeforeValidator(_flag)] = False
    max_forward_flops: Limit = None
    max_backward_flops: Limit = None
    max_params: Limit = None
    max_training_flops: Limit = None
    max_training_pf_days: Limit = None
    examples: Limit = None
    epochs: Limit = None
    tokens: Limit = None

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            refuse(f"expected a mapping with a `model:` key, got {_kind(data)}")
        return data

    @model_validator(mode="after")
    def _training_size(self) -> "BudgetEntry":
        if self.examples is not None and self.tokens is not None:
            refuse("keys 'examples' and 'tokens' are both given",
                   "give `examples` (and `epochs`) for counted training, or `tokens` for 6·params·tokens, not both")
        if self.epochs is not None and self.examples is None:
            refuse("key 'epochs' needs 'examples'", "add `examples:` (training set size)")
        for key, metric in LIMIT_KEYS.items():
            if metric in TRAINING_METRICS and getattr(self, key) is not None and self.examples is None \
                    and self.tokens is None:
                refuse(f"key {key!r} needs the training size", "add `examples:` (and `epochs:`, default 1) or `tokens:`")
        return self

    def spec(self) -> ModelSpec:
        """The ModelSpec it counts: `model`, `inputs` and the keys of SPEC_KEYS, checked as the CLI checks them."""
        options = {field: getattr(self, key) for key, field in SPEC_KEYS.items() if getattr(self, key) is not None}
        return ModelSpec(self.model, inputs=self.inputs, **options)


class _BudgetsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budgets: list[Any]


def find_budget_file(path: str | Path | None = None) -> Path:
    """`--budget FILE` when given, else `flopcalc.yaml` in the current folder."""
    if path is not None:
        target = Path(path)
        if not target.is_file():
            raise BudgetFileError(f"budget file {target} not found", "check the path given to --budget")
        return target
    target = Path(BUDGET_FILE_NAME)
    if not target.is_file():
        raise BudgetFileError(
            f"no {BUDGET_FILE_NAME} in {Path.cwd()}",
            f"create {BUDGET_FILE_NAME} (see docs/ci.md) or pass --budget FILE",
        )
    return target


def load_budget_file(path: str | Path | None = None) -> BudgetFile:
    """Read and validate a budget file; every problem is a BudgetFileError naming the file, entry and key."""
    target = find_budget_file(path)
    data = read_yaml(target, BudgetFileError, "budget file")
    return parse_budgets(data, target)


def parse_budgets(data: Any, path: Path) -> BudgetFile:
    """Validate already-parsed YAML `data` read from `path` (named in every error)."""
    if not isinstance(data, dict):
        raise BudgetFileError(
            f"{path}: expected a mapping with a `budgets:` list at the top, got {_kind(data)}",
            "see docs/ci.md for the budget file format",
        )
    try:
        entries = _BudgetsFile.model_validate(data).budgets
    except ValidationError as error:
        problem = first_problem(error)
        if problem.kind == "unknown":
            raise BudgetFileError(f"{path}: unknown top-level key {problem.keys[0]!r}",
                                  "the only top-level key is `budgets`") from None
        if problem.kind == "missing":
            raise BudgetFileError(f"{path}: no `budgets:` list", "add `budgets:` with one entry per model") from None
        raise BudgetFileError(f"{path}: `budgets` must be a list, got {_kind(data['budgets'])}",
                              "write each entry as a `- model: ...` item") from None
    if not entries:
        raise BudgetFileError(f"{path}: `budgets` is empty", "add at least one `- model: ...` entry")
    budgets = tuple(_parse_entry(raw, index, path) for index, raw in enumerate(entries))
    first_index: dict[str, int] = {}
    for budget in budgets:
        if budget.name in first_index:
            raise BudgetFileError(
                f"{path}: {budget.label}: name {budget.name!r} is already used by budgets[{first_index[budget.name]}]",
                "give each entry a unique `name:` (baselines are keyed by it)",
            )
        first_index[budget.name] = budget.index
    return BudgetFile(path=path, budgets=budgets)


def _parse_entry(raw: Any, index: int, path: Path) -> Budget:
    label = next((raw.get(key) for key in ("name", "model") if isinstance(raw, dict) and isinstance(raw.get(key), str)),
                 None)
    where = f"{path}: budgets[{index}]" + (f" ({label})" if label else "")
    try:
        entry = BudgetEntry.model_validate(raw)
        spec = entry.spec()
    except ValidationError as error:
        raise BudgetFileError(f"{where}: " + _say(first_problem(error)), _hint(first_problem(error))) from None
    except FlopcalcError as error:
        raise BudgetFileError(f"{where}: {error.message}", error.hint) from None
    return Budget(
        index=index,
        name=entry.name or entry.model,
        spec=spec,
        limits={metric: getattr(entry, key) for key, metric in LIMIT_KEYS.items() if getattr(entry, key) is not None},
        examples=entry.examples,
        epochs=entry.epochs,
        tokens=entry.tokens,
    )


def _say(problem: Problem) -> str:
    """A budget entry's problem in the file's words: `unknown key 'max_parms'`, `key 'max_params': ...`."""
    if problem.kind == "unknown":
        return f"unknown key {problem.keys[0]!r}"
    if problem.kind == "missing":
        return f"missing key {problem.keys[0]!r}"
    if problem.kind == "own":
        return problem.message
    return f"key {dotted(problem.loc)!r}: {problem.message}, got {problem.value!r}"


def _hint(problem: Problem) -> str | None:
    if problem.kind == "unknown":
        close = difflib.get_close_matches(problem.keys[0], ENTRY_KEYS, n=1)
        return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(ENTRY_KEYS)}"
    if problem.kind == "missing" and problem.keys[0] == "model":
        return "add e.g. `model: models/net.py:build`"
    return problem.hint


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


# ---------------------------------------------------------------------------------------------------------------
# Counting


def count_budgets(budget_file: BudgetFile, counter: CountFunction | None = None) -> dict[str, "CountReport"]:
    """Count every entry's model, once per distinct (model, inputs, kwargs); returns entry name -> report.

    A model that cannot be loaded or run raises its FlopcalcError with the entry named, so a check never passes
    because a model crashed.
    """
    if counter is None:
        from .api import count_spec as counter
    by_key: dict[str, CountReport] = {}
    reports: dict[str, CountReport] = {}
    for budget in budget_file.budgets:
        key = budget.spec.key()  # entries that count the same model the same way are counted once
        if key not in by_key:
            by_key[key] = _count_one(budget, budget_file.path, counter)
        reports[budget.name] = by_key[key]
    return reports


def _count_one(budget: Budget, path: Path, counter: CountFunction) -> "CountReport":
    try:
        return counter(budget.spec)
    except FlopcalcError as error:
        raise type(error)(f"{path}: {budget.label}: {error.message}", error.hint) from error
    except Exception as error:  # a model that raises something unexpected still fails the check (exit 2)
        raise ModelRunError(
            f"{path}: {budget.label}: counting {budget.model} failed: {short_error(error)}",
            "rerun with --debug for the traceback",
        ) from error


def training_compute(report: "CountReport", budget: Budget) -> TrainingCompute:
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


def metric_values(report: "CountReport", budget: Budget) -> dict[str, float]:
    """Every metric a limit of `budget` can name, measured on `report`."""
    forward, backward, _ = step_flops(report)
    values: dict[str, float] = {"forward_flops": forward, "backward_flops": backward, "params": report.params}
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
    reports: Mapping[str, "CountReport"],
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
        if report.unsupported_ops:
            ops = ", ".join(f"{op} x{n}" for op, n in sorted(report.unsupported_ops.items()))
            notes.append(f"{budget.name}: ops without a FLOP formula were not counted: {ops}")
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


# ---------------------------------------------------------------------------------------------------------------
# Baselines


def baseline_data(budget_file: BudgetFile, reports: Mapping[str, "CountReport"]) -> dict:
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


def write_baseline(path: str | Path, budget_file: BudgetFile, reports: Mapping[str, "CountReport"]) -> Path:
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
        raise BudgetFileError(f"baseline file {target}: expected an object with a `budgets` object", "rewrite it with --update-baseline")
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


def _plain_number(value: float) -> int | float:
    """Integral values as JSON integers (9G -> 9000000000, not 9000000000.0)."""
    if isinstance(value, int):
        return value
    return int(value) if float(value).is_integer() and abs(value) < 2**63 else value
