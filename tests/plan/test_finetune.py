"""plan with LoRA (--lora-rank, --base-dtype) and a distillation teacher (--teacher): parameters, memory and step
time by hand, and the published checks: LoRA of a 7B model on one 24 GB GPU, QLoRA of a 65B model on one 48 GB GPU
(Dettmers et al. 2023)."""

import json

import pytest

from flopcalc.cli import app
from tests._cli import runner
from tests.conftest import EXAMPLES

LLAMA_7B = EXAMPLES / "hf" / "llama-2-7b" / "config.json"
LLAMA_65B = EXAMPLES / "hf" / "llama-65b" / "config.json"
MLP = f"{EXAMPLES / 'mlp.py'}:build"


def plan_json(*args, exit_code=0):
    result = runner.invoke(app, ["plan", *map(str, args), "--format", "json"])
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def llama_linears(layers, hidden, ffn):
    """(in, out) of every Linear inside the blocks: q, k, v, o, then gate, up, down."""
    return [(hidden, hidden)] * 4 * layers + [(hidden, ffn), (hidden, ffn), (ffn, hidden)] * layers


def test_lora_r16_of_llama_2_7b_fits_one_24_gb_gpu_at_1_x_512_tokens():
    data = plan_json(LLAMA_7B, "--seq-len", 512, "--gpu", "RTX-4090", "--lora-rank", 16)
    linears = llama_linears(32, 4096, 11008)
    trainable = sum(16 * (i + o) for i, o in linears)
    assert trainable == 39_976_960  # PEFT's print_trainable_parameters for r=16 on all seven projections
    frozen = sum(i * o for i, o in linears) + 2 * 32000 * 4096 + (2 * 32 + 1) * 4096  # + embeddings, head, norms
    model = data["model"]
    assert model["trainable_params"] == trainable
    assert model["params"] == frozen + trainable
    assert model["adapters"]["base_dtype"] == "bf16" and model["adapters"]["adapted_modules"] == 7 * 32
    memory = data["memory_per_gpu_bytes"]
    assert memory["weights"] == 2 * frozen + 2 * trainable  # bf16 base, bf16 adapters
    assert memory["gradients"] == 2 * trainable
    assert memory["optimizer"] == 12 * trainable  # fp32 master copy, momentum and variance of the adapters only
    assert data["fits"] is True
    assert memory["total"] < data["gpu_memory_bytes"] - data["memory_reserve_bytes"]


