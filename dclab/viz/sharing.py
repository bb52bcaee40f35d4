"""Figures for notebook 03 (weight sharing): clusters and codebooks, accuracy vs bits, Figure 6 of Deep Compression."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from dclab.algorithms.quantize import Codebook
from dclab.viz import style
from dclab.viz.pruning import BEFORE, hist_counts, histogram_edges

PALETTE = list(style.SERIES)  # clusters, in order of their centroid (cycling beyond eight)
CENTROID = style.CENTROID
METHODS = {  # Figure 6's four curves: key, label, colour, marker
    "pruning+quantization": ("pruning + quantization", style.VERMILLION, "circle"),
    "pruning": ("pruning only", style.BLUE, "square"),
    "quantization": ("quantization only", style.GREEN, "diamond"),
    "svd": ("SVD (low rank)", style.PURPLE, "triangle-up"),
}


def centroid_lines(centroids: torch.Tensor | np.ndarray, height: float) -> tuple[list, list]:
    """x, y of one vertical line per centroid, as a single trace (None between lines) (notebook 03)."""
    xs, ys = [], []
    for c in np.asarray(centroids, dtype=float).ravel():
        xs += [c, c, None]
        ys += [0, height, None]
    return xs, ys


def centroid_counts(codebook: Codebook) -> np.ndarray:
    """How many weights share each centroid (the symbol counts Huffman coding uses next)."""
    return np.bincount(codebook.indices.reshape(-1).cpu().numpy(), minlength=codebook.n_clusters)


def _bin_colors(edges: np.ndarray, centroids: np.ndarray) -> list[str]:
    centers = (edges[1:] + edges[:-1]) / 2
    cluster = np.searchsorted((centroids[1:] + centroids[:-1]) / 2, centers)
    return [PALETTE[int(c) % len(PALETTE)] for c in cluster]


def fig_bit_explorer(w: torch.Tensor, codebook: Codebook, edges: np.ndarray, layer: str = "") -> go.Figure:
    """The bit-width widget's figure: weights with centroid lines, and weights per shared value (notebook 03).

    Traces (a widget updates them in place): 0 weight histogram, 1 centroid lines,
    2 weights per centroid.
    """
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.08,
                        subplot_titles=(f"{layer}: weights and the {codebook.n_clusters} shared values",
                                        "weights sharing each value"))
    counts = hist_counts(w, edges)
    centers = (edges[1:] + edges[:-1]) / 2
    fig.add_trace(go.Bar(x=centers, y=counts, width=np.diff(edges), marker_color=BEFORE, marker_line_width=0,
                         name="weights", hovertemplate="w ~ %{x:.3f}: %{y} weights<extra></extra>"), row=1, col=1)
    x, y = centroid_lines(codebook.centroids, float(counts.max()))
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=CENTROID, width=1.5), name="centroids",
                             hoverinfo="skip"), row=1, col=1)
    c = codebook.centroids.numpy()
    fig.add_trace(go.Bar(x=c, y=centroid_counts(codebook), marker_color=CENTROID, name="per centroid",
                         customdata=np.arange(len(c)),
                         hovertemplate="index %{customdata}: %{x:.4f}, %{y} weights<extra></extra>"), row=1, col=2)
    fig.update_xaxes(title_text="weight", row=1, col=1)
    fig.update_xaxes(title_text="shared value (centroid)", matches="x", row=1, col=2)
    fig.update_yaxes(title_text="weights", row=1, col=1)
    fig.update_layout(template="plotly_white", height=380, bargap=0, showlegend=False,
                      margin=dict(t=40, b=40, l=60, r=20))
    return fig


def fig_clusters(w: torch.Tensor, codebook: Codebook, layer: str = "", n_points: int = 4000) -> go.Figure:
    """Steps 1-3 on a real layer: clusters as coloured intervals, each weight mapped to its centroid (notebook 03)."""
    c = codebook.centroids.numpy().astype(float)
    edges = histogram_edges(w, 121, margin=1.02)
    counts = hist_counts(w, edges)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=(f"1-2. {layer}: {codebook.n_clusters} clusters and their centroids",
                                        "3. each weight replaced by its centroid"))
    centers = (edges[1:] + edges[:-1]) / 2
    fig.add_trace(go.Bar(x=centers, y=counts, width=np.diff(edges), marker_color=_bin_colors(edges, c),
                         marker_line_width=0, hovertemplate="w ~ %{x:.3f}: %{y} weights<extra></extra>"),
                  row=1, col=1)
    x, y = centroid_lines(c, float(counts.max()))
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=style.BLACK, dash="dot", width=1),
                             hoverinfo="skip"), row=1, col=1)
    flat = w.detach().reshape(-1)
    pick = torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(0))[:n_points]
    idx = codebook.indices.reshape(-1)[pick]
    fig.add_trace(go.Scatter(x=flat[pick].numpy(), y=codebook.centroids[idx].numpy(), mode="markers",
                             marker=dict(size=4, color=[PALETTE[int(i) % len(PALETTE)] for i in idx]),
                             hovertemplate="w %{x:.4f} -> %{y:.4f}<extra></extra>"), row=1, col=2)
    lim = [float(edges[0]), float(edges[-1])]
    fig.add_trace(go.Scatter(x=lim, y=lim, mode="lines", line=dict(color=style.LIGHT_GREY, dash="dash"), hoverinfo="skip"),
                  row=1, col=2)
    fig.update_xaxes(title_text="weight")
    fig.update_yaxes(title_text="weights", row=1, col=1)
    fig.update_yaxes(title_text="shared weight (centroid)", row=1, col=2)
    fig.update_layout(template="plotly_white", height=380, bargap=0, showlegend=False,
                      margin=dict(t=40, b=40, l=60, r=20))
    return fig


def fig_paper_example(ex: Mapping) -> go.Figure:
    """Deep Compression's Figure 3 computed by dclab: weights, indices, gradients, grouped update (notebook 03)."""
    idx = ex["indices"].numpy()
    k = int(ex["k"])
    colorscale = [[i / max(k - 1, 1), PALETTE[i]] for i in range(k)]
    fig = make_subplots(rows=1, cols=4, horizontal_spacing=0.04, column_widths=[0.22, 0.22, 0.22, 0.34],
                        specs=[[{"type": "heatmap"}] * 3 + [{"type": "table"}]],
                        subplot_titles=("weights (32-bit float)", "cluster index (2-bit uint)", "gradient",
                                        "centroids: grouped gradient, update"))

    def grid(values: np.ndarray, text_fmt: str, col: int) -> None:
        text = [[format(v, text_fmt) for v in row] for row in values]
        fig.add_trace(go.Heatmap(z=idx, text=text, texttemplate="%{text}", textfont=dict(size=15, color=style.WHITE),
                                 colorscale=colorscale, zmin=0, zmax=k - 1, showscale=False, xgap=3, ygap=3,
                                 hoverinfo="skip"), row=1, col=col)

    grid(ex["weights"].numpy(), ".2f", 1)
    grid(idx, "d", 2)
    grid(ex["gradients"].numpy(), "+.2f", 3)
    c, g, f = ex["centroids"].numpy(), ex["grouped_gradients"].numpy(), ex["fine_tuned"].numpy()
    order = np.argsort(-c)
    fig.add_trace(go.Table(
        header=dict(values=["index", "centroid", "sum of gradients", f"centroid - {ex['lr']:g} x sum"],
                    fill_color=style.LIGHT_GREY, align="center"),
        cells=dict(values=[[str(i) for i in order], [f"{c[i]:.2f}" for i in order], [f"{g[i]:+.2f}" for i in order],
                           [f"{f[i]:.2f}" for i in order]],
                   fill_color=[[PALETTE[i] for i in order], style.WHITE, style.WHITE, style.WHITE],
                   font=dict(color=[[style.WHITE] * k, style.BLACK, style.BLACK, style.BLACK], size=14), align="center", height=30),
    ), row=1, col=4)
    for col in (1, 2, 3):
        fig.update_xaxes(visible=False, row=1, col=col)
        fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=f"x{col}", row=1, col=col)
    fig.update_layout(template="plotly_white", height=350, margin=dict(t=90, b=10, l=10, r=10),
                      title=(f"n = {ex['n']} weights of b = {ex['b']} bits, k = {k} clusters: "
                             f"r = n*b / (n*log2(k) + k*b) = {ex['ratio']:.1f}"))
    return fig


