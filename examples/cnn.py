"""A small CIFAR-style CNN: conv, batch norm, ReLU, pooling and a linear head.

flopcalc count examples/cnn.py:build --input 8x3x32x32
"""

import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, width: int = 32, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, groups=2 * width, bias=False),  # depthwise
            nn.Conv2d(2 * width, 4 * width, 1),  # pointwise
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4 * width, classes)

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.head(torch.flatten(x, 1))


def build(width: int = 32, classes: int = 10) -> nn.Module:
    return SmallCNN(width, classes)


def example_inputs():
    return (torch.randn(8, 3, 32, 32),)
