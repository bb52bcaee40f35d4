"""Figures for notebook 05 (SqueezeNet): the Fire module, model sizes beside the papers, the design space.

Pure builders: each takes numbers computed by ``dclab.models.reference`` and ``dclab.lessons.squeezenet`` and returns a ``go.Figure``.
"""
from __future__ import annotations

import math
from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dclab.lessons.squeezenet import SizeRow
from dclab.models.reference import ArchSummary
from dclab.models.squeezenet import conv_parameters, fire_parameters
from dclab.viz import style

SQUEEZE, EXPAND1, EXPAND3, NEUTRAL = style.ORANGE, style.BLUE, style.GREEN, style.GREY
KIND_COLORS = {"dense": style.BLUE, "compressed": style.GREEN, "untrained": style.PURPLE}
KIND_PATTERNS = {"dense": "", "compressed": "/", "untrained": "x"}
"""Bars of measured sizes differ by kind in colour and in fill pattern."""


def _box(fig: go.Figure, x0: float, x1: float, y0: float, y1: float, color: str, text: str) -> None:
    fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, line=dict(color=color, width=2),
                  fillcolor=color, opacity=0.25, layer="below")
    fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2, text=text, showarrow=False, font=dict(size=13))


def _arrow(fig: go.Figure, x0: float, y0: float, x1: float, y1: float) -> None:
    fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="",
                       showarrow=True, arrowhead=3, arrowsize=1.2, arrowwidth=1.5, arrowcolor=style.DARK_GREY)


def fig_fire_module(in_channels: int = 96, s1x1: int = 16, e1x1: int = 64, e3x3: int = 64) -> go.Figure:
    """The Fire module drawn top to bottom, box widths proportional to channels (notebook 05, section 1).

    Squeeze (1x1, few channels) feeds expand 1x1 and expand 3x3 side by side; their
    outputs are concatenated. Parameter counts are computed, not typed in.
    """
    widest = max(in_channels, e1x1 + e3x3)

    def half(channels: int, scale: float = 4.0) -> float:
        return max(0.25, scale * channels / widest)

    fig = go.Figure()
    squeeze_p = conv_parameters(in_channels, s1x1, 1)
    e1_p, e3_p = conv_parameters(s1x1, e1x1, 1), conv_parameters(s1x1, e3x3, 3)
    total = fire_parameters(in_channels, s1x1, e1x1, e3x3)
    out = e1x1 + e3x3
    plain = conv_parameters(in_channels, out, 3)

    _box(fig, -half(in_channels), half(in_channels), 8.6, 9.4, NEUTRAL, f"input: H x W x {in_channels}")
    _box(fig, -half(s1x1) - 1.2, half(s1x1) + 1.2, 6.6, 7.4, SQUEEZE,
         f"<b>squeeze</b>: {s1x1} filters 1x1 ({squeeze_p:,} params)")
    left, right = -2.6, 2.6
    _box(fig, left - half(e1x1, 2.2), left + half(e1x1, 2.2), 4.1, 4.9, EXPAND1,
         f"<b>expand</b>: {e1x1} filters 1x1<br>({e1_p:,} params)")
    _box(fig, right - half(e3x3, 2.2), right + half(e3x3, 2.2), 4.1, 4.9, EXPAND3,
         f"<b>expand</b>: {e3x3} filters 3x3<br>({e3_p:,} params)")
    _box(fig, -half(out), half(out), 1.6, 2.4, NEUTRAL, f"concatenate: H x W x {out}")
    _arrow(fig, 0, 8.6, 0, 7.4)
    _arrow(fig, -0.5, 6.6, left, 4.9)
    _arrow(fig, 0.5, 6.6, right, 4.9)
    _arrow(fig, left, 4.1, -0.5, 2.4)
    _arrow(fig, right, 4.1, 0.5, 2.4)
    fig.add_annotation(
        x=0, y=0.6, showarrow=False, font=dict(size=13),
        text=(f"Fire module: <b>{total:,}</b> parameters. A plain 3x3 convolution "
              f"{in_channels} -> {out} channels: <b>{plain:,}</b> ({plain / total:.1f}x more)"),
    )
    fig.update_xaxes(visible=False, range=[-5.5, 5.5])
    fig.update_yaxes(visible=False, range=[0, 10])
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor=style.WHITE,
                      title=f"Fire module ({in_channels} -> s1x1={s1x1} -> e1x1={e1x1} + e3x3={e3x3})")
    return fig