def fig_accuracy_vs_bits(res: Mapping, title: str = "LeNet-5") -> go.Figure:
    """Test accuracy vs bits per weight, conv layers and fc layers quantized separately (notebook 03)."""
    fig = go.Figure()
    names = {"conv": "conv layers quantized (fc in fp32)", "fc": "fc layers quantized (conv in fp32)"}
    for i, kind in enumerate(k for k in ("conv", "fc") if k in res):
        fig.add_trace(go.Scatter(x=res["bits"], y=[100 * a for a in res[kind]], mode="lines+markers",
                                 name=names[kind], line=dict(color=PALETTE[i]),
                                 hovertemplate="%{x} bits: %{y:.2f}%<extra>" + kind + "</extra>"))
    fig.add_hline(y=100 * res["baseline"], line=dict(color=style.GREY, dash="dot"),
                  annotation_text=f"fp32 {100 * res['baseline']:.2f}%", annotation_position="bottom right")
    low = min(100 * a for k in ("conv", "fc") if k in res for a in res[k])
    fig.update_layout(template="plotly_white", height=400,
                      title=f"{title}: accuracy vs bits per weight (k-means weight sharing, no retraining)",
                      xaxis=dict(title="bits per weight (2**bits shared values)", dtick=1),
                      yaxis=dict(title="test accuracy (%)", range=[max(0, low - 3), 100.5]),
                      legend=dict(x=0.45, y=0.1))
    return fig


