"""Declaring options and reading them back: one factory per kind of option, options objects read from a
command's parsed parameters by name (a group of options travels as one value from the signature to the library
call, its names written once), and the SI number an option was given."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import MISSING, fields, is_dataclass
from typing import Annotated, Any, Optional, TypeVar, cast, get_args, get_type_hints

import typer
from typer.models import OptionInfo

from ...units import parse_si_number

__all__ = [
    "ReadBack",
    "declared_options",
    "number",
    "options_of",
    "text_option",
    "whole_option",
    "with_options",
]

Options = TypeVar("Options")
Group = TypeVar("Group", bound="ReadBack")  # typing.Self is Python 3.11; the package runs on 3.10


def options_of(kind: type[Options], ctx: typer.Context, *, besides: Iterable[str] = ()) -> Options:
    """A `kind` dataclass from the command's parameters of its fields' names; a field the command does not
    declare (or names in `besides`: a parameter of that name meaning something else there) keeps its default."""
    assert is_dataclass(kind)
    names = {field.name for field in fields(kind)} - set(besides)
    chosen: dict[str, Any] = {name: value for name, value in ctx.params.items() if name in names}
    return kind(**chosen)


class ReadBack:
    """An options dataclass a command reads back whole from its parameters (`Kind.of(ctx)`)."""

    @classmethod
    def of(cls: type[Group], ctx: typer.Context, *, besides: Iterable[str] = ()) -> Group:
        """The options the command received; `besides` names its parameters that share a name but not the
        meaning (bench's --device is where it runs, infer's --batch-size a list)."""
        return options_of(cls, ctx, besides=besides)


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


def declared_options(kind: type, *, without: Iterable[str] = ()) -> tuple[inspect.Parameter, ...]:
    """The fields of an options dataclass that are annotated with their typer option (a field such as MODEL,
    which each command declares itself, is not), in their order, as the keyword parameters typer reads; less
    `without`: the options a command does not take, or declares itself with another meaning."""
    assert is_dataclass(kind)
    annotations = get_type_hints(kind, include_extras=True)
    options = [
        field
        for field in fields(kind)
        if any(isinstance(info, OptionInfo) for info in get_args(annotations[field.name])[1:])
    ]
    unknown = set(without) - {field.name for field in options}
    assert not unknown, f"no option of {kind.__name__} is named {sorted(unknown)}"
    return tuple(
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=field.default if field.default_factory is MISSING else field.default_factory(),
            annotation=annotations[field.name],
        )
        for field in options
        if field.name not in without
    )


Command = TypeVar("Command", bound=Callable[..., Any])


def with_options(kind: type, *, after: str, without: Iterable[str] = ()) -> Callable[[Command], Command]:
    """Declare the options of the options dataclass `kind` (declared_options, less `without`) in the command's
    signature, after its parameter `after` (typer reads the signature, so --help lists them there). The command
    does not receive them as arguments: it reads them back whole, as `kind.of(ctx)`."""
    group = declared_options(kind, without=without)
    names = {parameter.name for parameter in group}

    def declare(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        own = list(signature.parameters.values())
        accepted = {parameter.name for parameter in own}
        assert not accepted & names, f"{command.__name__} declares {sorted(accepted & names)} itself"
        position = [parameter.name for parameter in own].index(after) + 1
        keyword = [parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY) for parameter in own]
        parameters = [*keyword[:position], *group, *keyword[position:]]

        @functools.wraps(command)
        def with_group(**given: Any) -> Any:
            return command(**{name: value for name, value in given.items() if name in accepted})

        with_group.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        with_group.__annotations__ = {
            parameter.name: parameter.annotation
            for parameter in parameters
            if parameter.annotation is not parameter.empty
        }
        return cast(Command, with_group)

    return declare
