"""Notebook 06's dashboard, driven in-process: every control changes what it should, and the
numbers shown are those of the real ``.dcz`` bytes (size = len(bytes), accuracy = the decoded model's)."""
from __future__ import annotations

import base64
import copy
import re

import numpy as np
import pytest
import torch

from dclab.algorithms.prune import magnitude_mask
from dclab.algorithms.quantize import Codebook
from dclab.data import Digits
from dclab.errors import DclabError
from dclab.models import LeNet5, LeNet300
from dclab.pipeline import (
    PAPER_SPARSITY,
    CompressionConfig,
    compress_weights,
    load_model,
)
from dclab.pipeline.session import CompressionSession, NetworkCache, staged_forward
from dclab.train import evaluate
from dclab.viz.dashboard import fig_compression, update_compression


def tiny_digits(n: int = 64, seed: int = 0) -> Digits:
    g = torch.Generator().manual_seed(seed)
    return Digits(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))


# ---------------------------------------------------------------- the session's caches (synthetic, fast)


@pytest.mark.parametrize("cls", [LeNet300, LeNet5])
def test_staged_forward_is_the_models_forward_bit_for_bit(cls):
    torch.manual_seed(0)
    model = cls().eval()
    x = tiny_digits(32).images
    with torch.no_grad():
        out = x
        for _, stage in staged_forward(model):
            out = stage(out)
        assert torch.equal(out, model(x))
    used = [layer for layers, _ in staged_forward(model) for layer in layers]
    assert used == [name for name, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]


def test_masks_are_the_engines_and_magnitude_masks_where_no_ties():
    torch.manual_seed(0)
    model = LeNet300().eval()
    with torch.no_grad():  # many exact ties in ip3: values on a coarse grid
        model.ip3.weight.copy_(torch.randint(-3, 4, model.ip3.weight.shape).float() / 10)
    cache = NetworkCache("lenet300", model, tiny_digits(16))
    for s in (0.01, 0.3, 0.5, 0.77, 0.9, 0.98):
        assert torch.equal(cache.mask("ip1", s), magnitude_mask(model.ip1.weight.detach(), s)), s
        tied = cache.mask("ip3", s)
        assert torch.equal(tied, cache.weights.mask("ip3", s))
        assert (~tied).sum() == round(s * 1000)
        # everything pruned is no larger than anything kept
        w = model.ip3.weight.detach().abs()
        assert w[~tied].max() <= w[tied].min()
    assert cache.mask("ip1", 0.0) is None


def test_bits_reuse_masks_and_gap_bits_or_huffman_reuse_the_accuracy():
    torch.manual_seed(0)
    session = CompressionSession(tiny_digits(64), {"lenet300": LeNet300().eval()})
    net = session.network("lenet300")
    first = session.compress("lenet300", CompressionConfig(sparsity=0.8))
    masks = len(net.masks)
    second = session.compress("lenet300", CompressionConfig(sparsity=0.8, fc_bits=3))
    assert len(net.masks) == masks  # new codebooks, same masks
    assert not any(r.startswith("codebook") for r in second.reused)
    assert second.dcz != first.dcz
    third = session.compress("lenet300", CompressionConfig(sparsity=0.8, fc_bits=3, fc_gap_bits=3, huffman=False))
    assert {"accuracy", "codebook ip1", "codebook ip2", "codebook ip3"} <= set(third.reused)
    assert third.accuracy == second.accuracy and len(third.dcz) != len(second.dcz)
    sizes_first = session.compress("lenet300", CompressionConfig(sparsity=0.7), evaluate=False)
    assert sizes_first.accuracy is None and "evaluate" not in sizes_first.timings
    measured = session.evaluate(sizes_first)
    assert measured.dcz is sizes_first.dcz and measured.accuracy == session.compress(
        "lenet300", CompressionConfig(sparsity=0.7)).accuracy


