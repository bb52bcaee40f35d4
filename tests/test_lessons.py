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


# ---------------------------------------------------------------- notebook 03: pruned vs dense, uniform grid vs k-means


def test_layer_codebooks_uniform_grid_is_evenly_spaced_nearest_and_kmeans_only_lowers_the_error(untrained_lenet300):
    model = untrained_lenet300
    for bits in (1, 3, 5):
        uniform = sharing_lesson.layer_codebooks(model, bits, "uniform")
        kmeans = sharing_lesson.layer_codebooks(model, bits, "kmeans")
        for name, book in uniform.items():
            w = getattr(model, name).weight.detach()
            assert torch.allclose(book.centroids, torch.linspace(float(w.min()), float(w.max()), 2**bits), atol=1e-6)
            nearest = (w.reshape(-1, 1) - book.centroids.reshape(1, -1)).abs().argmin(dim=1).reshape(w.shape)
            assert torch.equal(book.indices, nearest)
        # Lloyd's iterations from the uniform grid's levels can only lower the squared error
        assert sharing_lesson.squared_error(model, kmeans) <= sharing_lesson.squared_error(model, uniform) * (1 + 1e-9)
    with pytest.raises(DclabError, match="grid"):
        sharing_lesson.layer_codebooks(model, 3, "log")


def test_layer_codebooks_of_a_pruned_network_keep_its_zeros(untrained_lenet300):
    masks = prune.layer_masks(prune.prunable_weights(untrained_lenet300), sparsity=0.9, scope="global")
    model = pruning_lesson.masked_copy(untrained_lenet300, masks)
    for grid in sharing_lesson.GRIDS:
        for bits in (1, 4):
            books = sharing_lesson.layer_codebooks(model, bits, grid, masks=masks)
            shared = sharing_lesson.quantized_copy(model, books)
            for name, mask in masks.items():
                assert books[name].reserved_zero and books[name].n_clusters == 2**bits
                assert torch.equal(books[name].mask(), mask)
                assert bool((getattr(shared, name).weight[~mask] == 0).all())


@pytest.mark.slow
def test_pruned_vs_dense_bits_keeps_the_zeros_and_is_cached(lenet300, tmp_results, monkeypatch):
    res = sharing_lesson.pruned_vs_dense_bits("lenet300", sparsity=0.9, epochs=0, bits=[2, 8], progress=False)
    _, masks = pruning_lesson.pruned_model("lenet300", 0.9, "global", 0, progress=False)
    assert res["pruned_weights"] == sum(int((~m).sum()) for m in masks.values())
    assert res["zeros_kept"] == [res["pruned_weights"]] * 2  # every pruned weight is still exactly 0
    assert all(0 <= a <= 1 for a in res["dense_quantized"] + res["pruned_quantized"])
    grids = sharing_lesson.uniform_vs_kmeans("lenet300", bits=[2, 8], progress=False)
    assert grids["accuracy"]["kmeans"] == res["dense_quantized"]  # the same codebooks, the same accuracy
    assert grids["baseline"] == res["baseline"]
    for i in range(2):  # the guarantee on the real layers too
        assert grids["sse"]["kmeans"][i] <= grids["sse"]["uniform"][i] * (1 + 1e-9)
    monkeypatch.setattr(sharing_lesson, "evaluate", lambda *a, **k: pytest.fail("recomputed a cached result"))
    assert sharing_lesson.pruned_vs_dense_bits("lenet300", sparsity=0.9, epochs=0, bits=[2, 8], progress=False) == res
    assert sharing_lesson.uniform_vs_kmeans("lenet300", bits=[2, 8], progress=False) == grids


# ---------------------------------------------------------------- how to retrain (notebook 02)


def test_train_l1_adds_l1_times_the_sign_of_each_weight_to_its_gradient():
    from dclab.train import train

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    data = _tiny_digits(32)
    start = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(data.images), data.labels)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    lr, l1 = 0.1, 0.01
    train(model, data, 1, lr, momentum=0.0, weight_decay=0.0, l1=l1, batch_size=32, schedule="constant", progress=False)
    for p, w, g in zip(model.parameters(), start, grads):
        assert torch.allclose(p.detach(), w - lr * (g + l1 * w.sign()), atol=1e-6)


@pytest.mark.parametrize("options", [{"weight_decay": 5e-4}, {"weight_decay": 0.0, "l1": 1e-2}])
def test_retraining_with_l2_or_l1_keeps_the_masks(options):
    torch.manual_seed(0)
    model = LeNet300()
    masks = prune.layer_masks(prune.prunable_weights(model), sparsity=0.9, scope="global")
    pruning_lesson.prune_and_retrain(model, masks, _tiny_digits(), epochs=1, lr=0.05, progress=False, **options)
    for name, mask in masks.items():
        w = getattr(model, name).weight.detach()
        assert torch.all(w[~mask] == 0) and torch.all(w[mask] != 0)


