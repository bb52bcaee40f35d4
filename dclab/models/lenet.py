"""The papers' reference networks for MNIST, as in their Caffe models (notebooks 02-04, 06).

Layer names follow Caffe (``ip1``, ``conv1``...), so reports read like the papers' tables.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from dclab.models.layers import ChannelsLastConv2d

Stage = tuple[str, Callable[[torch.Tensor], torch.Tensor]]


def run_stages(stages: list[Stage], x: torch.Tensor) -> torch.Tensor:
    """Apply the stages in turn: a network's whole forward pass."""
    for _, stage in stages:
        x = stage(x)
    return x


class LeNet300(nn.Module):
    """LeNet-300-100: 784-300-100-10 fully connected, 266,610 parameters (notebook 02)."""

    def __init__(self) -> None:
        super().__init__()
        self.ip1 = nn.Linear(784, 300)
        self.ip2 = nn.Linear(300, 100)
        self.ip3 = nn.Linear(100, 10)

    def forward_stages(self) -> list[Stage]:
        """The forward pass cut after each layer, ``[(layer, function)]``: the capstone reruns only the
        stages after a changed layer (notebook 06)."""
        return [
            ("ip1", lambda x: torch.relu(self.ip1(x.flatten(1)))),
            ("ip2", lambda x: torch.relu(self.ip2(x))),
            ("ip3", self.ip3),
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stages(self.forward_stages(), x)


class LeNet5(nn.Module):
    """LeNet-5 as in Caffe's lenet.prototxt: 431,080 parameters (notebook 03).

    conv 5x5x20, max-pool, conv 5x5x50, max-pool, fc 800-500, ReLU, fc 500-10.
    Like the Caffe model, the convolutions have no non-linearity of their own.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ChannelsLastConv2d(1, 20, kernel_size=5)
        self.conv2 = ChannelsLastConv2d(20, 50, kernel_size=5)
        self.ip1 = nn.Linear(800, 500)
        self.ip2 = nn.Linear(500, 10)

    def forward_stages(self) -> list[Stage]:
        """The forward pass cut after each layer, ``[(layer, function)]`` (see ``LeNet300.forward_stages``)."""
        pool = nn.functional.max_pool2d
        return [
            ("conv1", lambda x: pool(self.conv1(x), 2)),
            ("conv2", lambda x: pool(self.conv2(x), 2)),
            ("ip1", lambda x: torch.relu(self.ip1(x.flatten(1)))),
            ("ip2", self.ip2),
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stages(self.forward_stages(), x)
