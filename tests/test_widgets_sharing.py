"""Notebook 03's bit-width widget driven in-process: centroids, accuracy and the measured size follow the controls."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dclab.algorithms import quantize
from dclab.codec import container
from dclab.lessons import sharing as sharing_lesson
from dclab.train import evaluate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def widget(lenet300, mnist_test):
    """On the trained network: for what only trained weights show (fewer bits cost accuracy)."""
    from dclab.widgets.sharing import bit_width_explorer

    return bit_width_explorer(lenet300, mnist_test, layer="ip1", bits=3)


@pytest.fixture(scope="module")
def untrained(untrained_lenet300, synthetic_digits):
    """On an untrained network and synthetic digits: for what holds for any weights (no training, no MNIST)."""
    from dclab.widgets.sharing import bit_width_explorer

    return bit_width_explorer(untrained_lenet300, synthetic_digits, layer="ip1", bits=3), untrained_lenet300


def _shown_bytes(box) -> int:
    return int(re.search(r'dclab-bits-bytes">([\d,]+) bytes', box.size_label.value).group(1).replace(",", ""))


def _shown_accuracy(box) -> float:
    return float(re.search(r'dclab-bits-accuracy-value">([\d.]+)%', box.accuracy_label.value).group(1))


def _lines(trace) -> list[float]:
    return sorted({x for x in trace.x if x is not None})


def test_centroid_lines_and_counts_follow_the_codebook(untrained):
    widget, lenet300 = untrained
    widget.layer.value, widget.init.value, widget.bits.value = "ip1", "linear", 3
    w = lenet300.ip1.weight.detach()
    book = quantize.quantize_layer(w, None, 3, "linear")
    assert torch.equal(widget.state["codebook"].indices, book.indices)
    assert _lines(widget.figure.data[1]) == pytest.approx(sorted(book.centroids.tolist()))
    assert len(_lines(widget.figure.data[1])) == 8
    assert np.asarray(widget.figure.data[2].y).sum() == w.numel()
    assert np.asarray(widget.figure.data[0].y).sum() == w.numel()


def test_shown_size_is_the_bytes_the_container_writes_and_the_formula_is_beside_it(untrained):
    widget, lenet300 = untrained
    widget.layer.value, widget.init.value = "ip1", "linear"
    for bits in (3, 5):
        widget.bits.value = bits
        w = lenet300.ip1.weight.detach()
        book = quantize.quantize_layer(w, None, bits, "linear")
        layer = container.CompressedLayer.from_codebook("ip1", "fc", book, bits, 0)
        expected = len(container.to_bytes("layer", [layer], huffman=False))
        assert _shown_bytes(widget) == expected == widget.state["dcz_bytes"]
        n = w.numel()
        formula = (n * bits + 2**bits * 32) / 8
        assert widget.state["formula_bytes"] == formula
        assert f"{formula:,.0f} bytes" in widget.size_label.value
        assert f"r = {quantize.sharing_ratio(n, bits):.2f}x" in widget.size_label.value
        assert 0 < expected - formula < 200  # the file's headers and the last byte's padding


def test_fewer_bits_cost_accuracy_and_bytes(widget, lenet300, mnist_test):
    widget.layer.value, widget.init.value, widget.bits.value = "ip1", "linear", 8
    acc8, bytes8 = widget.state["accuracy"], _shown_bytes(widget)
    assert acc8 > widget.state["baseline"] - 0.003
    hist = list(widget.figure.data[2].y)
    widget.bits.value = 1
    assert widget.state["accuracy"] < acc8 - 0.005
    assert _shown_bytes(widget) < bytes8 / 6
    assert list(widget.figure.data[2].y) != hist
    book = quantize.quantize_layer(lenet300.ip1.weight.detach(), None, 1, "linear")
    expected = evaluate(sharing_lesson.quantized_copy(lenet300, {"ip1": book}), mnist_test)
    assert widget.state["accuracy"] == pytest.approx(expected)
    assert _shown_accuracy(widget) == pytest.approx(100 * expected, abs=0.005)


def test_initialization_sets_where_k_means_starts(untrained):
    widget, lenet300 = untrained
    widget.layer.value, widget.bits.value = "ip2", 2
    w = lenet300.ip2.weight.detach()
    x = np.sort(w.reshape(-1).double().numpy())
    starts = {how: quantize.init_centroids(x, 4, how) for how in quantize.INITS}
    # what the method guarantees: linear spans min..max, density sits inside the quantiles
    assert starts["linear"][0] == x[0] and starts["linear"][-1] == x[-1]
    assert x[0] <= starts["density"][0] and starts["density"][-1] <= x[-1]
    assert not np.allclose(starts["linear"], starts["density"])
    for how in quantize.INITS:  # the lines drawn are those of k-means run from that start
        widget.init.value = how
        book = quantize.quantize_layer(w, None, 2, how)
        assert _lines(widget.figure.data[1]) == pytest.approx(sorted(book.centroids.tolist()))
        assert f"{how} initialization" in widget.accuracy_label.value


def test_switching_layers_restores_the_previous_one(untrained):
    widget, lenet300 = untrained
    widget.layer.value, widget.bits.value = "ip1", 2
    widget.layer.value = "ip3"
    assert torch.equal(widget.model.ip1.weight.detach(), lenet300.ip1.weight.detach())
    assert len(set(widget.model.ip3.weight.detach().reshape(-1).tolist())) <= 4
    assert "ip3" in widget.figure.layout.annotations[0].text
    assert float((lenet300.ip3.weight.detach().unique()).numel()) > 100  # the given model is untouched


def test_bad_arguments_say_what_to_do(untrained_lenet300, synthetic_digits):
    lenet300, mnist_test = untrained_lenet300, synthetic_digits
    from dclab.errors import DclabError
    from dclab.widgets.sharing import bit_width_explorer

    with pytest.raises(DclabError, match="ip1, ip2, ip3"):
        bit_width_explorer(lenet300, mnist_test, layer="conv1")
    with pytest.raises(DclabError, match="1 to 8"):
        bit_width_explorer(lenet300, mnist_test, bits=9)
    with pytest.raises(DclabError, match="linear, density, random"):
        bit_width_explorer(lenet300, mnist_test, init="kmeans++")


# ---------------------------------------------------------------- progressive measuring (dclab.widgets.progressive)


def _states(seen: list[str]) -> list[str]:
    return [re.search(r'data-state="(\w+)"', html).group(1) for html in seen]


def test_a_move_shows_the_estimate_first_then_the_full_figure(untrained_lenet300, synthetic_digits):
    from dclab.widgets.sharing import bit_width_explorer

    box = bit_width_explorer(untrained_lenet300, synthetic_digits, layer="ip1", bits=3, estimate=True,
                             progressive=False)
    seen = []
    box.accuracy_label.observe(lambda change: seen.append(change["new"]), names="value")
    box.bits.value = 2
    states = _states(seen)
    assert "estimated" in states and states[-1] == "measured"
    assert states.index("estimated") < len(states) - 1  # the full figure comes after, never skipped
    estimated = seen[states.index("estimated")]
    assert "estimate on" in estimated and "+/-" in estimated and "dclab-bits-accuracy-value" not in estimated
    expected = evaluate(box.model, synthetic_digits)  # the working model holds what is shown
    assert box.state["accuracy"] == expected
    assert _shown_accuracy(box) == pytest.approx(100 * expected, abs=0.005)

    seen.clear()
    box.bits.value = 3  # measured when the widget opened: the full figure at once, no estimate
    assert _states(seen) and set(_states(seen)) == {"measured"}


def test_a_newer_move_supersedes_a_running_pass(untrained_lenet300, synthetic_digits, monkeypatch):
    import threading

    from dclab.widgets import progressive
    from dclab.widgets.sharing import bit_width_explorer

    box = bit_width_explorer(untrained_lenet300, synthetic_digits, layer="ip1", bits=8, estimate=False,
                             progressive=True)
    entered, gate, finished = threading.Event(), threading.Event(), []
    real = progressive.StagedAccuracy.accuracy

    def held(self, keys, load, cancelled=None):  # the first pass waits until all moves are made
        entered.set()
        gate.wait(timeout=60)
        accuracy = real(self, keys, load, cancelled)  # a stale pass raises Superseded at its next batch
        finished.append(len(self.model.ip1.weight.unique()))
        return accuracy

    monkeypatch.setattr(progressive.StagedAccuracy, "accuracy", held)
    box.bits.value = 7
    assert entered.wait(timeout=60)
    for bits in (6, 5, 4, 3, 2):
        box.bits.value = bits
    gate.set()
    for worker in [t for t in threading.enumerate() if t.name == "dclab-measure"]:
        worker.join(timeout=120)
    box.wait()
    assert finished == [4]  # one full pass, of the last move's 4 shared values; the first was stopped
    assert box.measuring.superseded == 1
    assert box.state["accuracy"] == evaluate(box.model, synthetic_digits)
    assert 'data-state="measured"' in box.accuracy_label.value and "sharing 4 values" in box.accuracy_label.value
    assert _shown_accuracy(box) == pytest.approx(100 * box.state["accuracy"], abs=0.005)


# ---------------------------------------------------------------- retrained centroids (trained quantization)


def test_retrained_centroids_keep_the_indices_and_show_their_own_file_and_accuracy(untrained_lenet300,
                                                                                   synthetic_digits):
    from dclab.widgets.sharing import bit_width_explorer, retrained_codebook

    box = bit_width_explorer(untrained_lenet300, synthetic_digits, layer="ip2", bits=2, progressive=False,
                             train_data=synthetic_digits)
    kmeans = box.state["codebook"]
    accuracy_kmeans = box.state["accuracy"]
    assert not box.state["retrained"] and "not retrained" in box.accuracy_label.value
    box.retrained.value = True
    book = box.state["codebook"]
    assert box.state["retrained"] and "centroids retrained" in box.accuracy_label.value
    assert torch.equal(book.indices, kmeans.indices)  # trained quantization moves centroids, never assignments
    assert not torch.equal(book.centroids, kmeans.centroids)
    expected = retrained_codebook(untrained_lenet300, "ip2", kmeans, synthetic_digits)  # deterministic: same seed
    assert torch.allclose(book.centroids, expected.centroids)
    assert _lines(box.figure.data[1]) == pytest.approx(sorted(book.centroids.tolist()))
    layer = container.CompressedLayer.from_codebook("ip2", "fc", book, 2, 0)
    data = container.to_bytes("layer", [layer], huffman=False)
    assert _shown_bytes(box) == len(data) == box.state["dcz_bytes"]
    decoded = container.from_bytes(data).layers[0]
    assert torch.equal(decoded.weight(), book.weights().reshape(decoded.weight().shape).float())  # read back: the same weights
    assert torch.equal(box.model.ip2.weight.detach(), book.weights())  # the working model holds what is shown
    assert box.state["accuracy"] == evaluate(box.model, synthetic_digits)
    assert _shown_accuracy(box) == pytest.approx(100 * box.state["accuracy"], abs=0.005)
    assert torch.equal(box.model.ip1.weight.detach(), untrained_lenet300.ip1.weight.detach())  # only ip2 trained
    box.retrained.value = False  # the comparison: k-means's centroids and their figure again
    assert torch.equal(box.state["codebook"].centroids, kmeans.centroids)
    assert box.state["accuracy"] == accuracy_kmeans


def test_a_newer_move_stops_a_retraining_pass(untrained_lenet300, synthetic_digits, monkeypatch):
    import threading

    from dclab.widgets import sharing
    from dclab.widgets.sharing import bit_width_explorer

    box = bit_width_explorer(untrained_lenet300, synthetic_digits, layer="ip3", bits=3, estimate=False,
                             progressive=True, train_data=synthetic_digits)
    entered, gate, outcomes = threading.Event(), threading.Event(), []
    real = sharing.retrained_codebook

    def held(model, name, book, train_data, stale=None):  # the first retraining waits until the next move
        if not entered.is_set():
            entered.set()
            gate.wait(timeout=60)
        try:
            result = real(model, name, book, train_data, stale)
        except sharing.Superseded:
            outcomes.append("stopped")
            raise
        outcomes.append(book.n_clusters)
        return result

    monkeypatch.setattr(sharing, "retrained_codebook", held)
    box.retrained.value = True
    assert entered.wait(timeout=60)
    box.bits.value = 2
    gate.set()
    for worker in [t for t in threading.enumerate() if t.name == "dclab-measure"]:
        worker.join(timeout=120)
    box.wait()
    assert outcomes == ["stopped", 4]  # the 3-bit retraining stopped at its next step; the 2-bit one ran
    assert box.state["retrained"] and box.state["bits"] == 2
    assert box.state["accuracy"] == evaluate(box.model, synthetic_digits)
