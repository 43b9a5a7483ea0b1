"""`flopcalc plan` through CliRunner: the JSON contract (golden), a counted model, --search, one-line errors."""

import json
from pathlib import Path

import pytest

from flopcalc.cli import app
from tests._cli import GPT3_175B, LLAMA_7B, LLAMA_7B_LAYERS, invoke_json, json_run, runner
from tests._hf_configs import decoder, write_config
from tests._shapes import LLAMA_3_70B, plan_flags

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FLEET = ["--gpu", "H100-SXM", "--intra-node-gbps", "450", "--inter-node-gbps", "50"]
CONTRACT = {
    "model": {"params", "flops_per_micro_batch", "source"},
    "parallelism": {
        "dp",
        "tp",
        "pp",
        "zero",
        "recompute",
        "sequence_parallel",
        "micro_batch",
        "global_batch",
        "grad_accum",
        "num_gpus",
        "gpus_per_node",
        "virtual_stages",
        "ep",
        "cp",
        "capacity_factor",
        "fsdp",
        "shard_group",
    },
    "memory_per_gpu_bytes": {"weights", "gradients", "optimizer", "activations", "total"},
    "step": {
        "compute_s",
        "dp_comm_s",
        "tp_comm_s",
        "pp_comm_s",
        "bubble_fraction",
        "exposed_comm_s",
        "step_s",
        "time_model",
        "mfu",
        "hfu",
        "optimizer_s",
        "prediction",
        "ep_comm_s",
        "cp_comm_s",
    },
    "training": {
        "model_flops",
        "hardware_flops",
        "steps",
        "wall_clock_s",
        "wall_clock_days",
        "gpu_hours",
        "mfu",
        "hfu",
        "energy_kwh",
        "cost",
    },
}


def invoke(*args):
    return runner.invoke(app, ["plan", *map(str, args)])


def run_json(*args, exit_code=0):
    return invoke_json("plan", *args, exit_code=exit_code)


GOLDEN_LAYOUT = (
    "-n",
    "16",
    "--tp",
    "8",
    "--sequence-parallel",
    "--zero",
    "1",
    "--global-batch",
    "512",
    "--tokens",
    "1T",
    "--price-per-gpu-hour",
    "2.5",
)


def test_a_7b_layout_matches_the_golden_json():
    """16 H100s, tp 8 with sequence parallelism, dp 2 with ZeRO-1, 1T tokens, at an explicit utilization of 0.3
    (what plan did before the step-time model); regenerate only for a deliberate change of the contract or a
    formula (docs/plan.md)."""
    data = run_json(*LLAMA_7B, *FLEET, *GOLDEN_LAYOUT, "--attention", "math", "--utilization", "0.3")
    assert data == json.loads((GOLDEN / "plan_7b_h100.json").read_text())
    assert data["step"]["time_model"] == "utilization" and data["step"]["prediction"] is None
    assert "--utilization 0.3 replaced the step-time prediction" in " ".join(data["assumptions"])
    assert data["schema_version"] == 1
    assert set(data) == {
        "schema_version",
        *CONTRACT,
        "stages",
        "gpu_memory_bytes",
        "memory_reserve_bytes",
        "fits",
        "assumptions",
        "notes",
    }
    # an "80 GB" H100 holds 80 GiB; 1 GiB + 5% of it is kept back for the CUDA context and fragmentation
    assert data["gpu_memory_bytes"] == 80 * 2**30 and data["memory_reserve_bytes"] == 5 * 2**30
    for key, inner in CONTRACT.items():
        assert set(data[key]) == inner, key
    # the arithmetic, spelled out: ZeRO-1 over dp 2 of 6.7e9 / 8 parameters per GPU
    per_gpu = 6.7e9 / 8
    assert data["memory_per_gpu_bytes"]["weights"] == pytest.approx(2 * per_gpu)
    assert data["memory_per_gpu_bytes"]["optimizer"] == pytest.approx(12 * per_gpu / 2)
    # activations: Korthikanti's sbh/t (34 + 5as/h) per layer with sequence parallelism, 32 layers, b = 1, the
    # scores materialised (--attention math)
    s, h, a = 2048, 4096, 32
    assert data["memory_per_gpu_bytes"]["activations"] == pytest.approx(32 * s * h / 8 * (34 + 5 * a * s / h))
    assert data["training"]["steps"] == 953_675  # ceil(1e12 / 2048 / 512) = ceil(953,674.3)
    assert data["training"]["cost"] == pytest.approx(2.5 * data["training"]["gpu_hours"])


