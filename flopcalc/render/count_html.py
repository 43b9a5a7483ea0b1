"""`count --format html`: where a model's FLOPs go, drawn from the same CountReport the table comes from.

Two charts: the module tree as an icicle (one row per depth, each module a box as wide as its FLOPs, inside its
parent; forward + backward and forward alone in two tabs; hovering gives type, params, FLOPs and share) and the
FLOPs by category as stacked bars. Unsupported ops, when any, are listed as a table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..counting.report import CATEGORIES, CountReport, LayerCount, unsupported_ops_note
from ..units import format_si
from . import colors
from .count import CONVENTION, inputs_text, params_text, share_text
from .html import PAN_AND_ZOOM_X, Section, page_figure, render_page, require_bokeh

ICICLE_NAME = "icicle"  # the glyph renderers' names: the browser test reads their data through them
CATEGORY_NAME = "categories"
ROW_HEIGHT = 1.0


def axis_scale(largest: float, unit: str) -> tuple[float, str]:
    """The SI prefix that puts the largest figure between 1 and 1000 on an axis: (divisor, "GFLOP")."""
    for exponent, prefix in ((24, "Y"), (21, "Z"), (18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if largest >= 10**exponent:
            return float(10**exponent), prefix + unit
    return 1.0, unit


def icicle_boxes(report: CountReport, value: str = "total") -> dict[str, list[Any]]:
    """One box per module: x from its parent's left edge plus its earlier siblings' widths, width its FLOPs.

    `value` is "total" (forward + backward) or "forward". A module's own ops (outside its children) leave a gap
    at its right end. The root spans [0, root FLOPs]; depth d sits at y = -d.
    """
    boxes: dict[str, list[Any]] = {
        k: [] for k in ("left", "right", "top", "bottom", "name", "type", "params", "flops", "share", "color", "label")
    }
    total = getattr(report.layers[0], value) if report.layers else 0
    stack: list[tuple[LayerCount, float]] = []  # (ancestor, where its next child starts)
    for index, layer in enumerate(report.layers):
        while stack and stack[-1][0].depth >= layer.depth:
            stack.pop()
        left = stack[-1][1] if stack else 0.0
        width = float(getattr(layer, value))
        if stack:
            parent, start = stack[-1]
            stack[-1] = (parent, start + width)
        stack.append((layer, left))
        boxes["left"].append(left)
        boxes["right"].append(left + width)
        boxes["top"].append(-layer.depth * ROW_HEIGHT)
        boxes["bottom"].append(-(layer.depth + 1) * ROW_HEIGHT + 0.04)
        boxes["name"].append(layer.name or "(model)")
        boxes["type"].append(layer.type)
        boxes["params"].append(format_si(layer.params))
        boxes["flops"].append(format_si(width))
        boxes["share"].append(share_text(int(width), total))
        boxes["color"].append(colors.PALETTE[index % len(colors.PALETTE)] if layer.depth else colors.GREY)
        wide = total and width / total >= 0.08
        boxes["label"].append((layer.name.rsplit(".", 1)[-1] or "(model)") if wide else "")
    return boxes


def _icicle(report: CountReport, value: str, unit: str) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool, Range1d

    boxes = icicle_boxes(report, value)
    scale, axis_unit = axis_scale(max(boxes["right"], default=0.0), unit)
    boxes["x0"] = [left / scale for left in boxes["left"]]
    boxes["x1"] = [right / scale for right in boxes["right"]]
    boxes["text_y"] = [(top + bottom) / 2 for top, bottom in zip(boxes["top"], boxes["bottom"])]
    depth = max((layer.depth for layer in report.layers), default=0)
    right = max(boxes["x1"], default=0.0) or 1.0
    plot = page_figure(
        PAN_AND_ZOOM_X,
        height=max(160, 44 * (depth + 1) + 60),
        x_axis_label=axis_unit,
        y_range=(-(depth + 1) * ROW_HEIGHT, 0.05),
        x_range=Range1d(0, right * 1.01, bounds=(0, right * 1.01)),
    )
    plot.yaxis.visible = False
    plot.ygrid.visible = False
    source = ColumnDataSource(boxes)
    plot.quad(
        left="x0",
        right="x1",
        top="top",
        bottom="bottom",
        fill_color="color",
        line_color="white",
        source=source,
        name=ICICLE_NAME,
    )
    plot.text(
        x="x0",
        y="text_y",
        text="label",
        source=source,
        x_offset=4,
        text_baseline="middle",
        text_font_size="11px",
        text_color="white",
    )
    plot.add_tools(
        HoverTool(
            tooltips=[
                ("module", "@name"),
                ("type", "@type"),
                ("params", "@params"),
                (unit, "@flops"),
                ("share", "@share"),
            ]
        )
    )
    return plot


def _icicle_tabs(report: CountReport, unit: str) -> Any:
    from bokeh.models import TabPanel, Tabs

    panels = [TabPanel(child=_icicle(report, "total", unit), title="forward + backward")]
    if report.backward_counted and report.backward:
        panels.append(TabPanel(child=_icicle(report, "forward", unit), title="forward"))
    return Tabs(tabs=panels, sizing_mode="stretch_width") if len(panels) > 1 else panels[0].child


def category_bars(report: CountReport) -> dict[str, list[Any]]:
    """Forward and backward FLOPs of each category with any, in the registry's category order."""
    shown = [c for c in CATEGORIES if report.forward_by_category[c] or report.backward_by_category[c]]
    return {
        "category": shown,
        "forward": [report.forward_by_category[c] for c in shown],
        "backward": [report.backward_by_category[c] for c in shown],
    }


