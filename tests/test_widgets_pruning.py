"""Notebook 02's prune explorer driven in-process: masks, histograms, accuracy and measured size follow the controls."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dclab.algorithms import prune
from dclab.codec import sparse
from dclab.lessons import pruning as pruning_lesson
from dclab.train import evaluate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def explorer(lenet300, mnist_test, mnist_train):
    from dclab.widgets.pruning import prune_explorer

    # not retrained: these tests follow the baseline pruned as it is (the ladder's are at the end)
    return prune_explorer(lenet300, mnist_test, mnist_train.subset(6400), layer="ip1", sparsity=0.5,
                          retrained=False)


def _shown_bytes(box) -> int:
    return int(re.search(r'dclab-prune-bytes">([\d,]+) bytes', box.size_label.value).group(1).replace(",", ""))


def _shown_accuracy(box) -> float:
    return float(re.search(r'dclab-prune-accuracy-value">([\d.]+)%', box.accuracy_label.value).group(1))


def _set(box, **values):
    for name, value in values.items():
        getattr(box, name).value = value


def test_at_90_percent_the_survivors_histogram_is_empty_between_the_thresholds(explorer, lenet300):
    _set(explorer, mode="sparsity", scope="layer", layer="ip1", sparsity=0.9)
    w = lenet300.ip1.weight.detach()
    mask = explorer.state["masks"]["ip1"]
    assert torch.equal(mask, prune.magnitude_mask(w, 0.9))
    t = explorer.state["threshold"]
    assert t == pytest.approx(float(w[mask].abs().min()))
    edges = explorer.edges["ip1"]
    survivors = np.asarray(explorer.figure.data[2].y)
    inside = (edges[:-1] >= -t) & (edges[1:] <= t)
    assert inside.sum() > 10 and survivors[inside].sum() == 0
    assert survivors.sum() == int(mask.sum()) == round(0.1 * w.numel())
    assert np.asarray(explorer.figure.data[0].y).sum() == w.numel()
    assert explorer.figure.data[1].x[3] == pytest.approx(t)  # the cut line sits on the threshold


def test_shown_size_is_the_bytes_the_engine_writes(explorer, lenet300):
    _set(explorer, mode="sparsity", scope="layer", layer="ip1", sparsity=0.9)
    w = lenet300.ip1.weight.detach()
    expected = len(sparse.encode_pruned(w, prune.magnitude_mask(w, 0.9), gap_bits=5))
    assert _shown_bytes(explorer) == expected == explorer.state["layer_bytes"]["ip1"]
    masks = prune.layer_masks(prune.prunable_weights(lenet300), sparsity=0.9)
    assert explorer.state["model_bytes"] == pruning_lesson.pruned_model_bytes(lenet300, masks)


def test_accuracy_is_measured_on_the_whole_test_set_without_retraining(explorer, lenet300, mnist_test):
    _set(explorer, mode="sparsity", scope="layer", layer="ip1", sparsity=0.8)
    masks = prune.layer_masks(prune.prunable_weights(lenet300), sparsity=0.8)
    expected = evaluate(pruning_lesson.masked_copy(lenet300, masks), mnist_test)
    assert explorer.state["accuracy"] == pytest.approx(expected)
    assert _shown_accuracy(explorer) == pytest.approx(100 * expected, abs=0.005)


def test_more_sparsity_means_fewer_bytes_and_lower_accuracy(explorer):
    _set(explorer, mode="sparsity", scope="layer", sparsity=0.5)
    acc, size = explorer.state["accuracy"], _shown_bytes(explorer)
    hist = list(explorer.figure.data[2].y)
    explorer.sparsity.value = 0.98
    assert _shown_bytes(explorer) < size / 10
    assert explorer.state["accuracy"] < acc - 0.02
    assert list(explorer.figure.data[2].y) != hist


def test_quality_mode_prunes_below_quality_times_std(explorer, lenet300):
    _set(explorer, mode="quality", scope="layer", quality=1.0)
    assert explorer.quality.layout.display is None and explorer.sparsity.layout.display == "none"
    for name, w in prune.prunable_weights(lenet300).items():
        assert torch.equal(explorer.state["masks"][name], prune.threshold_mask(w.detach(), 1.0))
    assert explorer.state["threshold"] == pytest.approx(float(lenet300.ip1.weight.detach().std()))
    explorer.mode.value = "sparsity"
    assert explorer.sparsity.layout.display is None and explorer.quality.layout.display == "none"


def test_global_and_single_layer_scopes(explorer, lenet300):
    weights = prune.prunable_weights(lenet300)
    _set(explorer, mode="sparsity", scope="global", sparsity=0.9)
    expected = prune.global_magnitude_masks(weights, 0.9)
    for name, mask in expected.items():
        assert torch.equal(explorer.state["masks"][name], mask)
    _set(explorer, scope="single", layer="ip3")
    assert bool(explorer.state["masks"]["ip1"].all()) and bool(explorer.state["masks"]["ip2"].all())
    assert prune.sparsity_of(explorer.state["masks"]["ip3"]) == pytest.approx(0.9)
    assert "ip3" in explorer.size_label.value and "ip3" in explorer.figure.layout.annotations[0].text


def test_retraining_recovers_accuracy_and_keeps_the_masks(explorer, lenet300):
    _set(explorer, mode="sparsity", scope="layer", layer="ip1", sparsity=0.97)
    pruned = explorer.state["accuracy"]
    explorer.epochs.value = 2
    explorer.retrain()
    assert explorer.progress.value == explorer.progress.max > 0
    assert len(explorer.state["history"]) == 2 and explorer.state["retrained_epochs"] == 2
    assert explorer.state["accuracy"] > pruned
    assert "after 2 epochs of retraining" in explorer.accuracy_label.value
    for name, mask in explorer.state["masks"].items():
        assert torch.all(explorer.model.get_submodule(name).weight.detach()[~mask] == 0)
    assert np.asarray(explorer.figure.data[3].y).sum() == int(explorer.state["masks"]["ip1"].sum())
    assert len(explorer.figure.data[5].y) == 3
    explorer.layer.value = "ip2"  # only the view changes: the retrained network stays
    assert explorer.state["retrained_epochs"] == 2
    explorer.sparsity.value = 0.9  # a new mask starts again from the trained baseline
    assert explorer.state["retrained_epochs"] == 0 and len(explorer.figure.data[5].y) == 1
    assert not any(c.disabled for c in (explorer.sparsity, explorer.retrain_button))


def test_the_given_model_is_not_modified(explorer, lenet300):
    _set(explorer, mode="sparsity", scope="layer", sparsity=0.95)
    assert float((lenet300.ip1.weight == 0).float().mean()) < 0.01


def test_bad_arguments_say_what_to_do(lenet300, mnist_test):
    from dclab.errors import DclabError
    from dclab.widgets.pruning import prune_explorer

    with pytest.raises(DclabError, match="ip1, ip2, ip3"):
        prune_explorer(lenet300, mnist_test, layer="fc9")
    with pytest.raises(DclabError, match="sparsity"):
        prune_explorer(lenet300, mnist_test, sparsity=1.0)


# ---------------------------------------------------------------- on the retrained ladder


@pytest.fixture(scope="module")
def on_ladder(lenet300, mnist_test):
    from dclab.widgets.pruning import prune_explorer

    return prune_explorer(lenet300, mnist_test, layer="ip1", sparsity=0.93)  # the zoo's baseline: ladder offered


def test_the_explorer_answers_on_the_nearest_retrained_rung(on_ladder, lenet300, mnist_test):
    from dclab.pipeline.ladder import retrained_ladder

    box = on_ladder
    assert box.retrained.value is True and not box.retrained.disabled  # out of the box: retrained
    setting = {n: prune.sparsity_of(m) for n, m in box.state["masks"].items()}
    rung = retrained_ladder("lenet300", progress=False).rung_for(setting)
    assert box.state["rung"] == rung.index > 0 and rung.describe() in box.rung_label.value
    assert f'data-rung="{rung.index}"' in box.rung_label.value
    rung_model = rung.model("lenet300")
    for name, mask in box.state["applied_masks"].items():
        w = rung_model.get_submodule(name).weight.detach()
        assert int(mask.sum()) == int(box.state["masks"][name].sum())  # the setting's count, on the rung
        assert torch.equal(mask, prune.magnitude_mask(w, setting[name]))  # pruned the rest of the way
        assert torch.equal(box.model.get_submodule(name).weight.detach(), w * mask)
    assert box.state["accuracy"] == evaluate(box.model, mnist_test)
    expected = len(sparse.encode_pruned(box.state["applied_weights"]["ip1"], box.state["applied_masks"]["ip1"],
                                        pruning_lesson.PRUNE_GAP_BITS["fc"]))
    assert _shown_bytes(box) == expected  # the bytes of the layer the page shows
    assert np.asarray(box.figure.data[3].y).sum() == int(box.state["applied_masks"]["ip1"].sum())
    retrained = box.state["accuracy"]

    box.retrained.value = False  # the same setting, not retrained
    assert box.state["rung"] == 0 and 'data-rung="0"' in box.rung_label.value
    assert box.state["accuracy"] == evaluate(box.model, mnist_test) < retrained  # what retraining buys
    assert "no retraining" in box.accuracy_label.value
    box.retrained.value = True
    assert box.state["accuracy"] == retrained


def test_a_setting_below_the_first_rung_says_nothing_retrained_fits(on_ladder):
    _set(on_ladder, retrained=True, scope="single", layer="ip2", sparsity=0.5)  # ip1 and ip3 unpruned
    assert on_ladder.state["rung"] == 0 and "nothing retrained fits" in on_ladder.rung_label.value
    _set(on_ladder, scope="layer")


def test_another_network_gets_no_ladder(untrained_lenet300, synthetic_digits):
    from dclab.errors import DclabError
    from dclab.widgets.pruning import prune_explorer

    other = untrained_lenet300  # not the baseline the ladder grew from
    box = prune_explorer(other, synthetic_digits)
    assert box.ladder is None and box.retrained.disabled and box.retrained.value is False
    assert "no retrained ladder" in box.rung_label.value
    with pytest.raises(DclabError, match="not the zoo's baseline"):
        prune_explorer(other, synthetic_digits, retrained=True)


# ---------------------------------------------------------------- progressive measuring (dclab.widgets.progressive)


def _states(seen: list[str]) -> list[str]:
    return [re.search(r'data-state="(\w+)"', html).group(1) for html in seen]


def test_a_move_shows_the_estimate_first_then_the_full_figure(untrained_lenet300, synthetic_digits):
    from dclab.widgets.pruning import prune_explorer

    box = prune_explorer(untrained_lenet300, synthetic_digits, estimate=True, progressive=False)
    seen = []
    box.accuracy_label.observe(lambda change: seen.append(change["new"]), names="value")
    box.sparsity.value = 0.5
    states = _states(seen)
    assert "estimated" in states and states[-1] == "measured"
    assert states.index("estimated") < len(states) - 1  # the full figure comes after, never skipped
    estimated = seen[states.index("estimated")]
    assert "estimate on" in estimated and "+/-" in estimated and "dclab-prune-accuracy-value" not in estimated
    expected = evaluate(box.model, synthetic_digits)  # the working model holds what is shown
    assert box.state["accuracy"] == expected
    assert _shown_accuracy(box) == pytest.approx(100 * expected, abs=0.005)

    box.sparsity.value = 0.6
    seen.clear()
    box.sparsity.value = 0.5  # measured before: the full figure at once, no estimate
    assert _states(seen) and set(_states(seen)) == {"measured"}
    assert box.state["accuracy"] == expected


def test_a_newer_move_supersedes_a_running_pass(untrained_lenet300, synthetic_digits, monkeypatch):
    import threading

    from dclab.widgets import progressive
    from dclab.widgets.pruning import prune_explorer

    box = prune_explorer(untrained_lenet300, synthetic_digits, estimate=False, progressive=True)
    entered, gate, finished = threading.Event(), threading.Event(), []
    real = progressive.StagedAccuracy.accuracy

    def held(self, keys, load, cancelled=None):  # the first pass waits until all moves are made
        entered.set()
        gate.wait(timeout=60)
        accuracy = real(self, keys, load, cancelled)  # a stale pass raises Superseded at its next batch
        finished.append(round((self.model.ip1.weight == 0).float().mean().item(), 2))  # the sparsity measured
        return accuracy

    monkeypatch.setattr(progressive.StagedAccuracy, "accuracy", held)
    values = [round(0.41 + 0.01 * i, 2) for i in range(10)]
    box.sparsity.value = values[0]
    assert entered.wait(timeout=60)
    for v in values[1:]:
        box.sparsity.value = v
    gate.set()
    for worker in [t for t in threading.enumerate() if t.name == "dclab-measure"]:
        worker.join(timeout=120)
    box.wait()
    assert finished == [values[-1]]  # one full pass, for the last move; the first stopped before its next batch
    assert box.measuring.superseded == 1
    assert box.sparsity.value == values[-1]
    assert box.state["accuracy"] == evaluate(box.model, synthetic_digits)
    assert 'data-state="measured"' in box.accuracy_label.value
    assert _shown_accuracy(box) == pytest.approx(100 * box.state["accuracy"], abs=0.005)
