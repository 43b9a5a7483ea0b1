"""Declaring options and reading them back: one factory per kind of option, options objects read from a
command's parsed parameters by name (a group of options travels as one value from the signature to the library
call, its names written once), and the SI number an option was given."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from typing import Annotated, Any, Optional, TypeVar

import typer

from ...units import parse_si_number

Options = TypeVar("Options")


def options_of(kind: type[Options], ctx: typer.Context, *, besides: Iterable[str] = ()) -> Options:
    """A `kind` dataclass from the command's parameters of its fields' names; a field the command does not
    declare (or names in `besides`: a parameter of that name meaning something else there) keeps its default."""
    assert is_dataclass(kind)
    names = {field.name for field in fields(kind)} - set(besides)
    chosen: dict[str, Any] = {name: value for name, value in ctx.params.items() if name in names}
    return kind(**chosen)


def whole_option(*flags: str, metavar: str = "N", help: str, **settings: Any) -> Any:
    """The annotation of an optional whole-number option (None when not given), for a command's parameter."""
    return Annotated[Optional[int], typer.Option(*flags, metavar=metavar, help=help, **settings)]


def text_option(*flags: str, metavar: str, help: str, **settings: Any) -> Any:
    """The annotation of an optional option kept as typed (None when not given), for a command's parameter: a
    number with an SI suffix, a name or a file, parsed where it is used so that its error names the flag."""
    return Annotated[Optional[str], typer.Option(*flags, metavar=metavar, help=help, **settings)]


def number(text: Optional[str], flag: str) -> Optional[float]:
    """An SI number given to FLAG, or None when the option was not given."""
    return None if text is None else parse_si_number(text, flag)
