"""Weight sharing by k-means, and trained quantization (notebook 04).

Han, Mao and Dally, "Deep Compression" (ICLR 2016), section 3: the weights of a layer
are clustered by 1-D k-means; each weight is replaced by an ``index`` into a small
``codebook`` of shared values (``centroids``), so it costs ``bits`` instead of 32.
Then the centroids are fine-tuned: the gradient of centroid k is the sum of the
gradients of all weights whose index is k, and the optimizer updates the centroids.

In 1-D, k-means clusters are intervals of the sorted values, so after sorting once
each Lloyd iteration is a binary search of the K - 1 boundaries between consecutive
centroids plus K differences of a cumulative sum: O(K log n) instead of O(n K).

Lloyd finds a local optimum that depends on its start. Because 1-D clusters are intervals,
the global optimum (least squared error) is a dynamic program over the cut points
(Wang and Song, "Ckmeans.1d.dp", The R Journal 2011): ``init="optimal"`` starts Lloyd there,
which then has nothing left to do. It costs O(K n log n) (divide and conquer over monotone
cut points): ~0.4 s for 20,000 survivors into 31 clusters, ~6 s for 235,200 into 32.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from dclab import paper
from dclab.errors import DclabError

__all__ = [
    "DEFAULT_BITS",
    "INITS",
    "ALL_INITS",
    "Codebook",
    "SortedValues",
    "kmeans_1d",
    "optimal_bounds",
    "init_centroids",
    "quantize_layer",
    "uniform_codebook",
    "SharedWeights",
    "apply_codebooks_",
    "share_weights_",
    "unshare_weights_",
    "shared_codebooks",
    "sharing_ratio",
    "check_bits",
]

DEFAULT_BITS = dict(paper.BITS)
"""The paper's bits per weight index: 256 shared weights for conv layers, 32 for fc layers."""

INITS = ("linear", "density", "random")
"""The paper's three starts for k-means (section 3.2), the ones the pages offer."""
ALL_INITS = (*INITS, "optimal")
"""What the engine accepts (``CompressionConfig.init``, the CLI's ``--init``): the paper's starts and
``optimal``, the least-squares clustering itself (slower: see the module's note)."""
DEFAULT_ITERS = 300


