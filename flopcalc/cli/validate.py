"""`flopcalc validate`: replay published measured runs through the step-time model and print the errors.
Parses, calls flopcalc.validate, renders; --max-error turns the table into a CI check."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from ..errors import ExitCode, UsageError
from ._app import app, emit
from ._options import OutputOption, ReportFormat, ReportFormatOption, command_line


@app.command("validate")
def validate_command(
    runs: Optional[Path] = typer.Option(
        None,
        "--runs",
        metavar="FILE",
        help="A validation table to replay instead of the shipped one (format: docs/validation.md).",
    ),
    profiles: Optional[Path] = typer.Option(
        None,
        "--profiles",
        metavar="FILE",
        help="A device profile file instead of the shipped one (format: docs/validation.md).",
    ),
    no_fit: bool = typer.Option(
        False, "--no-fit", help="Fit nothing: the device profiles as they are, every row a prediction."
    ),
    max_error: Optional[float] = typer.Option(
        None,
        "--max-error",
        metavar="PCT",
        help="Exit 1 when any row's |error| is above this many percent (a CI check).",
    ),
    fmt: ReportFormatOption = ReportFormat.table,
    output: OutputOption = None,
) -> None:
    """Predicted against measured, per published run: time per step and memory per GPU, the error of each row,
    the mean and the max |error|, the rows kept out of the fitting reported apart."""
    from ..render.validate import render
    from ..validate import validate

    if max_error is not None and (not math.isfinite(max_error) or max_error <= 0):
        raise UsageError(f"--max-error must be a percentage > 0, got {max_error!r}", "e.g. --max-error 10")
    report = validate(runs, profiles, fit=not no_fit)
    if fmt is ReportFormat.html:
        from ..render.validate_html import render_html

        text = render_html(report, command_line(), report.to_dict())
    else:
        text = render(report, fmt.value)
    emit(text, output)
    if max_error is not None and report.max_abs_error * 100 > max_error:
        worst = max(report.results, key=lambda result: abs(result.error))
        typer.echo(
            f"flopcalc: validate: {worst.row.id} is off by {abs(worst.error) * 100:.2f}%, above --max-error "
            f"{max_error:g}%",
            err=True,
        )
        raise typer.Exit(ExitCode.CHECK_FAILED)