def test_the_same_layout_predicted_matches_its_golden_json():
    """No --utilization: the step-time model on the shipped H100 profile times the step; MFU and HFU are outputs."""
    data = run_json(*LLAMA_7B, *FLEET, *GOLDEN_LAYOUT)
    assert data == json.loads((GOLDEN / "plan_7b_h100_predicted.json").read_text())
    for key, inner in CONTRACT.items():
        assert set(data[key]) == inner, key
    step = data["step"]
    assert step["time_model"] == "predicted" and step["prediction"]["step_s"] == step["step_s"]
    # MFU = model FLOPs per step / (step x 16 GPUs x 989.5 TFLOP/s); model FLOPs per step = 512 x 3 x forward
    assert step["mfu"] == pytest.approx(512 * 3 * 29642223255552.0 / (step["step_s"] * 16 * 989.5e12), rel=1e-12)
    assert step["step_s"] == pytest.approx(step["compute_s"] + step["exposed_comm_s"] + step["optimizer_s"], rel=1e-12)
    assert any(
        line.startswith("step time predicted by flopcalc.predict on the H100-SXM device profile")
        for line in data["assumptions"]
    )


def test_a_counted_model_plans_in_every_format(examples):
    model = examples / "gpt.py"
    data = run_json(
        model,
        "--input",
        "4x32:int64",
        "--gpu",
        "A100-SXM4-80GB",
        "-n",
        "2",
        "--intra-node-gbps",
        "200",
        "--examples",
        "10000",
        "--epochs",
        "2",
    )
    assert data["model"]["source"] == str(model) and data["parallelism"]["micro_batch"] == 4
    assert data["parallelism"]["global_batch"] == 8 and data["training"]["steps"] == 2500
    assert data["fits"] is True and data["memory_per_gpu_bytes"]["activations"] > 0
    table = invoke(model, "--input", "4x32:int64", "--gpu", "A100-SXM4-80GB", "--recompute", "selective")
    assert table.exit_code == 0, table.output
    for text in (
        "memory per GPU",
        "activations",
        "of 75 GiB (80 GiB less 5 GiB reserved): fits",
        "time per step",
        "recomputation included",
        "assumptions:",
        "activations measured on the graph",
        "#",
    ):
        assert text in table.stdout
    markdown = invoke(model, "--input", "4x32:int64", "--gpu", "A100-SXM4-80GB", "-f", "markdown")
    assert "| memory per GPU |" in markdown.stdout
    csv = invoke(model, "--input", "4x32:int64", "--gpu", "A100-SXM4-80GB", "-f", "csv").stdout.splitlines()
    assert len(csv) == 2 and "memory_per_gpu_bytes_total" in csv[0] and "parallelism_dp" in csv[0]


def test_search_lists_fitting_layouts_best_first_and_why_others_failed():
    data = run_json(*LLAMA_7B, *FLEET, "-n", "8", "--search", "--global-batch", "64", "--tokens", "10G")
    assert data["schema_version"] == 1 and data["fits"] is True
    assert len(data["candidates"]) == 10
    for candidate in data["candidates"]:
        assert set(candidate) == {
            "parallelism",
            "memory_per_gpu_bytes",
            "stages",
            "gpu_memory_bytes",
            "fits",
            "step",
            "training",
        }
        assert candidate["fits"] is True and candidate["parallelism"]["num_gpus"] == 8
    walls = [c["training"]["wall_clock_s"] for c in data["candidates"]]
    assert walls == sorted(walls) and data["parallelism"] == data["candidates"][0]["parallelism"]
    table = invoke(*LLAMA_7B, *FLEET, "-n", "1", "--search", "--global-batch", "8")
    assert table.exit_code == 1, table.output  # nothing fits: exit 1, the answer still printed
    assert "none fits in 75 GiB" in table.stdout and "tp=1 pp=1: " in table.stdout and "GiB > 75 GiB" in table.stdout


