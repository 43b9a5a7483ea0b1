"""`flopcalc check`: fail CI when a model grows past its FLOP/parameter budget or its recorded baseline."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Optional

import typer

from ..budget import count_budgets, evaluate, load_baseline, load_budget_file, write_baseline
from ..errors import ExitCode, UsageError
from ..units import parse_fraction
from ._app import app, emit
from ._options import command_line, format_option, notes_to_stderr, progress, table_on_terminal, written_file_option


class CheckFormat(str, enum.Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    junit = "junit"
    html = "html"


SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"

CheckFormatOption = format_option(
    CheckFormat, help="Output format; html is one page with each budget drawn against its limit (needs the html extra)."
)

UpdateBaselineOption = written_file_option(
    "--update-baseline", help="Record the current counts as the new baseline and exit 0."
)
CheckOutputOption = written_file_option("--output", "-o", help="Write the output here (atomically).")
JunitOption = written_file_option(
    "--junit", help="Also write the JUnit XML report here, from the same count as the console output."
)
JsonReportOption = written_file_option(
    "--json", help="Also write the JSON report here, from the same count as the console output."
)


@app.command(
    "check",
    help=(
        "Check models against the FLOP and parameter budgets in flopcalc.yaml (or --budget FILE). "
        "Exit 0: all checks passed; 1: a check failed; 2: bad input or a model that could not be counted."
    ),
)
def check_command(
    budget: Optional[Path] = typer.Option(
        None, "--budget", metavar="FILE", help="Budget file (default: flopcalc.yaml in the current folder)."
    ),
    baseline: Optional[Path] = typer.Option(
        None, "--baseline", metavar="FILE", help="Fail when FLOPs or params grew past --tolerance over this baseline."
    ),
    tolerance: str = typer.Option(
        "0",
        "--tolerance",
        metavar="FRACTION",
        help="Allowed growth over the baseline: a fraction (0.05) or a percentage (5%).",
    ),
    update_baseline: UpdateBaselineOption = None,
    output_format: CheckFormatOption = CheckFormat.table,
    output: CheckOutputOption = None,
    junit: JunitOption = None,
    json_report: JsonReportOption = None,
    summary: bool = typer.Option(
        False, "--summary", help=f"Also append the Markdown report to ${SUMMARY_VARIABLE} when it is set."
    ),
) -> None:
    from ..render.budget import render_json, render_junit, render_markdown, render_table
    from ..render.budget_html import render_check_html

    if baseline is not None and update_baseline is not None:
        raise UsageError("--baseline and --update-baseline cannot be used together", "compare first, then update")
    if update_baseline is not None and (junit is not None or json_report is not None):
        raise UsageError(
            "--update-baseline checks nothing, so it writes no --junit or --json report",
            "record the baseline in one run and check against it in another",
        )
    allowed_growth = parse_fraction(tolerance, what="--tolerance")
    budget_file = load_budget_file(budget)
    recorded = load_baseline(baseline) if baseline is not None else None
    with progress(f"counting the models of {budget_file.path}"):
        reports = count_budgets(budget_file)

    if update_baseline is not None:
        write_baseline(update_baseline, budget_file, reports)
        entries = len(budget_file.budgets)
        emit(f"wrote the baseline of {entries} budget {'entry' if entries == 1 else 'entries'} to {update_baseline}")
        return

    result = evaluate(budget_file, reports, recorded, allowed_growth)
    summary_path = os.environ.get(SUMMARY_VARIABLE)
    if summary and summary_path:  # first: a summary that cannot be written is exit 2 with no report printed
        try:
            with open(summary_path, "a", encoding="utf-8") as handle:  # the step summary is append-only by design
                handle.write(render_markdown(result))
        except OSError as error:
            raise UsageError(
                f"--summary: cannot append to ${SUMMARY_VARIABLE} ({summary_path}): {error.strerror or error}",
                f"point ${SUMMARY_VARIABLE} at a writable file",
            ) from None
    # the extra reports first: one that cannot be written is exit 2 before anything is printed
    for extra_path, render_extra in ((junit, render_junit), (json_report, render_json)):
        if extra_path is not None:
            emit(render_extra(result), extra_path)
    if output_format is CheckFormat.table:
        emit(render_table(result, color=table_on_terminal(output_format, output)), output)
    else:
        renderers = {
            CheckFormat.json: render_json,
            CheckFormat.markdown: render_markdown,
            CheckFormat.junit: render_junit,
            CheckFormat.html: lambda result: render_check_html(result, command_line(), result.to_dict()),
        }
        emit(renderers[output_format](result), output)
    # the table shows them; other formats must not lose them
    notes_to_stderr(result.notes, shown=output_format is CheckFormat.table)
    if not result.passed:
        raise typer.Exit(ExitCode.CHECK_FAILED)
