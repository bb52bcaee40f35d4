"""Trained ternary quantization: each weight of a layer in {-Wn, 0, +Wp} (notebook 07, beyond the paper).

Zhu, Han, Mao and Dally, "Trained Ternary Quantization" (ICLR 2017), section 3. A ternary layer keeps a
full-precision *latent* weight ``w`` (what the optimizer updates) and two trained scales of its own,
``wp`` and ``wn`` (both > 0). The forward pass uses the ternary weight

    threshold = t * max|w|                       (the paper's rule; one t for every layer)
    w_t = +wp where w > threshold, -wn where w < -threshold, 0 elsewhere

and the backward pass (the paper's eq. 7 and 8), with g = dL/dw_t:

    dL/dwp = sum of g over the positive weights
    dL/dwn = -(sum of g over the negative weights)     (w_t = -wn there; the paper writes the magnitude)
    dL/dw  = wp * g on the positives, g on the zeros, wn * g on the negatives   (straight-through, scaled)

A ternary layer stored in a ``.dcz`` is a pruned layer whose codebook is ``[0, -wn, +wp]`` (index 0 the
reserved zero, as ``quantize.quantize_layer`` makes it): three entries, so 2-bit indices at fixed width,
about one bit per kept weight once Huffman-coded. With a ``mask`` (a layer pruned before), the pruned
weights stay exactly zero and only the survivors are ternarized.
"""
from __future__ import annotations

import numbers

import torch
from torch import nn
from torch.nn.utils import parametrize

from dclab.algorithms.quantize import Codebook
from dclab.errors import DclabError

__all__ = [
    "DEFAULT_THRESHOLD",
    "check_threshold",
    "ternary_threshold",
    "ternary_scales",
    "ternarize",
    "ternary_codebook",
    "TernaryWeights",
    "ternarize_",
    "unternarize_",
]

DEFAULT_THRESHOLD = 0.05
"""The paper's t: a weight within 5% of the layer's largest magnitude becomes 0 (its CIFAR-10 setting)."""


def check_threshold(t: float) -> float:
    """``t`` as a float in [0, 1), else a DclabError saying what to give."""
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0.0 <= float(t) < 1.0:
        raise DclabError(f"the ternary threshold t must be a number in [0, 1) (a fraction of the layer's largest "
                         f"|w|; the paper uses 0.05), not {t!r}")
    return float(t)


def ternary_threshold(w: torch.Tensor, t: float = DEFAULT_THRESHOLD, mask: torch.Tensor | None = None) -> float:
    """The paper's threshold ``t * max|w|`` over the layer's kept weights (all of them without ``mask``)."""
    t = check_threshold(t)
    w = w.detach()
    kept = w if mask is None else w[mask]
    return t * kept.abs().max().item() if kept.numel() else 0.0


