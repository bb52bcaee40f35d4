"""Pruning: remove the smallest weights, then retrain the survivors (notebook 02).

Han et al., "Learning both Weights and Connections" (NIPS 2015): train, prune the
weights whose magnitude is below a threshold, retrain the remaining connections with
their values kept, and iterate. A pruned weight is removed for good: the ``Pruner``
keeps it at exactly zero through retraining.

Vocabulary: ``w`` a weight tensor, ``mask`` a bool tensor shaped like ``w`` (True =
kept), ``sparsity`` the fraction removed in [0, 1), ``quality`` the threshold in
units of the layer's standard deviation.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from dclab.errors import DclabError

__all__ = [
    "check_sparsity",
    "check_quality",
    "MagnitudeOrder",
    "magnitude_mask",
    "threshold_mask",
    "global_magnitude_masks",
    "layer_masks",
    "sparsity_of",
    "prunable_weights",
    "Pruner",
    "sensitivity_scan",
    "retrain_dropout",
]


def check_sparsity(sparsity: float, where: str = "") -> float:
    """``sparsity`` as a float in [0, 1), or a DclabError that says what to give (``where`` names the layer)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real):
        raise DclabError(f"sparsity{where} must be a number in [0, 1), not {sparsity!r}")
    s = float(sparsity)
    if math.isnan(s) or not 0.0 <= s < 1.0:
        raise DclabError(
            f"sparsity{where} must be in [0, 1) (the fraction of weights removed), not {sparsity!r}; "
            "e.g. 0.9 removes 90% of the weights"
        )
    return s


def check_quality(quality: float, where: str = "") -> float:
    """``quality`` as a finite float >= 0, or a DclabError that says what to give."""
    if isinstance(quality, bool) or not isinstance(quality, numbers.Real):
        raise DclabError(f"quality{where} must be a non-negative number, not {quality!r}")
    q = float(quality)
    if math.isnan(q) or q < 0 or math.isinf(q):
        raise DclabError(
            f"quality{where} must be a finite number >= 0 (the threshold in units of the layer's "
            f"standard deviation), not {quality!r}; e.g. 1.0 prunes |w| < 1.0 * std(w)"
        )
    return q


class MagnitudeOrder:
    """Weights ranked by |w| once, so that any sparsity becomes a mask in O(n) (notebook 02, pruning).

    The one magnitude order in dclab: ``magnitude_mask``, global pruning, the pipeline, the
    capstone's session and the prune explorer all cut it. Ties between equal magnitudes
    break by position: the weight earlier in ``w.reshape(-1)`` is pruned first. ``w`` may be
    one tensor or, for one cut across several layers, a dict of them (``masks`` splits it back).
    """

    def __init__(self, w: torch.Tensor | Mapping[str, torch.Tensor]) -> None:
        self.layers = dict(w) if isinstance(w, Mapping) else None
        tensors = list(self.layers.values()) if self.layers is not None else [w]
        flat = torch.cat([t.detach().abs().reshape(-1) for t in tensors]) if tensors else torch.zeros(0)
        self.shape = tuple(w.shape) if self.layers is None else (flat.numel(),)
        self.order = torch.argsort(flat, stable=True)

    def __len__(self) -> int:
        return self.order.numel()

    def mask(self, sparsity: float) -> torch.Tensor:
        """Bool mask (True = kept) removing the ``round(sparsity * n)`` smallest |w|."""
        n_pruned = round(check_sparsity(sparsity) * len(self))
        mask = torch.ones(len(self), dtype=torch.bool, device=self.order.device)
        mask[self.order[:n_pruned]] = False
        return mask.reshape(self.shape)

    def masks(self, sparsity: float) -> dict[str, torch.Tensor]:
        """One cut across the layers given as a dict: ``{name: mask}`` (global pruning)."""
        if self.layers is None:
            raise DclabError("masks() splits a cut across layers: build MagnitudeOrder({name: w, ...})")
        joint = self.mask(sparsity)
        sizes = [w.numel() for w in self.layers.values()]
        return {name: m.reshape(w.shape) for (name, w), m in zip(self.layers.items(), joint.split(sizes))}


