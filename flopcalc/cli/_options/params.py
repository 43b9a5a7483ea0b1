"""Options objects read from a command's parsed parameters by name, so that a group of options travels as one
value from the command's signature to the library call, its names written once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

import typer

Options = TypeVar("Options")


def options_of(kind: type[Options], ctx: typer.Context, *, besides: Iterable[str] = ()) -> Options:
    """A `kind` dataclass from the command's parameters of its fields' names; a field the command does not
    declare (or names in `besides`: a parameter of that name meaning something else there) keeps its default."""
    assert is_dataclass(kind)
    names = {field.name for field in fields(kind)} - set(besides)
    chosen: dict[str, Any] = {name: value for name, value in ctx.params.items() if name in names}
    return kind(**chosen)
