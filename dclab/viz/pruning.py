"""Figures for notebook 02 (pruning): weight histograms, pruning curves, layer sensitivity, how to retrain.

Histograms are drawn as bars over fixed bin edges (``histogram_edges``), so a
widget sends counts, not hundreds of thousands of weights, on each change.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from dclab.viz import style

BEFORE = style.GREY
KEPT = style.KEPT
RETRAINED = style.GREEN
CUT = style.CUT
PALETTE = list(style.SERIES)


def histogram_edges(w: torch.Tensor, n_bins: int = 121, margin: float = 1.1, coverage: float = 0.998) -> np.ndarray:
    """Bin edges symmetric around 0 covering ``margin`` x the ``coverage`` quantile of |w| (notebook 02).

    Trained layers have long tails (ip1's largest weight is 15 standard deviations out),
    so the range follows the bulk of the weights; ``hist_counts`` puts the few beyond
    it into the outermost bins. An odd ``n_bins`` centres a bin on 0.
    """
    magnitudes = w.detach().abs().reshape(-1).double()
    top = float(torch.quantile(magnitudes[:: max(1, magnitudes.numel() // 1_000_000)], coverage)) * margin
    top = top or float(magnitudes.max()) or 1.0
    return np.linspace(-top, top, n_bins + 1)


def hist_counts(values: torch.Tensor | np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins ``edges``; values beyond the range count in the outermost bins."""
    if isinstance(values, torch.Tensor):
        values = values.detach().reshape(-1).cpu().numpy()
    return np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0]


def _bars(counts: np.ndarray, edges: np.ndarray, name: str, color: str, **kw) -> go.Bar:
    centers = (edges[1:] + edges[:-1]) / 2
    return go.Bar(x=centers, y=counts, width=np.diff(edges), name=name, marker_color=color, marker_line_width=0,
                  hovertemplate="w ~ %{x:.3f}: %{y} weights<extra>" + name + "</extra>", **kw)


def cut_lines(threshold: float, height: float) -> tuple[list, list]:
    """x, y of the two vertical lines at -threshold and +threshold (one trace, a gap between)."""
    return [-threshold, -threshold, None, threshold, threshold], [0, height, None, 0, height]


def fig_prune_explorer(
    w: torch.Tensor,
    mask: torch.Tensor,
    threshold: float,
    edges: np.ndarray,
    baseline: float,
    accuracy: float,
    layer: str = "",
) -> go.Figure:
    """The prune explorer's figure: weights before, survivors after, test accuracy (notebook 02).

    Traces (a widget updates them in place): 0 all weights, 1 the cut, 2 survivors,
    3 survivors after retraining, 4 baseline accuracy, 5 accuracy while retraining.
    """
    fig = make_subplots(rows=1, cols=3, column_widths=[0.38, 0.38, 0.24], horizontal_spacing=0.07,
                        subplot_titles=(f"{layer} before pruning", "after pruning (survivors)", "test accuracy"))
    before = hist_counts(w, edges)
    fig.add_trace(_bars(before, edges, "all weights", BEFORE), row=1, col=1)
    x, y = cut_lines(threshold, float(before.max()))
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=CUT, dash="dash", width=2), name="threshold",
                             hoverinfo="skip"), row=1, col=1)
    fig.add_trace(_bars(hist_counts(w[mask], edges), edges, "survivors", KEPT), row=1, col=2)
    fig.add_trace(_bars(np.zeros(len(edges) - 1, dtype=int), edges, "after retraining", RETRAINED, opacity=0.75),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=[0, 1], y=[100 * baseline] * 2, mode="lines", name="unpruned",
                             line=dict(color=BEFORE, dash="dot"), hovertemplate="unpruned %{y:.2f}%<extra></extra>"),
                  row=1, col=3)
    fig.add_trace(go.Scatter(x=[0], y=[100 * accuracy], mode="lines+markers", name="pruned, retraining",
                             line=dict(color=RETRAINED), marker=dict(size=8),
                             hovertemplate="epoch %{x}: %{y:.2f}%<extra></extra>"), row=1, col=3)
    fig.update_xaxes(title_text="weight", row=1, col=1)
    fig.update_xaxes(title_text="weight", matches="x", row=1, col=2)
    fig.update_xaxes(title_text="retraining epoch", dtick=1, rangemode="tozero", row=1, col=3)
    fig.update_yaxes(title_text="weights", row=1, col=1)
    fig.update_yaxes(title_text="accuracy (%)", row=1, col=3)
    fig.update_layout(template="plotly_white", height=380, bargap=0, barmode="overlay",
                      legend=dict(orientation="h", y=-0.22), margin=dict(t=40, b=40, l=60, r=20))
    return fig


