"""`flopcalc bench` through typer's CliRunner: the JSON contract, --save, and one-line errors."""

import json

import pytest

from flopcalc.calibration import load_calibration
from tests._cli import LAUNCHER_VARIABLES, assert_one_line_error, invoke

MATMUL_KEYS = {"device", "device_name", "torch_version", "results", "calibration_file"}
RESULT_KEYS = {"precision", "best_tflops", "median_tflops", "spread_pct", "shape", "peak_tflops", "fraction_of_peak"}


def bench_and_save(calibration, *args):
    """`flopcalc bench ARGS` as JSON, saved to the `calibration` file however wide its spread."""
    return invoke("bench", *args, "--format", "json", "--save", "--force", "--calibration", calibration)


def test_json_contract_and_save_round_trip(tmp_path):
    path = tmp_path / "cal.yaml"
    result = bench_and_save(path, "--device", "cpu", "--precision", "fp32", "--seconds", 2)
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
        (["--device", "cpu", "--optimizer", "sgd"], "--optimizer needs a MODEL"),
    ],
)
def test_bad_options_exit_2_with_one_line(args, text):
    assert_one_line_error(invoke("bench", *args), text)


def test_absent_cuda_is_a_one_line_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_one_line_error(invoke("bench", "--device", "cuda"), "no CUDA/ROCm device")


def test_model_bench_json_and_save(examples, tmp_path):
    path = tmp_path / "cal.yaml"
    result = bench_and_save(path, f"{examples / 'mlp.py'}:build", "--input", "8x784", "--device", "cpu", "--seconds", 1)
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
    assert_one_line_error(invoke("bench", tmp_path / "missing.py", "--device", "cpu"), "missing.py")
    assert_one_line_error(
        invoke("bench", f"{examples / 'mlp.py'}:build", "--device", "cpu", "--calibration", tmp_path / "none.yaml"),
        "no calibration file",
    )


def _saved_calibration(tmp_path):
    """A calibration as `bench --save` writes it, for an H100 (by its torch name) and this CPU's model run."""
    from flopcalc.calibration import MatmulCalibration, save_device_entry

    path = tmp_path / "cal.yaml"
    save_device_entry(
        path,
        "NVIDIA H100 80GB HBM3",
        "cuda",
        matmul=MatmulCalibration(
            tflops={"bf16": 700.0, "fp32": 50.0},
            measured_at="2026-11-28T12:00:00+00:00",
            torch_version="x",
            seconds=25.0,
        ),
    )
    return path


