"""Figures for notebook 04 (Huffman coding): symbol statistics, the code tree, coders compared, the size waterfall."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dclab.codec import huffman
from dclab.codec.entropy import CODERS, CoderSize, SymbolCost
from dclab.viz import style

CODER_COLORS = dict(zip(CODERS, [style.GREY, style.BLUE, style.GREEN, style.ORANGE, style.VERMILLION, style.BLACK]))
CODER_PATTERNS = dict(zip(CODERS, style.PATTERNS))
"""Each coder's colour and bar pattern: grouped bars differ in both."""
STAGE_COLORS = [style.GREY, style.BLUE, style.ORANGE, style.GREEN]


def fig_symbol_histograms(streams: Mapping[str, np.ndarray], title: str = "") -> go.Figure:
    """Each stream's symbol counts (bars) and Huffman code lengths (dots), side by side (notebook 04).

    ``streams`` maps a caption (e.g. ``"ip1 weight indices"``) to its symbols.
    Frequent symbols get short codewords: the dots fall where the bars rise.
    """
    names = list(streams)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names,
                        specs=[[{"secondary_y": True}] * len(names)], horizontal_spacing=0.1)
    for col, name in enumerate(names, start=1):
        counts = np.bincount(np.asarray(streams[name], dtype=np.int64).ravel())
        lengths = huffman.length_array(counts)
        used = np.flatnonzero(counts)
        fig.add_trace(go.Bar(x=used, y=counts[used], marker_color=style.BLUE, name="count", showlegend=col == 1,
                             legendgroup="count",
                             hovertemplate="symbol %{x}: %{y:,} times<extra></extra>"), row=1, col=col)
        fig.add_trace(go.Scatter(x=used, y=lengths[used], mode="markers", marker=dict(color=style.VERMILLION, size=7),
                                 name="Huffman code length (bits)", showlegend=col == 1, legendgroup="len",
                                 hovertemplate="symbol %{x}: %{y}-bit codeword<extra></extra>"),
                      row=1, col=col, secondary_y=True)
        fig.update_yaxes(title_text="count" if col == 1 else None, row=1, col=col, secondary_y=False)
        fig.update_yaxes(title_text="code length (bits)" if col == len(names) else None,
                         range=[0, int(lengths.max(initial=1)) + 1], dtick=2, row=1, col=col, secondary_y=True,
                         showgrid=False)
        fig.update_xaxes(title_text="symbol", row=1, col=col)
    fig.update_layout(template="plotly_white", height=380, title=title or "Symbol counts and Huffman code lengths",
                      legend=dict(orientation="h", y=-0.22), bargap=0.1)
    return fig


def fig_code_tree(symbols: np.ndarray | Sequence[int], labels: Mapping[int, str] | None = None,
                  title: str = "") -> go.Figure:
    """The canonical Huffman code as a tree (an icicle, root on top; 0 = left branch) (notebook 04).

    Each box is a prefix; a leaf is a symbol whose codeword is the path to it,
    and a box's width is how often its prefix occurs. ``labels`` names symbols
    (e.g. the centroid value of a codebook index).
    """
    counts = np.bincount(np.asarray(symbols, dtype=np.int64).ravel())
    lengths = huffman.length_array(counts)
    codes = huffman.canonical_codes(lengths)
    weight: dict[str, int] = {}
    leaf: dict[str, int] = {}
    for s, code in codes.items():
        leaf[code] = s
        for k in range(len(code) + 1):
            weight[code[:k]] = weight.get(code[:k], 0) + int(counts[s])
    ids = sorted(weight, key=lambda p: (len(p), p))
    text = []
    for p in ids:
        if p in leaf:
            s = leaf[p]
            name = labels.get(s, str(s)) if labels else str(s)
            text.append(f"<b>{name}</b><br>{p}")
        else:
            text.append("root" if p == "" else p)
    node = lambda p: "root" if p == "" else "code " + p  # noqa: E731 - ids must not look like numbers
    fig = go.Figure(go.Icicle(
        ids=[node(p) for p in ids],
        labels=text,  # plotly draws nothing without labels
        parents=["" if p == "" else node(p[:-1]) for p in ids],
        values=[weight[p] for p in ids],
        branchvalues="total",
        textinfo="label",
        sort=False,  # branch 0 left of branch 1
        tiling=dict(orientation="v"),
        marker=dict(colors=[len(p) for p in ids], colorscale="Blues", reversescale=True),
        hovertemplate="%{id}: %{value:,} symbols<extra></extra>",
    ))
    fig.update_layout(template="plotly_white", height=520, margin=dict(t=50, l=10, r=10, b=10),
                      title=title or "The Huffman code tree (codeword = path from the root; width = frequency)")
    return fig


