"""SqueezeNet's networks: the Fire module, the design space, SqueezeNet 1.0, and FireNet for MNIST (notebook 05).

Only the networks live here; the lecture's experiments (torchvision's reference models, the
size accounting, compressing them) are in ``dclab.models.reference`` and ``dclab.lessons.squeezenet``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from dclab.errors import DclabError
from dclab.models.layers import compressible_layers

# ---------------------------------------------------------------- the Fire module


class Fire(nn.Module):
    """A Fire module: 1x1 squeeze, then 1x1 and 3x3 expand, concatenated (notebook 05, section 1).

    Attribute names match torchvision's ``Fire``, so its weights load unchanged.
    ``batchnorm=True`` puts a BatchNorm after each convolution (whose bias it
    makes redundant, so the convolutions then have none): small nets train in
    a few epochs instead of a few dozen.
    """

    def __init__(self, in_channels: int, s1x1: int, e1x1: int, e3x3: int, batchnorm: bool = False) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("s1x1", s1x1), ("e1x1", e1x1), ("e3x3", e3x3)):
            if int(value) < 1:
                raise DclabError(f"a Fire module needs {name} >= 1, got {value}; use at least one filter")
        self.in_channels = in_channels
        bias = not batchnorm
        self.squeeze = nn.Conv2d(in_channels, s1x1, kernel_size=1, bias=bias)
        self.expand1x1 = nn.Conv2d(s1x1, e1x1, kernel_size=1, bias=bias)
        self.expand3x3 = nn.Conv2d(s1x1, e3x3, kernel_size=3, padding=1, bias=bias)
        norm = nn.BatchNorm2d if batchnorm else (lambda _: nn.Identity())
        self.squeeze_bn, self.expand1x1_bn, self.expand3x3_bn = norm(s1x1), norm(e1x1), norm(e3x3)

    @property
    def out_channels(self) -> int:
        """Channels of the output: ``e1x1 + e3x3``."""
        return self.expand1x1.out_channels + self.expand3x3.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.relu(self.squeeze_bn(self.squeeze(x)))
        e1 = torch.relu(self.expand1x1_bn(self.expand1x1(s)))
        e3 = torch.relu(self.expand3x3_bn(self.expand3x3(s)))
        return torch.cat([e1, e3], dim=1)


def fire_parameters(in_channels: int, s1x1: int, e1x1: int, e3x3: int) -> int:
    """Parameters of a Fire module, biases included, by formula (notebook 05, section 1)."""
    squeeze = in_channels * s1x1 + s1x1
    expand = s1x1 * e1x1 + e1x1 + 9 * s1x1 * e3x3 + e3x3
    return squeeze + expand


def conv_parameters(in_channels: int, out_channels: int, kernel: int) -> int:
    """Parameters of a ``kernel x kernel`` convolution with bias."""
    return in_channels * out_channels * kernel * kernel + out_channels


# ---------------------------------------------------------------- the design space


class FireSpec(NamedTuple):
    """Filters of one Fire module: ``s1x1`` squeeze, ``e1x1`` and ``e3x3`` expand."""

    s1x1: int
    e1x1: int
    e3x3: int

    @property
    def expand(self) -> int:
        """All expand filters, ``e1x1 + e3x3`` (the paper's e_i)."""
        return self.e1x1 + self.e3x3


def design_space(
    sr: float = 0.125,
    pct3x3: float = 0.5,
    base_e: int = 128,
    incr_e: int = 128,
    freq: int = 2,
    n_fire: int = 8,
) -> list[FireSpec]:
    """Fire filters from SqueezeNet's metaparameters (paper section 5; notebook 05, section 3).

    ``e_i = base_e + incr_e * floor(i / freq)``, ``s1x1 = SR * e_i``,
    ``e3x3 = pct3x3 * e_i``, ``e1x1 = e_i - e3x3``; counts are rounded and kept >= 1.
    The defaults give SqueezeNet 1.0 exactly.
    """
    if not 0 < sr <= 1:
        raise DclabError(f"the squeeze ratio SR must be in (0, 1], got {sr}; the paper explores 0.125 to 1")
    if not 0 < pct3x3 < 1:
        raise DclabError(f"pct3x3 must be strictly between 0 and 1, got {pct3x3}; the paper explores 0.01 to 0.99")
    if base_e < 2 or incr_e < 0 or freq < 1 or n_fire < 1:
        raise DclabError("need base_e >= 2, incr_e >= 0, freq >= 1 and n_fire >= 1")
    specs = []
    for i in range(n_fire):
        e = base_e + incr_e * (i // freq)
        e3 = min(max(round(pct3x3 * e), 1), e - 1)
        specs.append(FireSpec(max(round(sr * e), 1), e - e3, e3))
    return specs


class SqueezeNet(nn.Module):
    """SqueezeNet 1.0's macro-architecture over any Fire filters (notebook 05, section 3).

    conv1 (96 7x7/2), max-pool, fire2-4, max-pool, fire5-8, max-pool, fire9,
    dropout, conv10 (1x1 to the classes), global average pool. Layer names follow
    the paper's Caffe model (``conv1``, ``fire2`` ... ``fire9``, ``conv10``).
    """

    def __init__(self, fires: list[FireSpec] | None = None, num_classes: int = 1000) -> None:
        super().__init__()
        fires = design_space() if fires is None else list(fires)
        if len(fires) != 8:
            raise DclabError(f"SqueezeNet 1.0 has 8 Fire modules (fire2..fire9), got {len(fires)} specs")
        self.conv1 = nn.Conv2d(3, 96, kernel_size=7, stride=2)
        in_channels = 96
        for number, spec in enumerate(fires, start=2):
            fire = Fire(in_channels, *spec)
            self.add_module(f"fire{number}", fire)
            in_channels = fire.out_channels
        self.dropout = nn.Dropout(0.5)
        self.conv10 = nn.Conv2d(in_channels, num_classes, kernel_size=1)
        self.fires = list(fires)
        self._init_like_torchvision()

    def _init_like_torchvision(self) -> None:
        for name, module in self.named_modules():
            if isinstance(module, nn.Conv2d):
                if name == "conv10":
                    nn.init.normal_(module.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = nn.functional.max_pool2d
        x = pool(torch.relu(self.conv1(x)), 3, 2, ceil_mode=True)
        x = pool(self.fire4(self.fire3(self.fire2(x))), 3, 2, ceil_mode=True)
        x = pool(self.fire8(self.fire7(self.fire6(self.fire5(x)))), 3, 2, ceil_mode=True)
        x = torch.relu(self.conv10(self.dropout(self.fire9(x))))
        return x.mean(dim=(2, 3))


def squeezenet_parameters(fires: list[FireSpec], num_classes: int = 1000) -> int:
    """Parameters of ``SqueezeNet(fires)`` by formula, without building it (notebook 05, section 3)."""
    total, in_channels = conv_parameters(3, 96, 7), 96
    for spec in fires:
        total += fire_parameters(in_channels, *spec)
        in_channels = spec.expand
    return total + conv_parameters(in_channels, num_classes, 1)


def squeezenet_variant(sr: float = 0.125, pct3x3: float = 0.5, **metaparameters: int) -> SqueezeNet:
    """A SqueezeNet built from the design space's SR and pct3x3 (notebook 05, section 3)."""
    return SqueezeNet(design_space(sr, pct3x3, **metaparameters))


# ---------------------------------------------------------------- a Fire-module network for MNIST


class FireNet(nn.Module):
    """A small SqueezeNet for MNIST: conv1, three Fire modules, conv10, global average pool (notebook 05, section 4).

    Like SqueezeNet it has no fully connected layer: the classifier is a 1x1
    convolution averaged over the last 7x7 map. ``FireNet()`` is the deployed
    form (plain convolutions with biases: what ``build("firenet")`` returns and a
    ``.dcz`` stores). It is trained as ``FireNet(batchnorm=True)``, which reaches
    < 1% test error in a few CPU minutes, and ``fold_batchnorm`` then folds each
    BatchNorm into the convolution before it: same function, no extra parameters.
    """

    def __init__(self, batchnorm: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1, bias=not batchnorm)  # 28x28, then max-pool
        self.conv1_bn = nn.BatchNorm2d(32) if batchnorm else nn.Identity()
        self.fire2 = Fire(32, 16, 32, 32, batchnorm=batchnorm)  # 14x14, 64 channels
        self.fire3 = Fire(64, 16, 48, 48, batchnorm=batchnorm)  # 14x14, 96 channels, then max-pool
        self.fire4 = Fire(96, 24, 64, 64, batchnorm=batchnorm)  # 7x7, 128 channels
        self.conv10 = nn.Conv2d(128, 10, kernel_size=1)
        for module in self.modules():  # He init keeps the signal alive through the ReLUs
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.conv10.weight, std=0.01)  # start with near-uniform class scores

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = nn.functional.max_pool2d
        # channels-last activations: max-pooling and BatchNorm run about 1.6x faster on a CPU
        x = self.conv1(x).contiguous(memory_format=torch.channels_last)
        x = pool(torch.relu(self.conv1_bn(x)), 2)
        x = pool(self.fire3(self.fire2(x)), 2)
        x = self.conv10(self.fire4(x))
        return x.mean(dim=(2, 3))


@torch.no_grad()
def fold_batchnorm(model: FireNet) -> FireNet:
    """The deployed ``FireNet()`` computing what ``model`` (trained with BatchNorm) computes in eval mode (notebook 05, section 4).

    Each ``conv -> BN`` becomes one convolution: ``w' = w * g / sqrt(var + eps)``,
    ``b' = beta + (b - mean) * g / sqrt(var + eps)``.
    """
    folded = FireNet(batchnorm=False)
    source = dict(model.named_modules())
    for name, conv in compressible_layers(folded).items():
        trained, bn = source[name], source.get(f"{name}_bn")
        bias = trained.bias if trained.bias is not None else torch.zeros(trained.out_channels)
        if isinstance(bn, nn.BatchNorm2d):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.copy_(trained.weight * scale[:, None, None, None])
            conv.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
        else:
            conv.weight.copy_(trained.weight)
            conv.bias.copy_(bias)
    return folded.eval()
