"""Notebook 06, the capstone: prune, share and Huffman-code a LeNet live, and download the real ``.dcz``.

Every number on the page is measured: the accuracy on the 10,000 test digits with
exactly the weights the ``.dcz`` stores, and the sizes as byte counts of that file.
Sliders send their value when released (``continuous_update=False``; one message per
arrow key press), and ``dclab.pipeline.session.CompressionSession`` redoes only what a change
touches: bits re-cluster without new masks, gap bits and Huffman re-encode without
evaluating, LeNet-5's fc layers re-evaluate from cached convolution outputs.
"""
from __future__ import annotations

import base64
import time
from html import escape

import ipywidgets as W
import plotly.graph_objects as go

from dclab import paper
from dclab.errors import DclabError
from dclab.memory import release_freed_memory
from dclab.pipeline import PAPER_SPARSITY, CompressionConfig
from dclab.pipeline.session import CompressionSession, Estimate, Snapshot
from dclab.viz import style
from dclab.viz.dashboard import fig_compression, fmt_kb, update_compression
from dclab.widgets.progressive import ProgressiveMeasure, estimate_note, failure_html
from dclab.widgets.retraining import retrained_toggle, rung_html

NETWORKS = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}
PAPER_RATIO = {arch: float(row.ratio) for arch, row in paper.TABLE1.items()}
"""Deep Compression, Table 1: LeNet-300-100 1070 KB -> 27 KB (40x), LeNet-5 1720 KB -> 44 KB (39x)."""


def _table2_total_row() -> dict[str, str]:
    """Deep Compression, Table 2's total row for LeNet-300-100, written as the paper prints it."""
    weights, kept, wb_pq, wb_pqh, ib_pq, ib_pqh, size_pq, size_pqh = paper.TABLE2["total"]
    return {
        "layer": "paper (total)", "weights": f"{weights // 1000}K", "density": f"{kept:.0%} ({int(1 / kept)}x)",
        "weight bits P+Q": f"{wb_pq:g}", "weight bits +H": f"{wb_pqh:g}", "gap bits P+Q": f"{ib_pq:g}",
        "gap bits +H": f"{ib_pqh:g}", "size P+Q": f"{size_pq:.1%} ({int(1 / size_pq)}x)",
        "size +H": f"{size_pqh:.2%} ({int(1 / size_pqh)}x)",
    }


PAPER_TABLE2_TOTAL = _table2_total_row()

PRUNING_MODES = {"sparsity": "sparsity", "quality": "quality x std", "paper": "paper's rates"}
DEFAULTS = {
    "conv_sparsity": 0.6, "fc_sparsity": 0.9, "conv_quality": 1.0, "fc_quality": 1.5,
    "conv_bits": paper.BITS["conv"], "fc_bits": paper.BITS["fc"],
    "conv_gap_bits": paper.GAP_BITS["conv"], "fc_gap_bits": paper.GAP_BITS["fc"],
}
INITS = ("linear", "density", "random")
_CELL = f"padding:2px 10px;text-align:right;border-bottom:1px solid {style.LIGHT_GREY}"


# ---------------------------------------------------------------- HTML pieces


