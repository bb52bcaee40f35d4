"""Plotly figure builders: pure functions ``fig_*(...) -> go.Figure``, one module per topic.

No widgets and no state here; ``dclab.widgets`` wraps these figures in FigureWidgets.
"""
