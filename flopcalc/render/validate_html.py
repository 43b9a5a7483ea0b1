"""`validate --format html`: how close the predictions are to the measured runs, drawn from the same
ValidationReport the table comes from.

One chart per kind (time per step, memory per GPU): each row a point at (measured, predicted), tuning and
held-out rows apart, with the y = x line and the band of the table's max |error| around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..validate import ValidationReport
from . import colors
from .html import PAN_AND_ZOOM, Section, page_figure, render_page, require_bokeh
from .validate import summary_lines

POINTS_NAME = "{kind}_rows"  # the glyph renderers' names: the browser test reads their data through them
_KINDS = (("time", "Time per optimizer step", "seconds"), ("memory", "Memory per GPU", "GiB"))
_ROLES = {"tuning": colors.ORANGE, "held-out": colors.BLUE}


def validation_points(report: ValidationReport, kind: str) -> dict[str, list[Any]]:
    """One point per row of `kind`: measured against predicted, with its error and role."""
    rows = report.of(kind)
    return {
        "id": [r.row.id for r in rows],
        "role": [r.row.role for r in rows],
        "measured": [r.row.measured for r in rows],
        "predicted": [r.predicted for r in rows],
        "error": [r.error for r in rows],
    }


def error_band(report: ValidationReport, kind: str, lowest: float, highest: float) -> dict[str, list[float]]:
    """The polygon between y = x (1 - e) and y = x (1 + e) from `lowest` to `highest`, e the kind's max |error|."""
    worst = report.summary(kind).max_abs_error or 0.0
    return {
        "x": [lowest, highest, highest, lowest],
        "y": [lowest * (1 - worst), highest * (1 - worst), highest * (1 + worst), lowest * (1 + worst)],
    }


def _chart(report: ValidationReport, kind: str, unit: str) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool

    points = validation_points(report, kind)
    worst = report.summary(kind).max_abs_error or 0.0
    values = points["measured"] + points["predicted"]
    lowest, highest = min(values) / 1.25, max(values) * 1.25
    plot = page_figure(
        PAN_AND_ZOOM,
        height=420,
        x_axis_type="log",
        y_axis_type="log",
        x_axis_label=f"measured ({unit})",
        y_axis_label=f"predicted ({unit})",
        x_range=(lowest, highest),
        y_range=(lowest, highest),
    )
    band = error_band(report, kind, lowest, highest)
    plot.patch(
        band["x"],
        band["y"],
        fill_color=colors.GREEN,
        fill_alpha=0.18,
        line_alpha=0,
        legend_label=f"max |error| {worst * 100:.2f}%",
    )
    plot.line([lowest, highest], [lowest, highest], color="#333333", line_dash="dashed", legend_label="y = x")
    source = ColumnDataSource(
        {
            **points,
            "color": [_ROLES.get(role, "#999999") for role in points["role"]],
            "error_text": [f"{error * 100:+.2f}%" for error in points["error"]],
        }
    )
    dots = plot.scatter(
        "measured",
        "predicted",
        source=source,
        size=10,
        color="color",
        line_color="black",
        legend_field="role",
        name=POINTS_NAME.format(kind=kind),
    )
    plot.add_tools(
        HoverTool(
            renderers=[dots],
            tooltips=[
                ("run", "@id"),
                ("role", "@role"),
                ("measured", f"@measured{{0.0000}} {unit}"),
                ("predicted", f"@predicted{{0.0000}} {unit}"),
                ("error", "@error_text"),
            ],
        )
    )
    plot.legend.location = "top_left"
    return plot


def render_html(report: ValidationReport, command_line: str, data: Mapping[str, Any]) -> str:
    """The validation as one self-contained page; `data` is the JSON object `--format json` prints."""
    require_bokeh()
    summary = [["runs", f"{len(report.results)} published measured runs from {report.runs_file}"]]
    if report.fit is None:
        summary.append(["fit", "none: the device profiles as shipped, every row a prediction"])
    else:
        summary.append(
            [
                "fit",
                f"matmul efficiency x {report.fit.matmul_efficiency_scale:.4f} on the tuning rows only "
                f"({', '.join(report.fit.tuning_rows)})",
            ]
        )
    sections = []
    for kind, title, unit in _KINDS:
        if not report.of(kind):
            continue
        sections.append(
            Section(
                f"{title}: predicted against measured",
                _chart(report, kind, unit),
                "; ".join(summary_lines(report, kind))
                + ". A point on the dashed line is exact; the band is the largest error of these rows.",
            )
        )
    notes = [f"{result.row.id}: {result.row.source}" for result in report.results] + list(report.sources)
    return render_page(
        "flopcalc validate: predicted against measured", sections, data, command_line, summary=summary, notes=notes
    )