def numbers_html(snap: Snapshot, previous: float | None = None, serial: int = 0,
                 estimate: Estimate | None = None) -> str:
    """The headline: test accuracy, file size and ratio beside the paper's (notebook 06).

    Before the snapshot's accuracy is measured, the ``previous`` one is shown greyed
    (``data-state="measuring"``), or the quick ``estimate`` on a stratified subset, marked as such with
    its standard error (``data-state="estimated"``); afterwards ``data-state="measured"``. ``serial``
    counts the page's updates (``data-serial``), so a test can tell answers apart.
    """
    title = NETWORKS.get(snap.network, snap.network)
    measured = snap.accuracy is not None
    accuracy = snap.accuracy if measured else previous
    tuned = " after fine-tuning" if snap.finetuned else ""
    if not measured and estimate is not None:
        acc_html = (f'<b class="dclab-accuracy-estimate" style="font-size:1.8em;color:{style.DARK_GREY}">'
                    f"~{100 * estimate.accuracy:.1f}%</b>")
        delta_html = (f' <span class="dclab-estimate-note" style="color:{style.DARK_GREY}">'
                      f"({estimate_note(estimate, 10_000)})</span>")
    elif accuracy is None:
        acc_html = f'<b class="dclab-accuracy" style="font-size:1.8em;color:{style.GREY}">...</b>'
        delta_html = ""
    else:
        delta = accuracy - snap.baseline_accuracy
        look = "font-size:1.8em" + ("" if measured else f";color:{style.GREY}")
        acc_html = f'<b class="dclab-accuracy" style="{look}">{100 * accuracy:.2f}%</b>'
        delta_html = (
            f' <span class="dclab-accuracy-delta" style="color:{style.ERROR if delta < -0.0005 else style.DARK_GREY}">'
            f"({100 * delta:+.2f} vs baseline "
            f'<span class="dclab-baseline-accuracy">{100 * snap.baseline_accuracy:.2f}%</span>)</span>'
        )
    state = "measured" if measured else ("estimated" if estimate is not None else "measuring")
    return (
        f'<div class="dclab-headline" data-state="{state}" data-serial="{serial}" '
        'style="display:flex;gap:36px;align-items:baseline;font-size:1.05em">'
        f"<div>test accuracy{tuned}<br>{acc_html}{delta_html}</div>"
        f'<div>.dcz file<br><b class="dclab-file-bytes" style="font-size:1.8em">{snap.file_bytes:,}</b> bytes'
        f' <span style="color:{style.DARK_GREY}">(dense {fmt_kb(snap.report.dense_bytes)})</span></div>'
        f'<div>compression<br><b class="dclab-ratio" style="font-size:1.8em">{snap.ratio:.1f}x</b>'
        f' <span style="color:{style.DARK_GREY}">paper: <b class="dclab-paper-ratio">{PAPER_RATIO.get(snap.network, 0):.0f}x</b>'
        f" for {escape(title)} (with retraining)</span></div>"
        "</div>"
        + rung_html(snap.rung, snap.rung_label)
    )


def opening_note(snap: Snapshot) -> str:
    """What the page opened on, beside the paper's own figure for the same network (notebook 06), from ``snap``."""
    title = NETWORKS.get(snap.network, snap.network)
    if snap.accuracy is None:
        raise DclabError("the snapshot's accuracy is not measured yet: call the dashboard's wait() first")
    delta = 100 * (snap.accuracy - snap.baseline_accuracy)
    line = (f"{title} opened on {snap.rung_label}: {snap.ratio:.1f}x ({snap.file_bytes:,} bytes) at "
            f"{snap.accuracy:.2%}, {delta:+.2f} points against this baseline's {snap.baseline_accuracy:.2%}.")
    row = paper.TABLE1.get(snap.network)
    if row is None:
        return line
    ours = 1 - snap.baseline_accuracy
    return (line + f" The paper's {row.ratio:g}x: {1 - row.error_after:.2%} against its baseline's "
            f"{1 - row.error_before:.2%} ({100 * (row.error_before - row.error_after):+.2f} points); that "
            f"baseline misread {row.error_before / ours:.1f} times as many test digits as this one.")