def fig_code_table(costs: Sequence[SymbolCost], labels: Mapping[int, str] | None = None,
                   title: str = "") -> go.Figure:
    """The code table: symbol, its meaning, count, probability, ideal and Huffman bits, codeword (notebook 04)."""
    rows = list(costs)
    header = ["symbol", "value", "count", "probability", "-log2 p (bits)", "Huffman bits", "codeword"]
    cells = [
        [c.symbol for c in rows],
        [labels.get(c.symbol, "") if labels else "" for c in rows],
        [f"{c.count:,}" for c in rows],
        [f"{c.probability:.4f}" for c in rows],
        [f"{c.ideal_bits:.2f}" for c in rows],
        [c.huffman_bits for c in rows],
        [c.codeword for c in rows],
    ]
    fig = go.Figure(go.Table(
        header=dict(values=[f"<b>{h}</b>" for h in header], fill_color=style.LIGHT_GREY, align="left"),
        cells=dict(values=cells, align="left", font=dict(family="monospace", size=12), height=22),
        columnwidth=[50, 70, 60, 70, 80, 70, 120],
    ))
    fig.update_layout(height=min(900, 90 + 23 * len(rows)), margin=dict(t=40, l=10, r=10, b=10),
                      title=title or "The code table, most frequent symbol first")
    return fig


def fig_coder_comparison(rows: Sequence[Mapping[str, Any]], title: str = "") -> go.Figure:
    """Bits per symbol of each stream under each coder; side information stacked lighter (notebook 04).

    ``rows`` are ``dclab.codec.entropy.stream_table`` rows (``layer``, ``stream``,
    ``coder``, ``bits_per_symbol``, ``total_bits_per_symbol``...).
    """
    streams = list(dict.fromkeys(f"{r['layer']} {r['stream']}" for r in rows))
    coders = [c for c in CODERS if any(r["coder"] == c for r in rows)]
    fig = go.Figure()
    for coder in coders:
        sel = {f"{r['layer']} {r['stream']}": r for r in rows if r["coder"] == coder}
        payload = [sel[s]["bits_per_symbol"] if s in sel else None for s in streams]
        side = [sel[s]["total_bits_per_symbol"] - sel[s]["bits_per_symbol"] if s in sel else None for s in streams]
        color = CODER_COLORS.get(coder, style.GREY)
        pattern = style.pattern(CODER_PATTERNS.get(coder, ""))
        custom = [[sel[s]["payload_bytes"], sel[s]["side_bytes"], sel[s]["n_symbols"]] if s in sel else [0, 0, 0]
                  for s in streams]
        fig.add_trace(go.Bar(
            x=streams, y=payload, name=coder, marker_color=color, marker_pattern=pattern,
            offsetgroup=coder, legendgroup=coder,
            customdata=custom,
            hovertemplate=("%{x}, " + coder + ": %{y:.3f} bits/symbol<br>%{customdata[0]:,.0f} bytes payload"
                           " for %{customdata[2]:,} symbols<extra></extra>"),
        ))
        if any(v for v in side if v):
            fig.add_trace(go.Bar(
                x=streams, y=side, base=payload, name=f"{coder}: table", marker_color=color, marker_pattern=pattern,
                opacity=0.35,
                offsetgroup=coder, legendgroup=coder, showlegend=False, customdata=custom,
                hovertemplate=("%{x}, " + coder + " side information: +%{y:.3f} bits/symbol"
                               " (%{customdata[1]:,} bytes)<extra></extra>"),
            ))
    fig.update_layout(
        template="plotly_white", barmode="group", height=440,
        title=title or "Bits per symbol, measured (pale top: the code table / model the decoder also needs)",
        yaxis=dict(title="bits per symbol"), legend=dict(orientation="h", y=-0.18),
    )
    return fig


