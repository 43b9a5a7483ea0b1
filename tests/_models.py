"""Small torch models more than one test file builds, as classes or as source files for the loaders: one definition
each, so the tests agree on what they count."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from tests._hf_configs import gpt2


class ReturnsTwice(nn.Module):
    """A Linear(4, 3) whose one output stands at two places of what `forward` returns, packed by `pack`."""

    def __init__(self, pack: Callable[[torch.Tensor], object]):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.pack = pack

    def forward(self, x: torch.Tensor) -> object:
        return self.pack(self.linear(x))


def source_file(folder: Path, name: str, source: str) -> Path:
    """`source` (a model file's Python text) written as `folder`/`name`: its path, for a `PATH:factory` spec."""
    path = folder / name
    path.write_text(source)
    return path


def tiny_gpt2(layers=2, heads=4, width=64, vocab=1000, positions=64):
    """A small GPT2LMHeadModel on the meta device (skips the test when transformers is not installed)."""
    transformers = pytest.importorskip("transformers")
    config = transformers.AutoConfig.for_model(
        **gpt2(width, layers, heads, vocab, positions, bos_token_id=0, eos_token_id=0)
    )
    with torch.device("meta"):
        return transformers.GPT2LMHeadModel(config)


def causal_mask(b, h, q, kv):
    """flex_attention's causal mask_mod: each query sees the keys at and before its own position."""
    return q >= kv
