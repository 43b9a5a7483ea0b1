"""`bench MODEL --format html`: a point per timed step, the measured median and the prediction as lines, the
prediction's phases adding up to the predicted step, the page's data against the result's JSON, and a tiny
model's page in headless Chromium."""

from __future__ import annotations

import json

import pytest

from flopcalc.bench.hardware import DeviceInfo
from flopcalc.bench.model import ModelBenchResult
from flopcalc.predict.graph import GraphPrediction, OpCall, OpTime
from flopcalc.render.bench_model_html import phase_bars, render_model_bench_html, step_points, time_scale
from flopcalc.spec import ModelSpec
from tests._cli import html_page
from tests.test_render_html import EXAMPLES, open_in_chromium, page_data

pytest.importorskip("bokeh", reason="the html extra (Bokeh) is not installed")


def _op(phase: str, seconds: float) -> OpTime:
    return OpTime(OpCall("mm", phase, "0", (), 0.0, 0.0), seconds, "matmul")


def saved_result(predicted: bool = True) -> ModelBenchResult:
    """A model run as a result object: five steps, and a prediction of 1 + 2 + 0.5 ms (two forward ops)."""
    prediction = GraphPrediction(
        (_op("forward", 0.0004), _op("forward", 0.0006), _op("backward", 0.002), _op("optimizer", 0.0005)),
        "fp32",
        "test cpu",
    )
    return ModelBenchResult(
        DeviceInfo("cpu", "test cpu", "2"),
        ModelSpec("net.py"),
        8,
        "fp32",
        "adamw",
        1_000_000,
        2_000_000,
        (0.004, 0.0042, 0.0039, 0.005, 0.0041),
        2,
        1e12,
        "estimate: test",
        prediction=prediction if predicted else None,
        prediction_source="quick profile measured in this run",
    )


def test_one_point_per_timed_step_and_the_phases_add_up_to_the_prediction():
    result = saved_result()
    assert step_points(result) == {"step": [1, 2, 3, 4, 5], "seconds": [0.004, 0.0042, 0.0039, 0.005, 0.0041]}
    bars = phase_bars(result)
    assert bars["phase"] == ["forward", "backward", "optimizer"]
    assert bars["seconds"] == pytest.approx([0.001, 0.002, 0.0005])
    assert bars["right"][-1] == pytest.approx(result.predicted_step_seconds) == pytest.approx(0.0035)
    assert bars["left"][1:] == bars["right"][:-1]  # adjacent segments
    assert phase_bars(saved_result(predicted=False))["phase"] == []


def test_the_time_axis_takes_the_unit_that_puts_the_step_between_1_and_1000():
    assert time_scale(2.5) == (1.0, "s")
    assert time_scale(0.0041) == (1e3, "ms")
    assert time_scale(3e-5) == (1e6, "us")


def test_the_page_carries_the_results_json_and_the_prediction_error():
    result = saved_result()
    text = render_model_bench_html(result, "flopcalc bench net.py --format html", result.to_dict())
    assert page_data(text) == json.loads(json.dumps(result.to_dict()))
    assert "5 timed steps after 2 warm-up steps; measured +17.1% against the prediction." in text  # 4.1 / 3.5 - 1
    assert "The predicted step by phase against the measured median" in text
    unpredicted = saved_result(predicted=False)
    text = render_model_bench_html(unpredicted, "flopcalc bench net.py", unpredicted.to_dict())
    assert "no prediction." in text and "by phase" not in text


def test_a_tiny_models_page_opens_offline_in_chromium_with_a_point_per_step(tmp_path):
    out = tmp_path / "bench.html"
    model = f"{EXAMPLES / 'mlp.py'}:build"
    data = page_data(html_page(out, "bench", model, "--device", "cpu", "--seconds", "1"))
    errors, rows = open_in_chromium(out, tmp_path / "bench.png")
    assert errors == []
    assert rows["steps"] == [data["steps"]]
    assert rows["median"] == [2]
    if data["predicted_step_seconds"] is not None:
        assert rows["predicted"] == [2] and rows["phases"] == [3]
    from PIL import Image

    image = Image.open(tmp_path / "bench.png").convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 20  # drawn, not blank