def test_zero_with_one_replica_is_a_note_on_stderr():
    result = invoke(*LLAMA_7B, *FLEET, "--zero", "3", "-f", "json")
    assert result.exit_code == 1, result.output  # 107 GB of model states on one H100: does not fit
    assert "ZeRO-3 with dp 1 partitions nothing" in result.stderr
    assert json.loads(result.stdout)["fits"] is False


@pytest.mark.parametrize(
    "args, message",
    [
        ([*LLAMA_7B, *FLEET, "-n", "8", "--dp", "2", "--tp", "2"], "dp x tp x pp = 2 x 2 x 1 = 4, not --num-gpus 8"),
        ([*LLAMA_7B, *FLEET, "-n", "6", "--tp", "4"], "--num-gpus 6 is not a multiple of tp x pp = 4"),
        ([*LLAMA_7B, *FLEET, "--tp", "3"], "--tp 3 does not divide the 32 attention heads"),
        ([*LLAMA_7B, *FLEET, "--pp", "64"], "--pp 64 is more than the model's 32 layers"),
        ([*LLAMA_7B, "--gpu", "Z9000"], "unknown GPU"),
        ([*LLAMA_7B], "no GPU given"),
        (["--params", "-7e9", "--seq-len", "2048", "--gpu", "H100-SXM"], "--params must be a finite number > 0"),
        (["--params", "7e9", "--gpu", "H100-SXM", "--tokens", "1T"], "--tokens needs the FLOPs per example"),
        ([*LLAMA_7B, *FLEET, "--num-gpus", "0"], "--num-gpus must be a whole number >= 1"),
        ([*LLAMA_7B, *FLEET, "--micro-batch", "0"], "--micro-batch must be a whole number >= 1"),
        ([*LLAMA_7B, *FLEET, "--global-batch", "0"], "--global-batch must be a whole number >= 1"),
        ([*LLAMA_7B, *FLEET, "--tokens", "-5"], "--tokens must be a finite number > 0"),
        ([*LLAMA_7B, *FLEET, "--gpu-memory", "-80"], "--gpu-memory must be a finite number > 0"),
        ([*LLAMA_7B, *FLEET, "--search"], "--search needs --global-batch"),
        ([*LLAMA_7B, *FLEET, "--zero", "5"], "--zero must be 0, 1, 2 or 3"),
        ([*LLAMA_7B, *FLEET, "--recompute", "half"], "--recompute must be none, selective or full"),
        ([*LLAMA_7B, *FLEET, "--optimizer", "lion"], "--optimizer must be adamw or sgd"),
        ([*LLAMA_7B, *FLEET, "--precision", "int8"], "plan trains in bf16, fp16, fp8, tf32, fp32, fp64, not int8"),
        (["--params", "7e9", "--seq-len", "2048", "--layers", "32", "--gpu", "H100-SXM"], "--layers without --hidden"),
        (["--gpu", "H100-SXM"], "nothing to plan"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, message):
    target = tmp_path / "plan.json"
    result = invoke(*args, "--output", target)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not target.exists()


def test_model_and_params_exclude_each_other(examples):
    result = invoke(examples / "gpt.py", *LLAMA_7B, "--gpu", "H100-SXM")
    assert result.exit_code == 2 and "exclude each other" in result.stderr


def test_an_intra_node_ring_without_a_bandwidth_asks_for_one():
    result = invoke(*LLAMA_7B, "--gpu", "T4", "--gpu-memory", "1000", "-n", "4")
    assert result.exit_code == 2 and "give --intra-node-gbps" in result.stderr


def test_a_params_plan_loads_no_torch():
    import subprocess
    import sys

    code = (
        "import sys; from typer.testing import CliRunner; from flopcalc.cli import app; "
        "r = CliRunner().invoke(app, ['plan', '--params', '7e9', '--seq-len', '2048', '--gpu', 'H100-SXM', "
        "'-n', '64', '--zero', '3', '--inter-node-gbps', '50']); print(r.exit_code, 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["0", "False"]


def test_the_intra_node_bandwidth_defaults_to_the_catalogues_link_per_direction():
    """H100 SXM: NVLink 4, 900 GB/s both directions = 450 GB/s; dp 8 in one node all-reduces the gradients at it."""
    data = run_json("--params", "1e9", "--seq-len", "1024", "--gpu", "H100-SXM", "-n", "8")
    assert data["step"]["dp_comm_s"] == pytest.approx(2 * 7 / 8 * 2e9 / 450e9)
    assert any(
        "catalogue, H100-SXM: NVLink 4" in line and "450 GB/s per direction" in line for line in data["assumptions"]
    )


def test_a_hugging_face_config_brings_its_heads_and_layers(tmp_path):
    """The config's 8 heads share 2 key/value heads (grouped-query attention): tp 4 cannot split them."""
    pytest.importorskip("transformers")
    config = write_config(tmp_path, decoder(64, 172, 4, 8, 512, num_key_value_heads=2, max_position_embeddings=128))
    bad = invoke(config, "--gpu", "H100-SXM", "-n", "4", "--tp", "4")
    assert bad.exit_code == 2 and "--tp 4 does not divide the 2 key/value heads" in bad.stderr
    data = run_json(
        config,
        "--seq-len",
        "128",
        "--gpu",
        "H100-SXM",
        "-n",
        "8",
        "--tp",
        "2",
        "--pp",
        "2",
        "--sequence-parallel",
        "--global-batch",
        "16",
    )
    assert data["parallelism"]["dp"] == 2 and data["fits"] is True
    assert data["memory_per_gpu_bytes"]["activations"] > 0


def test_calibration_says_which_figures_were_measured(tmp_path):
    """A matmul measurement alone: the peak is measured, the bandwidths come from the catalogue and the options
    (and the plan says no bandwidth was measured); with `bench --distributed` figures, those are used."""
    from flopcalc.calibration import FleetCalibration, MatmulCalibration, save_device_entry

    path = tmp_path / "calibration.yaml"
    save_device_entry(
        path,
        "NVIDIA H100 80GB HBM3",
        "cuda",
        matmul=MatmulCalibration(
            tflops={"bf16": 700.0}, measured_at="2026-11-28T12:00:00+00:00", torch_version="x", seconds=10.0
        ),
    )
    common = (
        *LLAMA_7B,
        "--calibration",
        path,
        "--gpu",
        "H100-SXM",
        "-n",
        "16",
        "--tp",
        "8",
        "--sequence-parallel",
        "--global-batch",
        "64",
    )
    data = run_json(*common, "--inter-node-gbps", "50")
    (peak_line,) = [line for line in data["assumptions"] if "peak" in line and "TFLOP/s" in line]
    assert "peak 700 TFLOP/s (measured by flopcalc bench" in peak_line
    assert any(line.startswith("no measured bandwidths (no fleet measurement") for line in data["assumptions"])
    assert any("450 GB/s per GPU (catalogue, H100-SXM" in line for line in data["assumptions"])
    assert any("50 GB/s per GPU (--inter-node-gbps)" in line for line in data["assumptions"])
    assert data["gpu_memory_bytes"] == 80 * 2**30

    fleet = FleetCalibration(
        backend="nccl",
        world_size=16,
        nodes=2,
        ranks_per_node=8,
        busbw_gbps={"intra": {"all_reduce": 360.0}, "inter": {"all_reduce": 42.0}, "world": {"all_reduce": 40.0}},
        message_bytes={scope: {"all_reduce": 2**30} for scope in ("intra", "inter", "world")},
        measured_at="2026-11-29T10:00:00+00:00",
        torch_version="x",
    )
    save_device_entry(path, "NVIDIA H100 80GB HBM3", "cuda", fleet={fleet.key: fleet})
    measured = run_json(*common)
    lines = measured["assumptions"]
    assert any(
        line.startswith(
            "intra-node bus bandwidth 360 GB/s per GPU (measured by flopcalc bench --distributed on 2 nodes x 8"
        )
        for line in lines
    )
    assert any(line.startswith("inter-node bus bandwidth 42 GB/s per GPU (measured") for line in lines)
    assert not any(line.startswith("no measured bandwidths") for line in lines)
    # dp 2 across the two nodes: the gradients' all-reduce runs at the measured inter-node figure
    gradients = 6.7e9 / 8 * 2
    assert measured["step"]["dp_comm_s"] == pytest.approx(2 * 1 / 2 * gradients / 42e9)
    # tp 8 inside a node: the activations' all-reduces at the measured intra-node one
    assert measured["step"]["tp_comm_s"] == pytest.approx(data["step"]["tp_comm_s"] * 450 / 360)


def test_tensor_parallelism_needs_blocks_to_split(examples):
    result = invoke(examples / "mlp.py", "--gpu", "H100-SXM", "--heads", "4", "--tp", "2", "-n", "2")
    assert result.exit_code == 2 and "shows no repeated blocks" in result.stderr


def test_a_search_over_a_billion_gpus_answers_with_why_no_layout_divides_the_batch():
    """Issue 25: the layout space was walked 1..n; a billion GPUs have 100 divisors, so the answer comes at once."""
    data = run_json(*LLAMA_7B, "--gpu", "H100-SXM", "-n", "1e9", "--search", "--global-batch", "3072", exit_code=1)
    assert data["candidates"] == [] and data["evaluated"] == 0
    assert any(line.endswith("does not divide the global batch 3072") for line in data["rejected"])
    assert any("(96 values): tensor parallelism stays inside a node of 8 GPUs" in line for line in data["rejected"])


def test_a_search_with_a_huge_global_batch_answers_with_layouts_of_that_batch():
    data = run_json(*LLAMA_7B, *FLEET, "-n", "1024", "--search", "--global-batch", "1e15", "--tokens", "2T")
    assert data["fits"] is True and data["parallelism"]["global_batch"] == 10**15
    assert all(c["parallelism"]["num_gpus"] == 1024 and c["fits"] for c in data["candidates"])
    assert data["evaluated"] < 10_000


def test_a_counted_transformer_is_predicted_from_its_shape_and_says_where_the_gemms_came_from(examples):
    data = run_json(examples / "gpt.py", "--input", "4x32:int64", "--gpu", "A100-SXM4-80GB", "-n", "2")
    assert data["step"]["time_model"] == "predicted" and 0 < data["step"]["mfu"] < 1
    (shapes,) = [line for line in data["assumptions"] if line.startswith("GEMM shapes:")]
    assert "2 layers, hidden 64, 4 heads" in shapes and "32 tokens per example" in shapes
    assert "the counter gives FLOPs per module, not each matmul's M, N, K" in shapes
    mlp = invoke(examples / "mlp.py", "--gpu", "A100-SXM4-80GB", "-f", "json")
    assert mlp.exit_code == 0, mlp.output
    assert json.loads(mlp.stdout)["step"]["time_model"] == "utilization"


def test_virtual_stages_interleave_and_the_table_shows_the_bubble_and_mfu():
    args = (
        *GPT3_175B,
        "--vocab",
        "51200",
        "--gpu",
        "A100-SXM4-80GB",
        "--tp",
        "8",
        "--pp",
        "8",
        "--sequence-parallel",
        "--global-batch",
        "64",
        "--recompute",
        "selective",
    )
    table = invoke(*args, "--virtual-stages", "3")
    assert table.exit_code == 0, table.output
    assert "interleaved: (pp-1)/v / (m + (pp-1)/v) = 7/3 / (64 + 7/3)" in table.stdout
    assert "3 virtual stages (interleaved" in table.stdout and "predicted, an output" in table.stdout
    searched = invoke(*args, "-n", "64", "--search", "--virtual-stages", "3")
    assert searched.exit_code == 2 and "--search does not try interleaved schedules" in searched.stderr


def test_a_profile_file_of_another_device_is_one_line_exit_2(tmp_path):
    from flopcalc.predict import default_profiles_text

    text = default_profiles_text()
    path = tmp_path / "profiles.yaml"
    path.write_text(text[: text.index("  - device: H100-SXM")])  # the A100 profile alone
    result = invoke(*LLAMA_7B, "--gpu", "H100-SXM", "--calibration", path, "--output", tmp_path / "plan.json")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "profiles A100-SXM4-80GB, not H100-SXM: a profile measured on one device does not apply" in result.stderr
    assert not (tmp_path / "plan.json").exists()
    ok = run_json(*LLAMA_7B, "--gpu", "A100-SXM4-80GB", "--calibration", path, "-n", "8", "--zero", "3")
    assert ok["step"]["time_model"] == "predicted"
    assert any(line.startswith(f"device profile of A100-SXM4-80GB from {path}") for line in ok["assumptions"])


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda text: text.replace("      bandwidth_gbps: 2048\n", "", 1),
            "profiles[0].memory.bandwidth_gbps: missing (every profile figure is required)",
        ),
        (lambda text: "profiles: [\n", "not valid YAML"),
        (
            lambda text: text.replace(
                "source: Calculon systems/a100_80g.json matrix gflops_efficiency (float16)", "source: ''"
            ),
            "profiles[0].matmul.efficiency.source: must be a non-empty string",
        ),
    ],
)
def test_a_corrupt_or_incomplete_profile_file_is_one_line_exit_2(tmp_path, damage, message):
    from flopcalc.predict import default_profiles_text

    path = tmp_path / "profiles.yaml"
    path.write_text(damage(default_profiles_text()))
    result = invoke(*LLAMA_7B, "--gpu", "A100-SXM4-80GB", "--calibration", path)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


