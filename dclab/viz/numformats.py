"""Figures for notebook 01's number formats: dynamic range, weight rounding errors, accuracy per format."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go
import torch

from dclab.numformats import Format, FormatInfo, cast_weight
from dclab.viz import style


def fig_format_ranges(rows: Sequence[FormatInfo]) -> go.Figure:
    """Each format's positive range on a log axis: subnormals, normals, and the step at 1.0 (notebook 01)."""
    fig = go.Figure()
    names = [r.name for r in rows]
    for r in rows:
        if r.min_subnormal < r.min_normal:
            fig.add_trace(go.Scatter(x=[r.min_subnormal, r.min_normal], y=[r.name] * 2, mode="lines",
                                     line=dict(color=style.LIGHT_GREY, width=10), showlegend=r is rows[0],
                                     name="subnormals", legendgroup="sub", hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=[r.min_normal, r.max], y=[r.name] * 2, mode="lines+markers", line=dict(color=style.BLUE, width=10),
            name="normal range" if r.min_subnormal < r.min_normal else "range", legendgroup="normal",
            showlegend=r is rows[0],
            customdata=[[r.bits, r.epsilon, r.min_subnormal]] * 2,
            hovertemplate=("%{y} (%{customdata[0]} bits): %{x:.4g}<br>smallest %{customdata[2]:.3g}, "
                           "step at 1.0: %{customdata[1]:.3g}<extra></extra>"),
        ))
    fig.update_layout(
        title="Dynamic range of each format (positive values; log scale)",
        xaxis=dict(type="log", title="magnitude", exponentformat="power"),
        yaxis=dict(categoryorder="array", categoryarray=names[::-1]),
        template="plotly_white", height=80 + 45 * len(rows), legend=dict(orientation="h", y=-0.25),
    )
    return fig


def format_errors(w: torch.Tensor, formats: Mapping[str, Format | str]) -> dict[str, torch.Tensor]:
    """``cast(w) - w`` for each format, in float64 (notebook 01, quantizing a real layer)."""
    w = w.detach().to(torch.float64).flatten()
    return {name: cast_weight(w, fmt) - w for name, fmt in formats.items()}


def _log_errors(w: torch.Tensor, fmt: Format | str) -> tuple[torch.Tensor, torch.Tensor]:
    """``format_errors`` of one format, and log10 |error| of its non-zero errors."""
    err = format_errors(w, {"": fmt})[""]
    return err, torch.log10(err[err != 0].abs())


def fig_format_errors(w: torch.Tensor, formats: Mapping[str, Format | str], title: str = "", bins: int = 90) -> go.Figure:
    """Histogram of log10 |rounding error| of the weights ``w`` in each format (notebook 01).

    Binned here (``bins`` shared bins), so the figure stays small however many
    weights there are. Weights a format stores exactly (error 0) cannot sit on a
    log axis; the legend gives their share.
    """
    # one format at a time, twice (the shared range, then the bins): every format's float64 errors
    # held at once cost a kernel ~50 MB for one figure
    ranges = []
    for fmt in formats.values():
        logs = _log_errors(w, fmt)[1]
        if logs.numel():
            ranges.append((float(logs.min()), float(logs.max())))
    lo = math.floor(min(r[0] for r in ranges)) if ranges else -8
    hi = math.ceil(max(r[1] for r in ranges)) if ranges else 0
    lo = max(lo, hi - 12)  # a dozen decades is plenty; the rare tinier errors pile into the first bin
    width = (hi - lo) / bins
    centers = [lo + (i + 0.5) * width for i in range(bins)]
    fig = go.Figure()
    for i, (name, fmt) in enumerate(formats.items()):
        err, logs = _log_errors(w, fmt)
        counts = torch.histc(logs.clamp(lo, hi), bins=bins, min=lo, max=hi) if logs.numel() else torch.zeros(bins)
        exact = int((err == 0).sum())
        fig.add_trace(go.Scatter(
            x=centers, y=counts.tolist(), mode="lines", line_shape="hvh", line=style.line(i, width=2),
            name=f"{name} (max {float(err.abs().max()):.2g}; {100 * exact / err.numel():.0f}% exact)",
            hovertemplate="|error| ~ 10^%{x:.1f}: %{y} weights<extra>" + name + "</extra>",
        ))
    fig.update_layout(
        template="plotly_white", height=420,
        title=title or f"Rounding error of {w.numel():,} weights stored in each format",
        xaxis=dict(title="log10 |stored - fp32 weight|"), yaxis=dict(title="weights per bin"),
        legend=dict(x=1.02, y=1),
    )
    return fig


def fig_format_accuracy(accuracy: Mapping[str, Mapping[str, float]], reference: str = "fp32") -> go.Figure:
    """Test error of whole networks with their weights stored in each format (notebook 01).

    ``accuracy[model][format]`` is the test accuracy in [0, 1].
    """
    fig = go.Figure()
    for i, (model, per_format) in enumerate(accuracy.items()):
        fmts = list(per_format)
        err = [100 * (1 - per_format[f]) for f in fmts]
        ref = per_format.get(reference)
        text = [f"{e:.2f}%" + ("" if ref is None or f == reference else f" ({100 * (ref - per_format[f]):+.2f})")
                for e, f in zip(err, fmts)]
        fig.add_trace(go.Bar(x=fmts, y=err, name=model, text=text, textposition="outside",
                             marker_color=style.SERIES[i % len(style.SERIES)], marker_pattern=style.pattern(i),
                             hovertemplate="%{x}: test error %{y:.2f}%<extra>" + model + "</extra>"))
    top = max(100 * (1 - a) for per in accuracy.values() for a in per.values())
    fig.update_layout(
        barmode="group", template="plotly_white", height=420,
        title="MNIST test error with the weights stored in each format (in brackets: accuracy lost vs fp32, points)",
        yaxis=dict(title="test error (%)", range=[0, max(2.5, top * 1.25)] if math.isfinite(top) else None),
        xaxis=dict(title="weight format"),
    )
    return fig
