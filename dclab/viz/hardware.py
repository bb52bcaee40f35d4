"""Figures for notebook 01's hardware half: the roofline, dense vs sparse timings, the energy table, the energy of weight fetches."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dclab.hardware import ENERGY_45NM_PJ, LayerCost, Roofline, SparseTiming, WeightEnergy
from dclab.viz import style

DRAM_COLOR, SRAM_COLOR = style.VERMILLION, style.GREEN
"""Off-chip DRAM and on-chip SRAM, in every figure of this module (Okabe-Ito, from ``dclab.viz.style``)."""


def fig_roofline(roofline: Roofline, costs: Mapping[str, Sequence[LayerCost]]) -> go.Figure:
    """The measured roofline (log-log) with each layer placed at its arithmetic intensity (notebook 01).

    ``costs`` maps a model's title to its ``layer_costs`` (any batch sizes); each
    layer sits on the roof, at the best FLOP/s its intensity allows.
    """
    all_costs = [c for cs in costs.values() for c in cs]
    lo = min([roofline.ridge / 10] + [c.intensity / 8 for c in all_costs])
    hi = max([roofline.ridge * 10] + [c.intensity * 2 for c in all_costs])
    xs = [lo, roofline.ridge, hi]
    gflops = roofline.peak_flops / 1e9
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[roofline.attainable(x) / 1e9 for x in xs],
            mode="lines",
            line=dict(color=style.BLACK, width=3),
            name="roofline",
            hovertemplate="intensity %{x:.3g} FLOP/B<br>at most %{y:.3g} GFLOP/s<extra>roofline</extra>",
        )
    )
    batches = sorted({c.batch_size for c in all_costs})
    for i, (title, cs) in enumerate(costs.items()):
        for j, batch in enumerate(batches):
            layer = [c for c in cs if c.batch_size == batch]
            if not layer:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[c.intensity for c in layer],
                    y=[roofline.attainable(c.intensity) / 1e9 for c in layer],
                    mode="markers+text",
                    text=[c.name for c in layer],
                    textposition="top center" if j == 0 else "bottom center",
                    marker=dict(size=12, color=style.SERIES[i % len(style.SERIES)],
                                symbol=style.MARKERS[j % len(style.MARKERS)]),
                    name=f"{title}, batch {batch}",
                    customdata=[[c.flops / 1e6, c.bytes / 1e3, roofline.bound(c.intensity)] for c in layer],
                    hovertemplate=(
                        "%{text}: %{x:.3g} FLOP/B<br>%{customdata[0]:.3g} MFLOP, %{customdata[1]:.4g} kB"
                        "<br>%{customdata[2]}-bound, at most %{y:.3g} GFLOP/s<extra>%{fullData.name}</extra>"
                    ),
                )
            )
    fig.add_annotation(
        x=math.log10(roofline.ridge), y=math.log10(gflops), text=f"ridge {roofline.ridge:.2g} FLOP/B",
        showarrow=True, arrowhead=2, ax=40, ay=40,
    )
    fig.add_annotation(x=math.log10(lo * 1.8), y=math.log10(roofline.attainable(lo * 1.8) / 1e9), text="memory-bound",
                       showarrow=False, textangle=-38, yshift=14, font=dict(color=style.BLACK))
    fig.add_annotation(x=math.log10(hi / 1.5), y=math.log10(gflops), text="compute-bound", showarrow=False,
                       yshift=28, xanchor="right", font=dict(color=style.BLACK))
    fig.update_layout(
        title=f"Roofline of this {roofline.device.upper()} ({roofline.threads} threads): "
        f"{gflops:.0f} GFLOP/s fp32 matmul, {roofline.bandwidth / 1e9:.1f} GB/s",
        xaxis=dict(type="log", title="arithmetic intensity (FLOP per byte moved, fp32)"),
        yaxis=dict(type="log", title="attainable GFLOP/s"),
        template="plotly_white",
        height=480,
        legend=dict(orientation="v", x=1.02, y=1),
    )
    return fig


def fig_sparse_timings(records: Sequence[SparseTiming], title: str = "") -> go.Figure:
    """Time per product against density, dense vs ``torch.sparse`` CSR, one panel per batch size (notebook 01).

    Each panel also draws two ideals, from the dense time at the highest density: CSR if time
    followed the weight bytes read (x CSR bytes / dense bytes, the memory roof's promise) and
    if it followed the multiply-adds (x kept / kept at that density, the compute roof's).
    Traces per panel, in order: dense, CSR, bytes ideal, multiply-add ideal. Density falls to the right.
    """
    batches = sorted({r.batch_size for r in records})
    if not batches:
        raise ValueError("fig_sparse_timings needs the records of hardware.time_sparse_matvec")
    fig = make_subplots(rows=1, cols=len(batches), subplot_titles=[f"batch {b}" for b in batches],
                        horizontal_spacing=0.1)
    for col, batch in enumerate(batches, start=1):
        rs = sorted((r for r in records if r.batch_size == batch), key=lambda r: -r.density)
        x = [100 * r.density for r in rs]
        full = max(rs, key=lambda r: r.density)
        lines = [
            ("dense (zeros stored)", [r.dense_s for r in rs]),
            ("torch.sparse CSR", [r.sparse_s for r in rs]),
            ("CSR if time followed the weight bytes", [full.dense_s * r.sparse_bytes / full.dense_bytes for r in rs]),
            ("CSR if time followed the multiply-adds", [full.dense_s * r.kept / full.kept for r in rs]),
        ]
        for i, (name, ys) in enumerate(lines):
            look = style.series(i)
            fig.add_trace(go.Scatter(
                x=x, y=[1e6 * y for y in ys], mode="lines+markers", name=name, legendgroup=name,
                showlegend=col == 1,
                line=dict(color=look["color"], dash=look["dash"], width=1.5 if i >= 2 else 2.5),
                marker=dict(symbol=look["symbol"], size=8, color=look["color"]),
                customdata=[[r.kept, r.speedup] for r in rs],
                hovertemplate=f"{name}<br>density %{{x:.3g}}% (%{{customdata[0]:,}} weights kept)<br>"
                              "%{y:.4g} µs per product<br>dense / CSR: %{customdata[1]:.2f}x<extra></extra>",
            ), row=1, col=col)
        fig.update_xaxes(type="log", autorange="reversed", title="density (% of weights kept)", tickvals=x,
                         ticktext=[f"{v:g}%" for v in x], row=1, col=col)
        fig.update_yaxes(type="log", title="µs per product" if col == 1 else None, row=1, col=col)
    first = records[0]
    fig.update_layout(
        title=title or f"{first.shape[0]} x {first.shape[1]} layer, dense vs CSR: time per product on "
                       f"{first.threads} thread{'s' if first.threads > 1 else ''}, fastest of repeats",
        template="plotly_white", height=420, legend=dict(orientation="h", y=-0.22),
    )
    return fig


def _energy_kind(op: str) -> tuple[str, str]:
    if "read" in op:
        return "memory", DRAM_COLOR
    if "float" in op:
        return "float arithmetic", style.BLUE
    return "integer arithmetic", style.ORANGE


def fig_energy_table(energy: Mapping[str, float] = ENERGY_45NM_PJ) -> go.Figure:
    """Horowitz's energy per operation at 45 nm, on a log scale (notebook 01)."""
    ops = sorted(energy, key=energy.get)
    fig = go.Figure()
    seen = set()
    for op in ops:
        kind, color = _energy_kind(op)
        fig.add_trace(
            go.Bar(
                x=[energy[op]], y=[op], orientation="h", marker_color=color, name=kind,
                legendgroup=kind, showlegend=kind not in seen,
                text=[f"{energy[op]:g} pJ"], textposition="outside",
                hovertemplate="%{y}: %{x:g} pJ<extra></extra>",
            )
        )
        seen.add(kind)
    fig.update_layout(
        title="Energy per operation, 45 nm (Horowitz, ISSCC 2014): a DRAM read costs 128 SRAM reads, 6400 int adds",
        xaxis=dict(type="log", title="energy (pJ, log scale)", range=[-2, 3.6]),
        yaxis=dict(categoryorder="array", categoryarray=ops),
        template="plotly_white",
        height=420,
        bargap=0.25,
    )
    return fig


def fmt_bytes(b: float) -> str:
    """Bytes as B, kB, MB or GB (decimal units)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= size:
            return f"{b / size:.3g} {unit}"
    return f"{b:.3g} B"


def fmt_energy(pj: float) -> str:
    """pJ as a readable energy: pJ, nJ, uJ, mJ or J."""
    for unit, size in (("J", 1e12), ("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if pj >= size:
            return f"{pj / size:.3g} {unit}"
    return f"{pj:.3g} pJ"


def weight_energy_data(before: WeightEnergy, after: WeightEnergy, sram_bytes: float) -> dict:
    """The numbers ``fig_weight_energy`` draws, so a widget can update its traces in place."""
    groups = ["fp32", f"compressed {after.compression:.3g}x"]
    both = (before, after)
    return {
        "groups": groups,
        "size_x": groups + ["on-chip SRAM"],
        "bytes": [e.model_bytes for e in both] + [sram_bytes],
        "bytes_text": [fmt_bytes(e.model_bytes) + (" (fits)" if e.fits_on_chip else " (too big)") for e in both]
        + [fmt_bytes(sram_bytes)],
        "bytes_color": [SRAM_COLOR if e.fits_on_chip else DRAM_COLOR for e in both] + [style.GREY],
        "dram": [e.dram_pj / 1e6 for e in both],
        "sram": [e.sram_pj / 1e6 for e in both],
        "dram_text": [fmt_energy(e.dram_pj) + ("" if e.fits_on_chip else " (used)") for e in both],
        "sram_text": [fmt_energy(e.sram_pj) + (" (used)" if e.fits_on_chip else "") for e in both],
        "dram_opacity": [0.35 if e.fits_on_chip else 1.0 for e in both],
        "sram_opacity": [1.0 if e.fits_on_chip else 0.35 for e in both],
    }


def fig_weight_energy(before: WeightEnergy, after: WeightEnergy, sram_bytes: float, title: str = "") -> go.Figure:
    """Model size against on-chip memory, and the energy of reading every weight once (notebook 01).

    Left: the model's bytes before/after compression beside the SRAM capacity
    (green: fits). Right: reading all weights from DRAM vs SRAM (uJ, log); the
    memory actually used is solid, the other faded. Traces: sizes, DRAM, SRAM.
    """
    d = weight_energy_data(before, after, sram_bytes)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("model size vs on-chip SRAM", "energy to read every weight once"),
                        horizontal_spacing=0.12)
    fig.add_trace(go.Bar(x=d["size_x"], y=d["bytes"], text=d["bytes_text"], textposition="outside",
                         marker_color=d["bytes_color"], name="bytes", showlegend=False,
                         hovertemplate="%{x}: %{text}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=d["groups"], y=d["dram"], text=d["dram_text"], textposition="outside",
                         name="from DRAM (640 pJ / 32 bit)", marker=dict(color=DRAM_COLOR, opacity=d["dram_opacity"]),
                         hovertemplate="%{x} from DRAM: %{text}<extra></extra>"), row=1, col=2)
    fig.add_trace(go.Bar(x=d["groups"], y=d["sram"], text=d["sram_text"], textposition="outside",
                         name="from SRAM (5 pJ / 32 bit)", marker=dict(color=SRAM_COLOR, opacity=d["sram_opacity"]),
                         hovertemplate="%{x} from SRAM: %{text}<extra></extra>"), row=1, col=2)
    fig.update_yaxes(type="log", title="bytes", row=1, col=1)
    fig.update_yaxes(type="log", title="µJ per inference", row=1, col=2)
    fig.update_layout(title=title, template="plotly_white", height=440, barmode="group",
                      legend=dict(orientation="h", y=-0.15))
    return fig