# ------------------------------------------------------------------ issue 19: the shape, the reserve, exit 1


def test_the_shape_gives_n_and_a_far_off_params_is_refused_naming_both():
    shape = ["--seq-len", "2048", "--layers", "32", "--hidden", "4096", "--heads", "32", *FLEET]
    data = run_json(*shape, "--ffn", "11008", "--mlp", "swiglu", "--vocab", "32000", "-n", "8", "--zero", "3")
    assert data["model"]["params"] == 32 * (4 * 4096**2 + 3 * 4096 * 11008) + 32000 * 4096
    assert "--mlp swiglu" in data["model"]["source"]
    assert any("SwiGLU MLP: 3 matrices of hidden x ffn = 4096 x 11008" in line for line in data["assumptions"])
    far = invoke("--params", "13e9", *shape)
    assert far.exit_code == 2 and len(far.stderr.strip().splitlines()) == 1, far.output
    assert "--params 1.3e+10 is 102% away from the 6,442,450,944 (6.442e+09) parameters of --layers 32" in far.stderr


def test_attention_flash_by_default_and_math_on_request():
    flash = run_json(*LLAMA_7B, *FLEET, "-n", "8", "--zero", "3")
    math = run_json(*LLAMA_7B, *FLEET, "-n", "8", "--zero", "3", "--attention", "math")
    s, h, a = 2048, 4096, 32
    assert flash["memory_per_gpu_bytes"]["activations"] == 32 * s * h * 34
    assert math["memory_per_gpu_bytes"]["activations"] == 32 * s * h * (34 + 5 * a * s / h)


