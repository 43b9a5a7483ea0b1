"""`bench --format html` (the matmul sweep): how measured throughput grows with matrix size, drawn from the same
MatmulBenchResult the table comes from.

One chart: each shape timed a point at its FLOPs per call (2 m n k) against its median TFLOPS, one series per
precision, the precision's peak (datasheet, or the CPU estimate) as a dashed line of the same colour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..units import format_si
from . import colors
from .html import PAN_AND_ZOOM, Section, page_figure, render_page, require_bokeh

if TYPE_CHECKING:
    from ..bench.matmul import MatmulBenchResult

SHAPES_NAME = "shapes"  # the glyph renderers' name: the browser test reads their data through it
PEAK_NAME = "peak"
_SERIES = (colors.BLUE, colors.ORANGE, colors.GREEN, colors.RED, colors.TEAL, colors.PURPLE, colors.BROWN)


def shape_points(result: MatmulBenchResult) -> dict[str, list[Any]]:
    """One point per precision and shape timed: its FLOPs per call and its median and best TFLOPS."""
    points: dict[str, list[Any]] = {k: [] for k in ("precision", "shape", "kind", "flops", "median", "best")}
    for item in result.results:
        for timing in item.timings:
            m, n, k = timing.shape
            points["precision"].append(item.precision)
            points["shape"].append(f"{m} x {n} x {k}")
            points["kind"].append(timing.kind)
            points["flops"].append(2 * m * n * k)
            points["median"].append(timing.median_tflops)
            points["best"].append(timing.best_tflops)
    return points


def _series_columns(points: dict[str, list[Any]], chosen: list[int], precision: str) -> dict[str, list[Any]]:
    """One precision's points (the `chosen` indices of `points`), with the hover's texts."""
    return {
        "flops": [points["flops"][i] for i in chosen],
        "median": [points["median"][i] for i in chosen],
        "shape": [points["shape"][i] for i in chosen],
        "kind": [points["kind"][i] for i in chosen],
        "best_text": [f"{points['best'][i]:.4g}" for i in chosen],
        "median_text": [f"{points['median'][i]:.4g}" for i in chosen],
        "flops_text": [format_si(points["flops"][i]) for i in chosen],
        "precision": [precision] * len(chosen),
    }


def _sweep(result: MatmulBenchResult) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool

    points = shape_points(result)
    lowest, highest = min(points["flops"]) / 1.5, max(points["flops"]) * 1.5
    plot = page_figure(
        PAN_AND_ZOOM,
        height=420,
        x_axis_type="log",
        y_axis_type="log",  # a busy or small device sits decades below its peak
        x_axis_label="FLOPs per matmul (2 m n k)",
        y_axis_label="TFLOPS (median of the samples)",
        x_range=(lowest, highest),
    )
    renderers = []
    for index, item in enumerate(result.results):
        color = _SERIES[index % len(_SERIES)]
        chosen = [i for i, precision in enumerate(points["precision"]) if precision == item.precision]
        source = ColumnDataSource(_series_columns(points, chosen, item.precision))
        renderers.append(
            plot.scatter(
                "flops", "median", source=source, size=8, color=color, legend_label=item.precision, name=SHAPES_NAME
            )
        )
        if item.peak_flops:
            plot.line(
                [lowest, highest],
                [item.peak_flops / 1e12] * 2,
                color=color,
                line_dash="dashed",
                line_width=2,
                legend_label=f"{item.precision} peak {item.peak_flops / 1e12:.4g} TFLOPS",
                name=PEAK_NAME,
            )
    plot.add_tools(
        HoverTool(
            renderers=renderers,
            tooltips=[
                ("precision", "@precision"),
                ("shape m x n x k", "@shape (@kind)"),
                ("FLOPs per call", "@flops_text"),
                ("median TFLOPS", "@median_text"),
                ("best TFLOPS", "@best_text"),
            ],
        )
    )
    plot.legend.location = "top_left"
    plot.legend.click_policy = "hide"
    return plot


def render_matmul_html(result: MatmulBenchResult, command_line: str, data: Mapping[str, Any]) -> str:
    """The matmul sweep as one self-contained page; `data` is the JSON object `--format json` prints."""
    require_bokeh()
    info = result.info
    summary = [["device", f"{info.device_name} ({info.device}, torch {info.torch_version})"]]
    for item in result.results:
        peak = "no peak known" if not item.peak_flops else f"{item.peak_flops / 1e12:.4g} TFLOPS ({item.peak_source})"
        share = "" if item.fraction_of_peak is None else f", {item.fraction_of_peak:.1%} of the peak"
        shape = " x ".join(map(str, item.headline.shape))
        summary.append([item.precision, f"{item.median_tflops:.4g} TFLOPS at {shape}{share}; peak {peak}"])
    summary.append(["timed", f"{result.seconds_used:.1f} s (budget {result.seconds_budget:g} s)"])
    sections = [
        Section(
            "Measured matmul TFLOPS against size",
            _sweep(result),
            "Each point is one shape's median over its timed samples; the dashed lines are the peaks the table "
            "compares with.",
        )
    ]
    notes = [*result.notes, *(f"warning: {warning}" for warning in result.warnings)]
    return render_page(
        f"flopcalc bench: {info.device_name}", sections, data, command_line, summary=summary, notes=notes
    )
