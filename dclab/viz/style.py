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

SERIES = (BLUE, ORANGE, GREEN, VERMILLION, SKY_BLUE, PURPLE, YELLOW, BLACK)
"""Colours for the traces of one figure, in order."""

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
"""Line dashes, in the order of ``SERIES``: a second cue beside colour."""

MARKERS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "hexagon")
"""Marker symbols, in the order of ``SERIES``."""

KEPT, REMOVED, CENTROID, PAPER = BLUE, GREY, ORANGE, BLACK
"""Roles used across the notebooks: kept weights, pruned ones, shared values, the papers' figures."""


def series(i: int) -> dict:
    """Colour, dash and marker of the ``i``-th trace, for ``go.Scatter(line=..., marker=...)``."""
    return {"color": SERIES[i % len(SERIES)], "dash": DASHES[i % len(DASHES)], "symbol": MARKERS[i % len(MARKERS)]}