def test_convert_with_a_calibration_uses_measured_throughput(tmp_path):
    path = _saved_calibration(tmp_path)
    result = invoke("convert", "1e18 flop", "--calibration", path, "--utilization", "0.5", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["peak_flops"] == 700e12 and data["precision"] == "bf16" and data["gpu"] == "NVIDIA H100 80GB HBM3"
    assert data["gpu_hours"] == pytest.approx(1e18 / (700e12 * 0.5) / 3600)
    assert "utilization is of measured" in data["peak_origin"]
    table = invoke("convert", "1e18 flop", "--calibration", path, "--gpu", "H100-SXM", "--precision", "fp32")
    assert table.exit_code == 0, table.output
    assert "measured by flopcalc bench" in table.stdout and "utilization is of measured" in table.stdout


def test_bench_save_round_trips_through_convert(tmp_path, monkeypatch):
    """bench --save to the default path (here $FLOPCALC_CALIBRATION), then convert --calibration auto."""
    monkeypatch.setenv("FLOPCALC_CALIBRATION", str(tmp_path / "auto.yaml"))
    bench = invoke(
        "bench", "--device", "cpu", "--precision", "fp32", "--seconds", 1, "--format", "json", "--save", "--force"
    )
    assert bench.exit_code == 0, bench.output
    measured = json.loads(bench.stdout)["results"][0]["median_tflops"]
    result = invoke("convert", "1e15 flop", "--calibration", "auto", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["peak_flops"] == pytest.approx(measured * 1e12) and data["precision"] == "fp32"


def test_train_model_uses_the_benchmarked_utilization(examples, tmp_path):
    from flopcalc.calibration import MatmulCalibration, save_device_entry

    path = tmp_path / "cal.yaml"
    model = f"{examples / 'mlp.py'}:build"
    bench = invoke(
        "bench",
        model,
        "--input",
        "8x784",
        "--device",
        "cpu",
        "--seconds",
        0.5,
        "--save",
        "--force",
        "--calibration",
        path,
        "--format",
        "json",
    )
    assert bench.exit_code == 0, bench.output
    measured = json.loads(bench.stdout)
    achieved = measured["achieved_tflops"]
    # a fixed matmul figure, so the model's share of it does not depend on how loaded the machine was
    save_device_entry(
        path,
        measured["device_name"],
        "cpu",
        matmul=MatmulCalibration(
            tflops={"fp32": 100.0}, measured_at="2026-11-28T12:00:00+00:00", torch_version="x", seconds=1.0
        ),
    )
    result = invoke("train", model, "--input", "8x784", "--examples", 1000, "--calibration", path, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["sustained_flops_per_gpu"] == pytest.approx(achieved * 1e12)  # measured x (achieved / measured)
    assert any("of measured matmul throughput" in note for note in data["notes"])
    assert_one_line_error(
        invoke("train", model, "--input", "8x784", "--examples", 1000, "--calibration", path, "-u", "0.5"),
        "conflicts with the measured utilisation",
    )


def test_convert_without_gpu_or_calibration_is_an_error(tmp_path):
    assert_one_line_error(invoke("convert", "1 gpu-days"), "--gpu NAME (or --calibration")  # FLOP alone needs no GPU
    assert_one_line_error(
        invoke("convert", "1e18 flop", "--calibration", tmp_path / "none.yaml"), "no calibration file"
    )


# --- bench --distributed -------------------------------------------------------------------------------


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCH_CPP_LOG_LEVEL", "FATAL")  # what the command sets for its ranks, kept to this test


def test_distributed_two_ranks_json_and_save(no_launcher, tmp_path):
    """Two ranks through torch's launcher API: the JSON contract, busbw by nccl-tests' formulas, --save read back."""
    path = tmp_path / "cal.yaml"
    result = invoke(
        "bench",
        "--distributed",
        "--nproc",
        2,
        "--device",
        "cpu",
        "--seconds",
        1,
        "--max-bytes",
        "16K",
        "--timeout",
        60,
        "--format",
        "json",
        "--save",
        "--calibration",
        path,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["schema_version"], data["world_size"], data["nodes"], data["backend"], data["device"]) == (
        1,
        2,
        1,
        "gloo",
        "cpu",
    )
    assert [rank["rank"] for rank in data["per_rank"]] == [0, 1]
    assert [(c["op"], c["bytes"]) for c in data["collectives"]] == [
        (op, size) for op in ("all_reduce", "all_gather", "reduce_scatter") for size in (4096, 16384)
    ]
    for item in data["collectives"] + data["p2p"]["results"]:
        n, size, seconds = item["ranks"], item["bytes"], item["time_s"]
        assert n == 2 and item["scope"] == "world" and seconds > 0
        algbw = size / seconds / 1e9
        factor = {
            "all_reduce": 2 * (n - 1) / n,
            "all_gather": (n - 1) / n,
            "reduce_scatter": (n - 1) / n,
            "sendrecv": 1.0,
        }[item["op"]]
        assert item["algbw_gbps"] == pytest.approx(algbw) and item["busbw_gbps"] == pytest.approx(algbw * factor)
    calibration = load_calibration(path)
    assert calibration.to_yaml() == path.read_text()
    fleet = calibration.devices[data["device_name"]].fleet["gloo 1x2"]
    assert fleet.busbw_gbps == data["headline_busbw_gbps"] and fleet.world_size == 2
    assert data["calibration_file"] == str(path)


@pytest.mark.parametrize(
    "args, text",
    [
        (["--distributed"], "--distributed needs a launcher"),
        (["--distributed", "--nproc", "1"], "--nproc must be at least 2"),
        (["--nproc", "2"], "--nproc needs --distributed"),
        (["--timeout", "5"], "--timeout applies to --distributed runs"),
        (["--distributed", "--full"], "takes no MODEL and no --full"),
        (["--distributed", "--nproc", "2", "--max-bytes", "lots"], "--max-bytes 'lots' is not a size in bytes"),
        (["--distributed", "--nproc", "2", "--backend", "mpi"], "unknown backend 'mpi'"),
        (["--distributed", "--nproc", "2", "--decoder-seq-len", "8"], "--decoder-seq-len needs a MODEL"),
        (["--distributed", "--nproc", "2", "--optimizer", "sgd"], "--optimizer needs a MODEL"),
        (["--distributed", "--nproc", "2", "--catalog", "gpus.yaml"], "--catalog does not apply to --distributed"),
    ],
)
def test_distributed_option_errors(no_launcher, args, text):
    assert_one_line_error(invoke("bench", *args), text)


def test_distributed_world_size_one_and_nproc_under_a_launcher(no_launcher, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert_one_line_error(invoke("bench", "--distributed"), "needs at least 2 ranks; the launcher started WORLD_SIZE=1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert_one_line_error(invoke("bench", "--distributed", "--nproc", "2"), "a launcher already started this one")


def test_the_sweep_draws_its_sparkline_on_a_terminal_and_never_into_a_file(tmp_path):
    """stdout a pseudo-terminal: the sparkline under the table; --output FILE from that terminal: none in it."""
    from tests._terminal_helpers import stdout_on_terminal

    arguments = ["bench", "--device", "cpu", "--precision", "fp32", "--seconds", "1"]
    code, seen = stdout_on_terminal(arguments, tmp_path)
    assert code == 0 and "median TFLOPS over the square sizes" in seen
    code, _ = stdout_on_terminal([*arguments, "--output", "sweep.txt"], tmp_path)
    written = (tmp_path / "sweep.txt").read_text()
    assert code == 0 and "TFLOPS" in written and "median TFLOPS over the square sizes" not in written
