"""Notebook 01 under Voila in a real browser: type a value, see its bits; drag the energy calculator; time a
pruned layer on request."""
import pytest

pytestmark = pytest.mark.browser

NOTEBOOK = "01_hardware_and_number_formats.ipynb"


def bits_cell(page, fmt: str):
    return page.locator(f'.dclab-numformat-bits tr[data-format="{fmt}"] .dclab-bits')


def test_format_explorer_and_energy_calculator(open_dashboard):
    dashboard = open_dashboard(NOTEBOOK, wait_for=".dclab-numformat-explorer")
    page = dashboard.page
    page.wait_for_selector(".dclab-energy-calculator .js-plotly-plot", timeout=120_000)

    # the explorer starts at 0.1; typing 1 and Enter shows fp16 0x3C00 and bf16 0x3F80
    assert bits_cell(page, "fp16").get_attribute("data-bits") == "0010111001100110"
    box = page.locator(".dclab-numformat-value input")
    box.fill("1")
    box.press("Enter")
    page.wait_for_function(
        """() => document.querySelector('.dclab-numformat-bits tr[data-format="fp16"] .dclab-bits')
                  ?.getAttribute('data-bits') === '0011110000000000'""",
        timeout=30_000,
    )
    assert bits_cell(page, "bf16").get_attribute("data-bits") == "0011111110000000"
    assert page.locator('.dclab-numformat-bits tr[data-format="fp16"] .dclab-field-exponent').inner_text() == "01111"

    # a value off the magnitude slider's grid stays as typed (the slider snaps, the value does not)
    box.fill("0.3")
    box.press("Enter")
    stored = page.locator('.dclab-numformat-bits tr[data-format="fp16"] .dclab-stored')
    page.wait_for_function(
        """() => document.querySelector('.dclab-numformat-bits tr[data-format="fp16"] .dclab-stored')
                  ?.textContent === '0.300048828125'""",
        timeout=30_000,
    )
    page.wait_for_timeout(1000)
    assert stored.inner_text() == "0.300048828125"
    assert box.input_value() == "0.3"

    # 1000 saturates in fp8 E4M3
    box.fill("1000")
    box.press("Enter")
    row = page.locator('.dclab-numformat-bits tr[data-format="fp8 E4M3"]')
    row.locator("text=saturated").wait_for(timeout=30_000)
    assert row.locator(".dclab-stored").inner_text() == "448.0"

    # energy calculator: AlexNet at 35x fits in 8 MB of SRAM; at 2x it does not
    ratio = page.locator(".dclab-energy-ratio")
    assert ratio.inner_text() == "4,480x"
    readout = page.locator(".dclab-energy-compression .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.dclab-energy-ratio')?.textContent === '2x'", timeout=30_000
    )

    # the optional dense-vs-sparse timing runs when its button is pressed, and says where and when it ran
    page.locator(".dclab-sparse-time button, button.dclab-sparse-time").first.click()
    page.wait_for_function(
        "() => document.querySelector('.dclab-sparse-summary')?.textContent.includes('in this session')",
        timeout=180_000,
    )
    page.wait_for_selector(".dclab-sparse-figure .main-svg", timeout=60_000)
    assert "batch 1000" in dashboard.text(".dclab-sparse-summary")
    dashboard.assert_no_errors()
