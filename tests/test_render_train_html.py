"""`train --format html`: the FLOPs split into forward, backward and teacher passes that add up to the training
FLOPs, the wall clock at each fleet size, the conventions' bars, the page's data against `train --format json`,
and the page in headless Chromium."""

from __future__ import annotations

import json

import pytest
import torch

import flopcalc
from flopcalc.compute import Throughput, TrainingCompute, fleet_estimate
from flopcalc.conventions import conventions_for
from flopcalc.render.train_html import convention_bars, fleet_sizes, flops_split, render_training_html
from tests._cli import html_page, invoke_json, refused_html
from tests._models import tiny_gpt2
from tests.test_render_html import open_in_chromium, page_data

pytest.importorskip("bokeh", reason="the html extra (Bokeh) is not installed")

SIX_ND = ["train", "--params", "7e9", "--tokens", "2e12", "--gpu", "H100-SXM", "--num-gpus", "1024"]


def test_the_split_is_forward_backward_and_teacher_and_adds_up_to_the_training_flops():
    training = TrainingCompute(300, 600, 1000, 3, "counted", teacher_forward_flops_per_example=50, teacher_passes=2)
    split = flops_split(training)
    assert split["part"] == ["forward", "backward", "teacher forward"]
    assert split["flops"] == [300 * 1000 * 3, 600 * 1000 * 3, 50 * 1000 * 2]
    assert split["left"] == [0, 900_000, 2_700_000] and split["right"] == [900_000, 2_700_000, 2_800_000]
    assert split["right"][-1] == training.training_flops
    assert split["share"] == [900_000 / 2_800_000, 1_800_000 / 2_800_000, 100_000 / 2_800_000]
    assert flops_split(TrainingCompute(2, 4, 10, 1, "6ND"))["part"] == ["forward", "backward"]


def test_the_split_ends_at_the_training_flops_exactly_for_decimal_inputs():
    # each figure taken as the decimal typed (as TrainingCompute does), not its nearest binary double: summed
    # from the doubles, the last edge here lands one unit in the last place away from training_flops
    training = TrainingCompute(232212.3, 988628.83, 559361098.1, 3.2, "counted")
    assert flops_split(training)["right"][-1] == training.training_flops


def test_the_wall_clock_falls_as_one_over_the_gpus_and_the_fleet_given_is_among_the_sizes():
    throughput = Throughput(1e15, 0.5, "H100-SXM", "bf16", "test")
    fleet = fleet_estimate(3.6e21, throughput, 12)  # 3.6e21 / (5e14 x 3600) = 2000 GPU-hours
    sizes = fleet_sizes(fleet)
    assert sizes["gpus"] == [1, 2, 4, 8, 12, 16, 32]  # powers of two up to 4 x 12 = 48, and the 12 given
    assert sizes["days"][0] == pytest.approx(2000 / 24)
    assert sizes["days"][4] == pytest.approx(2000 / 12 / 24)
    assert sizes["days"][4] == fleet.wall_clock_days  # the fleet's own size gives its wall clock exactly


def test_the_conventions_bars_are_the_count_then_each_formula():
    report = flopcalc.count(tiny_gpt2(), torch.zeros(2, 64, dtype=torch.long, device="meta"))
    table = conventions_for(report)
    bars = convention_bars(table)
    assert bars["name"] == ["counted (flopcalc)", *(c.name for c in table.conventions)]
    assert bars["flops"] == [table.counted_per_token, *(c.flops_per_token for c in table.conventions)]


def test_the_page_carries_the_train_json_and_the_table(tmp_path):
    text = html_page(tmp_path / "train.html", *SIX_ND)
    assert page_data(text) == invoke_json(*SIX_ND)
    assert "<td>GPU-days</td>" in text and "<td>PetaFLOP-days</td>" in text
    assert "flopcalc train: training compute (6ND)" in text


def test_the_page_of_a_counted_transformer_carries_its_conventions():
    report = flopcalc.count(tiny_gpt2(), torch.zeros(2, 64, dtype=torch.long, device="meta"))
    table = conventions_for(report)
    training = TrainingCompute(report.forward / 2, report.backward / 2, 100, 1, "counted")
    text = render_training_html(training, None, "flopcalc train gpt2", conventions=table)
    assert page_data(text)["conventions"] == json.loads(json.dumps(table.to_dict()))
    assert "FLOPs per token: counted and by each convention" in text


def test_without_bokeh_train_html_is_one_line_and_exit_2(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "bokeh", None)
    result = refused_html(tmp_path / "train.html", *SIX_ND)
    assert "flopcalc[html]" in result.output and "Traceback" not in result.output


def test_the_train_report_opens_offline_in_chromium_with_each_chart(tmp_path):
    out = tmp_path / "train.html"
    html_page(out, *SIX_ND)
    errors, rows = open_in_chromium(out, tmp_path / "train.png")
    assert errors == []
    assert rows["split"] == [2]  # forward and backward: 6ND has no teacher
    assert rows["fleet"] == [len(fleet_sizes_of(page_data(out.read_text())))]
    assert rows["chosen"] == [1]
    from PIL import Image

    image = Image.open(tmp_path / "train.png").convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 20  # drawn, not blank


def fleet_sizes_of(data: dict) -> list[int]:
    """The fleet sizes the page should draw, from its JSON: powers of two up to 4 x the GPUs, and the GPUs."""
    top = max(8, 4 * data["num_gpus"])
    return sorted({2**i for i in range(top.bit_length()) if 2**i <= top} | {data["num_gpus"]})
