"""Notebook 01's widgets: the energy calculator (a network's weights read from DRAM or on-chip SRAM, before and after
compression) and the dense-vs-sparse timing, which runs when asked."""

from __future__ import annotations

import functools
import importlib.metadata
from html import escape

import ipywidgets as W
import plotly.graph_objects as go

from dclab import hardware as hw
from dclab.errors import DclabError
from dclab.lessons import store
from dclab.viz import style
from dclab.viz.hardware import (
    fig_sparse_timings,
    fig_weight_energy,
    fmt_bytes,
    fmt_energy,
    weight_energy_data,
)

NETWORKS = {
    "lenet300": "LeNet-300-100",
    "lenet5": "LeNet-5",
    "alexnet": "AlexNet",
    "vgg16": "VGG-16",
    "squeezenet": "SqueezeNet 1.0",
}
# Deep Compression's ratios (Table 1); SqueezeNet 4.8 MB -> 0.47 MB (Iandola et al. 2016)
PAPER_COMPRESSION = {"lenet300": 40.0, "lenet5": 39.0, "alexnet": 35.0, "vgg16": 49.0, "squeezenet": 10.2}
SRAM_SIZES_MB = [0.064, 0.128, 0.256, 0.512, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1000.0]

_WIDE = {"description_width": "initial"}


# the ImageNet networks of the calculator: torchvision's architectures (``dclab.models.reference``)
_REFERENCE_NAMES = {"alexnet": "alexnet", "vgg16": "vgg16", "squeezenet": "squeezenet1_0"}


@functools.lru_cache(maxsize=None)
def network_parameters(name: str) -> int:
    """Parameters of a reference network, counted on the real torch module (notebook 01).

    The LeNets are built from ``dclab.models``; the ImageNet networks are torchvision's
    (``reference_architecture``, on the meta device), counted once per torchvision version and
    kept by ``store.cached_result``: importing torchvision costs a kernel ~90 MB of its own memory,
    too much for three numbers a page reads again and again.
    """
    from dclab import models

    lenets = {"lenet300": models.LeNet300, "lenet5": models.LeNet5}
    if name in lenets:
        return models.count_parameters(lenets[name]())
    if name not in _REFERENCE_NAMES:
        raise DclabError(f"unknown network {name!r}; choose one of {', '.join([*lenets, *_REFERENCE_NAMES])}.")
    arch = _REFERENCE_NAMES[name]

    def count() -> dict:
        from dclab.models.reference import reference_architecture

        return {"parameters": models.count_parameters(reference_architecture(arch))}

    settings = {"architecture": arch, "torchvision": importlib.metadata.version("torchvision")}
    return int(store.cached_result("reference-parameters", settings, count)["parameters"])


def energy_summary_html(title: str, before: hw.WeightEnergy, after: hw.WeightEnergy, sram_bytes: float) -> str:
    """The calculator's sentence: sizes, where the weights live, energy before and after (notebook 01)."""
    where = lambda e: "on-chip SRAM" if e.fits_on_chip else "DRAM"  # noqa: E731
    return (
        f'<div class="dclab-energy-summary" style="font-size:1.05em;line-height:1.6">'
        f"<b>{escape(title)}</b>: {before.n_weights:,} weights = <b>{fmt_bytes(before.model_bytes)}</b> in fp32; "
        f"compressed {after.compression:.3g}x = <b>{fmt_bytes(after.model_bytes)}</b>. "
        f"On-chip SRAM: {fmt_bytes(sram_bytes)}.<br>"
        f"Reading every weight once per inference: fp32 from {where(before)} "
        f'<b class="dclab-energy-before">{fmt_energy(before.pj)}</b>, compressed from {where(after)} '
        f'<b class="dclab-energy-after">{fmt_energy(after.pj)}</b>: '
        f'<b class="dclab-energy-ratio">{before.pj / after.pj:,.0f}x</b> less energy '
        f"({after.compression:.3g}x fewer words{', each 128x cheaper' if after.fits_on_chip and not before.fits_on_chip else ''})."
        "</div>"
    )


