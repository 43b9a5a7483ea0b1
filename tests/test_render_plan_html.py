"""`plan --format html`: the schedule, step split, bars and frontier it draws, the page's JSON, and the page in
headless Chromium with the network cut (as tests/test_render_html.py opens the count report)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from flopcalc.cli import app
from flopcalc.render.plan_html import frontier, memory_bars, schedule_boxes, step_split
from flopcalc.units import GIB
from tests._cli import html_page, invoke_json, refused_html, runner
from tests._shapes import LLAMA_3_70B, plan_flags
from tests.test_render_html import open_in_chromium, page_data

pytest.importorskip("bokeh", reason="the html extra (Bokeh) is not installed")

SHAPE = ["--params", "7e9", "--layers", "32", "--hidden", "4096", "--heads", "32", "--seq-len", "4096"]
LAYOUT = ["--gpu", "H100-SXM", "--num-gpus", "16", "--tp", "2", "--pp", "4", "--global-batch", "64"]
ONE_LAYOUT = [*SHAPE, *LAYOUT, "--micro-batch", "1", "--tokens", "1T"]
SEARCH = [*SHAPE, "--gpu", "H100-SXM", "--num-gpus", "16", "--global-batch", "64", "--tokens", "1T", "--search"]


@pytest.mark.parametrize("pp, m", [(4, 8), (4, 2), (1, 3), (8, 8)])
def test_1f1b_takes_micro_batches_plus_pp_minus_1_slots(pp, m):
    f, b = 1.0, 2.0
    boxes = schedule_boxes(pp, m, f, b)
    assert len(boxes["start"]) == 2 * pp * m  # every micro-batch's forward and backward on every stage
    assert max(boxes["end"]) == (m + pp - 1) * (f + b)  # the 1F1B makespan: (pp - 1) slots of bubble
    passes = {
        (k, s, i): (b0, e)
        for k, s, i, b0, e in zip(*(boxes[c] for c in ("pass", "stage", "micro_batch", "start", "end")))
    }
    for (kind, stage, micro), (start, _) in passes.items():
        if kind == "forward" and stage:
            assert start >= passes[("forward", stage - 1, micro)][1]  # needs the previous stage's activations
        if kind == "backward" and stage < pp - 1:
            assert start >= passes[("backward", stage + 1, micro)][1]  # needs the next stage's gradients
    for stage in range(pp):  # one pass at a time on a GPU
        spans = sorted((s, e) for s, e, g in zip(boxes["start"], boxes["end"], boxes["stage"]) if g == stage)
        assert all(end <= later for (_, end), (later, _) in zip(spans, spans[1:]))


@pytest.mark.parametrize("pp, m, v", [(4, 8, 2), (4, 4, 3), (2, 6, 2)])
def test_interleaving_shrinks_the_bubble_to_pp_minus_1_over_v_slots(pp, m, v):
    f, b = 1.0, 2.0
    boxes = schedule_boxes(pp, m, f, b, v)
    assert len(boxes["start"]) == 2 * pp * m * v  # each chunk's passes
    assert max(boxes["end"]) == pytest.approx((m + (pp - 1) / v) * (f + b), rel=1e-12)
    assert sorted(set(boxes["chunk"])) == list(range(v))


def test_frontier_keeps_the_layouts_nothing_beats_in_both():
    points = [(1.0, 50.0), (2.0, 30.0), (1.5, 60.0), (3.0, 30.0), (0.9, 70.0)]
    assert frontier(points) == [4, 0, 1]  # (1.5, 60) is beaten by (1.0, 50); (3.0, 30) by (2.0, 30)


def test_memory_bars_are_gib_of_each_part_and_leave_out_parts_nobody_has():
    stages = [
        {"weights": GIB, "gradients": 2 * GIB, "optimizer": 4 * GIB, "activations": 3 * GIB, "total": 10 * GIB},
        {"weights": GIB, "gradients": 2 * GIB, "optimizer": 4 * GIB, "activations": None, "total": 7 * GIB},
    ]
    bars = memory_bars(["a", "b"], stages)
    assert bars == {
        "label": ["a", "b"],
        "weights": [1.0, 1.0],
        "gradients": [2.0, 2.0],
        "optimizer": [4.0, 4.0],
        "activations": [3.0, 0.0],
        "total": [10.0, 7.0],
    }


def test_the_step_split_adds_up_to_the_step_and_its_bubble_is_the_schedules():
    result = runner.invoke(app, ["plan", *ONE_LAYOUT, "--utilization", "0.4", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    from flopcalc import plan as planning

    plan = planning_plan(planning)
    split = step_split(plan)
    assert sum(split.values()) == pytest.approx(plan.step.step_s, rel=1e-12)
    step = data["step"]
    assert plan.step.step_s == step["step_s"]
    # the utilization model: step = (compute + critical) / (1 - bubble) + exposed dp; the bubble is the pipeline's
    dp_exposed = step["exposed_comm_s"] - step["tp_comm_s"] - step["pp_comm_s"]
    assert split["bubble"] == pytest.approx((step["step_s"] - dp_exposed) * step["bubble_fraction"], rel=1e-9)
    assert split["compute"] == step["compute_s"] and split["tensor-parallel"] == step["tp_comm_s"]


def fleet_of(planning, utilization=None):
    return planning.resolve_fleet(
        gpu="H100-SXM", precision=None, utilization=utilization, calibration=None, catalogs=(), model_key=None,
        gpu_memory_gib=None, memory_reserve_gib=None, intra_node_gbps=None, inter_node_gbps=None, gpus_per_node=8,
        pue=1.0, price_per_gpu_hour=None, grid=None,
    )  # fmt: skip


def seven_b(planning):
    return planning.model_from_params(
        7e9, 4096, layers=32, hidden=4096, heads=32, kv_heads=None, ffn=None, vocab=None, head_dim=None,
        mlp="gelu", attention="flash", params_tolerance=planning.PARAMS_TOLERANCE,
    )  # fmt: skip


def planning_plan(planning):
    """The layout ONE_LAYOUT describes, at 40% utilisation (the step's simple model), through the library."""
    fleet, model = fleet_of(planning, 0.4), seven_b(planning)
    layout = planning.layout_from_options(model, num_gpus=16, global_batch=64, tp=2, pp=4, micro_batch=1)
    run = planning.run_size(model, tokens=1e12, examples=None, epochs=None)
    return planning.evaluate(model, layout, fleet, precision=fleet.throughput.precision, optimizer="adamw", run=run)


def write_page(tmp_path: Path, *args: str) -> tuple[Path, str]:
    out = tmp_path / "plan.html"
    return out, html_page(out, "plan", *args)


@pytest.mark.parametrize("args", [ONE_LAYOUT, SEARCH], ids=["layout", "search"])
def test_the_page_carries_the_json_object(tmp_path, args):
    _, text = write_page(tmp_path, *args)
    assert page_data(text) == invoke_json("plan", *args)


def test_without_bokeh_the_html_format_is_one_line_and_exit_2(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "bokeh", None)
    result = refused_html(tmp_path / "plan.html", "plan", *ONE_LAYOUT)
    assert "flopcalc[html]" in result.output and "Traceback" not in result.output


def test_a_70b_search_page_stays_under_5_mb(tmp_path):
    out, _ = write_page(
        tmp_path,
        *["--params", "70e9", *plan_flags(LLAMA_3_70B), "--seq-len", "4096", "--gpu", "H100-SXM"],
        *["--num-gpus", "512", "--global-batch", "1024", "--tokens", "2T", "--search"],
    )
    assert out.stat().st_size < 5_000_000


def non_blank(png: Path) -> bool:
    from PIL import Image

    return len(Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20) or []) > 20


