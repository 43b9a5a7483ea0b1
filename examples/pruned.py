"""A small MLP with pruned weights, made the same way every time (seeded): its first layer 2:4-sparse (the two
smaller of every four weights along the input dimension zeroed), its second magnitude-pruned to 75% zeros.

    flopcalc count examples/pruned.py:build --sparsity
    python examples/pruned.py pruned.safetensors        # its weights, for --weights on the dense model:
    flopcalc count examples/pruned.py:dense --weights pruned.safetensors --sparsity
    flopcalc train examples/pruned.py:build_2_4 --examples 1M --gpu A100-SXM4-80GB --sparse-peak

Batch 8, forward matmuls: 2*8*64*32 = 32,768 (2:4: 16,384 effective) and 2*8*32*16 = 8,192 (2,048 effective);
docs/compression.md works the whole count out by hand.
"""

import sys

import torch
from torch import nn


def dense(in_features: int = 64, hidden: int = 32, classes: int = 16) -> nn.Module:
    """The architecture with seeded dense weights."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def prune_2_4(weight: torch.Tensor) -> None:
    """Zero the two smaller-magnitude weights of every group of four along the last (input) dimension."""
    groups = weight.view(weight.shape[0], -1, 4)
    smaller = groups.abs().argsort(dim=-1)[..., :2]
    groups.scatter_(-1, smaller, 0.0)


def prune_magnitude(weight: torch.Tensor, zero_fraction: float) -> None:
    """Zero exactly round(zero_fraction * numel) weights, the smallest in magnitude."""
    count = round(zero_fraction * weight.numel())
    smallest = weight.abs().flatten().argsort()[:count]
    weight.view(-1)[smallest] = 0.0


def build(in_features: int = 64, hidden: int = 32, classes: int = 16) -> nn.Module:
    model = dense(in_features, hidden, classes)
    with torch.no_grad():
        prune_2_4(model[0].weight)
        prune_magnitude(model[2].weight, 0.75)
    return model


def build_2_4(in_features: int = 64, hidden: int = 32, classes: int = 16) -> nn.Module:
    """Both layers 2:4: what sparse tensor cores run at their sparse peak (`--sparse-peak`)."""
    model = dense(in_features, hidden, classes)
    with torch.no_grad():
        prune_2_4(model[0].weight)
        prune_2_4(model[2].weight)
    return model


def example_inputs(in_features: int = 64):
    return (torch.randn(8, in_features),)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/pruned.py OUT.safetensors|OUT.pt")
    state = {name: tensor.contiguous() for name, tensor in build().state_dict().items()}
    if sys.argv[1].endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(state, sys.argv[1])
    else:
        torch.save(state, sys.argv[1])
