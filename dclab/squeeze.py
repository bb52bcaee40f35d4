"""SqueezeNet: Fire modules, the design space, a Fire-module net for MNIST, size accounting (notebook 05).

SqueezeNet (Iandola et al., 2016) shrinks a network by its architecture before any
compression: a Fire module *squeezes* its input to a few channels with 1x1 filters,
then *expands* them with parallel 1x1 and 3x3 filters whose outputs are
concatenated. Every count here comes from real ``nn.Module``s (torchvision's
architectures included), never from typed-in numbers.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

import torch
from torch import nn

from . import zoo
from .data import load_mnist
from .errors import DclabError
from .models import compressible_layers, count_parameters, layer_kind, register_architecture
from .paths import cache_dir
from .train import test_error, train
from .zoo import Recipe

if TYPE_CHECKING:
    from .pipeline import CompressionConfig, CompressionReport

FP32_BYTES = 4
MB = 1_000_000  # sizes in MB are 10**6 bytes, as in the papers' tables

# What the papers report (``shared/refs/papers.md``), only ever shown *beside* measured numbers.
PAPER_FIGURES = {
    "alexnet": {"title": "AlexNet", "parameters": 61_000_000, "megabytes": 240.0},
    "vgg16": {"title": "VGG-16", "parameters": 138_000_000, "megabytes": 552.0},
    "squeezenet1_0": {"title": "SqueezeNet 1.0", "parameters": 1_240_000, "megabytes": 4.8},
    "squeezenet1_1": {"title": "SqueezeNet 1.1", "parameters": None, "megabytes": None},
}
PAPER_SQUEEZENET_DC = {6: {"megabytes": 0.47, "ratio_vs_alexnet": 510}, 8: {"megabytes": 0.66, "ratio_vs_alexnet": 363}}
PAPER_LENET5 = {"megabytes": 1.72, "compressed_megabytes": 0.044}  # Deep Compression, Table 1
REFERENCE_ARCHITECTURES = ("alexnet", "vgg16", "squeezenet1_0", "squeezenet1_1")


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


# torchvision's squeezenet1_0 keeps its layers in two Sequentials; these are its Caffe names.
_TORCHVISION_NAMES = {
    "features.0": "conv1",
    **{f"features.{i}": f"fire{n}" for i, n in zip((3, 4, 5, 7, 8, 9, 10, 12), range(2, 10))},
    "classifier.1": "conv10",
}


def from_torchvision_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename torchvision ``squeezenet1_0`` keys (``features.3.squeeze.weight``) to ours (``fire2.squeeze.weight``)."""
    renamed = {}
    for key, value in state.items():
        prefix, _, rest = key.rpartition(".")  # rest is weight/bias
        head = prefix.split(".")
        module = ".".join(head[:2])
        if module not in _TORCHVISION_NAMES:
            raise DclabError(f"{key!r} is not a squeezenet1_0 parameter; pass torchvision.models.squeezenet1_0's state dict")
        renamed[".".join([_TORCHVISION_NAMES[module], *head[2:], rest])] = value
    return renamed


class PretrainedSqueezeNet(NamedTuple):
    """SqueezeNet 1.0 weights and where they came from."""

    model: SqueezeNet
    trained: bool
    note: str


def squeezenet1_0_weights(download_timeout_s: float = 10.0, seed: int = 0) -> PretrainedSqueezeNet:
    """SqueezeNet 1.0 with torchvision's ImageNet weights if they can be had, else random ones (notebook 05, section 6).

    Offline, the download fails within ``download_timeout_s`` and the model keeps
    random (untrained, seeded) weights; the note says so, because sizes measured on
    untrained weights are only indicative.
    """
    import torchvision

    with torch.random.fork_rng():  # the fallback's random weights are the same on every run
        torch.manual_seed(seed)
        model = SqueezeNet()
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(download_timeout_s)  # offline: fail in seconds, never hang
    try:
        reference = torchvision.models.squeezenet1_0(weights="DEFAULT")
    except Exception as exc:  # no network, no cache, a proxy error: all mean "no trained weights"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        note = (
            "torchvision's pretrained SqueezeNet 1.0 weights could not be loaded "
            f"({reason}); using randomly initialised weights. Sizes measured on untrained "
            "weights are indicative only: trained weights have a different distribution, "
            "so their pruned, quantized and Huffman-coded size differs."
        )
        return PretrainedSqueezeNet(model, False, note)
    finally:
        socket.setdefaulttimeout(previous)
    model.load_state_dict(from_torchvision_state_dict(reference.state_dict()))
    return PretrainedSqueezeNet(model.eval(), True, "torchvision's ImageNet-trained SqueezeNet 1.0 weights")


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


