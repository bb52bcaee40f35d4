"""Weight sharing: 1-D k-means against scikit-learn, the codebook rules, trained quantization's gradient."""
import time

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from torch import nn

from dclab.algorithms.prune import magnitude_mask
from dclab.algorithms.quantize import (
    DEFAULT_BITS,
    Codebook,
    SharedWeights,
    SortedValues,
    init_centroids,
    kmeans_1d,
    quantize_layer,
    share_weights_,
    shared_codebooks,
    sharing_ratio,
    uniform_codebook,
    unshare_weights_,
)
from dclab.errors import DclabError


def _sse(x: np.ndarray, centroids, labels) -> float:
    c = np.asarray(centroids, dtype=np.float64)
    return float(((x.astype(np.float64) - c[np.asarray(labels)]) ** 2).sum())


def _data(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(0, 0.05, n)
    if kind == "pruned":  # bimodal: what survives magnitude pruning
        x = rng.normal(0, 0.05, n * 4)
        return x[np.abs(x) > np.quantile(np.abs(x), 0.75)]
    return rng.uniform(-1, 1, n)


def test_kmeans_worked_example():
    values = torch.tensor([5.2, 0.0, 0.1, 5.0, 0.2, 5.1])
    centroids, labels = kmeans_1d(values, 2)
    assert torch.allclose(centroids, torch.tensor([0.1, 5.1]))
    assert labels.tolist() == [1, 0, 0, 1, 0, 1]


@pytest.mark.parametrize("kind", ["normal", "pruned", "uniform"])
@pytest.mark.parametrize("init", ["linear", "density", "random"])
@pytest.mark.parametrize("n_clusters", [4, 32, 256])
def test_sse_no_worse_than_sklearn_from_the_same_start(kind, init, n_clusters):
    x = _data(kind, 8_000, seed=n_clusters)
    start = init_centroids(np.sort(x), n_clusters, init, seed=3)
    centroids, labels = kmeans_1d(torch.from_numpy(x), n_clusters, centroids=start)
    reference = KMeans(n_clusters, init=start.reshape(-1, 1), n_init=1).fit(x.reshape(-1, 1))
    ours = _sse(x, centroids, labels)
    assert ours <= reference.inertia_ * (1 + 1e-6)
    # the labels are the nearest centroids, and the centroids ascend
    assert torch.all(centroids[1:] >= centroids[:-1])
    nearest = np.abs(x[:, None] - centroids.double().numpy()[None, :]).argmin(1)
    assert _sse(x, centroids, nearest) == pytest.approx(ours, rel=1e-9)


def test_init_linear_density_random():
    x = np.sort(np.random.default_rng(0).normal(0, 1, 10_001))
    assert np.allclose(init_centroids(x, 5, "linear"), np.linspace(x[0], x[-1], 5))
    density = init_centroids(x, 4, "density")  # equal steps of the CDF: the 12.5, 37.5... quantiles
    assert np.allclose(density, np.quantile(x, [0.125, 0.375, 0.625, 0.875]))
    r1, r2 = init_centroids(x, 8, "random", seed=1), init_centroids(x, 8, "random", seed=1)
    assert np.array_equal(r1, r2) and np.isin(r1, x).all() and len(set(r1)) == 8
    assert not np.array_equal(r1, init_centroids(x, 8, "random", seed=2))
    with pytest.raises(DclabError, match="init"):
        init_centroids(x, 8, "kmeans++")


def test_linear_init_keeps_the_rare_large_weights():
    # the paper's argument: density init crowds the centroids where weights are dense
    x = _data("pruned", 20_000, seed=0)
    lin, _ = kmeans_1d(torch.from_numpy(x), 8, init="linear")
    den, _ = kmeans_1d(torch.from_numpy(x), 8, init="density")
    assert lin.abs().max() > den.abs().max()


def test_fewer_values_than_clusters():
    centroids, labels = kmeans_1d(torch.tensor([1.0, 2.0, 3.0]), 8, init="random")
    assert centroids.numel() == 8
    assert torch.equal(centroids[labels], torch.tensor([1.0, 2.0, 3.0]))
    centroids, labels = kmeans_1d(torch.tensor([]), 4)
    assert centroids.numel() == 4 and labels.numel() == 0


def test_presorted_selection_gives_the_same_codebook():
    torch.manual_seed(0)
    w = torch.randn(60, 70)
    mask = magnitude_mask(w, 0.8)
    direct = quantize_layer(w, mask, bits=4)
    cached = quantize_layer(w, mask, bits=4, presorted=SortedValues.of(w))
    assert torch.equal(direct.centroids, cached.centroids)
    assert torch.equal(direct.indices, cached.indices)
    assert repr(SortedValues.of(w).select(mask)) == "SortedValues(840 of 4,200 values)"


def test_quantize_pruned_layer_reserves_index_zero():
    torch.manual_seed(0)
    w = torch.randn(30, 40)
    mask = magnitude_mask(w, 0.9)
    book = quantize_layer(w, mask, bits=3)
    assert book.reserved_zero and book.n_clusters == 8 and book.bits == 3
    assert book.centroids[0].item() == 0.0
    assert torch.equal(book.indices == 0, ~mask)  # index 0 exactly where pruned
    assert torch.equal(book.mask(), mask)
    q = book.weights()
    assert (q[~mask] == 0).all() and q.shape == w.shape and q.dtype == torch.float32
    kept = w[mask]
    # each kept weight got its nearest non-zero centroid
    nearest = (kept[:, None] - book.centroids[1:][None, :]).abs().argmin(1) + 1
    assert torch.equal(book.indices[mask], nearest)
    assert "index 0 = 0.0" in repr(book)


def test_quantize_dense_layer_uses_all_entries():
    torch.manual_seed(0)
    w = torch.randn(20, 20)
    for mask in (None, torch.ones(20, 20, dtype=torch.bool)):
        book = quantize_layer(w, mask, bits=2)
        assert not book.reserved_zero and book.n_clusters == 4
        assert len(torch.unique(book.indices)) == 4
        assert book.mask().all()


def test_more_bits_less_error():
    torch.manual_seed(0)
    w = torch.randn(100, 100)
    errors = [(quantize_layer(w, bits=b).weights() - w).pow(2).sum().item() for b in (1, 2, 4, 6, 8)]
    assert errors == sorted(errors, reverse=True)
    assert len(torch.unique(quantize_layer(w, bits=4).weights())) <= 16


@pytest.mark.parametrize("bits", [0, 17, -1, 2.5, True, "8"])
def test_bad_bits_is_a_clear_error(bits):
    with pytest.raises(DclabError, match="bits must be an integer from 1 to 16"):
        quantize_layer(torch.randn(10), bits=bits)


def test_paper_defaults_and_ratio():
    assert DEFAULT_BITS == {"conv": 8, "fc": 5}
    assert sharing_ratio(16, 2) == pytest.approx(3.2)  # the paper's 4x4 example with k = 4


def _shared_linear(seed: int = 0, sparsity: float = 0.7):
    torch.manual_seed(seed)
    layer = nn.Linear(12, 6)
    mask = magnitude_mask(layer.weight, sparsity)
    book = quantize_layer(layer.weight.detach(), mask, bits=3)
    with torch.no_grad():
        layer.weight.copy_(book.weights())
    return layer, book, mask


def test_centroid_gradient_is_the_sum_of_its_weights_gradients():
    layer, book, mask = _shared_linear()
    x, y = torch.randn(16, 12), torch.randn(16, 6)
    # reference: gradient of the plain weight, grouped by index by hand (masked: pruned weights are fixed)
    w = book.weights().clone().requires_grad_(True)
    nn.functional.mse_loss(nn.functional.linear(x, w, layer.bias), y).backward()
    manual = torch.zeros(book.n_clusters).scatter_add_(0, book.indices.flatten(), (w.grad * mask).flatten())
    share_weights_(layer, {"": book})
    nn.functional.mse_loss(layer(x), y).backward()
    centroids = layer.parametrizations.weight[0].centroids
    assert torch.allclose(centroids.grad, manual, atol=1e-7, rtol=1e-5)
    assert centroids.grad[0].item() == 0.0  # the reserved zero gets nothing


def test_trained_quantization_keeps_indices_zeros_and_the_zero_centroid():
    layer, book, mask = _shared_linear(seed=1)
    model = nn.Sequential(layer, nn.ReLU(), nn.Linear(6, 3))
    share_weights_(model, {"0": book})
    params = [n for n, _ in model.named_parameters() if "original" not in n]
    assert "0.parametrizations.weight.0.centroids" in params
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    x, y = torch.randn(64, 12), torch.randint(0, 3, (64,))
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    trained = shared_codebooks(model)["0"]
    assert trained.centroids[0].item() == 0.0
    assert not torch.equal(trained.centroids, book.centroids)
    assert torch.equal(trained.indices, book.indices)
    w = model[0].weight.detach()
    assert (w[~mask] == 0).all() and len(torch.unique(w)) <= 8
    books = unshare_weights_(model)
    plain = model[0].weight
    assert isinstance(plain, nn.Parameter) and plain.requires_grad
    assert torch.equal(plain.detach(), books["0"].weights())  # bit for bit
    assert not hasattr(model[0], "parametrizations")


def test_share_weights_rejects_mismatches():
    layer, book, _ = _shared_linear()
    with pytest.raises(DclabError, match="shaped"):
        share_weights_(nn.Sequential(nn.Linear(3, 3)), {"0": book})
    with pytest.raises(DclabError, match="no layer"):
        share_weights_(layer, {"ip1": book})
    share_weights_(layer, {"": book})
    with pytest.raises(DclabError, match="already"):
        share_weights_(layer, {"": book})


def test_dense_codebook_parametrization_has_no_mask():
    w = torch.randn(5, 4)
    book = quantize_layer(w, bits=2)
    shared = SharedWeights(book)
    assert torch.equal(shared(w), book.weights())
    assert isinstance(Codebook(book.centroids, book.indices).mask(), torch.Tensor)


def test_much_faster_than_sklearn_on_a_large_layer():
    x = np.random.default_rng(0).normal(0, 0.05, 300_000).astype(np.float32)
    start = np.linspace(x.min(), x.max(), 256)
    t0 = time.perf_counter()
    centroids, labels = kmeans_1d(torch.from_numpy(x), 256)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    reference = KMeans(256, init=start.reshape(-1, 1), n_init=1).fit(x.reshape(-1, 1))
    theirs = time.perf_counter() - t0
    assert ours < 0.5 * theirs
    assert _sse(x, centroids, labels) <= reference.inertia_ * (1 + 1e-4)  # sklearn sums in float32


def test_apply_codebooks_writes_the_shared_values_in_place_and_names_a_missing_layer():
    from dclab.algorithms.quantize import apply_codebooks_, quantize_layer
    from dclab.errors import DclabError
    from dclab.models import LeNet300

    torch.manual_seed(0)
    model = LeNet300()
    book = quantize_layer(model.ip2.weight.detach(), None, 2)
    before = model.ip1.weight.detach().clone()
    assert apply_codebooks_(model, {"ip2": book}) is model
    assert torch.equal(model.ip2.weight.detach(), book.weights())
    assert model.ip2.weight.detach().unique().numel() <= 4
    assert torch.equal(model.ip1.weight.detach(), before)  # other layers untouched
    with pytest.raises(DclabError, match="no layer 'conv1'"):
        apply_codebooks_(model, {"conv1": book})


# ---------------------------------------------------------------- the uniform grid (notebook 03)


def _nearest(w: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    return (w.reshape(-1, 1) - centroids.reshape(1, -1)).abs().argmin(dim=1).reshape(w.shape)


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_uniform_codebook_levels_are_evenly_spaced_and_indices_nearest(bits):
    w = torch.randn(40, 30, generator=torch.Generator().manual_seed(bits))
    book = uniform_codebook(w, bits=bits)
    expected = torch.linspace(float(w.min()), float(w.max()), 2**bits)
    assert book.n_clusters == 2**bits and not book.reserved_zero
    assert torch.allclose(book.centroids, expected, atol=1e-6)
    steps = torch.diff(book.centroids.double())
    assert torch.allclose(steps, steps[0].expand_as(steps), rtol=1e-4)
    assert torch.equal(book.indices, _nearest(w, book.centroids))


def test_uniform_codebook_worked_example_and_ties_join_the_lower_level():
    w = torch.tensor([0.0, 0.2, 0.5, 0.75, 1.0])  # 2 bits: levels 0, 1/3, 2/3, 1; 0.5 is halfway
    book = uniform_codebook(w, bits=2)
    assert book.centroids.tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert book.indices.tolist() == [0, 1, 1, 2, 3]


def test_uniform_codebook_of_a_pruned_layer_reserves_zero_and_spans_the_kept_weights():
    w = torch.randn(50, 20, generator=torch.Generator().manual_seed(0))
    mask = magnitude_mask(w, 0.8)
    book = uniform_codebook(w, mask, bits=3)
    kept = w[mask]
    assert book.reserved_zero and book.centroids[0] == 0 and book.n_clusters == 8
    assert torch.allclose(book.centroids[1:], torch.linspace(float(kept.min()), float(kept.max()), 7), atol=1e-6)
    assert torch.equal(book.indices[~mask], torch.zeros(int((~mask).sum()), dtype=torch.int64))
    assert torch.equal(book.indices[mask], _nearest(kept, book.centroids[1:]) + 1)
    assert torch.equal(book.weights()[~mask], torch.zeros(int((~mask).sum())))


def test_kmeans_zero_iterations_is_the_start_even_with_few_distinct_values():
    c, labels = kmeans_1d(np.array([0.0, 0.0, 1.0]), 4, "linear", iters=0)
    assert c.tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert labels.tolist() == [0, 0, 3]
    with pytest.raises(DclabError, match="iters"):
        kmeans_1d(np.array([0.0, 1.0]), 2, iters=-1)


@pytest.mark.parametrize("kind", ["normal", "pruned", "uniform"])
@pytest.mark.parametrize("bits", [1, 2, 4, 6])
def test_kmeans_error_is_never_above_the_uniform_grid_it_starts_from(kind, bits):
    x = torch.from_numpy(_data(kind, 5000, bits)).float()
    uniform, kmeans = uniform_codebook(x, bits=bits), quantize_layer(x, bits=bits, init="linear")
    sse_u = _sse(x.numpy(), uniform.centroids.numpy(), uniform.indices.numpy())
    sse_k = _sse(x.numpy(), kmeans.centroids.numpy(), kmeans.indices.numpy())
    assert sse_k <= sse_u * (1 + 1e-9)
