"""Notebook 07 under Voila in a real browser: the rate-accuracy chart is drawn, its checkboxes hide and show the
published points by what they count, and the page logs no error."""
import pytest

pytestmark = pytest.mark.browser

FIGURE = ".dclab-frontier-figure"
# markers drawn in the chart's SVG (a hidden trace draws none)
POINTS = f"() => document.querySelectorAll('{FIGURE} .scatterlayer .trace .points path').length"


def test_frontier_chart_hides_and_shows_published_points(open_dashboard):
    dash = open_dashboard("07_how_far_can_it_go.ipynb", wait_for=f"{FIGURE} .main-svg")
    page = dash.page
    page.wait_for_function(f"() => ({POINTS})() > 0", timeout=60_000)
    before = page.evaluate(POINTS)
    box = page.locator(".dclab-frontier").get_by_role("checkbox", name="parameters counted (no index or codebook cost)")
    box.uncheck()
    page.wait_for_function(f"(n) => ({POINTS})() < n", arg=before, timeout=30_000)
    box.check()
    page.wait_for_function(f"(n) => ({POINTS})() === n", arg=before, timeout=30_000)
    dash.assert_no_errors()