def test_without_seq_len_the_model_states_and_what_activations_need(tmp_path):
    result, data = json_run("plan", *LLAMA_7B_LAYERS, "--gpu", "H100-SXM", "-n", "8", "--zero", "3")
    n = 12 * 32 * 4096**2
    assert data["memory_per_gpu_bytes"]["total"] == 16 * n / 8 and data["memory_per_gpu_bytes"]["activations"] is None
    assert data["step"] is None and data["training"] is None and data["fits"] is None
    assert f"activations need --seq-len: per sequence of s tokens, {32 * 34 * 4096:,} x s bytes" in result.stderr
    table = invoke("--params", "7e9", "--gpu", "H100-SXM", "-n", "8", "--zero", "3")
    assert table.exit_code == 0, table.output
    assert "needs --seq-len" in table.stdout and "model states fit; activations unknown" in table.stdout


def test_a_layout_that_does_not_fit_exits_1_and_still_writes_its_answer(tmp_path):
    target = tmp_path / "plan.json"
    result = invoke(*LLAMA_7B, *FLEET, "-f", "json", "--output", target)
    assert result.exit_code == 1, result.output
    assert json.loads(target.read_text())["fits"] is False
    nothing = tmp_path / "search.json"
    searched = invoke(
        *LLAMA_7B, *FLEET, "-n", "1", "--search", "--global-batch", "8", "-f", "json", "--output", nothing
    )
    assert searched.exit_code == 1 and json.loads(nothing.read_text())["candidates"] == []


