"""Exercises of notebook 03 (weight sharing): one k-means step, the grouped centroid gradient, eq. 1's ratio."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from dclab.algorithms import quantize
from dclab.exercises._core import (
    Case,
    CheckResult,
    Exercise,
    Mismatch,
    as_tensor,
    register,
    show,
)

NOTEBOOK = "03_weight_sharing.ipynb"


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.isclose(a.double(), b.double(), rtol=1e-5, atol=1e-6).all())


# ---------------------------------------------------------------- kmeans_step(values, centroids)


def kmeans_step(values: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One Lloyd step of 1-D k-means: (labels of the nearest centroids, their means) (notebook 03).

    A centroid that no value is nearest to keeps its place. ``dclab.algorithms.quantize.kmeans_1d``
    repeats this step until nothing changes.
    """
    labels = (values.reshape(-1, 1) - centroids.reshape(1, -1)).abs().argmin(dim=1)
    sums = torch.zeros(len(centroids), dtype=torch.float64).index_add_(0, labels, values.double())
    counts = torch.bincount(labels, minlength=len(centroids))
    new = torch.where(counts > 0, sums / counts.clamp(min=1), centroids.double())
    return labels, new.to(centroids.dtype)


def _kmeans_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    normal = torch.randn(200, generator=g)
    weights = torch.randn(1000, generator=g) * 0.1
    return [
        Case((torch.tensor([0.1, 0.2, 0.9, 1.0, 1.1]), torch.tensor([0.0, 1.0])), "two clusters worked by hand"),
        Case((torch.tensor([-1.2, -0.8, 0.1, 0.3, 2.2]), torch.tensor([2.0, -1.0, 0.0])),
             "centroids not in sorted order: label k means centroids[k]"),
        Case((torch.tensor([0.1, 0.3, 0.6, 0.9]), torch.tensor([0.0, 1.0, 5.0])),
             "a centroid that no value is nearest to: it keeps its place",
             error_hint="centroid 2 gets no values: keep its old value instead of dividing by zero"),
        Case((torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.0])), "a single centroid"),
        Case((normal, torch.linspace(-2, 2, 8)), "200 random values, 8 centroids spaced linearly",
             shown="values = 200 random normal values, centroids = torch.linspace(-2, 2, 8)"),
        Case((weights, torch.linspace(float(weights.min()), float(weights.max()), 32)),
             "1000 weights and 32 centroids, as a 5-bit fc layer",
             shown="values = 1000 random weights (std 0.1), centroids = 32 spaced linearly from min to max"),
    ]


def _kmeans_compare(case: Case, got: Any) -> None:
    values, centroids = case.args
    ref_labels, ref_new = kmeans_step(values, centroids)
    shown = f"labels = {show(ref_labels)}, new centroids = {show(ref_new)}"
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise Mismatch(shown, show(got), "return two things: labels, new_centroids")
    labels = as_tensor(got[0], shown, "the labels as an integer tensor, one per value")
    new = as_tensor(got[1], shown, "the new centroids as a tensor, one per centroid")
    came_back = f"labels = {show(labels)}, new centroids = {show(new)}"
    if labels.numel() != values.numel():
        raise Mismatch(shown, came_back, f"one label per value: {values.numel()} labels")
    if labels.is_floating_point():
        if not bool((labels == labels.round()).all()):
            raise Mismatch(shown, came_back, "labels are centroid numbers 0..k-1, whole numbers")
    labels = labels.reshape(-1).long()
    distance = values.reshape(-1, 1).double() - centroids.reshape(1, -1).double()
    in_range = (labels >= 0) & (labels < len(centroids))
    nearest = distance.abs().gather(1, labels.clamp(0, len(centroids) - 1).reshape(-1, 1)).reshape(-1)
    # a value (almost) halfway between two centroids may join either: accept any nearest one
    acceptable = in_range & (nearest <= distance.abs().min(dim=1).values + 1e-6)
    if not bool(acceptable.all()):
        i = int((~acceptable).nonzero()[0])
        if torch.equal(labels, distance.abs().argmax(dim=1)):
            hint = "each value joins the centroid at the smallest distance: argmin, not argmax"
        elif torch.equal(labels, distance.argmin(dim=1)):
            hint = "compare absolute distances |value - centroid| (.abs()), not signed differences"
        elif torch.equal(labels, (values.reshape(-1, 1) - centroids.sort().values).abs().argmin(dim=1)):
            hint = "label k means centroids[k] in the order given; do not sort the centroids"
        else:
            j = int(labels[i])
            there = f"centroid {j} ({float(centroids[j]):.4g})" if 0 <= j < len(centroids) else f"label {j}, no such centroid"
            hint = (f"value {float(values.reshape(-1)[i]):.4g} is nearest to centroid {int(ref_labels[i])} "
                    f"({float(centroids[ref_labels[i]]):.4g}), but your label sends it to {there}")
        raise Mismatch(shown, came_back, hint)
    new = new.reshape(-1)
    if new.numel() != centroids.numel():
        raise Mismatch(shown, came_back, f"one new centroid per centroid: {centroids.numel()} of them")
    if not torch.equal(labels, ref_labels):  # a tie went the other way: judge the means of the student's clusters
        counts = torch.bincount(labels, minlength=len(centroids))
        sums = torch.zeros(len(centroids), dtype=torch.float64).index_add_(0, labels, values.reshape(-1).double())
        ref_new = torch.where(counts > 0, sums / counts.clamp(min=1), centroids.double()).to(centroids.dtype)
        ref_labels = labels
    if _close(new, ref_new):
        return
    counts = torch.bincount(ref_labels, minlength=len(centroids))
    sums = torch.zeros(len(centroids)).index_add_(0, ref_labels, values.reshape(-1))
    empty = (counts == 0).nonzero().reshape(-1).tolist()
    if empty and not _close(new[empty], ref_new[empty]):
        k = empty[0]
        hint = (f"no value is nearest to centroid {k}: it keeps its old value, {float(centroids[k]):.4g} "
                f"(a mean of nothing is NaN)")
    elif _close(new, centroids):
        hint = "move every centroid to the mean of the values assigned to it"
    elif _close(new[counts > 0], sums[counts > 0]):
        hint = "the mean, not the sum: divide each sum by the number of values in the cluster"
    else:
        hint = "each new centroid is the mean of the values labelled with it: values[labels == k].mean()"
    raise Mismatch(shown, came_back, hint)