FIRENET_RECIPE = Recipe(epochs=4, lr=0.1, max_shift=0.0, batch_size=64, target_error=0.01, version=2)
"""How FireNet is trained (with BatchNorm, then folded): 4 epochs of SGD, no augmentation."""
FIRENET_TRAINER = "dclab.squeeze.train_firenet: FireNet(batchnorm=True), BatchNorm folded"


def train_firenet(recipe: Recipe = FIRENET_RECIPE, *, progress: bool = True) -> tuple[FireNet, dict]:
    """Train FireNet with BatchNorm on MNIST, fold it, measure it: ``(model, info)`` (notebook 05, section 4)."""
    model = FireNet(batchnorm=True)
    start = time.perf_counter()
    train(
        model, load_mnist("train"), recipe.epochs, recipe.lr,
        weight_decay=recipe.weight_decay, batch_size=recipe.batch_size, max_shift=recipe.max_shift,
        seed=recipe.seed, progress=progress, desc="training FireNet",
    )
    seconds = time.perf_counter() - start
    folded = fold_batchnorm(model.eval())
    info = {
        "name": "firenet",
        "test_error": test_error(folded, load_mnist("test")),
        "train_seconds": seconds,
        "threads": torch.get_num_threads(),
        "recipe": asdict(recipe),
        "trained_by": FIRENET_TRAINER,
    }
    return folded, info


def pretrained_firenet(*, progress: bool = True) -> FireNet:
    """Trained FireNet from the zoo's cache, trained (minutes, with a progress bar) and cached if missing (notebook 05)."""
    return zoo.pretrained("firenet", progress=progress)


