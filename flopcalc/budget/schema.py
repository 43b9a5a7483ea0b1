"""Budget files (`flopcalc.yaml`, docs/ci.md): their schema as pydantic models, and what an entry becomes.

Every problem is one BudgetFileError line naming the file, the entry and the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from ..errors import BudgetFileError, FlopcalcError, UsageError
from ..files import read_yaml
from ..schemas import Problem, dotted, refuse, validated
from ..spec import ModelSpec
from ..units import parse_si_number

BUDGET_FILE_NAME = "flopcalc.yaml"

# budget-file key -> the metric its check reports
LIMIT_KEYS: dict[str, str] = {
    "max_forward_flops": "forward_flops",
    "max_backward_flops": "backward_flops",
    "max_params": "params",
    "max_training_flops": "training_flops",
    "max_training_pf_days": "training_pf_days",
    "max_effective_flops": "effective_flops",
}
TRAINING_METRICS = frozenset({"training_flops", "training_pf_days"})
TRAINING_SIZE_KEYS = ("examples", "epochs", "tokens")
# budget-file key -> the ModelSpec field it sets (besides `model` and `inputs`)
SPEC_KEYS = {
    "kwargs": "kwargs",
    "batch_size": "batch_size",
    "seq_len": "seq_len",
    "decoder_seq_len": "decoder_seq_len",
    "dims": "dims",
    "frozen": "frozen",
    "causal_half": "causal_half",
    "attention_window": "attention_window",
    "attention_as_math": "attention_as_math",
    "weights": "weights",
    "revision": "revision",
}
# a limit on effective FLOPs (products with a zero weight left out) counts its entry with sparsity
SPARSITY_METRICS = frozenset({"effective_flops"})
ENTRY_KEYS = ("name", "model", "inputs", *SPEC_KEYS, *LIMIT_KEYS, *TRAINING_SIZE_KEYS)
TOP_LEVEL_KEYS = ("budgets",)


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


def _text_of(key: str, what: str) -> Callable[[Any], str]:
    """The check of a key whose value is a non-empty string: `what` says which string it must be."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            refuse(f"key '{key}': must be {what}, got {value!r}")
        return value

    return check


_name = _text_of("name", "a non-empty string")
_model = _text_of("model", "a model spec string")
_weights = _text_of("weights", "the path of a state dict or .safetensors file")


def _revision(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        refuse(
            f"key 'revision': must be a branch, tag or commit of the model's Hub repo, got {value!r}",
            "e.g. revision: main",
        )
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
        refuse(
            f"key 'inputs': must be a list of input specs or a mapping of names to shapes, got {value!r}",
            'write e.g. inputs: ["1x3x224x224"] or inputs: {input_ids: "1x512:int64"}',
        )
    return tuple(value)


Limit = Annotated[float | None, BeforeValidator(lambda value: None if value is None else _si_number(value))]
RunSize = Annotated[int | None, BeforeValidator(lambda value: None if value is None else _whole(value))]


class BudgetEntry(BaseModel):
    """One `budgets:` item as the file gives it; `Budget` is what the checks use."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

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
    attention_window: RunSize = None
    attention_as_math: Annotated[bool, BeforeValidator(_flag)] = False
    weights: Annotated[str | None, BeforeValidator(lambda value: None if value is None else _weights(value))] = None
    revision: Annotated[str | None, BeforeValidator(lambda value: None if value is None else _revision(value))] = None
    max_forward_flops: Limit = None
    max_backward_flops: Limit = None
    max_params: Limit = None
    max_training_flops: Limit = None
    max_training_pf_days: Limit = None
    max_effective_flops: Limit = None
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
    def _one_attention_shape(self) -> BudgetEntry:
        if self.attention_window is not None and self.attention_as_math:
            refuse(
                "keys 'attention_window' and 'attention_as_math' contradict each other",
                "give one: the window's keys, or the full square",
            )
        return self

    @model_validator(mode="after")
    def _training_size(self) -> BudgetEntry:
        if self.examples is not None and self.tokens is not None:
            refuse(
                "keys 'examples' and 'tokens' are both given",
                "give `examples` (and `epochs`) for counted training, or `tokens` for 6·params·tokens, not both",
            )
        if self.epochs is not None and self.examples is None:
            refuse("key 'epochs' needs 'examples'", "add `examples:` (training set size)")
        for key, metric in LIMIT_KEYS.items():
            if (
                metric in TRAINING_METRICS
                and getattr(self, key) is not None
                and self.examples is None
                and self.tokens is None
            ):
                refuse(
                    f"key {key!r} needs the training size", "add `examples:` (and `epochs:`, default 1) or `tokens:`"
                )
        return self

    def spec(self) -> ModelSpec:
        """The ModelSpec it counts: `model`, `inputs` and the keys of SPEC_KEYS, checked as the CLI checks them."""
        options = {field: getattr(self, key) for key, field in SPEC_KEYS.items() if getattr(self, key) is not None}
        sparsity = any(
            getattr(self, key) is not None for key, metric in LIMIT_KEYS.items() if metric in SPARSITY_METRICS
        )
        return ModelSpec(self.model, inputs=self.inputs, sparsity=sparsity, **options)


class _BudgetsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

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
    entries = validated(
        _BudgetsFile, data, lambda problem: _say_top_level(problem, data, path), BudgetFileError
    ).budgets
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
    label = next(
        (raw.get(key) for key in ("name", "model") if isinstance(raw, dict) and isinstance(raw.get(key), str)), None
    )
    where = f"{path}: budgets[{index}]" + (f" ({label})" if label else "")
    entry = validated(BudgetEntry, raw, lambda problem: (f"{where}: {_say(problem)}", _hint(problem)), BudgetFileError)
    try:
        spec = entry.spec()
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


def _say_top_level(problem: Problem, data: Mapping[str, Any], path: Path) -> tuple[str, str | None]:
    """What is wrong above the entries: an unknown key, no `budgets:`, or `budgets` not a list."""
    if problem.kind == "unknown":
        return f"{path}: unknown top-level key {problem.keys[0]!r}", "the only top-level key is `budgets`"
    if problem.kind == "missing":
        return f"{path}: no `budgets:` list", "add `budgets:` with one entry per model"
    return (
        f"{path}: `budgets` must be a list, got {_kind(data['budgets'])}",
        "write each entry as a `- model: ...` item",
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