def fig_symbol_costs(costs: Sequence[SymbolCost], title: str = "") -> go.Figure:
    """Where Huffman loses: each symbol's ideal length -log2 p beside its whole-bit Huffman length (notebook 04).

    The lower panel weights the difference by probability: its sum is the
    redundancy (Huffman's mean length minus the entropy).
    """
    rows = list(costs)
    x = [str(c.symbol) for c in rows]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.08)
    fig.add_trace(go.Bar(x=x, y=[c.ideal_bits for c in rows], name="ideal: -log2 p", marker_color=style.GREEN,
                         marker_pattern=style.pattern("/"),
                         hovertemplate="symbol %{x}: %{y:.3f} bits ideally<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=x, y=[c.huffman_bits for c in rows], name="Huffman codeword", marker_color=style.BLUE,
                         hovertemplate="symbol %{x}: %{y}-bit codeword<extra></extra>"), row=1, col=1)
    excess = [c.probability * c.excess_bits for c in rows]
    fig.add_trace(go.Bar(x=x, y=excess, name="p x (Huffman - ideal)",
                         marker_color=[style.VERMILLION if e > 0 else style.GREEN for e in excess],
                         hovertemplate="symbol %{x}: %{y:+.4f} bits per symbol of the stream<extra></extra>"),
                  row=2, col=1)
    total = sum(excess)
    fig.update_yaxes(title_text="bits", row=1, col=1)
    fig.update_yaxes(title_text="bits/symbol", row=2, col=1)
    fig.update_xaxes(title_text="symbol (most frequent first)", type="category", row=2, col=1)
    fig.update_layout(template="plotly_white", height=480, barmode="group", legend=dict(orientation="h", y=1.08),
                      title=title or f"Huffman vs the ideal code lengths: redundancy {total:.4f} bits/symbol")
    return fig


def _ratio(dense: int, size: int) -> str:
    return f"{dense / size:.1f}x" if size else ""


def fig_pipeline(stage_bytes: Mapping[str, int], layers: Sequence[Mapping[str, Any]], title: str = "") -> go.Figure:
    """The size waterfall (log scale) and the per-layer bits of Table 2, for the pipeline widget (notebook 04).

    Left: each stage's size in bytes (solid) and what that stage removed (pale,
    up to the previous size). Right: bits per stored entry, weights + gaps, at
    fixed width and Huffman-coded. ``layers`` rows need ``layer``,
    ``weight bits P+Q``, ``weight bits +H``, ``gap bits P+Q``, ``gap bits +H``
    (``LayerReport.row()``).
    """
    fig = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.12,
                        subplot_titles=("Model size through the stages (bytes, log scale)",
                                        "Bits per stored entry: weight index + gap"))
    _add_waterfall(fig, stage_bytes)
    _add_layer_bits(fig, layers)
    fig.update_layout(template="plotly_white", height=430, barmode="overlay", title=title or None,
                      legend=dict(orientation="h", y=-0.2), margin=dict(t=60 if not title else 90))
    return fig


def waterfall_values(stage_bytes: Mapping[str, int]) -> dict[str, list]:
    """The numbers the waterfall draws: stage names, sizes, and the saved part of each step."""
    stages = list(stage_bytes)
    sizes = [int(stage_bytes[s]) for s in stages]
    saved = [0] + [max(prev - cur, 0) for prev, cur in zip(sizes, sizes[1:])]
    dense = sizes[0] if sizes else 1
    text = [f"{s:,} B<br>{_ratio(dense, s)}" for s in sizes]
    low, high = max(min(sizes, default=1), 1), max(max(sizes, default=1), 1)
    log_range = [math.log10(low) - 0.35, math.log10(high) + 0.45]  # room for the labels above the bars
    return {"stages": stages, "sizes": sizes, "saved": saved, "text": text, "range": log_range}


