"""Notebook 01's widgets, driven in-process: the number-format explorer and the energy calculator."""
from __future__ import annotations

import os
import re

import plotly.graph_objects as go
import pytest
import torch
from conftest import heavy_imports_after

from dclab import hardware as hw
from dclab import numformats as nf
from dclab.errors import DclabError
from dclab.viz.hardware import fig_energy_table, fig_roofline
from dclab.viz.numformats import (
    fig_format_accuracy,
    fig_format_errors,
    fig_format_ranges,
)
from dclab.widgets.hardware import (
    NETWORKS,
    PAPER_COMPRESSION,
    energy_calculator,
    network_parameters,
)
from dclab.widgets.numformats import format_explorer


def row_html(box, fmt: str) -> str:
    """The <tr> of one format in the explorer's table."""
    match = re.search(rf'<tr data-format="{re.escape(fmt)}">(.*?)</tr>', box.bits_html.value)
    assert match, f"no row for {fmt}"
    return match.group(1)


def shown_bits(box, fmt: str) -> str:
    return re.search(r'data-bits="([01]+)"', row_html(box, fmt)).group(1)


def shown_stored(box, fmt: str) -> str:
    return re.search(r'class="dclab-stored"[^>]*>([^<]*)<', row_html(box, fmt)).group(1)


# ---------------------------------------------------------------- number-format explorer


def test_explorer_shows_the_bits_of_one():
    box = format_explorer(value=1.0)
    assert shown_bits(box, "fp32") == format(0x3F800000, "032b")
    assert shown_bits(box, "fp16") == "0011110000000000"
    assert shown_bits(box, "bf16") == "0011111110000000"
    assert shown_bits(box, "fp8 E4M3") == "00111000"
    assert all(r.stored == 1.0 and r.error == 0 for name, r in box.rows.items() if not name.startswith("int8"))
    # sign, exponent and mantissa are coloured spans whose bits concatenate to the pattern
    fp16 = row_html(box, "fp16")
    assert re.findall(r'class="dclab-field-(\w+)"', fp16) == ["sign", "exponent", "mantissa"]
    assert "".join(re.findall(r'class="dclab-field-\w+"[^>]*>([01]+)<', fp16)) == "0011110000000000"
    assert "dclab-numformat-explorer" in box._dom_classes


def test_explorer_follows_the_typed_value():
    box = format_explorer(value=1.0)
    box.value_text.value = 0.1
    assert shown_bits(box, "fp16") == "0010111001100110"
    assert shown_stored(box, "fp16") == "0.0999755859375"
    assert box.rows["fp16"].error == pytest.approx(0.0999755859375 - 0.1)
    assert box.rows["bf16"].stored == 0.10009765625
    assert box.magnitude.value == pytest.approx(0.1)  # the slider follows the text
    box.value_text.value = -1000.0
    e4m3 = box.rows["fp8 E4M3"]
    assert (e4m3.stored, e4m3.note) == (-448.0, "saturated")
    assert box.rows["fp8 E5M2"].stored == -1024.0
    assert "saturated" in row_html(box, "fp8 E4M3")
    box.value_text.value = 1e6
    assert box.rows["fp16"].note == "overflow -> inf"
    assert shown_stored(box, "fp16") == "inf"


def test_explorer_keeps_a_typed_value_when_the_slider_snaps_to_its_grid():
    box = format_explorer(value=1.0)
    box.value_text.value = 0.3
    box.magnitude.value = 10**-0.52  # what a browser sends back after snapping log10(0.3) to the 0.01 grid
    assert box.value_text.value == 0.3
    assert box.rows["fp16"].stored == 0.300048828125


def test_explorer_slider_keeps_the_sign():
    box = format_explorer(value=-3.0)
    box.magnitude.value = 0.5
    assert box.value_text.value == -0.5
    assert box.rows["fp16"].stored == -0.5
    assert shown_bits(box, "fp16") == "1011100000000000"


def test_explorer_int8_scale_and_fixed_point_bits():
    box = format_explorer(value=0.3, scale=0.01, int_bits=3, frac_bits=4)
    assert box.rows["int8"].stored == pytest.approx(0.3)
    box.scale.value = 0.1
    assert box.rows["int8"].stored == pytest.approx(0.3)
    box.scale.value = 1.0
    assert box.rows["int8"].stored == 0.0 and box.rows["int8"].note == "underflow -> 0"
    assert box.rows["fixed Q3.4"].stored == 0.3125  # 5/16
    box.frac_bits.value = 8
    r = box.rows["fixed Q3.8"]
    assert r.stored == 77 / 256 and len(r.bits) == 12
    assert shown_bits(box, "fixed Q3.8") == format(77, "012b")
    assert "fixed Q3.8" in box.ranges_html.value


def test_explorer_reports_bad_fixed_point_and_keeps_working():
    box = format_explorer(value=2.0, int_bits=0, frac_bits=1)
    box.frac_bits.value = 0
    assert "fixed point" in box.message.value
    assert not any(name.startswith("fixed") for name in box.rows)
    box.frac_bits.value = 2
    assert box.message.value == ""
    assert box.rows["fixed Q0.2"].stored == 0.75  # saturated at the largest Q0.2 value


