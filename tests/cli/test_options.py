"""The shared option plumbing: ModelOptions read from a command's parameters, and the option factories."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Annotated

import pytest
import typer

from flopcalc.cli._options import (
    BatchSizeOption,
    InputOption,
    KwargsOption,
    ModelOptions,
    ReadBack,
    ReportFormat,
    declared_options,
    format_option,
    number,
    options_of,
    text_option,
    whole_option,
    with_options,
    written_file_option,
)
from flopcalc.errors import UsageError
from tests._cli import runner


def _read_back(*args: str, besides: tuple[str, ...] = ()) -> ModelOptions:
    """The ModelOptions a one-command app reads from ARGS (its --device means something else when besides says so)."""
    seen: list[ModelOptions] = []
    app = typer.Typer()

    @app.command()
    def command(
        ctx: typer.Context,
        model: str = typer.Argument(None),
        input: InputOption = [],  # noqa: B006 (typer copies its default)
        batch_size: BatchSizeOption = None,
        kwargs: KwargsOption = None,
        device: str = typer.Option("auto", "--device"),
        unrelated: int = typer.Option(3, "--unrelated"),
    ) -> None:
        seen.append(ModelOptions.of(ctx, besides=besides))

    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return seen[0]


def test_model_options_are_read_by_name_and_the_rest_keep_their_defaults():
    options = _read_back("m.py:f", "-i", "2x3", "-b", "4", "--kwargs", '{"width": 8}', "--device", "cpu")
    assert options == ModelOptions(model="m.py:f", input=["2x3"], batch_size=4, kwargs='{"width": 8}', device="cpu")
    spec = options.spec(backward=False, sparse_peak=True)
    assert (spec.source, spec.inputs, spec.batch_size, dict(spec.kwargs)) == ("m.py:f", ("2x3",), 4, {"width": 8})
    assert (spec.device, spec.backward, spec.sparsity, spec.dims, spec.frozen) == ("cpu", False, True, {}, ())


def test_a_parameter_named_like_a_model_option_but_meaning_else_is_left_out():
    assert _read_back("m.py:f", "--device", "cuda", besides=("device",)).device is None


def test_model_options_without_a_model_are_refused_but_those_read_without_one():
    assert ModelOptions(seq_len=512).spec_or_none("plan", besides=["seq_len"]) is None
    with pytest.raises(UsageError, match="^--input, --attention-as-math need a MODEL to plan"):
        ModelOptions(input=["2x3"], seq_len=512, attention_as_math=True).spec_or_none("plan", besides=["seq_len"])


def test_options_of_builds_any_options_dataclass_from_the_parameters():
    @dataclass(frozen=True)
    class Pair:
        batch_size: int | None = None
        unrelated: int = 0

    seen: list[Pair] = []
    app = typer.Typer()

    @app.command()
    def command(ctx: typer.Context, batch_size: BatchSizeOption = None, other: int = typer.Option(1)) -> None:
        seen.append(options_of(Pair, ctx))

    assert runner.invoke(app, ["-b", "7"]).exit_code == 0
    assert seen == [Pair(batch_size=7, unrelated=0)]


def test_number_parses_si_numbers_and_keeps_an_absent_option_absent():
    assert number("7G", "--params") == 7e9
    assert number(None, "--params") is None


def test_the_option_factories_declare_what_their_names_say():
    seen: list[tuple[object, object]] = []
    app = typer.Typer()

    @app.command()
    def command(
        layers: whole_option("--layers", "-l", help="Layers.") = None,
        tokens: text_option("--tokens", metavar="D", help="Tokens.") = None,
    ) -> None:
        seen.append((layers, tokens))

    assert runner.invoke(app, ["-l", "12", "--tokens", "3G"]).exit_code == 0
    assert runner.invoke(app, []).exit_code == 0
    assert seen == [(12, "3G"), (None, None)]
    refused = runner.invoke(app, ["--layers", "many"])
    assert refused.exit_code == 2 and len(seen) == 2  # refused while parsing: the command never ran
    declared = {param.name: param for param in typer.main.get_command(app).params}
    assert (declared["layers"].opts, declared["layers"].metavar, declared["layers"].help) == (
        ["--layers", "-l"],
        "N",
        "Layers.",
    )
    assert (declared["tokens"].opts, declared["tokens"].metavar, declared["tokens"].help) == (
        ["--tokens"],
        "D",
        "Tokens.",
    )


def test_a_written_file_is_checked_while_the_options_are_parsed(tmp_path):
    ran: list[object] = []
    app = typer.Typer()

    @app.command()
    def command(report: written_file_option("--report", help="Report.") = None) -> None:
        ran.append(report)

    assert runner.invoke(app, ["--report", str(tmp_path / "out.json")]).exit_code == 0
    refused = runner.invoke(app, ["--report", str(tmp_path / "missing" / "out.json")])
    assert refused.exit_code == 2 and ran == [tmp_path / "out.json"]


WidthOption = whole_option("--width", metavar="W", help="Width.")
NameOption = Annotated[list[str], typer.Option("--name", metavar="NAME", help="A name (repeatable).")]


@dataclass(frozen=True)
class Shape(ReadBack):
    """A group of two options for the tests below: its fields are their declarations."""

    width: WidthOption = None
    name: NameOption = field(default_factory=list)


def _grouped_app(seen: list[object]) -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.command()
    @with_options(Shape, after="first")
    def command(
        ctx: typer.Context,
        first: int = typer.Option(1, "--first", metavar="N"),
        last: int = typer.Option(2, "--last", metavar="N"),
    ) -> None:
        seen.append((first, last, Shape.of(ctx)))

    return app


def test_a_group_is_declared_after_the_parameter_named_and_read_back_whole():
    seen: list[object] = []
    app = _grouped_app(seen)
    given = runner.invoke(app, ["--width", "3", "--name", "a", "--name", "b", "--last", "5"])
    assert given.exit_code == 0, given.output
    assert runner.invoke(app, []).exit_code == 0
    assert seen == [(1, 5, Shape(width=3, name=["a", "b"])), (1, 2, Shape(width=None, name=[]))]
    declared = [(param.name, param.opts, param.metavar, param.help) for param in typer.main.get_command(app).params]
    assert declared == [
        ("first", ["--first"], "N", None),
        ("width", ["--width"], "W", "Width."),
        ("name", ["--name"], "NAME", "A name (repeatable)."),
        ("last", ["--last"], "N", None),
    ]
    assert runner.invoke(app, ["--width", "wide"]).exit_code == 2 and len(seen) == 2  # typer checks the group too


def test_a_command_takes_a_group_less_what_it_declares_itself():
    assert [parameter.name for parameter in declared_options(Shape, without=["name"])] == ["width"]
    assert [parameter.name for parameter in declared_options(ModelOptions)][:2] == ["input", "batch_size"]  # not MODEL
    with pytest.raises(AssertionError, match="no option of Shape is named"):
        declared_options(Shape, without=["height"])

    def command(ctx: typer.Context, width: int = 0) -> None: ...

    with pytest.raises(AssertionError, match="declares"):
        with_options(Shape, after="ctx")(command)


class Shade(str, enum.Enum):
    light = "light"
    dark = "dark"


def test_the_format_option_names_the_values_its_enum_takes():
    seen: list[Shade] = []
    app = typer.Typer(add_completion=False)

    @app.command()
    def command(shade: format_option(Shade, help="Shade.") = Shade.light) -> None:
        seen.append(shade)

    assert runner.invoke(app, ["-f", "dark"]).exit_code == 0 and runner.invoke(app, []).exit_code == 0
    assert seen == [Shade.dark, Shade.light]
    assert runner.invoke(app, ["--format", "grey"]).exit_code == 2
    [declared] = typer.main.get_command(app).params
    assert (declared.opts, declared.metavar, declared.help) == (["--format", "-f"], "light|dark", "Shade.")


def test_a_page_without_its_extra_is_refused_while_the_options_are_parsed(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bokeh", None)  # import bokeh raises ImportError
    seen: list[ReportFormat] = []
    app = typer.Typer(add_completion=False)

    @app.command()
    def command(fmt: format_option(ReportFormat, help="Format.") = ReportFormat.table) -> None:
        seen.append(fmt)

    assert runner.invoke(app, ["-f", "json"]).exit_code == 0 and seen == [ReportFormat.json]
    refused = runner.invoke(app, ["-f", "html"])
    assert isinstance(refused.exception, UsageError) and "needs Bokeh" in str(refused.exception)
    assert seen == [ReportFormat.json]  # the command never ran
