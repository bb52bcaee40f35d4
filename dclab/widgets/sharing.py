"""Notebook 03's bit-width widget: bits and centroid initialization -> centroids, accuracy, real encoded size."""

from __future__ import annotations

import copy
from html import escape
from typing import Callable

import ipywidgets as W
import plotly.graph_objects as go
import torch
from torch import nn

from dclab.algorithms import quantize
from dclab.codec import container
from dclab.data import Digits, load_mnist
from dclab.errors import DclabError
from dclab.lessons.sharing import CENTROID_LR
from dclab.lessons.store import single_thread
from dclab.memory import release_freed_memory
from dclab.models import compressible_layers, layer_kind
from dclab.pipeline.compress import finetune_centroids
from dclab.pipeline.config import CompressionConfig
from dclab.pipeline.session import Estimate
from dclab.pipeline.staged import Superseded
from dclab.viz.pruning import hist_counts, histogram_edges
from dclab.viz.sharing import centroid_counts, centroid_lines, fig_bit_explorer
from dclab.widgets.progressive import AccuracyPass, ProgressiveMeasure, accuracy_line, failure_html
from dclab.widgets.retraining import retrained_toggle

RETRAIN_DIGITS = 10_000
"""The training digits the bit-width widget retrains centroids on: MNIST's first 10,000, one epoch (~0.3 s for
LeNet-300-100's ip1 on one thread)."""


def layer_dcz(name: str, kind: str, codebook: quantize.Codebook, bits: int) -> bytes:
    """One dense quantized layer written as a ``.dcz`` at fixed width, no bias (notebook 03's size readout)."""
    layer = container.CompressedLayer.from_codebook(name, kind, codebook, bits, 0)
    return container.to_bytes("layer", [layer], huffman=False)


def sharing_formula_bytes(n: int, bits: int, b: int = 32) -> float:
    """The paper's size of a layer sharing 2**bits values: (n*log2(k) + k*b) / 8 bytes."""
    return (n * bits + 2**bits * b) / 8


def retrained_codebook(model: nn.Module, name: str, book: quantize.Codebook, train_data: Digits,
                       stale: Callable[[], bool] | None = None) -> quantize.Codebook:
    """``book`` with its centroids retrained (trained quantization, ``finetune_centroids``, notebook 03).

    Only layer ``name``'s centroids train (every other weight and bias of a copy of ``model`` is frozen), one
    epoch over ``train_data`` at ``CENTROID_LR``; the indices stay. ``stale()`` is asked after every step, and
    a True answer stops the training with ``Superseded`` (a newer move on a live page)."""
    tuner = copy.deepcopy(model)
    for p in tuner.parameters():
        p.requires_grad_(False)

    def check(_: nn.Module) -> None:
        if stale is not None and stale():
            raise Superseded

    config = CompressionConfig(finetune_epochs=1, finetune_lr=CENTROID_LR)
    tuned, _ = finetune_centroids(tuner, {name: book}, train_data, config, after_step=check, progress=False)
    return tuned[name]


