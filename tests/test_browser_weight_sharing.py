"""Notebook 03 under Voila in Chromium: the bit-width widget answers the keyboard, and the page logs no error."""
import pytest

pytestmark = pytest.mark.browser

CENTROIDS = """() => {
    const gd = document.querySelector('.dclab-bit-width .js-plotly-plot');
    return Array.from(gd.data[1].x).filter((x) => x !== null).length / 2;
}"""


RETRAINED = """() => {
    const line = document.querySelector('.dclab-bits-accuracy [data-state="measured"]');
    return line !== null && line.innerText.includes('centroids retrained') && /\\d%/.test(line.innerText);
}"""


def test_bit_width_slider_moves_accuracy_size_and_centroids(open_dashboard):
    dash = open_dashboard("03_weight_sharing.ipynb", wait_for=".dclab-bit-width .js-plotly-plot")
    page = dash.page
    accuracy, size = dash.text(".dclab-bits-accuracy"), dash.text(".dclab-bits-size")
    assert "test accuracy" in accuracy and "bytes" in size
    assert page.evaluate(CENTROIDS) == 8  # 3 bits

    handle = page.locator(".dclab-bits-slider .noUi-handle")
    handle.focus()
    page.keyboard.press("ArrowRight")  # 3 -> 4 bits
    new_size = dash.wait_for_change(".dclab-bits-size", size)
    assert "k = 16" in new_size
    page.wait_for_function(f"() => ({CENTROIDS})() === 16", timeout=30_000)
    page.keyboard.press("Home")  # 1 bit: two shared values
    dash.wait_for_change(".dclab-bits-size", new_size)
    page.wait_for_function(f"() => ({CENTROIDS})() === 2", timeout=30_000)
    dash.wait_for_change(".dclab-bits-accuracy", accuracy)  # the accuracy follows the sizes

    one_bit = dash.text(".dclab-bits-accuracy")
    page.get_by_role("button", name="random").click()  # Forgy: two weights picked at random
    dash.wait_for_change(".dclab-bits-accuracy", one_bit)

    # trained quantization: the same setting with its centroids retrained, measured in the page's kernel
    page.locator(".dclab-bit-width").get_by_role("button", name="retrained", exact=True).click()
    page.wait_for_function(RETRAINED, timeout=60_000)
    page.locator(".dclab-bit-width").get_by_role("button", name="not retrained", exact=True).click()
    page.wait_for_function("() => document.querySelector('.dclab-bits-accuracy').innerText.includes('not retrained')",
                           timeout=30_000)
    dash.assert_no_errors()
