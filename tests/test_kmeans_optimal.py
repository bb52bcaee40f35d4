"""The optimal 1-D k-means (``init="optimal"``): the least squared error over every partition into intervals.

Checked against brute force on small cases, and against Lloyd from each of the paper's starts: no start can
do better, since the optimum is over all partitions."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dclab.algorithms import quantize
from dclab.errors import DclabError
from dclab.pipeline.config import CompressionConfig


def interval_error(x: np.ndarray, bounds) -> float:
    return float(sum(((x[a:b] - x[a:b].mean()) ** 2).sum() for a, b in zip(bounds[:-1], bounds[1:])))


def brute_force_error(x: np.ndarray, k: int) -> float:
    n = len(x)
    return min(interval_error(x, [0, *cuts, n]) for cuts in itertools.combinations(range(1, n), k - 1))


def kmeans_error(values: torch.Tensor, k: int, init: str) -> float:
    centroids, labels = quantize.kmeans_1d(values, k, init)
    return float(((values.double() - centroids.double()[labels]) ** 2).sum())


@settings(max_examples=150, deadline=None)
@given(data=st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=1, max_size=11),
       k=st.integers(1, 5))
def test_optimal_bounds_equal_brute_force(data, k):
    x = np.sort(np.asarray(data, dtype=np.float64))
    k = min(k, len(x))
    bounds = quantize.optimal_bounds(x, k)
    assert bounds[0] == 0 and bounds[-1] == len(x) and np.all(np.diff(bounds) >= 1)
    best = brute_force_error(x, k)
    assert interval_error(x, bounds) <= best + 1e-9 * max(1.0, best)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(40, 400), bits=st.integers(1, 4),
       scale=st.sampled_from([1e-3, 1.0, 50.0]))
def test_no_start_of_lloyd_beats_the_optimum(seed, n, bits, scale):
    g = torch.Generator().manual_seed(seed)
    values = torch.cat([torch.randn(n, generator=g), 4 + 0.3 * torch.randn(n // 3, generator=g)]) * scale
    k = 2**bits
    optimal = kmeans_error(values, k, "optimal")
    for init in quantize.INITS:
        assert optimal <= kmeans_error(values, k, init) * (1 + 1e-9) + 1e-12


def test_lloyd_has_nothing_to_do_from_the_optimum():
    values = torch.randn(3000, generator=torch.Generator().manual_seed(1)) ** 3
    x = np.sort(values.double().numpy())
    start = quantize.init_centroids(x, 16, "optimal")
    kept, _ = quantize.kmeans_1d(values, 16, iters=0, centroids=start)
    moved, _ = quantize.kmeans_1d(values, 16, "optimal")
    assert torch.allclose(moved, kept, rtol=0, atol=1e-6)


def test_fewer_distinct_values_than_clusters_give_each_value_a_centroid():
    values = torch.tensor([0.5, 0.5, -1.0, 2.0, 2.0])
    centroids, labels = quantize.kmeans_1d(values, 8, "optimal")
    assert torch.equal(centroids[labels], values)


def test_a_pruned_layer_shares_its_survivors_optimally_around_the_reserved_zero():
    w = torch.randn(40, 50, generator=torch.Generator().manual_seed(2))
    mask = w.abs() > 0.8
    book = quantize.quantize_layer(w, mask, bits=3, init="optimal")
    assert book.reserved_zero and book.n_clusters == 8
    shared = book.weights()
    assert torch.all(shared[~mask] == 0)
    linear = quantize.quantize_layer(w, mask, bits=3, init="linear").weights()
    assert ((shared - w)[mask] ** 2).sum() <= ((linear - w)[mask] ** 2).sum() + 1e-9


def test_the_engine_accepts_optimal_and_the_pages_keep_the_papers_starts():
    assert CompressionConfig(init="optimal").init == "optimal"
    assert "optimal" not in quantize.INITS and set(quantize.INITS) < set(quantize.ALL_INITS)
    with pytest.raises(DclabError, match="optimal"):
        CompressionConfig(init="best")
    with pytest.raises(DclabError, match="non-empty"):
        quantize.optimal_bounds(np.arange(3.0), 4)
