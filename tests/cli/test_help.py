"""Every command's --help reads as a user's page: value names say what to write (SHAPE, FILE, N), never a Python
type (`<str>`, `<list[str]>`), and the help names only options the command has."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from flopcalc.cli import app

PYTHON_TYPE = re.compile(r"<(?:str|int|float|bool|path|list\[[^\]]*\]|[A-Za-z_]+\[[^\]]*\])>")
GLOBAL_OPTIONS = {"--help", "--debug", "--version", "--install-completion", "--show-completion"}


def _commands():
    root = typer.main.get_command(app)

    def walk(command, path):
        if hasattr(command, "commands"):  # a group (typer may carry its own copy of click)
            for name, sub in command.commands.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, command

    return list(walk(root, ()))


COMMANDS = _commands()


def test_every_command_is_walked():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"count", "train", "convert", "plan", "infer", "bench", "check", "gpus list", "gpus show"} <= names


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_no_python_type_in_a_metavar(path, command):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    option_lines = [line for line in result.stdout.splitlines() if line.lstrip().startswith("-")]
    assert [line for line in option_lines if PYTHON_TYPE.search(line)] == []
    for param in command.params:
        if param.param_type_name == "option" and not param.is_flag and not param.hidden:
            assert param.metavar, f"{' '.join(path)} {param.opts[0]} has no metavar"


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_arguments_show_a_plain_metavar(path, command):
    """`MODEL`, never typer's `MODEL <str>` or `model <str>`."""
    arguments = [param for param in command.params if param.param_type_name == "argument"]
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    listed = result.stdout.split("Arguments:", 1)[1].split("Options:", 1)[0] if arguments else ""
    for param in arguments:
        metavar = param.metavar or ""
        assert metavar.isupper(), f"{' '.join(path)} argument {param.name} shows {metavar!r}"
        assert re.search(rf"^\s*{metavar}\s{{2,}}\S", listed, re.MULTILINE), listed
    assert not PYTHON_TYPE.search(listed)


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_the_help_names_only_options_the_command_has(path, command):
    own = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    text = " ".join(filter(None, [command.help or ""] + [getattr(p, "help", "") or "" for p in command.params]))
    text = re.sub(r"`flopcalc [^`]*`", "", text)  # another command's line, quoted, may name its own options
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    assert named - own - GLOBAL_OPTIONS == set()


@pytest.mark.parametrize("command", ["count", "infer", "train", "plan", "bench"])
def test_a_missing_model_file_is_one_line_before_torch_is_imported(command, tmp_path):
    """Checked while the options are parsed: the error comes without the seconds torch takes to import."""
    import subprocess
    import sys

    probe = (
        f"import sys; from flopcalc.cli import main; sys.argv = ['flopcalc', {command!r}, 'missing/net.py:build'];\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    print('torch' in sys.modules, stop.code)"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert done.stdout.split() == ["False", "2"], done.stderr
    assert "model file missing/net.py not found" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
