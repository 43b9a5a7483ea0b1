"""What LoRA adapts and how wide: `--lora-rank`, `--lora-targets`, or a PEFT adapter_config.json, checked once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..files import read_json

DEFAULT_ALPHA_PER_RANK = 2  # lora_alpha = 2r when not given (a common choice; it scales, it costs nothing)
MAX_RANK = 1 << 20


@dataclass(frozen=True)
class LoraConfig:
    """LoRA (Hu et al. 2021): each targeted Linear y = W x + (alpha / r) B A x with A (r x in) and B (out x r)
    trained and W frozen.

    `targets`: module type names (`Linear`) or shell patterns matched against a module's full name or its last
    part (`q_proj`, `*.mlp.*`); empty = every Linear inside the repeated blocks (the attention and MLP
    projections). `regex`: a PEFT `target_modules` string, matched against the full name. `all_linear`: every
    Linear except the output head (PEFT's "all-linear"). `bias`: none, all or lora_only (which biases train).
    `modules_to_save`: modules trained whole next to the adapters. `origin` says where the settings came from."""

    rank: int
    alpha: float
    targets: tuple[str, ...] = ()
    regex: str | None = None
    all_linear: bool = False
    dropout: float = 0.0
    bias: str = "none"
    modules_to_save: tuple[str, ...] = ()
    origin: str = "--lora-rank"

    def describe(self) -> str:
        if self.regex is not None:
            where = f"modules whose full name matches {self.regex!r}"
        elif self.all_linear:
            where = "every Linear except the output head"
        elif self.targets:
            where = ", ".join(self.targets)
        else:
            where = "every Linear inside the repeated blocks (attention and MLP projections)"
        return (
            f"LoRA rank {self.rank}, alpha {self.alpha:g} (scale {self.alpha / self.rank:g}) on {where}"
            + (f", dropout {self.dropout:g}" if self.dropout else "")
            + (f", biases trained: {self.bias}" if self.bias != "none" else "")
            + (f", trained whole: {', '.join(self.modules_to_save)}" if self.modules_to_save else "")
            + f" ({self.origin})"
        )


def _rank(value: Any, flag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > MAX_RANK:
        raise UsageError(
            f"{flag} must be a whole number from 1 to {MAX_RANK}, got {value!r}",
            "LoRA's rank r is the inner width of B A, e.g. 8, 16 or 64",
        )
    return value


def _targets(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    targets = tuple(part.strip() for part in text.split(",") if part.strip())
    if not targets:
        raise UsageError(
            f"--lora-targets {text!r} names no module",
            "give module types or name patterns separated by commas, e.g. q_proj,v_proj or Linear",
        )
    return targets


def lora_config(
    rank: int | None, targets: str | None = None, alpha: float | None = None, config_file: str | None = None
) -> LoraConfig | None:
    """The LoRA setup the options ask for, or None when none is asked for. `config_file`: a PEFT
    adapter_config.json, instead of `rank`/`targets`/`alpha`."""
    if config_file is not None:
        given = [
            flag
            for flag, value in (("--lora-rank", rank), ("--lora-targets", targets), ("--lora-alpha", alpha))
            if value is not None
        ]
        if given:
            raise UsageError(
                f"--adapter-config and {', '.join(given)} exclude each other",
                "the adapter config file sets the rank, alpha and targets",
            )
        return read_peft_config(Path(config_file))
    if rank is None:
        if targets is not None or alpha is not None:
            raise UsageError("--lora-targets and --lora-alpha need --lora-rank R", "e.g. --lora-rank 16")
        return None
    r = _rank(rank, "--lora-rank")
    if alpha is not None and not (alpha > 0 and alpha < float("inf")):
        raise UsageError(f"--lora-alpha must be a number > 0, got {alpha!r}")
    return LoraConfig(r, float(alpha) if alpha is not None else float(DEFAULT_ALPHA_PER_RANK * r), _targets(targets))


def read_peft_config(path: Path) -> LoraConfig:
    """A PEFT LoraConfig saved as adapter_config.json: r, lora_alpha, target_modules (a list of name suffixes, a
    regular expression, or "all-linear"), lora_dropout, bias, modules_to_save. Variants that change the graph
    (DoRA, rank patterns per module) are refused rather than counted wrong."""
    what = "adapter config"
    if not path.is_file():
        raise UsageError(f"--adapter-config {path}: no such file", "give a PEFT adapter_config.json")
    data = read_json(path, UsageError, what)
    if not isinstance(data, dict):
        raise UsageError(f"{what} {path} is not a JSON object", "give a PEFT adapter_config.json")
    peft_type = data.get("peft_type", "LORA")
    if str(peft_type).upper() != "LORA":
        raise UsageError(f"{what} {path} is a {peft_type} adapter; only LoRA is modelled", "give a LoRA adapter config")
    for key in ("use_dora", "use_rslora"):
        if data.get(key):
            raise UsageError(f"{what} {path} sets {key}, which is not modelled", f"set {key} to false")
    for key in ("rank_pattern", "alpha_pattern", "layers_to_transform"):
        if data.get(key):
            raise UsageError(f"{what} {path} sets {key}, which is not modelled", f"remove {key}")
    rank = _rank(data.get("r", 8), f"{what} {path}: r")
    alpha = data.get("lora_alpha", 8)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise UsageError(f"{what} {path}: lora_alpha must be a number > 0, got {alpha!r}")
    dropout = data.get("lora_dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise UsageError(f"{what} {path}: lora_dropout must be in [0, 1), got {dropout!r}")
    bias = data.get("bias", "none")
    if bias not in ("none", "all", "lora_only"):
        raise UsageError(f"{what} {path}: bias must be none, all or lora_only, got {bias!r}")
    modules_to_save = data.get("modules_to_save") or []
    if not isinstance(modules_to_save, list) or not all(isinstance(m, str) for m in modules_to_save):
        raise UsageError(f"{what} {path}: modules_to_save must be a list of module names")
    target = data.get("target_modules")
    targets: tuple[str, ...] = ()
    regex = None
    all_linear = False
    if isinstance(target, str):
        if target == "all-linear":
            all_linear = True
        else:
            regex = target
    elif isinstance(target, list) and target and all(isinstance(t, str) for t in target):
        targets = tuple(target)
    elif target is not None:
        raise UsageError(
            f"{what} {path}: target_modules must be a list of names, a regular expression or "
            f'"all-linear", got {target!r}'
        )
    return LoraConfig(
        rank, float(alpha), targets, regex, all_linear, float(dropout), bias, tuple(modules_to_save), origin=str(path)
    )
