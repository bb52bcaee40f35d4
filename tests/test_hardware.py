"""dclab.hardware: per-layer FLOPs and bytes, the roofline, and the energy of fetching weights."""
from __future__ import annotations

import math

import pytest
import torch
from conftest import heavy_imports_after
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


def test_layer_costs_leave_batchnorm_statistics_and_training_mode_alone():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 26 * 26, 10), torch.nn.BatchNorm1d(10)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    costs = hw.layer_costs(model, 16)  # one image through BatchNorm1d in training mode would fail
    assert [c.kind for c in costs] == ["conv", "fc"]
    assert costs[0].activation_bytes == 16 * (28 * 28 + 4 * 26 * 26) * 4
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_layer_costs_equal_a_real_forward_at_that_batch_size():
    seen = {}
    model = LeNet5().eval()
    for name, m in compressible_layers(model).items():
        m.register_forward_hook(lambda mod, i, o, name=name: seen.update({name: (i[0].numel(), o.numel())}))
    with torch.no_grad():
        model(torch.zeros(3, 1, 28, 28))
    real = dict(seen)
    costs = hw.layer_costs(model, 3)
    assert [c.name for c in costs] == list(real)
    assert all(c.activation_bytes == 4 * sum(real[c.name]) for c in costs)


def test_layer_costs_import_no_dynamo():
    # the meta device imports torch._dynamo on first use (~75 MB of a reader's kernel, notebook 01)
    out, heavy = heavy_imports_after(
        "from dclab import hardware\n"
        "from dclab.models import LeNet5, LeNet300\n"
        "costs = hardware.layer_costs(LeNet300(), 1024) + hardware.layer_costs(LeNet5(), 1024)\n"
        "print(costs[0].flops)\n"
    )
    assert heavy == [] and out == str(2 * 1024 * 784 * 300)


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


# ---------------------------------------------------------------- does a pruned layer run faster? (behaviour only)


def test_pruned_to_density_keeps_the_largest_weights():
    w = torch.tensor([[0.1, -2.0, 0.3], [-0.05, 0.7, 1.5]])
    assert torch.equal(hw.pruned_to_density(w, 0.5), torch.tensor([[0.0, -2.0, 0.0], [0.0, 0.7, 1.5]]))
    assert torch.equal(hw.pruned_to_density(w, 1.0), w)


@pytest.mark.parametrize("batch_size", [1, 7])
def test_csr_product_equals_dense(batch_size):
    gen = torch.Generator().manual_seed(1)
    w = hw.pruned_to_density(torch.randn(30, 50, generator=gen), 0.2)
    csr = hw.to_csr(w)
    assert csr.layout == torch.sparse_csr and csr.col_indices().dtype == torch.int32
    assert csr.values().numel() == int((w != 0).sum()) == 300
    assert torch.equal(csr.to_dense(), w)
    x = torch.randn(50, batch_size, generator=gen)
    torch.testing.assert_close(csr @ x, w @ x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.mv(csr, x[:, 0].contiguous()), torch.mv(w, x[:, 0]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 5])
def test_time_sparse_matvec_records_what_was_asked(batch_size):
    densities = (1.0, 0.5, 0.1)
    w = torch.randn(20, 40, generator=torch.Generator().manual_seed(0))
    records = hw.time_sparse_matvec(densities, batch_size=batch_size, w=w, seconds=0.0)
    assert [r.density for r in records] == list(densities)
    assert [r.kept for r in records] == [800, 400, 80]
    for r in records:
        assert r.shape == (20, 40) and r.batch_size == batch_size and r.threads == 1
        assert r.agree and r.max_error <= 1e-4
        assert r.dense_s > 0 and r.sparse_s > 0 and r.speedup == r.dense_s / r.sparse_s  # a time, not a speed claim
        assert r.dense_bytes == 4 * 20 * 40 and r.sparse_bytes == 8 * r.kept + 4 * 21
    assert torch.get_num_threads() >= 1