def timing_html(snap: Snapshot, total_s: float, serial: int = 0, sizes_s: float | None = None,
                sizes_cpu_s: float | None = None) -> str:
    """How long the last answer took, by step, and what came from the cache (``sizes_s``: until the
    figure and sizes were sent, before the test pass; ``sizes_cpu_s``: the kernel thread's CPU time for it)."""
    parts = ", ".join(f"{name} {1000 * sec:.0f} ms" for name, sec in snap.timings.items())
    reused = "; reused: " + ", ".join(snap.reused) if snap.reused else ""
    sizes = "" if sizes_s is None else f' data-sizes-ms="{1000 * sizes_s:.1f}"'
    if sizes_cpu_s is not None:
        sizes += f' data-sizes-cpu-ms="{1000 * sizes_cpu_s:.1f}"'
    return (f'<span class="dclab-timing" data-ms="{1000 * total_s:.1f}"{sizes} data-serial="{serial}" '
            f'style="color:{style.DARK_GREY};font-size:0.9em">answered in {1000 * total_s:.0f} ms ({parts}{escape(reused)})</span>')


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def layer_table_html(snap: Snapshot) -> str:
    """The per-layer table in the shape of Deep Compression's Table 2, measured from the ``.dcz`` (notebook 06)."""
    report = snap.report
    heads = ["layer", "weights", "kept after P (density)", "weight bits P+Q", "weight bits +H", "gap bits P+Q",
             "gap bits +H", "size P+Q", "size +H", "bytes +H"]
    rows = []
    for layer in report.layers:
        r = layer.row()
        rows.append((layer.name, [
            f"{r['weights']:,}", _pct(r["density"]), f"{r['weight bits P+Q']}", f"{r['weight bits +H']:.1f}",
            f"{r['gap bits P+Q']}", f"{r['gap bits +H']:.1f}", _pct(r["size P+Q"]), _pct(r["size +H"]),
            f"{r['bytes +H']:,}",
        ]))
    t = report.totals()
    rows.append(("total", [
        f"{t['weights']:,}", f"{_pct(t['density'])} ({1 / max(t['density'], 1e-9):.0f}x)", f"{t['weight bits P+Q']:.2g}",
        f"{t['weight bits +H']:.1f}", f"{t['gap bits P+Q']:.2g}", f"{t['gap bits +H']:.1f}",
        f"{_pct(t['size P+Q'])} ({1 / t['size P+Q']:.0f}x)", f"{_pct(t['size +H'])} ({1 / t['size +H']:.0f}x)",
        f"{t['bytes +H']:,}",
    ]))
    if snap.network == "lenet300":
        p = PAPER_TABLE2_TOTAL
        rows.append((p["layer"], [p[k] for k in ("weights", "density", "weight bits P+Q", "weight bits +H",
                                                 "gap bits P+Q", "gap bits +H", "size P+Q", "size +H")] + [""]))
    head = "".join(f'<th style="{_CELL}">{h}</th>' for h in heads)
    body = []
    for name, cells in rows:
        look = "font-weight:bold" if name == "total" else (f"color:{style.DARK_GREY};font-style:italic" if "paper" in name else "")
        tds = "".join(f'<td style="{_CELL}">{escape(c)}</td>' for c in cells)
        body.append(f'<tr data-layer="{escape(name)}" style="{look}"><td style="{_CELL};text-align:left">'
                    f"{escape(name)}</td>{tds}</tr>")
    note = ("sizes count codebooks, gaps and fillers; +H columns are what Huffman coding gives "
            "(the file uses it only when Huffman is on)")
    return (f'<table class="dclab-layer-table" style="border-collapse:collapse"><tr>{head}</tr>{"".join(body)}</table>'
            f'<div style="color:{style.DARK_GREY};font-size:0.9em">{note}</div>')


def download_html(snap: Snapshot) -> str:
    """A link that saves the current ``.dcz`` (a data: URL; ipywidgets has no download widget)."""
    b64 = base64.b64encode(snap.dcz).decode("ascii")
    tuned = "-finetuned" if snap.finetuned else ""
    name = f"{snap.network}{tuned}.dcz"
    return (
        f'<a class="dclab-download" download="{name}" href="data:application/octet-stream;base64,{b64}" '
        f'style="display:inline-block;padding:4px 12px;border:1px solid {style.BLUE};border-radius:4px;'
        f'text-decoration:none;color:{style.BLUE}">download {name} ({snap.file_bytes:,} bytes)</a>'
    )


# ---------------------------------------------------------------- the dashboard


