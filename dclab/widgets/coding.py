"""Notebook 04's pipeline widget: prune + quantize + Huffman-code a model live, sized in real ``.dcz`` bytes."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import ipywidgets as W
import plotly.graph_objects as go
from torch import nn

from dclab.data import Digits
from dclab.deprecation import renamed_keywords
from dclab.errors import DclabError
from dclab.memory import release_freed_memory
from dclab.models import TITLES
from dclab.pipeline import CompressionConfig, CompressionReport, arch_of
from dclab.pipeline.session import CompressionSession
from dclab.viz import style
from dclab.viz.coding import fig_pipeline, waterfall_values
from dclab.widgets.retraining import retrained_toggle, rung_html


@dataclass(frozen=True)
class PipelinePoint:
    """One setting of the widget, computed: the ``.dcz`` bytes (Huffman-coded), the report, the decoded error."""

    sparsity: float
    bits: int
    gap_bits: int
    dcz: bytes
    report: CompressionReport
    test_error: float
    rung: int = 0
    rung_label: str = "the dense baseline (not retrained)"

    @property
    def file_bytes(self) -> int:
        """Bytes of the Huffman-coded ``.dcz``."""
        return len(self.dcz)

    @property
    def fixed_bytes(self) -> int:
        """Bytes of the same model's ``.dcz`` written at fixed width (no Huffman)."""
        return self.report.stage_bytes["pruned + quantized"]

    @property
    def ratio(self) -> float:
        """Dense float32 bytes / ``.dcz`` bytes."""
        return self.report.dense_bytes / self.file_bytes


@renamed_keywords
def pipeline_config(sparsity: float, bits: int, gap_bits: int) -> CompressionConfig:
    """The widget's setting as an engine config: one sparsity, one bit width and one gap width for every layer."""
    return CompressionConfig(sparsity=float(sparsity), conv_bits=int(bits), fc_bits=int(bits),
                             conv_gap_bits=int(gap_bits), fc_gap_bits=int(gap_bits), huffman=True)


def _layer_rows(report: CompressionReport) -> list[dict]:
    return [layer.row() for layer in report.layers]


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