def _atomic_write(path: Path, save: Callable[[str], None]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    save(tmp)
    os.replace(tmp, path)  # a reader never sees half a file


# ---------------------------------------------------------------- architecture accounting


class LayerCount(NamedTuple):
    """One layer's parameters and multiply-accumulates per image."""

    name: str
    kind: str
    shape: tuple[int, ...]
    parameters: int
    macs: int


class ArchSummary(NamedTuple):
    """Parameters, fp32 size and compute of one architecture (notebook 05, section 2)."""

    name: str
    title: str
    parameters: int
    conv_parameters: int
    fc_parameters: int
    macs: int
    layers: list[LayerCount]

    @property
    def fp32_bytes(self) -> int:
        """Bytes of the weights stored as 32-bit floats."""
        return self.parameters * FP32_BYTES

    @property
    def fp32_megabytes(self) -> float:
        """``fp32_bytes`` in MB (10**6 bytes)."""
        return self.fp32_bytes / MB

    def __repr__(self) -> str:
        size = f"{self.fp32_megabytes:.2f} MB" if self.fp32_bytes >= MB else f"{self.fp32_bytes / 1000:.1f} kB"
        compute = f"{self.macs / 1e9:.2f} GMACs" if self.macs >= 1e8 else f"{self.macs / 1e6:.2f} MMACs"
        return f"ArchSummary({self.title}: {self.parameters:,} parameters, {size} fp32, {compute} per input)"


def summarize(model: nn.Module, input_shape: tuple[int, ...], name: str = "", title: str = "") -> ArchSummary:
    """Count parameters (conv vs fc) and MACs of ``model`` on one input of ``input_shape`` (notebook 05, section 2).

    Works on a model built on the ``meta`` device too (nothing is allocated), so
    VGG-16's 138M parameters are counted in milliseconds.
    """
    layers = compressible_layers(model)
    macs: dict[str, int] = {}
    hooks = []
    for layer_name, module in layers.items():
        def hook(mod: nn.Module, _inp: tuple, out: torch.Tensor, layer_name: str = layer_name) -> None:
            per_output = mod.weight[0].numel()  # in_channels/groups * k * k, or in_features
            macs[layer_name] = macs.get(layer_name, 0) + out[0].numel() * per_output

        hooks.append(module.register_forward_hook(hook))
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model.eval()(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in hooks:
            h.remove()
    rows = [
        LayerCount(n, layer_kind(m), tuple(m.weight.shape), sum(p.numel() for p in m.parameters()), macs.get(n, 0))
        for n, m in layers.items()
    ]
    total = count_parameters(model)
    conv = sum(r.parameters for r in rows if r.kind == "conv")
    fc = sum(r.parameters for r in rows if r.kind == "fc")
    return ArchSummary(name, title or name, total, conv, fc, sum(r.macs for r in rows), rows)


def reference_architecture(name: str) -> nn.Module:
    """``torchvision.models.<name>(weights=None)`` built on the meta device (shapes only, no memory)."""
    import torchvision

    if name not in REFERENCE_ARCHITECTURES:
        raise DclabError(f"unknown reference architecture {name!r}; choose one of {', '.join(REFERENCE_ARCHITECTURES)}")
    with torch.device("meta"):
        return getattr(torchvision.models, name)(weights=None)


def reference_summaries(names: tuple[str, ...] = REFERENCE_ARCHITECTURES) -> list[ArchSummary]:
    """AlexNet, VGG-16 and SqueezeNet 1.0/1.1 as torchvision builds them, counted (notebook 05, section 2)."""
    return [
        summarize(reference_architecture(n), (3, 224, 224), n, PAPER_FIGURES[n]["title"]) for n in names
    ]


class SizeRow(NamedTuple):
    """One bar of the size chart: a measured size and, if the paper gives one, the paper's (notebook 05)."""

    label: str
    bytes: int
    paper_bytes: int | None = None
    kind: str = "dense"  # "dense", "compressed" or "untrained" (compressed from random weights)
    note: str = ""


def reference_size_rows(summaries: list[ArchSummary]) -> list[SizeRow]:
    """fp32 sizes of the reference architectures beside the papers' MB (notebook 05, section 2)."""
    rows = []
    for s in summaries:
        paper_mb = PAPER_FIGURES.get(s.name, {}).get("megabytes")
        rows.append(SizeRow(s.title, s.fp32_bytes, None if paper_mb is None else round(paper_mb * MB)))
    return rows


def summaries_frame(summaries: list[ArchSummary]):
    """The accounting as a pandas table, the papers' figures beside ours (notebook 05, section 2)."""
    import pandas as pd

    rows = []
    for s in summaries:
        paper = PAPER_FIGURES.get(s.name, {})
        rows.append({
            "architecture": s.title,
            "parameters": s.parameters,
            "conv params": s.conv_parameters,
            "fc params": s.fc_parameters,
            "fp32 MB": round(s.fp32_megabytes, 2),
            "GMACs / image": round(s.macs / 1e9, 3),
            "paper: params": paper.get("parameters"),
            "paper: MB": paper.get("megabytes"),
        })
    return pd.DataFrame(rows).set_index("architecture")


# ---------------------------------------------------------------- SqueezeNet + Deep Compression

SQUEEZENET_DC_SPARSITY = 0.33
"""The SqueezeNet paper's Deep Compression setting (section 4): 33% sparsity, 6- or 8-bit weights."""


class SqueezeNetCompression(NamedTuple):
    """SqueezeNet 1.0 pruned, quantized and Huffman-coded by the engine, measured (notebook 05, section 6)."""

    report: "CompressionReport"
    dcz: bytes
    trained: bool
    note: str
    alexnet_bytes: int

    @property
    def file_bytes(self) -> int:
        """Length of the ``.dcz``."""
        return len(self.dcz)

    @property
    def ratio_vs_alexnet(self) -> float:
        """AlexNet's fp32 bytes (torchvision's architecture) / the ``.dcz``'s bytes."""
        return self.alexnet_bytes / self.file_bytes

    def __repr__(self) -> str:
        weights = "trained" if self.trained else "UNTRAINED (indicative only)"
        return (
            f"SqueezeNetCompression({weights} weights: {self.report.dense_bytes:,} -> {self.file_bytes:,} bytes, "
            f"{self.report.ratio:.1f}x; {self.ratio_vs_alexnet:.0f}x smaller than fp32 AlexNet)"
        )


def compress_squeezenet(
    bits: int = 6,
    sparsity: float = SQUEEZENET_DC_SPARSITY,
    weights: PretrainedSqueezeNet | None = None,
    huffman: bool = True,
) -> SqueezeNetCompression:
    """SqueezeNet 1.0 + Deep Compression without retraining: prune, k-means, Huffman, a real ``.dcz`` (notebook 05, section 6).

    Uses the pipeline's no-training path (``compress_weights``): on ImageNet the
    paper retrains, which a CPU cannot do here, so no accuracy is claimed.
    """
    from .pipeline import CompressionConfig, compress_weights

    weights = weights or squeezenet1_0_weights()
    config = CompressionConfig(sparsity=sparsity, conv_bits=bits, fc_bits=bits, huffman=huffman)
    _, dcz, report = compress_weights(weights.model, config)
    alexnet_bytes = count_parameters(reference_architecture("alexnet")) * FP32_BYTES
    return SqueezeNetCompression(report, dcz, weights.trained, weights.note, alexnet_bytes)


# ---------------------------------------------------------------- FireNet + Deep Compression


def firenet_config() -> "CompressionConfig":
    """Deep Compression settings for FireNet (notebook 05, section 5).

    Its layers are all small convolutions: 4-bit codebooks (16 shared weights; the
    paper's 8 bits would spend more on 256-entry codebooks than they save), 4-bit
    gaps, 60% of every layer pruned in two steps, each followed by one epoch of
    retraining, then one epoch of centroid fine-tuning, at the pipeline's default
    rate (0.005). Without its BatchNorm the folded network is touchier than the one
    that was trained: retraining at 0.01 (1/10 of its training rate) diverges.
    """
    from .pipeline import CompressionConfig

    return CompressionConfig(**FIRENET_DC)


FIRENET_DC = dict(sparsity=0.6, conv_bits=4, conv_index_bits=4, prune_steps=2, retrain_epochs=1,
                  finetune_epochs=1, max_shift=0.0)
"""FireNet's Deep Compression settings (see ``firenet_config``)."""


class FireNetCompression(NamedTuple):
    """FireNet after the whole pipeline, read back from its cached ``.dcz`` (notebook 05, section 5)."""

    model: nn.Module
    dcz: bytes
    report: "CompressionReport"
    path: Path
    computed: bool

    @property
    def file_bytes(self) -> int:
        """Length of the ``.dcz``."""
        return len(self.dcz)


def firenet_dcz_path(config: "CompressionConfig") -> Path:
    """Where ``compress_firenet`` caches its ``.dcz``: keyed by the trained baseline and the settings."""
    baseline = zoo.checkpoint_path("firenet")
    stamp = f"{baseline.name}:{baseline.stat().st_size}:{baseline.stat().st_mtime_ns}" if baseline.is_file() else ""
    key = json.dumps({"baseline": stamp, "config": config.to_dict()}, sort_keys=True, default=str)
    return cache_dir() / "compressed" / f"firenet-{hashlib.sha256(key.encode()).hexdigest()[:16]}.dcz"


def compress_firenet(config: "CompressionConfig | None" = None, *, progress: bool = True) -> FireNetCompression:
    """The trained FireNet through the whole Deep Compression pipeline, cached as a ``.dcz`` (notebook 05, section 5).

    The first call prunes and retrains, shares weights and fine-tunes the centroids
    (a few CPU minutes, with progress bars); later calls read the file back.
    """
    from .container import read_dcz
    from .pipeline import compress, load_model, report_from_dcz

    config = config or firenet_config()
    pretrained_firenet(progress=progress)  # the cache key needs the trained baseline
    path = firenet_dcz_path(config)
    computed = not path.is_file()
    if computed:
        path.parent.mkdir(parents=True, exist_ok=True)
        result = compress(pretrained_firenet(progress=progress), config, arch="firenet", progress=progress)
        _atomic_write(path, lambda tmp: Path(tmp).write_bytes(result.dcz))
    try:
        dcz = read_dcz(path)
    except DclabError:
        if computed:
            raise
        path.unlink(missing_ok=True)  # a damaged cache file is recomputed
        return compress_firenet(config, progress=progress)
    data = path.read_bytes()
    return FireNetCompression(load_model(dcz), data, report_from_dcz(dcz), path, computed)


def mnist_comparison(lenet5: nn.Module, firenet: nn.Module, compressed: FireNetCompression, test_data) -> list[dict]:
    """LeNet-5, FireNet and FireNet + Deep Compression side by side, every number measured (notebook 05, section 5)."""
    base = count_parameters(lenet5) * FP32_BYTES
    rows = []
    for label, model, size in (
        ("LeNet-5 (fp32)", lenet5, base),
        ("FireNet (fp32)", firenet, count_parameters(firenet) * FP32_BYTES),
        ("FireNet + Deep Compression (.dcz)", compressed.model, compressed.file_bytes),
    ):
        rows.append({
            "model": label,
            "parameters": count_parameters(model),
            "nonzero weights": sum(int((m.weight != 0).sum()) for m in compressible_layers(model).values()),
            "bytes": size,
            "test error %": round(100 * test_error(model, test_data), 2),
            "x smaller than LeNet-5": round(base / size, 1),
        })
    return rows


def squeezenet_size_rows(summaries: list[ArchSummary], compressed: dict[int, SqueezeNetCompression]) -> list[SizeRow]:
    """AlexNet and SqueezeNet in fp32, then SqueezeNet + Deep Compression per bit width, beside the papers (notebook 05, section 6)."""
    by_name = {s.name: s for s in summaries}
    rows = [
        SizeRow("AlexNet (fp32)", by_name["alexnet"].fp32_bytes, round(PAPER_FIGURES["alexnet"]["megabytes"] * MB)),
        SizeRow("SqueezeNet 1.0 (fp32)", by_name["squeezenet1_0"].fp32_bytes,
                round(PAPER_FIGURES["squeezenet1_0"]["megabytes"] * MB)),
    ]
    for bits, result in sorted(compressed.items(), reverse=True):
        paper = PAPER_SQUEEZENET_DC.get(bits)
        rows.append(SizeRow(
            f"SqueezeNet + DC, {bits}-bit", result.file_bytes, round(paper["megabytes"] * MB) if paper else None,
            "compressed" if result.trained else "untrained", "" if result.trained else "untrained weights",
        ))
    return rows


def mnist_size_rows(comparison: list[dict]) -> list[SizeRow]:
    """The MNIST comparison (``mnist_comparison``) as bars, LeNet-5 beside the paper's size (notebook 05, section 5)."""
    rows = []
    for row in comparison:
        lenet = row["model"].startswith("LeNet-5")
        kind = "compressed" if "Deep Compression" in row["model"] else "dense"
        rows.append(SizeRow(row["model"], row["bytes"], round(PAPER_LENET5["megabytes"] * MB) if lenet else None, kind))
    return rows


zoo.register("firenet", FireNet, FIRENET_RECIPE, "FireNet (MNIST)", trainer=train_firenet)
register_architecture("squeezenet1_0", SqueezeNet, "SqueezeNet 1.0")