def test_the_memory_reserve_is_stated_and_overridable():
    """6.7e9 parameters with ZeRO-3 over dp 2 (16 x 6.7e9 / 2 = 49.9 GiB of states) and 3 sequences of flash-attention
    activations (3 x 32 x 2048 x 4096 x 34 = 25.5 GiB): 75.4 GiB fits 80 GiB with nothing set aside, not the 75 GiB
    the default reserve (1 GiB + 5% = 5 GiB) leaves."""
    common = (*LLAMA_7B, *FLEET, "-n", "2", "--zero", "3", "--micro-batch", "3")
    default = invoke(*common, "-f", "json")
    data = json.loads(default.stdout)
    total = data["memory_per_gpu_bytes"]["total"]
    assert 75 * 2**30 < total <= 80 * 2**30 and default.exit_code == 1 and data["fits"] is False
    assert data["memory_reserve_bytes"] == 5 * 2**30
    assert any("5 GiB set aside (default: 1 GiB for the CUDA context" in line for line in data["assumptions"])
    none = run_json(*common, "--memory-reserve", "0")
    assert none["fits"] is True and none["memory_reserve_bytes"] == 0
    bad = invoke(*common, "--memory-reserve", "-1")
    assert bad.exit_code == 2 and "--memory-reserve must be >= 0 GiB" in bad.stderr


