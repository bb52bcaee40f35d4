"""dclab.hardware: per-layer FLOPs and bytes, the roofline, and the energy of fetching weights."""
from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from dclab import hardware as hw
from dclab.errors import DclabError
from dclab.models import LeNet5, LeNet300, compressible_layers


def test_lenet300_costs_by_hand():
    costs = {c.name: c for c in hw.layer_costs(LeNet300(), batch_size=1)}
    assert list(costs) == ["ip1", "ip2", "ip3"]
    ip1 = costs["ip1"]
    assert ip1.kind == "fc"
    assert ip1.flops == 2 * 784 * 300
    assert ip1.weight_bytes == (784 * 300 + 300) * 4
    assert ip1.activation_bytes == (784 + 300) * 4
    assert ip1.bytes == ip1.weight_bytes + ip1.activation_bytes
    assert ip1.intensity == pytest.approx(ip1.flops / ip1.bytes)
    assert ip1.intensity < 0.5  # batch 1: each weight is used once, 2 FLOPs per 4 bytes


def test_lenet5_costs_by_hand():
    costs = {c.name: c for c in hw.layer_costs(LeNet5(), batch_size=2)}
    assert list(costs) == list(compressible_layers(LeNet5()))
    conv1, conv2 = costs["conv1"], costs["conv2"]
    assert conv1.kind == conv2.kind == "conv"
    assert conv1.flops == 2 * 2 * (20 * 24 * 24) * (1 * 5 * 5)
    assert conv1.activation_bytes == 2 * (1 * 28 * 28 + 20 * 24 * 24) * 4
    assert conv2.flops == 2 * 2 * (50 * 8 * 8) * (20 * 5 * 5)
    assert conv2.activation_bytes == 2 * (20 * 12 * 12 + 50 * 8 * 8) * 4  # its input is after the max-pool
    assert costs["ip1"].flops == 2 * 2 * 800 * 500


@pytest.mark.parametrize("make", [LeNet300, LeNet5])
@pytest.mark.parametrize("batch_size", [1, 64])
def test_flops_agree_with_torch_flop_counter(make, batch_size):
    model = make()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(batch_size, 1, 28, 28))
    ours = sum(c.flops for c in hw.layer_costs(model, batch_size))
    assert ours == counter.get_total_flops()


def test_batching_raises_the_intensity_of_fc_layers():
    one = {c.name: c for c in hw.layer_costs(LeNet300(), 1)}
    many = {c.name: c for c in hw.layer_costs(LeNet300(), 1024)}
    for name in one:
        assert many[name].flops == 1024 * one[name].flops
        assert many[name].weight_bytes == one[name].weight_bytes
        assert many[name].intensity > 5 * one[name].intensity


def test_layer_costs_leave_the_model_alone():
    model = LeNet5()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hw.layer_costs(model, 8)
    assert all(v.device.type == "cpu" and torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not model.ip1._forward_hooks
    with pytest.raises(DclabError):
        hw.layer_costs(model, 0)


def test_roofline_shape():
    roof = hw.Roofline(peak_flops=100e9, bandwidth=10e9, device="cpu", threads=1)
    assert roof.ridge == 10.0
    assert roof.attainable(1.0) == 10e9
    assert roof.attainable(10.0) == 100e9
    assert roof.attainable(1000.0) == 100e9
    assert roof.bound(0.5) == "memory" and roof.bound(50) == "compute"


def test_measurements_are_positive_and_cached():
    assert hw.measure_matmul_flops(n=128, seconds=0.05) > 1e6
    assert hw.measure_bandwidth(n_bytes=8 * 2**20, seconds=0.05) > 1e6
    first = hw.measure_roofline(seconds=0.2)
    assert first.peak_flops > 0 and first.bandwidth > 0 and first.device == "cpu"
    assert hw.measure_roofline(seconds=0.2) is first
    with pytest.raises(DclabError):
        hw.measure_matmul_flops(n=4)


def test_energy_table_ratios():
    e = hw.ENERGY_45NM_PJ
    assert len(e) == 10
    assert e["32-bit DRAM read"] / e["32-bit SRAM read (8 KB)"] == 128
    assert e["32-bit DRAM read"] / e["32-bit int add"] == pytest.approx(6400)
    assert e["8-bit int add"] < e["32-bit float mult"]


def test_weight_fetch_energy():
    big = hw.weight_fetch_energy(1_000_000, compression=1, sram_bytes=1e6)
    assert big.model_bytes == 4e6 and not big.fits_on_chip
    assert big.dram_pj == 1_000_000 * 640 and big.sram_pj == 1_000_000 * 5
    assert big.pj == big.dram_pj
    small = hw.weight_fetch_energy(1_000_000, compression=40, sram_bytes=1e6)
    assert small.model_bytes == 1e5 and small.fits_on_chip
    assert small.pj == small.sram_pj == 25_000 * 5
    assert big.pj / small.pj == 40 * 128  # fewer words, and each word 128x cheaper
    assert hw.weight_fetch_energy(10, bits=8).model_bytes == 10


@pytest.mark.parametrize(
    "kwargs",
    [dict(compression=0.5), dict(compression=math.inf), dict(sram_bytes=-1), dict(n_weights=math.nan)],
)
def test_weight_fetch_energy_rejects_bad_input(kwargs):
    args = dict(n_weights=100, compression=2.0)
    args.update(kwargs)
    with pytest.raises(DclabError):
        hw.weight_fetch_energy(**args)


def test_devices():
    assert [d.name for d in hw.DEVICES] == ["CPU", "GPU", "FPGA", "ASIC / TPU"]
    assert "memory" in hw.DEVICES[1].weak_at