def fig_pruning_curves(curves: Mapping, title: str = "LeNet-300-100") -> go.Figure:
    """Accuracy loss vs parameters pruned: no retraining, retrained, iterative (notebook 02; pruning paper Fig. 5)."""
    x = [100 * s for s in curves["sparsity"]]
    base = curves["baseline"]
    fig = go.Figure()
    series = [("no_retraining", "pruned, no retraining", CUT, "dot"),
              ("retrained", "pruned + retrained", KEPT, "solid"),
              ("iterative", "iterative pruning + retraining", RETRAINED, "solid")]
    for key, name, color, dash in series:
        loss = [100 * (base - a) for a in curves[key]]
        fig.add_trace(go.Scatter(x=x, y=loss, mode="lines+markers", name=name, line=dict(color=color, dash=dash),
                                 hovertemplate="%{x:.0f}% pruned: %{y:+.2f} points<extra>" + name + "</extra>"))
    fig.add_hline(y=0, line=dict(color=style.GREY, width=1))
    worst = max(100 * (base - a) for a in curves["retrained"] + curves["iterative"])
    fig.update_layout(
        template="plotly_white", height=420,
        title=f"{title}: accuracy lost vs parameters pruned (baseline {100 * base:.2f}%)",
        xaxis=dict(title="parameters pruned away (%)"),
        yaxis=dict(title="accuracy loss (percentage points)", range=[-0.5, max(2.0, 1.5 * worst)]),
        legend=dict(x=0.02, y=0.98),
    )
    return fig


def fig_sensitivity(sens: Mapping, title: str = "LeNet-300-100") -> go.Figure:
    """Test accuracy with one layer pruned at a time, no retraining (notebook 02; pruning paper Fig. 6)."""
    fig = go.Figure()
    x = [100 * s for s in sens["sparsity"]]
    kinds = sens.get("kinds", {})
    for i, (layer, acc) in enumerate(sens["accuracy"].items()):
        n = sens.get("weights", {}).get(layer)
        kind = f"{kinds[layer]}, " if layer in kinds else ""
        name = f"{layer} ({kind}{n:,} weights)" if n else layer
        look = style.series(i)
        fig.add_trace(go.Scatter(x=x, y=[100 * a for a in acc], mode="lines+markers", name=name,
                                 line=dict(color=look["color"], dash=look["dash"]),
                                 marker=dict(symbol=look["symbol"], size=8),
                                 hovertemplate="%{x:.0f}% pruned: %{y:.2f}%<extra>" + layer + "</extra>"))
    fig.update_layout(template="plotly_white", height=400,
                      title=f"{title}: sensitivity of each layer to pruning (the others untouched, no retraining)",
                      xaxis=dict(title="parameters pruned away in that layer (%)"),
                      yaxis=dict(title="test accuracy (%)"), legend=dict(x=0.02, y=0.05))
    return fig


def _reference_lines(fig: go.Figure, res: Mapping, row: int, col: int) -> None:
    """Dotted lines at the unpruned accuracy and at the pruned one before retraining."""
    for key, name, look, where in (("baseline", "unpruned", "dot", "top left"),
                                   ("no_retraining", "pruned, no retraining", "dashdot", "bottom right")):
        fig.add_hline(y=100 * res[key], line=dict(color=style.GREY, dash=look, width=1.5), row=row, col=col,
                      annotation_text=f"{name}: {100 * res[key]:.2f}%", annotation_position=where)


