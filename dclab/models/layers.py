"""What every network here is made of, for the engine: its compressible layers, their kind, its size."""
from __future__ import annotations

from torch import nn

from dclab.errors import DclabError


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
