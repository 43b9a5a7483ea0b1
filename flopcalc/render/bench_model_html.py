"""`bench MODEL --format html`: every timed training step against the predicted step time, and the prediction's
phases against the measured median, drawn from the ModelBenchResult the table comes from.

The data block is the `bench MODEL --format json` object; the per-step samples (which the JSON sums up as a
median, a best and a spread) are in the chart's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..device.measured import STEP_PHASES
from . import colors
from .bench import MODEL_COLUMNS, model_rows
from .html import PAN_AND_ZOOM, Section, page_figure, render_page, require_bokeh, step_segments

if TYPE_CHECKING:
    from ..bench.model import ModelBenchResult

STEPS_NAME = "steps"  # the glyph renderers' names: the browser test reads their data through them
MEDIAN_NAME = "median"
PREDICTED_NAME = "predicted"
PHASES_NAME = "phases"
_MEASURED_COLOR = colors.RED


def time_scale(seconds: float) -> tuple[float, str]:
    """The unit that puts a step time between 1 and 1000 on an axis: (multiplier, "ms")."""
    for factor, unit in ((1.0, "s"), (1e3, "ms"), (1e6, "us")):
        if seconds * factor >= 1:
            return factor, unit
    return 1e9, "ns"


def step_points(result: ModelBenchResult) -> dict[str, list[Any]]:
    """One point per timed step (warm-up steps left out, as in the median): its number and its seconds."""
    return {"step": list(range(1, len(result.step_seconds) + 1)), "seconds": list(result.step_seconds)}


def phase_bars(result: ModelBenchResult) -> dict[str, list[Any]]:
    """The predicted step split by phase (forward, backward, optimizer) as adjacent segments; empty without a
    prediction. They add up to `predicted_step_seconds`."""
    if result.prediction is None:
        return {key: [] for key in ("phase", "left", "right", "color", "seconds")}
    phases = [(phase, result.prediction.phase_seconds(phase)) for phase in STEP_PHASES]
    return {"phase": list(STEP_PHASES), **step_segments(phases), "seconds": [seconds for _, seconds in phases]}


def _steps_chart(result: ModelBenchResult, factor: float, unit: str) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool, Legend, LegendItem

    points = step_points(result)
    source = ColumnDataSource({**points, "scaled": [s * factor for s in points["seconds"]]})
    plot = page_figure(
        PAN_AND_ZOOM,
        height=320,
        x_axis_label="timed step",
        y_axis_type="log",  # one disturbed step (a context switch) would flatten the rest against the axis
        y_axis_label=f"step time ({unit})",
    )
    steps = plot.scatter("step", "scaled", source=source, size=7, color=colors.BLUE, name=STEPS_NAME)
    items = [LegendItem(label="each step", renderers=[steps])]
    lines = [(result.median_step_seconds, _MEASURED_COLOR, "measured median", MEDIAN_NAME)]
    if result.predicted_step_seconds is not None:
        lines.append((result.predicted_step_seconds, "#333333", "predicted", PREDICTED_NAME))
    for seconds, color, label, name in lines:
        drawn = plot.line(
            [0.5, len(points["step"]) + 0.5],
            [seconds * factor] * 2,
            color=color,
            line_dash="dashed",
            line_width=2,
            name=name,
        )
        items.append(LegendItem(label=f"{label} {seconds * factor:.4g} {unit}", renderers=[drawn]))
    plot.add_tools(HoverTool(renderers=[steps], tooltips=[("step", "@step"), (unit, "@scaled{0.000}")]))
    plot.add_layout(Legend(items=items), "right")  # beside the points, never over them
    return plot


def _phases_chart(result: ModelBenchResult, factor: float, unit: str) -> Any:
    from bokeh.core.properties import field
    from bokeh.models import ColumnDataSource, HoverTool, Legend, LegendItem

    bars = phase_bars(result)
    rows = ["predicted", "measured (median)"]
    plot = page_figure(
        y_range=list(reversed(rows)),
        height=210,
        x_axis_label=f"step time ({unit})",
    )
    phases = ColumnDataSource(
        {
            **bars,
            "row": ["predicted"] * len(bars["phase"]),
            "left_scaled": [v * factor for v in bars["left"]],
            "right_scaled": [v * factor for v in bars["right"]],
            "text": [f"{v * factor:.4g} {unit}" for v in bars["seconds"]],
        }
    )
    drawn = plot.hbar(
        y="row", left="left_scaled", right="right_scaled", height=0.6, color="color", source=phases, name=PHASES_NAME
    )
    plot.add_layout(
        Legend(items=[LegendItem(label=field("phase"), renderers=[drawn])], orientation="horizontal"), "below"
    )  # under the bars: a long prediction would run under a legend inside the plot
    measured = result.median_step_seconds * factor
    plot.hbar(y=["measured (median)"], left=0, right=[measured], height=0.6, color=_MEASURED_COLOR)
    plot.add_tools(HoverTool(renderers=[drawn], tooltips=[("phase", "@phase"), ("predicted", "@text")]))
    return plot


def render_model_bench_html(result: ModelBenchResult, command_line: str, data: Mapping[str, Any]) -> str:
    """A model's training-step run as one page; `data` is the object `bench MODEL --format json` prints."""
    require_bokeh()
    factor, unit = time_scale(result.median_step_seconds)
    error = result.prediction_error
    said = "no prediction" if error is None else f"measured {error:+.1%} against the prediction"
    sections = [
        Section(
            "Each timed step against the prediction",
            _steps_chart(result, factor, unit),
            f"{len(result.step_seconds)} timed steps after {result.warmup_steps} warm-up steps; {said}.",
        )
    ]
    if result.prediction is not None:
        sections.append(
            Section(
                "The predicted step by phase against the measured median",
                _phases_chart(result, factor, unit),
                f"Predicted from {result.prediction_source or 'the device profile'}.",
            )
        )
    sections.append(Section("The run", rows=model_rows(result), header=MODEL_COLUMNS))
    notes = [*result.notes, *(f"warning: {warning}" for warning in result.warnings)]
    title = f"flopcalc bench: {result.model} on {result.info.device_name}"
    return render_page(title, sections, data, command_line, notes=notes)