KMEANS_STEP = register(Exercise(
    name="kmeans_step",
    notebook=NOTEBOOK,
    params=("values", "centroids"),
    cases=_kmeans_cases,
    compare=_kmeans_compare,
    fallback=kmeans_step,
    fallback_name="dclab.exercises.sharing.kmeans_step",
))


def check_kmeans_step(kmeans_step: Callable[[torch.Tensor, torch.Tensor], tuple]) -> CheckResult:
    """Check ``kmeans_step(values, centroids) -> (labels, new_centroids)`` (notebook 03, weight sharing)."""
    return KMEANS_STEP.check(kmeans_step)


# ---------------------------------------------------------------- centroid_gradient(grad, indices, n_clusters)


def centroid_gradient(grad: torch.Tensor, indices: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """dL/dC_k = sum of dL/dW over the weights whose index is k: the grouped gradient (notebook 03, Figure 3).

    What autograd computes for ``dclab.algorithms.quantize.SharedWeights``'s centroids.
    """
    out = torch.zeros(n_clusters, dtype=grad.dtype)
    return out.index_add_(0, indices.reshape(-1).long(), grad.reshape(-1))


FIGURE_3 = {
    "grad": torch.tensor([[-0.03, -0.01, 0.03, 0.02], [-0.01, 0.01, -0.02, 0.12],
                          [-0.01, 0.02, 0.04, 0.01], [-0.07, -0.02, 0.01, -0.02]]),
    "indices": torch.tensor([[3, 0, 2, 1], [1, 1, 0, 3], [0, 3, 1, 0], [3, 1, 2, 2]]),
}


def _gradient_cases() -> list[Case]:
    g = torch.Generator().manual_seed(6)
    return [
        Case((FIGURE_3["grad"], FIGURE_3["indices"], 4), "the 4x4 example of the paper's Figure 3"),
        Case((torch.tensor([0.5, -0.25, 1.0, 0.125, 0.75, -0.5]), torch.tensor([0, 1, 0, 3, 1, 0]), 5),
             "centroids 2 and 4 are used by no weight: their gradient is 0"),
        Case((torch.randn(6, 3, 3, 3, generator=g), torch.randint(0, 16, (6, 3, 3, 3), generator=g), 16),
             "a 6x3x3x3 convolution weight with 16 centroids",
             shown="grad = a random 6x3x3x3 tensor, indices = random in 0..15, n_clusters = 16"),
    ]


def _gradient_compare(case: Case, got: Any) -> None:
    grad, indices, n_clusters = case.args
    ref = centroid_gradient(grad, indices, n_clusters)
    shown = show(ref)
    out = as_tensor(got, shown, "a tensor with one gradient per centroid")
    came_back = show(out)
    if out.reshape(-1).shape != ref.shape:
        if tuple(out.shape) == tuple(grad.shape):
            hint = "add up the gradients per centroid: the result has n_clusters entries, not one per weight"
        else:
            hint = (f"return one gradient per centroid, n_clusters = {n_clusters} of them, 0 for a centroid no "
                    "weight uses (torch.bincount(..., minlength=n_clusters) or index_add_)")
        raise Mismatch(shown, came_back, hint)
    out = out.reshape(-1).double()
    if _close(out, ref):
        return
    counts = torch.bincount(indices.reshape(-1), minlength=n_clusters).double()
    flat_i, flat_g = indices.reshape(-1), grad.reshape(-1).double()
    if _close(out, ref.double() / counts.clamp(min=1)):
        hint = "the sum, not the mean: the paper adds up the gradients of all the weights sharing a centroid"
    elif _close(out, torch.zeros(n_clusters, dtype=torch.float64).index_add_(0, flat_i, flat_g.abs())):
        hint = "add the gradients with their signs, not their absolute values"
    elif _close(out, counts):
        hint = "add the gradients (bincount's weights=grad), not the number of weights"
    else:
        hint = "entry k is grad[indices == k].sum(): the gradients of the weights that share centroid k"
    raise Mismatch(shown, came_back, hint)


CENTROID_GRADIENT = register(Exercise(
    name="centroid_gradient",
    notebook=NOTEBOOK,
    params=("grad", "indices", "n_clusters"),
    cases=_gradient_cases,
    compare=_gradient_compare,
    fallback=centroid_gradient,
    fallback_name="dclab.exercises.sharing.centroid_gradient",
))


def check_centroid_gradient(centroid_gradient: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> CheckResult:
    """Check ``centroid_gradient(grad, indices, n_clusters)``, the grouped gradient (notebook 03, Figure 3)."""
    return CENTROID_GRADIENT.check(centroid_gradient)


# ---------------------------------------------------------------- sharing_ratio(n, bits, b=32)


def _ratio_cases() -> list[Case]:
    return [
        Case((16, 2), "the paper's 4x4 example: 16 weights, 4 centroids (ratio 3.2)"),
        Case((235_200, 5), "LeNet-300-100's ip1 at 5 bits"),
        Case((100, 8), "a tiny layer with 256 centroids: the codebook costs more than it saves"),
        Case((1_000_000, 4, 16), "a million 16-bit weights, 16 centroids"),
    ]


def _ratio_compare(case: Case, got: Any) -> None:
    n, bits, *rest = case.args
    b = rest[0] if rest else 32
    k = 2**bits
    expected = quantize.sharing_ratio(n, bits, b)
    shown = f"{expected:.6g} = {n}*{b} / ({n}*{bits} + {k}*{b})"
    try:
        value = float(got)
    except (TypeError, ValueError):
        raise Mismatch(shown, f"{show(got)} ({type(got).__name__})", "return the ratio as a number") from None
    if math.isclose(value, expected, rel_tol=1e-9):
        return
    wrong = [
        (n * b / (n * bits), "count the codebook too: k = 2**bits centroids of b bits each, the k*b in the denominator"),
        (n * b / (n * k + k * b), "each index costs log2(k) = bits bits, not k"),
        (n * b / (n * bits + bits * b), "the codebook holds k = 2**bits centroids, not bits of them"),
        (n * 32 / (n * bits + k * 32), "use the argument b (the bits of one original weight) instead of 32"),
        (1 / expected, "the ratio is original bits / compressed bits: above 1 when sharing saves space"),
    ]
    hint = next((h for v, h in wrong if math.isclose(value, v, rel_tol=1e-9)), "r = n*b / (n*log2(k) + k*b) with k = 2**bits")
    raise Mismatch(shown, show(value), hint)


SHARING_RATIO = register(Exercise(
    name="sharing_ratio",
    notebook=NOTEBOOK,
    params=("n", "bits", "b"),
    cases=_ratio_cases,
    compare=_ratio_compare,
    fallback=quantize.sharing_ratio,
    fallback_name="dclab.algorithms.quantize.sharing_ratio",
))


def check_sharing_ratio(sharing_ratio: Callable[..., float]) -> CheckResult:
    """Check ``sharing_ratio(n, bits, b=32)``: r = n*b / (n*log2(k) + k*b), the paper's eq. 1 (notebook 03)."""
    return SHARING_RATIO.check(sharing_ratio)
