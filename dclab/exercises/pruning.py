"""Exercises of notebook 02 (pruning): a magnitude mask, the quality x std threshold, one global threshold,
and a retraining step that keeps pruned weights at zero."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from dclab.algorithms import prune
from dclab.exercises._core import (
    Case,
    CheckResult,
    Exercise,
    Mismatch,
    as_tensor,
    register,
    show,
)

NOTEBOOK = "02_pruning.ipynb"


def _where(w: torch.Tensor, flat: int) -> str:
    index = np.unravel_index(flat, tuple(w.shape)) if w.dim() else ()
    return f"w[{', '.join(map(str, index))}] = {float(w.reshape(-1)[flat]):.4g}"


def _mask_text(mask: torch.Tensor) -> str:
    kept = int(mask.sum())
    if mask.numel() <= 24:
        return f"{show(mask)} (keeps {kept} of {mask.numel()})"
    return f"a mask keeping {kept} of {mask.numel()} weights"


def _mask_answer(got: Any, w: torch.Tensor, shown: str, what: str = "w") -> torch.Tensor:
    """The student's mask as a bool tensor shaped like ``w``, else a Mismatch saying what is wrong."""
    mask = as_tensor(got, shown, f"a bool tensor shaped like {what} (True = kept)")
    if mask.dtype != torch.bool:
        hint = "return a bool tensor, True = kept (a comparison such as w.abs() >= t gives one)"
        if bool(((mask == 0) | (mask == 1)).all()):
            hint += "; yours holds 0s and 1s: add .bool()"
        raise Mismatch(shown, show(mask), hint)
    if tuple(mask.shape) != tuple(w.shape):
        raise Mismatch(
            shown, f"a mask shaped {tuple(mask.shape)}",
            f"the mask must be shaped like {what}, {tuple(w.shape)}: reshape a flat result with .reshape({what}.shape)",
        )
    return mask


def _order_violation(a: torch.Tensor, keep: torch.Tensor) -> tuple[int, int] | None:
    """(a removed position, a kept position) with the removed magnitude larger, if any."""
    if bool(keep.all()) or not bool(keep.any()):
        return None
    removed = torch.where(keep, torch.full_like(a, -1.0), a)
    kept = torch.where(keep, a, torch.full_like(a, float("inf")))
    i, j = int(removed.argmax()), int(kept.argmin())
    return (i, j) if a[i] > a[j] else None


# ---------------------------------------------------------------- magnitude_mask(w, sparsity)


def _magnitude_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    return [
        Case((torch.tensor([[0.3, -0.1, 0.8, 0.05], [-0.6, 0.2, -0.02, 1.1], [0.4, -0.9, 0.15, -0.25],
                            [0.7, 0.01, -0.45, 0.5]]), 0.5), "a 4x4 matrix with distinct magnitudes, half removed"),
        Case((torch.tensor([-3.0, 0.1, -2.0, 0.2, 1.0, -0.05]), 0.5), "large negative weights must be kept"),
        Case((torch.tensor([0.5, -0.2, 0.9]), 0.0), "sparsity 0: nothing is removed",
             error_hint="with sparsity 0 there is nothing to remove: return a mask of all True"),
        Case((torch.tensor([0.9, -0.8, 0.7, -0.6, 0.5, 0.4, -0.3, 0.2, 0.1, -1.0]), 0.38),
             "0.38 of 10 weights: round(3.8) = 4 removed"),
        Case((torch.randn(6, 3, 3, 3, generator=g), 0.9), "a 6x3x3x3 convolution weight, 90% removed",
             shown="w = a random 6x3x3x3 conv weight, sparsity = 0.9"),
        Case((torch.tensor([1.0, -1.0, 1.0, 2.0, 0.5, -1.0]), 0.5), "equal magnitudes: any of the ties may go"),
        Case((torch.randn(10, 10, generator=g), 0.99), "99% of a 10x10 matrix removed",
             shown="w = a random 10x10 matrix, sparsity = 0.99"),
    ]


