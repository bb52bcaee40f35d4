"""Interactive dashboards for the notebooks: one module per topic, each a function
returning an ipywidgets Box. Only notebooks (and tests) import this package.
"""