def test_dropout_table_is_the_papers_formula_per_layer():
    masks = {"ip1": torch.zeros(30, 40, dtype=torch.bool), "ip2": torch.ones(10, 30, dtype=torch.bool)}
    masks["ip1"][:3, :10] = True  # 30 of 1,200 kept
    rows = pruning_lesson.retrain_dropout_table(masks, p_original=0.5)
    assert [r.layer for r in rows] == ["ip1", "ip2"]
    assert (rows[0].connections, rows[0].kept) == (1200, 30) and rows[0].density == pytest.approx(0.025)
    assert rows[0].dropout == pytest.approx(0.5 * math.sqrt(30 / 1200))
    assert rows[1].dropout == pytest.approx(0.5)  # nothing pruned: the original rate
    text = pruning_lesson.format_dropout_table(rows, 0.5)
    assert "ip1" in text and f"{rows[0].dropout:.3f}" in text and "from 0.5 to 0.079" in text


def test_sensitivity_summary_names_the_layer_that_loses_most():
    sens = {"sparsity": [0.0, 0.8], "baseline": 0.99, "test_digits": 2000,
            "accuracy": {"conv1": [0.99, 0.90], "conv2": [0.99, 0.97], "ip1": [0.99, 0.985], "ip2": [0.99, 0.95]},
            "kinds": {"conv1": "conv", "conv2": "conv", "ip1": "fc", "ip2": "fc"}}
    text = pruning_lesson.sensitivity_summary(sens, at=0.8)
    assert "conv1 (conv) loses most: 99.00% -> 90.00% (9.00 points)" in text
    assert "ip1 (fc) loses least (0.50 points)" in text
    assert "a conv layer loses 5.50 points and an fc layer 2.25" in text and "the conv layers are the more" in text


def _regularization_result() -> dict:
    return {"sparsity": 0.95, "strength": [1e-3, 1e-2], "baseline": 0.99, "no_retraining": 0.8, "train_digits": 100,
            "l2": [0.97, 0.96], "l1": [0.97, 0.5], "l2_mean_abs": [0.1, 0.09], "l1_mean_abs": [0.1, 0.01],
            "l2_pruned_nonzero": [0, 0], "l1_pruned_nonzero": [0, 0], "kept": {"ip1": 10}}


def _lr_result() -> dict:
    return {"sparsity": 0.95, "factor": [1.0, 0.1, 0.01], "lr": [0.05, 0.005, 0.0005], "baseline": 0.99,
            "no_retraining": 0.8, "steps": [0, 5, 10], "curves": [[0.8, 0.95, 0.97], [0.8, 0.9, 0.96], [0.8, 0.85, 0.9]],
            "accuracy": [0.97, 0.96, 0.9], "pruned_nonzero": [0, 0, 0], "train_digits": 100}


def test_summaries_are_built_from_the_numbers():
    reg = pruning_lesson.regularization_summary(_regularization_result())
    assert "strength 0.01: L2 96.00%, L1 50.00% (L2 ahead by 46.00 points)" in reg
    assert "strength 0.001: L2 97.00%, L1 97.00% (the same accuracy)" in reg
    assert "came back in any run: 0" in reg
    res = _lr_result()
    res["accuracy"] = [0.9, 0.97, 0.8]
    assert "1/10 of the original rate recovers most" in pruning_lesson.lr_summary(res)


def test_retraining_figures_draw_every_setting_with_distinct_dashes():
    from dclab.viz import pruning as vp
    from dclab.viz import style

    fig = vp.fig_regularization(_regularization_result())
    lines = [t for t in fig.data if t.type == "scatter"]
    assert [t.name for t in lines] == ["L2 weight decay", "L2 weight decay", "L1 penalty", "L1 penalty"]
    assert list(lines[2].y) == [97.0, 50.0] and list(lines[3].y) == [0.1, 0.01]
    assert lines[0].line.dash != lines[2].line.dash and lines[0].marker.symbol != lines[2].marker.symbol
    assert {t.line.color for t in lines} <= set(style.SERIES)
    fig = vp.fig_retrain_lr(_lr_result())
    assert len(fig.data) == 3 and len({t.line.dash for t in fig.data}) == 3
    assert "1/10 of the original" in fig.data[1].name and list(fig.data[0].x) == [0, 5, 10]
    sens = {"sparsity": [0.0, 0.5], "baseline": 0.99, "accuracy": {"conv1": [0.99, 0.9], "ip1": [0.99, 0.98]},
            "weights": {"conv1": 500, "ip1": 400_000}, "kinds": {"conv1": "conv", "ip1": "fc"}}
    fig = vp.fig_sensitivity(sens, "LeNet-5")
    assert [t.name for t in fig.data] == ["conv1 (conv, 500 weights)", "ip1 (fc, 400,000 weights)"]
    assert fig.data[0].line.dash != fig.data[1].line.dash


