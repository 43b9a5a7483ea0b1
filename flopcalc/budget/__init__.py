"""Compute budgets for CI: load and validate a budget file, count its models, compare with limits and a baseline.

A budget file (`flopcalc.yaml`) lists models with limits on forward/backward FLOPs, parameters and training
compute. Each limit of each entry becomes one `Check`; with a baseline, each entry's forward FLOPs, backward
FLOPs and parameters become one `Regression` comparison each. Nothing here prints or exits.
"""

from .baseline import BASELINE_METRICS, BASELINE_SCHEMA_VERSION, baseline_data, load_baseline, write_baseline
from .checks import (
    Check,
    CheckResult,
    CountFunction,
    Regression,
    compare_with_baseline,
    count_budgets,
    evaluate,
    metric_values,
    run_checks,
    training_compute,
)
from .schema import (
    BUDGET_FILE_NAME,
    ENTRY_KEYS,
    LIMIT_KEYS,
    SPEC_KEYS,
    TOP_LEVEL_KEYS,
    TRAINING_METRICS,
    TRAINING_SIZE_KEYS,
    Budget,
    BudgetEntry,
    BudgetFile,
    find_budget_file,
    load_budget_file,
    parse_budgets,
)

__all__ = [
    "BASELINE_METRICS",
    "BASELINE_SCHEMA_VERSION",
    "BUDGET_FILE_NAME",
    "ENTRY_KEYS",
    "LIMIT_KEYS",
    "SPEC_KEYS",
    "TOP_LEVEL_KEYS",
    "TRAINING_METRICS",
    "TRAINING_SIZE_KEYS",
    "Budget",
    "BudgetEntry",
    "BudgetFile",
    "Check",
    "CheckResult",
    "CountFunction",
    "Regression",
    "baseline_data",
    "compare_with_baseline",
    "count_budgets",
    "evaluate",
    "find_budget_file",
    "load_baseline",
    "load_budget_file",
    "metric_values",
    "parse_budgets",
    "run_checks",
    "training_compute",
    "write_baseline",
]