def compression_dashboard(
    session: CompressionSession | None = None,
    network: str = "lenet300",
    pruning: str = "paper",
    finetune_digits: int | None = None,
    finetune_epochs: int = 1,
    preload: bool = True,
    progressive: bool | None = None,
) -> W.VBox:
    """The Deep Compression dashboard: pick a LeNet, prune, quantize, Huffman-code, fine-tune, download (notebook 06).

    ``session`` holds the trained baselines and caches (one is made if omitted; the
    baselines come from ``dclab.zoo.pretrained``). ``pruning`` starts the page at
    ``"paper"`` (the papers' per-layer rates), ``"sparsity"`` or ``"quality"``.
    ``finetune_digits`` limits the training digits a fine-tuning epoch uses (default:
    all 60,000). ``preload`` prepares the other network in the background once the
    page is built, so switching to it answers at once. ``progressive`` (default: inside a running kernel,
    as under Voila) measures the accuracy in the background: a move made while a test pass runs stops
    that pass and measures the new setting instead, so ten quick key presses end on the last one's
    figure. Either way a quick estimate on 1,000 stratified digits is shown first when the full pass is
    not cached, then replaced by the full figure.

    Attributes for tests: ``network``, ``pruning``, ``conv_sparsity``, ``fc_sparsity``,
    ``conv_quality``, ``fc_quality``, ``conv_bits``, ``fc_bits``, ``conv_gap_bits``,
    ``fc_gap_bits``, ``huffman``, ``init``, ``layer``, ``epochs``, ``retrained`` (controls; ``retrained``
    answers on the nearest rung of the retrained ladder, ``dclab.pipeline.ladder``, when the session has one);
    ``finetune_button``, ``progress``; ``numbers``, ``table``, ``download``, ``status``
    (HTML); ``fig`` (FigureWidget); ``snapshot`` (the current ``Snapshot``: accuracy,
    ``.dcz`` bytes, report); ``timings`` (seconds of the last update, by step); ``measuring``
    (``dclab.widgets.progressive.ProgressiveMeasure``: ``serial``, ``superseded``); ``wait()``.
    """
    if network not in NETWORKS:
        raise DclabError(f"unknown network {network!r}; choose one of {', '.join(NETWORKS)}")
    if pruning not in PRUNING_MODES:
        raise DclabError(f"pruning must be one of {', '.join(PRUNING_MODES)}, not {pruning!r}")
    session = session or CompressionSession()

    def slider(kind: str, key: str, cls: type = W.FloatSlider, **kw) -> W.Widget:
        s = cls(value=DEFAULTS[key], continuous_update=False, description=kind,
                layout=W.Layout(width="300px"), style={"description_width": "40px"}, **kw)
        s.add_class(f"dclab-{key.replace('_', '-')}")
        return s

    picker = W.ToggleButtons(options=[(t, k) for k, t in NETWORKS.items()], value=network,
                             style={"button_width": "130px"})
    picker.add_class("dclab-network")
    mode = W.ToggleButtons(options=[(t, k) for k, t in PRUNING_MODES.items()], value=pruning,
                           style={"button_width": "110px"})
    mode.add_class("dclab-pruning-mode")
    conv_sparsity = slider("conv", "conv_sparsity", min=0.0, max=0.99, step=0.01, readout_format=".2f")
    fc_sparsity = slider("fc", "fc_sparsity", min=0.0, max=0.99, step=0.01, readout_format=".2f")
    conv_quality = slider("conv", "conv_quality", min=0.0, max=3.0, step=0.05, readout_format=".2f")
    fc_quality = slider("fc", "fc_quality", min=0.0, max=3.0, step=0.05, readout_format=".2f")
    conv_bits = slider("conv", "conv_bits", W.IntSlider, min=1, max=8)
    fc_bits = slider("fc", "fc_bits", W.IntSlider, min=1, max=8)
    conv_gap_bits = slider("conv", "conv_gap_bits", W.IntSlider, min=1, max=12)
    fc_gap_bits = slider("fc", "fc_gap_bits", W.IntSlider, min=1, max=12)
    huffman = W.Checkbox(value=True, description="Huffman coding", indent=False)
    huffman.add_class("dclab-huffman")
    retrain = retrained_toggle(True)
    retrain.value = session.has_ladder(network)
    init = W.ToggleButtons(options=list(INITS), value="linear", style={"button_width": "70px"})
    init.add_class("dclab-init")
    layer = W.Dropdown(description="layer", layout=W.Layout(width="200px"), style={"description_width": "40px"})
    layer.add_class("dclab-layer")
    epochs = W.IntSlider(value=finetune_epochs, min=1, max=5, description="epochs", continuous_update=False,
                         layout=W.Layout(width="240px"), style={"description_width": "50px"})
    finetune_button = W.Button(description="fine-tune", icon="play", button_style="primary",
                               tooltip="retrain the centroids (trained quantization), masks kept")
    finetune_button.add_class("dclab-finetune")
    progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="260px", visibility="hidden"))
    progress.add_class("dclab-finetune-progress")
    status = W.HTML()
    status.add_class("dclab-status")
    numbers = W.HTML()
    numbers.add_class("dclab-numbers")
    table = W.HTML()
    table.add_class("dclab-table")
    download = W.HTML()
    download.add_class("dclab-download-box")

    sparsity_row = W.HBox([W.HTML("<b>prune</b> (fraction removed)", layout=W.Layout(width="190px")),
                           conv_sparsity, fc_sparsity])
    quality_row = W.HBox([W.HTML("<b>prune</b> |w| &lt; quality x std", layout=W.Layout(width="190px")),
                          conv_quality, fc_quality])
    paper_row = W.HTML()
    controls = W.VBox([
        W.HBox([W.HTML("<b>network</b>", layout=W.Layout(width="80px")), picker,
                W.HTML("<b>pruning by</b>", layout=W.Layout(width="90px", margin="0 0 0 20px")), mode]),
        W.HBox([W.HTML("<b>weights</b>", layout=W.Layout(width="80px")), retrain]),
        sparsity_row, quality_row, paper_row,
        W.HBox([W.HTML("<b>bits</b> per weight index", layout=W.Layout(width="190px")), conv_bits, fc_bits]),
        W.HBox([W.HTML("<b>gap bits</b> per gap", layout=W.Layout(width="190px")), conv_gap_bits, fc_gap_bits]),
        W.HBox([huffman, W.HTML("<b>centroid init</b>", layout=W.Layout(margin="0 8px 0 30px")), init]),
    ])
    controls.add_class("dclab-controls")

    def config() -> CompressionConfig:
        if mode.value == "paper":
            amount: dict = {"sparsity": dict(PAPER_SPARSITY[picker.value])}
        elif mode.value == "quality":
            amount = {"quality": _by_kind(session, picker.value, conv_quality.value, fc_quality.value)}
        else:
            amount = {"sparsity": _by_kind(session, picker.value, conv_sparsity.value, fc_sparsity.value)}
        return CompressionConfig(
            conv_bits=conv_bits.value, fc_bits=fc_bits.value, conv_gap_bits=conv_gap_bits.value,
            fc_gap_bits=fc_gap_bits.value, init=init.value, huffman=huffman.value, **amount,
        )

    # the first answer, then the figure built complete from it (a preheated kernel runs this before
    # the page connects, and a FigureWidget changed before that renders empty)
    def retrained() -> bool:
        return bool(retrain.value) and session.has_ladder(picker.value)

    snap = session.compress(picker.value, config(), retrained=retrained())
    layers = list(session.network(picker.value).layers)
    layer.options, layer.value = layers, layers[0]
    view = session.view(snap, layer.value)
    fig = go.FigureWidget(fig_compression(view, snap.report.stage_bytes, snap.file_bytes, snap.config.huffman))
    fig.add_class("dclab-figure")

    box = W.VBox([
        W.HTML("<h3 style='margin:4px 0'>Deep Compression, live: prune, share weights, Huffman-code</h3>"),
        controls,
        status,
        numbers,
        layer,
        fig,
        W.HTML("<b>Per layer</b> (the shape of Deep Compression's Table 2, measured from the file)"),
        table,
        W.HBox([epochs, finetune_button, progress], layout=W.Layout(align_items="center")),
        download,
    ])
    box.add_class("dclab-dashboard")
    box.session = session
    box.network, box.pruning = picker, mode
    box.conv_sparsity, box.fc_sparsity, box.conv_quality, box.fc_quality = conv_sparsity, fc_sparsity, conv_quality, fc_quality
    box.conv_bits, box.fc_bits, box.conv_gap_bits, box.fc_gap_bits = conv_bits, fc_bits, conv_gap_bits, fc_gap_bits
    box.huffman, box.init, box.layer, box.epochs = huffman, init, layer, epochs
    box.retrained = retrain
    box.finetune_button, box.progress, box.status = finetune_button, progress, status
    box.numbers, box.table, box.download, box.fig = numbers, table, download, fig
    box.config = config
    box.snapshot = None
    box.timings, box.cpu_timings = {}, {}
    state = {"quiet": False}
    measuring = ProgressiveMeasure(progressive)  # background in a live kernel (Jupyter, Voila)
    box.measuring = measuring
    measuring.on_error = lambda exc: setattr(status, "value", failure_html(exc))

    def show_controls() -> None:
        has_conv = any(k == "conv" for k in session.network(picker.value).kinds.values())
        retrain.disabled = not session.has_ladder(picker.value)
        for s in (conv_sparsity, conv_quality, conv_bits, conv_gap_bits):
            s.disabled = not has_conv
        sparsity_row.layout.display = None if mode.value == "sparsity" else "none"
        quality_row.layout.display = None if mode.value == "quality" else "none"
        paper_row.layout.display = None if mode.value == "paper" else "none"
        rates = ", ".join(f"{n} {s:.0%}" for n, s in PAPER_SPARSITY[picker.value].items())
        paper_row.value = f"<b>prune</b> as the papers did, per layer: {rates} removed"

    def show(snap: Snapshot, figure: bool = True) -> None:
        """Sizes first (figure, numbers, table), then what needs the accuracy (numbers, download)."""
        previous = box.snapshot.accuracy if box.snapshot is not None else None
        box.snapshot = snap
        if figure:
            update_compression(fig, session.view(snap, layer.value), snap.report.stage_bytes, snap.file_bytes,
                               snap.config.huffman)
        numbers.value = numbers_html(snap, previous, measuring.serial)
        table.value = layer_table_html(snap)

    def show_measured(snap: Snapshot) -> None:
        box.snapshot = snap
        numbers.value = numbers_html(snap, serial=measuring.serial)
        download.value = download_html(snap)

    def measure(stale, snap: Snapshot, serial: int, start: float, shown_s: float, sizes_s: float,
                sizes_cpu_s: float) -> None:
        """The quick estimate (when the full pass is not cached), then the full figure; a newer move stops it
        (``Superseded``, raised between batches, drops the pass)."""
        if not session.measured(snap):
            html = numbers_html(snap, serial=serial, estimate=session.estimate(snap))
            measuring.show(stale, lambda: setattr(numbers, "value", html))
        measured = session.evaluate(snap, cancelled=stale)

        def update() -> None:
            t = time.perf_counter()
            show_measured(measured)
            box.timings = dict(measured.timings, show=shown_s + time.perf_counter() - t)
            box.timings["sizes shown"] = sizes_s
            box.cpu_timings = {"sizes shown": sizes_cpu_s}
            box.timings["total"] = time.perf_counter() - start
            status.value = timing_html(measured, box.timings["total"], serial, sizes_s, sizes_cpu_s)

        measuring.show(stale, update)

    def refresh(*_) -> None:
        if state["quiet"]:
            return
        serial = measuring.move()
        start, cpu_start = time.perf_counter(), time.thread_time()
        try:
            snap = session.compress(picker.value, config(), evaluate=False, retrained=retrained())
        except DclabError as exc:
            status.value = f'<span style="color:{style.ERROR}">{escape(str(exc))}</span>'
            return
        t = time.perf_counter()
        with measuring.showing:
            show(snap)  # the page redraws its sizes before the test pass
        shown_s = time.perf_counter() - t
        sizes_s, sizes_cpu_s = time.perf_counter() - start, time.thread_time() - cpu_start
        measuring.start(lambda stale: measure(stale, snap, serial, start, shown_s, sizes_s, sizes_cpu_s))

    def wait() -> None:
        """Until the accuracy of the last move is shown (background measuring)."""
        measuring.wait()

    def on_network(change) -> None:
        status.value = f"<i>loading {escape(NETWORKS[change['new']])} (baseline, sorted weights, test pass)...</i>"
        names = list(session.network(change["new"]).layers)
        state["quiet"] = True
        layer.options, layer.value = names, names[0]
        state["quiet"] = False
        show_controls()
        refresh()

    def on_mode(change) -> None:
        show_controls()
        refresh()

    def on_layer(change) -> None:
        if state["quiet"] or change["new"] is None:
            return
        update_compression(fig, session.view(box.snapshot, change["new"]))

    def on_finetune(_) -> None:
        wait()
        base = box.snapshot
        widgets = [picker, mode, retrain, conv_sparsity, fc_sparsity, conv_quality, fc_quality, conv_bits, fc_bits,
                   conv_gap_bits, fc_gap_bits, huffman, init, epochs, finetune_button]
        was = {id(w): w.disabled for w in widgets}
        for w in widgets:
            w.disabled = True
        progress.value, progress.layout.visibility = 0, "visible"
        lines = [f"before: {100 * base.accuracy:.2f}%"]
        status.value = "<i>fine-tuning the centroids...</i>"
        data = session.train_data if finetune_digits is None else session.train_data.subset(finetune_digits)

        def on_step(step: int, total: int) -> None:
            if step == 1:
                progress.max = total
            if step % max(1, total // 100) == 0 or step == total:
                progress.value = step

        def on_epoch(epoch: int, accuracy: float) -> None:
            lines.append(f"epoch {epoch}: {100 * accuracy:.2f}%")
            status.value = '<span class="dclab-finetune-log">' + " &rarr; ".join(lines) + "</span>"

        try:
            tuned = session.finetune(base, epochs.value, train_data=data, on_step=on_step, on_epoch=on_epoch)
            measuring.move()
            show(tuned)
            show_measured(tuned)
            status.value = ('<span class="dclab-finetune-log">fine-tuned (trained quantization, masks kept): '
                            + " &rarr; ".join(lines) + "</span>")
        finally:
            for w in widgets:
                w.disabled = was[id(w)]
            progress.layout.visibility = "hidden"

    picker.observe(on_network, names="value")
    mode.observe(on_mode, names="value")
    layer.observe(on_layer, names="value")
    for w in (retrain, conv_sparsity, fc_sparsity, conv_quality, fc_quality, conv_bits, fc_bits, conv_gap_bits,
              fc_gap_bits, huffman, init):
        w.observe(refresh, names="value")
    finetune_button.on_click(on_finetune)
    box.refresh, box.wait = refresh, wait
    box.finetune = lambda: on_finetune(None)
    show_controls()
    show(snap, figure=False)
    show_measured(snap)
    if preload:
        session.preload(*[n for n in NETWORKS if n != picker.value])
    release_freed_memory()  # what building the page freed (its first test pass, sorts), back to the system
    return box


def _by_kind(session: CompressionSession, network: str, conv: float, fc: float) -> dict[str, float]:
    """One value per layer: ``conv`` for convolutions, ``fc`` for fully connected layers."""
    kinds = session.network(network).kinds
    return {name: conv if kind == "conv" else fc for name, kind in kinds.items()}