def fig_model_sizes(rows: Sequence[SizeRow], title: str = "Model size: measured here vs the papers") -> go.Figure:
    """Horizontal bars of measured sizes (log scale) with the papers' figures as markers (notebook 05, section 2).

    Trace 0 is the measured bars, trace 1 the papers' figures (rows without one are left out).
    """
    labels = [r.label for r in rows]
    mb = [r.bytes / 1e6 for r in rows]
    text = [f"{r.bytes / 1e6:,.3g} MB" + (f"  ({r.note})" if r.note else "") for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Bar(
        y=labels, x=mb, orientation="h", name="measured here", text=text, textposition="outside", cliponaxis=False,
        marker_color=[KIND_COLORS.get(r.kind, NEUTRAL) for r in rows],
        marker_pattern=style.pattern([KIND_PATTERNS.get(r.kind, "") for r in rows]),
        hovertemplate="%{y}: %{x:,.4g} MB<extra>measured</extra>",
    ))
    paper = [(r.label, r.paper_bytes / 1e6) for r in rows if r.paper_bytes]
    fig.add_trace(go.Scatter(
        y=[p[0] for p in paper], x=[p[1] for p in paper], mode="markers", name="the paper says",
        marker=dict(symbol="diamond", size=12, color=style.PAPER, line=dict(color=style.WHITE, width=1)),
        hovertemplate="%{y}: %{x:,.4g} MB<extra>paper</extra>",
    ))
    values = mb + [p[1] for p in paper]
    lo, hi = math.log10(min(values) / 4), math.log10(max(values) * 6)  # bars start well left of the smallest
    fig.update_xaxes(type="log", range=[lo, hi], title_text="size (MB = 10^6 bytes, log scale)")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=title, height=max(300, 46 * len(rows) + 120), margin=dict(l=10, r=10, t=50, b=40),
                      legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    return fig


def fig_parameter_split(summaries: Sequence[ArchSummary]) -> go.Figure:
    """Where the parameters live: share in conv vs fully connected layers, per architecture (notebook 05, section 2)."""
    titles = [s.title for s in summaries]
    conv = [100 * s.conv_parameters / s.parameters for s in summaries]
    fc = [100 * s.fc_parameters / s.parameters for s in summaries]
    fig = go.Figure([
        go.Bar(x=titles, y=conv, name="conv layers", marker_color=EXPAND1,
               customdata=[s.conv_parameters for s in summaries],
               text=[f"{s.conv_parameters / 1e6:.2f}M" for s in summaries], textposition="inside",
               hovertemplate="%{x}: %{customdata:,} conv parameters (%{y:.1f}%)<extra></extra>"),
        go.Bar(x=titles, y=fc, name="fully connected layers", marker_color=SQUEEZE, marker_pattern=style.pattern("/"),
               customdata=[s.fc_parameters for s in summaries],
               text=[f"{s.fc_parameters / 1e6:.1f}M" if s.fc_parameters else "" for s in summaries],
               textposition="inside",
               hovertemplate="%{x}: %{customdata:,} fc parameters (%{y:.1f}%)<extra></extra>"),
    ])
    fig.update_layout(barmode="stack", height=340, title="Where the parameters are", yaxis_title="% of parameters",
                      margin=dict(l=10, r=10, t=50, b=40))
    return fig


def fig_design_space(
    sr_grid: Sequence[float],
    mb_vs_sr: Sequence[float],
    pct_grid: Sequence[float],
    mb_vs_pct: Sequence[float],
    sr: float,
    pct3x3: float,
    megabytes: float,
    reference_mb: float | None = None,
) -> go.Figure:
    """Model size vs squeeze ratio (left) and vs pct3x3 (right), the current choice marked (notebook 05, section 3).

    Traces (a widget updates them in place): 0 size vs SR at the current pct3x3,
    1 current point there, 2 size vs pct3x3 at the current SR, 3 current point there,
    then the SqueezeNet 1.0 reference lines, if given.
    """
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("size vs squeeze ratio SR", "size vs pct3x3 (share of 3x3 expand filters)"))
    fig.add_trace(go.Scatter(x=list(sr_grid), y=list(mb_vs_sr), mode="lines+markers", name=f"pct3x3 = {pct3x3:.0%}",
                             line=dict(color=EXPAND1), hovertemplate="SR %{x:.3f}: %{y:.2f} MB<extra></extra>"),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=[sr], y=[megabytes], mode="markers", name="your choice",
                             marker=dict(size=14, color=SQUEEZE, symbol="star"),
                             hovertemplate="SR %{x:.3f}: %{y:.2f} MB<extra>your choice</extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=list(pct_grid), y=list(mb_vs_pct), mode="lines", name=f"SR = {sr:.3f}",
                             line=dict(color=EXPAND3, dash="dash"), hovertemplate="pct3x3 %{x:.0%}: %{y:.2f} MB<extra></extra>"),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=[pct3x3], y=[megabytes], mode="markers", showlegend=False,
                             marker=dict(size=14, color=SQUEEZE, symbol="star"),
                             hovertemplate="pct3x3 %{x:.0%}: %{y:.2f} MB<extra>your choice</extra>"), row=1, col=2)
    if reference_mb is not None:
        for col, grid in ((1, sr_grid), (2, pct_grid)):
            fig.add_trace(go.Scatter(x=[min(grid), max(grid)], y=[reference_mb] * 2, mode="lines",
                                     name="SqueezeNet 1.0", showlegend=col == 1,
                                     line=dict(color=NEUTRAL, dash="dot"),
                                     hovertemplate="SqueezeNet 1.0: %{y:.2f} MB<extra></extra>"), row=1, col=col)
    fig.update_xaxes(title_text="SR = s1x1 / (e1x1 + e3x3)", row=1, col=1)
    fig.update_xaxes(title_text="pct3x3 = e3x3 / (e1x1 + e3x3)", tickformat=".0%", row=1, col=2)
    fig.update_yaxes(title_text="fp32 size (MB)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=50, b=40),
                      legend=dict(orientation="h", y=-0.25, x=0))
    return fig