def check_bits(bits: int, where: str = "") -> int:
    """``bits`` as an int in 1..16, else a DclabError saying so."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not 1 <= bits <= 16:
        raise DclabError(
            f"bits{where} must be an integer from 1 to 16 (the codebook has 2**bits entries), not {bits!r}"
        )
    return int(bits)


@dataclass(frozen=True, repr=False)
class Codebook:
    """A layer's shared weights: ``centroids`` (float32, K) and ``indices`` (int64, shaped like w).

    ``reserved_zero`` is True when the layer was pruned: index 0 is then the value 0.0,
    used by the pruned weights (and the sparse format's fillers) and never trained.
    """

    centroids: torch.Tensor
    indices: torch.Tensor
    reserved_zero: bool = False

    def weights(self) -> torch.Tensor:
        """The quantized weight tensor ``centroids[indices]``."""
        return self.centroids[self.indices]

    def mask(self) -> torch.Tensor:
        """True where a weight is kept (index != 0 in a pruned layer)."""
        if self.reserved_zero:
            return self.indices != 0
        return torch.ones(self.indices.shape, dtype=torch.bool, device=self.indices.device)

    @property
    def n_clusters(self) -> int:
        """Number of codebook entries (the reserved zero included)."""
        return int(self.centroids.numel())

    @property
    def bits(self) -> int:
        """Bits per index: ceil(log2(n_clusters))."""
        return max(1, math.ceil(math.log2(max(self.n_clusters, 1))))

    def __repr__(self) -> str:
        c = self.centroids
        span = f"[{c.min().item():.4g}, {c.max().item():.4g}]" if c.numel() else "[]"
        zero = ", index 0 = 0.0 (pruned)" if self.reserved_zero else ""
        return (
            f"Codebook({self.n_clusters} centroids in {span}, {self.indices.numel():,} indices "
            f"shaped {tuple(self.indices.shape)}{zero})"
        )


class SortedValues:
    """Values sorted once (float64) with their original positions (notebook 04).

    Build it once per layer with ``SortedValues.of(w)``; ``select(mask)`` keeps the
    pruning survivors without sorting again, so a slider can re-cluster quickly.
    """

    __slots__ = ("values", "order", "shape")

    def __init__(self, values: np.ndarray, order: np.ndarray, shape: tuple[int, ...]) -> None:
        self.values = values
        self.order = order
        self.shape = tuple(shape)

    @classmethod
    def of(cls, w: torch.Tensor | np.ndarray) -> "SortedValues":
        """Sort the entries of ``w`` (any shape)."""
        flat = _as_float64(w)
        order = np.argsort(flat, kind="stable")
        return cls(flat[order], order, tuple(w.shape))

    def select(self, mask: torch.Tensor | np.ndarray | None) -> "SortedValues":
        """The entries where ``mask`` is True, still sorted (O(n), no new sort)."""
        if mask is None:
            return self
        keep = _as_bool(mask)
        if keep.size != self.numel:
            raise DclabError(f"mask has {keep.size} entries but the values have {self.numel}")
        keep = keep[self.order]
        return SortedValues(self.values[keep], self.order[keep], self.shape)

    @property
    def numel(self) -> int:
        """Number of entries of the original tensor."""
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"SortedValues({len(self):,} of {self.numel:,} values)"


def _as_float64(w: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu().double().numpy()
    return np.asarray(w, dtype=np.float64).reshape(-1)


def _as_flat(w: torch.Tensor | np.ndarray) -> np.ndarray:
    # float32 stays float32 (sorting it is faster); anything else becomes float64
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu()
        w = w.numpy() if w.dtype in (torch.float32, torch.float64) else w.double().numpy()
    w = np.asarray(w).reshape(-1)
    return w if w.dtype in (np.float32, np.float64) else w.astype(np.float64)


def _as_bool(mask: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask, dtype=bool).reshape(-1)


def init_centroids(values: np.ndarray, n_clusters: int, init: str = "linear", seed: int = 0) -> np.ndarray:
    """Initial centroids for sorted ``values`` (notebook 04, centroid initialization).

    ``linear``: evenly spaced between min and max (the paper's default; keeps the rare
    large weights). ``density``: equal steps of the CDF, the quantiles at (i + 0.5) / K.
    ``random`` (Forgy): K distinct data points drawn with ``seed``. ``optimal``: the means of the
    least-squares partition into K intervals (``optimal_bounds``), where Lloyd starts at its fixed point.
    """
    if init not in ALL_INITS:
        raise DclabError(f"init must be one of {', '.join(ALL_INITS)}, not {init!r}")
    x = values
    n = len(x)
    if n == 0:
        return np.zeros(n_clusters)
    if init == "linear":
        return np.linspace(x[0], x[-1], n_clusters)
    if init == "density":
        q = (np.arange(n_clusters) + 0.5) / n_clusters * (n - 1)
        return np.interp(q, np.arange(n), x)
    if init == "optimal":
        return _optimal_centroids(x, n_clusters)
    rng = np.random.default_rng(seed)
    picks = rng.choice(n, size=min(n_clusters, n), replace=False)
    centroids = x[np.sort(picks)]
    if n < n_clusters:  # fewer points than clusters: the spare centroids stay empty
        centroids = np.concatenate([centroids, np.full(n_clusters - n, x[-1])])
    return centroids


def optimal_bounds(x: np.ndarray, n_clusters: int) -> np.ndarray:
    """Cut points ``[0, b1, ..., n]`` of the least-squares partition of sorted ``x`` into ``n_clusters``
    non-empty intervals (needs ``n_clusters <= len(x)``).

    Row m of the dynamic program is the least error of ``x[:i]`` in m + 1 clusters, for every i; its best
    last cut is non-decreasing in i, so each row is solved by divide and conquer, every level of the
    recursion at once in numpy.
    """
    n, k = len(x), int(n_clusters)
    if not 1 <= k <= n:
        raise DclabError(f"cannot cut {n} values into {k} non-empty clusters")
    shifted = x - x[n // 2]  # centred, so the cumulative sums keep their precision
    s1 = np.concatenate([[0.0], np.cumsum(shifted)])
    s2 = np.concatenate([[0.0], np.cumsum(shifted * shifted)])

    def error(j: np.ndarray, i: np.ndarray) -> np.ndarray:  # squared error of x[j:i] around its mean
        d = s1[i] - s1[j]
        return np.maximum(s2[i] - s2[j] - d * d / (i - j), 0.0)

    best = np.full(n + 1, np.inf)
    best[1:] = error(np.zeros(n, dtype=np.int64), np.arange(1, n + 1))
    cuts = np.zeros((k, n + 1), dtype=np.int32)
    for m in range(1, k):
        row = np.full(n + 1, np.inf)
        lo, hi, first, last = (np.array([v]) for v in (m + 1, n, m, n - 1))  # i in [lo, hi], cut in [first, last]
        while len(lo):
            mid = (lo + hi) // 2
            counts = np.minimum(mid - 1, last) - first + 1
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            segment = np.repeat(np.arange(len(mid)), counts)
            j = np.arange(counts.sum()) - starts[segment] + first[segment]
            value = best[j] + error(j, mid[segment])
            least = np.minimum.reduceat(value, starts)
            ties = np.flatnonzero(value == least[segment])
            _, at = np.unique(segment[ties], return_index=True)
            cut = j[ties[at]]  # the first best cut of each segment
            row[mid], cuts[m, mid] = least, cut
            left, right = lo < mid, mid < hi
            lo, hi, first, last = (np.concatenate([lo[left], mid[right] + 1]),
                                   np.concatenate([mid[left] - 1, hi[right]]),
                                   np.concatenate([first[left], cut[right]]),
                                   np.concatenate([cut[left], last[right]]))
        best = row
    bounds = np.zeros(k + 1, dtype=np.int64)
    bounds[k] = n
    for m in range(k - 1, 0, -1):
        bounds[m] = cuts[m, bounds[m + 1]]
    return bounds


def _optimal_centroids(x: np.ndarray, n_clusters: int) -> np.ndarray:
    distinct = x[np.concatenate([[True], x[1:] != x[:-1]])]
    if len(distinct) <= n_clusters:  # a centroid per value (as Lloyd does then)
        return np.concatenate([distinct, np.full(n_clusters - len(distinct), distinct[-1])])
    bounds = optimal_bounds(x, n_clusters)
    sums = np.add.reduceat(x, bounds[:-1])
    return sums / np.diff(bounds)


def _lloyd_sorted(x: np.ndarray, centroids: np.ndarray, iters: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Lloyd's k-means on sorted 1-D ``x``: returns (centroids, cluster bounds into x, iterations).

    Like scikit-learn, a cluster left empty takes over the point farthest from its
    centroid, so no codebook entry is wasted.
    """
    n = len(x)
    c = np.sort(np.asarray(centroids, dtype=np.float64))
    k = len(c)
    if n == 0:
        return c, np.zeros(k + 1, dtype=np.int64), 0
    if iters == 0:  # the start itself, nearest-assigned (a uniform grid from the linear start)
        return c, _bounds(x, c), 0
    distinct = x[np.concatenate([[True], x[1:] != x[:-1]])]
    if len(distinct) <= k:  # every value can have its own centroid: that is the optimum
        c = np.concatenate([distinct, np.full(k - len(distinct), distinct[-1])])
        return c, _bounds(x, c), 0
    shift = x[n // 2]  # centre the cumulative sum so its rounding error stays small
    csum = np.concatenate([[0.0], np.cumsum(x - shift)])
    done = 0
    for done in range(1, iters + 1):
        bounds = _bounds(x, c)
        counts = np.diff(bounds)
        sums = csum[bounds[1:]] - csum[bounds[:-1]]
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            _relocate(x - shift, c - shift, counts, sums, empty)
        new = np.sort(sums / np.maximum(counts, 1) + shift)
        if np.array_equal(new, c):
            break  # the centroids are their clusters' means: converged
        c = new
    return c, _bounds(x, c), done


def _relocate(xs: np.ndarray, cs: np.ndarray, counts: np.ndarray, sums: np.ndarray, empty: np.ndarray) -> None:
    # scikit-learn's rule: the empty clusters take the points farthest from their centroids
    labels = np.repeat(np.arange(len(cs)), counts)
    distance = np.abs(xs - cs[labels])
    far = np.argpartition(distance, -len(empty))[-len(empty):]
    np.subtract.at(sums, labels[far], xs[far])
    np.subtract.at(counts, labels[far], 1)
    sums[empty] = xs[far]
    counts[empty] = 1


def _bounds(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    # a value equidistant from two centroids joins the lower one, as argmin would
    cuts = np.searchsorted(x, (c[1:] + c[:-1]) / 2, side="right")
    return np.concatenate([[0], cuts, [len(x)]]).astype(np.int64)


def kmeans_1d(
    values: torch.Tensor | np.ndarray | SortedValues,
    n_clusters: int,
    init: str = "linear",
    iters: int = DEFAULT_ITERS,
    seed: int = 0,
    centroids: np.ndarray | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """1-D k-means: ``(centroids float32 ascending, labels int64)`` (notebook 04, weight sharing).

    ``labels`` is shaped like ``values``; for a ``SortedValues`` selection it is shaped
    like the original tensor, with -1 where the selection left a value out. Lloyd's
    iterations run until the assignment stops changing or ``iters`` is reached.
    ``centroids`` overrides ``init`` with given starting centroids. ``iters=0`` keeps the
    start and assigns each value to its nearest centroid: with ``init="linear"`` that is a
    uniform grid (``uniform_codebook``).
    """
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral) or n_clusters < 1:
        raise DclabError(f"n_clusters must be a positive integer, not {n_clusters!r}")
    if isinstance(iters, bool) or not isinstance(iters, numbers.Integral) or iters < 0:
        raise DclabError(f"iters must be an integer >= 0 (0: keep the start), not {iters!r}")
    if isinstance(values, SortedValues):
        sorted_x, flat = values.values, None
    else:
        flat = _as_flat(values)
        sorted_x = np.sort(flat).astype(np.float64)
    if centroids is None:
        start = init_centroids(sorted_x, int(n_clusters), init, seed)
    else:
        start = _as_float64(centroids)
        if start.size != n_clusters:
            raise DclabError(f"got {start.size} starting centroids for n_clusters={n_clusters}")
    c, bounds, _ = _lloyd_sorted(sorted_x, start, int(iters))
    if flat is None:  # a SortedValues selection: place the labels through its order
        labels = np.full(values.numel, -1, dtype=np.int64)
        labels[values.order] = np.repeat(np.arange(len(c), dtype=np.int64), np.diff(bounds))
        shape = values.shape
    else:  # label = number of boundaries below the value (ties join the lower centroid)
        labels = np.searchsorted((c[1:] + c[:-1]) / 2, flat, side="left").astype(np.int64)
        shape = tuple(values.shape)
    return torch.from_numpy(c.astype(np.float32)), torch.from_numpy(labels).reshape(shape)


def quantize_layer(
    w: torch.Tensor,
    mask: torch.Tensor | None = None,
    bits: int = 5,
    init: str = "linear",
    iters: int = DEFAULT_ITERS,
    seed: int = 0,
    presorted: SortedValues | None = None,
) -> Codebook:
    """Share a layer's weights: k-means over the kept weights -> ``Codebook`` (notebook 04).

    If ``mask`` prunes anything, index 0 is reserved for 0.0 (pruned weights and sparse
    fillers) and k-means fits ``2**bits - 1`` centroids to the kept weights; a dense
    layer uses all ``2**bits``. ``presorted`` (``SortedValues.of(w)``, cached by a
    widget) skips the sort.
    """
    bits = check_bits(bits)
    if mask is not None and tuple(mask.shape) != tuple(w.shape):
        raise DclabError(f"mask is shaped {tuple(mask.shape)} but the weight is {tuple(w.shape)}")
    if presorted is not None and presorted.shape != tuple(w.shape):
        raise DclabError(f"presorted values are shaped {presorted.shape} but the weight is {tuple(w.shape)}")
    pruned = mask is not None and not bool(mask.all())
    n_clusters = 2**bits - (1 if pruned else 0)
    if presorted is not None:
        centroids, labels = kmeans_1d(presorted.select(mask if pruned else None), n_clusters, init, iters, seed)
    elif pruned:
        centroids, kept = kmeans_1d(w.detach()[mask], n_clusters, init, iters, seed)
        labels = torch.full(tuple(w.shape), -1, dtype=torch.int64)
        labels[mask.cpu()] = kept
    else:
        centroids, labels = kmeans_1d(w, n_clusters, init, iters, seed)
    if pruned:
        centroids = torch.cat([torch.zeros(1), centroids])
        labels = labels + 1  # pruned entries were -1: now 0, the reserved zero
    return Codebook(centroids, labels.to(w.device), reserved_zero=pruned)


def uniform_codebook(w: torch.Tensor, mask: torch.Tensor | None = None, bits: int = 5) -> Codebook:
    """A uniform grid as a ``Codebook``: evenly spaced levels, min to max, each weight on its nearest (notebook 03).

    What notebook 01's fixed-point formats do, for comparison with k-means at equal bits: it is
    ``quantize_layer``'s linear start with no k-means iteration (``iters=0``), so the same rules hold
    (with a ``mask`` that prunes anything, index 0 is the reserved zero and the ``2**bits - 1``
    levels span the kept weights).
    """
    return quantize_layer(w, mask, bits, init="linear", iters=0)


def sharing_ratio(n: int, bits: int, b: int = 32) -> float:
    """Compression of weight sharing alone: r = n*b / (n*log2(k) + k*b), k = 2**bits (paper eq. 1)."""
    k = 2 ** check_bits(bits)
    return n * b / (n * bits + k * b)


class SharedWeights(nn.Module):
    """Parametrization ``weight = centroids[indices] * mask`` (notebook 04, trained quantization).

    Registered with ``torch.nn.utils.parametrize``, the centroids become the layer's
    trainable parameter; autograd's gather backward adds up the gradients of all the
    weights sharing a centroid: dL/dC_k = sum_ij dL/dW_ij 1(I_ij = k), the paper's
    grouped gradient. The indices are fixed; pruned weights (mask False) stay 0, and
    so does the reserved zero centroid, whose gradient is always 0.
    """

    def __init__(self, codebook: Codebook) -> None:
        super().__init__()
        self.centroids = nn.Parameter(codebook.centroids.detach().clone().float())
        self.register_buffer("indices", codebook.indices.detach().clone())
        self.register_buffer("keep", codebook.mask().float())
        self.reserved_zero = bool(codebook.reserved_zero)

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        weight = self.centroids[self.indices]
        return weight * self.keep if self.reserved_zero else weight

    def codebook(self) -> Codebook:
        """The current (trained) codebook."""
        return Codebook(self.centroids.detach().clone(), self.indices.clone(), self.reserved_zero)


def _layers(model: nn.Module) -> dict[str, nn.Module]:
    return dict(model.named_modules())


def apply_codebooks_(model: nn.Module, codebooks: Mapping[str, Codebook]) -> nn.Module:
    """Write ``centroids[indices]`` into each named layer's plain weight, in place (notebooks 03, 06).

    The one way dclab puts shared weights into a model (the pipeline, the capstone's session,
    the bit-width widget); ``share_weights_`` instead makes the centroids trainable.
    """
    modules = _layers(model)
    with torch.no_grad():
        for name, codebook in codebooks.items():
            module = modules.get(name)
            if module is None or not hasattr(module, "weight"):
                raise DclabError(f"the model has no layer {name!r} with a weight")
            module.weight.copy_(codebook.weights().reshape(module.weight.shape))
    return model


def share_weights_(model: nn.Module, codebooks: Mapping[str, Codebook]) -> nn.Module:
    """Make each named layer's weight ``centroids[indices]`` with trainable centroids (notebook 04).

    Afterwards ``model.parameters()`` holds the centroids (and the biases), so any torch
    optimizer fine-tunes the codebooks. Undo with ``unshare_weights_``.
    """
    modules = _layers(model)
    for name, codebook in codebooks.items():
        module = modules.get(name)
        if module is None or not hasattr(module, "weight"):
            raise DclabError(f"the model has no layer {name!r} with a weight")
        if parametrize.is_parametrized(module, "weight"):
            raise DclabError(f"layer {name!r} already shares its weights; call unshare_weights_(model) first")
        if tuple(codebook.indices.shape) != tuple(module.weight.shape):
            raise DclabError(
                f"codebook indices for {name!r} are shaped {tuple(codebook.indices.shape)}, "
                f"the weight is {tuple(module.weight.shape)}"
            )
        device = module.weight.device
        shared = SharedWeights(codebook).to(device)
        parametrize.register_parametrization(module, "weight", shared, unsafe=True)
        module.parametrizations.weight.original.requires_grad_(False)
    return model


def shared_codebooks(model: nn.Module) -> dict[str, Codebook]:
    """The current codebooks of the layers that share their weights."""
    books = {}
    for name, module in _layers(model).items():
        if parametrize.is_parametrized(module, "weight"):
            for p in module.parametrizations.weight:
                if isinstance(p, SharedWeights):
                    books[name] = p.codebook()
    return books


def unshare_weights_(model: nn.Module) -> dict[str, Codebook]:
    """Turn shared weights back into plain ones (values ``centroids[indices]``); return the codebooks."""
    books = shared_codebooks(model)
    for name in books:
        module = _layers(model)[name]
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        module.weight.requires_grad_(True)
    return books