def fig_regularization(res: Mapping) -> go.Figure:
    """Accuracy after retraining with L2 weight decay vs an L1 penalty of each strength, and the survivors'
    mean |w| (notebook 02; the pruning paper's L1 vs L2 comparison). ``res``: ``regularization_comparison``."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("test accuracy after retraining", "mean |w| of the kept weights"))
    for i, (key, name) in enumerate((("l2", "L2 weight decay"), ("l1", "L1 penalty"))):
        look = style.series(i)
        line, marker = dict(color=look["color"], dash=look["dash"]), dict(symbol=look["symbol"], size=9)
        fig.add_trace(go.Scatter(x=res["strength"], y=[100 * a for a in res[key]], mode="lines+markers", name=name,
                                 line=line, marker=marker, legendgroup=key,
                                 hovertemplate="strength %{x:g}: %{y:.2f}%<extra>" + name + "</extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=res["strength"], y=res[f"{key}_mean_abs"], mode="lines+markers", name=name,
                                 line=line, marker=marker, legendgroup=key, showlegend=False,
                                 hovertemplate="strength %{x:g}: mean |w| %{y:.4f}<extra>" + name + "</extra>"),
                      row=1, col=2)
    _reference_lines(fig, res, 1, 1)
    fig.update_xaxes(type="log", title_text="regularization strength (weight_decay or l1)")
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 106], row=1, col=1)
    fig.update_yaxes(title_text="mean |w|", rangemode="tozero", row=1, col=2)
    fig.update_layout(template="plotly_white", height=400, legend=dict(orientation="h", y=-0.25),
                      title=f"Retraining after pruning {100 * res['sparsity']:.0f}%: L2 vs L1, same budget",
                      margin=dict(t=70, b=40, l=60, r=20))
    return fig


def fig_retrain_lr(res: Mapping) -> go.Figure:
    """Test accuracy while retraining a pruned network at several learning rates (notebook 02).

    ``res``: ``lessons.pruning.retrain_lr_comparison`` (one curve per factor of the original rate).
    """
    fig = go.Figure()
    for i, (factor, lr, curve) in enumerate(zip(res["factor"], res["lr"], res["curves"])):
        look = style.series(i)
        name = f"lr {lr:g} ({'the original' if factor == 1 else f'1/{round(1 / factor)} of the original'})"
        fig.add_trace(go.Scatter(x=res["steps"], y=[100 * a for a in curve], mode="lines+markers", name=name,
                                 line=dict(color=look["color"], dash=look["dash"]),
                                 marker=dict(symbol=look["symbol"], size=8),
                                 hovertemplate="step %{x}: %{y:.2f}%<extra>" + name + "</extra>"))
    fig.add_hline(y=100 * res["baseline"], line=dict(color=style.GREY, dash="dot", width=1.5),
                  annotation_text=f"unpruned: {100 * res['baseline']:.2f}%", annotation_position="top left")
    low = min(min(curve) for curve in res["curves"])
    fig.update_layout(template="plotly_white", height=400, legend=dict(x=0.55, y=0.3),
                      title=f"Retraining after pruning {100 * res['sparsity']:.0f}%: the learning rate",
                      xaxis=dict(title=f"retraining step (batches of 128, {res['train_digits']:,} digits)"),
                      yaxis=dict(title="test accuracy (%)", range=[100 * low - 2, 100 * res["baseline"] + 2]))
    return fig


def fig_weight_distribution(before: torch.Tensor, retrained: torch.Tensor, mask: torch.Tensor,
                            layer: str = "", n_bins: int = 121) -> go.Figure:
    """A layer's weights before pruning and after pruning + retraining: the bimodal survivors (notebook 02)."""
    edges = histogram_edges(torch.cat([before.reshape(-1), retrained.reshape(-1)]), n_bins, 1.02, coverage=1.0)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=(f"{layer}: before pruning ({before.numel():,} weights)",
                                        f"after pruning + retraining ({int(mask.sum()):,} kept)"))
    fig.add_trace(_bars(hist_counts(before, edges), edges, "before", BEFORE), row=1, col=1)
    fig.add_trace(_bars(hist_counts(retrained[mask], edges), edges, "survivors, retrained", RETRAINED), row=1, col=2)
    fig.update_xaxes(title_text="weight")
    fig.update_xaxes(matches="x")
    fig.update_yaxes(title_text="weights", row=1, col=1)
    fig.update_layout(template="plotly_white", height=360, bargap=0, showlegend=False,
                      margin=dict(t=40, b=40, l=60, r=20))
    return fig


def fig_lstm_pruning(result: Mapping) -> go.Figure:
    """Accuracy of the row-reading LSTM: dense, pruned, pruned + retrained (notebook 02)."""
    labels = ["dense", "pruned, no retraining", "pruned + retrained"]
    acc = [100 * result[k] for k in ("dense", "pruned", "retrained")]
    fig = go.Figure(go.Bar(x=labels, y=acc, text=[f"{a:.2f}%" for a in acc], textposition="outside",
                           marker_color=[BEFORE, CUT, RETRAINED]))
    kept = sum(result["kept"].values()) / sum(result["weights"].values())
    fig.update_layout(template="plotly_white", height=340,
                      title=f"An LSTM on MNIST rows, {100 * (1 - kept):.0f}% of its gate weights pruned",
                      yaxis=dict(title="test accuracy (%)", range=[min(acc) - 5, 100]))
    return fig
