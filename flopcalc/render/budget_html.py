"""`check --format html`: each budget as a bar against its limit, each baseline comparison against its tolerance.

A bar is the value as a share of its limit (100% is the limit line), so budgets of FLOPs, parameters and PF-days
share one axis; over the line is red. The figures themselves are in the hover and the table under the chart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..budget import CheckResult
from . import colors
from .budget import METRIC_LABELS, format_metric, verdict
from .html import Section, page_figure, render_page, require_bokeh

BUDGETS_NAME = "budgets"  # the glyph renderers' names: the browser test reads their data through them
GROWTH_NAME = "growth"
_PASSED, _FAILED = colors.GREEN, colors.RED


def budget_bars(result: CheckResult) -> dict[str, list[Any]]:
    """One bar per check, in file order: the value in percent of its limit (a limit of 0: 0% at 0, else inf)."""
    bars: dict[str, list[Any]] = {k: [] for k in ("label", "percent", "value", "limit", "color")}
    for check in result.checks:
        share = check.value / check.limit * 100 if check.limit else (0.0 if not check.value else float("inf"))
        bars["label"].append(f"{check.name}: {METRIC_LABELS[check.metric]}")
        bars["percent"].append(share)
        bars["value"].append(format_metric(check.metric, check.value))
        bars["limit"].append(format_metric(check.metric, check.limit))
        bars["color"].append(_PASSED if check.passed else _FAILED)
    return bars


def growth_bars(result: CheckResult) -> dict[str, list[Any]]:
    """One bar per baseline comparison with a growth figure: the growth and its tolerance, in percent."""
    bars: dict[str, list[Any]] = {k: [] for k in ("label", "growth", "tolerance", "color")}
    for regression in result.regressions:
        if regression.growth_pct is None:  # a baseline of 0: no percentage (the table says so)
            continue
        bars["label"].append(f"{regression.name}: {METRIC_LABELS[regression.metric]}")
        bars["growth"].append(regression.growth_pct)
        bars["tolerance"].append(regression.tolerance_pct)
        bars["color"].append(_PASSED if regression.passed else _FAILED)
    return bars


def _bars_chart(bars: dict[str, list[Any]], value: str, axis: str, name: str, lines: list[float]) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool, Span

    shown = [min(v, 1e6) for v in bars[value]]  # an infinite share (a limit of 0) drawn long, said in the hover
    plot = page_figure(
        y_range=list(reversed(bars["label"])),
        height=80 + 30 * len(bars["label"]),
        x_axis_label=axis,
        x_range=(min(0.0, *shown) * 1.1 - 1, max(110.0, *shown, *lines) * 1.05),
    )
    texts = {key: [f"{v:.2f}%" if isinstance(v, float) else v for v in column] for key, column in bars.items()}
    source = ColumnDataSource({**texts, "color": bars["color"], "shown": shown})  # numbers as text: inf is no JSON
    plot.hbar(y="label", left=0, right="shown", height=0.6, color="color", source=source, name=name)
    for line in lines:
        plot.add_layout(Span(location=line, dimension="height", line_color="#333", line_dash="dashed"))
    tips = [(key, f"@{key}") for key in bars if key not in ("label", "color")]
    plot.add_tools(HoverTool(tooltips=[("", "@label"), *tips]))
    return plot


def render_check_html(result: CheckResult, command_line: str, data: Mapping[str, Any]) -> str:
    """The budget check as one page; `data` is the JSON object `--format json` prints."""
    require_bokeh()
    sections: list[Section] = []
    if result.checks:
        sections.append(
            Section(
                "Budgets: each value against its limit",
                _bars_chart(budget_bars(result), "percent", "% of the limit", BUDGETS_NAME, [100.0]),
                "The dashed line is the limit; a red bar is over it.",
                rows=[
                    [
                        c.name,
                        METRIC_LABELS[c.metric],
                        format_metric(c.metric, c.value),
                        format_metric(c.metric, c.limit),
                        f"{c.headroom:.2f}%",
                    ]
                    for c in result.checks
                ],  # fmt: skip
                header=["budget", "metric", "value", "limit", "headroom"],
            )
        )
    growth = growth_bars(result)
    if growth["label"]:
        tolerances = sorted(set(growth["tolerance"]))
        sections.append(
            Section(
                "Growth over the baseline",
                _bars_chart(growth, "growth", "% growth over the baseline", GROWTH_NAME, tolerances),
                "The dashed line is the tolerance; a red bar grew past it.",
            )
        )
    return render_page(
        "flopcalc check", sections, data, command_line, summary=[["verdict", verdict(result)]], notes=result.notes
    )