def test_shape_options_describe_a_model_given_by_its_shape(examples):
    result = invoke(examples / "mlp.py", "--gpu", "H100-SXM", "--mlp", "swiglu")
    assert result.exit_code == 2 and "--mlp describe a model given by --params" in result.stderr


def test_expert_and_context_parallelism_from_the_command_line(moe_config):
    """A one-layer mixture of 4 experts (hidden 32, top-2) on 4 GPUs with --ep 4: each GPU one expert, the
    all-to-all of 64 tokens x 32 x 2 x 1.25 x 2 bytes, 4 per layer, over NVLink."""
    common = (moe_config, "--seq-len", "64", *FLEET, "-n", "4")
    data = run_json(*common, "--ep", "4", "--capacity-factor", "1.25")
    assert (data["parallelism"]["ep"], data["parallelism"]["capacity_factor"]) == (4, 1.25)
    message = 64 * 32 * 2 * 1.25 * 2
    assert data["step"]["ep_comm_s"] == pytest.approx(4 * message * 3 / 4 / 450e9, rel=1e-12)
    whole = run_json(*common)
    experts = 3 * 32 * 64 * 4  # gate, up and down of 4 experts
    assert whole["memory_per_gpu_bytes"]["weights"] - data["memory_per_gpu_bytes"]["weights"] == pytest.approx(
        2 * experts * 3 / 4
    )
    split = run_json(moe_config, "--seq-len", "64", *FLEET, "-n", "2", "--cp", "2")
    one = run_json(moe_config, "--seq-len", "64", *FLEET, "-n", "1")
    assert split["parallelism"]["cp"] == 2 and split["parallelism"]["num_gpus"] == 2
    assert split["memory_per_gpu_bytes"]["activations"] == pytest.approx(one["memory_per_gpu_bytes"]["activations"] / 2)
    assert split["step"]["cp_comm_s"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["-n", "6", "--ep", "3"], "--ep 3 does not divide the 4 experts of model.layers.0.mlp.experts"),
        (["-n", "4", "--ep", "8"], "--ep 8 does not divide the 4 data-parallel replicas"),
        (["-n", "2", "--cp", "2", "--seq-len", "63"], "--cp 2 does not split the 63 tokens"),
        (["-n", "2", "--fsdp", "half"], "--fsdp must be full, grad-op, hybrid, got 'half'"),
        (["-n", "2", "--ep", "2", "--capacity-factor", "0"], "--capacity-factor must be a finite number > 0"),
    ],
)
def test_bad_expert_context_and_fsdp_options_are_one_line_exit_2(moe_config, args, message):
    result = invoke(moe_config, "--seq-len", "64", *FLEET, *args)
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cp_on_a_model_without_attention_is_one_line_exit_2(examples):
    result = invoke(examples / "mlp.py", "--input", "32x784", *FLEET, "-n", "2", "--cp", "2")
    assert (
        result.exit_code == 2
        and "--cp 2 splits attention's sequence, and this model has no attention heads" in result.stderr
    )


