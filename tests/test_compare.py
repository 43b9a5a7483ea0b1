"""`--compare`: fvcore and FlopCounterMode on the same model and inputs (flopcalc/compare.py)."""

import pytest

from flopcalc.compare import compare_spec, parse_counters
from flopcalc.errors import UsageError
from flopcalc.spec import ModelSpec
from tests._models import source_file

MODELS = """
import torch
from torch import nn

def depthwise():
    return nn.Sequential(nn.Conv2d(8, 8, 3, groups=8, padding=1, bias=False), nn.Conv2d(8, 4, 1, bias=False))

def mlp():
    return nn.Sequential(nn.Linear(16, 32, bias=False), nn.Linear(32, 8, bias=False))

class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 8, bias=False)

    def forward(self, x, scale=None):
        return self.proj(x) if scale is None else self.proj(x) * scale

def scaled():
    return Scaled()
"""


@pytest.fixture
def models(tmp_path):
    return source_file(tmp_path, "models.py", MODELS)


def _reasons(comparison, counter):
    return {d.reason: d for d in comparison.differences if d.counter == counter}


def test_depthwise_conv_shows_flopcountermodes_backward_excess(models):
    comparison = compare_spec(ModelSpec(f"{models}:depthwise", inputs=("2x8x16x16",)), ["torch"])
    torch_result = comparison.counters[0]
    # depthwise 3x3 on 2x8x16x16: 2*2*8*16*16*9 = 73,728 per pass; pointwise 8->4: 2*2*4*16*16*8 = 32,768.
    # Backward: depthwise weight gradient 73,728 (no input gradient: first layer), pointwise 2 x 32,768.
    assert comparison.report.backward_by_category["conv"] == 73_728 + 65_536
    # FlopCounterMode counts the depthwise weight gradient as a dense conv over 8 groups: 8 x 73,728
    assert torch_result.backward_by_category["conv"] == 8 * 73_728 + 65_536
    assert torch_result.forward_by_category["conv"] == 73_728 + 32_768
    excess = _reasons(comparison, "torch")["conv_groups_backward"]
    assert excess.other - excess.flopcalc == 7 * 73_728
    assert "groups" in excess.explanation and "516,096" in excess.explanation


def test_on_an_mlp_fvcore_is_half_of_flopcalc_and_nothing_else_is_listed(models):
    comparison = compare_spec(ModelSpec(f"{models}:mlp", inputs=("4x16",)))
    fvcore, torch_result = comparison.counters
    # 2*4*16*32 + 2*4*32*8 = 6,144 FLOP forward; fvcore says 3,072 (one per multiply-add)
    assert comparison.report.forward == 6_144
    assert fvcore.as_reported == 3_072 == comparison.report.forward // 2
    assert fvcore.forward == 6_144  # converted to flopcalc's unit
    assert torch_result.forward == 6_144 and torch_result.backward == comparison.report.backward
    assert set(_reasons(comparison, "fvcore")) == {"multiply_add_once", "forward_only"}
    assert _reasons(comparison, "torch") == {}  # no difference occurs, none is listed
    assert comparison.in_unit("mac").rows()[1]["forward"] == 3_072
    assert fvcore.modules == {"0": 4_096, "1": 2_048}


def test_the_reference_counters_get_positional_and_named_inputs_alike(models):
    comparison = compare_spec(ModelSpec(f"{models}:scaled", inputs=("2x16", "scale=2x8")), ["torch"])
    assert [(i.name, i.shape) for i in comparison.report.inputs] == [(None, (2, 16)), ("scale", (2, 8))]
    assert comparison.counters[0].forward_by_category["matmul"] == comparison.report.forward_by_category["matmul"]


def test_unknown_counter_is_a_usage_error():
    assert parse_counters("fvcore, torch,fvcore") == ("fvcore", "torch")
    with pytest.raises(UsageError, match="unknown counter deepspeed"):
        parse_counters("fvcore,deepspeed")
