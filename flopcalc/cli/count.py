"""`flopcalc count MODEL`: parse options into a ModelSpec, count it, render."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import typer

from ..errors import UsageError
from ..spec import DEFAULT_MAX_LAYERS
from ._app import app, emit
from ._options import (
    ModelArgument,
    ModelOptions,
    OutputOption,
    ReportFormat,
    ReportFormatOption,
    command_line,
    notes_to_stderr,
    progress,
    shown_on_terminal,
    table_on_terminal,
    with_options,
)


def parse_depth(text: str) -> int:
    if text.strip().lower() in ("all", "-1"):
        return -1
    try:
        depth = int(text)
    except ValueError:
        raise UsageError(f"--depth {text!r} is not a number", "use a number, or 'all'") from None
    if depth < 0:
        raise UsageError(f"--depth {depth} is negative", "use 0 for the model alone, or 'all'")
    return depth


@app.command("count")
@with_options(ModelOptions, after="model")
def count_command(
    ctx: typer.Context,
    model: ModelArgument,
    no_backward: bool = typer.Option(False, "--no-backward", help="Count the forward pass only (inference)."),
    strict: bool = typer.Option(False, "--strict", help="Fail (exit 2) when an op has no FLOP formula."),
    unit: str = typer.Option("flop", "--unit", metavar="flop|mac", help="flop (1 multiply-add = 2 FLOPs) or mac."),
    depth: str = typer.Option(
        "2", "--depth", "-d", metavar="N|all", help="Module tree depth shown in tables; 'all' or -1 for all."
    ),
    compare: Optional[str] = typer.Option(
        None,
        "--compare",
        metavar="fvcore,torch",
        help="Also run other counters on the same model and "
        "inputs and name why they differ: fvcore, torch, or fvcore,torch.",
    ),
    max_layers: int = typer.Option(
        DEFAULT_MAX_LAYERS,
        "--max-layers",
        metavar="N",
        help="Refuse, before building, a Hugging Face "
        "config declaring more layers (each is built and run: about 0.05 s per layer).",
    ),
    fmt: ReportFormatOption = ReportFormat.table,
    output: OutputOption = None,
) -> None:
    """Count forward and backward FLOPs per layer, parameters, and FLOPs by category."""
    from ..api import count_spec
    from ..conventions import conventions_for
    from ..render.count import render

    if unit not in ("flop", "mac"):
        raise UsageError(f"--unit {unit!r} is not flop or mac")
    if compare is not None and fmt is ReportFormat.csv:
        raise UsageError(
            "--compare shows in the table, markdown and json formats, not in csv (module rows only)",
            "use --format json for the comparison's figures",
        )
    shown_depth = parse_depth(depth)
    spec = ModelOptions.of(ctx).spec(backward=not no_backward)
    spec = replace(spec, max_layers=max_layers)
    comparison = None
    if compare is not None:
        from ..compare import compare_spec, parse_counters

        with progress(f"counting {model} and comparing with {compare}"):
            comparison = compare_spec(spec, parse_counters(compare), strict=strict).in_unit(unit)
        counted = comparison.report
    else:
        with progress(f"counting {model}"):
            counted = count_spec(spec, strict=strict)
    conventions = conventions_for(counted)
    report = counted.in_unit(unit)
    color = table_on_terminal(fmt, output)
    blocks = {"conventions": conventions.to_dict()} if conventions is not None else {}
    if fmt is ReportFormat.html:
        from ..render.count import report_data
        from ..render.count_html import render_html

        text = render_html(report, command_line(), report_data(report, blocks, comparison))
    else:
        text = render(report, fmt.value, shown_depth, color, blocks=blocks, comparison=comparison)
    emit(text, output)
    notes_to_stderr(report.notes, shown=shown_on_terminal(fmt, output))
