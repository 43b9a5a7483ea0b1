"""Rendering a CountReport: table (rich), json, csv, markdown. Pure functions of the report."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..counting.report import CATEGORIES, CountReport, LayerCount, unsupported_ops_note
from ..files import to_json
from ..units import format_si
from .charts import bar
from .tabular import csv_text, markdown_text

if TYPE_CHECKING:
    from ..compare import Comparison

CONVENTION = {
    "flop": "FLOPs: 1 multiply-add = 2 FLOPs",
    "mac": "MACs: multiply-adds (matmul, conv, attention) counted once; other ops as in FLOPs",
}


CATEGORY_BAR_WIDTH = 40  # characters for the whole of the FLOPs


def _unit_label(report: CountReport) -> str:
    return "FLOP" if report.unit == "flop" else "MAC"


def inputs_text(report: CountReport) -> str:
    """`input_ids=1x512 int64, decoder_input_ids=1x128 int64`: what the model was called with, names included."""
    return ", ".join(map(str, report.inputs)) or "none"


def params_text(report: CountReport) -> str:
    """`params 46.7 G (46,702,792,704)`, plus the active ones of a mixture of experts."""
    text = f"params {format_si(report.params)} ({report.params:,})"
    if report.active != report.params:
        text += f", active {format_si(report.active)} ({report.active:,})"
    return text


def visible_layers(report: CountReport, depth: int) -> list[LayerCount]:
    """Layers down to `depth` (negative: all), in tree order."""
    return [layer for layer in report.layers if depth < 0 or layer.depth <= depth]


def share_text(value: int, total: int) -> str:
    return f"{100.0 * value / total:.1f}%" if total else "-"


def report_data(
    report: CountReport, blocks: Mapping[str, Any] | None = None, comparison: Comparison | None = None
) -> dict[str, Any]:
    """The object `--format json` prints: the report's keys, then the optional blocks (`conventions`, `compare`)."""
    return {**report.to_dict(), **(blocks or {}), **({"compare": comparison.to_dict()} if comparison else {})}


def render_json(report: CountReport, blocks: Mapping[str, Any] | None = None) -> str:
    """The report's JSON, with the optional blocks (`conventions`, `compare`) after its own keys."""
    return to_json(report_data(report, blocks))


def comparison_lines(comparison: Comparison) -> list[str]:
    """Each counter's forward, backward and total next to flopcalc's, per top-level module, and the reasons."""
    unit = "FLOP" if comparison.unit == "flop" else "MAC"
    cell = lambda value: "-" if value is None else format_si(value)  # noqa: E731
    lines = [
        f"second opinion, in {unit} ({CONVENTION[comparison.unit]}):",
        f"  {'counter':10s} {'forward':>10s} {'backward':>10s} {'total':>10s}",
    ]
    for row in comparison.rows():
        lines.append(
            f"  {row['counter']:10s} {cell(row['forward']):>10s} {cell(row['backward']):>10s} {cell(row['total']):>10s}"
        )
    data = comparison.to_dict()
    names = list(data["flopcalc"]["modules"])
    with_modules = [c for c in data["counters"] if c["modules"]]
    if names and with_modules:
        lines.append(
            "  forward per top-level module: "
            + ", ".join(
                f"{name or '(root)'} flopcalc {format_si(data['flopcalc']['modules'][name])}"
                + "".join(f" {c['name']} {cell(c['modules'].get(name))}" for c in with_modules)
                for name in names
            )
        )
    for counter in data["counters"]:
        if counter["error"]:
            lines.append(f"  {counter['name']} could not run: {counter['error']}")
        if counter["note"]:
            lines.append(f"  {counter['name']} {counter['note']}")
    if not comparison.differences and all(not c["error"] for c in data["counters"]):
        lines.append("  no known difference seen on this model")
    for difference in comparison.differences:
        lines.append(f"  {difference.counter} ({difference.reason}): {difference.explanation}")
    return lines


