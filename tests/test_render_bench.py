"""Rendering bench results: the table, raw-number CSV and markdown, from a hand-made result."""

import csv
import io
import json
from dataclasses import replace

from flopcalc.bench.hardware import CpuInfo, DeviceInfo
from flopcalc.bench.matmul import MatmulBenchResult, PrecisionResult, ShapeTiming
from flopcalc.render.bench import render_fleet, render_matmul
from tests._fleet_helpers import two_node_result

CPU = CpuInfo("Test CPU", 2, 1, 2600.0, "test", frozenset({"avx512f"}))


def _result():
    timing = ShapeTiming((1024, 2048, 512), "llm", 4, (0.30, 0.32, 0.31))
    return MatmulBenchResult(
        info=DeviceInfo("cpu", "Test CPU", "2.13.0", threads=2, cpu=CPU),
        results=(PrecisionResult("fp32", (timing,), 0.4e12, "estimate: test"),),
        seconds_budget=10.0,
        seconds_used=9.9,
        full=False,
        notes=("bf16 skipped: test",),
        warnings=("busy",),
    )


def test_table_marks_the_cpu_peak_as_an_estimate_and_lists_notes():
    text = render_matmul(_result(), "table")
    for expected in (
        "0.31",
        "1024 x 2048 x 512",
        "0.4 (est.)",
        "77.5%",
        "note: bf16 skipped: test",
        "warning: busy",
        "fp32 peak: estimate: test",
    ):
        assert expected in text, expected


def test_a_cpu_datasheet_peak_is_not_marked_as_an_estimate():
    result = _result()
    label = "datasheet T1: 2 cores x 100 GHz (base) x 2 FLOP/cycle"
    sheet = PrecisionResult("fp32", result.results[0].timings, 0.4e12, label)
    text = render_matmul(replace(result, results=(sheet,)), "table")
    assert "(est.)" not in text and "fp32 peak: datasheet T1: 2 cores" in text


def test_csv_has_raw_numbers():
    rows = list(csv.DictReader(io.StringIO(render_matmul(_result(), "csv"))))
    assert rows == [
        {
            "precision": "fp32",
            "median_tflops": "0.31",
            "best_tflops": "0.32",
            "spread_pct": str(100 * (0.32 - 0.30) / 0.31),
            "m": "1024",
            "n": "2048",
            "k": "512",
            "peak_tflops": "0.4",
            "fraction_of_peak": str(0.31e12 / 0.4e12),
        }
    ]


def test_markdown_and_json():
    markdown = render_matmul(_result(), "markdown")
    assert "| fp32 | 0.31 | 0.32 |" in markdown
    data = json.loads(render_matmul(_result(), "json"))
    assert data["results"][0]["fraction_of_peak"] == 0.31e12 / 0.4e12
    assert data["cpu_flags"] == ["avx512f"] and data["threads"] == 2


def test_render_fleet_formats():
    result = two_node_result()
    table = render_fleet(result, "table")
    assert "Fleet of 16 ranks (2 nodes x 8) of NVIDIA H100 80GB HBM3 (nccl, cuda" in table
    assert "slowest: rank 11 on host gpu-1" in table and "8 x 2 groups" in table
    assert "busbw inter (largest message, 1 GiB): all_reduce 53.69" in table
    csv = render_fleet(result, "csv").splitlines()
    assert csv[0] == "scope,op,ranks,groups,bytes,iterations,time_s,algbw_gbps,busbw_gbps"
    assert len(csv) == 1 + 18 + 1 and csv[-1].startswith("world,sendrecv,16,1,1073741824,5,0.05,")
    assert json.loads(render_fleet(result, "json"))["world_size"] == 16
    assert "| scope | collective |" in render_fleet(result, "markdown")


def _ladder_result():
    """fp32 squares 256 .. 1024 at 1, 2, 4, 8 TFLOPS, given out of order, and one LLM-like shape; bf16 two sizes."""
    fp32 = tuple(ShapeTiming((s, s, s), "square", 4, (rate,)) for s, rate in ((512, 2.0), (256, 1.0), (1024, 8.0)))
    fp32 += (ShapeTiming((768, 768, 768), "square", 4, (4.0,)), ShapeTiming((1024, 2048, 512), "llm", 4, (9.0,)))
    bf16 = tuple(ShapeTiming((s, s, s), "square", 4, (rate,)) for s, rate in ((256, 1.0), (512, 5.0)))
    return replace(
        _result(),
        results=(PrecisionResult("fp32", fp32, 10e12, "test"), PrecisionResult("bf16", bf16, 20e12, "test")),
    )


def test_on_a_terminal_a_sparkline_shows_tflops_over_the_square_sizes_smallest_first():
    text = render_matmul(_ladder_result(), "table", terminal=True)
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    # 1, 2, 4, 8 of the best 8: 7/8, 7/4, 7/2 and 7 steps above the lowest level, rounded; the LLM shape left out
    assert lines["fp32"].split()[1] == "▂▃▅█" and "256 .. 1024: 1 .. 8 TFLOPS" in lines["fp32"]
    assert lines["bf16"].split()[1] == "▂█"  # its own scale: 1 and 5 of 5, 1.4 and 7 steps
    assert text.index("median TFLOPS over the square sizes") < text.index("fp32 peak: test")


def test_piped_or_in_another_format_the_sweep_has_no_sparkline():
    for fmt in ("table", "markdown", "csv"):
        assert "▂" not in render_matmul(_ladder_result(), fmt) and "\x1b[" not in render_matmul(_ladder_result(), fmt)
    assert render_matmul(_ladder_result(), "markdown", terminal=True) == render_matmul(_ladder_result(), "markdown")