def magnitude_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Mask removing exactly ``round(sparsity * w.numel())`` smallest-|w| weights (notebook 02, pruning).

    Where no two magnitudes are equal, the same mask as
    ``torch.nn.utils.prune.l1_unstructured(module, "weight", sparsity)``; ties break by
    position (see ``MagnitudeOrder``), where torch leaves the order to ``topk``.

    Example::

        >>> magnitude_mask(torch.tensor([0.1, -2.0, 0.3, -0.05]), 0.5)
        tensor([False,  True,  True, False])
    """
    return MagnitudeOrder(w).mask(sparsity)


def threshold_mask(w: torch.Tensor, quality: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mask keeping ``|w| >= quality * std(w)``, the papers' pruning rule (notebook 02, threshold).

    With ``mask`` (a layer already pruned), the standard deviation is that of the kept
    weights and the result keeps only weights that ``mask`` kept too.
    """
    q = check_quality(quality)
    w = w.detach()
    kept = w if mask is None else w[mask]
    std = kept.float().std().item() if kept.numel() > 1 else 0.0
    result = w.abs() >= q * std
    return result if mask is None else result & mask


def global_magnitude_masks(weights: Mapping[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """One magnitude threshold across all layers (notebook 02, global pruning).

    Where no two magnitudes are equal, the same masks as ``torch.nn.utils.prune.global_unstructured``
    with ``L1Unstructured``.
    """
    check_sparsity(sparsity)
    return MagnitudeOrder(weights).masks(sparsity) if weights else {}


def layer_masks(
    weights: Mapping[str, torch.Tensor],
    sparsity: float | Mapping[str, float] | None = None,
    quality: float | Mapping[str, float] | None = None,
    scope: str = "layer",
) -> dict[str, torch.Tensor]:
    """Masks for several layers from a sparsity or a quality, per layer or global (notebook 02).

    ``sparsity``/``quality`` is one number for every layer or a dict by layer name (a layer
    missing from the dict is left dense). ``scope="global"`` ranks all weights together:
    one magnitude cut for a sparsity, or ``quality`` times the std of all weights.
    """
    if (sparsity is None) == (quality is None):
        raise DclabError("give exactly one of sparsity= (fraction removed) or quality= (threshold in stds)")
    if scope not in ("layer", "global"):
        raise DclabError(f"scope must be 'layer' or 'global', not {scope!r}")
    if scope == "global":
        if isinstance(sparsity, Mapping) or isinstance(quality, Mapping):
            raise DclabError("scope='global' takes one sparsity or quality for all layers, not a dict")
        if sparsity is not None:
            return global_magnitude_masks(weights, sparsity)
        q = check_quality(quality)
        flat = torch.cat([w.detach().reshape(-1).float() for w in weights.values()])
        cut = q * flat.std().item()
        return {name: w.detach().abs() >= cut for name, w in weights.items()}

    amount = sparsity if sparsity is not None else quality
    masks = {}
    for name, w in weights.items():
        if isinstance(amount, Mapping):
            if name not in amount:
                masks[name] = torch.ones(w.shape, dtype=torch.bool, device=w.device)
                continue
            value = amount[name]
        else:
            value = amount
        if sparsity is not None:
            check_sparsity(value, f" of layer {name!r}")
            masks[name] = magnitude_mask(w, value)
        else:
            check_quality(value, f" of layer {name!r}")
            masks[name] = threshold_mask(w, value)
    if isinstance(amount, Mapping):
        unknown = sorted(set(amount) - set(weights))
        if unknown:
            raise DclabError(f"no layer named {', '.join(unknown)}; layers are: {', '.join(weights)}")
    return masks


def sparsity_of(mask: torch.Tensor) -> float:
    """Fraction of entries a mask removes."""
    return 1.0 - mask.sum().item() / max(mask.numel(), 1)


def prunable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight of every Linear and Conv2d layer by layer name, in definition order."""
    return {
        name: module.weight
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv2d))
    }


class Pruner:
    """Keeps pruned weights at exactly zero while a model retrains (notebook 02, retraining).

    Registering zeros the pruned weights and masks their gradients through hooks, so
    the optimizer's gradient step never moves them; ``apply()`` (call it after every
    optimizer step: ``train(..., after_step=pruner)``) zeros them again, which undoes
    anything weight decay or momentum did. ``remove()`` takes the hooks off.

    Example::

        pruner = Pruner(model, layer_masks(prunable_weights(model), sparsity=0.9))
        train(model, data, epochs=2, after_step=pruner)
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
        self.model = model
        self.masks: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        modules = dict(model.named_modules())
        for name, mask in masks.items():
            if name not in modules or not isinstance(getattr(modules[name], "weight", None), torch.Tensor):
                layers = ", ".join(prunable_weights(model))
                raise DclabError(f"the model has no layer {name!r} with a weight; layers are: {layers}")
            weight = modules[name].weight
            if tuple(mask.shape) != tuple(weight.shape):
                raise DclabError(
                    f"mask for {name!r} is shaped {tuple(mask.shape)} but the weight is {tuple(weight.shape)}"
                )
            mask = mask.to(device=weight.device, dtype=torch.bool)
            self.masks[name] = mask
            if weight.requires_grad:
                self._handles.append(weight.register_hook(_mask_gradient(mask)))
        self.apply()

    def apply(self) -> None:
        """Zero the pruned weights again (after each optimizer step)."""
        modules = dict(self.model.named_modules())
        with torch.no_grad():
            for name, mask in self.masks.items():
                modules[name].weight.mul_(mask)

    def __call__(self, model: nn.Module | None = None) -> None:
        """``after_step`` callback for ``dclab.train.train``: same as ``apply()``."""
        self.apply()

    def remove(self) -> None:
        """Take the gradient hooks off (the weights stay as they are)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def sparsity(self) -> float:
        """Fraction of the masked layers' weights that are pruned."""
        total = sum(m.numel() for m in self.masks.values())
        kept = sum(int(m.sum()) for m in self.masks.values())
        return 1.0 - kept / max(total, 1)

    def __repr__(self) -> str:
        layers = ", ".join(f"{n}: {sparsity_of(m):.1%}" for n, m in self.masks.items())
        return f"Pruner({layers})"


def _mask_gradient(mask: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda grad: grad * mask


def sensitivity_scan(
    model: nn.Module,
    evaluate_fn: Callable[[nn.Module], float],
    sparsities: Iterable[float],
    layers: Iterable[str] | None = None,
    callback: Callable[[str, float, float], None] | None = None,
) -> dict[str, list[float]]:
    """Prune one layer at a time to each sparsity and evaluate, without retraining (notebook 02).

    Returns ``{layer: [evaluate_fn(model) at each sparsity]}``; the model's weights are
    restored afterwards. ``callback(layer, sparsity, value)`` reports progress.
    """
    sparsities = [check_sparsity(s) for s in sparsities]
    weights = prunable_weights(model)
    names = list(weights) if layers is None else list(layers)
    unknown = [n for n in names if n not in weights]
    if unknown:
        raise DclabError(f"no prunable layer {', '.join(unknown)}; layers are: {', '.join(weights)}")
    results: dict[str, list[float]] = {}
    for name in names:
        w = weights[name]
        saved = w.detach().clone()
        values = []
        try:
            for s in sparsities:
                with torch.no_grad():
                    w.copy_(saved * magnitude_mask(saved, s).to(saved.device))
                value = float(evaluate_fn(model))
                values.append(value)
                if callback is not None:
                    callback(name, s, value)
        finally:
            with torch.no_grad():
                w.copy_(saved)
        results[name] = values
    return results


def retrain_dropout(p_original: float, kept_connections: int, original_connections: int) -> float:
    """Dropout rate for retraining a pruned layer: D_r = D_o * sqrt(C_ir / C_io) (notebook 02).

    Fewer connections mean less co-adaptation, so the paper lowers the dropout rate
    in proportion to the square root of the connections kept.
    """
    if not 0.0 <= p_original < 1.0 or math.isnan(p_original):
        raise DclabError(f"the original dropout rate must be in [0, 1), not {p_original!r}")
    if original_connections <= 0 or not 0 <= kept_connections <= original_connections:
        raise DclabError(
            "connections must satisfy 0 <= kept <= original and original > 0, "
            f"not kept={kept_connections}, original={original_connections}"
        )
    return p_original * math.sqrt(kept_connections / original_connections)