def _layer_cells(layer: LayerCount, total: int) -> list[str]:
    """Type, params, forward, backward and share of one layer: the same cells in the table and in Markdown;
    with sparsity counted, the effective forward and backward after them."""
    cells = [
        layer.type,
        format_si(layer.params),
        format_si(layer.forward),
        format_si(layer.backward),
        share_text(layer.total, total),
    ]
    if layer.skipped_forward_by_category is not None:
        cells += [format_si(layer.effective_forward), format_si(layer.effective_backward)]
    return cells


def sparsity_lines(report: CountReport) -> list[str]:
    """Each weight's zeros and N:M pattern, and the effective totals: what `--sparsity` adds to a table."""
    if report.sparsity is None:
        return []
    unit = _unit_label(report)
    lines = [
        "sparsity: zeros read from the weights; effective FLOPs leave out the products with a zero weight",
        f"  effective forward {report.effective_forward:,} {unit}, backward {report.effective_backward:,} {unit}, "
        f"total {report.effective_total:,} {unit} ({share_text(report.effective_total, report.total)} of dense)",
    ]
    for weight in report.sparsity:
        shape = "x".join(map(str, weight.shape))
        pattern = f", {weight.pattern} along the reduction dimension" if weight.pattern else ""
        layout = "" if weight.layout == "strided" else f", stored {weight.layout}"
        lines.append(f"  {weight.name} {shape}: {100 * weight.zero_fraction:.1f}% zeros{pattern}{layout}")
    if not report.sparsity:
        lines.append("  no weight was multiplied by a matmul or convolution")
    return lines


def _category_rows(report: CountReport) -> list[list[str]]:
    """Category, forward, backward and share for each category with any FLOPs."""
    rows = []
    for category in CATEGORIES:
        fwd, bwd = report.forward_by_category[category], report.backward_by_category[category]
        if fwd or bwd:
            rows.append([category, format_si(fwd), format_si(bwd), share_text(fwd + bwd, report.total)])
    return rows


def category_bar_lines(report: CountReport, width: int = CATEGORY_BAR_WIDTH) -> list[str]:
    """Each category's forward + backward as a bar of its share of the total, in rich markup: a terminal's chart."""
    shares = [(c, report.forward_by_category[c] + report.backward_by_category[c]) for c in CATEGORIES]
    shares = [(category, flops) for category, flops in shares if flops]
    if not shares or not report.total:
        return []
    label = max(len(category) for category, _ in shares)
    return [f"{_unit_label(report)}s by category (share of the total):"] + [
        f"  {category:<{label}}  [cyan]{bar(flops, report.total, width, terminal=True):<{width}}[/cyan]  "
        f"{share_text(flops, report.total):>6}"
        for category, flops in shares
    ]


def render_csv(report: CountReport) -> str:
    """One row per module (the whole tree), with the per-category split."""
    headers = (
        ["name", "type", "depth", "params", "forward", "backward"]
        + [f"forward_{c}" for c in CATEGORIES]
        + [f"backward_{c}" for c in CATEGORIES]
        + (["effective_forward", "effective_backward"] if report.sparsity is not None else [])
    )
    rows = [
        [layer.name or "(root)", layer.type, layer.depth, layer.params, layer.forward, layer.backward]
        + [layer.forward_by_category[c] for c in CATEGORIES]
        + [layer.backward_by_category[c] for c in CATEGORIES]
        + ([layer.effective_forward, layer.effective_backward] if report.sparsity is not None else [])
        for layer in report.layers
    ]
    return csv_text(headers, rows)


def render_markdown(report: CountReport, depth: int = 2) -> str:
    unit = _unit_label(report)
    effective = [f"Effective forward ({unit})", f"Effective backward ({unit})"] if report.sparsity is not None else []
    layers = markdown_text(
        ["Module", "Type", "Params", f"Forward ({unit})", f"Backward ({unit})", "Share", *effective],
        [
            ["&nbsp;&nbsp;" * layer.depth + (layer.name or "(model)")] + _layer_cells(layer, report.total)
            for layer in visible_layers(report, depth)
        ],
        right=(2, 3, 4, 5, 6, 7)[: 4 + len(effective)],
        title=[
            f"**{report.model}** — inputs {inputs_text(report)}, device {report.device}. {CONVENTION[report.unit]}."
        ],
    )
    active = "" if report.active == report.params else f", active {format_si(report.active)}"
    total_row = [
        "**total**",
        f"**{format_si(report.forward)}**",
        f"**{format_si(report.backward)}**",
        f"params {format_si(report.params)}{active}",
    ]
    categories = markdown_text(
        ["Category", f"Forward ({unit})", f"Backward ({unit})", "Share"],
        _category_rows(report) + [total_row],
        right=(1, 2, 3),
        footer=[f"- {line}" for line in _footer(report)],
    )
    return layers + "\n" + categories


