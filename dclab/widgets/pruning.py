"""Notebook 02's prune explorer: drag a sparsity or a threshold, see the histograms, accuracy and real sparse size."""

from __future__ import annotations

import copy
import math
from html import escape

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
from torch import nn

from dclab.algorithms import prune
from dclab.codec.sparse import encode_pruned
from dclab.data import Digits
from dclab.errors import DclabError
from dclab.lessons.pruning import PRUNE_GAP_BITS, RETRAIN_LR, prune_and_retrain
from dclab.lessons.store import single_thread
from dclab.memory import release_freed_memory
from dclab.models import compressible_layers, layer_kind
from dclab.pipeline.ladder import ladder_for
from dclab.pipeline.session import Estimate
from dclab.train import evaluate
from dclab.viz.pruning import (
    cut_lines,
    fig_prune_explorer,
    hist_counts,
    histogram_edges,
)
from dclab.widgets.progressive import AccuracyPass, ProgressiveMeasure, accuracy_line, failure_html
from dclab.widgets.retraining import retrained_toggle, rung_html

BASELINE_LABEL = "the network as given (not retrained)"

SCOPES = [("each layer", "layer"), ("global", "global"), ("this layer only", "single")]
MODES = [("sparsity", "sparsity"), ("threshold (x std)", "quality")]


def _fmt_bytes(n: float) -> str:
    return f"{n:,.0f} B" if n < 10_000 else f"{n / 1000:,.1f} kB"


