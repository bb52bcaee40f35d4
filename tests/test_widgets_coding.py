"""Notebook 04's pipeline widget and figures, driven in-process against the real engine.

The widget must show what the engine writes and what the decoded file scores, for any weights: the tests
run it on an untrained LeNet-300-100 and 1,000 synthetic digits (no training, no MNIST)."""
from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest

from dclab.codec import container, entropy
from dclab.pipeline import CompressionConfig, compress_weights, load_model
from dclab.train import test_error
from dclab.viz import coding as vc
from dclab.widgets.coding import pipeline_widget


def number(html: str) -> str:
    """The bold number of a label."""
    return re.search(r"<b>([^<]+)</b>", html).group(1)


def engine_bytes(model, sparsity: float, bits: int, gap_bits: int) -> tuple[bytes, int]:
    """What the engine writes for a setting: the Huffman-coded .dcz and the fixed-width one's length."""
    config = CompressionConfig(sparsity=sparsity, conv_bits=bits, fc_bits=bits, conv_gap_bits=gap_bits,
                               fc_gap_bits=gap_bits)
    _, dcz, _ = compress_weights(model, config)
    read = container.from_bytes(dcz)
    fixed = container.to_bytes(read.arch, read.layers, huffman=False, meta=read.meta)
    return dcz, len(fixed)


@pytest.fixture(scope="module")
def widget(untrained_lenet300, synthetic_digits):
    return pipeline_widget(untrained_lenet300, synthetic_digits, sparsity=0.9, bits=5, gap_bits=5)


def shown(box) -> dict:
    return {
        "size": int(number(box.size_label.value).replace(",", "")),
        "fixed": int(re.search(r"([\d,]+) bytes", box.fixed_label.value).group(1).replace(",", "")),
        "ratio": float(number(box.ratio_label.value).rstrip("x")),
        "error": float(number(box.error_label.value).rstrip("%")),
        "bars": list(box.figure.data[0].y),
        "huffman bits": list(box.figure.data[4].y),
    }


def check_against_engine(box, model, test) -> dict:
    s = shown(box)
    dcz, fixed = engine_bytes(model, box.sparsity.value, box.bits.value, box.gap_bits.value)
    assert s["size"] == len(dcz) == box.point.file_bytes
    assert box.point.dcz == dcz  # the widget shows the bytes the engine writes for this setting
    assert s["fixed"] == fixed
    dense = s["bars"][0]
    assert dense == 4 * sum(p.numel() for p in model.parameters())
    assert s["bars"][2:] == [fixed, len(dcz)]
    assert s["ratio"] == pytest.approx(dense / len(dcz), abs=0.051)
    decoded = test_error(load_model(dcz), test)  # the model rebuilt from those bytes
    assert s["error"] == pytest.approx(100 * decoded, abs=0.005)
    return s


def test_widget_shows_the_real_file_and_its_error(widget, untrained_lenet300, synthetic_digits):
    assert "dclab-pipeline-widget" in widget._dom_classes
    for label, cls in ((widget.size_label, "dclab-pipeline-size"), (widget.ratio_label, "dclab-pipeline-ratio"),
                       (widget.error_label, "dclab-pipeline-error"), (widget.fixed_label, "dclab-pipeline-fixed-size")):
        assert cls in label._dom_classes
    assert isinstance(widget.figure, go.FigureWidget)
    s = check_against_engine(widget, untrained_lenet300, synthetic_digits)
    assert s["bars"][0] > s["bars"][1] > s["bars"][2] > s["bars"][3]  # every stage shrinks the file


def test_moving_the_sparsity_slider_updates_sizes_bars_and_error(widget, untrained_lenet300, synthetic_digits):
    before = shown(widget)
    widget.sparsity.value = 0.97
    after = check_against_engine(widget, untrained_lenet300, synthetic_digits)
    assert after["size"] < before["size"]
    assert after["bars"][1:] != before["bars"][1:] and after["bars"][0] == before["bars"][0]
    assert after["ratio"] > before["ratio"]
    assert list(widget.figure.data[1].base) == after["bars"]  # the pale "removed" bars sit on the new sizes


