"""`train --format html`: where the training FLOPs go, what they take on the fleet, and how the counted FLOPs per
token compare with the published conventions, drawn from the same objects the table comes from.

The data block is the `train --format json` object; the table under the charts is the table `train` prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ..units import format_number, format_si
from . import colors
from .compute import training_table
from .count_html import axis_scale
from .html import Section, page_figure, render_page, require_bokeh, step_segments

if TYPE_CHECKING:
    from ..compute import FleetEstimate, TrainingCompute
    from ..conventions import ConventionsTable
    from ..thresholds import Threshold

SPLIT_NAME = "split"  # the glyph renderers' names: the browser test reads their data through them
FLEET_NAME = "fleet"
CHOSEN_NAME = "chosen"
CONVENTIONS_NAME = "conventions"


def flops_split(training: TrainingCompute) -> dict[str, list[Any]]:
    """The training FLOPs as adjacent segments (TrainingCompute.parts): forward and backward over every example
    and epoch, then the teacher's forward passes when there are any; they add up to the training FLOPs."""
    parts = training.parts()
    total = sum(flops for _, flops in parts) or Fraction(1)
    return {
        "part": [part for part, _ in parts],
        **step_segments(parts),
        "flops": [float(flops) for _, flops in parts],
        "share": [float(flops / total) for _, flops in parts],
    }


def fleet_sizes(fleet: FleetEstimate) -> dict[str, list[Any]]:
    """Wall clock at 1, 2, 4, ... GPUs up to four times the fleet given (the work splits evenly, as the estimate
    assumes): GPU-hours, energy and cost are the same at every size."""
    top = max(8, 4 * fleet.num_gpus)
    sizes = sorted({2**i for i in range(top.bit_length()) if 2**i <= top} | {fleet.num_gpus})
    days = [fleet.wall_clock_days_on(size) for size in sizes]
    return {"gpus": sizes, "days": days, "text": [format_number(d) for d in days]}


def convention_bars(conventions: ConventionsTable) -> dict[str, list[Any]]:
    """FLOPs per token as counted, then by each published formula, in the table's order."""
    names = ["counted (flopcalc)", *(c.name for c in conventions.conventions)]
    values = [float(conventions.counted_per_token), *(float(c.flops_per_token) for c in conventions.conventions)]
    return {"name": names, "flops": values, "text": [format_si(v, "FLOP") for v in values]}


def _split_chart(training: TrainingCompute) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool

    split = flops_split(training)
    scale, unit = axis_scale(max(split["right"]) or 1.0, "FLOP")
    source = ColumnDataSource(
        {
            **split,
            "left_scaled": [v / scale for v in split["left"]],
            "right_scaled": [v / scale for v in split["right"]],
            "row": ["training"] * len(split["part"]),
            "flops_text": [format_si(v, "FLOP") for v in split["flops"]],
            "share_text": [f"{v:.1%}" for v in split["share"]],
        }
    )
    plot = page_figure(
        y_range=["training"],
        height=150,
        x_axis_label=unit,
    )
    plot.hbar(
        y="row",
        left="left_scaled",
        right="right_scaled",
        height=0.6,
        color="color",
        source=source,
        legend_field="part",
        name=SPLIT_NAME,
    )
    plot.add_tools(HoverTool(tooltips=[("", "@part"), ("FLOPs", "@flops_text"), ("share", "@share_text")]))
    plot.legend.orientation = "horizontal"
    plot.legend.location = "top_left"
    return plot


def _fleet_chart(fleet: FleetEstimate) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool

    sizes = fleet_sizes(fleet)
    plot = page_figure(
        height=320,
        x_axis_type="log",
        y_axis_type="log",
        x_axis_label="GPUs",
        y_axis_label="wall clock (days)",
    )
    line = plot.line("gpus", "days", source=ColumnDataSource(sizes), line_width=2, name=FLEET_NAME)
    dots = plot.scatter("gpus", "days", source=ColumnDataSource(sizes), size=6, color=colors.BLUE)
    chosen = {"gpus": [fleet.num_gpus], "days": [fleet.wall_clock_days], "text": [format_number(fleet.wall_clock_days)]}
    plot.scatter(
        "gpus",
        "days",
        source=ColumnDataSource(chosen),
        size=13,
        color=colors.RED,
        legend_label="this run",
        name=CHOSEN_NAME,
    )
    plot.add_tools(HoverTool(renderers=[line, dots], tooltips=[("GPUs", "@gpus"), ("days", "@text")]))
    plot.legend.location = "top_right"
    return plot


def _conventions_chart(conventions: ConventionsTable) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool

    bars = convention_bars(conventions)
    scale, unit = axis_scale(max(bars["flops"]) or 1.0, "FLOP")
    source = ColumnDataSource({**bars, "scaled": [v / scale for v in bars["flops"]]})
    plot = page_figure(
        y_range=list(reversed(bars["name"])),
        height=80 + 32 * len(bars["name"]),
        x_axis_label=f"{unit} per token (forward + backward)",
    )
    plot.hbar(y="name", left=0, right="scaled", height=0.6, color=colors.BLUE, source=source, name=CONVENTIONS_NAME)
    plot.add_tools(HoverTool(tooltips=[("", "@name"), ("per token", "@text")]))
    return plot


def render_training_html(
    training: TrainingCompute,
    fleet: FleetEstimate | None,
    command_line: str,
    source: str = "",
    conventions: ConventionsTable | None = None,
    thresholds: Sequence[Threshold] = (),
    adapters: Mapping[str, Any] | None = None,
) -> str:
    """The training estimate as one page; its data block is the object `train --format json` prints."""
    require_bokeh()
    table = training_table(training, fleet, source, conventions, thresholds, adapters)
    sections = [
        Section(
            "Where the training FLOPs go",
            _split_chart(training),
            f"{format_si(training.training_flops, 'FLOP')} = {format_number(training.petaflop_days)} PF-days "
            f"({training.method}).",
        )
    ]
    if fleet is not None:
        sections.append(
            Section(
                "Wall clock against the number of GPUs",
                _fleet_chart(fleet),
                f"{format_number(fleet.gpu_days)} GPU-days at {format_number(fleet.throughput.utilization)} "
                "utilization; the work splits evenly, so GPU-hours, energy and cost stay the same at any count.",
            )
        )
    if conventions is not None:
        sections.append(
            Section(
                "FLOPs per token: counted and by each convention",
                _conventions_chart(conventions),
                "How the published formulas differ from the count is in the notes.",
            )
        )
    sections.append(Section("The estimate", rows=table.rows, header=("quantity", "value", "")))
    title = f"flopcalc train: {table.title[0]}"
    return render_page(title, sections, table.data, command_line, notes=table.footer)
