"""Experts found however a model stores them: one child per expert, stacked [E, ...], or fused [E x F, ...]."""

import torch
import torch.nn as nn

from flopcalc.counting.experts import active_parameters, expert_layers

H, F, E, TOP_K = 8, 6, 4, 2


class FusedGLU(nn.Module):
    """DBRX's layout: every expert's rows of w1, v1 and w2 in one [E x F, H] weight each, in a child module."""

    def __init__(self):
        super().__init__()
        self.w1, self.v1, self.w2 = (nn.Parameter(torch.zeros(E * F, H)) for _ in range(3))


class FusedExperts(nn.Module):
    def __init__(self):
        super().__init__()
        self.num_experts = E
        self.mlp = FusedGLU()


class Block(nn.Module):
    def __init__(self, experts):
        super().__init__()
        self.top_k = TOP_K
        self.router = nn.Linear(H, E, bias=False)
        self.experts = experts


def test_experts_fused_in_one_child_module_split_by_the_number_they_declare():
    model = Block(FusedExperts())
    [layer] = expert_layers(model)
    assert (layer.name, layer.num_experts, layer.top_k, layer.params) == ("experts", E, TOP_K, 3 * E * F * H)
    assert active_parameters(model) == H * E + 3 * F * H * TOP_K  # router, and top-2 experts' rows


def test_one_child_per_expert_and_stacked_weights_still_found():
    per_expert = nn.ModuleList(nn.Linear(H, F, bias=False) for _ in range(E))
    assert active_parameters(Block(per_expert)) == H * E + TOP_K * F * H
    stacked = nn.Module()
    stacked.gate_up_proj = nn.Parameter(torch.zeros(E, 2 * F, H))
    assert active_parameters(Block(stacked)) == H * E + TOP_K * 2 * F * H


def test_a_declared_count_the_weights_do_not_split_into_is_not_trusted():
    experts = FusedExperts()
    experts.num_experts = 5  # 24 rows do not split into 5 experts
    assert expert_layers(Block(experts)) == []
