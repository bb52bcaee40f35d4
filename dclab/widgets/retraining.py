"""The control every live page shares to answer on the retrained ladder or not, and the line that names the rung.

Deep Compression retrains the survivors after pruning; a live page cannot retrain at every slider
position, so it answers on the nearest rung of the retrained ladder (``dclab.pipeline.ladder``). The
toggle compares that with the same setting on the baseline without retraining (notebooks 02, 04, 06).
"""
from __future__ import annotations

from html import escape

import ipywidgets as W

from dclab.viz import style


def retrained_toggle(available: bool, what: str = "network", tooltip: str | None = None) -> W.ToggleButtons:
    """``retrained`` / ``not retrained`` (value True / False); disabled, on ``not retrained``, without a ladder.
    ``tooltip`` replaces the ladder's (notebook 03 retrains centroids, not a ladder)."""
    if tooltip is None:
        tooltip = (f"answer on the nearest {what} retrained after pruning (the ladder), or on the baseline "
                   "pruned without retraining") if available else \
            "no retrained ladder for this network (python -m dclab prepare climbs the zoo's ladders)"
    toggle = W.ToggleButtons(
        options=[("retrained", True), ("not retrained", False)], value=bool(available),
        disabled=not available, style={"button_width": "110px"}, tooltip=tooltip,
    )
    toggle.add_class("dclab-retrained")
    return toggle


def rung_html(rung: int, label: str, available: bool = True, asked: bool = False) -> str:
    """``computed on <the rung>``, with the rung's index in ``data-rung`` (0: the baseline, not retrained);
    ``asked``: *retrained* was chosen, but no rung prunes every layer at most as much as the setting."""
    hint = ""
    if rung == 0:
        if not available:
            hint = " (no retrained ladder for this network)"
        elif asked:
            hint = " (the setting prunes some layer less than the ladder's first rung does: nothing retrained fits)"
        else:
            hint = " (choose <i>retrained</i> to see what retraining buys)"
    return (
        f'<div class="dclab-rung" data-rung="{rung}" style="color:{style.DARK_GREY};margin-top:2px">'
        f"computed on {escape(label)}{hint}</div>"
    )
