"""Plotly figure builders: pure functions ``fig_*(...) -> go.Figure``, one module per topic.

No widgets and no state here; ``dclab.widgets`` wraps these figures in FigureWidgets.
Under Voila, static figures are sent as offline HTML (see :mod:`dclab.viz.page`).
"""
from dclab.viz import page as _page

if _page.under_voila():
    _page.use_offline_html()