def energy_calculator(network: str = "alexnet", sram_mb: float = 8.0) -> W.VBox:
    """Pick a network, a compression ratio and an SRAM size; see the energy of its weight reads (notebook 01).

    Attributes for tests: ``network``, ``compression``, ``sram_mb`` (controls; ``sram_mb``
    is a SelectionSlider over ``SRAM_SIZES_MB``), ``summary`` (HTML), ``fig`` (FigureWidget), ``before``/``after`` (``WeightEnergy``).
    """
    if network not in NETWORKS:
        raise DclabError(f"unknown network {network!r}; choose one of {', '.join(NETWORKS)}.")
    if not sram_mb > 0:
        raise DclabError(f"sram_mb is the on-chip memory in MB and must be > 0; got {sram_mb!r}.")
    picker = W.Dropdown(options=[(t, k) for k, t in NETWORKS.items()], value=network, description="network", style=_WIDE)
    # a linear slider on a 0.1 grid holds the papers' ratios exactly (a log slider's grid would move them)
    compression = W.FloatSlider(value=PAPER_COMPRESSION[network], min=1, max=100, step=0.1, description="compression", style=_WIDE,
                                readout_format=".1f", layout=W.Layout(width="420px"))
    sizes = sorted(set(SRAM_SIZES_MB) | {float(sram_mb)})
    sram = W.SelectionSlider(options=[(fmt_bytes(mb * 1e6), mb) for mb in sizes], value=float(sram_mb),
                             description="SRAM", style=_WIDE, layout=W.Layout(width="420px"))
    compression.add_class("dclab-energy-compression")
    sram.add_class("dclab-energy-sram")
    summary = W.HTML()

    def compute() -> tuple[hw.WeightEnergy, hw.WeightEnergy, float]:
        n = network_parameters(picker.value)
        sram_bytes = sram.value * 1e6
        return (hw.weight_fetch_energy(n, 1.0, sram_bytes), hw.weight_fetch_energy(n, compression.value, sram_bytes), sram_bytes)

    before, after, sram_bytes = compute()
    fig = go.FigureWidget(fig_weight_energy(before, after, sram_bytes, title=NETWORKS[network]))
    box = W.VBox([
        W.HBox([picker, W.HTML("<i>picking a network sets Deep Compression's ratio for it; drag to change</i>")]),
        W.HBox([compression, sram]),
        summary,
        fig,
    ])
    box.add_class("dclab-energy-calculator")
    box.network, box.compression, box.sram_mb, box.summary, box.fig = picker, compression, sram, summary, fig

    def show(before: hw.WeightEnergy, after: hw.WeightEnergy, sram_bytes: float) -> None:
        box.before, box.after = before, after
        summary.value = energy_summary_html(NETWORKS[picker.value], before, after, sram_bytes)

    def refresh(*_) -> None:
        before, after, sram_bytes = compute()
        show(before, after, sram_bytes)
        d = weight_energy_data(before, after, sram_bytes)
        with fig.batch_update():
            size, dram, sram_bar = fig.data
            size.x, dram.x, sram_bar.x = d["size_x"], d["groups"], d["groups"]
            size.y, size.text, size.marker.color = d["bytes"], d["bytes_text"], d["bytes_color"]
            dram.y, dram.text, dram.marker.opacity = d["dram"], d["dram_text"], d["dram_opacity"]
            sram_bar.y, sram_bar.text, sram_bar.marker.opacity = d["sram"], d["sram_text"], d["sram_opacity"]
            fig.layout.title.text = NETWORKS[picker.value]

    def on_network(change) -> None:
        compression.value = PAPER_COMPRESSION[change["new"]]  # refreshes if the ratio changes
        refresh()

    picker.observe(on_network, names="value")
    compression.observe(refresh, names="value")
    sram.observe(refresh, names="value")
    show(before, after, sram_bytes)  # the figure already shows these: leave it untouched until the browser connects
    return box