def test_fc_changes_in_lenet5_reuse_the_convolution_outputs(monkeypatch):
    torch.manual_seed(0)
    session = CompressionSession(tiny_digits(64), {"lenet5": LeNet5().eval()})
    net = session.network("lenet5")
    session.compress("lenet5", CompressionConfig())
    calls = []
    for i, (layers, fn) in enumerate(net.staged.stages):
        net.staged.stages[i] = (layers, lambda x, fn=fn, name=layers[0]: calls.append(name) or fn(x))
    snap = session.compress("lenet5", CompressionConfig(fc_bits=3))
    assert set(calls) == {"ip1", "ip2"}  # conv1 and conv2 were not recomputed
    fresh = copy.deepcopy(net.model)
    with torch.no_grad():
        for name, book in snap.codebooks.items():
            fresh.get_submodule(name).weight.copy_(book.weights())
    assert snap.accuracy == evaluate(fresh, session.test_data)


def test_session_refuses_unknown_layers_and_bad_settings():
    session = CompressionSession(tiny_digits(16), {"lenet300": LeNet300().eval()})
    snap = session.compress("lenet300", CompressionConfig())
    with pytest.raises(DclabError, match="no layer 'conv1'"):
        session.view(snap, "conv1")
    with pytest.raises(DclabError):
        session.compress("lenet300", CompressionConfig(fc_bits=0))
    with pytest.raises(DclabError, match="epochs"):
        session.finetune(snap, epochs=0)


# ---------------------------------------------------------------- the figure


def test_figure_updated_in_place_equals_the_figure_built_from_scratch():
    torch.manual_seed(0)
    session = CompressionSession(tiny_digits(16), {"lenet300": LeNet300().eval()})
    a = session.compress("lenet300", CompressionConfig(sparsity=0.5))
    b = session.compress("lenet300", CompressionConfig(sparsity=0.9, fc_bits=3, huffman=False))
    fig = fig_compression(session.view(a, "ip1"), a.report.stage_bytes, a.file_bytes, True)
    update_compression(fig, session.view(b, "ip2"), b.report.stage_bytes, b.file_bytes, False)
    built = fig_compression(session.view(b, "ip2"), b.report.stage_bytes, b.file_bytes, False)
    assert fig.to_plotly_json() == built.to_plotly_json()
    waterfall = built.data[4]
    assert waterfall.y[-1] * 1000 == pytest.approx(b.file_bytes) and waterfall.text[3] == "off"


# ---------------------------------------------------------------- the dashboard on the trained LeNets



@pytest.fixture(scope="module")
def session(mnist_test, mnist_train, lenet300, lenet5):
    # no ladders: these tests drive the baselines themselves (the retrained ladder has its own tests)
    return CompressionSession(mnist_test, {"lenet300": lenet300, "lenet5": lenet5}, train_data=mnist_train,
                              ladders=False)


@pytest.fixture
def dashboard(session):
    from dclab.widgets.dashboard import compression_dashboard

    return compression_dashboard(session, pruning="sparsity", finetune_digits=3000, preload=False)


def shown(box) -> dict:
    """The numbers the page shows, read back from its HTML."""
    html = box.numbers.value

    def grab(cls: str) -> str:
        return re.search(rf'class="{cls}"[^>]*>([^<]*)<', html).group(1)

    return {
        "accuracy": float(grab("dclab-accuracy").rstrip("%")),
        "bytes": int(grab("dclab-file-bytes").replace(",", "")),
        "ratio": float(grab("dclab-ratio").rstrip("x")),
        "paper": grab("dclab-paper-ratio"),
    }


def table_rows(box) -> dict[str, list[str]]:
    rows = re.findall(r'<tr data-layer="([^"]+)"[^>]*>(.*?)</tr>', box.table.value)
    return {name: re.findall(r"<td[^>]*>([^<]*)</td>", cells)[1:] for name, cells in rows}


def waterfall(box) -> list[float]:
    return list(box.fig.data[4].y)


