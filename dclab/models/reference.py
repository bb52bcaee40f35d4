"""The papers' reference architectures, counted from real modules (notebook 05, section 2).

``reference_architecture`` builds torchvision's AlexNet, VGG-16 and SqueezeNet on the meta device
(shapes only, no memory); ``summarize`` counts any model's parameters (conv vs fc) and
multiply-accumulates with forward hooks; ``squeezenet1_0_weights`` loads torchvision's ImageNet
weights into dclab's ``SqueezeNet`` when they can be had.
"""
from __future__ import annotations

import socket
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn

from dclab.errors import DclabError
from dclab.models import compressible_layers, count_parameters, layer_kind
from dclab.models.squeezenet import SqueezeNet

if TYPE_CHECKING:
    pass



FP32_BYTES = 4


MB = 1_000_000  # sizes in MB are 10**6 bytes, as in the papers' tables

# What the papers report (``dclab.paper``), only ever shown *beside* measured numbers.


REFERENCE_ARCHITECTURES = ("alexnet", "vgg16", "squeezenet1_0", "squeezenet1_1")


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
