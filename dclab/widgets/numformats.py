"""Notebook 01's number-format explorer: one value, its bits in every format, what is stored, the error."""

from __future__ import annotations

import math
from html import escape

import ipywidgets as W

from dclab import numformats as nf
from dclab.errors import DclabError
from dclab.viz import style

FIELD_COLORS = {"sign": style.VERMILLION, "exponent": style.SKY_BLUE, "mantissa": style.GREEN,
                "integer": style.ORANGE, "fraction": style.GREEN}
"""Each bit field's colour: a pale tint of it behind the bits, the full colour in its underline."""
FIELD_LINES = {"sign": "solid", "exponent": "double", "mantissa": "dotted", "integer": "solid", "fraction": "dotted"}
"""Each field's underline style: a second cue beside colour (and every field's name is in its tooltip)."""
COLORS = {part: style.tint(colour, 0.6) for part, colour in FIELD_COLORS.items()}
"""The pale backgrounds, black text on them."""
_CELL = "padding:2px 8px;text-align:{};border-bottom:1px solid " + style.LIGHT_GREY

_WIDE = {"description_width": "initial"}


def bits_html(fields: list[tuple[str, str]]) -> str:
    """Bit fields as monospace spans, each field its own tint and underline, named in its tooltip (notebook 01)."""
    return "".join(
        f'<span class="dclab-field-{part}" title="{part}" style="{_field_style(part)};'
        f'font-family:monospace;font-size:1.05em;padding:1px 2px;margin-right:2px">{bits}</span>'
        for part, bits in fields
        if bits
    )


def _field_style(part: str) -> str:
    return f"background:{COLORS[part]};border-bottom:3px {FIELD_LINES[part]} {FIELD_COLORS[part]}"


def _num(x: float, spec: str = ".6g") -> str:
    if math.isnan(x):
        return "nan"
    return format(x, spec)


def _legend() -> str:
    keys = "".join(
        f'<span style="{_field_style(k)};padding:1px 6px;margin-right:6px;font-family:monospace">{k}</span>'
        for k in COLORS
        if k != "fraction"
    )
    return f'<div style="margin:4px 0">{keys}<span style="font-family:monospace;{_field_style("fraction")};padding:1px 6px">fraction</span></div>'


def representations_html(rows: list[nf.Representation]) -> str:
    """The explorer's main table: format, coloured bits, stored value, error (notebook 01)."""
    head = "".join(
        f'<th style="{_CELL.format("left")}">{h}</th>'
        for h in ("format", "bits", "stored value", "error (stored - value)", "relative error", "")
    )
    body = []
    for r in rows:
        body.append(
            f'<tr data-format="{escape(r.format)}">'
            f'<td style="{_CELL.format("left")}"><b>{escape(r.format)}</b></td>'
            f'<td class="dclab-bits" data-bits="{r.bits}" style="{_CELL.format("left")}">{bits_html(r.fields)}</td>'
            f'<td class="dclab-stored" style="{_CELL.format("right")};font-family:monospace">{escape(repr(r.stored))}</td>'
            f'<td class="dclab-error" style="{_CELL.format("right")};font-family:monospace">{_num(r.error, "+.3e")}</td>'
            f'<td style="{_CELL.format("right")};font-family:monospace">{_num(r.rel_error, ".2e")}</td>'
            f'<td style="{_CELL.format("left")};color:{style.ERROR}">{escape(r.note)}</td></tr>'
        )
    return f'{_legend()}<table class="dclab-numformat-table" style="border-collapse:collapse"><tr>{head}</tr>{"".join(body)}</table>'


def ranges_html(formats: list[nf.Format]) -> str:
    """Range and precision of each format as an HTML table (notebook 01)."""
    head = "".join(
        f'<th style="{_CELL.format("right" if i else "left")}">{h}</th>'
        for i, h in enumerate(("format", "bits", "max", "min normal", "min subnormal", "epsilon / step", "layout"))
    )
    body = []
    for f in formats:
        info = f.info()
        cells = [escape(info.name), str(info.bits), _num(info.max, ".6g")] + [_num(v, ".4g") for v in info[3:6]]
        tds = "".join(f'<td style="{_CELL.format("right" if i else "left")}">{c}</td>' for i, c in enumerate(cells))
        body.append(f'<tr>{tds}<td style="{_CELL.format("left")};color:{style.DARK_GREY}">{escape(f.describe())}</td></tr>')
    return f'<table class="dclab-range-table" style="border-collapse:collapse"><tr>{head}</tr>{"".join(body)}</table>'


