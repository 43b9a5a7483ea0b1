"""`count --format html`: the page carries the JSON's figures, needs nothing online, and draws what the data says
(the browser part loads it in headless Chromium with the network cut, as a person would open it)."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import flopcalc
from flopcalc.cli import app
from flopcalc.render.count_html import axis_scale, category_bars, icicle_boxes
from tests._cli import refused_html, runner

pytest.importorskip("bokeh", reason="the html extra (Bokeh) is not installed")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def tree_model() -> nn.Module:
    return nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 2))


def page_data(text: str) -> dict:
    block = re.search(r'<script type="application/json" id="flopcalc-data">(.*?)</script>', text, re.S)
    assert block is not None
    return json.loads(block.group(1))


def test_icicle_boxes_nest_children_inside_their_parent_at_their_flops():
    report = flopcalc.count(tree_model(), torch.randn(3, 4))
    boxes = icicle_boxes(report)
    by_name = {layer.name or "(model)": i for i, layer in enumerate(report.layers)}
    for i, layer in enumerate(report.layers):
        assert boxes["right"][i] - boxes["left"][i] == layer.total  # as wide as its FLOPs
        assert boxes["top"][i] == -layer.depth
    # 0 holds 0.0 and 0.1 side by side from its left edge; 1 starts where 0 ends
    zero, linear, relu, one = (by_name[n] for n in ("0", "0.0", "0.1", "1"))
    assert boxes["left"][linear] == boxes["left"][zero] == 0
    assert boxes["left"][relu] == boxes["right"][linear]
    assert boxes["right"][relu] <= boxes["right"][zero]
    assert boxes["left"][one] == boxes["right"][zero]
    assert boxes["right"][one] <= boxes["right"][by_name["(model)"]]
    # forward alone: Linear 4->8 on 3 rows is 2*3*4*8 = 192 FLOPs of products plus 3*8 bias adds
    forward = icicle_boxes(report, "forward")
    assert forward["right"][linear] - forward["left"][linear] == 2 * 3 * 4 * 8 + 3 * 8


def test_category_bars_are_the_reports_categories_with_flops():
    report = flopcalc.count(tree_model(), torch.randn(3, 4))
    bars = category_bars(report)
    assert bars["category"] and all(
        report.forward_by_category[c] + report.backward_by_category[c] for c in bars["category"]
    )
    assert sum(bars["forward"]) == report.forward and sum(bars["backward"]) == report.backward


def test_axis_scale_picks_the_prefix_of_the_largest_figure():
    assert axis_scale(2.9e8, "FLOP") == (1e6, "MFLOP")
    assert axis_scale(1.2e21, "FLOP") == (1e21, "ZFLOP")
    assert axis_scale(512, "MAC") == (1.0, "MAC")


def count_page(tmp_path: Path, *extra: str) -> tuple[Path, str]:
    out = tmp_path / "report.html"
    result = runner.invoke(
        app,
        [
            "count",
            f"{EXAMPLES / 'cnn.py'}:build",
            "--input",
            "8x3x32x32",
            *extra,
            "--format",
            "html",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out, out.read_text()


def test_the_page_carries_the_json_figures_the_command_line_and_the_version(tmp_path, monkeypatch):
    from importlib.metadata import version

    typed = ["flopcalc", "count", "examples/cnn.py:build", "--input", "8x3x32x32", "--format", "html"]
    monkeypatch.setattr(sys, "argv", typed)  # what the process was started with, as a shell would have it
    _, text = count_page(tmp_path)
    as_json = runner.invoke(app, ["count", f"{EXAMPLES / 'cnn.py'}:build", "--input", "8x3x32x32", "--format", "json"])
    assert as_json.exit_code == 0
    assert page_data(text) == json.loads(as_json.stdout)
    assert 'id="flopcalc-command">flopcalc count examples/cnn.py:build --input 8x3x32x32 --format html</code>' in text
    assert f'id="flopcalc-version">{version("flopcalc")}</span>' in text
    assert re.search(r'id="flopcalc-date">\d{4}-\d\d-\d\d \d\d:\d\d UTC<', text)
    assert "1 multiply-add = 2 FLOPs" in text


def test_the_page_loads_nothing_from_the_network(tmp_path):
    _, text = count_page(tmp_path)
    assert not re.search(r"<script[^>]+src=", text)
    assert not re.search(r"<link[^>]+href=", text)  # (the browser test also fails on any request but the file)


def test_a_value_cannot_end_the_data_block(tmp_path):
    from flopcalc.render.html import data_block

    block = data_block({"model": "</script><script>alert(1)</script>"})
    assert block.count("</script>") == 1
    assert json.loads(block.split(">", 1)[1].rsplit("<", 1)[0]) == {"model": "</script><script>alert(1)</script>"}


def test_without_bokeh_the_html_format_is_one_line_and_exit_2(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "bokeh", None)  # import bokeh raises ImportError
    result = refused_html(tmp_path / "report.html", "count", f"{EXAMPLES / 'cnn.py'}:build")
    assert "flopcalc[html]" in result.output and "Traceback" not in result.output


# -- in a real browser ---------------------------------------------------------------------------------------


def _browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
    executable = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if executable is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)")
    return playwright, executable


GLYPH_ROWS = """() => {
  const rows = {};
  for (const doc of Bokeh.documents)
    for (const model of doc.all_models)
      if (model.name && model.data_source) {
        const columns = Object.values(model.data_source.data);
        (rows[model.name] = rows[model.name] || []).push(columns[0].length);
      }
  return rows;
}"""


def open_in_chromium(path: Path, screenshot: Path) -> tuple[list[str], dict]:
    playwright, executable = _browser()
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith("file://")
                else (errors.append(f"network: {route.request.url}"), route.abort())
            ),
        )
        page.goto(path.resolve().as_uri())
        page.wait_for_function("window.Bokeh && Bokeh.documents.length > 0", timeout=20_000)
        page.wait_for_timeout(300)
        rows = page.evaluate(GLYPH_ROWS)
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return errors, rows


def test_the_count_report_opens_offline_in_chromium_and_draws_every_layer(tmp_path):
    out, text = count_page(tmp_path)
    data = page_data(text)
    errors, rows = open_in_chromium(out, tmp_path / "count.png")
    assert errors == []
    layers = len(data["layers"])
    assert rows["icicle"] == [layers, layers]  # forward + backward, and forward alone: one box per module each
    totals = data["totals"]
    shown = [
        c for c in totals["forward_by_category"] if totals["forward_by_category"][c] + totals["backward_by_category"][c]
    ]
    assert rows["categories"] == [len(shown), len(shown)]  # the forward and the backward stack
    from PIL import Image

    image = Image.open(tmp_path / "count.png").convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 20  # drawn, not blank


@pytest.mark.slow
def test_a_7b_models_count_page_stays_under_5_mb(tmp_path):
    out = tmp_path / "report.html"
    config = EXAMPLES / "hf" / "llama-2-7b" / "config.json"
    args = ["count", str(config), "--seq-len", "4096", "--format", "html", "--output", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(page_data(out.read_text())["layers"]) > 32 * 10  # every module of the 32 blocks is on the page
    assert out.stat().st_size < 5_000_000  # about 1.7 MB (benchmarks/report_pages.py)


def test_page_figure_puts_its_tools_in_a_toolbar_above_or_has_no_toolbar():
    from flopcalc.render.html import PAN_AND_ZOOM, page_figure

    zoomed = page_figure(PAN_AND_ZOOM, height=200)
    assert zoomed.sizing_mode == "stretch_width" and zoomed.toolbar_location == "above"
    assert [type(tool).__name__ for tool in zoomed.toolbar.tools] == [
        "PanTool",
        "WheelZoomTool",
        "BoxZoomTool",
        "ResetTool",
    ]
    still = page_figure(height=150, x_axis_label="GPUs")
    assert still.toolbar_location is None and still.toolbar.tools == [] and still.height == 150
    assert still.sizing_mode == "stretch_width" and still.xaxis[0].axis_label == "GPUs"


def test_step_segments_lay_the_parts_end_to_end_in_their_colours():
    from fractions import Fraction

    from flopcalc.render import colors
    from flopcalc.render.html import step_segments

    # Fractions are added up exactly: a float sum of a tenth three times is not 0.3
    thirds = step_segments(
        [("forward", Fraction(1, 10)), ("backward", Fraction(1, 10)), ("optimizer", Fraction(1, 10))]
    )
    assert thirds["left"] == [0.0, 0.1, 0.2] and thirds["right"] == [0.1, 0.2, 0.3]
    assert thirds["color"] == [colors.FORWARD, colors.BACKWARD, colors.GREEN]
    split = step_segments([("forward", 2.0), ("backward", 4.0), ("teacher forward", 1.0)])
    assert split == {
        "left": [0.0, 2.0, 6.0],
        "right": [2.0, 6.0, 7.0],
        "color": [colors.BLUE, colors.ORANGE, colors.GREEN],
    }
    assert step_segments([]) == {"left": [], "right": [], "color": []}
