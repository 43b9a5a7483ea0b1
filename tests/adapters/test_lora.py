"""LoRA put into a model: which layers, what trains, what stays frozen (on meta: no memory)."""

import pytest
import torch
from torch import nn

from flopcalc.adapters import lora_config
from flopcalc.adapters.config import LoraConfig
from flopcalc.adapters.lora import LoraLinear, attach_lora, weight_inventory
from flopcalc.errors import UsageError


class Block(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.q_proj, self.v_proj, self.up = nn.Linear(h, h), nn.Linear(h, h, bias=False), nn.Linear(h, 4 * h)
        self.norm = nn.LayerNorm(h)

    def forward(self, x):
        return self.up(self.norm(self.q_proj(x) + self.v_proj(x)))[..., : x.shape[-1]]


class Tiny(nn.Module):
    def __init__(self, h=8, vocab=11):
        super().__init__()
        self.embed = nn.Embedding(vocab, h)
        self.layers = nn.ModuleList([Block(h) for _ in range(3)])
        self.lm_head = nn.Linear(h, vocab, bias=False)

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, ids):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(x)


def tiny():
    with torch.device("meta"):
        return Tiny()


def test_default_targets_are_the_linears_inside_the_blocks():
    model = tiny()
    summary = attach_lora(model, lora_config(2))
    h = 8
    assert summary.adapted == tuple(f"layers.{i}.{n}" for i in range(3) for n in ("q_proj", "v_proj", "up"))
    assert summary.trainable_params == summary.adapter_params == 3 * 2 * ((h + h) + (h + h) + (h + 4 * h))
    assert isinstance(model.layers[0].q_proj, LoraLinear)
    assert not model.lm_head.weight.requires_grad and not model.layers[0].q_proj.base.weight.requires_grad
    assert summary.params == summary.trainable_params + summary.frozen_params


def test_types_and_patterns_choose_targets_and_the_head_is_not_quantised():
    model = tiny()
    summary = attach_lora(model, lora_config(1, "v_proj,layers.0.up"))
    assert summary.adapted == ("layers.0.v_proj", "layers.1.v_proj", "layers.2.v_proj", "layers.0.up")
    rows = {entry.name: entry.linear_rows for entry in summary.frozen}
    assert rows["lm_head.weight"] is None and rows["layers.0.up.base.weight"] == 32
    assert rows["layers.1.q_proj.weight"] == 8 and rows["layers.0.norm.weight"] is None


def test_all_linear_leaves_the_output_head_and_biases_can_train():
    model = tiny()
    config = LoraConfig(2, 4.0, all_linear=True, bias="lora_only")
    summary = attach_lora(model, config)
    assert "lm_head" not in summary.adapted and len(summary.adapted) == 9
    biases = 3 * (8 + 32)  # q_proj and up have biases, v_proj none
    assert summary.trainable_params == summary.adapter_params + biases


def test_a_target_matching_nothing_or_no_linear_is_refused():
    with pytest.raises(UsageError, match="matches no module"):
        attach_lora(tiny(), lora_config(2, "o_proj"))
    with pytest.raises(UsageError, match="matches only LayerNorm"):
        attach_lora(tiny(), lora_config(2, "norm"))


def test_the_forward_is_base_plus_scaled_b_a():
    torch.manual_seed(0)
    base = nn.Linear(4, 3)
    layer = LoraLinear(base, 2, 6.0, 0.0)
    nn.init.normal_(layer.lora_B.weight)
    x = torch.randn(5, 4)
    expected = base(x) + 3.0 * (x @ layer.lora_A.weight.T @ layer.lora_B.weight.T)
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_a_teachers_inventory_lists_every_parameter_once():
    model = tiny()
    entries = weight_inventory(model)
    assert sum(e.numel for e in entries) == sum(p.numel() for p in model.parameters())


def test_a_peft_regular_expression_matches_full_names():
    summary = attach_lora(tiny(), LoraConfig(2, 4.0, regex=r"layers\.[01]\.(q|v)_proj"))
    assert summary.adapted == ("layers.0.q_proj", "layers.0.v_proj", "layers.1.q_proj", "layers.1.v_proj")
    with pytest.raises(UsageError, match="matches no Linear"):
        attach_lora(tiny(), LoraConfig(2, 4.0, regex=r"o_proj"))
    with pytest.raises(UsageError, match="not a regular expression"):
        attach_lora(tiny(), LoraConfig(2, 4.0, regex=r"("))