def _magnitude_compare(case: Case, got: Any) -> None:
    w, sparsity = case.args
    ref = prune.magnitude_mask(w, sparsity)
    n = w.numel()
    n_removed = round(sparsity * n)
    shown = f"{_mask_text(ref)}: the {n_removed} smallest |w| removed"
    mask = _mask_answer(got, w, shown)
    removed = n - int(mask.sum())
    came_back = _mask_text(mask)
    if removed != n_removed:
        if removed == n - n_removed and 2 * n_removed != n:
            hint = "True means kept: your mask looks inverted, it keeps exactly the weights to remove"
        elif removed == int(sparsity * n):
            hint = (f"remove round(sparsity * w.numel()) = round({sparsity * n:g}) = {n_removed} weights; "
                    f"int() cuts {sparsity * n:g} down to {int(sparsity * n)}")
        else:
            hint = f"sparsity {sparsity} of {n} weights means {n_removed} removed and {n - n_removed} kept"
        raise Mismatch(shown, f"{came_back}, {removed} removed", hint)
    a = w.detach().abs().reshape(-1)
    bad = _order_violation(a, mask.reshape(-1))
    if bad is None:
        return
    i, j = bad
    signed = torch.ones(n, dtype=torch.bool)
    signed[torch.topk(w.reshape(-1), n_removed, largest=False).indices] = False
    if torch.equal(mask.reshape(-1), signed):
        hint = "rank the weights by magnitude, w.abs(): a large negative weight matters as much as a large positive one"
    elif float(a[~mask.reshape(-1)].min()) >= float(a[mask.reshape(-1)].max()):
        hint = "your mask removes the largest weights and keeps the smallest: remove the smallest |w| (True = kept)"
    else:
        hint = (f"it removes {_where(w, i)} but keeps {_where(w, j)}, which is smaller in magnitude: "
                "the removed weights must be the smallest |w|")
    raise Mismatch(shown, came_back, hint)


MAGNITUDE_MASK = register(Exercise(
    name="magnitude_mask",
    notebook=NOTEBOOK,
    params=("w", "sparsity"),
    cases=_magnitude_cases,
    compare=_magnitude_compare,
    fallback=prune.magnitude_mask,
    fallback_name="dclab.algorithms.prune.magnitude_mask",
))