def _categories(report: CountReport, unit: str) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool

    bars = category_bars(report)
    scale, axis_unit = axis_scale(max((f + b for f, b in zip(bars["forward"], bars["backward"])), default=0), unit)
    scaled = {
        "category": bars["category"],
        "forward": [v / scale for v in bars["forward"]],
        "backward": [v / scale for v in bars["backward"]],
        "forward_text": [format_si(v) for v in bars["forward"]],
        "backward_text": [format_si(v) for v in bars["backward"]],
    }
    plot = page_figure(
        y_range=list(reversed(bars["category"])),
        height=80 + 28 * len(bars["category"]),
        x_axis_label=axis_unit,
    )
    plot.hbar_stack(
        ["forward", "backward"],
        y="category",
        height=0.7,
        color=[colors.FORWARD, colors.BACKWARD],
        source=ColumnDataSource(scaled),
        legend_label=["forward", "backward"],
        name=CATEGORY_NAME,
    )
    plot.add_tools(
        HoverTool(
            tooltips=[
                ("category", "@category"),
                ("forward", f"@forward_text {unit}"),
                ("backward", f"@backward_text {unit}"),
            ]
        )
    )
    plot.legend.location = "bottom_right"
    return plot


def render_html(report: CountReport, command_line: str, data: Mapping[str, Any]) -> str:
    """The count as one self-contained page; `data` is the JSON object `--format json` prints."""
    require_bokeh()
    unit = "FLOP" if report.unit == "flop" else "MAC"
    summary = [
        ["model", report.model],
        ["inputs", inputs_text(report)],
        ["device", report.device],
        ["parameters", params_text(report).removeprefix("params ")],
        ["forward", f"{format_si(report.forward)} {unit}"],
        ["backward", f"{format_si(report.backward)} {unit}" if report.backward_counted else "not counted"],
        ["total", f"{format_si(report.total)} {unit} ({report.total:,})"],
        ["convention", CONVENTION[report.unit]],
    ]
    sections = [
        Section(
            "Where the FLOPs go: the module tree",
            _icicle_tabs(report, unit),
            "Each box is a module, as wide as its FLOPs, under its parent; a gap at a module's right end is "
            "its own ops outside its children. Hover for the figures; scroll to zoom.",
        ),
        Section("FLOPs by category", _categories(report, unit)),
    ]
    if report.unsupported_ops:
        sections.append(
            Section(
                "Unsupported ops",
                None,
                unsupported_ops_note(report.unsupported_ops, "the total is a lower bound") or "",
                rows=[[op, str(n)] for op, n in report.unsupported_ops.items()],
                header=["op", "calls"],
            )
        )
    return render_page(
        f"flopcalc count: {report.model}", sections, data, command_line, summary=summary, notes=report.notes
    )
