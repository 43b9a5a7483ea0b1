"""Rendering a budget `CheckResult`: rich table, JSON, Markdown (pull-request comments) and JUnit XML."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..budget import CheckResult
from ..files import to_json
from ..units import format_number, format_si
from .tabular import markdown_text

METRIC_LABELS = {
    "forward_flops": "forward FLOPs",
    "backward_flops": "backward FLOPs",
    "params": "params",
    "training_flops": "training FLOPs",
    "training_pf_days": "training PF-days",
    "effective_flops": "effective FLOPs (zero weights skipped)",
}


def format_metric(metric: str, value: float) -> str:
    """A metric value the way people read it: `9.5 GFLOP`, `26 M` params, `4.2 PF-days`."""
    if metric == "training_pf_days":
        return f"{format_number(value, 3)} PF-days"
    if metric == "params":
        return format_si(value)
    return format_si(value, "FLOP")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


CHECK_COLUMNS = ("budget", "metric", "value", "limit", "headroom")
REGRESSION_COLUMNS = ("budget", "metric", "baseline", "now", "growth", "tolerance")
_LEFT_COLUMNS = frozenset({"budget", "metric"})


def _rows(items: Iterable[Any], cells: Callable[[Any], tuple[str, ...]]) -> list[tuple[bool, tuple[str, ...]]]:
    """(passed, cells) per check or regression, failures first, file order otherwise: what the table and
    Markdown show."""
    return [(item.passed, cells(item)) for item in sorted(items, key=lambda item: item.passed)]


def _metric_cells(item: Any, *figures: float) -> tuple[str, ...]:
    """How every row begins: the budget's name, the metric's label, then `figures` in the metric's unit."""
    return (item.name, METRIC_LABELS[item.metric], *(format_metric(item.metric, figure) for figure in figures))


def _check_rows(result: CheckResult) -> list[tuple[bool, tuple[str, ...]]]:
    return _rows(
        result.checks,
        lambda check: (*_metric_cells(check, check.value, check.limit), f"{check.headroom:.2f}%"),
    )


def _regression_rows(result: CheckResult) -> list[tuple[bool, tuple[str, ...]]]:
    return _rows(
        result.regressions,
        lambda regression: (
            *_metric_cells(regression, regression.baseline, regression.value),
            _percent(regression.growth_pct),
            f"{regression.tolerance_pct:.2f}%",
        ),
    )


@dataclass(frozen=True)
class _Section:
    title: str
    markdown_title: tuple[str, ...]  # empty: in Markdown the checks sit right under the comment's own heading
    columns: tuple[str, ...]
    rows: list[tuple[bool, tuple[str, ...]]]
    some_failed: str  # the verdict's words for it, with {failed} and {total}
    none_failed: str

    def verdict(self) -> str:
        failed = sum(1 for passed, _ in self.rows if not passed)
        return (self.some_failed if failed else self.none_failed).format(failed=failed, total=len(self.rows))


def _sections(result: CheckResult) -> list[_Section]:
    """The tables a check shows, in order: its budget checks, then its baseline comparisons, each when it has any."""
    sections = []
    if result.checks:
        sections.append(
            _Section(
                "Budget checks",
                (),
                CHECK_COLUMNS,
                _check_rows(result),
                "{failed} of {total} checks over budget",
                "all {total} checks within budget",
            )
        )
    if result.regressions:
        sections.append(
            _Section(
                "Baseline comparison",
                ("#### Baseline comparison",),
                REGRESSION_COLUMNS,
                _regression_rows(result),
                "{failed} of {total} baseline comparisons grew past the tolerance",
                "no growth past the tolerance in {total} baseline comparisons",
            )
        )
    return sections


def verdict(result: CheckResult) -> str:
    """One line: passed or failed, with the counts that say why."""
    parts = [section.verdict() for section in _sections(result)]
    return f"{'PASSED' if result.passed else 'FAILED'}: {'; '.join(parts)}"


# ---------------------------------------------------------------------------------------------------------------
# rich table


def _rich_table(title: str, columns: tuple[str, ...], rows: list[tuple[bool, tuple[str, ...]]]) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        show_edge=False,
        pad_edge=False,
        box=None,
        header_style="bold",
    )
    table.add_column("Status")
    for column in columns:
        table.add_column(column.capitalize(), justify="left" if column in _LEFT_COLUMNS else "right")
    for passed, cells in rows:
        # Text cells: a name like `net[50]` must print as typed, not be read as rich markup
        table.add_row(*(Text(c) for c in ("PASS" if passed else "FAIL", *cells)), style=None if passed else "bold red")
    return table


def table_renderable(result: CheckResult) -> Group:
    """The default output: checks (failures in red, first), baseline comparisons, notes, verdict."""
    parts: list[Any] = []
    for section in _sections(result):
        if parts:
            parts.append(Text(""))
        parts.append(_rich_table(section.title, section.columns, section.rows))
    parts.extend(Text(f"note: {note}", style="yellow") for note in result.notes)
    parts.append(Text(f"\n{verdict(result)}", style="bold green" if result.passed else "bold red"))
    return Group(*parts)


def render_table(result: CheckResult, color: bool = False, width: int = 120) -> str:
    """The default output as text; `color` adds the terminal colours (failures in red)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, color_system="standard" if color else None)
    console.print(table_renderable(result))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# JSON, Markdown, JUnit


def render_json(result: CheckResult) -> str:
    return to_json(result.to_dict())


def _markdown_rows(rows: list[tuple[bool, tuple[str, ...]]]) -> list[tuple[str, ...]]:
    return [("✅" if passed else "❌", *cells) for passed, cells in rows]


def _markdown_headers(columns: tuple[str, ...]) -> tuple[str, ...]:
    return ("", *(c.capitalize() for c in columns))


def _right_columns(columns: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(i + 1 for i, c in enumerate(columns) if c not in _LEFT_COLUMNS)  # +1: the status column


def render_markdown(result: CheckResult) -> str:
    """GitHub-flavoured Markdown for a pull-request comment or `$GITHUB_STEP_SUMMARY`."""
    parts = [f"### {'✅' if result.passed else '❌'} flopcalc budget check {'passed' if result.passed else 'failed'}\n"]
    parts.extend(
        markdown_text(
            _markdown_headers(section.columns),
            _markdown_rows(section.rows),
            right=_right_columns(section.columns),
            title=section.markdown_title,
        )
        for section in _sections(result)
    )
    if result.notes:
        parts.append("".join(f"- note: {note}\n" for note in result.notes))
    parts.append(f"**{verdict(result)}**\n")
    return "\n".join(parts)


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
