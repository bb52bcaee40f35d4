"""Notebook 04 under Voila in a real browser: move the pipeline widget's sliders with the keyboard;
the .dcz size, the ratio, the error and the waterfall follow, with no page error."""
import re

import pytest

pytestmark = pytest.mark.browser

NOTEBOOK = "04_huffman_coding.ipynb"
WIDGET = ".dclab-pipeline-widget"
BAR_TEXT = f"{WIDGET} .js-plotly-plot .barlayer text"

READ = """(w) => ({
    size: document.querySelector(w + ' .dclab-pipeline-size').textContent,
    fixed: document.querySelector(w + ' .dclab-pipeline-fixed-size').textContent,
    ratio: document.querySelector(w + ' .dclab-pipeline-ratio').textContent,
    error: document.querySelector(w + ' .dclab-pipeline-error').textContent,
    bars: Array.from(document.querySelectorAll(w + ' .js-plotly-plot .barlayer text')).map(t => t.textContent),
})"""

CHANGED = """([w, before]) => {
    const size = document.querySelector(w + ' .dclab-pipeline-size').textContent;
    const ratio = document.querySelector(w + ' .dclab-pipeline-ratio').textContent;
    const bars = Array.from(document.querySelectorAll(w + ' .js-plotly-plot .barlayer text')).map(t => t.textContent);
    return size !== before.size && ratio !== before.ratio && bars.join('|') !== before.bars.join('|');
}"""


def read(page) -> dict:
    return page.evaluate(READ, WIDGET)


def bytes_shown(text: str) -> int:
    return int(re.search(r"([\d,]+) bytes", text).group(1).replace(",", ""))


def ratio_shown(text: str) -> float:
    return float(re.search(r"([\d.]+)x", text).group(1))


def percent(text: str) -> float:
    return float(re.search(r"([\d.]+)%", text).group(1))


def wait_changed(page, before: dict, timeout_s: float = 120) -> dict:
    page.wait_for_function(CHANGED, arg=[WIDGET, before], timeout=timeout_s * 1000)
    return read(page)


def test_pipeline_widget_follows_the_keyboard(open_dashboard):
    # the notebook runs the (cached or reduced) pipeline before the page appears
    dashboard = open_dashboard(NOTEBOOK, wait_for=BAR_TEXT, timeout_s=900)
    page = dashboard.page

    first = read(page)  # drawn complete: the figure was built before the page connected
    assert len(first["bars"]) >= 4 and first["bars"][0].startswith("1,066,440 B")
    size = bytes_shown(first["size"])
    assert first["bars"][3].startswith(f"{size:,} B")  # the last bar is the Huffman-coded .dcz
    assert ratio_shown(first["ratio"]) == pytest.approx(1_066_440 / size, abs=0.051)

    handle = page.locator(f"{WIDGET} .dclab-pipeline-sparsity .noUi-handle")
    handle.focus()
    page.keyboard.press("ArrowRight")  # sparsity 80% -> 81%
    step = wait_changed(page, first)
    assert bytes_shown(step["size"]) < size
    assert ratio_shown(step["ratio"]) > ratio_shown(first["ratio"])

    page.keyboard.press("End")  # sparsity 99%: a much smaller file, a much worse model
    end = wait_changed(page, step)
    assert bytes_shown(end["size"]) < bytes_shown(step["size"]) / 3
    assert percent(end["error"]) > percent(step["error"])
    assert end["bars"][3].startswith(f"{bytes_shown(end['size']):,} B")

    bits = page.locator(f"{WIDGET} .dclab-pipeline-bits .noUi-handle")
    bits.focus()
    page.keyboard.press("ArrowLeft")  # 5 -> 4 bits per weight
    fewer = wait_changed(page, end)
    assert bytes_shown(fewer["size"]) < bytes_shown(end["size"])
    assert bytes_shown(fewer["fixed"]) < bytes_shown(end["fixed"])

    dashboard.assert_no_errors()