def assert_consistent(box, test_data) -> None:
    """Shown size = len(bytes) = the engine's bytes; decoding the bytes gives the shown accuracy."""
    snap = box.snapshot
    numbers = shown(box)
    assert numbers["bytes"] == len(snap.dcz) == snap.report.file_bytes
    assert waterfall(box)[-1] * 1000 == pytest.approx(len(snap.dcz))
    assert numbers["ratio"] == pytest.approx(snap.report.dense_bytes / len(snap.dcz), abs=0.05)
    decoded = load_model(snap.dcz)
    accuracy = evaluate(decoded, test_data)
    assert accuracy == snap.accuracy
    assert numbers["accuracy"] == pytest.approx(100 * accuracy, abs=0.005)
    if not snap.finetuned:  # the engine's one-shot fast path gives the very same file
        _, engine_bytes, _ = compress_weights(box.session.network(snap.network).model, snap.config)
        assert engine_bytes == snap.dcz
    assert 'data-state="measured"' in box.numbers.value
    href = re.search(r'href="data:application/octet-stream;base64,([^"]+)"', box.download.value).group(1)
    assert base64.b64decode(href) == snap.dcz


@pytest.mark.slow
def test_dashboard_opens_on_lenet300_with_real_numbers(dashboard, mnist_test, lenet300):
    box = dashboard
    assert "dclab-dashboard" in box._dom_classes
    assert box.layer.options == ("ip1", "ip2", "ip3")
    assert all(s.disabled for s in (box.conv_sparsity, box.conv_bits, box.conv_gap_bits))
    assert shown(box)["paper"] == "40x"
    assert box.snapshot.baseline_accuracy == evaluate(lenet300, mnist_test)
    assert_consistent(box, mnist_test)
    rows = table_rows(box)
    assert list(rows) == ["ip1", "ip2", "ip3", "total", "paper (total)"]
    assert rows["ip1"][0] == "235,200" and rows["ip1"][1] == "10%" and rows["ip1"][2] == "5"
    # the histogram: every weight of ip1 counted once, pruned = round(0.9 n), centroids = the codebook's
    kept, pruned, cut, centroids = box.fig.data[:4]
    assert sum(kept.y) + sum(pruned.y) == 235_200 and sum(pruned.y) == round(0.9 * 235_200)
    book: Codebook = box.snapshot.codebooks["ip1"]
    assert np.allclose(sorted(centroids.x), book.centroids[1:].numpy())
    w = lenet300.ip1.weight.detach().abs()
    assert ((w < cut.x[-1]).sum().item()) == round(0.9 * 235_200)


@pytest.mark.slow
def test_each_control_changes_what_it_should(dashboard, mnist_test):
    box = dashboard
    box.fc_sparsity.value = 0.5  # an accurate start: half the weights pruned costs little even without retraining
    start = box.snapshot
    assert start.accuracy > start.baseline_accuracy - 0.01
    before = {"shown": shown(box), "water": waterfall(box), "rows": table_rows(box)}

    box.fc_bits.value = 2  # fewer shared weights: smaller file, lower accuracy, no new masks
    masks = len(box.session.network("lenet300").masks)
    two = box.snapshot
    assert two.accuracy < start.accuracy and two.file_bytes < start.file_bytes
    assert shown(box)["ratio"] > before["shown"]["ratio"]
    assert table_rows(box)["ip1"][2] == "2" and len(box.fig.data[3].x) == 3
    assert waterfall(box)[2] != before["water"][2]
    assert len(box.session.network("lenet300").masks) == masks
    assert_consistent(box, mnist_test)

    box.fc_bits.value = 5
    assert box.snapshot.dcz == start.dcz  # back where we were, from the caches

    box.fc_sparsity.value = 0.97  # more pruning: fewer weights kept, smaller file
    assert box.snapshot.file_bytes < start.file_bytes
    assert table_rows(box)["ip1"][1] == "3%"
    assert box.snapshot.accuracy != start.accuracy
    assert waterfall(box)[1] < before["water"][1]
    assert_consistent(box, mnist_test)
    box.fc_sparsity.value = 0.5

    box.huffman.value = False  # the fixed-width file: bigger, same accuracy, Huffman step off
    assert box.snapshot.accuracy == start.accuracy
    fixed = box.snapshot
    assert fixed.file_bytes == fixed.report.stage_bytes["pruned + quantized"] > start.file_bytes
    assert fixed.report.stage_bytes["+ Huffman"] == start.file_bytes + 1  # "false" in the metadata is one byte longer
    assert box.fig.data[4].text[3] == "off" and waterfall(box)[3] == 0
    assert_consistent(box, mnist_test)
    box.huffman.value = True

    box.fc_gap_bits.value = 2  # short gaps: many filler zeros, same accuracy
    snap = box.snapshot
    assert snap.accuracy == start.accuracy and snap.file_bytes != start.file_bytes
    assert table_rows(box)["ip1"][4] == "2"
    assert sum(layer.fillers for layer in snap.report.layers) > sum(layer.fillers for layer in start.report.layers)
    assert_consistent(box, mnist_test)
    box.fc_gap_bits.value = 5

    box.init.value = "density"  # other centroids, other file
    assert not torch.equal(box.snapshot.codebooks["ip1"].centroids, start.codebooks["ip1"].centroids)
    assert box.snapshot.dcz != start.dcz
    assert_consistent(box, mnist_test)
    box.init.value = "linear"

    box.layer.value = "ip3"  # the histogram follows the layer, the numbers do not move
    assert sum(box.fig.data[0].y) + sum(box.fig.data[1].y) == 1000
    assert "ip3" in box.fig.layout.annotations[0].text
    assert box.snapshot.dcz == start.dcz


