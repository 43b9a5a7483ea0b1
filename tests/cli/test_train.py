"""`flopcalc train` through CliRunner: 6ND, forward x3, a counted model, GPU time/energy/cost, bad input."""

import json

import pytest

from flopcalc.cli import app
from tests._cli import GPT3_RUN, invoke, invoke_json, runner
from tests._hf_configs import TINY_GPT2, write_config

GPU_KEYS = ("gpu_hours", "gpu_days", "wall_clock_hours", "energy_kwh")


def run_json(*args):
    return invoke_json("train", *args)


def test_gpt3_6nd_on_v100s():
    data = run_json(
        *GPT3_RUN,
        "--num-gpus",
        "1024",
        "--price-per-gpu-hour",
        "1.5",
        "--pue",
        "1.1",
    )
    assert data["training_flops"] == 3.15e23
    assert data["petaflop_days"] == pytest.approx(3.15e23 / 8.64e19, rel=1e-15)
    gpu_hours = 3.15e23 / (125e12 * 0.3 * 3600)
    assert data["gpu_hours"] == pytest.approx(gpu_hours, rel=1e-15)
    assert data["wall_clock_hours"] == pytest.approx(gpu_hours / 1024, rel=1e-15)
    assert data["energy_kwh"] == pytest.approx(300 * gpu_hours * 1.1 / 1000, rel=1e-15)
    assert data["cost"] == pytest.approx(1.5 * gpu_hours, rel=1e-15)


def test_forward_per_example_assumes_backward_2x_and_says_so():
    result = invoke("train", "--flops-per-example", "4.1G", "--examples", "1.28M", "--epochs", "90")
    assert result.exit_code == 0, result.output
    assert "backward assumed 2x forward" in result.output
    data = run_json("--flops-per-example", "4.1G", "--examples", "1.28M", "--epochs", "90")
    assert data["backward_flops_per_example"] == 8.2e9
    assert data["training_flops"] == pytest.approx(3 * 4.1e9 * 1.28e6 * 90, rel=1e-15)
    assert not any(key in data for key in GPU_KEYS)


def test_counted_model_divides_by_the_batch(examples):
    """Per example = counted (forward + backward) / leading dimension of the first input."""
    model = f"{examples / 'mlp.py'}"
    from flopcalc.api import count

    report = count(model, inputs=["4x784"])
    data = run_json(model, "--input", "4x784", "--examples", "60000", "--epochs", "3", "--gpu", "T4")
    assert data["forward_flops_per_example"] == report.forward / 4
    assert data["backward_flops_per_example"] == report.backward / 4
    assert data["training_flops"] == (report.forward + report.backward) / 4 * 60000 * 3
    assert all(key in data for key in GPU_KEYS) and "cost" not in data


def test_table_shows_gpu_time_energy_and_throughput():
    result = invoke("train", "--params", "7e9", "--tokens", "1e12", "--gpu", "H100-SXM", "-n", "512")
    assert result.exit_code == 0, result.output
    for text in ("6ND", "GPU-hours", "wall clock", "energy", "TDP 700 W", "datasheet dense bf16", "512 GPUs"):
        assert text in result.output


def test_active_params_of_a_mixture_of_experts_for_6nd():
    """Mixtral-8x7B: 46.7B parameters, 12.9B active per token (2 of 8 experts); 6ND takes the active ones."""
    data = run_json("--active-params", "12.9G", "--tokens", "1T")
    assert data["method"] == "6ND" and data["training_flops"] == 6 * 12.9e9 * 1e12
    assert any("12.9 G active parameters" in note for note in data["notes"])


def test_train_of_a_mixture_of_experts_config_uses_its_counted_flops(moe_config):
    """`train MODEL` counts the routed experts (top-2 of 4), not 6 x all parameters."""
    from flopcalc.api import count

    report = count(str(moe_config), seq_len=8)
    data = run_json(moe_config, "--seq-len", "8", "--examples", "1000")
    assert data["method"] == "counted"
    assert data["training_flops"] == (report.forward + report.backward) * 1000
    assert any("top-2 of 4" in note for note in data["notes"])


