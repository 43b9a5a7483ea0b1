"""Small torch models more than one test file builds, as classes or as source files for the loaders: one definition
each, so the tests agree on what they count."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


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