@pytest.mark.slow
def test_qlora_of_llama_65b_in_nf4_fits_one_48_gb_gpu():
    """QLoRA's headline (Dettmers et al. 2023, abstract): a 65B model fine-tuned on one 48 GB GPU, with its
    gradient checkpointing (--recompute full)."""
    data = plan_json(
        LLAMA_65B, "--seq-len", 512, "--gpu", "L40S", "--lora-rank", 16, "--base-dtype", "nf4", "--recompute", "full"
    )

    def nf4(n):
        blocks = -(-n // 64)
        return -(-n // 2) + blocks + 4 * -(-blocks // 256)

    linears = llama_linears(80, 8192, 22016)
    trainable = sum(16 * (i + o) for i, o in linears)
    frozen = sum(nf4(i * o) for i, o in linears) + 2 * (2 * 32000 * 8192 + (2 * 80 + 1) * 8192)
    assert data["model"]["trainable_params"] == trainable
    assert data["model"]["adapters"]["frozen_bytes"] == frozen
    assert data["memory_per_gpu_bytes"]["weights"] == frozen + 2 * trainable
    assert data["fits"] is True
    assert data["memory_per_gpu_bytes"]["total"] < 48 * 2**30


def test_a_teacher_adds_its_weights_outputs_and_forward():
    base = plan_json(MLP, "--gpu", "H100-SXM")
    data = plan_json(MLP, "--gpu", "H100-SXM", "--teacher", MLP, "--teacher-kwargs", '{"hidden": 1024}')
    b, h, classes = 32, 1024, 10
    teacher_params = 784 * h + h + h * classes + classes
    teacher_forward = 2 * b * (784 * h + h * classes) + b * h + b * classes + b * h
    assert data["model"]["teacher"]["params"] == teacher_params
    assert data["model"]["teacher"]["forward_flops_per_micro_batch"] == teacher_forward
    # bf16 weights, and the logits of the micro-batch at 2 bytes
    assert data["memory_per_gpu_bytes"]["teacher"] == 2 * teacher_params + 2 * b * classes
    student = sum(base["model"]["flops_per_micro_batch"].values())
    assert data["step"]["compute_s"] == pytest.approx(
        base["step"]["compute_s"] * (student + teacher_forward) / student, rel=1e-12
    )
    assert data["memory_per_gpu_bytes"]["total"] == pytest.approx(
        base["memory_per_gpu_bytes"]["total"] + data["memory_per_gpu_bytes"]["teacher"], rel=1e-12
    )


def test_a_teacher_at_int8_is_priced_per_row():
    data = plan_json(MLP, "--gpu", "H100-SXM", "--teacher", MLP, "--teacher-dtype", "int8")
    # the MLP's Linear layers are quantised (it has no output embedding to leave out); biases stay at 16 bits
    weights = (784 * 256 + 4 * 256) + (256 * 10 + 4 * 10) + 2 * (256 + 10)
    assert data["model"]["teacher"]["weight_bytes"] == weights


@pytest.mark.parametrize(
    "args,message",
    [
        ((MLP, "--gpu", "H100-SXM", "--lora-rank", 0), "--lora-rank must be a whole number from 1"),
        ((MLP, "--gpu", "H100-SXM", "--lora-rank", 4, "--lora-targets", "q_proj"), "matches no module"),
        ((MLP, "--gpu", "H100-SXM", "--base-dtype", "nf4"), "--base-dtype is the dtype of a LoRA base"),
        (
            (MLP, "--gpu", "H100-SXM", "--lora-rank", 4, "--lora-targets", "Linear", "--base-dtype", "nf5"),
            "--base-dtype must be one of",
        ),
        ((MLP, "--gpu", "H100-SXM", "--teacher-dtype", "bf16"), "--teacher-dtype needs --teacher"),
        ((MLP, "--gpu", "H100-SXM", "-n", 2, "--tp", 2, "--heads", 2, "--teacher", MLP), "--teacher is planned whole"),
        (("--params", "7e9", "--seq-len", 512, "--gpu", "H100-SXM", "--lora-rank", 16), "LoRA needs a MODEL"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    result = runner.invoke(app, ["plan", *map(str, args)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len([line for line in result.stderr.splitlines() if line.startswith("flopcalc: error")]) == 1


@pytest.mark.parametrize("zero", [0, 3])
def test_data_parallelism_all_reduces_the_adapters_gradients_only(zero):
    data = plan_json(
        MLP,
        "--gpu",
        "H100-SXM",
        "-n",
        2,
        "--dp",
        2,
        "--zero",
        zero,
        "--intra-node-gbps",
        100,
        "--lora-rank",
        4,
        "--lora-targets",
        "Linear",
    )
    trainable = 4 * (784 + 256) + 4 * (256 + 10)
    frozen = 784 * 256 + 256 + 256 * 10 + 10
    gradient_bytes = 2 * trainable
    if zero == 0:  # ring all-reduce: bytes x 2(n-1)/n / busbw
        expected = gradient_bytes * 2 * (2 - 1) / 2 / 100e9
    else:  # ZeRO-3: per micro-batch two all-gathers of every weight (the bf16 base too) and a reduce-scatter
        expected = (2 * (2 * trainable + 2 * frozen) + gradient_bytes) * (2 - 1) / 2 / 100e9
    assert data["step"]["dp_comm_s"] == pytest.approx(expected, rel=1e-12)


def test_a_search_with_a_teacher_tries_data_parallelism_only():
    data = plan_json(
        f"{EXAMPLES / 'gpt.py'}", "--gpu", "H100-SXM", "-n", 4, "--teacher", MLP, "--search", "--global-batch", 8
    )
    shapes = {(c["parallelism"]["tp"], c["parallelism"]["pp"]) for c in data["candidates"]}
    assert data["candidates"] and shapes == {(1, 1)}
    result = runner.invoke(
        app,
        [
            "plan",
            f"{EXAMPLES / 'gpt.py'}",
            "--gpu",
            "H100-SXM",
            "-n",
            "4",
            "--tp",
            "2",
            "--teacher",
            MLP,
            "--search",
            "--global-batch",
            "8",
        ],
    )
    assert result.exit_code == 2 and "--teacher is planned whole" in result.output
