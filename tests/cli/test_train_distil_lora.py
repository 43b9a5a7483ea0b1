"""`flopcalc train --teacher` (distillation) and `--lora-rank` (LoRA fine-tuning): exact counts by hand on the
two-layer MLP of examples/mlp.py (in 784, hidden h, 10 classes, batch B = 32)."""

import json

import pytest

from tests._cli import invoke, invoke_json

MLP = "examples/mlp.py:build"
B, IN, C = 32, 784, 10


def mlp_forward(h):
    """Two matmuls, two bias adds, one ReLU."""
    return 2 * B * (IN * h + h * C) + B * h + B * C + B * h


def mlp_backward(h):
    """First layer: weight gradient and bias reduction (its input needs none); ReLU; second layer: weight and
    input gradients and bias reduction."""
    return 2 * B * IN * h + B * h + B * h + 4 * B * h * C + B * C


def train_json(*args):
    return invoke_json("train", *args)


@pytest.mark.parametrize("logits,teacher_passes", [("live", 3), ("cached", 1)])
def test_distillation_adds_the_teachers_forward_per_example(logits, teacher_passes):
    data = train_json(
        MLP, "--teacher", MLP, "--teacher-kwargs", '{"hidden": 1024}', "--teacher-logits", logits, "-N", 1000, "-E", 3
    )
    student = (mlp_forward(256) + mlp_backward(256)) / B
    teacher = mlp_forward(1024) / B
    assert data["flops_per_example"] == student
    assert data["teacher"] == {
        "forward_flops_per_example": teacher,
        "passes": teacher_passes,
        "flops": teacher * 1000 * teacher_passes,
    }
    assert data["training_flops"] == student * 1000 * 3 + teacher * 1000 * teacher_passes


def test_distillation_table_names_the_teacher():
    result = invoke("train", MLP, "--teacher", MLP, "-N", 100)
    assert result.exit_code == 0, result.output
    assert "teacher forward per example" in result.output
    assert "live logits" in result.output


def test_lora_counts_adapters_and_a_frozen_base_exactly():
    r, h = 4, 256
    data = train_json(MLP, "--lora-rank", r, "--lora-targets", "Linear", "-N", B)
    assert data["adapters"]["trainable_params"] == r * (IN + h) + r * (h + C)
    assert data["adapters"]["params"] == IN * h + h + h * C + C + r * (IN + h) + r * (h + C)
    # forward: the base, plus per Linear A and B (2B x r x (in + out)), the scale and the add (B x out each)
    lora_forward = 2 * B * r * (IN + h) + 2 * B * h + 2 * B * r * (h + C) + 2 * B * C
    assert data["forward_flops_per_example"] * B == mlp_forward(h) + lora_forward
    # backward: the base layers' weights get no gradient; the second base layer's input gradient; each B's weight
    # and input gradients; A's weight gradients and the second A's input gradient; the scales; the two input
    # gradients summed at the ReLU's output; the ReLU
    backward = (
        2 * B * h * C
        + 2 * (2 * B * r * C)
        + B * C
        + 2 * (2 * B * h * r)
        + B * h
        + B * h
        + B * h
        + 2 * (2 * B * r * h)
        + 2 * B * IN * r
    )
    assert data["backward_flops_per_example"] * B == backward


def test_lora_from_a_peft_adapter_config(tmp_path):
    config = tmp_path / "adapter_config.json"
    config.write_text(json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 16, "target_modules": ["0"]}))
    data = train_json(MLP, "--adapter-config", config, "-N", 1)
    assert data["adapters"]["trainable_params"] == 2 * (IN + 256)
    assert data["adapters"]["origin"] == str(config)


@pytest.mark.parametrize(
    "args,message",
    [
        ((MLP, "--lora-rank", 0, "-N", 1), "--lora-rank must be a whole number from 1"),
        ((MLP, "--lora-rank", 4, "--lora-targets", "q_proj", "-N", 1), "LoRA target 'q_proj' matches no module"),
        ((MLP, "--lora-rank", 4, "--lora-targets", "ReLU", "-N", 1), "matches only ReLU modules"),
        (("--params", "1e9", "--tokens", "1e12", "--lora-rank", 4), "LoRA needs a MODEL"),
        ((MLP, "--lora-targets", "Linear", "-N", 1), "need --lora-rank"),
        ((MLP, "--teacher-kwargs", "{}", "-N", 1), "describes a teacher"),
        ((MLP, "--teacher-logits", "cached", "-N", 1), "--teacher-logits needs --teacher"),
        ((MLP, "--teacher", "missing.py:build", "-N", 1), "missing.py not found"),
        (("--flops-per-example", "1e9", "-N", 1, "--teacher", MLP), "--teacher needs a MODEL"),
    ],
)
def test_bad_adapter_and_teacher_options_are_one_line_exit_2(args, message):
    result = invoke("train", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