def test_gpu_without_tdp_has_no_energy():
    data = run_json("--params", "1e9", "--tokens", "1e10", "--gpu", "TPU-v5e")
    assert data["energy_kwh"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "no training size given"),
        (["--params", "1e9"], "needs --params (or --active-params) and --tokens"),
        (["--active-params", "1e9"], "needs --params (or --active-params) and --tokens"),
        (["--params", "1e9", "--active-params", "1e9", "--tokens", "1e10"], "--params and --active-params exclude"),
        (["--params", "1e9", "--tokens", "1e10", "--flops-per-example", "1e9"], "exclude each other"),
        (["--flops-per-example", "1e9"], "needs --examples"),
        (["--flops-per-example", "-1e9", "--examples", "10"], "must be a finite number > 0"),
        (["--flops-per-example", "lots", "--examples", "10"], "is not a number"),
        (["--params", "1e9", "--tokens", "1e10", "--gpu", "Z9000"], "unknown GPU"),
        (["--params", "1e9", "--tokens", "1e10", "--gpu", "T4", "-u", "120%"], "utilization must be in (0, 1]"),
        (["--params", "1e9", "--tokens", "1e10", "--gpu", "T4", "--precision", "fp8"], "it has: fp32, fp16, int8"),
        (["--params", "1e9", "--tokens", "1e10", "--gpu", "T4", "--pue", "0.5"], "PUE must be"),
        (["--params", "1e9", "--tokens", "1e10", "--precision", "fp16"], "need --gpu"),
        (["--params", "1e9", "--tokens", "1e10", "--epochs", "2"], "do not apply"),
        (["--flops-per-example", "1e9", "--examples", "10", "--epochs", "0"], "number of epochs must be"),
        (["--flops-per-example", "1e9", "--examples", "10", "--epochs", "-0"], "number of epochs must be"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, message):
    target = tmp_path / "out.json"
    result = invoke("train", "--output", target, *args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not target.exists()


def test_missing_model_file_is_one_line(tmp_path):
    result = invoke("train", tmp_path / "nope.py", "--examples", "10")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


def test_utilization_given_with_a_calibrated_model_is_never_ignored(examples, tmp_path):
    """Regression: `--utilization 0.3` (the default's spelling) was taken for "not given" and silently replaced
    by the benchmarked model's measured utilisation, while `30%` was honoured. Given is given."""
    from flopcalc.calibration import MatmulCalibration, ModelCalibration, save_device_entry
    from flopcalc.spec import ModelSpec

    model = f"{examples / 'mlp.py'}:build"
    key = ModelSpec(model, inputs=["16x784"]).key()
    measured = ModelCalibration(
        model=model,
        inputs=("16x784",),
        batch_size=16,
        kwargs={},
        precision="fp32",
        optimizer="adamw",
        flops_per_step=1e9,
        step_seconds=0.01,
        achieved_tflops=0.05,
        measured_at="2026-11-28T12:00:00+00:00",
        torch_version="x",
        steps=10,
    )
    path = tmp_path / "cal.yaml"
    save_device_entry(
        path,
        "Test CPU",
        "cpu",
        models={key: measured},
        matmul=MatmulCalibration(
            tflops={"fp32": 0.25}, measured_at="2026-11-28T12:00:00+00:00", torch_version="x", seconds=10.0
        ),
    )
    common = (model, "--input", "16x784", "--examples", "1000", "--calibration", path)
    for spelling in ("0.3", "30%"):
        result = invoke("train", *common, "--utilization", spelling)
        assert result.exit_code == 2 and "conflicts with the measured utilisation" in result.output, result.output
    data = run_json(*common)
    assert data["utilization"] == pytest.approx(0.05 / 0.25)  # the measured 20%, as nothing else was given


def test_train_notes_the_regulatory_thresholds_a_total_crosses():
    result = runner.invoke(app, ["train", "--params", "70G", "--tokens", "15T", "--format", "json"])
    data = json.loads(result.output)  # 6 x 70e9 x 15e12 = 6.3e24: under every threshold
    assert "thresholds_crossed" not in data
    result = runner.invoke(app, ["train", "--params", "400G", "--tokens", "15T"])  # 3.6e25
    assert "above 1e+25 FLOP, the threshold of EU AI Act" in result.output.replace("\n", " ")
    assert "SB 53" not in result.output


def test_train_of_a_transformer_prints_the_conventions_side_by_side(tmp_path):
    pytest.importorskip("transformers")
    config = write_config(tmp_path, TINY_GPT2)
    result = runner.invoke(app, ["train", str(config), "--seq-len", "32", "--examples", "1000"])
    assert result.exit_code == 0, result.output
    for text in (
        "FLOP per token",
        "counted (flopcalc)",
        "6N + 12LHQT",
        "6N + 6LHQT",
        "6(N-E) + 12LHQT",
        "Kaplan",
        "MaxText",
        "torchtitan",
    ):
        assert text in result.output
    data = json.loads(
        runner.invoke(app, ["train", str(config), "--seq-len", "32", "--examples", "1000", "--format", "json"]).output
    )
    assert data["conventions"]["counted"]["flops_per_token"] == data["flops_per_example"] / 32


def test_a_bad_run_size_is_refused_before_the_model_is_built(tmp_path):
    built = tmp_path / "built.txt"
    source = tmp_path / "net.py"
    source.write_text(
        f"import torch\ndef build():\n    open({str(built)!r}, 'a').write('b')\n    return torch.nn.Linear(4, 4)\n"
    )
    result = invoke("train", source, "--input", "2x4", "--examples", "10", "--epochs", "0")
    assert result.exit_code == 2 and "number of epochs" in result.output
    assert not built.exists()


def _profile_file(tmp_path, keep):
    """The shipped profile file with only the `keep` device's profile."""
    from flopcalc.predict import default_profiles_text

    text = default_profiles_text()
    a100, h100 = text.index("  - device: A100"), text.index("  - device: H100-SXM")
    path = tmp_path / "profiles.yaml"
    path.write_text(text[:h100] if keep == "A100" else text[:a100] + text[h100:])
    return path


def test_train_prints_the_predicted_mfu_and_keeps_its_utilization_without_a_profile(examples):
    model = examples / "gpt.py"
    result = runner.invoke(
        app, ["train", str(model), "--input", "4x32:int64", "--examples", "1M", "--gpu", "A100-SXM4-80GB", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    notes = " ".join(data["notes"])
    assert "predicted MFU" in notes and "this estimate uses utilization 0.3" in notes
    assert "GEMM shapes: Megatron-LM's layout of a GPT layer with 2 layers, hidden 64, 4 heads" in notes
    why = runner.invoke(app, ["train", str(examples / "mlp.py"), "--examples", "1M", "--gpu", "A100-SXM4-80GB"])
    assert why.exit_code == 0 and "no predicted MFU: the model shows no transformer shape" in why.stdout


def test_train_with_a_device_profile_times_the_run_by_the_prediction(examples, tmp_path):
    """GPU-hours = training FLOPs / (peak x the predicted utilization), the utilization being the counted FLOPs of
    one batch over the predicted step x the peak."""
    from flopcalc.api import count_with_activations
    from flopcalc.plan import model_from_report, predicted_utilization, training_prediction
    from flopcalc.predict import load_profiles
    from flopcalc.spec import ModelSpec

    path = _profile_file(tmp_path, "A100")
    args = [
        "train",
        str(examples / "gpt.py"),
        "--input",
        "4x32:int64",
        "--examples",
        "1M",
        "--calibration",
        str(path),
        "-f",
        "json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    report, saved = count_with_activations(ModelSpec(str(examples / "gpt.py"), inputs=("4x32:int64",)))
    planned = model_from_report(report, saved, source="gpt.py")
    prediction, _ = training_prediction(planned, load_profiles(precision="bf16")["A100-SXM4-80GB"], 1)
    utilization = predicted_utilization(planned, prediction, 312e12)
    assert data["utilization"] == pytest.approx(utilization, rel=1e-12)
    assert data["gpu_hours"] == pytest.approx(data["training_flops"] / (312e12 * utilization) / 3600, rel=1e-9)
    refused = runner.invoke(app, [*args[:-2], "--gpu", "H100-SXM"])
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "profiles A100-SXM4-80GB, not H100-SXM: a profile measured on one device does not apply" in refused.stderr


def test_a_device_profile_needs_a_model_file_to_predict(tmp_path):
    path = _profile_file(tmp_path, "A100")
    result = runner.invoke(app, ["train", "--params", "7e9", "--tokens", "1T", "--calibration", str(path)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "a device profile predicts the step of a MODEL file" in result.stderr
    given = runner.invoke(
        app,
        ["train", "--params", "7e9", "--tokens", "1T", "--gpu", "A100-SXM4-80GB", "--utilization", "0.4", "-f", "json"],
    )
    assert given.exit_code == 0, given.output
    assert json.loads(given.stdout)["utilization"] == 0.4


def test_sparse_peak_uses_the_catalogues_2_4_figure_for_a_2_4_model(examples):
    """examples/pruned.py:build_2_4, batch 8: forward 2*8*(64*32 + 32*16) + 8*(32+32+16) = 41,600 FLOP and
    backward 49,792 (as for :build, the dense figures do not depend on the zeros): 11,424 FLOP an example.
    A100-SXM4-80GB bf16 2:4-sparse peak: 624 TFLOP/s (datasheet), at utilization 0.3."""
    model = f"{examples / 'pruned.py'}:build_2_4"
    result = invoke("train", model, "--examples", "1M", "--gpu", "A100-SXM4-80GB", "--sparse-peak", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["training_flops"] == 11_424 * 1_000_000
    assert (data["peak_flops"], data["peak_origin"]) == (624e12, "datasheet 2:4-sparse bf16 (dense-equivalent)")
    assert data["gpu_hours"] == pytest.approx(11_424e6 / (624e12 * 0.3) / 3600, rel=1e-12)
    dense = json.loads(invoke("train", model, "--examples", "1M", "--gpu", "A100-SXM4-80GB", "--format", "json").stdout)
    assert (dense["peak_flops"], dense["peak_origin"]) == (312e12, "datasheet dense bf16")


def test_sparse_peak_is_refused_without_sparse_cores_or_2_4_weights(examples):
    result = invoke(
        "train", f"{examples / 'pruned.py'}:build_2_4", "--examples", "1M", "--gpu", "V100-SXM2", "--sparse-peak"
    )
    assert result.exit_code == 2 and "no 2:4-sparse tensor-core peak" in result.output
    result = invoke(
        "train", f"{examples / 'pruned.py'}:build", "--examples", "1M", "--gpu", "A100-SXM4-80GB", "--sparse-peak"
    )
    assert result.exit_code == 2 and "2.weight is not N:M sparse, not 2:4" in result.output
    result = invoke("train", f"{examples / 'mlp.py'}", "--examples", "1M", "--sparse-peak")
    assert result.exit_code == 2 and "--sparse-peak needs --gpu" in result.output
    result = invoke(
        "train", "--flops-per-example", "1G", "--examples", "1M", "--gpu", "A100-SXM4-80GB", "--sparse-peak"
    )
    assert result.exit_code == 2 and "give a MODEL file" in result.output


def test_train_with_sparsity_notes_the_effective_training_flops(examples):
    result = invoke("train", f"{examples / 'pruned.py'}:build", "--examples", "1000", "--sparsity", "--format", "json")
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    # effective per batch of 8: 19,072 + 43,648 = 62,720 -> 7,840 an example, 7.84e6 for 1,000 examples
    assert any("effective training FLOPs (products with a zero weight left out) 7.84e+06, 68.6%" in n for n in notes)
