"""Rendering a ValidationReport: every format carries every row, its error, and the summaries."""

import csv
import io
import json

import pytest

from flopcalc.render.validate import render
from flopcalc.validate import validate


@pytest.fixture(scope="module")
def report():
    return validate()


def test_table_and_markdown_show_each_row_with_its_signed_error(report):
    for fmt in ("table", "markdown"):
        text = render(report, fmt)
        for result in report.results:
            assert result.row.id in text
            assert f"{result.error * 100:+.2f}%" in text
        assert "matmul efficiency x 0.9330" in text or f"{report.fit.matmul_efficiency_scale:.4f}" in text


def test_csv_has_one_row_per_run_and_json_the_summaries(report):
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert [row["id"] for row in rows] == [result.row.id for result in report.results]
    assert all(row["source"] for row in rows)
    data = json.loads(render(report, "json"))
    assert data["time"]["held_out"]["rows"] == 6
    assert data["memory"]["all"]["mean_abs_error"] == report.summary("memory").mean_abs_error


def test_without_a_fit_the_title_says_nothing_was_fitted():
    assert "nothing fitted" in render(validate(fit=False), "table")


def test_docs_publish_the_table_the_command_prints(report):
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "validation.md").read_text(encoding="utf-8")
    printed = render(report, "markdown")
    table = printed[: printed.index("\n", printed.index("- memory, held out"))]
    assert table in docs, "docs/validation.md: paste `flopcalc validate --format markdown` (up to the sources)"
