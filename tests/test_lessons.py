"""dclab.lessons (notebooks 02-03): measured sparse sizes, the paper's 4x4 example, the cache, retraining with masks, sweeps."""
from __future__ import annotations

import math

import pytest
import torch

from dclab.algorithms import prune, quantize
from dclab.codec import container, sparse
from dclab.codec.sparse import encode_gaps
from dclab.data import Digits
from dclab.errors import DclabError
from dclab.lessons import pruning as pruning_lesson
from dclab.lessons import sharing as sharing_lesson
from dclab.lessons import store
from dclab.models import LeNet300, rnn

# ---------------------------------------------------------------- pruned layers as bytes


@pytest.mark.parametrize("sparsity,gap_bits", [(0.0, 5), (0.5, 5), (0.9, 5), (0.999, 3), (0.9, 8)])
def test_encode_pruned_round_trips_and_its_size_is_entries_times_bits(sparsity, gap_bits):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(60, 70, generator=g)
    mask = prune.magnitude_mask(w, sparsity)
    data = sparse.encode_pruned(w, mask, gap_bits)
    assert torch.equal(sparse.decode_pruned(data, w.shape, gap_bits), w * mask)
    entries = encode_gaps(mask.reshape(-1).to(torch.uint8), gap_bits).n_entries
    assert entries >= int(mask.sum())
    assert len(data) == 8 + math.ceil(entries * gap_bits / 8) + 4 * entries


def test_encode_pruned_inserts_fillers_for_long_gaps():
    w = torch.ones(100)
    mask = torch.zeros(100, dtype=torch.bool)
    mask[[0, 99]] = True  # a gap of 99 positions needs 3 fillers with 5-bit gaps (32 each)
    data = sparse.encode_pruned(w, mask, 5)
    assert len(data) == 8 + math.ceil(5 * 5 / 8) + 4 * 5
    assert torch.equal(sparse.decode_pruned(data, (100,), 5), w * mask)


def test_encode_pruned_refuses_mismatched_shapes_and_bytes():
    w = torch.randn(4, 4)
    with pytest.raises(DclabError, match="shaped"):
        sparse.encode_pruned(w, torch.ones(16, dtype=torch.bool), 5)
    data = sparse.encode_pruned(w, w.abs() > 0.5, 5)
    with pytest.raises(DclabError):
        sparse.decode_pruned(data[:-1], w.shape, 5)
    with pytest.raises(DclabError, match="weights"):
        sparse.decode_pruned(data, (5, 4), 5)


def test_pruned_model_bytes_adds_the_unpruned_parameters_in_fp32():
    model = LeNet300()
    masks = prune.layer_masks(prune.prunable_weights(model), sparsity=0.9)
    total = pruning_lesson.pruned_model_bytes(model, masks)
    layers = sum(len(sparse.encode_pruned(getattr(model, n).weight, m, 5)) for n, m in masks.items())
    biases = 4 * (300 + 100 + 10)
    assert total == layers + biases
    assert 4 * sum(p.numel() for p in model.parameters()) / total > 7  # 10% kept: ~8x with 5-bit gaps


# ---------------------------------------------------------------- the paper's Figure 3


def test_paper_4x4_example_gives_the_papers_centroids_gradients_and_rate():
    r = sharing_lesson.paper_weight_sharing_example()
    order = torch.argsort(r["centroids"], descending=True)
    assert torch.allclose(r["centroids"][order], torch.tensor([2.0, 1.5, 0.0, -1.0]), atol=1e-6)
    assert torch.allclose(r["grouped_gradients"][order], torch.tensor([0.04, 0.02, 0.04, -0.03]), atol=1e-6)
    assert torch.allclose(r["fine_tuned"][order], torch.tensor([1.96, 1.48, -0.04, -0.97]), atol=1e-6)
    assert r["ratio"] == pytest.approx(3.2)
    w = torch.tensor(sharing_lesson.PAPER_4X4_WEIGHTS)
    assert torch.equal(r["centroids"][r["indices"]] == r["centroids"][order[0]], w > 1.7)