def check_magnitude_mask(magnitude_mask: Callable[[torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """Check ``magnitude_mask(w, sparsity) -> mask`` removing the smallest |w| (notebook 02, pruning)."""
    return MAGNITUDE_MASK.check(magnitude_mask)


# ---------------------------------------------------------------- threshold_mask(w, quality)


def _threshold_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    return [
        Case((torch.tensor([0.5, -1.5, 0.1, 2.0, -0.3, 1.0]), 1.0), "a small vector, quality 1"),
        Case((torch.tensor([-3.0, -2.5, 0.1, 0.2, 0.3, 2.8]), 0.5), "large negative weights must be kept"),
        Case((torch.tensor([0.0, 0.2, -0.4, 1.0]), 0.0), "quality 0 keeps every weight, even an exact 0"),
        Case((torch.randn(20, 30, generator=g), 1.0), "a random 20x30 matrix, quality 1",
             shown="w = a random 20x30 matrix, quality = 1.0"),
        Case((torch.randn(4, 3, 3, 3, generator=g) * 0.1, 1.5), "a 4x3x3x3 convolution weight, quality 1.5",
             shown="w = a random 4x3x3x3 conv weight (std 0.1), quality = 1.5"),
        Case((torch.randn(100, generator=g), 3.0), "quality 3: only the rare large weights stay",
             shown="w = 100 random weights, quality = 3.0"),
    ]


def _threshold_compare(case: Case, got: Any) -> None:
    w, quality = case.args
    std = float(w.std())
    ref = prune.threshold_mask(w, quality)
    shown = f"{_mask_text(ref)}: keeps |w| >= {quality} x std(w) = {quality * std:.4g}"
    mask = _mask_answer(got, w, shown)
    a, t = w.abs(), quality * std
    for cut in (t, quality * float(w.std(unbiased=False))):  # torch's std or numpy's: either is fine
        near = (a.double() - cut).abs() < 1e-6 * cut  # rounding may put these either side (none when cut = 0)
        if bool(((mask == (a >= cut)) | near).all()):
            return
    wrong = [
        (w >= t, "compare the magnitude |w| with the threshold (w.abs() >= ...): negative weights count too"),
        (a > t, "keep the weights whose |w| equals the threshold too: use >=, not >"),
        (a < t, "True means kept: keep |w| >= quality * std, prune the rest"),
        (a >= quality * float(w.var()), "the threshold uses the standard deviation, w.std(), not the variance"),
        (a >= quality * float(a.std()), "take the standard deviation of the weights w, not of |w|"),
        (a >= quality * float(a.mean()), "the threshold is quality x std(w), not quality x mean|w|"),
    ]
    hint = next((h for m, h in wrong if torch.equal(mask, m)), None)
    if hint is None:
        hint = f"the threshold is quality x std(w) = {quality} x {std:.4g} = {t:.4g}; keep every weight with |w| >= it"
    raise Mismatch(shown, _mask_text(mask), hint)


THRESHOLD_MASK = register(Exercise(
    name="threshold_mask",
    notebook=NOTEBOOK,
    params=("w", "quality"),
    cases=_threshold_cases,
    compare=_threshold_compare,
    fallback=prune.threshold_mask,
    fallback_name="dclab.algorithms.prune.threshold_mask",
))


def check_threshold_mask(threshold_mask: Callable[[torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """Check ``threshold_mask(w, quality) -> mask`` keeping |w| >= quality * std(w) (notebook 02, threshold)."""
    return THRESHOLD_MASK.check(threshold_mask)


# ---------------------------------------------------------------- global_magnitude_masks(weights, sparsity)


def _global_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    big = torch.tensor([[1.2, -0.9, 2.0], [0.7, -1.5, 0.8], [-1.1, 0.6, 1.4], [0.95, -0.75, 1.8]])
    small = torch.tensor([[0.05, -0.3, 0.02], [0.65, -0.01, 0.12]])
    three = {
        "conv1": torch.randn(4, 1, 3, 3, generator=g) * 0.3,
        "ip1": torch.randn(20, 16, generator=g) * 0.05,
        "ip2": torch.randn(10, 20, generator=g) * 0.2,
    }
    return [
        Case(({"ip1": big, "ip2": small}, 0.5), "a layer of large weights and a layer of small ones"),
        Case(({"ip1": torch.tensor([0.4, -0.1, 0.3, -0.2])}, 0.25), "a single layer"),
        Case(({"ip1": big, "ip2": small}, 0.0), "sparsity 0: nothing is removed",
             error_hint="with sparsity 0 there is nothing to remove: every mask is all True"),
        Case((three, 0.9), "three layers of different scales, 90% removed",
             shown="weights = {conv1: random 4x1x3x3 (std 0.3), ip1: random 20x16 (std 0.05), "
                   "ip2: random 10x20 (std 0.2)}, sparsity = 0.9"),
    ]


def _global_compare(case: Case, got: Any) -> None:
    weights, sparsity = case.args
    ref = prune.global_magnitude_masks(weights, sparsity)
    total = sum(w.numel() for w in weights.values())
    n_removed = round(sparsity * total)
    per_layer = ", ".join(f"{k}: {int(m.numel() - m.sum())} of {m.numel()} removed" for k, m in ref.items())
    shown = f"masks removing the {n_removed} smallest |w| of all {total} weights ({per_layer})"
    if all(w.numel() <= 12 for w in weights.values()):
        shown = f"{show(ref)} ({per_layer})"
    if not isinstance(got, Mapping):
        raise Mismatch(shown, show(got), "return a dict {layer name: mask}, with the same names as the input")
    if set(got) != set(weights):
        raise Mismatch(shown, f"a dict with names {sorted(got)}", f"return one mask per layer, named as the input: {sorted(weights)}")
    masks = {k: _mask_answer(got[k], weights[k], shown, what=f"weights[{k!r}]") for k in weights}
    came_back = ", ".join(f"{k}: {int(m.numel() - m.sum())} of {m.numel()} removed" for k, m in masks.items())
    removed = sum(int(m.numel() - m.sum()) for m in masks.values())
    layerwise = {k: prune.magnitude_mask(w, sparsity) for k, w in weights.items()}
    per_layer_hint = ("that is per-layer pruning (each layer loses the same fraction); rank all the weights of all "
                      "layers together (torch.cat of the flattened |w|), cut once, then split the mask back by layer")
    if removed != n_removed:
        if all(torch.equal(masks[k], layerwise[k]) for k in weights):
            raise Mismatch(shown, came_back, per_layer_hint)
        raise Mismatch(shown, came_back, f"sparsity {sparsity} of {total} weights in all means {n_removed} removed in all")
    names = list(weights)
    a = torch.cat([weights[k].detach().abs().reshape(-1) for k in names])
    keep = torch.cat([masks[k].reshape(-1) for k in names])
    bad = _order_violation(a, keep)
    if bad is None:
        return
    if all(torch.equal(masks[k], layerwise[k]) for k in weights):
        raise Mismatch(shown, came_back, per_layer_hint)
    starts = np.cumsum([0] + [weights[k].numel() for k in names])

    def locate(flat: int) -> str:
        layer = int(np.searchsorted(starts, flat, side="right")) - 1
        return f"{names[layer]}: {_where(weights[names[layer]], flat - int(starts[layer]))}"

    i, j = bad
    raise Mismatch(shown, came_back, f"it removes {locate(i)} but keeps {locate(j)}, which is smaller in magnitude: "
                                     "one threshold for all the layers")


GLOBAL_MAGNITUDE_MASKS = register(Exercise(
    name="global_magnitude_masks",
    notebook=NOTEBOOK,
    params=("weights", "sparsity"),
    cases=_global_cases,
    compare=_global_compare,
    fallback=prune.global_magnitude_masks,
    fallback_name="dclab.algorithms.prune.global_magnitude_masks",
))


def check_global_magnitude_masks(global_magnitude_masks: Callable[[dict, float], dict]) -> CheckResult:
    """Check ``global_magnitude_masks(weights, sparsity) -> {name: mask}``, one cut for all layers (notebook 02)."""
    return GLOBAL_MAGNITUDE_MASKS.check(global_magnitude_masks)


# ---------------------------------------------------------------- masked_sgd_step(w, grad, mask, lr)


def pruner_sgd_step(w: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, lr: float) -> torch.Tensor:
    """One plain SGD step of a pruned weight through dclab's ``Pruner`` (notebook 02, retraining).

    The Pruner's hook masks the gradient, the step is ``torch.optim.SGD``'s without momentum or
    weight decay (``w -= lr * grad``, the same ``add_``; an optimizer itself would import
    ``torch._dynamo``, ~75 MB of the page's memory), ``Pruner.apply()`` zeros the pruned weights
    again: the new weight, pruned entries exactly 0. ``w`` is not changed.
    """
    holder = nn.Module()
    holder.layer = nn.Module()
    holder.layer.weight = weight = nn.Parameter(w.detach().clone())
    pruner = prune.Pruner(holder, {"layer": mask})
    (weight * grad).sum().backward()  # d/dw of sum(w * grad) is grad
    with torch.no_grad():
        weight.add_(weight.grad, alpha=-lr)
    pruner.apply()
    pruner.remove()
    return holder.layer.weight.detach() + 0.0  # + 0.0: a pruned weight reads 0.0, not -0.0


def _step_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    conv = torch.randn(4, 2, 3, 3, generator=g) * 0.2
    conv_mask = prune.magnitude_mask(conv, 0.75)
    return [
        Case((torch.tensor([0.5, 0.0, -0.3, 0.0]), torch.tensor([0.2, -0.4, 0.1, 0.6]),
              torch.tensor([True, False, True, False]), 0.1), "pruned weights already at zero, a gradient on all four"),
        Case((torch.tensor([[0.8, -0.05], [0.02, -0.6]]), torch.tensor([[1.0, 2.0], [-3.0, 0.5]]),
              torch.tensor([[True, False], [False, True]]), 0.01),
             "just pruned: the weights at pruned positions are not zero yet and must become exactly 0"),
        Case((torch.tensor([0.3, -0.2, 0.1]), torch.tensor([0.5, 0.5, -1.0]), torch.tensor([True, True, True]), 0.5),
             "nothing pruned: a plain SGD step"),
        Case((torch.tensor([0.3, -0.2, 0.1]), torch.tensor([0.5, 0.5, -1.0]), torch.tensor([False, False, False]), 0.5),
             "everything pruned: all zeros"),
        Case((conv * conv_mask, torch.randn(4, 2, 3, 3, generator=g), conv_mask, 0.005),
             "a 4x2x3x3 convolution weight, 75% pruned, lr 0.005",
             shown="w = a random 4x2x3x3 conv weight with 75% pruned (zeros), grad = a random 4x2x3x3 tensor, "
                   "mask = its 4x2x3x3 mask, lr = 0.005"),
    ]


def _step_compare(case: Case, got: Any) -> None:
    w, grad, mask, lr = case.args
    ref = pruner_sgd_step(w, grad, mask, lr)
    n_pruned = int((~mask).sum())
    shown = (show(ref) if ref.numel() <= 24 else f"a {'x'.join(map(str, w.shape))} tensor: w - lr * grad where "
             f"kept, exactly 0 at the {n_pruned} pruned positions")
    new = as_tensor(got, shown, "a float tensor shaped like w: the weight after the step")
    came_back = show(new)
    if tuple(new.shape) != tuple(w.shape):
        raise Mismatch(shown, f"a tensor shaped {tuple(new.shape)}",
                       f"return the new weight shaped like w, {tuple(w.shape)}")
    if not new.is_floating_point():
        raise Mismatch(shown, came_back, "return the new weights (floats), not the mask")
    new = new.to(ref.dtype)
    pruned, kept = ~mask, mask

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return bool(torch.allclose(a, b, rtol=1e-5, atol=1e-7))

    if bool((new[pruned] != 0).any()):
        if same(new[pruned], w[pruned]) and bool((w[pruned] != 0).any()):
            hint = ("the pruned weights keep their old values: multiply the result by the mask (or start from "
                    "w * mask), so a pruned weight is exactly 0 after every step")
        elif same(new[pruned], (w - lr * grad)[pruned]) or same(new[pruned], -lr * grad[pruned]):
            hint = ("the pruned weights moved with their gradient: mask the gradient too (grad * mask), "
                    "so a pruned weight gets no update")
        else:
            hint = "every pruned weight (mask False) must be exactly 0 after the step"
        raise Mismatch(shown, came_back, hint)
    if same(new[kept], ref[kept]):
        return
    wrong = [
        ((w + lr * grad)[kept], "step against the gradient: w - lr * grad, not w + lr * grad"),
        ((w - grad)[kept], "scale the gradient by the learning rate: w - lr * grad"),
        (w[kept], "the kept weights did not move: they take the step w - lr * grad"),
        ((w - lr * grad * grad)[kept], "the step is lr * grad, not lr * grad**2"),
    ]
    hint = next((h for expected, h in wrong if same(new[kept], expected)), None)
    if hint is None:
        bad = int((~torch.isclose(new, ref, rtol=1e-5, atol=1e-7) & kept).reshape(-1).nonzero()[0])
        hint = (f"at kept position {_where(w, bad)} the step gives {float(ref.reshape(-1)[bad]):.6g}, "
                f"yours {float(new.reshape(-1)[bad]):.6g}: a kept weight becomes w - lr * grad")
    raise Mismatch(shown, came_back, hint)


MASKED_SGD_STEP = register(Exercise(
    name="masked_sgd_step",
    notebook=NOTEBOOK,
    params=("w", "grad", "mask", "lr"),
    cases=_step_cases,
    compare=_step_compare,
    fallback=pruner_sgd_step,
    fallback_name="dclab.exercises.pruning.pruner_sgd_step (dclab's Pruner with torch.optim.SGD's plain step)",
))


def check_masked_sgd_step(masked_sgd_step: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor],
                          ) -> CheckResult:
    """Check ``masked_sgd_step(w, grad, mask, lr) -> new w``: pruned weights stay exactly 0 (notebook 02, retraining)."""
    return MASKED_SGD_STEP.check(masked_sgd_step)
