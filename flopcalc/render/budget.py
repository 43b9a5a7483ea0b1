"""Rendering a budget `CheckResult`: rich table, JSON, Markdown (pull-request comments) and JUnit XML."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..budget import Check, CheckResult, Regression
from ..units import format_si
from .output import to_json

METRIC_LABELS = {
    "forward_flops": "forward FLOPs",
    "backward_flops": "backward FLOPs",
    "params": "params",
    "training_flops": "training FLOPs",
    "training_pf_days": "training PF-days",
}


def format_metric(metric: str, value: float) -> str:
    """A metric value the way people read it: `9.5 GFLOP`, `26 M` params, `4.2 PF-days`."""
    if metric == "training_pf_days":
        return f"{format_si(value)} PF-days"
    if metric == "params":
        return format_si(value)
    return format_si(value, "FLOP")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def _failures_first(result: CheckResult) -> tuple[list[Check], list[Regression]]:
    checks = sorted(result.checks, key=lambda c: c.passed)  # stable: file order within failed and passed
    regressions = sorted(result.regressions, key=lambda r: r.passed)
    return checks, regressions


def verdict(result: CheckResult) -> str:
    """One line: passed or failed, with the counts that say why."""
    parts = []
    if result.checks:
        failed = len(result.failed_checks)
        parts.append(
            f"{failed} of {len(result.checks)} checks over budget" if failed else f"all {len(result.checks)} checks within budget"
        )
    if result.regressions:
        regressed = len(result.failed_regressions)
        parts.append(
            f"{regressed} of {len(result.regressions)} baseline comparisons grew past the tolerance"
            if regressed
            else f"no growth past the tolerance in {len(result.regressions)} baseline comparisons"
        )
    return f"{'PASSED' if result.passed else 'FAILED'}: {'; '.join(parts)}"


# ---------------------------------------------------------------------------------------------------------------
# rich table


def table_renderable(result: CheckResult) -> Group:
    """The default output: checks (failures in red, first), baseline comparisons, notes, verdict."""
    checks, regressions = _failures_first(result)
    parts = []
    if checks:
        table = Table(title="Budget checks", title_justify="left")
        for column in ("status", "budget", "metric", "value", "limit", "headroom"):
            table.add_column(column, justify="right" if column in ("value", "limit", "headroom") else "left")
        for check in checks:
            table.add_row(
                "PASS" if check.passed else "FAIL",
                check.name,
                METRIC_LABELS[check.metric],
                format_metric(check.metric, check.value),
                format_metric(check.metric, check.limit),
                f"{check.headroom:.2f}%",
                style=None if check.passed else "bold red",
            )
        parts.append(table)
    if regressions:
        table = Table(title="Baseline comparison", title_justify="left")
        for column in ("status", "budget", "metric", "baseline", "now", "growth", "tolerance"):
            table.add_column(column, justify="left" if column in ("status", "budget", "metric") else "right")
        for regression in regressions:
            table.add_row(
                "PASS" if regression.passed else "FAIL",
                regression.name,
                METRIC_LABELS[regression.metric],
                format_metric(regression.metric, regression.baseline),
                format_metric(regression.metric, regression.value),
                _percent(regression.growth_pct),
                f"{regression.tolerance_pct:.2f}%",
                style=None if regression.passed else "bold red",
            )
        parts.append(table)
    parts.extend(Text(f"note: {note}", style="yellow") for note in result.notes)
    parts.append(Text(verdict(result), style="bold green" if result.passed else "bold red"))
    return Group(*parts)


def render_table(result: CheckResult, width: int = 120) -> str:
    """The table as plain text (for `--output FILE` and tests)."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(table_renderable(result))
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# JSON, Markdown, JUnit


def render_json(result: CheckResult) -> str:
    return to_json(result.to_dict())


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(result: CheckResult) -> str:
    """GitHub-flavoured Markdown for a pull-request comment or `$GITHUB_STEP_SUMMARY`."""
    checks, regressions = _failures_first(result)
    lines = [f"### {'✅' if result.passed else '❌'} flopcalc budget check {'passed' if result.passed else 'failed'}", ""]
    if checks:
        lines += ["| | Budget | Metric | Value | Limit | Headroom |", "|---|---|---|---:|---:|---:|"]
        for check in checks:
            lines.append(
                f"| {'✅' if check.passed else '❌'} | {_md_cell(check.name)} | {METRIC_LABELS[check.metric]} "
                f"| {format_metric(check.metric, check.value)} | {format_metric(check.metric, check.limit)} "
                f"| {check.headroom:.2f}% |"
            )
        lines.append("")
    if regressions:
        lines += [
            "#### Baseline comparison",
            "",
            "| | Budget | Metric | Baseline | Now | Growth | Tolerance |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for regression in regressions:
            lines.append(
                f"| {'✅' if regression.passed else '❌'} | {_md_cell(regression.name)} "
                f"| {METRIC_LABELS[regression.metric]} | {format_metric(regression.metric, regression.baseline)} "
                f"| {format_metric(regression.metric, regression.value)} | {_percent(regression.growth_pct)} "
                f"| {regression.tolerance_pct:.2f}% |"
            )
        lines.append("")
    lines += [f"> {_md_cell(note)}" for note in result.notes]
    if result.notes:
        lines.append("")
    lines.append(f"**{verdict(result)}**")
    return "\n".join(lines) + "\n"


def render_junit(result: CheckResult) -> str:
    """JUnit XML: one testcase per check and per baseline comparison; failures carry a <failure> element."""
    suites = ET.Element("testsuites", name="flopcalc check")
    check_cases = [
        (
            f"flopcalc.budget.{check.name}",
            METRIC_LABELS[check.metric],
            None
            if check.passed
            else (
                f"{METRIC_LABELS[check.metric]} {format_metric(check.metric, check.value)} exceeds the limit "
                f"{format_metric(check.metric, check.limit)} (headroom {check.headroom:.2f}%)",
                f"value={check.to_dict()['value']} limit={check.to_dict()['limit']} model={check.model}",
                "BudgetExceeded",
            ),
        )
        for check in result.checks
    ]
    regression_cases = [
        (
            f"flopcalc.baseline.{regression.name}",
            f"{METRIC_LABELS[regression.metric]} growth",
            None
            if regression.passed
            else (
                f"{METRIC_LABELS[regression.metric]} grew {_percent(regression.growth_pct)} over the baseline "
                f"(tolerance {regression.tolerance_pct:.2f}%)",
                f"baseline={regression.baseline} value={regression.value}",
                "BaselineRegression",
            ),
        )
        for regression in result.regressions
    ]
    for suite_name, cases in (("budgets", check_cases), ("baseline", regression_cases)):
        if not cases:
            continue
        failures = sum(1 for *_, failure in cases if failure is not None)
        suite = ET.SubElement(
            suites, "testsuite", name=suite_name, tests=str(len(cases)), failures=str(failures), errors="0", skipped="0"
        )
        for classname, name, failure in cases:
            case = ET.SubElement(suite, "testcase", classname=classname, name=name)
            if failure is not None:
                message, detail, kind = failure
                element = ET.SubElement(case, "failure", message=message, type=kind)
                element.text = detail
    total = sum(int(s.get("tests")) for s in suites)
    suites.set("tests", str(total))
    suites.set("failures", str(sum(int(s.get("failures")) for s in suites)))
    suites.set("errors", "0")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


RENDERERS = {"json": render_json, "markdown": render_markdown, "junit": render_junit, "table": render_table}
