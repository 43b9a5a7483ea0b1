"""A two-layer MLP: the smallest model with an exact analytic count.

Forward matmul FLOPs for batch B: 2*B*(784*256 + 256*10); bias adds B*(256 + 10).
    flopcalc count examples/mlp.py --input 32x784
"""

import torch
from torch import nn


def build(in_features: int = 784, hidden: int = 256, classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    )


def example_inputs(in_features: int = 784):
    return (torch.randn(32, in_features),)
