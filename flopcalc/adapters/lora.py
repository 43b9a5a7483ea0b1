"""LoRA put into a loaded model: each targeted Linear becomes `LoraLinear` (the frozen base plus B A scaled), so
the counter sees the adapters' products and the base's input gradients without its weight gradients, and the
activation measure sees what the adapters save."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

import torch
from torch import nn

from ..counting.saved_tensors import find_blocks
from ..errors import UsageError
from .config import LoraConfig
from .quantisation import WeightEntry


class LoraLinear(nn.Module):
    """y = base(x) + (alpha / r) * lora_B(lora_A(dropout(x))), as PEFT's LoRA Linear computes it; A and B are
    created on the base's device and dtype (on meta they take no memory)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__()
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.base = base
        self.lora_A = nn.Linear(base.in_features, rank, bias=False, **factory)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False, **factory)
        self.lora_dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.scaling = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


@dataclass(frozen=True)
class AdapterSummary:
    """What attaching LoRA made of a model: parameters in all and those that train, the adapted modules, and the
    frozen parameters as storage sees them (for a quantised base's bytes)."""

    config: LoraConfig
    params: int
    trainable_params: int
    adapter_params: int
    adapted: tuple[str, ...]
    frozen: tuple[WeightEntry, ...]

    @property
    def frozen_params(self) -> int:
        return sum(entry.numel for entry in self.frozen)

    def to_dict(self) -> dict[str, object]:
        return {
            "rank": self.config.rank,
            "alpha": self.config.alpha,
            "origin": self.config.origin,
            "adapted_modules": len(self.adapted),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "adapter_params": self.adapter_params,
            "frozen_params": self.frozen_params,
        }


def output_head(model: nn.Module) -> nn.Module | None:
    """The layer that maps the hidden state to the vocabulary (a Hugging Face model says which), which
    quantisers leave at 16 bits and "all-linear" leaves out."""
    getter = getattr(model, "get_output_embeddings", None)
    if callable(getter):
        try:
            head = getter()
        except (NotImplementedError, AttributeError, TypeError):
            return None
        return head if isinstance(head, nn.Module) else None
    return None


def _block_linears(model: nn.Module) -> list[str]:
    _, blocks, _ = find_blocks(model)
    inside = {id(module) for block in blocks for module in block.modules()}
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear) and id(module) in inside]


def _matches(name: str, module: nn.Module, target: str) -> bool:
    return (
        type(module).__name__ == target or fnmatch.fnmatchcase(name, target) or fnmatch.fnmatchcase(name, f"*.{target}")
    )


def select_targets(model: nn.Module, config: LoraConfig) -> list[str]:
    """The qualified names of the Linear layers LoRA adapts; a target matching no module, or only modules that
    are not Linear, is a UsageError."""
    linears = {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    head = output_head(model)
    if config.regex is not None:
        try:
            pattern = re.compile(config.regex)
        except re.error as error:
            raise UsageError(
                f"{config.origin}: target_modules {config.regex!r} is not a regular expression: {error}"
            ) from None
        chosen = [name for name in linears if pattern.fullmatch(name)]
        if not chosen:
            raise UsageError(
                f"{config.origin}: target_modules {config.regex!r} matches no Linear layer", _names_hint(linears)
            )
        return chosen
    if config.all_linear:
        chosen = [name for name, module in linears.items() if module is not head]
        if not chosen:
            raise UsageError(f"{config.origin}: the model has no Linear layer for LoRA to adapt")
        return chosen
    if not config.targets:
        chosen = [name for name in _block_linears(model) if linears[name] is not head]
        if not chosen:
            raise UsageError(
                "the model has no Linear layer inside repeated blocks for LoRA to adapt",
                "name the layers with --lora-targets, e.g. --lora-targets Linear",
            )
        return chosen
    chosen = []
    modules = dict(model.named_modules())
    for target in config.targets:
        hits = [name for name, module in modules.items() if name and _matches(name, module, target)]
        if not hits:
            raise UsageError(f"LoRA target {target!r} matches no module", _names_hint(linears))
        linear_hits = [name for name in hits if name in linears]
        if not linear_hits:
            kinds = sorted({type(modules[name]).__name__ for name in hits})
            raise UsageError(
                f"LoRA target {target!r} matches only {', '.join(kinds)} modules; LoRA adapts Linear layers",
                _names_hint(linears),
            )
        chosen.extend(name for name in linear_hits if name not in chosen)
    return chosen


def _names_hint(linears: dict[str, nn.Module]) -> str:
    names = list(linears)[:3]
    suffixes = sorted({name.rpartition(".")[2] for name in linears})[:8]
    if not names:
        return "the model has no Linear layer"
    return (
        f"Linear layers are named like {', '.join(names)}; give types (Linear) or name patterns such as "
        f"{', '.join(suffixes)}"
    )


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def attach_lora(model: nn.Module, config: LoraConfig) -> AdapterSummary:
    """Freeze every parameter of `model`, wrap the targeted Linear layers in LoraLinear (their A and B train),
    train biases and `modules_to_save` as the config says. Changes `model` in place."""
    head = output_head(model)
    targets = select_targets(model, config)
    quantisable = {
        id(module.weight): module.out_features
        for module in model.modules()
        if isinstance(module, nn.Linear) and module is not head
    }
    for param in model.parameters():
        param.requires_grad_(False)
    adapters: list[nn.Parameter] = []
    for name in targets:
        wrapped = LoraLinear(model.get_submodule(name), config.rank, config.alpha, config.dropout)
        _set_module(model, name, wrapped)
        adapters.extend([wrapped.lora_A.weight, wrapped.lora_B.weight])
    if config.bias != "none":
        for module in model.modules():
            owner = module.base if isinstance(module, LoraLinear) else module
            bias = getattr(owner, "bias", None)
            if isinstance(bias, nn.Parameter) and (config.bias == "all" or isinstance(module, LoraLinear)):
                bias.requires_grad_(True)
    for target in config.modules_to_save:
        hits = [module for name, module in model.named_modules() if name and _matches(name, module, target)]
        if not hits:
            raise UsageError(f"{config.origin}: modules_to_save {target!r} matches no module")
        for module in hits:
            for param in module.parameters():
                param.requires_grad_(True)
    seen: set[int] = set()
    frozen: list[WeightEntry] = []
    params = trainable = 0
    for name, param in model.named_parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        params += param.numel()
        if param.requires_grad:
            trainable += param.numel()
        else:
            frozen.append(WeightEntry(name, param.numel(), quantisable.get(id(param))))
    adapter_params = sum(p.numel() for p in adapters)
    return AdapterSummary(config, params, trainable, adapter_params, tuple(targets), tuple(frozen))


def weight_inventory(model: nn.Module) -> tuple[WeightEntry, ...]:
    """Every parameter of `model` once, as storage sees it (a frozen teacher's weights)."""
    head = output_head(model)
    rows = {
        id(module.weight): module.out_features
        for module in model.modules()
        if isinstance(module, nn.Linear) and module is not head
    }
    seen: set[int] = set()
    entries = []
    for name, param in model.named_parameters():
        if id(param) not in seen:
            seen.add(id(param))
            entries.append(WeightEntry(name, param.numel(), rows.get(id(param))))
    return tuple(entries)
