"""One palette for every figure: Okabe-Ito's colour-blind-safe colours, with dashes and markers as a second cue.

Okabe and Ito (2008), "Color Universal Design": eight colours that stay distinct under the common forms of
colour blindness. A figure never relies on colour alone: lines that must be told apart also differ in
dash (``DASHES``) and points in marker (``MARKERS``), and prose names traces by their legend label, not
by colour.
"""
from __future__ import annotations

BLACK = "#000000"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
GREEN = "#009E73"  # bluish green
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"  # reddish purple
GREY = "#999999"  # not an Okabe-Ito colour: for what is removed or in the background
LIGHT_GREY = "#DDDDDD"  # faint fills: table headers, what a stage saved, side information, cell rules
DARK_GREY = "#555555"  # secondary text and arrows
WHITE = "#FFFFFF"

SERIES = (BLUE, ORANGE, GREEN, VERMILLION, SKY_BLUE, PURPLE, YELLOW, BLACK)
"""Colours for the traces of one figure, in order."""

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
"""Line dashes, in the order of ``SERIES``: a second cue beside colour."""

MARKERS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "hexagon")
"""Marker symbols, in the order of ``SERIES``."""

PATTERNS = ("", "/", "x", ".", "\\", "+", "-", "|")
"""Bar fill patterns (``go.Bar(marker_pattern_shape=...)``), in the order of ``SERIES``: bars' second cue."""

KEPT, REMOVED, CENTROID, PAPER = BLUE, GREY, ORANGE, BLACK
"""Roles used across the notebooks: kept weights, pruned ones, shared values, the papers' figures."""

CUT, ERROR = VERMILLION, VERMILLION
"""A threshold drawn on a histogram; text that reports an error or a loss."""


def series(i: int) -> dict:
    """Colour, dash and marker of the ``i``-th trace, for ``go.Scatter(line=..., marker=...)``."""
    return {"color": SERIES[i % len(SERIES)], "dash": DASHES[i % len(DASHES)], "symbol": MARKERS[i % len(MARKERS)]}


def line(i: int, **kw) -> dict:
    """``go.Scatter(line=line(i))``: the ``i``-th series' colour and dash (extra keys, e.g. ``width``, added)."""
    s = series(i)
    return {"color": s["color"], "dash": s["dash"], **kw}


def marker(i: int, **kw) -> dict:
    """``go.Scatter(marker=marker(i))``: the ``i``-th series' colour and symbol."""
    s = series(i)
    return {"color": s["color"], "symbol": s["symbol"], **kw}


def pattern(i: int | str | list[str]) -> dict:
    """``go.Bar(marker_pattern=pattern(i))``: the ``i``-th fill pattern (or the shape(s) given) over the bar's colour.

    ``""`` is solid; ``fillmode="overlay"`` keeps the bar filled with its colour and draws the pattern on top.
    """
    shape = PATTERNS[i % len(PATTERNS)] if isinstance(i, int) else i
    return {"shape": shape, "fillmode": "overlay", "solidity": 0.25}


def tint(colour: str, amount: float = 0.6) -> str:
    """``colour`` mixed with white (``amount`` = share of white): a pale background that black text reads on."""
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must lie in [0, 1], got {amount}")
    rgb = [int(colour.lstrip("#")[k:k + 2], 16) for k in (0, 2, 4)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02X}" for c in rgb)
