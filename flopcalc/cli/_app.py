"""The typer app, the global `--debug` flag, and the one error boundary.

Library errors (FlopcalcError) become one line on stderr and exit 2, with the argument they name (`field`)
written as this CLI's flag; any other exception is a flopcalc bug: one line asking for a report, exit 3.
`--debug` shows the traceback.
Commands live in sibling modules and only parse, call the library, and render.
"""

from __future__ import annotations

import math
import re
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from ..errors import ExitCode, FlopcalcError, short_error
from ..files import write_atomic
from ..units import LARGEST_NUMBER, LARGEST_WHOLE

_state = {"debug": False}

# the library's names of the arguments an error may be about (FlopcalcError.field), and the flags that set them
_FLAGS = {
    "batch_size": "--batch-size",
    "seq_len": "--seq-len",
    "decoder_seq_len": "--decoder-seq-len",
    "max_layers": "--max-layers",
    "inputs": "--input",
    "kwargs": "--kwargs",
    "dims": "--dim",
    "device": "--device",
    "frozen": "--frozen",
    "strict": "--strict",
}


def debugging() -> bool:
    """Whether `--debug` was given: tracebacks (and torch's own logs) are wanted."""
    return _state["debug"]


def _report_and_exit(message: str, code: int) -> None:
    typer.echo(f"flopcalc: error: {message}", err=True)
    raise typer.Exit(code)


def _is_cli_control_flow(error: BaseException) -> bool:
    """typer's (or click's) own exits, aborts and usage errors: they already know how to end the program."""
    module = type(error).__module__ or ""
    return isinstance(error, (typer.Exit, typer.Abort, SystemExit)) or module.startswith(("typer", "click"))


def _is_usage_error(error: BaseException) -> bool:
    """A bad option or argument caught by the parser (typer's own UsageError family)."""
    return _is_cli_control_flow(error) and hasattr(error, "format_message") and hasattr(error, "exit_code")


def cli_message(error: FlopcalcError) -> str:
    """The error's line with the argument it names written as the flag that sets it."""
    flag = _FLAGS.get(error.field or "")
    text = str(error)
    return re.sub(rf"(?<![\w-]){re.escape(error.field)}\b", flag, text) if flag and error.field else text


def _out_of_range(value: object) -> Optional[str]:
    """Why a parsed option value is out of range (None when it is in range): whole numbers up to LARGEST_WHOLE,
    so no size overflows the arithmetic or a torch shape; numbers finite and up to LARGEST_NUMBER; no text empty
    (an empty value would read as not given)."""
    for item in value if isinstance(value, (list, tuple)) else (value,):
        if isinstance(item, bool):
            continue
        if isinstance(item, str) and not item.strip():
            return "is empty: give a value or leave the option out"
        if isinstance(item, int) and abs(item) > LARGEST_WHOLE:
            return f"{item} is too large: whole numbers are at most {LARGEST_WHOLE:,}"
        if isinstance(item, float) and not (math.isfinite(item) and abs(item) <= LARGEST_NUMBER):
            return f"{item!r} is not a finite number up to {LARGEST_NUMBER:g}"
    return None


def _bounded(command: typer.core.TyperCommand) -> typer.core.TyperCommand:
    """Every int and float option of a command is checked for range where it is parsed (before its own
    callback): one place for all, so a new option is covered without a word."""
    for param in command.params:
        if getattr(param, "_range_checked", False):
            continue
        own_callback = param.callback

        def checked(ctx, param, value, own_callback=own_callback):
            problem = _out_of_range(value)
            if problem is not None:
                raise typer.BadParameter(problem, ctx=ctx, param=param)
            return value if own_callback is None else own_callback(ctx, param, value)

        param.callback, param._range_checked = checked, True
    return command


def _plain_arguments(command: typer.core.TyperCommand) -> typer.core.TyperCommand:
    """Arguments show their metavar alone in --help (`MODEL`, not typer's `MODEL <str>`), in groups too."""
    for sub in getattr(command, "commands", {}).values():
        _plain_arguments(sub)
    for param in command.params:
        if param.param_type_name == "argument":
            param.metavar = param.metavar or param.name.upper()
            param.display_type_rich = lambda ctx: None  # typer appends the Python type to an argument's name
    return command


class _ErrorBoundaryGroup(TyperGroup):
    """Turns errors raised by any subcommand into one line and an exit code."""

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        return None if command is None else _plain_arguments(_bounded(command))

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """Parser errors (a non-integer --batch-size, an unknown option) also become one line, exit 2."""
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            result = 1  # click's own convention for an aborted prompt
        except Exception as error:
            if not _is_usage_error(error):
                raise
            if type(error).__name__ == "NoArgsIsHelpError":
                error.show()  # `flopcalc` alone: the help text
            else:
                command = getattr(getattr(error, "ctx", None), "command_path", "flopcalc")
                typer.echo(f"flopcalc: error: {error.format_message()} (see '{command} --help')", err=True)
            result = error.exit_code
        if not standalone_mode:
            return result
        sys.exit(int(result) if isinstance(result, int) else ExitCode.OK)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FlopcalcError as error:
            if _state["debug"]:
                traceback.print_exc()
            _report_and_exit(cli_message(error), error.exit_code)
        except KeyboardInterrupt:
            _report_and_exit("interrupted", ExitCode.INTERRUPTED)
        except Exception as error:  # a bug in flopcalc, not bad input: still one line unless --debug
            if _is_cli_control_flow(error):
                raise
            if _state["debug"]:
                traceback.print_exc()
            _report_and_exit(
                f"internal error: {short_error(error)}: a flopcalc bug, please report it with the "
                "traceback that rerunning with --debug shows",
                ExitCode.INTERNAL_ERROR,
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


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"flopcalc {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback when something fails."),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    _state["debug"] = debug


def emit(text: str, output: Optional[Path] = None) -> None:
    """Print rendered text, or write it atomically to `output`."""
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        write_atomic(output, text if text.endswith("\n") else text + "\n")