def _signs(w: torch.Tensor, threshold: float, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    positive, negative = w > threshold, w < -threshold
    if mask is not None:
        positive, negative = positive & mask, negative & mask
    return positive, negative


def ternary_scales(w: torch.Tensor, t: float = DEFAULT_THRESHOLD,
                   mask: torch.Tensor | None = None) -> tuple[float, float]:
    """Starting scales ``(wp, wn)``: the mean |w| of the weights above and below the threshold, the least squared
    error for that assignment (training moves them from there). A side with no weight gets the threshold itself."""
    w = w.detach()
    threshold = ternary_threshold(w, t, mask)
    positive, negative = _signs(w, threshold, mask)
    wp = w[positive].mean().item() if positive.any() else threshold
    wn = -w[negative].mean().item() if negative.any() else threshold
    return wp, wn


def ternarize(w: torch.Tensor, t: float, wp: float | torch.Tensor, wn: float | torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """The ternary weight: ``+wp`` where ``w > t * max|w|``, ``-wn`` where ``w < -t * max|w|``, 0 elsewhere
    (and 0 wherever ``mask`` is False). No gradient: ``TernaryWeights`` trains it."""
    w = w.detach()
    positive, negative = _signs(w, ternary_threshold(w, t, mask), mask)
    wp, wn = (torch.as_tensor(s, dtype=w.dtype).detach() for s in (wp, wn))
    return torch.where(positive, wp, torch.where(negative, -wn, torch.zeros((), dtype=w.dtype)))


def ternary_codebook(w: torch.Tensor, t: float, wp: float | torch.Tensor, wn: float | torch.Tensor,
                     mask: torch.Tensor | None = None) -> Codebook:
    """The ternary weight as a ``Codebook``: centroids ``[0, -wn, +wp]``, index 0 the reserved zero (the ``.dcz``
    writer stores it as a pruned layer: gaps, and one index of three per kept weight)."""
    w = w.detach()
    positive, negative = _signs(w, ternary_threshold(w, t, mask), mask)
    indices = torch.zeros(w.shape, dtype=torch.int64, device=w.device)
    indices[negative], indices[positive] = 1, 2
    centroids = torch.tensor([0.0, -float(wn), float(wp)], dtype=torch.float32)
    return Codebook(centroids, indices, reserved_zero=True)


class _Ternary(torch.autograd.Function):
    """The forward and backward rules of TTQ (the paper's eq. 6-8), for one layer."""

    @staticmethod
    def forward(ctx, w, wp, wn, t, keep):  # type: ignore[override]
        kept = w[keep] if keep is not None else w
        threshold = t * kept.abs().max() if kept.numel() else w.new_zeros(())
        positive, negative = w > threshold, w < -threshold
        if keep is not None:
            positive, negative = positive & keep, negative & keep
        ctx.save_for_backward(positive, negative, wp, wn, keep if keep is not None else torch.ones_like(positive))
        zero = w.new_zeros(())
        return torch.where(positive, wp, torch.where(negative, -wn, zero))

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        positive, negative, wp, wn, keep = ctx.saved_tensors
        grad_wp = g[positive].sum().reshape(wp.shape)
        grad_wn = -g[negative].sum().reshape(wn.shape)
        scale = torch.where(positive, wp, torch.where(negative, wn, torch.ones((), dtype=g.dtype)))
        grad_w = g * scale * keep
        return grad_w, grad_wp, grad_wn, None, None


class TernaryWeights(nn.Module):
    """Parametrization ``weight = ternary(latent)`` with trained scales (``torch.nn.utils.parametrize``; notebook 07).

    The layer's original weight stays its trainable parameter (the latent full-precision weight); ``wp`` and
    ``wn`` are new parameters. ``keep`` (a mask) holds pruned weights at exactly 0, with no gradient.
    """

    def __init__(self, w: torch.Tensor, t: float = DEFAULT_THRESHOLD, mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.t = check_threshold(t)
        wp, wn = ternary_scales(w, t, mask)
        self.wp = nn.Parameter(torch.tensor(wp, dtype=torch.float32))
        self.wn = nn.Parameter(torch.tensor(wn, dtype=torch.float32))
        self.register_buffer("keep", None if mask is None else mask.detach().to(torch.bool).clone())

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return _Ternary.apply(latent, self.wp, self.wn, self.t, self.keep)

    def codebook(self, latent: torch.Tensor) -> Codebook:
        """The current ternary weight as a ``Codebook`` (``ternary_codebook``)."""
        return ternary_codebook(latent, self.t, self.wp.detach(), self.wn.detach(), self.keep)


def _module(model: nn.Module, name: str) -> nn.Module:
    module = dict(model.named_modules()).get(name)
    if module is None or not isinstance(getattr(module, "weight", None), torch.Tensor):
        raise DclabError(f"the model has no layer {name!r} with a weight")
    return module


def ternarize_(model: nn.Module, masks: dict[str, torch.Tensor | None], t: float = DEFAULT_THRESHOLD) -> nn.Module:
    """Make each named layer's weight ternary with trained scales, in place (notebook 07): afterwards
    ``model.parameters()`` holds each layer's latent weight (``parametrizations.weight.original``) and its
    ``wp``, ``wn``. ``masks[name]`` (None: no pruning) keeps pruned weights at 0. Undo with ``unternarize_``."""
    check_threshold(t)
    for name, mask in masks.items():
        module = _module(model, name)
        if parametrize.is_parametrized(module, "weight"):
            raise DclabError(f"layer {name!r} is already parametrized; call unternarize_(model) first")
        if mask is not None and tuple(mask.shape) != tuple(module.weight.shape):
            raise DclabError(f"mask for {name!r} is shaped {tuple(mask.shape)} but the weight is "
                             f"{tuple(module.weight.shape)}")
        parametrize.register_parametrization(module, "weight", TernaryWeights(module.weight, t, mask), unsafe=True)
    return model


def unternarize_(model: nn.Module) -> dict[str, Codebook]:
    """Turn ternary layers back into plain ones holding their ternary weights; return their codebooks."""
    books = {}
    for name, module in model.named_modules():
        if not parametrize.is_parametrized(module, "weight"):
            continue
        found = [p for p in module.parametrizations.weight if isinstance(p, TernaryWeights)]
        if not found:
            continue
        books[name] = found[0].codebook(module.parametrizations.weight.original)
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        with torch.no_grad():
            module.weight.copy_(books[name].weights().reshape(module.weight.shape))
    return books