def bit_width_explorer(
    model: nn.Module,
    test_data: Digits,
    layer: str | None = None,
    bits: int = 4,
    init: str = "linear",
    progressive: bool | None = None,
    estimate: bool | None = None,
    retrained: bool = False,
    train_data: Digits | None = None,
) -> W.VBox:
    """Share one layer's weights with 2**bits centroids: histogram, accuracy, measured size (notebook 03).

    The chosen layer is quantized by k-means (the others stay float32) and evaluated on all of
    ``test_data``; its size is the byte count of the layer really written by ``dclab.codec.container``,
    shown beside the paper's formula. *retrained* (the toggle; ``retrained`` its first value) retrains
    the layer's centroids first (trained quantization, ``retrained_codebook``) on ``train_data`` (default:
    MNIST's first ``RETRAIN_DIGITS`` training digits, read on first use), inside the measuring pass: the
    figure shows the k-means centroids at once, then the retrained ones with their accuracy and file.
    ``model`` is not modified. A move redraws the figure and sizes at once, then measures the accuracy
    (``dclab.widgets.progressive``), as ``prune_explorer`` does: ``progressive`` (default: in a running
    kernel) in the background, a newer move stopping a running pass; ``estimate`` (default: in the
    background, when one full pass takes over ``ESTIMATE_AFTER_S``) a quick estimate on 1,000 stratified
    digits first, marked as such; a setting measured before answers from its cache.

    Attributes for tests: ``layer``, ``bits``, ``init``, ``retrained`` (controls); ``figure``;
    ``accuracy_label``, ``size_label``; ``state`` (accuracy, codebook, dcz_bytes, formula_bytes, ratio,
    retrained (whether the codebook shown is retrained)...; accuracy is None while measuring); ``measuring``
    (``ProgressiveMeasure``: serial, superseded); ``wait()`` (until the last move is measured).
    """
    pristine = copy.deepcopy(model).eval()  # never changed: what the retrained centroids start from
    work = copy.deepcopy(model).eval()
    modules = compressible_layers(work)
    base = {n: m.weight.detach().clone() for n, m in modules.items()}
    names = list(base)
    layer = layer or names[0]
    if layer not in base:
        raise DclabError(f"the model has no layer {layer!r} to quantize; choose one of: {', '.join(names)}")
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise DclabError(f"bits must be an integer from 1 to 8 (the slider's range), not {bits!r}")
    if init not in quantize.INITS:
        raise DclabError(f"init must be one of {', '.join(quantize.INITS)}, not {init!r}")
    kinds = {n: layer_kind(m) for n, m in modules.items()}
    presorted = {}
    edges = {n: histogram_edges(w, 121, margin=1.02) for n, w in base.items()}
    measuring = ProgressiveMeasure(progressive)
    if estimate is None and not measuring.background:
        estimate = False  # answered at once, in the caller's thread: no one would see an estimate
    tester = AccuracyPass(work, test_data, estimate)  # its own copy: a background pass reads only that
    baseline = tester.baseline
    books: dict[tuple, quantize.Codebook] = {}  # k-means, by (layer, bits, init)
    tuned: dict[tuple, quantize.Codebook] = {}  # retrained, by (layer, bits, init)
    results: dict[tuple, dict] = {}  # sizes, by (layer, bits, init, retrained)
    accuracies: dict[tuple, float] = {}  # the full figure, by (layer, bits, init, retrained)
    training: dict[str, Digits] = {} if train_data is None else {"digits": train_data}

    layer_dd = W.Dropdown(options=names, value=layer, description="layer")
    layer_dd.add_class("dclab-bits-layer")
    bits_slider = W.IntSlider(value=bits, min=1, max=8, step=1, description="bits", continuous_update=False,
                              layout=W.Layout(width="420px"))
    bits_slider.add_class("dclab-bits-slider")
    init_tb = W.ToggleButtons(options=list(quantize.INITS), value=init, description="initial centroids",
                              style={"description_width": "initial"})
    init_tb.add_class("dclab-bits-init")
    retrain_tb = retrained_toggle(True, tooltip="retrain the shared centroids (trained quantization, one epoch "
                                  f"of {RETRAIN_DIGITS:,} training digits), or k-means's centroids as they are")
    retrain_tb.value = bool(retrained)
    accuracy_label = W.HTML()
    accuracy_label.add_class("dclab-bits-accuracy")
    measuring.on_error = lambda exc: setattr(accuracy_label, "value", failure_html(exc))
    size_label = W.HTML()
    size_label.add_class("dclab-bits-size")
    state: dict = {"baseline": baseline, "current_layer": None}

    def codebook(name: str, b: int, how: str) -> quantize.Codebook:
        key = (name, b, how)
        if key not in books:
            if name not in presorted:
                presorted[name] = quantize.SortedValues.of(base[name])
            books[key] = quantize.quantize_layer(base[name], None, b, how, presorted=presorted[name])
        return books[key]

    def share(name: str, book: quantize.Codebook) -> None:
        previous = state["current_layer"]
        if previous is not None and previous != name:
            with torch.no_grad():
                modules[previous].weight.copy_(base[previous])
        quantize.apply_codebooks_(work, {name: book})
        state["current_layer"] = name

    def sizes(key: tuple, book: quantize.Codebook) -> dict:
        """The layer's file at this setting, for ``book`` (k-means's, or the retrained one), by ``(name, b, how, r)``."""
        if key not in results:
            name, b = key[0], key[1]
            data = layer_dcz(name, kinds[name], book, b)
            stats = container.from_bytes(data).stats[0]
            n = base[name].numel()
            results[key] = {
                "dcz_bytes": len(data),
                "codebook_bytes": stats.sections["CENT"],
                "index_bytes": stats.sections["WDAT"],
                "formula_bytes": sharing_formula_bytes(n, b),
                "formula_ratio": quantize.sharing_ratio(n, b),
                "ratio": 4 * n / len(data),
                "n": n,
            }
        return results[key]

    def refresh(*_) -> None:
        name, b, how, r = layer_dd.value, bits_slider.value, init_tb.value, bool(retrain_tb.value)
        with measuring.showing:  # a background pass shows its figures after this redraw
            update_state(name, b, how, r)
            measure()  # first: in the background, the quick estimate runs while the figure is redrawn
            book = state["codebook"]  # measured at once (outside a kernel), a retrained one is already in
            e = edges[name]
            counts = hist_counts(base[name], e)
            with fig.batch_update():
                fig.data[0].x = (e[1:] + e[:-1]) / 2
                fig.data[0].width = e[1:] - e[:-1]
                fig.data[0].y = counts
                draw_centroids(book, float(counts.max()))
                fig.layout.annotations[0].text = f"{name}: weights and the {book.n_clusters} shared values"
            describe()

    def draw_centroids(book: quantize.Codebook, top: float) -> None:
        x, y = centroid_lines(book.centroids, top)
        fig.data[1].x, fig.data[1].y = x, y
        fig.data[2].x = book.centroids.numpy()
        fig.data[2].y = centroid_counts(book)
        fig.data[2].customdata = list(range(book.n_clusters))

    def update_state(name: str, b: int, how: str, r: bool) -> quantize.Codebook:
        """Put the setting's codebook in the working model and ``state``: the retrained one when asked and already
        retrained, else k-means's (its retrained centroids then come with the measuring pass)."""
        measuring.move()  # first: a pass still measuring the previous setting is stale from now on
        shown_retrained = r and (name, b, how) in tuned
        book = tuned[(name, b, how)] if shown_retrained else codebook(name, b, how)
        share(name, book)  # the working model always holds what is shown
        state.update(codebook=book, layer=name, bits=b, init=how, asked_retrained=r, retrained=shown_retrained,
                     accuracy=accuracies.get((name, b, how, r)), estimate=None)
        state.update(sizes((name, b, how, shown_retrained), book))
        return book

    def retrain_weights(setting: tuple[str, int, str], stale: Callable[[], bool]) -> dict[str, torch.Tensor]:
        """Inside the measuring pass: the centroids of ``setting`` (layer, bits, init: the move's, read when it was
        made) retrained (``retrained_codebook``), then shown (figure, file, working model) unless a newer move came;
        the weights to measure."""
        name, b, how = setting
        if "digits" not in training:
            training["digits"] = load_mnist("train", count=RETRAIN_DIGITS)
        with single_thread():  # the other core stays with the kernel, as for the test pass
            book = retrained_codebook(pristine, name, codebook(name, b, how), training["digits"], stale)
        tuned[(name, b, how)] = book
        weights = AccuracyPass.snapshot(pristine)
        weights[f"{name}.weight"] = book.weights().to(weights[f"{name}.weight"].dtype)

        def show_retrained() -> None:
            share(name, book)
            state.update(codebook=book, retrained=True)
            state.update(sizes((name, b, how, True), book))
            draw_centroids(book, float(hist_counts(base[name], edges[name]).max()))
            describe()

        measuring.show(stale, show_retrained)
        return weights

    def measure() -> None:
        """The accuracy of what the working model holds, unless known: the estimate, then the full figure
        (retraining the centroids first when asked and not yet retrained)."""
        if state["accuracy"] is not None:
            return
        key = (state["layer"], state["bits"], state["init"], state["asked_retrained"])

        def keep(accuracy: float) -> None:  # the setting's figure, whether or not it is still shown
            accuracies[key] = accuracy

        def show_estimate(estimate: Estimate) -> None:
            state["estimate"] = estimate
            describe_accuracy()

        def show_accuracy(accuracy: float) -> None:
            state["accuracy"] = accuracy
            describe_accuracy()

        setting = key[:3]
        needs_training = state["asked_retrained"] and not state["retrained"]
        tester.measure(measuring, work, show_estimate, show_accuracy, keep,
                       weights=(lambda stale: retrain_weights(setting, stale)) if needs_training else None)

    def describe_accuracy() -> None:
        """The accuracy line: measured, or the quick estimate (marked as such), or the last figure greyed."""
        acc, estimate, name, book = state["accuracy"], state["estimate"], state["layer"], state["codebook"]
        if state["retrained"]:
            how = f"centroids retrained one epoch on {RETRAIN_DIGITS:,} training digits"
        elif state["asked_retrained"]:
            how = "retraining the centroids..."
        else:
            how = "k-means centroids, not retrained"
        setting = (f"<b>test accuracy</b> with {escape(name)} sharing {book.n_clusters} values "
                   f'({escape(state["init"])} initialization, {how}; other layers fp32): ')
        if acc is not None:
            state["accuracy_html"] = (
                f'{setting}<b class="dclab-bits-accuracy-value">{100 * acc:.2f}%</b> '
                f"(fp32 {100 * baseline:.2f}%, {100 * (acc - baseline):+.2f} points)")
        accuracy_label.value = accuracy_line(
            state["accuracy_html"] if acc is not None else None, estimate, state.get("accuracy_html", ""), setting,
            "dclab-bits-accuracy", len(test_data), measuring.serial)

    def describe() -> None:
        describe_accuracy()
        r, name, b = state, state["layer"], state["bits"]
        n = r["n"]
        size_label.value = (
            f'<div style="line-height:1.6"><b>{escape(name)}</b> ({n:,} weights, {4 * n:,} bytes in fp32) '
            f"written by dclab.codec.container at {b} bits per index: "
            f'<b class="dclab-bits-bytes">{r["dcz_bytes"]:,} bytes</b> '
            f'(codebook {r["codebook_bytes"]:,} B + indices {r["index_bytes"]:,} B + '
            f'{r["dcz_bytes"] - r["codebook_bytes"] - r["index_bytes"]:,} B of headers) = '
            f'<b class="dclab-bits-ratio">{r["ratio"]:.2f}x</b> smaller.<br>'
            f"The paper's formula r = n&middot;b / (n&middot;log2(k) + k&middot;b) with n = {n:,}, b = 32, "
            f'k = {2 ** b}: <span class="dclab-bits-formula">{r["formula_bytes"]:,.0f} bytes, '
            f'r = {r["formula_ratio"]:.2f}x</span></div>'
        )

    first = update_state(layer, bits, init, False)
    tester.load(AccuracyPass.snapshot(work))  # the first answer at once: the figure is built complete from it
    state["accuracy"] = accuracies[(layer, bits, init, False)] = tester.accuracy()
    # the figure is complete before it is wrapped: a FigureWidget changed before the browser connects renders empty
    fig = go.FigureWidget(fig_bit_explorer(base[layer], first, edges[layer], layer))
    fig.add_class("dclab-bits-figure")
    describe()
    for control in (layer_dd, bits_slider, init_tb, retrain_tb):
        control.observe(refresh, names="value")
    if retrained:
        refresh()  # retrained from the start: the first pass retrains (the figure above is k-means's until then)

    box = W.VBox([W.HBox([layer_dd, bits_slider]), W.HBox([init_tb, retrain_tb]), accuracy_label, size_label, fig])
    box.add_class("dclab-bit-width")
    box.layer, box.bits, box.init, box.retrained = layer_dd, bits_slider, init_tb, retrain_tb
    box.figure, box.accuracy_label, box.size_label, box.state = fig, accuracy_label, size_label, state
    box.model, box.base_weights = work, base
    box.measuring, box.wait = measuring, measuring.wait
    release_freed_memory()  # what building the page freed (its first test pass, sorts), back to the system
    return box