def opened_in_chromium(tmp_path: Path, screenshot: str, *args: str) -> tuple[dict, dict]:
    """The plan page of ARGS opened offline in Chromium, which must log no error and draw a screenshot that is not
    blank: the page's JSON and the rows each of its parts drew."""
    out, text = write_page(tmp_path, *args)
    errors, rows = open_in_chromium(out, tmp_path / screenshot)
    assert errors == []
    assert non_blank(tmp_path / screenshot)
    return page_data(text), rows


def test_the_plan_opens_offline_in_chromium_with_a_bar_per_stage_and_a_box_per_pass(tmp_path):
    data, rows = opened_in_chromium(tmp_path, "plan.png", *ONE_LAYOUT, "--virtual-stages", "2")
    stages = len(data["stages"])
    assert stages == 4
    assert set(rows["memory"]) == {stages}  # one bar per stage in each part's stack
    layout = data["parallelism"]
    passes = 2 * layout["pp"] * layout["grad_accum"] * layout["virtual_stages"]
    assert rows["schedule"] == [passes]


def test_a_search_opens_offline_in_chromium_with_a_bar_and_a_point_per_layout(tmp_path):
    data, rows = opened_in_chromium(tmp_path, "search.png", *SEARCH, "--top", "6")
    shown = len(data["candidates"])
    assert shown == 6
    assert set(rows["candidates"]) == {shown} and rows["shown"] == [shown]
    result = searched()
    assert rows["layouts"] == [len(result.fitting)]  # every layout evaluated that fits, as a point
    assert rows["frontier"] == [len(frontier([(s, m / GIB) for s, m in result.fitting]))]
    assert rows["schedule"] == [2 * data["parallelism"]["pp"] * data["parallelism"]["grad_accum"]]


def searched():
    """SEARCH through the library: the layouts shown and every one that fits."""
    from flopcalc import plan as planning

    fleet, model = fleet_of(planning), seven_b(planning)
    run = planning.run_size(model, tokens=1e12, examples=None, epochs=None)
    return planning.search(
        model, fleet, 16, global_batch=64, fixed={}, top=6, precision=fleet.throughput.precision,
        optimizer="adamw", run=run,
    )  # fmt: skip


def test_the_search_keeps_every_fitting_layouts_point_the_shown_ones_among_them():
    result = searched()
    assert len(result.candidates) == 6 and len(result.fitting) > 6
    for plan in result.candidates:
        assert (plan.step.step_s, plan.memory.total) in result.fitting
    assert all(nbytes <= result.candidates[0].usable_memory_bytes for _, nbytes in result.fitting)
    assert min(step_s for step_s, _ in result.fitting) == result.candidates[0].step.step_s  # the best is fastest