def _footer(report: CountReport) -> list[str]:
    lines = []
    if not report.backward_counted:
        lines.append("backward not counted" + (" (--no-backward)" if not report.options.get("backward", True) else ""))
    unsupported = unsupported_ops_note(report.unsupported_ops)
    if unsupported:
        lines.append(unsupported)
    lines.extend(sparsity_lines(report))
    lines.extend(report.notes)
    return lines


def render_table(report: CountReport, depth: int = 2, color: bool = False, width: int = 110) -> str:
    """The layers and categories as tables; `color` (stdout is a terminal) adds colours and the category bars."""
    from rich.console import Console
    from rich.table import Table

    unit = _unit_label(report)
    total = report.total
    console = Console(file=io.StringIO(), width=width, force_terminal=color, color_system="standard" if color else None)
    console.print(
        f"[bold]{report.model}[/bold]  inputs {inputs_text(report)}  device {report.device}\n{CONVENTION[report.unit]}",
        highlight=False,
    )
    layers = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    layers.add_column("Module", no_wrap=True, overflow="ellipsis", max_width=48)
    layers.add_column("Type", overflow="ellipsis", max_width=22)
    layers.add_column("Params", justify="right")
    layers.add_column(f"Forward {unit}", justify="right")
    layers.add_column(f"Backward {unit}", justify="right")
    layers.add_column("Share", justify="right")
    if report.sparsity is not None:
        layers.add_column(f"Eff. fwd {unit}", justify="right")
        layers.add_column(f"Eff. bwd {unit}", justify="right")
    for layer in visible_layers(report, depth):
        short = layer.name.rsplit("/", 1)[-1].rsplit(".", 1)[-1]  # modules nest by ".", ONNX scopes by "/"
        layers.add_row("  " * layer.depth + (short if layer.name else "(model)"), *_layer_cells(layer, total))
    console.print(layers)
    console.print()
    categories = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    categories.add_column("Category")
    categories.add_column(f"Forward {unit}", justify="right")
    categories.add_column(f"Backward {unit}", justify="right")
    categories.add_column("Share", justify="right")
    for row in _category_rows(report):
        categories.add_row(*row)
    categories.add_row(
        "[bold]total[/bold]",
        f"[bold]{format_si(report.forward)}[/bold]",
        f"[bold]{format_si(report.backward)}[/bold]",
        "100%" if total else "-",
    )
    console.print(categories)
    if color:
        console.print()
        for line in category_bar_lines(report):
            console.print(line, highlight=False)
    console.print(
        f"\n{params_text(report)}, {format_si(report.param_bytes, 'B')}"
        f"   forward {report.forward:,} {unit}   backward {report.backward:,} {unit}",
        highlight=False,
    )
    for line in _footer(report):
        console.print(line, style="yellow" if line.startswith("unsupported") else None, highlight=False, markup=False)
    return console.file.getvalue()


def render(
    report: CountReport,
    fmt: str,
    depth: int = 2,
    color: bool = False,
    blocks: Mapping[str, Any] | None = None,
    comparison: Comparison | None = None,
) -> str:
    """The report in `fmt`; JSON gets the optional `blocks`; table and Markdown end with the comparison."""
    if fmt == "json":
        return to_json(report_data(report, blocks, comparison))
    if fmt == "csv":
        return render_csv(report)
    text = render_markdown(report, depth) if fmt == "markdown" else render_table(report, depth, color)
    if comparison is not None:
        lines = comparison_lines(comparison)
        text += "\n" + ("\n".join(f"    {line}" for line in lines) if fmt == "markdown" else "\n".join(lines)) + "\n"
    return text
