"""`flopcalc validate` through typer's CliRunner: formats, --max-error's exit code, one-line errors."""

import json

from tests._cli import invoke


def test_the_table_shows_every_row_and_the_errors():
    result = invoke("validate")
    assert result.exit_code == 0, result.output
    assert "korthikanti-1t-selective-time" in result.output and "korthikanti-22b-none-memory" in result.output
    assert "time, held out (predictions): mean |error|" in result.output
    assert "memory, all rows: mean |error|" in result.output


def test_json_and_markdown():
    data = json.loads(invoke("validate", "--format", "json").output)
    assert data["schema_version"] == 1
    assert len(data["time"]["rows"]) == 8 and len(data["memory"]["rows"]) == 8
    assert data["time"]["all"]["max_abs_error"] <= 0.10
    row = data["time"]["rows"][0]
    assert row["error"] == row["predicted"] / row["measured"] - 1 and row["source"].startswith("Korthikanti")
    markdown = invoke("validate", "--format", "markdown").output
    assert "| korthikanti-175b-full-time | held-out |" in markdown


def test_max_error_exits_1_above_it_and_0_below(tmp_path):
    assert invoke("validate", "--max-error", 10).exit_code == 0
    failed = invoke("validate", "--max-error", 0.5)
    assert failed.exit_code == 1 and "above --max-error 0.5%" in failed.output
    bad = invoke("validate", "--max-error", -1)
    assert bad.exit_code == 2 and bad.output.count("\n") == 1


def test_a_row_without_a_source_is_one_line_exit_2(tmp_path):
    path = tmp_path / "runs.yaml"
    path.write_text("schema_version: 1\nruns:\n  - id: x\n    kind: time\n", encoding="utf-8")
    result = invoke("validate", "--runs", path)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "runs[0].source: missing" in result.output
