"""Notebook 01's energy calculator: reading a network's weights from DRAM or on-chip SRAM, before and after compression."""

from __future__ import annotations

import functools
from html import escape

import ipywidgets as W
import plotly.graph_objects as go
import torch

from dclab import hardware as hw
from dclab.errors import DclabError
from dclab.viz.hardware import (
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


@functools.lru_cache(maxsize=None)
def network_parameters(name: str) -> int:
    """Parameters of a reference network, counted on the real torch module (notebook 01).

    The LeNets come from ``dclab.models``, the ImageNet networks from torchvision
    (``weights=None``), built on the ``meta`` device: shapes only, no memory.
    """
    import torchvision

    from dclab import models

    builders = {
        "lenet300": models.LeNet300,
        "lenet5": models.LeNet5,
        "alexnet": lambda: torchvision.models.alexnet(weights=None),
        "vgg16": lambda: torchvision.models.vgg16(weights=None),
        "squeezenet": lambda: torchvision.models.squeezenet1_0(weights=None),
    }
    if name not in builders:
        raise DclabError(f"unknown network {name!r}; choose one of {', '.join(builders)}.")
    with torch.device("meta"):
        model = builders[name]()
    return sum(p.numel() for p in model.parameters())


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
