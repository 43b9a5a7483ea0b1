"""`flopcalc optimal` through CliRunner: formats, the GPU run, one-line errors."""

import json

import pytest

from tests._cli import invoke


def test_json_has_each_fit_its_coefficients_and_source():
    result = invoke("optimal", "--compute", "5.76e23", "--format", "json")
    assert result.exit_code == 0, result.output
    fits = json.loads(result.output)["fits"]
    assert fits[0]["coefficients"] == {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    assert fits[1]["coefficients"]["B"] == 2085.43 and "2404.10102" in fits[1]["source"]
    assert fits[2]["tokens_per_param"] == 20.0


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_table_and_markdown_show_fits_sources_and_scope(fmt):
    result = invoke("optimal", "--compute", "5.76e23 flop", "--format", fmt)
    assert result.exit_code == 0, result.output
    for text in (
        "Hoffmann et al. 2022 (approach 3)",
        "Besiroglu",
        "20 tokens per parameter",
        "alpha=0.3478",
        "one data set",
    ):
        assert text in result.output.replace("\n", " ") or text in result.output


def test_with_a_gpu_each_run_has_its_time_and_cost():
    # 8.1e21 FLOP = 2500 V100-days at 0.3 x 125e12 (fp16): 60,000 GPU-hours, on 10 GPUs 6,000 h, cost 2 x 60,000
    result = invoke(
        "optimal",
        "--compute",
        "93.75 pf-days",
        "--gpu",
        "V100-SXM2",
        "--precision",
        "fp16",
        "--num-gpus",
        "10",
        "--price-per-gpu-hour",
        "2",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    for fit in json.loads(result.output)["fits"]:
        assert fit["run"]["gpu_hours"] == pytest.approx(60000, rel=1e-12)
        assert fit["run"]["wall_clock_hours"] == pytest.approx(6000, rel=1e-12)
        assert fit["run"]["cost"] == pytest.approx(120000, rel=1e-12)


def test_gpu_days_with_the_gpu_in_the_unit():
    result = invoke("optimal", "--compute", "2500 V100-days", "--precision", "fp16", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["value"] == pytest.approx(8.1e21, rel=1e-12)  # the V100 note is on stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--compute=-5"],
        ["--compute", "1e23", "--params", "1e9"],
        ["--compute", "2500 gpu-days"],
        ["--tokens", "0"],
        ["--params", "1e9", "--format", "csv"],
        ["--params", "1e9", "--num-gpus", "4"],
    ],
)
def test_bad_input_is_one_line_exit_2(args):
    result = invoke("optimal", *args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
