"""The papers' reference networks for MNIST, as in their Caffe models (notebooks 02-04, 06).

Layer names follow Caffe (``ip1``, ``conv1``...), so reports read like the papers' tables.
"""
from __future__ import annotations

import torch
from torch import nn


class LeNet300(nn.Module):
    """LeNet-300-100: 784-300-100-10 fully connected, 266,610 parameters (notebook 02)."""

    def __init__(self) -> None:
        super().__init__()
        self.ip1 = nn.Linear(784, 300)
        self.ip2 = nn.Linear(300, 100)
        self.ip3 = nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.ip1(x.flatten(1)))
        x = torch.relu(self.ip2(x))
        return self.ip3(x)


class LeNet5(nn.Module):
    """LeNet-5 as in Caffe's lenet.prototxt: 431,080 parameters (notebook 03).

    conv 5x5x20, max-pool, conv 5x5x50, max-pool, fc 800-500, ReLU, fc 500-10.
    Like the Caffe model, the convolutions have no non-linearity of their own.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, kernel_size=5)
        self.conv2 = nn.Conv2d(20, 50, kernel_size=5)
        self.ip1 = nn.Linear(800, 500)
        self.ip2 = nn.Linear(500, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(self.conv1(x), 2)
        x = nn.functional.max_pool2d(self.conv2(x), 2)
        x = torch.relu(self.ip1(x.flatten(1)))
        return self.ip2(x)