# ---------------------------------------------------------------- cache


def test_cached_result_computes_once_per_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "cache_dir", lambda: tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"value": [1.5, 2.5], "n": len(calls)}

    first = store.cached_result("demo", {"a": 1}, compute)
    again = store.cached_result("demo", {"a": 1}, compute)
    other = store.cached_result("demo", {"a": 2}, compute)
    assert first == again == {"value": [1.5, 2.5], "n": 1}
    assert other["n"] == 2 and len(calls) == 2
    (path,) = [p for p in (tmp_path / "experiments").iterdir() if "demo" in p.name and '"a": 1' in p.read_text()]
    path.write_text("{broken")  # a damaged cache file is recomputed, not an error
    assert store.cached_result("demo", {"a": 1}, compute)["n"] == 3


# ---------------------------------------------------------------- retraining with masks


def _tiny_digits(n: int = 256, seed: int = 0) -> Digits:
    g = torch.Generator().manual_seed(seed)
    return Digits(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))


def test_prune_and_retrain_keeps_pruned_weights_at_zero_and_trains_the_rest():
    torch.manual_seed(0)
    model = LeNet300()
    masks = prune.layer_masks(prune.prunable_weights(model), sparsity=0.8)
    before = {n: getattr(model, n).weight.detach().clone() for n in masks}
    history = pruning_lesson.prune_and_retrain(model, masks, _tiny_digits(), epochs=1, lr=0.05, progress=False)
    assert len(history) == 1
    for name, mask in masks.items():
        w = getattr(model, name).weight.detach()
        assert torch.all(w[~mask] == 0)
        assert not torch.equal(w[mask], before[name][mask])
    w = model.ip1.weight
    assert not w.grad_fn and not w._backward_hooks  # the Pruner's hooks are gone


def test_row_lstm_reads_rows_and_prunes_like_any_linear_model():
    model = rnn.RowLSTM(hidden=16)
    x = torch.randn(5, 1, 28, 28)
    assert model(x).shape == (5, 10)
    weights = prune.prunable_weights(model)
    assert list(weights) == ["ih", "hh", "fc"]
    masks = prune.layer_masks({n: weights[n] for n in ("ih", "hh")}, sparsity=0.9)
    pruning_lesson.prune_and_retrain(model, masks, _tiny_digits(64), epochs=1, lr=0.05, progress=False)
    assert prune.sparsity_of(model.hh.weight != 0) == pytest.approx(0.9, abs=1e-3)


# ---------------------------------------------------------------- quantized models as bytes


def test_encode_quantized_writes_a_dcz_that_reads_back_to_the_shared_weights():
    torch.manual_seed(0)
    model = LeNet300()
    masks = prune.layer_masks(prune.prunable_weights(model), sparsity=0.9)
    books = {n: quantize.quantize_layer(getattr(model, n).weight.detach(), masks[n], 5) for n in masks}
    dense_books = {"ip3": quantize.quantize_layer(model.ip3.weight.detach(), None, 3)}
    data = sharing_lesson.encode_quantized(model, books, "lenet300")
    back = container.from_bytes(data)
    shared = sharing_lesson.quantized_copy(model, books)
    for name in masks:
        assert torch.equal(back[name].weight(), getattr(shared, name).weight.detach())
        assert back[name].gap_bits == 5 and back[name].bits == 5
        assert torch.equal(back[name].bias, getattr(model, name).bias.detach())
    dense = container.from_bytes(sharing_lesson.encode_quantized(model, dense_books))
    assert dense["ip3"].gap_bits == 0 and dense["ip3"].bits == 3


# ---------------------------------------------------------------- sweeps on the trained baselines (MNIST)


@pytest.fixture
def tmp_results(tmp_path, monkeypatch):
    """Experiment results in a temporary folder; the trained baselines still come from the real cache."""
    monkeypatch.setattr(store, "cache_dir", lambda: tmp_path)
    return tmp_path


