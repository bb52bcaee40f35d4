"""Notebook 05's design-space explorer driven in-process: the count shown is the built module's count."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torchvision

from dclab.models import count_parameters
from dclab.models import squeezenet as sqn


@pytest.fixture(scope="module")
def explorer():
    from dclab.widgets.squeezenet import design_space_explorer

    return design_space_explorer()


def _shown_parameters(box) -> int:
    return int(re.search(r'dclab-squeeze-params">([\d,]+)<', box.size_label.value).group(1).replace(",", ""))


def _shown_megabytes(box) -> float:
    return float(re.search(r'dclab-squeeze-mb">([\d.]+)<', box.size_label.value).group(1))


def test_starts_at_squeezenet_1_0_with_torchvision_count(explorer):
    explorer.sr.value, explorer.pct3x3.value = 0.125, 0.5
    expected = count_parameters(torchvision.models.squeezenet1_0(weights=None))
    assert _shown_parameters(explorer) == expected == explorer.state["parameters"]
    assert _shown_megabytes(explorer) == pytest.approx(4 * expected / 1e6, abs=0.005)


@pytest.mark.parametrize("sr,pct3x3", [(0.5, 0.5), (0.5, 0.01), (1.0, 0.99), (0.25, 0.75)])
def test_sliders_build_the_variant_and_show_its_count(explorer, sr, pct3x3):
    before = _shown_parameters(explorer)
    explorer.sr.value, explorer.pct3x3.value = sr, pct3x3
    shown = _shown_parameters(explorer)
    built = count_parameters(sqn.squeezenet_variant(sr, pct3x3))  # built again here, independently
    assert shown == built == explorer.state["analytic"] == count_parameters(explorer.state["model"])
    assert shown != before  # every case above differs from the one before it
    assert explorer.state["fires"] == sqn.design_space(sr, pct3x3)
    assert f"<td>fire9</td><td>{explorer.state['fires'][-1].s1x1}</td>" in explorer.fires_label.value


def test_figure_marks_the_choice_and_the_curves_pass_through_it(explorer):
    explorer.sr.value, explorer.pct3x3.value = 0.375, 0.25
    mb = 4 * count_parameters(sqn.squeezenet_variant(0.375, 0.25)) / 1e6
    data = explorer.figure.data
    assert data[1].x == (0.375,) and data[1].y[0] == pytest.approx(mb)
    assert data[3].x == (0.25,) and data[3].y[0] == pytest.approx(mb)
    sr_curve = dict(zip(np.round(data[0].x, 3), data[0].y))
    pct_curve = dict(zip(np.round(data[2].x, 2), data[2].y))
    assert sr_curve[0.375] == pytest.approx(mb) and pct_curve[0.25] == pytest.approx(mb)
    assert list(data[0].y) == sorted(data[0].y)  # size grows with SR


def test_widgets_carry_stable_css_classes(explorer):
    assert "dclab-squeeze-explorer" in explorer._dom_classes
    assert "dclab-squeeze-sr" in explorer.sr._dom_classes
    assert "dclab-squeeze-pct3x3" in explorer.pct3x3._dom_classes
    assert "dclab-squeeze-size" in explorer.size_label._dom_classes
    assert "dclab-squeeze-figure" in explorer.figure._dom_classes