@renamed_keywords
def pipeline_widget(model: nn.Module, test_data: Digits, sparsity: float = 0.8, bits: int = 5,
                    gap_bits: int = 5, baseline_error: float | None = None,
                    retrained: bool | None = None) -> W.VBox:
    """Sparsity, bits and gap-bits sliders; the model's size through the stages in real ``.dcz`` bytes (notebook 04).

    Each setting prunes the network by magnitude, shares its weights by k-means and writes the
    ``.dcz`` with and without Huffman coding; the shown error is that of the weights the file holds,
    on all of ``test_data``. *retrained* answers on the nearest rung of the retrained ladder
    (``dclab.pipeline.ladder``), *not retrained* on ``model`` itself. ``retrained=None`` offers the
    ladder when ``model`` is the zoo's baseline with its ladder cached; True asks for it (climbed with a
    progress bar if need be); False never. The work is the capstone's ``CompressionSession`` (one engine;
    settings already seen come from its caches).

    Attributes for tests: ``sparsity``, ``bits``, ``gap_bits`` (sliders), ``retrained`` (toggle);
    ``rung_label`` (HTML);
    ``figure`` (FigureWidget); ``size_label``, ``fixed_label``, ``ratio_label``,
    ``error_label`` (HTML); ``point`` (the current ``PipelinePoint``).
    """
    if not 0 <= sparsity < 1:
        raise DclabError(f"sparsity must be in [0, 1) (the fraction of weights removed); got {sparsity!r}")
    arch = arch_of(model)
    # the capstone's engine: masks, codebooks, .dcz and accuracy, each cached (settings seen before are instant)
    session = CompressionSession(test_data, {arch: model}, ladders=retrained)
    net = session.network(arch)
    base_error = 1 - net.baseline_accuracy if baseline_error is None else float(baseline_error)
    has_ladder = session.has_ladder(arch)
    if has_ladder:
        session.ladder(arch)  # climbed now (retrained=True on an empty cache), not on the first move
    retrain = retrained_toggle(has_ladder)

    def point_for(s: float, b: int, ib: int) -> PipelinePoint:
        snap = session.compress(arch, pipeline_config(s, b, ib), retrained=bool(retrain.value))
        return PipelinePoint(float(s), int(b), int(ib), snap.dcz, snap.report, 1 - snap.accuracy,
                             snap.rung, snap.rung_label)

    slider_style = {"description_width": "110px"}
    sparsity_slider = W.FloatSlider(value=sparsity, min=0.0, max=0.99, step=0.01, description="sparsity",
                                    readout_format=".0%", continuous_update=False, style=slider_style,
                                    layout=W.Layout(width="420px"))
    sparsity_slider.add_class("dclab-pipeline-sparsity")
    bits_slider = W.IntSlider(value=bits, min=1, max=8, description="bits per weight", continuous_update=False,
                              style=slider_style, layout=W.Layout(width="420px"))
    bits_slider.add_class("dclab-pipeline-bits")
    gap_slider = W.IntSlider(value=gap_bits, min=2, max=10, description="bits per gap", continuous_update=False,
                             style=slider_style, layout=W.Layout(width="420px"))
    gap_slider.add_class("dclab-pipeline-gap-bits")

    size_label, fixed_label, ratio_label, error_label = W.HTML(), W.HTML(), W.HTML(), W.HTML()
    size_label.add_class("dclab-pipeline-size")
    fixed_label.add_class("dclab-pipeline-fixed-size")
    ratio_label.add_class("dclab-pipeline-ratio")
    error_label.add_class("dclab-pipeline-error")
    status = W.HTML()
    status.add_class("dclab-pipeline-status")
    rung_label = W.HTML()

    first = point_for(sparsity, bits, gap_bits)
    figure = go.FigureWidget(fig_pipeline(first.report.stage_bytes, _layer_rows(first.report)))

    def show_numbers(p: PipelinePoint) -> None:
        size_label.value = f'<span style="font-size:1.3em"><b>{p.file_bytes:,}</b> bytes</span> (.dcz, Huffman)'
        fixed_label.value = f"{p.fixed_bytes:,} bytes without Huffman"
        ratio_label.value = f'<span style="font-size:1.3em"><b>{p.ratio:.1f}x</b></span> smaller than fp32'
        how = "retrained" if p.rung else "no retraining"
        error_label.value = (f'test error <span style="font-size:1.3em"><b>{_pct(p.test_error)}</b></span> '
                             f"(baseline {_pct(base_error)}, {how})")
        rung_label.value = rung_html(p.rung, p.rung_label, has_ladder, asked=bool(retrain.value))

    def show(p: PipelinePoint) -> None:
        v = waterfall_values(p.report.stage_bytes)
        rows = _layer_rows(p.report)
        with figure.batch_update():
            figure.data[0].y = v["sizes"]
            figure.data[0].text = v["text"]
            figure.data[1].y = v["saved"]
            figure.data[1].base = v["sizes"]
            figure.layout.yaxis.range = v["range"]
            for k, (wkey, ikey) in enumerate((("weight bits P+Q", "gap bits P+Q"),
                                              ("weight bits +H", "gap bits +H"))):
                w = [float(r[wkey]) for r in rows]
                i = [float(r[ikey]) for r in rows]
                figure.data[2 + 2 * k].y = w
                figure.data[3 + 2 * k].y = i
                figure.data[3 + 2 * k].base = w
                figure.data[3 + 2 * k].text = [f"{a + b:.1f}" for a, b in zip(w, i)]
        show_numbers(p)

    box = W.VBox()

    def refresh(*_) -> None:
        status.value = f'<span style="color:{style.GREY}">compressing...</span>'
        try:
            p = point_for(sparsity_slider.value, bits_slider.value, gap_slider.value)
        except DclabError as exc:
            status.value = f'<span style="color:{style.ERROR}">{escape(str(exc))}</span>'
            return
        box.point = p
        show(p)
        status.value = ""

    for control in (sparsity_slider, bits_slider, gap_slider, retrain):
        control.observe(refresh, names="value")

    numbers = W.HBox([size_label, ratio_label, error_label],
                     layout=W.Layout(justify_content="space-between", width="100%"))
    box.children = [
        W.HTML(f"<b>{escape(TITLES.get(arch, arch))}</b>: prune every layer, share its weights in 2<sup>bits</sup> "
               "centroids, store gaps in a few bits, Huffman-code both; on the network retrained after "
               "pruning or not."),
        W.HBox([W.VBox([sparsity_slider, bits_slider, gap_slider]), W.VBox([retrain, fixed_label, status])]),
        numbers,
        rung_label,
        figure,
    ]
    box.add_class("dclab-pipeline-widget")
    box.sparsity, box.bits, box.gap_bits = sparsity_slider, bits_slider, gap_slider
    box.figure, box.size_label, box.fixed_label = figure, size_label, fixed_label
    box.ratio_label, box.error_label, box.status = ratio_label, error_label, status
    box.retrained, box.rung_label = retrain, rung_label
    box.point, box.baseline_error, box.session = first, base_error, session
    show_numbers(first)  # the figure was built from this point already
    release_freed_memory()  # what building the page freed (its first test pass, sorts), back to the system
    return box
