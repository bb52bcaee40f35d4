"""Static figures under Voila: offline HTML that brings plotly.js once and asks no CDN for anything."""
import re

import plotly.graph_objects as go
import plotly.io as pio

from dclab.viz import page


def test_offline_html_carries_plotlyjs_once_and_no_cdn():
    renderer = page.OfflineHtmlRenderer()
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4])).to_dict()
    first, second = (renderer.to_mimebundle(fig)["text/html"] for _ in range(2))
    assert list(renderer.to_mimebundle(fig)) == ["text/html"]  # never jupyterlab-plotly's mime type
    assert len(first) > 1_000_000 > len(second)  # plotly.js itself, then only the figure
    assert "Plotly.newPlot" in second
    for html in (first, second):
        assert not re.search(r"<script[^>]*\bsrc=", html)  # nothing loaded from anywhere (no MathJax, no CDN)
    assert "cdn.plot.ly" not in second and "mathjax" not in second.lower()


def test_plotlyjs_is_sent_once_through_plotlys_own_rendering():
    # plotly renders with a copy of the renderer; the flag must survive it (each figure carried 4.8 MB before)
    name = "dclab_offline_html_test"
    pio.renderers[name] = page.OfflineHtmlRenderer()
    try:
        fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4])).to_dict()
        first, second = (pio.renderers._build_mime_bundle(fig, name)["text/html"] for _ in range(2))
        assert len(first) > 1_000_000 > len(second)
    finally:
        pio.renderers._renderers.pop(name)  # plotly's renderers.__delitem__ fails on a name it did not define


def test_voila_kernels_switch_to_offline_html(monkeypatch):
    for name in page.VOILA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not page.under_voila()
    monkeypatch.setenv("VOILA_BASE_URL", "/")
    assert page.under_voila()
    before = pio.renderers.default
    try:
        page.use_offline_html()
        page.use_offline_html()
        assert pio.renderers.default == page.RENDERER
    finally:
        pio.renderers.default = before


def test_table_shows_rows_as_html_with_index_columns_as_row_headers():
    from dclab.viz.table import table

    t = table([{"name": "CPU", "cores": 16, "share": 0.123456789, "note": "a < b"},
               {"name": "GPU", "cores": 10000, "share": 1.5, "note": None}], index=["name"])
    assert t.columns == ["name", "cores", "share", "note"] and t.index == 1
    html = t._repr_html_()
    assert html.count("<tr>") == 3  # the header and two rows
    assert "<th>CPU</th><td>16</td><td>0.123457</td><td>a &lt; b</td>" in html  # 6 digits, as pandas shows
    assert "<td>10,000</td>" in html and "<td>None</td>" in html
    assert table([]).rows == []
