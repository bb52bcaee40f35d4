"""Notebook 05 under Voila in Chromium: every static figure is drawn offline, the design-space explorer
answers the keyboard, and the page logs no error (no setData error, no request beyond 127.0.0.1)."""
import pytest

pytestmark = pytest.mark.browser

DRAWN = "() => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(p => p.querySelector('.main-svg')).length"


def test_squeezenet_page_draws_its_figures_and_explorer(open_dashboard):
    dash = open_dashboard("05_squeezenet.ipynb", wait_for=".dclab-squeeze-explorer .js-plotly-plot")
    page = dash.page
    size = dash.text(".dclab-squeeze-size")
    handle = page.locator(".dclab-squeeze-sr .noUi-handle")
    handle.focus()
    page.keyboard.press("ArrowRight")  # SR 0.125 -> 0.25: more squeeze filters, more parameters
    assert dash.wait_for_change(".dclab-squeeze-size", size) != size
    dash.wait_until_executed()
    plots = page.locator(".js-plotly-plot").count()
    assert plots >= 6  # the explorer + the Fire module, model sizes (x3) and the parameter split, static
    assert page.evaluate(DRAWN) == plots  # every figure drawn
    dash.assert_no_errors()