@pytest.mark.slow
def test_quality_and_paper_pruning(dashboard, mnist_test, lenet300):
    box = dashboard
    box.pruning.value = "quality"
    box.fc_quality.value = 1.0
    w = lenet300.ip2.weight.detach()
    expected = (w.abs() >= 1.0 * w.std()).float().mean().item()
    assert box.snapshot.report.layers[1].density == pytest.approx(expected, abs=1e-4)
    assert_consistent(box, mnist_test)
    box.pruning.value = "paper"
    for layer in box.snapshot.report.layers:
        assert layer.density == pytest.approx(1 - PAPER_SPARSITY["lenet300"][layer.name], abs=1e-3)
    assert_consistent(box, mnist_test)


@pytest.mark.slow
def test_switching_to_lenet5_and_its_conv_controls(dashboard, mnist_test):
    box = dashboard
    box.network.value = "lenet5"
    assert box.layer.options == ("conv1", "conv2", "ip1", "ip2")
    assert not box.conv_bits.disabled and shown(box)["paper"] == "39x"
    first = box.snapshot
    assert first.report.dense_bytes == 4 * 431_080
    box.conv_bits.value = 2
    assert box.snapshot.codebooks["conv1"].centroids.numel() == 4  # 3 + the reserved zero
    assert box.snapshot.accuracy != first.accuracy and box.snapshot.file_bytes < first.file_bytes
    assert_consistent(box, mnist_test)
    box.network.value = "lenet300"
    assert box.conv_bits.disabled and box.layer.options == ("ip1", "ip2", "ip3")


@pytest.mark.slow
def test_finetune_trains_centroids_keeps_masks_and_offers_the_file(dashboard, mnist_test):
    box = dashboard
    box.fc_bits.value = 3
    before = box.snapshot
    box.epochs.value = 1
    box.finetune()
    tuned = box.snapshot
    assert tuned.finetuned and len(tuned.finetune_history) == 1
    assert box.progress.value == box.progress.max > 0
    assert "epoch 1" in box.status.value and not box.fc_bits.disabled
    for name, book in tuned.codebooks.items():  # the same indices (masks kept), moved centroids
        assert torch.equal(book.indices, before.codebooks[name].indices)
    assert not torch.equal(tuned.codebooks["ip1"].centroids, before.codebooks["ip1"].centroids)
    assert tuned.codebooks["ip1"].centroids[0] == 0
    assert_consistent(box, mnist_test)
    assert 'download="lenet300-finetuned.dcz"' in box.download.value
    box.fc_bits.value = 4  # a new setting leaves the fine-tuned model
    assert not box.snapshot.finetuned


def test_dashboard_refuses_unknown_network_and_mode():
    from dclab.widgets.dashboard import compression_dashboard

    session = CompressionSession(tiny_digits(8), {})
    with pytest.raises(DclabError, match="unknown network"):
        compression_dashboard(session, network="alexnet")
    with pytest.raises(DclabError, match="pruning"):
        compression_dashboard(session, pruning="random")


