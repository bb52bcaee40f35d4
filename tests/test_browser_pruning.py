"""Notebook 02 under Voila in Chromium: the prune explorer answers the keyboard, and the page logs no error."""
import pytest

pytestmark = pytest.mark.browser

PLOT_SUM = """(trace) => {
    const gd = document.querySelector('.dclab-prune-explorer .js-plotly-plot');
    return Array.from(gd.data[trace].y).reduce((a, b) => a + b, 0);
}"""


def test_prune_explorer_slider_moves_accuracy_size_and_plot(open_dashboard):
    dash = open_dashboard("02_pruning.ipynb", wait_for=".dclab-prune-explorer .js-plotly-plot")
    page = dash.page
    accuracy, size = dash.text(".dclab-prune-accuracy"), dash.text(".dclab-prune-size")
    assert "test accuracy" in accuracy and "bytes" in size
    survivors = page.evaluate(PLOT_SUM, 2)
    assert survivors > 0

    handle = page.locator(".dclab-prune-sparsity .noUi-handle")
    handle.focus()
    page.keyboard.press("End")  # 90% -> 99% sparsity
    new_accuracy = dash.wait_for_change(".dclab-prune-accuracy", accuracy)
    new_size = dash.wait_for_change(".dclab-prune-size", size)
    assert "99" in page.locator(".dclab-prune-sparsity .widget-readout").inner_text()
    assert new_accuracy != accuracy and new_size != size
    page.wait_for_function(f"() => ({PLOT_SUM})(2) < {survivors}", timeout=30_000)
    assert page.evaluate(PLOT_SUM, 2) < survivors / 5

    page.keyboard.press("ArrowLeft")  # one step back: 98%
    dash.wait_for_change(".dclab-prune-accuracy", new_accuracy)

    page.get_by_role("button", name="threshold (x std)").click()  # the other slider appears
    quality = page.locator(".dclab-prune-quality .noUi-handle")
    quality.wait_for(state="visible", timeout=30_000)
    before = dash.text(".dclab-prune-size")
    quality.focus()
    page.keyboard.press("ArrowRight")
    dash.wait_for_change(".dclab-prune-size", before)
    dash.assert_no_errors()
