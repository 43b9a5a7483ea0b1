"""`check --format html`: each budget a bar at its share of the limit, the page's JSON, and the page in headless
Chromium with the network cut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flopcalc.budget import Check, CheckResult, Regression
from flopcalc.cli import app
from flopcalc.render.budget_html import budget_bars, growth_bars
from tests._cli import refused_html, runner
from tests.test_render_html import open_in_chromium, page_data

pytest.importorskip("bokeh", reason="the html extra (Bokeh) is not installed")

ROOT = Path(__file__).resolve().parent.parent


def test_a_bar_is_the_value_in_percent_of_its_limit_red_when_over():
    result = CheckResult(
        (
            Check("cnn", "m.py", "forward_flops", 75e6, 150e6, True, 50.0),
            Check("mlp", "m.py", "params", 1.5e6, 1e6, False, -50.0),
            Check("zero", "m.py", "params", 3, 0, False, float("-inf")),
        )
    )
    bars = budget_bars(result)
    assert bars["percent"] == [50.0, 150.0, float("inf")]
    assert bars["label"] == ["cnn: forward FLOPs", "mlp: params", "zero: params"]
    assert bars["color"][0] != bars["color"][1] == bars["color"][2]


def test_growth_bars_leave_out_a_baseline_of_zero():
    result = CheckResult(
        (),
        (
            Regression("cnn", "params", 100, 103, 3.0, 2.0, False),
            Regression("new", "params", 0, 5, None, 2.0, False),
        ),
    )
    assert growth_bars(result) == {
        "label": ["cnn: params"],
        "growth": [3.0],
        "tolerance": [2.0],
        "color": ["#e15759"],
    }


def test_an_over_budget_page_carries_the_json_and_opens_offline_with_a_bar_per_check(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the budget file's model paths are relative to where flopcalc runs
    out = tmp_path / "check.html"
    result = runner.invoke(
        app, ["check", "--budget", "examples/over-budget.yaml", "--format", "html", "--output", str(out)]
    )
    assert result.exit_code == 1, result.output  # over budget: exit 1, the page still written
    as_json = runner.invoke(app, ["check", "--budget", "examples/over-budget.yaml", "--format", "json"])
    data = page_data(out.read_text())
    assert data == json.loads(as_json.stdout)
    errors, rows = open_in_chromium(out, tmp_path / "check.png")
    assert errors == []
    assert rows["budgets"] == [len(data["checks"])]
    from PIL import Image

    image = Image.open(tmp_path / "check.png").convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 20


def test_without_bokeh_check_html_is_one_line_and_exit_2_before_counting(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "bokeh", None)
    result = refused_html(tmp_path / "check.html", "check", "--budget", "nowhere.yaml")
    assert "flopcalc[html]" in result.output and "nowhere.yaml" not in result.output  # said before the file is read
