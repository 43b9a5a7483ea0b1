"""LoRA settings from the options and from a PEFT adapter_config.json; what is refused."""

import json

import pytest

from flopcalc.adapters import lora_config, read_peft_config
from flopcalc.errors import UsageError


def test_options_give_rank_alpha_and_targets():
    config = lora_config(16, "q_proj, v_proj")
    assert (config.rank, config.alpha, config.targets) == (16, 32.0, ("q_proj", "v_proj"))
    assert lora_config(8, alpha=16).alpha == 16
    assert lora_config(None) is None


@pytest.mark.parametrize("rank", [0, -1, True, 2**21])
def test_a_rank_below_1_or_absurd_is_refused(rank):
    with pytest.raises(UsageError, match="--lora-rank"):
        lora_config(rank)


def test_targets_without_a_rank_and_empty_targets_are_refused():
    with pytest.raises(UsageError, match="need --lora-rank"):
        lora_config(None, "q_proj")
    with pytest.raises(UsageError, match="names no module"):
        lora_config(4, " , ")


def test_a_peft_config_is_read(tmp_path):
    path = tmp_path / "adapter_config.json"
    path.write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "r": 64,
                "lora_alpha": 16,
                "lora_dropout": 0.05,
                "target_modules": ["q_proj", "k_proj"],
                "bias": "none",
                "task_type": "CAUSAL_LM",
            }
        )
    )
    config = read_peft_config(path)
    assert (config.rank, config.alpha, config.dropout, config.targets) == (64, 16.0, 0.05, ("q_proj", "k_proj"))
    path.write_text(json.dumps({"r": 8, "target_modules": "all-linear"}))
    assert read_peft_config(path).all_linear
    path.write_text(json.dumps({"r": 8, "target_modules": r".*\.(q|v)_proj"}))
    assert read_peft_config(path).regex == r".*\.(q|v)_proj"


@pytest.mark.parametrize(
    "content,message",
    [
        ({"peft_type": "PREFIX_TUNING"}, "only LoRA"),
        ({"r": 8, "use_dora": True}, "use_dora"),
        ({"r": 0}, "r must be"),
        ({"r": 8, "lora_alpha": -1}, "lora_alpha"),
        ({"r": 8, "bias": "some"}, "bias"),
        ({"r": 8, "target_modules": 3}, "target_modules"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_bad_peft_configs_are_one_usage_error(tmp_path, content, message):
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps(content))
    with pytest.raises(UsageError, match=message):
        read_peft_config(path)


def test_config_file_and_options_exclude_each_other(tmp_path):
    with pytest.raises(UsageError, match="exclude each other"):
        lora_config(8, config_file=str(tmp_path / "x.json"))
    with pytest.raises(UsageError, match="no such file"):
        lora_config(None, config_file=str(tmp_path / "x.json"))