@pytest.mark.slow
def test_pruning_curves_retraining_recovers_accuracy_and_sizes_are_measured(lenet300, mnist_test, tmp_results):
    curves = pruning_lesson.pruning_curves("lenet300", sparsities=[0.5, 0.95], epochs=1, progress=False)
    base = curves["baseline"]
    assert curves["no_retraining"][0] > base - 0.01  # 50% pruned barely matters
    assert curves["retrained"][1] > curves["no_retraining"][1]  # retraining helps at 95%
    assert curves["iterative"][1] > curves["no_retraining"][1] + 0.1  # 76% -> ~98% on the baseline of 99.3%
    model, masks = pruning_lesson.pruned_model("lenet300", 0.95, "global", 1, progress=False)
    assert curves["bytes"][1] == pruning_lesson.pruned_model_bytes(model, masks)
    assert curves["bytes"][0] > curves["bytes"][1]
    assert pruning_lesson.pruning_curves("lenet300", sparsities=[0.5, 0.95], epochs=1, progress=False) == curves  # cached


@pytest.mark.slow
def test_sensitivity_the_output_layer_is_the_most_sensitive(lenet300, tmp_results):
    sens = pruning_lesson.layer_sensitivity("lenet300", sparsities=[0.0, 0.95], progress=False)
    acc = sens["accuracy"]
    assert acc["ip1"][0] == acc["ip3"][0] == pytest.approx(sens["baseline"])
    assert acc["ip3"][1] < acc["ip1"][1]


@pytest.mark.slow
def test_accuracy_vs_bits_falls_with_fewer_bits(lenet300, tmp_results):
    res = sharing_lesson.accuracy_vs_bits("lenet300", bits=[1, 8], progress=False)
    assert "conv" not in res
    assert res["fc"][1] > res["baseline"] - 0.003
    assert res["fc"][0] < res["fc"][1]


@pytest.mark.slow
def test_compression_tradeoff_sizes_are_the_bytes_written(lenet300, mnist_test, tmp_results):
    res = sharing_lesson.compression_tradeoff("lenet300", sparsities=[0.9], pq_bits=5, q_bits=[5], svd_keep=[0.1],
                                  progress=False)
    dense = res["dense_bytes"]
    assert dense == 4 * 266_610
    (pq,), (p,), (q,), (svd,) = (res[k] for k in ("pruning+quantization", "pruning", "quantization", "svd"))
    model, masks = pruning_lesson.pruned_model("lenet300", 0.9, "global", 1, progress=False)
    books = {n: quantize.quantize_layer(getattr(model, n).weight.detach(), masks[n], 5) for n in masks}
    assert pq["bytes"] == len(sharing_lesson.encode_quantized(model, books, "lenet300"))
    assert p["bytes"] == pruning_lesson.pruned_model_bytes(model, masks)
    assert pq["rate"] > 25 and 7 < p["rate"] < 10 and 5 < q["rate"] < 7  # ~32/5 minus codebooks and biases
    assert pq["rate"] == pytest.approx(dense / pq["bytes"])
    assert abs(pq["loss"] - p["loss"]) < 0.002  # 5-bit sharing adds almost nothing to pruning's loss
    assert pq["loss"] < 0.01
    assert svd["loss"] > pq["loss"]


@pytest.mark.slow
def test_init_comparison_linear_starts_in_the_tails(lenet300, tmp_results):
    res = sharing_lesson.init_comparison("lenet300", bits=[2], layer="ip2", layer_bits=3, progress=False)
    w = lenet300.ip2.weight.detach()
    lay = res["layer"]
    assert lay["initial"]["linear"][0] == pytest.approx(float(w.min()))
    assert lay["initial"]["linear"][-1] == pytest.approx(float(w.max()))
    for init in ("linear", "density", "random"):
        assert len(lay["final"][init]) == 8 and lay["final"][init] == sorted(lay["final"][init])
        assert min(lay["initial"][init]) >= float(w.min()) - 1e-6
        assert 0.9 < res["accuracy"][init][0] <= res["baseline"]
    spread = {i: max(lay["initial"][i]) - min(lay["initial"][i]) for i in lay["initial"]}
    assert spread["linear"] > 1.5 * spread["density"]