def test_tables_show_the_ring_and_a_cp_column_when_used():
    long = [*plan_flags(LLAMA_3_70B), "--seq-len", "131072", *FLEET, "-n", "64"]
    one = invoke(*long, "--tp", "8", "--cp", "8", "--zero", "1", "--recompute", "full", "--global-batch", "8")
    assert one.exit_code == 0, one.output
    assert "context ring (K/V)" in one.stdout and "cp 8" in one.stdout
    found = invoke(*long, "--search", "--global-batch", "8", "--tp", "8")
    header = next(line for line in found.stdout.splitlines() if line.startswith("#"))
    assert header.split()[:6] == ["#", "dp", "tp", "pp", "cp", "ZeRO"]
    plain = invoke(*LLAMA_7B, *FLEET, "-n", "8", "--search", "--global-batch", "64")
    header = next(line for line in plain.stdout.splitlines() if line.startswith("#"))
    assert header.split()[:5] == ["#", "dp", "tp", "pp", "ZeRO"] and "context ring" not in plain.stdout


def test_stage_layers_give_the_split_and_pp_and_bad_ones_are_one_line():
    gpt = (
        *GPT3_175B,
        "--gpu",
        "A100-SXM4-80GB",
        "--tp",
        "8",
        "--sequence-parallel",
        "--global-batch",
        "64",
        "--recompute",
        "full",
    )
    data = run_json(*gpt, "--stage-layers", "10,12,12,12,12,12,12,14")
    assert data["parallelism"]["pp"] == 8
    assert [(row["stage"], row["layers"]) for row in data["stages"]] == list(
        enumerate([10.0, 12.0, 12.0, 12.0, 12.0, 12.0, 12.0, 14.0])
    )
    assert data["memory_per_gpu_bytes"]["total"] == max(row["total"] for row in data["stages"])
    for args, message in (
        (("--stage-layers", "12,x"), "--stage-layers '12,x' is not a list of whole numbers"),
        (("--stage-layers", "48,48", "--pp", "4"), "--stage-layers gives 2 stages, and pp is 4"),
        (("--stage-layers", "48,48", "-n", "16", "--search"), "--search does not try uneven splits"),
    ):
        result = invoke(*gpt, *args)
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
        assert message in result.stderr
