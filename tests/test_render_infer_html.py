"""`infer --format html`: the roofline's points, the phases, the batch curves and the memory bars against the
arithmetic of a Linear and of examples/decoder.py, the page's data against `--format json`, and the page in
headless Chromium."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from flopcalc.infer import infer
from flopcalc.render.infer_html import batch_curves, memory_bars, phase_points, roof, roofline_points
from flopcalc.spec import ModelSpec
from tests._cli import html_page, invoke_json, refused_html
from tests.test_render_html import open_in_chromium, page_data

pytest.importorskip("bokeh", reason="the html extra (Bokeh) is not installed")

A100_PEAK_BF16, A100_BANDWIDTH = 312e12, 2039e9
N = 1024


def linear_model(tmp_path: Path) -> str:
    path = tmp_path / "linear.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import torch
            from torch import nn

            def build():
                return nn.Linear({N}, {N}, bias=False)

            def example_inputs():
                return (torch.randn(1, {N}),)
            """
        )
    )
    return f"{path}:build"


def test_a_linears_point_at_each_batch_is_its_flops_per_byte_on_the_roof(tmp_path):
    result = infer(ModelSpec(linear_model(tmp_path)), gpu="A100-SXM4-80GB", batch_sizes="1,512")
    points = roofline_points(result)
    assert points["batch"] == [1, 512] and points["name"] == ["(model)", "(model)"]
    for b, intensity, rate, bound in zip(points["batch"], points["intensity"], points["flops_per_s"], points["bound"]):
        flops, moved = 2 * b * N * N, 2 * (N * N + 2 * b * N)  # bf16 weights, input and output
        assert math.isclose(intensity, flops / moved, rel_tol=1e-12)
        # a roofline layer runs at the roof: min(peak, bandwidth x intensity)
        assert math.isclose(rate, min(A100_PEAK_BF16, A100_BANDWIDTH * flops / moved), rel_tol=1e-12)
        assert bound == ("compute" if flops / A100_PEAK_BF16 >= moved / A100_BANDWIDTH else "memory")
    assert points["bound"] == ["memory", "compute"]
    assert phase_points(result) == {"phase": [], "intensity": [], "flops_per_s": [], "bound": []}


def test_the_roof_bends_at_the_ridge_from_the_bandwidth_to_the_peak(tmp_path):
    result = infer(ModelSpec(linear_model(tmp_path)), gpu="A100-SXM4-80GB", batch_sizes="1")
    ridge = A100_PEAK_BF16 / A100_BANDWIDTH
    line = roof(result, 0.5, 1000.0)
    assert line["intensity"] == [0.5, ridge, 1000.0]
    assert line["flops_per_s"] == [A100_BANDWIDTH * 0.5, A100_PEAK_BF16, A100_PEAK_BF16]
    assert roof(result, 0.5, 2.0)["intensity"] == [0.5, 2.0]  # the ridge outside the range: no bend


def test_batch_curves_and_memory_bars_of_a_forward(tmp_path):
    result = infer(ModelSpec(linear_model(tmp_path)), gpu="A100-SXM4-80GB", batch_sizes="1,512")
    curves = batch_curves(result)
    assert curves["batch"] == [1, 512]
    assert curves["latency_s"] == [b.latency_s for b in result.batches]
    assert curves["throughput_per_s"] == [b / b_.latency_s for b, b_ in zip((1, 512), result.batches)]
    assert curves["ttft_s"] == curves["time_per_token_s"] == []
    bars = memory_bars(result)
    assert bars["weights"] == [2 * N * N] * 2 and bars["kv_cache"] == [0.0, 0.0]
    assert bars["activations"] == [2 * b * N * 2 for b in (1, 512)]  # the layer's input and output
    assert bars["fits"] == ["yes", "yes"]


def test_a_generations_phases_and_kv_cache(examples):
    prompt, generate = 6, 4
    result = infer(
        ModelSpec(f"{examples / 'decoder.py'}:build"),
        gpu="H100-SXM",
        precision="bf16",
        prompt=prompt,
        generate=generate,
        batch_sizes="1,4",
    )
    phases = phase_points(result)
    pre, dec = result.prefill, result.decode
    assert phases["phase"] == [f"prefill ({prompt} tokens)", f"decode (mean of {generate} steps)"]
    assert phases["intensity"][0] == pre.flops / pre.bytes and phases["flops_per_s"][0] == pre.flops / pre.time_s
    (_, first), (_, last) = dec.bytes_per_step_at_context
    assert phases["intensity"][1] == dec.flops_total / generate / ((first + last) / 2)
    assert phases["flops_per_s"][1] == dec.flops_total / dec.time_total_s
    bars = memory_bars(result)
    for i, batch in enumerate(result.batches):
        assert bars["kv_cache"][i] == batch.kv_cache_bytes == batch.batch_size * 2 * 2 * 64 * 2 * (prompt + generate)
        assert bars["weights"][i] + bars["kv_cache"][i] + bars["activations"][i] == batch.memory_bytes
    curves = batch_curves(result)
    assert curves["throughput_per_s"] == [b.tokens_per_s for b in result.batches]
    assert curves["ttft_s"] == [b.ttft_s for b in result.batches]


def infer_page(tmp_path: Path, model: str, *extra: str) -> tuple[Path, str]:
    out = tmp_path / "infer.html"
    return out, html_page(out, "infer", model, *extra)


def test_the_page_carries_the_json_figures(tmp_path, examples):
    args = [f"{examples / 'decoder.py'}:build", "--gpu", "H100-SXM", "--prompt", "6", "--generate", "4", "-b", "1,4"]
    _, text = infer_page(tmp_path, *args)
    assert page_data(text) == invoke_json("infer", *args)


def test_without_bokeh_infer_html_is_one_line_and_exit_2(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "bokeh", None)
    result = refused_html(tmp_path / "infer.html", "infer", linear_model(tmp_path), "--gpu", "A100-SXM4-80GB")
    assert "flopcalc[html]" in result.output and "Traceback" not in result.output


def test_the_infer_report_opens_offline_in_chromium_and_draws_every_layer_at_every_batch(tmp_path, examples):
    args = [f"{examples / 'decoder.py'}:build", "--gpu", "H100-SXM", "--prompt", "6", "--generate", "4", "-b", "1,4,16"]
    out, text = infer_page(tmp_path, *args)
    data = page_data(text)
    errors, rows = open_in_chromium(out, tmp_path / "infer.png")
    assert errors == []
    placed = [layer for layer in data["layers"] if layer["flops"] and layer["bytes"]]
    assert placed and rows["layers"] == [len(placed)] * len(data["batches"])  # one series per batch size
    assert rows["phases"] == [2]  # prefill and decode
    assert rows["latency"] == rows["throughput"] == [len(data["batches"])]
    assert rows["memory"] == [len(data["batches"])] * 3  # weights, KV cache, activations stacked
    from PIL import Image

    image = Image.open(tmp_path / "infer.png").convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 20  # drawn, not blank