def prune_explorer(
    model: nn.Module,
    test_data: Digits,
    train_data: Digits | None = None,
    layer: str | None = None,
    sparsity: float = 0.9,
    quality: float = 1.0,
    retrain_epochs: int = 2,
    retrained: bool | None = None,
    progressive: bool | None = None,
    estimate: bool | None = None,
) -> W.VBox:
    """Prune a trained model live: sparsity or threshold, per layer or global (notebook 02).

    Shows the chosen layer's weights before and after, the test accuracy on all of
    ``test_data``, and the pruned layer's size really encoded in the relative-index sparse
    format. The setting (how many weights each layer loses) is read on ``model``'s weights;
    *retrained* answers it on the nearest rung of the retrained ladder (``dclab.pipeline.ladder``:
    the most pruned rung that prunes no layer more, pruned the rest of the way by magnitude),
    *not retrained* on ``model`` pruned as it is. ``retrained=None`` offers the ladder when
    ``model`` is the zoo's baseline with its ladder cached; True asks for it (climbed with a
    progress bar if need be); False never. "retrain the survivors" retrains what is shown
    (masks kept) on ``train_data`` with a progress bar. ``model`` is not modified.

    A move redraws the histograms and sizes at once, then measures the accuracy
    (``dclab.widgets.progressive``): ``progressive`` (default: inside a running kernel, as under Voila)
    measures in the background, and a newer move stops a running pass; ``estimate`` (default: in the
    background, when one full pass takes over ``ESTIMATE_AFTER_S``, as LeNet-5's does) first shows a
    quick estimate on 1,000 stratified test digits, marked as such with its standard error. A setting
    measured before answers from its cache.

    Attributes for tests: ``mode``, ``scope``, ``layer``, ``sparsity``, ``quality``, ``retrained``,
    ``epochs``, ``retrain_button``, ``progress`` (controls); ``figure`` (FigureWidget);
    ``accuracy_label``, ``size_label``, ``rung_label``; ``state`` (numbers shown: accuracy, masks
    (the setting, on ``model``), applied_masks and applied_weights (what the working model holds),
    rung, threshold, layer_bytes, model_bytes...; accuracy is None while measuring); ``measuring``
    (``ProgressiveMeasure``: serial, superseded); ``wait()`` (until the last move is measured);
    ``retrain()`` runs the button's action.
    """
    work = copy.deepcopy(model).eval()
    modules = compressible_layers(work)
    base = {n: m.weight.detach().clone() for n, m in modules.items()}
    names = list(base)
    layer = layer or names[0]
    if layer not in base:
        raise DclabError(f"the model has no layer {layer!r} to prune; choose one of: {', '.join(names)}")
    if not 0.0 <= sparsity <= 0.99 or not 0.0 <= quality <= 3.0:
        raise DclabError(f"start with a sparsity in [0, 0.99] and a quality in [0, 3], "
                         f"not {sparsity!r} and {quality!r}")
    by_magnitude = {n: prune.MagnitudeOrder(w) for n, w in base.items()}  # sorted once: a slider move is O(n)
    global_order = prune.MagnitudeOrder(base)
    edges = {n: histogram_edges(w) for n, w in base.items()}
    gap_bits = {n: PRUNE_GAP_BITS[layer_kind(m)] for n, m in modules.items()}
    pruned_params = {f"{n}.weight" for n in modules}
    other_bytes = sum(4 * p.numel() for n, p in work.named_parameters() if n not in pruned_params)  # biases, fp32
    measuring = ProgressiveMeasure(progressive)
    if estimate is None and not measuring.background:
        estimate = False  # answered at once, in the caller's thread: no one would see an estimate
    tester = AccuracyPass(work, test_data, estimate)  # its own copy: a background pass reads only that
    baseline = tester.baseline
    accuracies: dict[tuple, float] = {}  # the full figure of each setting measured, not retrained further
    ladder = ladder_for(model, retrained)
    rung_weights: dict[int, tuple[dict[str, torch.Tensor], dict[str, prune.MagnitudeOrder]]] = {}

    mode = W.ToggleButtons(options=MODES, value="sparsity", description="prune by")
    mode.add_class("dclab-prune-mode")
    scope = W.ToggleButtons(options=SCOPES, value="layer", description="threshold")
    scope.add_class("dclab-prune-scope")
    layer_dd = W.Dropdown(options=names, value=layer, description="show layer")
    layer_dd.add_class("dclab-prune-layer")
    sparsity_slider = W.FloatSlider(value=sparsity, min=0.0, max=0.99, step=0.01, description="sparsity",
                                    readout_format=".0%", continuous_update=False, layout=W.Layout(width="460px"))
    sparsity_slider.add_class("dclab-prune-sparsity")
    quality_slider = W.FloatSlider(value=quality, min=0.0, max=3.0, step=0.05, description="quality x std",
                                   readout_format=".2f", continuous_update=False,
                                   layout=W.Layout(width="460px", display="none"),
                                   style={"description_width": "initial"})
    quality_slider.add_class("dclab-prune-quality")
    epochs = W.IntSlider(value=retrain_epochs, min=1, max=5, description="epochs", layout=W.Layout(width="260px"))
    retrain_button = W.Button(description="retrain the survivors", icon="refresh", button_style="success",
                              disabled=train_data is None)
    retrain_button.add_class("dclab-prune-retrain")
    progress = W.IntProgress(value=0, min=0, max=1, description="retraining", layout=W.Layout(width="420px"))
    progress.add_class("dclab-prune-progress")
    accuracy_label = W.HTML()
    accuracy_label.add_class("dclab-prune-accuracy")
    measuring.on_error = lambda exc: setattr(accuracy_label, "value", failure_html(exc))
    size_label = W.HTML()
    size_label.add_class("dclab-prune-size")
    retrain_toggle = retrained_toggle(ladder is not None)
    rung_label = W.HTML()

    state: dict = {"baseline": baseline, "masks": {}, "layer_bytes": {}, "retrained_epochs": 0, "history": []}
    byte_cache: dict[str, tuple[torch.Tensor, int]] = {}

    def compute_masks() -> dict[str, torch.Tensor]:
        sel, s, q = scope.value, sparsity_slider.value, quality_slider.value
        ones = {n: torch.ones(w.shape, dtype=torch.bool) for n, w in base.items()}
        if mode.value == "sparsity":
            if sel == "global":
                return global_order.masks(s)
            if sel == "single":
                return {**ones, layer_dd.value: by_magnitude[layer_dd.value].mask(s)}
            return {n: by_magnitude[n].mask(s) for n in names}
        if sel == "global":
            return prune.layer_masks(base, quality=q, scope="global")
        if sel == "single":
            return {**ones, layer_dd.value: prune.threshold_mask(base[layer_dd.value], q)}
        return {n: prune.threshold_mask(w, q) for n, w in base.items()}

    def threshold(name: str) -> float:
        mask, w = state["masks"][name], base[name]
        if mode.value == "quality" and not (scope.value == "single" and name != layer_dd.value):
            if scope.value == "global":
                return quality_slider.value * float(torch.cat([v.reshape(-1) for v in base.values()]).std())
            return quality_slider.value * float(w.std())
        if bool(mask.all()):
            return 0.0
        return float(w[mask].abs().min()) if bool(mask.any()) else float(w.abs().max())

    def applied() -> tuple[int, str, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(rung, its label, weights, masks) that the working model holds for the setting ``state["masks"]``."""
        masks = state["masks"]
        if ladder is None or not retrain_toggle.value:
            return 0, BASELINE_LABEL, base, masks
        sparsities = {n: 1.0 - float(m.sum()) / m.numel() for n, m in masks.items()}
        rung = ladder.rung_for(sparsities)
        if rung.index == 0:
            return 0, rung.describe(), base, masks
        if rung.index not in rung_weights:
            rung_model = rung.model(ladder.arch)
            weights = {n: m.weight.detach().clone() for n, m in compressible_layers(rung_model).items()}
            rung_weights[rung.index] = weights, {n: prune.MagnitudeOrder(w) for n, w in weights.items()}
        weights, orders = rung_weights[rung.index]
        return rung.index, rung.describe(), weights, {n: orders[n].mask(sparsities[n]) for n in names}

    def layer_bytes(name: str) -> int:
        mask, key = state["applied_masks"][name], (state["rung"], name)
        cached = byte_cache.get(key)
        if cached is None or not torch.equal(cached[0], mask):
            cached = (mask, len(encode_pruned(state["applied_weights"][name], mask, gap_bits[name])))
            byte_cache[key] = cached
        return cached[1]

    def describe() -> None:
        name = layer_dd.value
        mask = state["masks"][name]
        kept, n = int(mask.sum()), mask.numel()
        lb = state["layer_bytes"][name]
        dense = 4 * n
        total = sum(state["layer_bytes"].values()) + other_bytes
        dense_total = sum(4 * w.numel() for w in base.values()) + other_bytes
        kept_all = sum(int(m.sum()) for m in state["masks"].values())
        n_all = sum(m.numel() for m in state["masks"].values())
        state.update(model_bytes=total, dense_model_bytes=dense_total, kept=kept_all, n_weights=n_all)
        size_label.value = (
            f'<div style="line-height:1.6"><b>{escape(name)}</b>: {kept:,} of {n:,} weights kept '
            f'({100 * kept / n:.1f}%) &rarr; <b class="dclab-prune-bytes">{lb:,} bytes</b> in the relative-index '
            f"sparse format ({gap_bits[name]}-bit gaps + fp32 values, measured) vs {dense:,} bytes dense fp32: "
            f'<b class="dclab-prune-ratio">{dense / lb:.2f}x</b> smaller.<br>'
            f"whole model ({100 * (1 - kept_all / n_all):.1f}% of its weights pruned, biases in fp32): "
            f'<span class="dclab-prune-model-bytes">{_fmt_bytes(total)}</span> vs {_fmt_bytes(dense_total)} '
            f"= {dense_total / total:.2f}x</div>"
        )
        rung_label.value = rung_html(state["rung"], state["rung_label"], ladder is not None,
                                     asked=bool(retrain_toggle.value))

    def describe_accuracy() -> None:
        """The accuracy line: measured, or the quick estimate (marked as such), or the last figure greyed."""
        acc, estimate = state["accuracy"], state["estimate"]
        if acc is not None:
            retrained = state["retrained_epochs"]
            how = "on the retrained rung" if state["rung"] else "no retraining"
            if retrained:
                how = f"after {retrained} more epoch{'s' * (retrained > 1)} of retraining" if state["rung"] else \
                    f"after {retrained} epoch{'s' * (retrained > 1)} of retraining"
            state["accuracy_html"] = (
                f"<b>test accuracy</b> ({len(test_data):,} digits): "
                f'<b class="dclab-prune-accuracy-value">{100 * acc:.2f}%</b> '
                f"({how}; unpruned {100 * baseline:.2f}%, {100 * (acc - baseline):+.2f} points)")
        accuracy_label.value = accuracy_line(
            state["accuracy_html"] if acc is not None else None, estimate, state.get("accuracy_html", ""),
            "<b>test accuracy</b> (estimate): ", "dclab-prune-accuracy", len(test_data), measuring.serial)

    def draw_accuracy() -> None:
        """The accuracy panel (when the pruned accuracy is measured) and line."""
        if state["pruned_accuracy"] is not None:
            history = [state["pruned_accuracy"]] + state["history"]
            with fig.batch_update():
                fig.data[5].x, fig.data[5].y = list(range(len(history))), [100 * a for a in history]
                fig.data[4].x = [0, max(1, len(history) - 1)]
        describe_accuracy()

    def draw() -> None:
        name = layer_dd.value
        w, mask, e = base[name], state["masks"][name], edges[name]
        before = hist_counts(w, e)
        t = threshold(name)
        state["threshold"] = t
        x, y = cut_lines(t, float(before.max()))
        retrained_w, applied_mask = modules[name].weight.detach(), state["applied_masks"][name]
        shown = state["retrained_epochs"] or state["rung"]
        with fig.batch_update():
            fig.data[0].y = before
            fig.data[1].x, fig.data[1].y = x, y
            fig.data[2].y = hist_counts(w[mask], e)
            fig.data[3].y = hist_counts(retrained_w[applied_mask], e) if shown else np.zeros(len(e) - 1)
            fig.layout.annotations[0].text = f"{name} before pruning"
        describe()
        draw_accuracy()

    def setting() -> tuple:
        """What decides the weights the working model holds (the key of ``accuracies``)."""
        value = sparsity_slider.value if mode.value == "sparsity" else quality_slider.value
        single = layer_dd.value if scope.value == "single" else None
        return bool(retrain_toggle.value), mode.value, scope.value, single, value

    def apply_setting(masks: dict[str, torch.Tensor]) -> None:
        """Put the setting's weights (on the rung the toggle asks for) into the working model; its accuracy if known."""
        measuring.move()  # first: a pass still measuring the previous setting is stale from now on
        state["masks"] = masks
        state["rung"], state["rung_label"], state["applied_weights"], state["applied_masks"] = applied()
        state["retrained_epochs"], state["history"] = 0, []
        with torch.no_grad():
            for n, m in modules.items():
                m.weight.copy_(state["applied_weights"][n] * state["applied_masks"][n])
        state["accuracy"] = state["pruned_accuracy"] = accuracies.get(setting())
        state["estimate"] = None

    def encode_layers() -> None:
        """Each layer's bytes in the sparse format, really encoded (what the size line shows)."""
        state["layer_bytes"] = {n: layer_bytes(n) for n in names}

    def measure() -> None:
        """The accuracy of what the working model holds, unless known: the estimate, then the full figure."""
        if state["accuracy"] is not None:
            return
        key = setting()

        def keep(accuracy: float) -> None:  # the setting's figure, whether or not it is still shown
            accuracies[key] = accuracy

        def show_estimate(estimate: Estimate) -> None:
            state["estimate"] = estimate
            describe_accuracy()

        def show_accuracy(accuracy: float) -> None:
            state["accuracy"] = state["pruned_accuracy"] = accuracy
            draw_accuracy()

        tester.measure(measuring, work, show_estimate, show_accuracy, keep)

    def refresh(change=None) -> None:
        masks = compute_masks()
        toggled = change is not None and change.get("owner") is retrain_toggle
        changed = toggled or any(not torch.equal(masks[n], state["masks"][n]) for n in names)  # else only the view
        with measuring.showing:  # a background pass shows its figures after this redraw
            if changed:
                apply_setting(masks)
                progress.value = 0
                measure()  # first: in the background, the quick estimate runs while the sizes and figure are redrawn
                encode_layers()
            draw()

    def on_mode(change) -> None:
        sparsity_slider.layout.display = None if change["new"] == "sparsity" else "none"
        quality_slider.layout.display = None if change["new"] == "quality" else "none"
        refresh(change)

    def retrain(*_) -> None:
        if train_data is None:
            return
        measuring.wait()  # the shown setting's own figure first: retraining starts from it
        n_epochs = epochs.value
        steps_per_epoch = math.ceil(len(train_data) / 128)
        progress.max, progress.value = n_epochs * steps_per_epoch, 0
        controls = [mode, scope, layer_dd, sparsity_slider, quality_slider, retrain_toggle, epochs, retrain_button]
        for c in controls:
            c.disabled = True
        count = [0]
        start_epochs = state["retrained_epochs"]
        accuracies.clear()  # retraining changes the biases too, which the next settings keep

        def after_step(m: nn.Module) -> None:
            count[0] += 1
            if count[0] % 10 == 0 or count[0] == progress.max:
                progress.value = count[0]
            if count[0] % steps_per_epoch == 0:
                acc = evaluate(m, test_data)
                m.train()
                state["history"].append(acc)
                state["accuracy"] = acc
                state["retrained_epochs"] = start_epochs + count[0] // steps_per_epoch
                draw()

        try:
            with single_thread():
                prune_and_retrain(work, state["applied_masks"], train_data, n_epochs, RETRAIN_LR,
                                  after_step=after_step, progress=False, seed=start_epochs)
        finally:
            work.eval()
            for c in controls:
                c.disabled = (c is retrain_button and train_data is None) or (c is retrain_toggle and ladder is None)
        draw()

    apply_setting(compute_masks())
    encode_layers()
    tester.load(AccuracyPass.snapshot(work))  # the first answer at once: the figure is built complete from it
    state["accuracy"] = state["pruned_accuracy"] = accuracies[setting()] = tester.accuracy()
    figure = fig_prune_explorer(base[layer], state["masks"][layer], threshold(layer), edges[layer], baseline,
                                state["accuracy"], layer)
    if state["rung"]:  # complete before it is wrapped: a FigureWidget changed before the page connects renders empty
        figure.data[3].y = hist_counts(state["applied_weights"][layer][state["applied_masks"][layer]], edges[layer])
    fig = go.FigureWidget(figure)
    fig.add_class("dclab-prune-figure")
    state["threshold"] = threshold(layer)
    describe()
    describe_accuracy()

    mode.observe(on_mode, names="value")
    for control in (scope, layer_dd, sparsity_slider, quality_slider, retrain_toggle):
        control.observe(refresh, names="value")
    retrain_button.on_click(retrain)

    box = W.VBox([
        W.HBox([mode, scope]),
        W.HBox([sparsity_slider, quality_slider, layer_dd]),
        W.HBox([W.HTML("<b>weights</b>", layout=W.Layout(width="80px")), retrain_toggle]),
        accuracy_label,
        rung_label,
        size_label,
        fig,
        W.HBox([epochs, retrain_button, progress]),
    ])
    box.add_class("dclab-prune-explorer")
    box.mode, box.scope, box.layer, box.sparsity, box.quality = mode, scope, layer_dd, sparsity_slider, quality_slider
    box.epochs, box.retrain_button, box.progress = epochs, retrain_button, progress
    box.retrained, box.rung_label, box.ladder = retrain_toggle, rung_label, ladder
    box.figure, box.accuracy_label, box.size_label, box.state = fig, accuracy_label, size_label, state
    box.model, box.base_weights, box.edges = work, base, edges
    box.measuring, box.wait, box.retrain = measuring, measuring.wait, retrain
    release_freed_memory()  # what building the page freed (its first test pass, sorts), back to the system
    return box
