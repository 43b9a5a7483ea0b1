"""The typer app, the global `--debug` flag, and the one error boundary.

Library errors (FlopcalcError) become one line on stderr and exit 2; `--debug` shows the traceback.
Commands live in sibling modules and only parse, call the library, and render.
"""

from __future__ import annotations

import enum
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from ..errors import FlopcalcError
from ..render.output import write_atomic

_state = {"debug": False}


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


def _report_and_exit(message: str, code: int) -> None:
    typer.echo(f"flopcalc: error: {message}", err=True)
    raise typer.Exit(code)


def _is_cli_control_flow(error: BaseException) -> bool:
    """typer's (or click's) own exits, aborts and usage errors: they already know how to end the program."""
    module = type(error).__module__ or ""
    return isinstance(error, (typer.Exit, typer.Abort, SystemExit)) or module.startswith(("typer", "click"))


class _ErrorBoundaryGroup(TyperGroup):
    """Turns errors raised by any subcommand into one line and an exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FlopcalcError as error:
            if _state["debug"]:
                traceback.print_exc()
            _report_and_exit(str(error), error.exit_code)
        except KeyboardInterrupt:
            _report_and_exit("interrupted", 130)
        except Exception as error:  # a bug in flopcalc, not bad input: still one line unless --debug
            if _is_cli_control_flow(error):
                raise
            if _state["debug"]:
                traceback.print_exc()
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            _report_and_exit(
                f"internal error: {type(error).__name__}: {first} (rerun with --debug for the traceback)", 2
            )


app = typer.Typer(
    cls=_ErrorBoundaryGroup,
    name="flopcalc",
    help="Count a model's FLOPs (1 multiply-add = 2 FLOPs) and turn training compute into PF-days, GPU-days, time and cost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback when something fails."),
) -> None:
    _state["debug"] = debug


def emit(text: str, output: Optional[Path] = None) -> None:
    """Print rendered text, or write it atomically to `output`."""
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        write_atomic(output, text if text.endswith("\n") else text + "\n")