def _add_waterfall(fig: go.Figure, stage_bytes: Mapping[str, int]) -> None:
    v = waterfall_values(stage_bytes)
    fig.add_trace(go.Bar(
        x=v["stages"], y=v["sizes"], name="size", marker_color=STAGE_COLORS[: len(v["sizes"])],
        text=v["text"], textposition="outside", cliponaxis=False, showlegend=False, textfont=dict(color=style.BLACK),
        hovertemplate="%{x}: %{y:,} bytes<extra></extra>",
    ), row=1, col=1)
    fig.add_trace(go.Bar(
        x=v["stages"], y=v["saved"], base=v["sizes"], name="removed by this stage", marker_color=style.LIGHT_GREY,
        opacity=0.6, hovertemplate="%{x} removed %{y:,} bytes<extra></extra>", showlegend=True,
    ), row=1, col=1)
    fig.update_yaxes(type="log", title_text="bytes", range=v["range"], row=1, col=1)


def _add_layer_bits(fig: go.Figure, layers: Sequence[Mapping[str, Any]]) -> None:
    names = [str(r["layer"]) for r in layers]
    groups = (
        ("P+Q", "weight bits P+Q", "gap bits P+Q", style.GREY, "/"),
        ("+Huffman", "weight bits +H", "gap bits +H", style.BLUE, ""),
    )
    for label, wkey, ikey, color, shape in groups:
        w = [float(r[wkey]) for r in layers]
        i = [float(r[ikey]) for r in layers]
        fig.add_trace(go.Bar(x=names, y=w, name=f"weight index, {label}", marker_color=color,
                             marker_pattern=style.pattern(shape), offsetgroup=label,
                             hovertemplate="%{x}: %{y:.2f} bits per weight index<extra>" + label + "</extra>"),
                      row=1, col=2)
        fig.add_trace(go.Bar(x=names, y=i, base=w, name=f"gap, {label}", marker_color=color,
                             marker_pattern=style.pattern(shape), opacity=0.5,
                             offsetgroup=label, text=[f"{a + b:.1f}" for a, b in zip(w, i)], textposition="outside",
                             hovertemplate="%{x}: %{y:.2f} bits per gap<extra>" + label + "</extra>"),
                      row=1, col=2)
    fig.update_yaxes(title_text="bits per entry", rangemode="tozero", row=1, col=2)


def fig_coder_sizes(sizes: Sequence[CoderSize], title: str = "") -> go.Figure:
    """One stream's bytes under each coder, payload and side information (notebook 04)."""
    fig = go.Figure()
    names = [s.coder for s in sizes]
    fig.add_trace(go.Bar(x=names, y=[s.payload_bytes for s in sizes], name="payload",
                         marker_color=[CODER_COLORS.get(n, style.GREY) for n in names],
                         text=[f"{s.total_bytes:,.0f} B, {s.total_bits_per_symbol:.2f} bits/symbol" for s in sizes],
                         textposition="outside", cliponaxis=False,
                         hovertemplate="%{x}: %{y:,.0f} bytes<extra>payload</extra>"))
    fig.add_trace(go.Bar(x=names, y=[s.side_bytes for s in sizes], name="table / model", marker_color=style.LIGHT_GREY,
                         hovertemplate="%{x}: %{y:,} bytes<extra>side information</extra>"))
    fig.update_layout(template="plotly_white", barmode="stack", height=360, title=title or "Bytes per coder",
                      yaxis=dict(title="bytes"))
    return fig


def symbol_labels(centroids: Sequence[float] | np.ndarray) -> dict[int, str]:
    """Label codebook indices by their centroid value, ``{0: "0 (filler)", 1: "-0.123"...}``, for the code tree.

    In a pruned layer's stream, index 0 (the value 0.0) appears only as a filler entry.
    """
    return {i: f"{float(c):+.3f}" if c else "0 (filler)" for i, c in enumerate(np.asarray(centroids).ravel())}


__all__ = [
    "fig_code_table",
    "fig_code_tree",
    "fig_coder_comparison",
    "fig_coder_sizes",
    "fig_pipeline",
    "fig_symbol_costs",
    "fig_symbol_histograms",
    "symbol_labels",
    "waterfall_values",
]