def test_moving_the_bits_slider_changes_the_codebook_bits(widget, untrained_lenet300, synthetic_digits):
    widget.sparsity.value = 0.9
    before = shown(widget)
    widget.bits.value = 2
    after = check_against_engine(widget, untrained_lenet300, synthetic_digits)
    assert after["size"] < before["size"]
    assert list(widget.figure.data[2].y) == [2.0, 2.0, 2.0]  # fixed-width weight bits per layer
    assert max(after["huffman bits"]) <= 2.0 < max(before["huffman bits"])
    widget.gap_bits.value = 3
    check_against_engine(widget, untrained_lenet300, synthetic_digits)
    assert list(widget.figure.data[3].y) == [3.0, 3.0, 3.0]


def test_settings_seen_before_come_from_the_sessions_caches(widget):
    widget.sparsity.value, widget.bits.value, widget.gap_bits.value = 0.5, 4, 5
    first = widget.point
    widget.sparsity.value = 0.6
    net = widget.session.network("lenet300")
    computed = len(net.accuracies), len(net.codebooks), len(net.masks)
    widget.sparsity.value = 0.5
    assert (len(net.accuracies), len(net.codebooks), len(net.masks)) == computed  # nothing computed again
    assert widget.point.dcz == first.dcz and widget.point.test_error == first.test_error


# ---------------------------------------------------------------- figures


def test_code_tree_leaves_are_the_canonical_codewords():
    x = np.repeat([0, 1, 2, 3, 4], [50, 20, 15, 10, 5])
    fig = vc.fig_code_tree(x, {0: "zero"})
    tree = fig.data[0]
    codes = entropy.symbol_costs(x)
    assert {f"code {c.codeword}" for c in codes} <= set(tree.ids)
    values = dict(zip(tree.ids, tree.values))
    parents = dict(zip(tree.ids, tree.parents))
    assert values["root"] == 100 and parents["root"] == ""
    for c in codes:
        assert values[f"code {c.codeword}"] == c.count  # a leaf's width is its symbol's count
        assert parents[f"code {c.codeword}"] == (f"code {c.codeword[:-1]}" if len(c.codeword) > 1 else "root")
    labels = dict(zip(tree.ids, tree.labels))
    assert labels["code " + codes[0].codeword].startswith("<b>zero</b>")  # symbol 0, named by the caller


def test_coder_comparison_and_pipeline_figures_carry_the_numbers():
    streams = {"ip3": entropy.layer_streams(np.array([0, 3, 0, 0, 1, 2, 0, 3] * 40), 2)}
    rows = entropy.stream_table(streams, {"ip3": {"weights": 2, "gaps": 2}})
    fig = vc.fig_coder_comparison(rows)
    huff = next(t for t in fig.data if t.name == "Huffman")
    assert list(huff.y) == [r["bits_per_symbol"] for r in rows if r["coder"] == "Huffman"]
    stages = {"dense": 1000, "pruned": 200, "pruned + quantized": 60, "+ Huffman": 45}
    layers = [{"layer": "ip1", "weight bits P+Q": 5, "weight bits +H": 3.9, "gap bits P+Q": 5, "gap bits +H": 3.6}]
    pf = vc.fig_pipeline(stages, layers)
    assert list(pf.data[0].y) == [1000, 200, 60, 45]
    assert list(pf.data[1].y) == [0, 800, 140, 15]
    assert pf.layout.yaxis.type == "log"


def test_an_untrained_network_has_no_ladder_to_offer(widget):
    assert widget.retrained.disabled and widget.retrained.value is False and widget.point.rung == 0
    assert "no retrained ladder" in widget.rung_label.value


@pytest.mark.slow
def test_on_the_zoos_baseline_the_widget_answers_on_the_retrained_rung(lenet300, mnist_test):
    from dclab.pipeline.ladder import retrained_ladder
    from dclab.widgets.coding import pipeline_config

    box = pipeline_widget(lenet300, mnist_test, sparsity=0.9, bits=5, gap_bits=5)
    assert box.retrained.value is True and not box.retrained.disabled
    rung = retrained_ladder("lenet300", progress=False).rung_for({n: 0.9 for n in ("ip1", "ip2", "ip3")})
    assert box.point.rung == rung.index > 0 and rung.describe() in box.rung_label.value
    _, dcz, _ = compress_weights(rung.model("lenet300"), pipeline_config(0.9, 5, 5))
    assert box.point.dcz == dcz  # the engine's bytes, on the rung's weights
    assert box.point.test_error == pytest.approx(test_error(load_model(dcz), mnist_test))
    assert "retrained" in box.error_label.value
    retrained = box.point.test_error
    box.retrained.value = False
    assert box.point.rung == 0 and box.point.test_error > retrained  # what retraining buys at 90%
    assert "no retraining" in box.error_label.value