@pytest.mark.slow
def test_lenet5_sensitivity_on_a_test_subset(lenet5, tmp_results):
    sens = pruning_lesson.layer_sensitivity("lenet5", sparsities=[0.0, 0.9], progress=False, test_subset=200)
    assert sens["test_digits"] == 200 and list(sens["accuracy"]) == ["conv1", "conv2", "ip1", "ip2"]
    assert sens["kinds"] == {"conv1": "conv", "conv2": "conv", "ip1": "fc", "ip2": "fc"}
    assert all(acc[0] == pytest.approx(sens["baseline"]) for acc in sens["accuracy"].values())  # 0% pruned: unchanged


@pytest.mark.slow
def test_regularization_comparison_keeps_the_masks_and_is_cached(lenet300, tmp_results, monkeypatch):
    kw = dict(sparsity=0.95, strengths=[5e-4], train_subset=256, progress=False)
    res = pruning_lesson.regularization_comparison("lenet300", **kw)
    masks = pruning_lesson.baseline_masks("lenet300", 0.95)
    assert res["kept"] == {n: int(m.sum()) for n, m in masks.items()}
    assert res["l2_pruned_nonzero"] == res["l1_pruned_nonzero"] == [0]
    assert 0 <= res["l1"][0] <= 1 and 0 <= res["l2"][0] <= 1
    monkeypatch.setattr(pruning_lesson, "_retrained", lambda *a, **k: pytest.fail("recomputed a cached result"))
    assert pruning_lesson.regularization_comparison("lenet300", **kw) == res


@pytest.mark.slow
def test_retrain_lr_comparison_curves_start_before_retraining_and_keep_the_masks(lenet300, tmp_results):
    res = pruning_lesson.retrain_lr_comparison("lenet300", factors=[1.0, 0.1], train_subset=256, n_points=2,
                                               progress=False)
    assert res["lr"] == [pytest.approx(0.05), pytest.approx(0.005)]
    assert res["steps"] == [0, 1, 2] and all(len(c) == 3 for c in res["curves"])
    assert all(c[0] == res["no_retraining"] and c[-1] == a for c, a in zip(res["curves"], res["accuracy"]))
    assert res["pruned_nonzero"] == [0, 0]


@pytest.mark.slow
def test_masked_step_demo_keeps_pruned_weights_at_zero(lenet300):
    from dclab.exercises.pruning import pruner_sgd_step

    demo = pruning_lesson.masked_step_demo(pruner_sgd_step, "lenet300", "ip2", sparsity=0.95)
    assert demo["pruned_nonzero"] == 0 and demo["pruned"] + demo["kept"] == 30_000
    assert 0 < demo["kept_moved"] <= demo["kept"]


def test_lstm_demo_computes_from_an_empty_cache(tmp_results):
    res = pruning_lesson.lstm_pruning_demo(hidden=16, train_digits=256, epochs=1, progress=False)
    again = pruning_lesson.lstm_pruning_demo(hidden=16, train_digits=256, epochs=1, progress=False)
    assert res == again  # the second call reads the cache
    assert all(0.0 <= v <= 1.0 for k, v in res.items() if isinstance(v, float) and "accuracy" in k)


def test_notebook_03_sentences_follow_the_numbers():
    by_bits = {"bits": [1, 2, 3], "baseline": 0.99, "conv": [0.90, 0.98, 0.99], "fc": [0.95, 0.985, 0.99]}
    assert sharing_lesson.bits_summary(by_bits).endswith("with 1 bit the conv layers lose more")
    assert sharing_lesson.bits_summary({**by_bits, "fc": [0.80, 0.9, 0.99]}).endswith("the fc layers lose more")
    inits = {"bits": [1, 2, 4, 8], "accuracy": {"linear": [0.1] * 4, "density": [0.1] * 4},
             "sse": {"linear": [9, 5, 2, 0.5], "density": [9, 5, 1, 0.1]}}
    assert sharing_lesson.init_summary(inits).endswith("lowest clustering error at 8 bits: density")
    tq = {"baseline": 0.99, "bits": 2, "accuracy": [0.95, 0.97, 0.98]}
    assert sharing_lesson.trained_quantization_summary(tq).endswith("3.00 of the 4.00 points lost came back")


def test_notebook_02_curves_sentences_are_the_last_sparsities():
    curves = {"sparsity": [0.5, 0.9, 0.95], "baseline": 0.99, "no_retraining": [0.98, 0.9, 0.6],
              "retrained": [0.99, 0.98, 0.97], "iterative": [0.99, 0.985, 0.98]}
    lines = pruning_lesson.curves_summary(curves).splitlines()
    assert [line.split()[0] for line in lines] == ["90%", "95%"] and "iterative 98.00%" in lines[-1]
