"""How static figures reach a Voila page: as HTML drawn by an offline plotly.js, never by a CDN.

In JupyterLab, figures go to the jupyterlab-plotly renderer as usual. That renderer, once a
figure is drawn, keeps a PNG snapshot in the output model with ``setData``, which Voila's
output model lacks: every static figure under Voila logged ``r.setData is not a function``.
Voila starts its kernels with ``VOILA_*`` variables set; there, :func:`use_offline_html`
makes plotly send ``text/html`` instead: the kernel's first figure carries plotly.js itself,
later ones reuse it, and no figure asks a CDN for MathJax. The page stays on 127.0.0.1.
"""
from __future__ import annotations

import os

import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer

RENDERER = "dclab_offline_html"
VOILA_VARIABLES = ("VOILA_BASE_URL", "VOILA_SERVER_URL", "VOILA_KERNEL_ID")


class OfflineHtmlRenderer(MimetypeRenderer):
    """``text/html`` figures; the first one brings plotly.js along (about 4.8 MB, once per kernel).

    plotly renders each figure with a shallow copy of the renderer (``RenderersConfig._build_mime_bundle``),
    so a plain attribute set on the copy would be lost and every figure would carry plotly.js again: the
    flag lives in a dict that every copy shares.
    """

    def __init__(self) -> None:
        self.sent = {"plotlyjs": False}

    @property
    def plotlyjs_sent(self) -> bool:
        return self.sent["plotlyjs"]

    def to_mimebundle(self, fig_dict: dict) -> dict:
        html = pio.to_html(
            fig_dict,
            include_plotlyjs=not self.plotlyjs_sent,
            include_mathjax=False,
            full_html=False,
            default_width="100%",
            default_height=525,
            validate=False,
        )
        self.sent["plotlyjs"] = True
        return {"text/html": html}


def under_voila() -> bool:
    """Whether this kernel was started by Voila."""
    return any(os.environ.get(name) for name in VOILA_VARIABLES)


def use_offline_html() -> None:
    """Show static figures as offline HTML from now on (idempotent)."""
    if RENDERER not in pio.renderers:
        pio.renderers[RENDERER] = OfflineHtmlRenderer()
    pio.renderers.default = RENDERER
