"""The capstone's figure: a layer's weights with the pruning cut and centroids, and the size waterfall (notebook 06).

One figure with two subplots (one FigureWidget on the page). ``fig_compression``
builds it complete; ``update_compression`` changes the same traces in one batch,
so a slider callback and the first drawing show the same data.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dclab.pipeline.session import LayerView
from dclab.viz import style

STAGE_LABELS = ("dense", "pruning", "quantization", "Huffman", ".dcz file")
"""The waterfall's bars: the dense size, the three savings, and the file."""


def fmt_kb(n_bytes: float) -> str:
    """Bytes as the papers write them: ``1,066.4 KB`` (1 KB = 1000 bytes)."""
    return f"{n_bytes / 1000:,.1f} KB"


def histogram_data(view: LayerView) -> list[dict]:
    """Trace updates for the histogram: kept bars, pruned bars, the cut at +-threshold, the centroids."""
    x = view.centers
    top = float(max((view.kept_counts + view.pruned_counts).max(), 1))
    cut = view.cut
    return [
        dict(x=x, y=view.kept_counts, width=view.width, name=f"kept ({1 - view.sparsity:.1%})"),
        dict(x=x, y=view.pruned_counts, width=view.width, name=f"pruned ({view.sparsity:.1%})"),
        dict(
            x=[-cut, -cut, None, cut, cut] if cut > 0 else [],
            y=[0, top * 1.05, None, 0, top * 1.05] if cut > 0 else [],
            name=f"pruning cut |w| < {cut:.3g}" if cut > 0 else "no pruning",
        ),
        dict(
            x=view.centroids,
            y=np.full(len(view.centroids), -0.04 * top),
            name=f"{len(view.centroids)} centroids ({view.bits} bits)",
        ),
    ]


def waterfall_data(stage_bytes: Mapping[str, int], file_bytes: int, huffman: bool) -> dict:
    """The waterfall trace: dense size, the bytes each stage saves, and the ``.dcz`` file's bytes."""
    dense = stage_bytes["dense"]
    pruned = stage_bytes["pruned"]
    quantized = stage_bytes["pruned + quantized"]
    coded = stage_bytes["+ Huffman"] if huffman else quantized
    steps = [dense, pruned - dense, quantized - pruned, coded - quantized, file_bytes]
    text = [
        fmt_kb(dense),
        f"{fmt_kb(pruned)} ({dense / pruned:.1f}x)",
        f"{fmt_kb(quantized)} ({dense / quantized:.1f}x)",
        f"{fmt_kb(coded)} ({dense / coded:.1f}x)" if huffman else "off",
        f"{file_bytes:,} bytes ({dense / file_bytes:.1f}x)",
    ]
    return dict(
        x=list(STAGE_LABELS),
        y=[s / 1000 for s in steps],
        text=text,
        measure=["absolute", "relative", "relative", "relative", "total"],
    )


def fig_compression(
    view: LayerView,
    stage_bytes: Mapping[str, int],
    file_bytes: int,
    huffman: bool = True,
) -> go.Figure:
    """The dashboard's figure, complete: histogram of ``view``'s layer and the size waterfall (notebook 06)."""
    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.56, 0.44], horizontal_spacing=0.1,
        subplot_titles=(_hist_title(view), "size of the model (real bytes)"),
    )
    hist = histogram_data(view)
    fig.add_trace(go.Bar(marker_color=style.KEPT, hovertemplate="%{y:,} kept at %{x:.3g}<extra></extra>",
                         **hist[0]), row=1, col=1)
    fig.add_trace(go.Bar(marker_color=style.REMOVED, hovertemplate="%{y:,} pruned at %{x:.3g}<extra></extra>",
                         **hist[1]), row=1, col=1)
    fig.add_trace(go.Scatter(mode="lines", line=dict(color=style.CUT, dash="dash", width=2),
                             hoverinfo="skip", **hist[2]), row=1, col=1)
    fig.add_trace(go.Scatter(mode="markers", marker=dict(symbol="triangle-up", size=9, color=style.CENTROID,
                                                         line=dict(width=0.5, color=style.BLACK)),
                             hovertemplate="centroid %{x:.4g}<extra></extra>", **hist[3]), row=1, col=1)
    fig.add_trace(go.Waterfall(
        textposition="outside", cliponaxis=False, showlegend=False, constraintext="none",
        textfont=dict(size=12),
        connector=dict(line=dict(color=style.GREY, width=1)),
        decreasing=dict(marker=dict(color=style.GREEN)),
        increasing=dict(marker=dict(color=style.VERMILLION)),
        totals=dict(marker=dict(color=style.BLUE)),
        hovertemplate="%{x}: %{text}<extra></extra>",
        **waterfall_data(stage_bytes, file_bytes, huffman),
    ), row=1, col=2)
    fig.update_layout(
        barmode="stack", bargap=0, width=1200, height=420, margin=dict(l=50, r=20, t=40, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=-0.28, x=0),
        template="plotly_white",
    )
    fig.update_xaxes(title_text="weight value", row=1, col=1)
    fig.update_yaxes(title_text="weights per bin", row=1, col=1)
    fig.update_yaxes(title_text="KB (log scale)", type="log", range=_waterfall_range(stage_bytes), row=1, col=2)
    return fig


def update_compression(
    fig: go.Figure,
    view: LayerView | None = None,
    stage_bytes: Mapping[str, int] | None = None,
    file_bytes: int | None = None,
    huffman: bool = True,
) -> None:
    """Change ``fig_compression``'s traces in one batch (a FigureWidget sends one message).

    A slider move changes trace data only; the layout changes only with the layer (the
    histogram's title) or the network (the waterfall's range), so plotly redraws less.
    """
    with fig.batch_update():
        if view is not None:
            for trace, data in zip(fig.data[:4], histogram_data(view)):
                trace.update(data)
            if fig.layout.annotations[0].text != _hist_title(view):
                fig.layout.annotations[0].text = _hist_title(view)
        if stage_bytes is not None and file_bytes is not None:
            fig.data[4].update(waterfall_data(stage_bytes, file_bytes, huffman))
            if tuple(fig.layout.yaxis2.range) != _waterfall_range(stage_bytes):
                fig.layout.yaxis2.range = _waterfall_range(stage_bytes)


def _hist_title(view: LayerView) -> str:
    return f"layer {view.name} ({view.kind}): weights, pruning cut, centroids"


def _waterfall_range(stage_bytes: Mapping[str, int]) -> tuple[float, float]:
    # log scale: the later stages save less in bytes but as much in ratio; fixed per network (1000x down)
    dense_kb = stage_bytes["dense"] / 1000
    return (math.log10(dense_kb / 1000), math.log10(dense_kb * 2.5))