def test_the_page_answers_on_the_retrained_ladder_and_compares_without(mnist_test):
    from dclab.widgets.dashboard import compression_dashboard

    box = compression_dashboard(CompressionSession(mnist_test), pruning="paper", preload=False)  # the zoo's
    first = box.snapshot
    assert box.retrained.value is True and first.retrained  # out of the box: retrained networks
    assert f'data-rung="{first.rung}"' in box.numbers.value and first.rung_label in box.numbers.value
    box.retrained.value = False  # the same setting, without retraining
    plain = box.snapshot
    assert plain.rung == 0 and "dense baseline" in box.numbers.value
    assert plain.file_bytes > 0 and plain.accuracy < first.accuracy  # what retraining buys


def test_a_session_without_ladders_has_no_retrained_toggle(dashboard):
    assert dashboard.retrained.disabled and not dashboard.snapshot.retrained


def test_a_quick_estimate_is_shown_then_replaced_by_the_full_figure(dashboard):
    seen = []
    dashboard.numbers.observe(lambda change: seen.append(change["new"]), names="value")
    dashboard.fc_sparsity.value = 0.83  # a setting no test pass has measured yet
    states = [re.search(r'data-state="(\w+)"', html).group(1) for html in seen]
    assert "estimated" in states and states[-1] == "measured"
    assert states.index("estimated") < len(states) - 1  # the full figure comes after, never skipped
    estimated = seen[states.index("estimated")]
    assert "estimate on 1,000 digits" in estimated and "+/-" in estimated
    assert dashboard.snapshot.accuracy is not None


def test_ten_quick_moves_end_on_the_last_settings_figure(session):
    import threading

    from dclab.widgets.dashboard import compression_dashboard

    box = compression_dashboard(session, pruning="sparsity", preload=False, progressive=True)
    entered, gate, finished = threading.Event(), threading.Event(), []
    evaluate = session.evaluate

    def held(snapshot, cancelled=None):  # a pass waits until all ten moves are made
        entered.set()
        gate.wait(timeout=60)
        done = evaluate(snapshot, cancelled)
        finished.append(snapshot.config.sparsity["ip1"])
        return done

    session.evaluate = held
    try:
        values = [round(0.41 + 0.01 * i, 2) for i in range(10)]
        box.fc_sparsity.value = values[0]
        assert entered.wait(timeout=60)  # the first move's full pass has started
        for v in values[1:]:
            box.fc_sparsity.value = v
        gate.set()
        for worker in [t for t in threading.enumerate() if t.name == "dclab-measure"]:
            worker.join(timeout=120)
    finally:
        session.evaluate = evaluate
    assert finished == [values[-1]]  # one full pass, for the last move; the first was stopped
    assert box.measuring.superseded == 1  # the first move's pass stopped between two batches
    assert box.snapshot.config.sparsity["ip1"] == values[-1] and box.snapshot.accuracy is not None
    assert 'data-state="measured"' in box.numbers.value


def test_preload_prepares_the_given_network_in_the_background():
    model = LeNet300()
    session = CompressionSession(tiny_digits(200), models={"lenet300": model}, ladders=False)
    thread = session.preload("lenet300")
    thread.join(timeout=60)
    assert not thread.is_alive() and thread.name == "dclab-preload"
    assert "lenet300" in session._networks  # built by the preload (then glibc's malloc_trim: nothing else changes)
    net = session.network("lenet300")
    assert net.model is model and list(net.layers) == ["ip1", "ip2", "ip3"]
    assert net.baseline_accuracy == evaluate(model, session.test_data, batch_size=2000)


@pytest.mark.slow
def test_the_opening_note_states_the_pages_first_numbers_beside_the_papers(dashboard):
    from dclab import paper
    from dclab.widgets.dashboard import opening_note

    snap = dashboard.snapshot
    note = opening_note(snap)
    numbers = shown(dashboard)
    assert f"{numbers['ratio']:.1f}x ({numbers['bytes']:,} bytes) at {numbers['accuracy']:.2f}%" in note
    assert f"{100 * (snap.accuracy - snap.baseline_accuracy):+.2f} points" in note and snap.rung_label in note
    row = paper.TABLE1["lenet300"]
    assert "The paper's 40x: 98.42% against its baseline's 98.36% (+0.06 points)" in note
    assert f"misread {row.error_before / (1 - snap.baseline_accuracy):.1f} times as many" in note
