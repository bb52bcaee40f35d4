"""The papers' reference networks for MNIST, as in their Caffe models.

Layer names follow Caffe (``ip1``, ``conv1``...), so reports read like the papers' tables.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .errors import DclabError


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


BUILDERS: dict[str, Callable[[], nn.Module]] = {"lenet300": LeNet300, "lenet5": LeNet5}
TITLES = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}


def register_architecture(name: str, builder: Callable[[], nn.Module], title: str | None = None) -> None:
    """Make ``build(name)`` know another architecture (used by ``dclab.squeeze``)."""
    BUILDERS[name] = builder
    TITLES[name] = title or name


def build(name: str) -> nn.Module:
    """A freshly initialised network by name: ``"lenet300"``, ``"lenet5"``, ..."""
    _register_lazy_architectures()
    if name not in BUILDERS:
        raise DclabError(f"unknown model {name!r}; choose one of: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[name]()


def _register_lazy_architectures() -> None:
    try:  # dclab.squeeze registers its Fire-module networks when imported
        from . import squeeze  # noqa: F401
    except ImportError:
        pass


def count_parameters(model: nn.Module) -> int:
    """Number of parameters, biases included."""
    return sum(p.numel() for p in model.parameters())


def compressible_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The Linear and Conv2d modules by name, in definition (forward) order."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv2d))
    }


def layer_kind(module: nn.Module) -> str:
    """``"conv"`` for convolutions, ``"fc"`` for fully connected layers."""
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.Linear):
        return "fc"
    raise DclabError(f"{type(module).__name__} is neither a convolution nor a fully connected layer")
