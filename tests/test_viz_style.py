"""One palette (dclab.viz.style): no figure module types in a colour of its own, and the series cycle."""
from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from dclab.viz import style

VIZ = ROOT / "dclab" / "viz"
WIDGETS = ROOT / "dclab" / "widgets"

# being converted to dclab.viz.style by their owners (issue 12); remove a module from this list once it is
BEING_CONVERTED: set[str] = set()
CONVERTED_WIDGETS = ["numformats.py", "squeezenet.py", "dashboard.py", "coding.py", "hardware.py", "pruning.py", "sharing.py"]
"""Widget modules already on the palette (the others are still to do)."""

HEX = re.compile(r"#(?:[0-9a-fA-F]{8}|[0-9a-fA-F]{6}|[0-9a-fA-F]{3,4})\b")
RGB = re.compile(r"\brgba?\(")


def colour_literals(path: Path) -> list[str]:
    """``"line N: '#4c78a8'"`` for every hex or rgb() colour in the module's string constants (f-strings too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for match in HEX.findall(node.value) + RGB.findall(node.value):
                found.append(f"line {node.lineno}: {match!r}")
    return found


def test_the_scan_finds_a_hex_colour(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('A = "#4c78a8"\nB = f"color:#b00;{A}"\nC = "rgb(1, 2, 3)"\nD = "#not-hex"\n')
    assert sorted(f.split(": ")[1] for f in colour_literals(sample)) == ["'#4c78a8'", "'#b00'", "'rgb('"]


@pytest.mark.parametrize("name", sorted(p.name for p in VIZ.glob("*.py") if p.name != "style.py"))
def test_viz_modules_take_their_colours_from_style(name):
    if name in BEING_CONVERTED:
        pytest.skip(f"viz/{name} is being converted to dclab.viz.style")
    found = colour_literals(VIZ / name)
    assert not found, f"dclab/viz/{name} types colours in; use dclab.viz.style's constants:\n" + "\n".join(found)


@pytest.mark.parametrize("name", CONVERTED_WIDGETS)
def test_converted_widgets_take_their_colours_from_style(name):
    found = colour_literals(WIDGETS / name)
    assert not found, f"dclab/widgets/{name} types colours in; use dclab.viz.style's constants:\n" + "\n".join(found)


def test_the_exemptions_are_still_needed():
    done = sorted(name for name in BEING_CONVERTED if not colour_literals(VIZ / name))
    assert not done, f"viz/{', '.join(done)} no longer types colours in: remove it from BEING_CONVERTED"


def test_series_cycles_and_neighbours_differ_in_every_cue():
    period = math.lcm(len(style.SERIES), len(style.DASHES), len(style.MARKERS))
    for i in range(2 * period):
        s = style.series(i)
        assert s == {"color": style.SERIES[i % len(style.SERIES)], "dash": style.DASHES[i % len(style.DASHES)],
                     "symbol": style.MARKERS[i % len(style.MARKERS)]}
        assert s == style.series(i + period)
    first = [style.series(i) for i in range(len(style.DASHES))]
    for key in ("color", "dash", "symbol"):
        assert len({s[key] for s in first}) == len(first), f"the first traces share a {key}"
    assert style.line(2, width=3) == {"color": style.SERIES[2], "dash": style.DASHES[2], "width": 3}
    assert style.marker(1)["symbol"] == style.MARKERS[1]


def test_palette_is_okabe_ito_and_roles_use_it():
    okabe_ito = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
    assert set(style.SERIES) == okabe_ito and len(style.SERIES) == 8
    assert {style.KEPT, style.CENTROID, style.PAPER, style.CUT} <= okabe_ito
    assert style.REMOVED == style.GREY


def test_tint_and_pattern():
    assert style.tint(style.BLUE, 0.0) == style.BLUE and style.tint(style.BLUE, 1.0) == style.WHITE
    assert style.tint("#000000", 0.5) == "#808080"
    with pytest.raises(ValueError):
        style.tint(style.BLUE, 1.5)
    assert style.pattern(0)["shape"] == "" and style.pattern(len(style.PATTERNS) + 1)["shape"] == style.PATTERNS[1]
    assert style.pattern(["", "/"])["shape"] == ["", "/"]


def test_lines_of_one_figure_differ_in_dash_as_well_as_colour():
    from dclab.viz.numformats import fig_format_errors

    fig = fig_format_errors(torch.linspace(-1, 1, 500), {"fp16": "fp16", "bf16": "bf16", "fp8": "fp8_e4m3"})
    cues = [(t.line.color, t.line.dash) for t in fig.data]
    assert len({c for c, _ in cues}) == len({d for _, d in cues}) == len(fig.data) == 3


def test_design_space_curves_differ_in_dash():
    from dclab.viz.squeezenet import fig_design_space

    fig = fig_design_space([0.125, 0.25], [4.8, 6.0], [0.25, 0.5], [4.0, 4.8], 0.125, 0.5, 4.8, 4.8)
    assert fig.data[0].line.dash != fig.data[2].line.dash
    assert fig.data[4].line.dash not in (fig.data[0].line.dash, fig.data[2].line.dash)
