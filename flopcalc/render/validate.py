"""Rendering a ValidationReport (`flopcalc validate`): predicted against measured, per row, and the errors."""

from __future__ import annotations

from typing import Any

from ..files import to_json
from ..validate import MemoryResult, Summary, TimeResult, ValidationReport
from .tabular import csv_text, markdown_text, table_text

_TIME_HEADERS = ("run", "role", "measured s", "predicted s", "error", "MFU", "HFU")
_MEMORY_HEADERS = ("run", "role", "measured GiB", "predicted GiB", "error", "activations error")
_CSV_HEADERS = (
    "id",
    "kind",
    "role",
    "measured",
    "predicted",
    "unit",
    "error",
    "mfu",
    "hfu",
    "activations_error",
    "source",
)


def _pct(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.2f}%" if signed else f"{value * 100:.2f}%"


def _summary_line(name: str, summary: Summary) -> str:
    if not summary.rows:
        return f"{name}: no rows"
    return (
        f"{name}: mean |error| {_pct(summary.mean_abs_error, False)}, max {_pct(summary.max_abs_error, False)} "
        f"({summary.rows} row{'s' if summary.rows != 1 else ''})"
    )


def summary_lines(report: ValidationReport, kind: str) -> list[str]:
    lines = [_summary_line(f"{kind}, all rows", report.summary(kind))]
    for role, name in (("held-out", "held out (predictions)"), ("tuning", "tuning rows")):
        if report.summary(kind, role).rows:
            lines.append(_summary_line(f"{kind}, {name}", report.summary(kind, role)))
    return lines


def _rows(report: ValidationReport, kind: str) -> list[list[Any]]:
    rows = []
    for result in report.of(kind):
        if isinstance(result, TimeResult):
            rows.append(
                [
                    result.row.id,
                    result.row.role,
                    f"{result.row.measured:.4g}",
                    f"{result.predicted:.4g}",
                    _pct(result.error),
                    _pct(result.mfu, False),
                    _pct(result.hfu, False),
                ]
            )
        elif isinstance(result, MemoryResult):
            rows.append(
                [
                    result.row.id,
                    result.row.role,
                    f"{result.row.measured:.4f}",
                    f"{result.predicted:.4f}",
                    _pct(result.error),
                    _pct(result.activations_error),
                ]
            )
    return rows


def _title(report: ValidationReport) -> list[str]:
    line = f"validate: {len(report.results)} published measured runs from {report.runs_file}"
    if report.fit is None:
        return [line, "device profiles as shipped: nothing fitted, every row is a prediction"]
    return [
        line,
        f"matmul efficiency x {report.fit.matmul_efficiency_scale:.4f}, fitted on the "
        f"{len(report.fit.tuning_rows)} tuning rows only ({', '.join(report.fit.tuning_rows)})",
    ]


def _sources(report: ValidationReport) -> list[str]:
    return [
        "Sources of the rows:",
        *(f"  {result.row.id}: {result.row.source}" for result in report.results),
        "The model's figures and rules:",
        *(f"  {line}" for line in report.sources),
    ]


def render(report: ValidationReport, fmt: str) -> str:
    if fmt == "json":
        return to_json(report.to_dict())
    if fmt == "csv":
        rows = []
        for result in report.results:
            data = result.to_dict()
            rows.append(
                [
                    data["id"],
                    data["kind"],
                    data["role"],
                    data["measured"],
                    data["predicted"],
                    data["unit"],
                    data["error"],
                    data.get("mfu"),
                    data.get("hfu"),
                    data.get("activations_error"),
                    data["source"],
                ]
            )
        return csv_text(_CSV_HEADERS, rows)
    sections = []
    for kind, headers, right, heading in (
        ("time", _TIME_HEADERS, (2, 3, 4, 5, 6), "Time per optimizer step"),
        ("memory", _MEMORY_HEADERS, (2, 3, 4, 5), "Memory per GPU"),
    ):
        if not report.of(kind):
            continue
        if fmt == "markdown":
            sections.append(
                markdown_text(
                    headers,
                    _rows(report, kind),
                    right=right,
                    title=[f"### {heading}"],
                    footer=[f"- {line}" for line in summary_lines(report, kind)],
                )
            )
        else:
            sections.append(
                table_text(
                    headers, _rows(report, kind), right=right, title=[heading], footer=summary_lines(report, kind)
                )
            )
    if fmt == "markdown":
        head = "\n\n".join(_title(report)) + "\n"
        tail = "\n".join(f"- {line.strip()}" for line in _sources(report) if line.startswith("  ")) + "\n"
        return "\n".join([head, *sections, tail])
    head = "\n".join(_title(report)) + "\n"
    return "\n".join([head, *sections, "\n".join(_sources(report)) + "\n"])
