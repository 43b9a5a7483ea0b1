"""`bench --format html` (the matmul sweep): one point per precision and shape at 2 m n k FLOPs, the peaks as
lines, the page's data against the result's JSON, and a tiny sweep's page in headless Chromium."""

from __future__ import annotations

import json
import re

import pytest

from flopcalc.bench.hardware import DeviceInfo
from flopcalc.bench.matmul import MatmulBenchResult, PrecisionResult
from flopcalc.bench.sweep import ShapeTiming
from flopcalc.cli import app
from flopcalc.render.bench_html import render_matmul_html, shape_points
from tests._cli import runner
from tests.test_render_html import open_in_chromium, page_data

pytest.importorskip("bokeh", reason="the html extra (Bokeh) is not installed")


def saved_result() -> MatmulBenchResult:
    """A sweep as a result object: two precisions, three and two shapes, TFLOPS samples written out."""
    fp32 = PrecisionResult(
        "fp32",
        (
            ShapeTiming((256, 256, 256), "square", 4, (0.5, 0.7, 0.6)),
            ShapeTiming((1024, 1024, 1024), "square", 2, (1.5, 1.7, 1.6)),
            ShapeTiming((2048, 512, 4096), "llm", 1, (1.8, 2.0, 1.9)),
        ),
        3.2e12,
        "estimate: test",
    )
    bf16 = PrecisionResult(
        "bf16",
        (
            ShapeTiming((256, 256, 256), "square", 4, (1.0, 1.2)),
            ShapeTiming((1024, 1024, 1024), "square", 2, (3.0, 3.4)),
        ),
        None,
        "no peak known",
    )
    return MatmulBenchResult(DeviceInfo("cpu", "test cpu", "2"), (fp32, bf16), 10.0, 9.5, False)


def test_one_point_per_precision_and_shape_at_its_flops_per_call():
    points = shape_points(saved_result())
    assert points["precision"] == ["fp32"] * 3 + ["bf16"] * 2
    assert points["flops"] == [2 * 256**3, 2 * 1024**3, 2 * 2048 * 512 * 4096, 2 * 256**3, 2 * 1024**3]
    assert points["median"] == [0.6, 1.6, 1.9, 1.1, 3.2]  # the median of each shape's samples
    assert points["best"] == [0.7, 1.7, 2.0, 1.2, 3.4]
    assert points["shape"][2] == "2048 x 512 x 4096" and points["kind"][2] == "llm"


def test_the_page_carries_the_results_json_and_its_headline():
    result = saved_result()
    text = render_matmul_html(result, "flopcalc bench --format html", result.to_dict())
    assert page_data(text) == json.loads(json.dumps(result.to_dict()))
    assert "1.9 TFLOPS at 2048 x 512 x 4096, 59.4% of the peak" in text  # 1.9 / 3.2
    assert "3.2 TFLOPS at 1024 x 1024 x 1024; peak no peak known" in text


def test_a_tiny_sweeps_page_opens_offline_in_chromium_with_a_point_per_shape(tmp_path):
    out = tmp_path / "bench.html"
    result = runner.invoke(
        app,
        ["bench", "--device", "cpu", "--precision", "fp32", "--seconds", "1", "--format", "html", "--output", str(out)],
    )
    assert result.exit_code == 0, result.output
    data = page_data(out.read_text())
    assert re.search(r'id="flopcalc-command">flopcalc ', out.read_text())
    errors, rows = open_in_chromium(out, tmp_path / "bench.png")
    assert errors == []
    assert rows["shapes"] == [len(item["shapes"]) for item in data["results"]]
    assert rows["peak"] == [2] * sum(1 for item in data["results"] if item["peak_tflops"])
    from PIL import Image

    image = Image.open(tmp_path / "bench.png").convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 20  # drawn, not blank