def test_range_table_lists_every_format():
    box = format_explorer()
    html = box.ranges_html.value
    for name in ("fp32", "fp16", "bf16", "fp8 E4M3", "fp8 E5M2", "int8", "fixed Q3.4"):
        assert name in html
    assert ">448<" in html and ">57344<" in html and ">65504<" in html


# ---------------------------------------------------------------- energy calculator


def test_energy_calculator_rejects_bad_input():
    with pytest.raises(DclabError):
        energy_calculator("resnet50")
    with pytest.raises(DclabError):
        energy_calculator(sram_mb=0)


def test_network_parameters_are_counted_from_real_models():
    assert network_parameters("lenet300") == 266_610
    assert network_parameters("lenet5") == 431_080
    assert network_parameters("alexnet") == 61_100_840
    assert network_parameters("vgg16") == 138_357_544
    assert network_parameters("squeezenet") == 1_248_424


def test_network_parameters_import_torchvision_only_to_count_them_once(tmp_path):
    # torchvision (with torch._dynamo) costs a reader's kernel ~90 MB: notebook 01 reads its counts from the cache
    code = "import sys\nfrom dclab.widgets.hardware import network_parameters\nprint([network_parameters(n) for n in sys.argv[1:]])"
    env = {**os.environ, "DCLAB_CACHE": str(tmp_path)}
    imagenet = ("alexnet", "vgg16", "squeezenet")
    assert heavy_imports_after(code, "lenet300", "lenet5", env=env) == ("[266610, 431080]", [])  # never torchvision
    counted, heavy = heavy_imports_after(code, *imagenet, env=env)  # counted once, on torchvision's modules
    assert counted == "[61100840, 138357544, 1248424]" and "torchvision" in heavy
    assert heavy_imports_after(code, *imagenet, env=env) == (counted, [])  # then read back from the cache


def test_energy_calculator_follows_the_compression_slider():
    box = energy_calculator("alexnet", sram_mb=8.0)
    assert box.compression.value == PAPER_COMPRESSION["alexnet"]
    assert box.after.fits_on_chip and not box.before.fits_on_chip
    ratio_text = re.search(r'dclab-energy-ratio">([\d,]+)x', box.summary.value).group(1)
    assert int(ratio_text.replace(",", "")) == round(box.before.pj / box.after.pj)
    assert box.before.pj / box.after.pj == pytest.approx(35 * 128)

    dram_before = box.fig.data[1].y
    box.compression.value = 2.0  # 122 MB does not fit in 8 MB: the weights come from DRAM again
    assert not box.after.fits_on_chip
    assert box.after.pj == pytest.approx(box.before.pj / 2)
    assert box.fig.data[1].y[1] == pytest.approx(box.fig.data[1].y[0] / 2)
    assert box.fig.data[1].y[0] == dram_before[0]
    assert box.fig.data[1].marker.opacity == (1.0, 1.0)  # DRAM bars are the ones used
    assert "(too big)" in box.fig.data[0].text[1]
    assert 'dclab-energy-ratio">2x</b> less energy' in box.summary.value


def test_energy_calculator_sram_and_network():
    box = energy_calculator("vgg16", sram_mb=8.0)
    assert not box.after.fits_on_chip  # 553 MB / 49 = 11.3 MB
    assert "8 MB" in [label for label, _ in box.sram_mb.options]
    box.sram_mb.value = 16.0
    assert box.after.fits_on_chip
    assert box.fig.data[0].y[2] == 16e6 and box.fig.data[0].text[2] == "16 MB"
    assert box.fig.data[2].marker.opacity[1] == 1.0
    box.network.value = "lenet300"
    assert box.compression.value == PAPER_COMPRESSION["lenet300"]
    assert box.before.n_weights == 266_610
    assert box.before.fits_on_chip  # 1.07 MB fits in 16 MB: SRAM both ways
    assert box.fig.layout.title.text == NETWORKS["lenet300"]
    assert "LeNet-300-100" in box.summary.value


# ---------------------------------------------------------------- figures


def test_figures_build():
    roof = hw.Roofline(50e9, 10e9, "cpu", 2)
    from dclab.models import LeNet5, LeNet300

    costs = {"LeNet-300-100": hw.layer_costs(LeNet300(), 1) + hw.layer_costs(LeNet300(), 1024),
             "LeNet-5": hw.layer_costs(LeNet5(), 1) + hw.layer_costs(LeNet5(), 1024)}
    fig = fig_roofline(roof, costs)
    assert isinstance(fig, go.Figure) and len(fig.data) == 1 + 4
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    ip1 = fig.data[1]
    assert list(ip1.text) == ["ip1", "ip2", "ip3"]
    assert ip1.y[0] == pytest.approx(roof.attainable(ip1.x[0]) / 1e9)
    assert len(fig_energy_table().data) == len(hw.ENERGY_45NM_PJ)
    w = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 0.1
    errors = fig_format_errors(w, {"fp16": "fp16", "fp8 E4M3": "fp8_e4m3", "int8": "int8"})
    assert len(errors.data) == 3
    assert fig_format_ranges(nf.format_table(list(nf.FLOAT_FORMATS.values()))).data
    acc = fig_format_accuracy({"LeNet-5": {"fp32": 0.99, "fp8 E5M2": 0.98}})
    assert acc.data[0].text[1] == "2.00% (+1.00)"
