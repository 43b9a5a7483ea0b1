"""`bench --distributed --format html`: a bus-bandwidth line per collective and scope with its sizes in order, a
bar per rank and precision, the page's data against the result's JSON, the page in headless Chromium, and (slow)
two real ranks on gloo writing their page."""

from __future__ import annotations

import json

import pytest

from flopcalc.bench.fleet import CollectiveResult
from flopcalc.render.bench_fleet_html import bandwidth_series, rank_bars, render_fleet_html
from tests._cli import LAUNCHER_VARIABLES, html_page
from tests._fleet_helpers import two_node_result
from tests.test_render_html import open_in_chromium, page_data

pytest.importorskip("bokeh", reason="the html extra (Bokeh) is not installed")


def test_one_line_per_scope_and_collective_with_the_busbw_of_each_size():
    result = two_node_result()
    series = bandwidth_series(result)
    assert list(series) == [
        f"{scope} {op}"
        for scope in ("world", "intra", "inter")
        for op in ("all_reduce", "all_gather", "reduce_scatter")
    ] + ["world sendrecv"]
    world = series["world all_reduce"]
    assert world["bytes"] == [2**28, 2**30]
    # all-reduce over 16 ranks: algbw x 2(n-1)/n; 1 GiB in 20 ms
    assert world["busbw"][1] == pytest.approx(2**30 / 0.02 / 1e9 * 2 * 15 / 16)
    assert series["intra all_gather"]["ranks"] == ["8 x 2 groups"] * 2
    assert series["world sendrecv"]["bytes"] == [2**30]


def test_a_series_is_drawn_in_size_order_whatever_order_it_came_in():
    result = two_node_result()
    shuffled = (
        CollectiveResult("all_reduce", "world", 2**30, 16, 1, 5, 0.02),
        CollectiveResult("all_reduce", "world", 2**20, 16, 1, 50, 0.001),
    )
    from dataclasses import replace

    series = bandwidth_series(replace(result, collectives=shuffled))
    assert series["world all_reduce"]["bytes"] == [2**20, 2**30]
    assert series["world all_reduce"]["time_s"] == [0.001, 0.02]


def test_one_bar_per_rank_and_precision_with_the_slow_rank_as_measured():
    bars = rank_bars(two_node_result())
    assert list(bars) == ["bf16"]
    assert bars["bf16"]["rank"] == list(range(16))
    assert bars["bf16"]["tflops"][11] == 610.0 and bars["bf16"]["tflops"][10] == 700.0
    assert bars["bf16"]["host"][8] == "gpu-1"


def test_the_fleet_page_carries_the_json_and_opens_offline_in_chromium(tmp_path):
    result = two_node_result()
    out = tmp_path / "fleet.html"
    out.write_text(render_fleet_html(result, "flopcalc bench --distributed --format html", result.to_dict()))
    assert page_data(out.read_text()) == json.loads(json.dumps(result.to_dict()))
    assert "slowest: rank 11 on host gpu-1" in out.read_text()
    errors, rows = open_in_chromium(out, tmp_path / "fleet.png")
    assert errors == []
    assert rows["busbw"] == [2] * 9 + [1]  # two sizes per scope and collective; one send/recv size
    assert rows["ranks"] == [16]
    from PIL import Image

    image = Image.open(tmp_path / "fleet.png").convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 20  # drawn, not blank


@pytest.mark.slow
def test_two_gloo_ranks_write_their_page(tmp_path, monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCH_CPP_LOG_LEVEL", "FATAL")
    out = tmp_path / "fleet.html"
    args = ["bench", "--distributed", "--nproc", "2", "--device", "cpu", "--seconds", "1", "--max-bytes", "16K"]
    text = html_page(out, *args)
    data = page_data(text)
    assert data["world_size"] == 2 and [rank["rank"] for rank in data["per_rank"]] == [0, 1]
    assert "Bus bandwidth against message size" in text
