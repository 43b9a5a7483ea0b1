"""What the command tests share: one CliRunner, a run with every argument as text, a clean run's JSON, and the
model shapes several commands are run on, as flags."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from flopcalc.cli import app

runner = CliRunner()

# Llama-2-7B's transformer as `plan` takes it (no --params, no --seq-len: a shape alone), then with both
LLAMA_7B_LAYERS = ("--layers", "32", "--hidden", "4096", "--heads", "32")
LLAMA_7B = ("--params", "6.7e9", "--seq-len", "2048", *LLAMA_7B_LAYERS)
GPT3_175B = ("--params", "175e9", "--seq-len", "2048", "--layers", "96", "--hidden", "12288", "--heads", "96")
# the variables a launcher (torchrun) sets, cleared so `bench --distributed` starts its own ranks
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")
# GPT-3's published training run: 175e9 parameters, 300e9 tokens, on V100s
GPT3_RUN = ("--params", "175e9", "--tokens", "300e9", "--gpu", "V100-SXM2")


def invoke(*args: object) -> Result:
    return runner.invoke(app, [str(arg) for arg in args])


def assert_one_line_error(result: Result, text: str) -> None:
    """The run exited 2 with one line, flopcalc's error naming `text`."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("flopcalc: error:") and text in lines[0], result.output


def html_page(out: Path, *args: object) -> str:
    """`flopcalc ARGS --format html --output OUT`, which must exit 0: the page's text."""
    result = invoke(*args, "--format", "html", "--output", out)
    assert result.exit_code == 0, result.output
    return out.read_text()


def refused_html(out: Path, *args: object) -> Result:
    """`flopcalc ARGS --format html --output OUT`, which must exit 2 and write no page: its run, for the message."""
    result = invoke(*args, "--format", "html", "--output", out)
    assert result.exit_code == 2
    assert not out.exists()
    return result


def json_run(*args: object, exit_code: int = 0) -> tuple[Result, dict]:
    """`flopcalc ARGS --format json`, which must exit `exit_code`: the run (for what it said on stderr) and its JSON."""
    result = invoke(*args, "--format", "json")
    assert result.exit_code == exit_code, result.output
    return result, json.loads(result.stdout)


def invoke_json(*args: object, exit_code: int = 0) -> dict:
    """The JSON of `flopcalc ARGS --format json`, which must exit `exit_code`."""
    return json_run(*args, exit_code=exit_code)[1]