def sparse_timings_html(timings: list[hw.SparseTiming], measured: store.Measurement,
                        roofline: hw.Roofline | None = None) -> str:
    """What a timing of the pruned layer measured, in sentences built from its numbers, and where and when (notebook 01)."""
    lines = [hw.describe_sparse_timings([t for t in timings if t.batch_size == b])
             for b in sorted({t.batch_size for t in timings})]
    lines.append(f"By bytes, CSR reads less than dense only below {hw.csr_break_even_density(timings[0].shape):.0%} density.")
    first = min((t for t in timings if t.batch_size == min(t.batch_size for t in timings)), key=lambda t: -t.density)
    if roofline is not None:
        lines.append(hw.describe_weight_traffic(first, roofline))
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return (f'<ul class="dclab-sparse-lines" style="margin:4px 0">{items}</ul>'
            f'<div class="dclab-sparse-when" style="font-size:0.9em">Timings {escape(measured.label())}.</div>')


def sparse_timing_panel(roofline: hw.Roofline | None = None, seconds: float = 0.25) -> W.VBox:
    """"Does it run faster?": a pruned ip1, dense against CSR, timed on this machine when asked (notebook 01).

    Timing takes a few seconds (``store.measured_sparse_timings``: ``hardware.time_sparse_matvec`` at
    batch 1 and 1000), so it runs when the button is pressed, and the page opens without waiting for it.
    A timing made earlier on this machine is shown at once, with where and when it was made; pressing the
    button measures again. ``roofline`` adds the dense product's bandwidth beside the memory roof.

    Attributes for tests: ``button``, ``status`` and ``summary`` (HTML), ``timings`` (the records shown,
    or None), ``measured`` (their ``store.Measurement``), ``figure`` (the FigureWidget shown, or None).
    """
    button = W.Button(description="Time it on this machine (a few seconds)", button_style="primary",
                      layout=W.Layout(width="auto"))
    button.add_class("dclab-sparse-time")
    status = W.HTML()
    status.add_class("dclab-sparse-status")
    summary = W.HTML()
    summary.add_class("dclab-sparse-summary")
    box = W.VBox([W.HBox([button, status]), summary])
    box.add_class("dclab-sparse-timing")
    box.button, box.status, box.summary = button, status, summary
    box.timings, box.measured, box.figure = None, None, None

    def show(timings: list[hw.SparseTiming], measured: store.Measurement) -> None:
        box.timings, box.measured = timings, measured
        summary.value = sparse_timings_html(timings, measured, roofline)
        figure = fig_sparse_timings(timings)
        if box.figure is None:
            box.figure = go.FigureWidget(figure)  # built whole, then shown
            box.figure.add_class("dclab-sparse-figure")
            box.children = [box.children[0], summary, box.figure]
        else:  # redrawn in place: replacing the shown widget and closing it logged anywidget errors in the page
            with box.figure.batch_update():
                box.figure.update(figure.to_dict(), overwrite=True)
        button.description = "Time it again (a few seconds)"

    def on_click(_button: W.Button) -> None:
        button.disabled = True
        status.value = "<i>timing dense and CSR products on this machine...</i>"
        try:
            show(*store.measured_sparse_timings(seconds=seconds, refresh=True))
            status.value = ""
        except Exception as exc:
            status.value = f'<span style="color:{style.ERROR}">the timing failed: {escape(str(exc))}</span>'
            raise
        finally:
            button.disabled = False

    button.on_click(on_click)
    stored = store.measured_sparse_timings(seconds=seconds, stored_only=True)
    if stored is not None:
        show(*stored)
    else:
        status.value = "<i>not timed on this machine yet</i>"
    return box
