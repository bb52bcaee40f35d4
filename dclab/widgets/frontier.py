"""Notebook 07's chart as a widget: show or hide each kind of point, by what it counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from dclab.viz.frontier import COUNTS, fig_rate_accuracy

KINDS = {"files": "dclab's files", **{kind: label.removeprefix("published: ") for kind, (_, label) in COUNTS.items()},
         "goal": "the goal"}
"""The chart's kinds of points, each with its checkbox (a published kind appears only if a record counts it)."""


def _kind(trace: Any) -> str:
    name = trace.name or ""
    if name.startswith("dclab"):
        return "files"
    if name.startswith("goal"):
        return "goal"
    return next((kind for kind, (_, label) in COUNTS.items() if label == name), "files")


def frontier_explorer(points: Sequence[Any], published: Sequence[Mapping[str, Any]], titles: Mapping[str, str],
                      goals: Mapping[str, Mapping[str, float]] | None = None) -> W.VBox:
    """``fig_rate_accuracy`` with a checkbox per kind of point (notebook 07): hide the published points that
    count parameters, say, to see which claims are closest to a file.

    Attributes for tests: ``figure`` (FigureWidget), ``boxes`` (``{kind: Checkbox}``), ``visible()`` (kind -> shown).
    """
    kinds = {_kind(t) for t in fig_rate_accuracy(points, published, titles, goals).data}
    boxes = {kind: W.Checkbox(value=True, description=label, indent=False, layout=W.Layout(width="auto"))
             for kind, label in KINDS.items() if kind in kinds}
    fig = go.FigureWidget(fig_rate_accuracy(points, published, titles, goals))  # complete before it is wrapped
    fig.add_class("dclab-frontier-figure")

    def refresh(_=None) -> None:
        with fig.batch_update():
            for trace in fig.data:
                trace.visible = boxes[_kind(trace)].value

    for box in boxes.values():
        box.observe(refresh, names="value")
    row = W.HBox([W.HTML("<b>show</b>&nbsp;"), *boxes.values()], layout=W.Layout(flex_flow="row wrap"))
    explorer = W.VBox([row, fig])
    explorer.add_class("dclab-frontier")
    explorer.figure, explorer.boxes = fig, boxes
    explorer.visible = lambda: {kind: any(t.visible is not False for t in fig.data if _kind(t) == kind) for kind in boxes}
    return explorer
