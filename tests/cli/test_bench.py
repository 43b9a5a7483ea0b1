"""`flopcalc bench` through typer's CliRunner: the JSON contract, --save, and one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from flopcalc.bench.calibration import load_calibration
from flopcalc.cli import app

runner = CliRunner()

MATMUL_KEYS = {"device", "device_name", "torch_version", "results", "calibration_file"}
RESULT_KEYS = {"precision", "best_tflops", "median_tflops", "spread_pct", "shape", "peak_tflops", "fraction_of_peak"}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result, text):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("flopcalc: error:") and text in lines[0], result.output


def test_json_contract_and_save_round_trip(tmp_path):
    path = tmp_path / "cal.yaml"
    result = invoke("bench", "--device", "cpu", "--precision", "fp32", "--seconds", 2, "--format", "json",
                    "--save", "--calibration", path)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # no progress bar or notes in the JSON output
    assert MATMUL_KEYS <= set(data)
    assert data["device"] == "cpu" and data["calibration_file"] == str(path)
    (fp32,) = data["results"]
    assert RESULT_KEYS <= set(fp32)
    assert fp32["precision"] == "fp32" and 0 < fp32["median_tflops"] <= fp32["best_tflops"]
    assert len(fp32["shape"]) == 3
    calibration = load_calibration(path)
    assert calibration.devices[data["device_name"]].matmul.tflops == {"fp32": fp32["median_tflops"]}


@pytest.mark.parametrize(
    "args, text",
    [
        (["--device", "gpu"], "unknown device 'gpu'"),
        (["--device", "cpu", "--precision", "fp64"], "unknown precision 'fp64'"),
        (["--device", "cpu", "--precision", "fp8", "--seconds", "1"], "none of the precisions"),
        (["--device", "cpu", "--seconds", "-1"], "--seconds must be a positive number"),
    ],
)
def test_bad_options_exit_2_with_one_line(args, text):
    _one_line_error(invoke("bench", *args), text)


def test_absent_cuda_is_a_one_line_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _one_line_error(invoke("bench", "--device", "cuda"), "no CUDA/ROCm device")


def test_model_bench_json_and_save(examples, tmp_path):
    path = tmp_path / "cal.yaml"
    result = invoke("bench", f"{examples / 'mlp.py'}:build", "--input", "8x784", "--device", "cpu", "--seconds", 1,
                    "--format", "json", "--save", "--calibration", path)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["flops_per_step"] == data["forward_flops_per_step"] + data["backward_flops_per_step"]
    assert data["achieved_tflops"] == pytest.approx(data["flops_per_step"] / data["step_seconds"] / 1e12)
    model = load_calibration(path).devices[data["device_name"]].models[data["model_key"]]
    assert model.achieved_tflops == pytest.approx(data["achieved_tflops"])


def test_model_bench_table_and_errors(examples, tmp_path):
    result = invoke("bench", f"{examples / 'mlp.py'}:build", "--input", "8x784", "--device", "cpu", "--seconds", 0.5)
    assert result.exit_code == 0, result.output
    for text in ("FLOPs per step", "achieved", "MFU (of peak)"):
        assert text in result.output
    _one_line_error(invoke("bench", tmp_path / "missing.py", "--device", "cpu"), "missing.py")
    _one_line_error(
        invoke("bench", f"{examples / 'mlp.py'}:build", "--device", "cpu", "--calibration", tmp_path / "none.yaml"),
        "no calibration file",
    )
