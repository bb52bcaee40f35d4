"""Notebook 07's rate-accuracy chart: dclab's files beside the published records on the same LeNets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dclab.viz import style

COUNTS = {  # what a published ratio counts: its marker and its legend's words
    "params": ("diamond-open", "published: parameters counted (no index or codebook cost)"),
    "bits": ("triangle-up-open", "published: size computed from bit counts (no file)"),
    "file": ("square-open", "published: a real file"),
}
RECIPE_STYLE = {"default": (style.BLUE, "circle"), "frontier": (style.VERMILLION, "star"),
                "noloss": (style.PURPLE, "diamond")}


def fig_rate_accuracy(points: Sequence[Any], published: Sequence[Mapping[str, Any]],
                      titles: Mapping[str, str], goals: Mapping[str, Mapping[str, float]] | None = None) -> go.Figure:
    """One panel per network: x = bytes (log), y = test error (%).

    ``points``: ``FilePoint``s (bytes of a ``.dcz`` on disk, error of the model read back; filled markers,
    hollow when the run was reduced); ``published``: ``published_points`` rows (open markers, shaped by what
    the ratio counts); ``goals``: a dotted box corner per network (bytes, error)."""
    arches = list(titles)
    fig = make_subplots(rows=1, cols=len(arches), subplot_titles=[titles[a] for a in arches], horizontal_spacing=0.1)
    shown: set[str] = set()

    def legend(name: str) -> bool:
        first = name not in shown
        shown.add(name)
        return first

    for col, arch in enumerate(arches, start=1):
        for p in (p for p in points if p.arch == arch):
            color, symbol = RECIPE_STYLE.get(p.recipe, (style.GREEN, "circle"))
            name = f"dclab, {p.recipe} recipe: a .dcz on disk" + (" (REDUCED run)" if p.reduced else "")
            fig.add_trace(go.Scatter(
                x=[p.bytes], y=[100 * p.error], mode="markers+text", text=[f"{p.ratio:.0f}x"],
                textposition="top center", name=name, legendgroup=name, showlegend=legend(name),
                marker=dict(color=color, symbol=symbol + ("-open" if p.reduced else ""), size=15,
                            line=dict(color=style.BLACK, width=1)),
                hovertemplate=(f"{p.recipe} recipe{' (reduced run)' if p.reduced else ''}<br>%{{x:,}} bytes "
                               f"({p.ratio:.1f}x), error %{{y:.2f}}%<br>{p.command}<extra></extra>")), row=1, col=col)
        base = next((p for p in points if p.arch == arch), None)
        if base is not None:
            fig.add_hline(y=100 * base.baseline_error, line=dict(color=style.GREY, dash="dash"), row=1, col=col,
                          annotation_text="baseline (not compressed)", annotation_position="bottom right")
        for r in (r for r in published if r["arch"] == arch):
            symbol, name = COUNTS[r["counts"]]
            fig.add_trace(go.Scatter(
                x=[r["bytes"]], y=[100 * r["error"]], mode="markers", name=name, legendgroup=name,
                showlegend=legend(name), marker=dict(color=style.DARK_GREY, symbol=symbol, size=12),
                hovertemplate=(f"{r['method']}: {r['ratio']:g}x ({r['counts']}), error %{{y:.2f}}%<br>"
                               f"~%{{x:,.0f}} bytes if it were a file<br>{r['source']}<extra></extra>")),
                row=1, col=col)
        if goals and arch in goals:
            g = goals[arch]
            name = "goal: at most these bytes at at most this error"
            left = min([p.bytes for p in points if p.arch == arch] +
                       [r["bytes"] for r in published if r["arch"] == arch] + [g["bytes"]]) / 1.5
            fig.add_trace(go.Scatter(
                x=[g["bytes"], g["bytes"], left], y=[0, 100 * g["error"], 100 * g["error"]], mode="lines", name=name,
                legendgroup=name, showlegend=legend(name), line=dict(color=style.GREEN, dash="dot"),
                hoverinfo="skip"), row=1, col=col)
        fig.update_xaxes(type="log", title_text="bytes (log scale)", row=1, col=col)
        fig.update_yaxes(title_text="test error (%)" if col == 1 else None, rangemode="tozero", row=1, col=col)
    fig.update_layout(template="plotly_white", height=480, legend=dict(orientation="h", y=-0.25),
                      title="Rate and accuracy: dclab's files beside the published records")
    return fig
