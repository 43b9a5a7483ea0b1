"""The output options every command shares: the format, the file (checked before any work), the progress
line and the one way notes reach stderr."""

from __future__ import annotations

import contextlib
import enum
import shlex
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ...errors import UsageError
from ...files import check_writable

__all__ = [
    "PROGRESS_DELAY_S",
    "FormatOption",
    "OutputFormat",
    "OutputOption",
    "ReportFormat",
    "ReportFormatOption",
    "command_line",
    "format_option",
    "notes_to_stderr",
    "progress",
    "shown_on_terminal",
    "table_on_terminal",
    "writable_path",
    "written_file_option",
]


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class ReportFormat(str, enum.Enum):
    """The formats of a command that also draws its report as a page (`--format html`)."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"


def html_extra_checked(fmt: enum.Enum) -> enum.Enum:
    """`--format html` needs the html extra: checked while the options are parsed, so a missing one is said
    before any work."""
    if fmt.value == "html":
        from ...render.html import require_bokeh

        require_bokeh()
    return fmt


def format_option(formats: type[enum.Enum], *, help: str) -> Any:
    """The annotation of `--format/-f`, one of `formats`: the value names --help shows are the enum's values, so
    the two cannot drift apart; html is refused at once when its extra is missing."""
    names = "|".join(str(member.value) for member in formats)
    return Annotated[formats, typer.Option("--format", "-f", metavar=names, callback=html_extra_checked, help=help)]


FormatOption = format_option(OutputFormat, help="Output format.")
ReportFormatOption = format_option(
    ReportFormat,
    help="Output format; html is one self-contained page with charts (needs the html extra), best with --output.",
)


def command_line() -> str:
    """The command as the user typed it, for the header of an HTML report."""
    return shlex.join(["flopcalc", *sys.argv[1:]])


def writable_path(path: Optional[Path]) -> Optional[Path]:
    """An output path checked while the options are parsed (before any work); a bad one is a usage error."""
    if path is not None:
        try:
            check_writable(path)
        except UsageError as error:
            raise typer.BadParameter(str(error)) from None
    return path


def written_file_option(*flags: str, help: str) -> Any:
    """The annotation of a FILE a command writes when it is done, checked writable while the options are parsed."""
    return Annotated[Optional[Path], typer.Option(*flags, metavar="FILE", callback=writable_path, help=help)]


OutputOption = written_file_option("--output", "-o", help="Write to this file (atomically) instead of stdout.")


# Work that ends sooner shows no progress line (it would only flicker).
PROGRESS_DELAY_S = 1.0


@contextlib.contextmanager
def progress(label: str, *, delay: float = PROGRESS_DELAY_S, console: Any = None) -> Iterator[None]:
    """A spinner and `label` on stderr while the block runs, from `delay` seconds on, and only when stderr is a
    terminal (a log or a pipe gets nothing); it is cleared when the block ends, so the output is unchanged."""
    from rich.console import Console

    console = console if console is not None else Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    status = console.status(label, spinner="dots")
    lock, state = threading.Lock(), {"started": False, "over": False}

    def start() -> None:
        with lock:
            if not state["over"]:
                status.start()
                state["started"] = True

    timer = threading.Timer(delay, start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            state["over"] = True
            if state["started"]:
                status.stop()


def shown_on_terminal(fmt: OutputFormat | ReportFormat, output: Optional[Path]) -> bool:
    """A table printed to stdout shows its notes; any other format, or a file, does not."""
    return fmt.value == "table" and output is None


def table_on_terminal(fmt: enum.Enum, output: Optional[Path]) -> bool:
    """A table printed to stdout that is a person's terminal (not a pipe or a file): it may draw color and charts."""
    return fmt.value == "table" and output is None and sys.stdout.isatty()


def notes_to_stderr(notes: Iterable[str], *, shown: bool, warnings: Iterable[str] = ()) -> None:
    """Notes (and warnings) the output does not show go to stderr, one line each, so none is lost."""
    if not shown:
        for warning in warnings:
            typer.echo(f"flopcalc: warning: {warning}", err=True)
        for note in notes:
            typer.echo(f"flopcalc: note: {note}", err=True)
