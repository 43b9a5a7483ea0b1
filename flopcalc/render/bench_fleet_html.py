"""`bench --distributed --format html`: bus bandwidth against message size per collective and scope, and each
rank's matmul TFLOPS, drawn from the FleetBenchResult the table comes from (a slow rank or link stands out).

The data block is the `bench --distributed --format json` object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..units import format_bytes
from . import colors
from .bench import FLEET_COLUMNS, fleet_footer, fleet_rows, fleet_title
from .html import PAN_AND_ZOOM, Section, page_figure, render_page, require_bokeh

if TYPE_CHECKING:
    from ..bench.fleet import FleetBenchResult

BANDWIDTH_NAME = "busbw"  # the glyph renderers' names: the browser test reads their data through them
RANKS_NAME = "ranks"
_SERIES = (
    colors.BLUE,
    colors.ORANGE,
    colors.GREEN,
    colors.RED,
    colors.TEAL,
    colors.PURPLE,
    colors.BROWN,
    colors.YELLOW,
    colors.PINK,
    colors.GREY,
)
_DASH = {"world": "solid", "intra": "dashed", "inter": "dotted"}


def bandwidth_series(result: FleetBenchResult) -> dict[str, dict[str, list[Any]]]:
    """Per scope and collective ("world all_reduce", ..., "world sendrecv"), its sizes in order with their
    bus bandwidth: one line each on the chart."""
    series: dict[str, dict[str, list[Any]]] = {}
    for item in (*result.collectives, *result.p2p):
        line = series.setdefault(f"{item.scope} {item.op}", {k: [] for k in ("bytes", "busbw", "time_s", "ranks")})
        line["bytes"].append(item.bytes)
        line["busbw"].append(item.busbw_gbps)
        line["time_s"].append(item.time_s)
        line["ranks"].append(item.ranks if item.groups == 1 else f"{item.ranks} x {item.groups} groups")
    for line in series.values():
        order = sorted(range(len(line["bytes"])), key=line["bytes"].__getitem__)
        for key in line:
            line[key] = [line[key][i] for i in order]
    return series


def rank_bars(result: FleetBenchResult) -> dict[str, dict[str, list[Any]]]:
    """Per precision, one bar per rank that measured it: its rank, host and TFLOPS."""
    bars: dict[str, dict[str, list[Any]]] = {}
    for report in result.per_rank:
        for precision, tflops in report.tflops.items():
            bar = bars.setdefault(precision, {k: [] for k in ("rank", "host", "tflops")})
            bar["rank"].append(report.rank)
            bar["host"].append(report.host)
            bar["tflops"].append(tflops)
    return bars


def _bandwidth_chart(result: FleetBenchResult) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool, Legend, LegendItem

    series = bandwidth_series(result)
    sizes = sorted({size for line in series.values() for size in line["bytes"]})
    plot = page_figure(
        PAN_AND_ZOOM,
        height=440,
        x_axis_type="log",
        y_axis_type="log",  # small messages sit decades below the link's bandwidth
        x_range=(sizes[0] / 1.5, sizes[-1] * 1.5),
        x_axis_label="message size",
        y_axis_label="bus bandwidth (GB/s)",
    )
    ticks = sizes[:: max(1, len(sizes) // 10)]  # at most about ten labels, each a size measured
    plot.xaxis.ticker = ticks
    plot.xaxis.major_label_overrides = {size: format_bytes(size) for size in ticks}
    points, items = [], []
    for index, (label, line) in enumerate(series.items()):
        color, scope = _SERIES[index % len(_SERIES)], label.split()[0]
        source = ColumnDataSource(
            {
                **line,
                "label": [label] * len(line["bytes"]),
                "size": [format_bytes(size) for size in line["bytes"]],
                "time": [f"{seconds * 1e6:.4g} us" for seconds in line["time_s"]],
                "ranks": [str(ranks) for ranks in line["ranks"]],
            }
        )
        drawn = plot.line(
            "bytes", "busbw", source=source, color=color, line_width=2, line_dash=_DASH.get(scope, "solid")
        )
        points.append(plot.scatter("bytes", "busbw", source=source, size=7, color=color, name=BANDWIDTH_NAME))
        items.append(LegendItem(label=label, renderers=[drawn, points[-1]]))
    tips = [("", "@label"), ("size", "@size"), ("ranks", "@ranks"), ("time", "@time"), ("busbw GB/s", "@busbw")]
    plot.add_tools(HoverTool(renderers=points, tooltips=tips))
    plot.add_layout(Legend(items=items, click_policy="hide"), "right")  # beside the lines, never over them
    return plot


def _ranks_chart(result: FleetBenchResult) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool

    bars = rank_bars(result)
    width = 0.8 / max(1, len(bars))
    plot = page_figure(
        PAN_AND_ZOOM,
        height=320,
        x_axis_label="rank",
        y_axis_label="matmul TFLOPS (median of the best shape)",
    )
    drawn = []
    for index, (precision, bar) in enumerate(bars.items()):
        offset = (index - (len(bars) - 1) / 2) * width
        source = ColumnDataSource(
            {**bar, "x": [rank + offset for rank in bar["rank"]], "precision": [precision] * len(bar["rank"])}
        )
        drawn.append(
            plot.vbar(
                x="x",
                top="tflops",
                width=width * 0.9,
                source=source,
                color=_SERIES[index % len(_SERIES)],
                legend_label=precision,
                name=RANKS_NAME,
            )
        )
    plot.add_tools(HoverTool(renderers=drawn, tooltips=[("rank", "@rank on @host"), ("@precision TFLOPS", "@tflops")]))
    if len(result.per_rank) <= 64:  # a tick per rank while they fit
        plot.xaxis.ticker = sorted(report.rank for report in result.per_rank)
    plot.legend.location = "bottom_right"
    return plot


def render_fleet_html(result: FleetBenchResult, command_line: str, data: Mapping[str, Any]) -> str:
    """A --distributed run as one page; `data` is the object `bench --distributed --format json` prints."""
    require_bokeh()
    sections = [
        Section(
            "Bus bandwidth against message size",
            _bandwidth_chart(result),
            "One line per collective and scope (solid: every rank; dashed: within a node; dotted: between nodes); "
            "busbw as nccl-tests count it, the slowest rank's time.",
        ),
        Section(
            "Matmul TFLOPS per rank",
            _ranks_chart(result),
            "Each rank's median over its best shape; the slowest rank holds the fleet back.",
        ),
        Section("Collectives", rows=fleet_rows(result), header=FLEET_COLUMNS),
    ]
    return render_page(
        f"flopcalc bench: {fleet_title(result)}", sections, data, command_line, notes=fleet_footer(result)
    )
