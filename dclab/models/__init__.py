"""The networks dclab compresses, and the one registry of their names (``arch``).

``lenet300`` and ``lenet5`` are the papers' MNIST networks (``models.lenet``); ``firenet`` and
``squeezenet1_0`` are SqueezeNet's (``models.squeezenet``). The registry is static: building a
network by name imports nothing else, so no lecture module registers models as a side effect.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from dclab.errors import DclabError
from dclab.models.layers import compressible_layers, count_parameters, layer_kind
from dclab.models.lenet import LeNet5, LeNet300
from dclab.models.squeezenet import Fire, FireNet, FireSpec, SqueezeNet, fold_batchnorm

__all__ = [
    "BUILDERS", "TITLES", "build", "register_architecture",
    "compressible_layers", "count_parameters", "layer_kind",
    "LeNet300", "LeNet5", "Fire", "FireNet", "FireSpec", "SqueezeNet", "fold_batchnorm",
]

BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "lenet300": LeNet300,
    "lenet5": LeNet5,
    "firenet": FireNet,
    "squeezenet1_0": SqueezeNet,
}
TITLES = {
    "lenet300": "LeNet-300-100",
    "lenet5": "LeNet-5",
    "firenet": "FireNet (MNIST)",
    "squeezenet1_0": "SqueezeNet 1.0",
}


def register_architecture(arch: str, builder: Callable[[], nn.Module], title: str | None = None) -> None:
    """Make ``build(name)`` know another architecture (a reader's own network)."""
    BUILDERS[arch] = builder
    TITLES[arch] = title or arch


def build(arch: str) -> nn.Module:
    """A freshly initialised network by name: ``"lenet300"``, ``"lenet5"``, ``"firenet"``, ..."""
    if arch not in BUILDERS:
        raise DclabError(f"unknown model {arch!r}; choose one of: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[arch]()
