"""Mixture-of-experts layers: which parameters are experts, and how many of them one token runs through.

A token routed to top_k of a layer's num_experts experts uses top_k / num_experts of that layer's expert
weights, and every other parameter in full. This reads the module tree only (no forward): an experts
module is a module named `experts` (the name the mixture-of-experts models of transformers and most other
code bases give it) that stacks its experts' weights along a leading dimension of num_experts (transformers'
fused experts: `gate_up_proj` [E, 2F, H]), fuses them along the first dimension of weights it declares
num_experts for (DBRX: `w1` [E x F, H] in one child), or holds one child module per expert (an
nn.ModuleList / nn.ModuleDict). top_k is read from the layer that owns the experts, its router, or the
config the experts module keeps.
"""

from __future__ import annotations

import torch.nn as nn

from .report import ExpertLayer

EXPERTS_NAME = "experts"
# where a layer, its router or a config keeps the number of experts each token is routed to
# where an experts module keeps how many experts it holds
NUM_EXPERTS_ATTRIBUTES = ("num_experts", "moe_num_experts", "num_local_experts", "n_routed_experts")
TOP_K_ATTRIBUTES = ("top_k", "num_experts_per_tok", "num_experts_per_token", "moe_top_k", "moe_k")


def expert_layers(model: nn.Module) -> list[ExpertLayer]:
    """Every experts module of the tree (see the module docstring), outermost first."""
    modules = dict(model.named_modules())
    layers: list[ExpertLayer] = []
    for name, module in modules.items():
        if name.rsplit(".", 1)[-1] != EXPERTS_NAME or any(name.startswith(layer.name + ".") for layer in layers):
            continue
        num_experts = _num_experts(module)
        if num_experts is None or num_experts < 1:
            continue
        parent = modules.get(name.rpartition(".")[0] if "." in name else "")
        params = sum(p.numel() for p in module.parameters())
        layers.append(ExpertLayer(name, num_experts, _top_k(module, parent, num_experts), params))
    return layers


def active_parameters(model: nn.Module, layers: list[ExpertLayer] | None = None) -> int:
    """Parameters one token runs through: all of them, with each experts layer's share scaled by
    top_k / num_experts (exact: each expert holds params / num_experts)."""
    layers = expert_layers(model) if layers is None else layers
    total = sum(p.numel() for p in model.parameters())
    for layer in layers:
        if layer.top_k is not None:
            total -= layer.params - layer.params // layer.num_experts * layer.top_k
    return total


def _num_experts(module: nn.Module) -> int | None:
    """Children, one per expert (ModuleList/ModuleDict); else the number the module declares, where every
    weight under it splits evenly into that many (stacked [E, ...], or fused [E x F, ...] in a child as DBRX
    keeps them); else two or more children, one per expert; else weights stacked along a leading num_experts."""
    children = list(module.children())
    if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
        return len(children) or None
    declared = next(
        (
            value
            for value in (getattr(module, name, None) for name in NUM_EXPERTS_ATTRIBUTES)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0
        ),
        None,
    )
    weights = list(module.parameters())
    if declared is not None and weights and all(p.dim() >= 1 and p.shape[0] % declared == 0 for p in weights):
        return declared
    if len(children) > 1 and not list(module.parameters(recurse=False)):
        return len(children)
    leading = {p.shape[0] for p in module.parameters(recurse=False) if p.dim() >= 2}
    return leading.pop() if len(leading) == 1 and declared is None else None


def _top_k(module: nn.Module, parent: nn.Module | None, num_experts: int) -> int | None:
    owners = [parent] if parent is not None else []
    if parent is not None:
        owners += [child for child in parent.children() if child is not module]
    owners += [module, getattr(module, "config", None), getattr(parent, "config", None)]
    for owner in owners:
        for attribute in TOP_K_ATTRIBUTES:
            value = getattr(owner, attribute, None) if owner is not None else None
            if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= num_experts:
                return value
    return None
