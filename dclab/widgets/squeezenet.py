"""Notebook 05's design-space explorer: SR and pct3x3 sliders build a real SqueezeNet and count it."""
from __future__ import annotations

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from dclab.models import count_parameters
from dclab.models.reference import FP32_BYTES, MB, reference_architecture
from dclab.models.squeezenet import (
    design_space,
    squeezenet_parameters,
    squeezenet_variant,
)
from dclab.viz.squeezenet import fig_design_space

SR_GRID = np.round(np.arange(1, 9) * 0.125, 3)  # the paper's grid: 0.125 ... 1.0
PCT_GRID = np.round(np.arange(1, 100) * 0.01, 2)  # 1% ... 99%


def _megabytes(parameters: int) -> float:
    return parameters * FP32_BYTES / MB


def _fires_table(fires: list) -> str:
    cells = "".join(
        f"<tr><td>fire{i}</td><td>{f.s1x1}</td><td>{f.e1x1}</td><td>{f.e3x3}</td></tr>"
        for i, f in enumerate(fires, start=2)
    )
    return (
        '<table class="dclab-squeeze-fires" style="border-collapse:collapse;font-size:90%">'
        "<tr><th>module</th><th>s1x1</th><th>e1x1</th><th>e3x3</th></tr>" + cells + "</table>"
    )


def design_space_explorer(sr: float = 0.125, pct3x3: float = 0.5) -> W.VBox:
    """SqueezeNet's design space live: SR and pct3x3 build the variant, its size is counted (notebook 05, section 3).

    SqueezeNet 1.0's macro-architecture with base_e = incr_e = 128 and freq = 2, as in
    the paper's design-space section: e_i = base_e + incr_e * floor(i / freq),
    s1x1 = SR * e_i, e3x3 = pct3x3 * e_i. Every change builds the real ``nn.Module``
    on the CPU and counts its parameters; the curves use the same formula.

    Attributes for tests: ``sr``, ``pct3x3`` (sliders); ``figure`` (FigureWidget);
    ``size_label``, ``fires_label``; ``state`` (``parameters`` counted on the built
    module, ``analytic``, ``megabytes``, ``fires``, ``model``).
    """
    alexnet = count_parameters(reference_architecture("alexnet"))  # meta device: no memory, milliseconds
    squeezenet = squeezenet_parameters(design_space())

    sr_slider = W.FloatSlider(value=sr, min=float(SR_GRID[0]), max=1.0, step=0.125, description="SR",
                              readout_format=".3f", continuous_update=False, layout=W.Layout(width="420px"))
    sr_slider.add_class("dclab-squeeze-sr")
    pct_slider = W.FloatSlider(value=pct3x3, min=0.01, max=0.99, step=0.01, description="pct3x3",
                               readout_format=".0%", continuous_update=False, layout=W.Layout(width="420px"))
    pct_slider.add_class("dclab-squeeze-pct3x3")
    size_label = W.HTML()
    size_label.add_class("dclab-squeeze-size")
    fires_label = W.HTML()
    fires_label.add_class("dclab-squeeze-fires")
    state: dict = {"alexnet_parameters": alexnet, "squeezenet_parameters": squeezenet}

    def curves(s: float, p: float) -> tuple[list[float], list[float]]:
        by_sr = [_megabytes(squeezenet_parameters(design_space(float(x), p))) for x in SR_GRID]
        by_pct = [_megabytes(squeezenet_parameters(design_space(s, float(x)))) for x in PCT_GRID]
        return by_sr, by_pct

    def measure() -> None:
        s, p = sr_slider.value, pct_slider.value
        model = squeezenet_variant(s, p)  # the real module, built on the CPU (tens of milliseconds)
        n = count_parameters(model)
        state.update(sr=s, pct3x3=p, model=model, fires=model.fires, parameters=n,
                     analytic=squeezenet_parameters(model.fires), megabytes=_megabytes(n))
        size_label.value = (
            f'<b><span class="dclab-squeeze-params">{n:,}</span></b> parameters = '
            f'<b><span class="dclab-squeeze-mb">{state["megabytes"]:.2f}</span> MB</b> in fp32; '
            f"{alexnet / n:.1f}x fewer parameters than AlexNet ({alexnet:,}), "
            f"{n / squeezenet:.2f}x SqueezeNet 1.0 ({squeezenet:,})"
        )
        fires_label.value = _fires_table(model.fires)

    measure()
    by_sr, by_pct = curves(sr, pct3x3)
    fig = go.FigureWidget(fig_design_space(SR_GRID, by_sr, PCT_GRID, by_pct, sr, pct3x3, state["megabytes"],
                                           _megabytes(squeezenet)))
    fig.add_class("dclab-squeeze-figure")

    def refresh(_change: dict | None = None) -> None:
        measure()
        by_sr, by_pct = curves(state["sr"], state["pct3x3"])
        with fig.batch_update():
            fig.data[0].y = by_sr
            fig.data[0].name = f"pct3x3 = {state['pct3x3']:.0%}"
            fig.data[1].x, fig.data[1].y = [state["sr"]], [state["megabytes"]]
            fig.data[2].y = by_pct
            fig.data[2].name = f"SR = {state['sr']:.3f}"
            fig.data[3].x, fig.data[3].y = [state["pct3x3"]], [state["megabytes"]]

    sr_slider.observe(refresh, names="value")
    pct_slider.observe(refresh, names="value")

    box = W.VBox([W.HBox([sr_slider, pct_slider]), size_label, fig, fires_label])
    box.add_class("dclab-squeeze-explorer")
    box.sr, box.pct3x3, box.figure = sr_slider, pct_slider, fig
    box.size_label, box.fires_label, box.state = size_label, fires_label, state
    return box
