"""Small torch models more than one test file builds: one definition each, so the tests agree on what they count."""

from __future__ import annotations

from collections.abc import Callable

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