def test_time_sparse_matvec_defaults_to_ip1_and_restores_threads():
    before = torch.get_num_threads()
    records = hw.time_sparse_matvec((0.02,), seconds=0.0, threads=1)
    assert records[0].shape == hw.IP1_SHAPE == (300, 784)
    assert records[0].kept == round(0.02 * 300 * 784)
    assert torch.get_num_threads() == before
    assert hw.csr_break_even_density(hw.IP1_SHAPE) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("density", [0, 0.0, -0.1, 1.5, math.nan, "0.5", True])
def test_bad_density_says_what_to_give(density):
    with pytest.raises(DclabError, match=r"density must be a number in \(0, 1\]"):
        hw.time_sparse_matvec((density,), seconds=0.0)
    with pytest.raises(DclabError, match="fraction of weights kept"):
        hw.pruned_to_density(torch.ones(3, 3), density)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_bad_batch_size_says_what_to_give(batch_size):
    with pytest.raises(DclabError, match="batch_size must be a whole number >= 1"):
        hw.time_sparse_matvec((0.5,), batch_size=batch_size, seconds=0.0)


def test_other_bad_input():
    with pytest.raises(DclabError, match="at least one density"):
        hw.time_sparse_matvec((), seconds=0.0)
    with pytest.raises(DclabError, match="2-D"):
        hw.time_sparse_matvec((0.5,), w=torch.ones(10), seconds=0.0)
    with pytest.raises(DclabError, match="threads"):
        hw.time_sparse_matvec((0.5,), threads=0, seconds=0.0)


def _timing(density, dense_s, sparse_s, agree=True):
    return hw.SparseTiming(density, round(density * 100), (10, 10), 1, dense_s, sparse_s, agree, 0.0, 400,
                           round(density * 100) * 8 + 44, 1)


def test_sparse_wins_below_and_the_words_follow_the_numbers():
    never = [_timing(1.0, 1.0, 5.0), _timing(0.1, 1.0, 2.0)]
    assert hw.sparse_wins_below(never) is None
    assert "never faster" in hw.describe_sparse_timings(never) and "2.00x the dense time" in hw.describe_sparse_timings(never)
    crossing = [_timing(1.0, 1.0, 5.0), _timing(0.2, 1.0, 1.5), _timing(0.1, 1.0, 0.5), _timing(0.05, 1.0, 0.25)]
    assert hw.sparse_wins_below(crossing) == 0.1
    words = hw.describe_sparse_timings(crossing)
    assert "faster from 10% density down" in words and "4.00x at 5%" in words and "5.0x the dense time" in words
    assert "agree at every density" in words
    assert "DISAGREE" in hw.describe_sparse_timings([_timing(0.1, 1.0, 0.5, agree=False)])
    with pytest.raises(DclabError):
        hw.describe_sparse_timings([])


def test_fig_sparse_timings_draws_each_batch():
    pytest.importorskip("plotly")
    from dclab.viz.hardware import fig_sparse_timings

    records = [_timing(1.0, 1.0, 5.0), _timing(0.1, 1.0, 0.5)]
    records += [r._replace(batch_size=1000) for r in records]
    fig = fig_sparse_timings(records)
    assert len(fig.data) == 8  # dense, CSR and two ideals, per panel
    assert list(fig.data[0].x) == [100.0, 10.0] and list(fig.data[1].y) == [5e6, 0.5e6]
    assert [t.showlegend for t in fig.data[:4]] == [True] * 4 and not any(t.showlegend for t in fig.data[4:])


def test_weight_traffic_words_follow_the_numbers():
    timing = _timing(1.0, 1e-6, 5e-6)  # 400 bytes in 1 µs: 0.4 GB/s
    assert "more than the 0.1 GB/s" in hw.describe_weight_traffic(timing, hw.Roofline(1e9, 1e8, "cpu", 1))
    assert "no more than the 1.0 GB/s" in hw.describe_weight_traffic(timing, hw.Roofline(1e9, 1e9, "cpu", 1))