def fig_init_comparison(res: Mapping, title: str = "LeNet-300-100", min_bits: int = 2) -> go.Figure:
    """Linear, density and random initialization: accuracy, k-means error, one layer's codebooks (notebook 03).

    The third panel is Deep Compression's Figure 4 on a real layer: the weights' CDF
    with each method's initial centroids (crosses) and the centroids k-means ends at (dots).
    """
    lay = res["layer"]
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.07, column_widths=[0.3, 0.3, 0.4],
                        subplot_titles=("accuracy loss, every layer shared", "k-means error (sum of squares)",
                                        f"{lay['name']}, {2 ** lay['bits']} centroids on the weights' CDF"))
    keep = [i for i, b in enumerate(res["bits"]) if b >= min_bits]
    bits = [res["bits"][i] for i in keep]
    cdf_x, cdf_y = np.asarray(lay["cdf_x"]), np.asarray(lay["cdf_y"])
    fig.add_trace(go.Scatter(x=cdf_x, y=cdf_y, mode="lines", line=dict(color=BEFORE, width=2), name="CDF",
                             showlegend=False, hoverinfo="skip"), row=1, col=3)
    for i, init in enumerate(res["accuracy"]):
        color = PALETTE[i]
        loss = [100 * (res["baseline"] - res["accuracy"][init][j]) for j in keep]
        fig.add_trace(go.Scatter(x=bits, y=loss, mode="lines+markers", name=init, legendgroup=init,
                                 line=dict(color=color),
                                 hovertemplate="%{x} bits: %{y:+.2f} points<extra>" + init + "</extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=bits, y=[res["sse"][init][j] for j in keep], mode="lines+markers", name=init,
                                 legendgroup=init, showlegend=False, line=dict(color=color),
                                 hovertemplate="%{x} bits: %{y:.3g}<extra>" + init + "</extra>"), row=1, col=2)
        for which, symbol, shift in (("initial", "x", 0.03), ("final", "circle", -0.03)):
            c = np.asarray(lay[which][init])
            fig.add_trace(go.Scatter(x=c, y=np.interp(c, cdf_x, cdf_y) + shift * (i - 1), mode="markers",
                                     marker=dict(color=color, symbol=symbol, size=7), legendgroup=init,
                                     showlegend=False, name=f"{init} {which}",
                                     hovertemplate=f"{init}, {which}: " + "%{x:.4f}<extra></extra>"), row=1, col=3)
    fig.update_xaxes(title_text="bits per weight", dtick=1, row=1, col=1)
    fig.update_xaxes(title_text="bits per weight", dtick=1, row=1, col=2)
    fig.update_xaxes(title_text="weight value", row=1, col=3)
    fig.update_yaxes(title_text="points lost", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_yaxes(title_text="fraction of weights below", row=1, col=3)
    fig.update_layout(template="plotly_white", height=400, legend=dict(title="initialization"),
                      title=f"{title}: centroid initialization compared (x: initial centroids, o: after k-means)")
    return fig


def fig_compression_tradeoff(res: Mapping, title: str = "LeNet-300-100") -> go.Figure:
    """Accuracy loss vs compressed size for P+Q, P, Q and SVD: Deep Compression's Figure 6 (notebook 03)."""
    fig = go.Figure()
    for key, (label, color, symbol) in METHODS.items():
        pts = sorted(res.get(key, []), key=lambda p: p["bytes"])
        fig.add_trace(go.Scatter(
            x=[100 * p["bytes"] / res["dense_bytes"] for p in pts], y=[100 * p["loss"] for p in pts],
            mode="lines+markers", name=label, line=dict(color=color), marker=dict(symbol=symbol, size=9),
            customdata=[[p["setting"], p["rate"], p["bytes"]] for p in pts],
            hovertemplate=("size %{x:.2f}% (%{customdata[1]:.1f}x, %{customdata[2]:,} B), setting %{customdata[0]}: "
                           "loss %{y:+.2f} points<extra>" + label + "</extra>"),
        ))
    fig.add_hline(y=0, line=dict(color=style.GREY, width=1))
    fig.update_layout(
        template="plotly_white", height=440,
        title=f"{title}: accuracy loss vs model size after compression (baseline {100 * res['baseline']:.2f}%)",
        xaxis=dict(title="compressed size (% of the fp32 model, log scale)", type="log",
                   tickvals=[1, 2, 3, 5, 10, 20, 30, 50, 100], ticktext=["1%", "2%", "3%", "5%", "10%", "20%", "30%",
                                                                          "50%", "100%"]),
        yaxis=dict(title="accuracy loss (percentage points)", range=[-0.5, 5]),
        legend=dict(x=1.02, y=1),
    )
    return fig


def fig_trained_quantization(res: Mapping, layer: str) -> go.Figure:
    """Centroids moving under grouped gradients, and test accuracy recovering (notebook 03)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], horizontal_spacing=0.1,
                        subplot_titles=(f"{layer}: the {2 ** res['bits']} centroids while fine-tuning",
                                        "test accuracy"))
    trace = np.asarray(res["centroids"][layer])
    for i in range(trace.shape[1]):
        fig.add_trace(go.Scatter(x=res["steps"], y=trace[:, i], mode="lines", line=dict(color=PALETTE[i % len(PALETTE)]),
                                 name=f"centroid {i}",
                                 hovertemplate="step %{x}: %{y:.4f}<extra>centroid " + str(i) + "</extra>"),
                      row=1, col=1)
    acc = [100 * a for a in res["accuracy"]]
    fig.add_trace(go.Scatter(x=list(range(len(acc))), y=acc, mode="lines+markers+text", name="shared weights",
                             text=[f"{a:.2f}%" for a in acc], textposition="top center",
                             line=dict(color=CENTROID)), row=1, col=2)
    fig.add_trace(go.Scatter(x=[0, max(1, len(acc) - 1)], y=[100 * res["baseline"]] * 2, mode="lines",
                             name="fp32 baseline", line=dict(color=style.GREY, dash="dot")), row=1, col=2)
    fig.update_xaxes(title_text="optimizer step", row=1, col=1)
    fig.update_xaxes(title_text="fine-tuning epoch", dtick=1, row=1, col=2)
    fig.update_yaxes(title_text="shared weight value", row=1, col=1)
    lo = min(acc + [100 * res["baseline"]])
    fig.update_yaxes(title_text="accuracy (%)", range=[math.floor(lo - 1), 100], row=1, col=2)
    fig.update_layout(template="plotly_white", height=380, showlegend=False, margin=dict(t=40, b=40, l=60, r=20))
    return fig


def _error_trace(bits: list, accuracy: list, name: str, i: int, dash: str | None = None) -> go.Scatter:
    """Test error (%) vs bits as one line; colour, dash and marker from ``style.series(i)``."""
    look = style.series(i)
    return go.Scatter(x=bits, y=[100 * (1 - a) for a in accuracy], mode="lines+markers", name=name,
                      line=dict(color=look["color"], dash=dash or look["dash"], width=2),
                      marker=dict(symbol=look["symbol"], size=8, color=look["color"]),
                      customdata=[100 * a for a in accuracy],
                      hovertemplate="%{x} bits: error %{y:.2f}% (accuracy %{customdata:.2f}%)<extra>" + name + "</extra>")


def _fp32_trace(bits: list, accuracy: float, name: str, color: str) -> go.Scatter:
    """A network's float32 error as a dotted line across the bits, named in the legend (log axes misplace
    ``add_hline``'s annotations)."""
    error = 100 * (1 - accuracy)
    return go.Scatter(x=[min(bits), max(bits)], y=[error, error], mode="lines", name=f"{name}: {error:.2f}%",
                      line=dict(color=color, dash="dot", width=1), hovertemplate=f"{name}: {error:.2f}%<extra></extra>")


def _error_axis(fig: go.Figure, **where) -> None:
    ticks = [0.5, 1, 2, 5, 10, 20, 50, 100]
    fig.update_yaxes(type="log", tickvals=ticks, ticktext=[f"{t:g}%" for t in ticks],
                     title_text="test error (log scale)", **where)


def fig_pruned_vs_dense_bits(res: Mapping, title: str = "LeNet-300-100") -> go.Figure:
    """Test error vs bits for the dense and the pruned network, every layer shared: Figure 7 (notebook 03).

    As in the paper, solid is the pruned network, dashed the unpruned one; each network's own
    float32 error is a dotted line of its colour.
    """
    fig = go.Figure()
    pruned = f"pruned ({100 * res['sparsity']:.0f}% removed), then shared"
    rows = ((pruned, res["pruned_quantized"], res["pruned"], 0, "solid"),
            ("dense, shared", res["dense_quantized"], res["baseline"], 1, "dash"))
    for name, accuracy, fp32, i, dash in rows:
        fig.add_trace(_error_trace(res["bits"], accuracy, name, i, dash))
        fig.add_trace(_fp32_trace(res["bits"], fp32, f"{name.split(',')[0]}, float32", style.series(i)["color"]))
    _error_axis(fig)
    fig.update_layout(template="plotly_white", height=420, legend=dict(x=0.55, y=0.95),
                      title=f"{title}: does pruning hurt quantization? (k-means, no retraining after sharing)",
                      xaxis=dict(title="bits per weight index (2**bits shared values; pruned: index 0 = 0.0)",
                                 dtick=1))
    return fig


def fig_uniform_vs_kmeans(res: Mapping, title: str = "LeNet-300-100") -> go.Figure:
    """A uniform grid vs k-means at equal bits: test error and squared error (notebook 03)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("test error, every layer shared", "squared error, sum of (w - shared value)^2"))
    names = {"kmeans": "k-means (learned levels)", "uniform": "uniform grid (evenly spaced levels)"}
    for i, grid in enumerate(("kmeans", "uniform")):
        look = style.series(i)
        fig.add_trace(_error_trace(res["bits"], res["accuracy"][grid], names[grid], i).update(legendgroup=grid),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=res["bits"], y=res["sse"][grid], mode="lines+markers", name=names[grid],
                                 legendgroup=grid, showlegend=False,
                                 line=dict(color=look["color"], dash=look["dash"], width=2),
                                 marker=dict(symbol=look["symbol"], size=8, color=look["color"]),
                                 hovertemplate="%{x} bits: %{y:.3g}<extra>" + names[grid] + "</extra>"), row=1, col=2)
    fig.add_trace(_fp32_trace(res["bits"], res["baseline"], "float32", style.GREY), row=1, col=1)
    fig.update_xaxes(title_text="bits per weight (2**bits levels)", dtick=1)
    _error_axis(fig, row=1, col=1)
    fig.update_yaxes(type="log", title_text="squared error (log scale)", row=1, col=2)
    fig.update_layout(template="plotly_white", height=420, legend=dict(orientation="h", x=0, y=-0.2),
                      title=f"{title}: the same bits, evenly spaced or learned levels (no retraining)")
    return fig