def format_explorer(value: float = 0.1, scale: float = 0.01, int_bits: int = 3, frac_bits: int = 4) -> W.VBox:
    """Type or slide a value; see its bits in fp32, fp16, bf16, fp8, int8 and fixed point (notebook 01).

    Attributes for tests: ``value_text``, ``magnitude``, ``scale``, ``int_bits``,
    ``frac_bits`` (controls); ``bits_html``, ``ranges_html`` (HTML widgets);
    ``rows`` ({format name: Representation}) and ``formats`` (the formats shown).
    """
    value_text = W.FloatText(value=value, description="value", style=_WIDE, layout=W.Layout(width="260px"))
    value_text.add_class("dclab-numformat-value")
    magnitude = W.FloatLogSlider(value=abs(value) or 1.0, base=10, min=-8, max=6, step=0.01, description="|value|", style=_WIDE,
                                 readout_format=".4g", continuous_update=True, layout=W.Layout(width="480px"))
    magnitude.add_class("dclab-numformat-magnitude")
    scale_slider = W.FloatLogSlider(value=scale, base=10, min=-5, max=2, step=0.05, description="int8 scale", style=_WIDE,
                                    readout_format=".3g", layout=W.Layout(width="420px"))
    int_slider = W.IntSlider(value=int_bits, min=0, max=15, description="integer bits", style=_WIDE)
    frac_slider = W.IntSlider(value=frac_bits, min=0, max=16, description="fraction bits", style=_WIDE)
    out_html = W.HTML()
    out_html.add_class("dclab-numformat-bits")
    range_html = W.HTML()
    range_html.add_class("dclab-numformat-ranges")
    message = W.HTML()

    box = W.VBox([
        W.HTML("<b>Type a value (Enter) or drag its magnitude:</b>"),
        W.HBox([value_text, magnitude]),
        W.HBox([scale_slider, int_slider, frac_slider]),
        message,
        out_html,
        W.HTML("<b>Range and precision</b> (int8 and fixed point follow the sliders above)"),
        range_html,
    ])
    box.add_class("dclab-numformat-explorer")
    box.value_text, box.magnitude, box.scale = value_text, magnitude, scale_slider
    box.int_bits, box.frac_bits = int_slider, frac_slider
    box.bits_html, box.ranges_html, box.message = out_html, range_html, message
    box.rows, box.formats = {}, []
    syncing = [False]

    def current_formats() -> list[nf.Format]:
        fmts: list[nf.Format] = list(nf.FLOAT_FORMATS.values()) + [nf.int8(scale_slider.value)]
        try:
            fmts.append(nf.fixed_point(int_slider.value, frac_slider.value))
            message.value = ""
        except DclabError as exc:
            message.value = f'<span style="color:{style.ERROR}">fixed point: {escape(str(exc))}</span>'
        return fmts

    def refresh(*_) -> None:
        fmts = current_formats()
        rows = [nf.represent(value_text.value, f) for f in fmts]
        box.formats = fmts
        box.rows = {r.format: r for r in rows}
        out_html.value = representations_html(rows)
        range_html.value = ranges_html(fmts)

    def on_text(change) -> None:
        if not syncing[0] and math.isfinite(change["new"]) and change["new"] != 0:
            syncing[0] = True
            magnitude.value = min(max(abs(change["new"]), 10.0**magnitude.min), 10.0**magnitude.max)
            syncing[0] = False
        refresh()

    def on_magnitude(change) -> None:
        if syncing[0]:
            return
        typed = abs(value_text.value)
        if typed > 0 and abs(math.log10(change["new"]) - math.log10(typed)) <= magnitude.step / 2 + 1e-9:
            return  # the browser snapped the slider to its grid: keep the typed value
        syncing[0] = True
        value_text.value = math.copysign(change["new"], value_text.value or 1.0)  # on_text refreshes
        syncing[0] = False

    value_text.observe(on_text, names="value")
    magnitude.observe(on_magnitude, names="value")
    for w in (scale_slider, int_slider, frac_slider):
        w.observe(refresh, names="value")
    refresh()
    return box
