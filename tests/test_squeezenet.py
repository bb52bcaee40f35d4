"""dclab.models.squeezenet, dclab.models.reference and dclab.lessons.squeezenet: the Fire module, the design space and the size accounting, against torchvision's models."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from dclab import zoo
from dclab.errors import DclabError
from dclab.lessons import squeezenet as squeezenet_lesson
from dclab.models import build, compressible_layers, count_parameters, reference
from dclab.models import squeezenet as sqn


def _torchvision_count(name: str) -> int:
    """Parameters of ``torchvision.models.<name>(weights=None)``, built for real on the CPU."""
    return count_parameters(getattr(torchvision.models, name)(weights=None))


# ---------------------------------------------------------------- the Fire module


def test_fire_module_output_shape_is_the_concatenated_expands():
    fire = sqn.Fire(96, 16, 64, 48)
    y = fire(torch.randn(2, 96, 13, 11))
    assert y.shape == (2, 64 + 48, 13, 11)  # 3x3 expand is padded: the map keeps its size
    assert fire.out_channels == 112
    assert fire.squeeze.out_channels == 16 and fire.expand1x1.in_channels == fire.expand3x3.in_channels == 16


def test_fire_module_output_is_expand1x1_then_expand3x3():
    fire = sqn.Fire(8, 4, 3, 5)
    x = torch.randn(1, 8, 6, 6)
    s = torch.relu(fire.squeeze(x))
    y = fire(x)
    assert torch.allclose(y[:, :3], torch.relu(fire.expand1x1(s)))
    assert torch.allclose(y[:, 3:], torch.relu(fire.expand3x3(s)))


@pytest.mark.parametrize("spec", [(96, 16, 64, 64), (512, 64, 256, 256), (7, 3, 1, 9)])
def test_fire_parameters_formula_equals_the_module(spec):
    assert sqn.fire_parameters(*spec) == count_parameters(sqn.Fire(*spec))


def test_fire_module_matches_torchvision_fire_weights_and_output():
    ours, theirs = sqn.Fire(96, 16, 64, 64).eval(), torchvision.models.squeezenet.Fire(96, 16, 64, 64).eval()
    ours.load_state_dict(theirs.state_dict())  # same names, same shapes
    x = torch.randn(1, 96, 9, 9)
    assert torch.allclose(ours(x), theirs(x))


def test_fire_with_batchnorm_has_no_conv_bias_and_normalises():
    fire = sqn.Fire(16, 8, 32, 32, batchnorm=True)
    assert all(m.bias is None for m in (fire.squeeze, fire.expand1x1, fire.expand3x3))
    assert count_parameters(fire) == 16 * 8 + 8 * 32 + 9 * 8 * 32 + 2 * (8 + 32 + 32)


def test_fire_rejects_zero_filters():
    with pytest.raises(DclabError, match="s1x1"):
        sqn.Fire(16, 0, 8, 8)


# ---------------------------------------------------------------- the design space


def test_design_space_defaults_are_squeezenet_1_0():
    assert sqn.design_space() == [
        (16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
        (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256),
    ]


def test_default_variant_has_exactly_torchvision_squeezenet1_0_parameters():
    expected = _torchvision_count("squeezenet1_0")
    assert expected == 1_248_424
    assert count_parameters(sqn.SqueezeNet()) == sqn.squeezenet_parameters(sqn.design_space()) == expected


def test_squeezenet_loads_torchvision_weights_and_computes_the_same_function():
    torch.manual_seed(0)
    theirs = torchvision.models.squeezenet1_0(weights=None).eval()
    ours = sqn.SqueezeNet().eval()
    ours.load_state_dict(reference.from_torchvision_state_dict(theirs.state_dict()))
    x = torch.randn(1, 3, 224, 224)
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    assert list(compressible_layers(ours))[:2] == ["conv1", "fire2.squeeze"]


def test_from_torchvision_state_dict_refuses_other_models():
    with pytest.raises(DclabError, match="squeezenet1_0"):
        reference.from_torchvision_state_dict({"features.1.weight": torch.zeros(1)})


@pytest.mark.parametrize("sr,pct3x3", [(0.125, 0.5), (0.25, 0.01), (0.75, 0.33), (1.0, 0.99), (0.375, 0.875)])
def test_analytic_count_equals_the_built_variant(sr, pct3x3):
    fires = sqn.design_space(sr, pct3x3)
    model = sqn.squeezenet_variant(sr, pct3x3)
    assert count_parameters(model) == sqn.squeezenet_parameters(fires)
    for i, spec in enumerate(fires):
        e = 128 + 128 * (i // 2)
        assert spec.expand == e
        assert spec.s1x1 == max(round(sr * e), 1) and spec.e3x3 == min(max(round(pct3x3 * e), 1), e - 1)


def test_variant_forward_gives_class_scores():
    model = sqn.squeezenet_variant(0.25, 0.25).eval()
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_size_grows_with_squeeze_ratio_and_with_pct3x3():
    by_sr = [sqn.squeezenet_parameters(sqn.design_space(sr, 0.5)) for sr in (0.125, 0.25, 0.5, 1.0)]
    by_pct = [sqn.squeezenet_parameters(sqn.design_space(0.5, p)) for p in (0.01, 0.25, 0.5, 0.99)]
    assert by_sr == sorted(by_sr) and len(set(by_sr)) == 4
    assert by_pct == sorted(by_pct) and len(set(by_pct)) == 4


@pytest.mark.parametrize("sr,pct3x3", [(0, 0.5), (1.5, 0.5), (0.5, 0), (0.5, 1.0)])
def test_design_space_rejects_out_of_range_knobs(sr, pct3x3):
    with pytest.raises(DclabError):
        sqn.design_space(sr, pct3x3)


# ---------------------------------------------------------------- accounting of real architectures


def test_reference_counts_equal_real_torchvision_models():
    summaries = {s.name: s for s in squeezenet_lesson.reference_summaries()}
    for name in ("alexnet", "squeezenet1_0", "squeezenet1_1"):  # built for real: ~250 MB at most
        assert summaries[name].parameters == _torchvision_count(name)
    assert summaries["vgg16"].parameters == 138_357_544  # torchvision's documented count
    for s in summaries.values():
        assert s.fp32_bytes == 4 * s.parameters
        assert s.conv_parameters + s.fc_parameters == s.parameters  # every parameter is in a conv or fc layer
        assert sum(layer.parameters for layer in s.layers) == s.parameters


def test_accounting_shows_the_papers_story():
    s = {x.name: x for x in squeezenet_lesson.reference_summaries()}
    assert s["alexnet"].parameters / s["squeezenet1_0"].parameters > 45  # "50x fewer parameters"
    assert s["alexnet"].fc_parameters / s["alexnet"].parameters > 0.9  # AlexNet's weights are in its fc layers
    assert s["squeezenet1_0"].fc_parameters == 0
    assert 2.2 < s["squeezenet1_0"].macs / s["squeezenet1_1"].macs < 2.6  # v1.1: "2.4x less compute"
    for name, figures in squeezenet_lesson.PAPER_FIGURES.items():
        if figures["megabytes"]:
            assert s[name].fp32_megabytes == pytest.approx(figures["megabytes"], rel=0.05)


def test_summarize_counts_macs_of_a_small_model_by_hand():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    s = reference.summarize(model, (1, 28, 28))
    assert s.macs == 26 * 26 * 4 * 9 + 4 * 26 * 26 * 10
    assert [layer.kind for layer in s.layers] == ["conv", "fc"]
    assert s.parameters == 40 + 4 * 26 * 26 * 10 + 10


def test_reference_size_rows_carry_the_papers_megabytes():
    rows = {r.label: r for r in squeezenet_lesson.reference_size_rows(squeezenet_lesson.reference_summaries())}
    assert rows["AlexNet"].paper_bytes == 240_000_000
    assert rows["SqueezeNet 1.1"].paper_bytes is None
    assert rows["VGG-16"].bytes == 4 * 138_357_544


# ---------------------------------------------------------------- registered architectures


def test_build_knows_firenet_and_squeezenet1_0():
    assert isinstance(build("firenet"), sqn.FireNet)
    assert count_parameters(build("squeezenet1_0")) == 1_248_424


def test_firenet_shape_and_size():
    model = sqn.FireNet().eval()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert 15_000 < count_parameters(model) < 60_000
    assert not any(isinstance(m, nn.Linear) for m in model.modules())  # like SqueezeNet: no fc layer


# ---------------------------------------------------------------- SqueezeNet + Deep Compression


def test_offline_squeezenet_weights_fail_fast_and_say_they_are_untrained(monkeypatch):
    def offline(**_kw):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models, "squeezenet1_0", offline)
    got = reference.squeezenet1_0_weights()
    assert not got.trained and "indicative" in got.note and "no network" in got.note
    assert isinstance(got.model, sqn.SqueezeNet)


def test_downloaded_squeezenet_weights_are_loaded_under_our_names(monkeypatch):
    torch.manual_seed(1)
    downloaded = torchvision.models.squeezenet1_0(weights=None)  # stands in for the ImageNet weights
    real = torchvision.models.squeezenet1_0
    monkeypatch.setattr(torchvision.models, "squeezenet1_0",
                        lambda weights=None: downloaded if weights == "DEFAULT" else real(weights=weights))
    got = reference.squeezenet1_0_weights()
    assert got.trained and "indicative" not in got.note
    assert torch.equal(got.model.fire9.expand3x3.weight, downloaded.features[12].expand3x3.weight)
    assert torch.equal(got.model.conv10.bias, downloaded.classifier[1].bias)


def test_compress_squeezenet_writes_a_real_dcz_that_loads_back(monkeypatch):
    from dclab.pipeline import load_model

    monkeypatch.setattr(torchvision.models, "squeezenet1_0", lambda **_kw: (_ for _ in ()).throw(OSError("offline")))
    result = squeezenet_lesson.compress_squeezenet(bits=6)
    assert result.file_bytes == len(result.dcz) == result.report.file_bytes
    assert result.report.dense_bytes == 4 * 1_248_424
    assert result.report.file_bytes < result.report.stage_bytes["pruned + quantized"] < result.report.dense_bytes
    assert result.alexnet_bytes == 4 * 61_100_840
    assert result.ratio_vs_alexnet == pytest.approx(result.alexnet_bytes / result.file_bytes)
    model = load_model(result.dcz)
    assert isinstance(model, sqn.SqueezeNet)
    kept = sum(int((m.weight != 0).sum()) for m in compressible_layers(model).values())
    total = sum(m.weight.numel() for m in compressible_layers(model).values())
    assert kept / total == pytest.approx(1 - squeezenet_lesson.SQUEEZENET_DC_SPARSITY, abs=0.01)
    assert max(len(torch.unique(m.weight)) for m in compressible_layers(model).values()) <= 2**6


def test_compress_squeezenet_read_from_the_cache_equals_a_fresh_compression(tmp_path, monkeypatch):
    import dclab.pipeline

    monkeypatch.setattr(squeezenet_lesson, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(torchvision.models, "squeezenet1_0", lambda **_kw: (_ for _ in ()).throw(OSError("offline")))
    weights = reference.squeezenet1_0_weights()
    fresh = squeezenet_lesson.compress_squeezenet(bits=6, weights=weights, cache=False)
    assert not list(tmp_path.iterdir())  # cache=False writes nothing
    first = squeezenet_lesson.compress_squeezenet(bits=6, weights=weights)
    assert first.dcz == fresh.dcz and squeezenet_lesson.squeezenet_dcz_path(weights, _config(6)).is_file()

    monkeypatch.setattr(dclab.pipeline, "compress_weights", lambda *a, **k: pytest.fail("compressed again"))
    cached = squeezenet_lesson.compress_squeezenet(bits=6, weights=weights)
    assert cached.dcz == fresh.dcz and repr(cached) == repr(fresh)
    assert cached.report.stage_bytes == fresh.report.stage_bytes
    assert cached.report.to_frame().equals(fresh.report.to_frame())
    assert (cached.trained, cached.note, cached.alexnet_bytes) == (fresh.trained, fresh.note, fresh.alexnet_bytes)

    # other weights, or other settings, are another file
    with torch.random.fork_rng():
        torch.manual_seed(1)
        other = reference.PretrainedSqueezeNet(sqn.SqueezeNet(), False, weights.note)
    assert squeezenet_lesson.squeezenet_dcz_path(other, _config(6)) != squeezenet_lesson.squeezenet_dcz_path(weights, _config(6))
    assert squeezenet_lesson.squeezenet_dcz_path(weights, _config(8)) != squeezenet_lesson.squeezenet_dcz_path(weights, _config(6))


def test_a_damaged_cached_squeezenet_file_is_compressed_again(tmp_path, monkeypatch):
    monkeypatch.setattr(squeezenet_lesson, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(torchvision.models, "squeezenet1_0", lambda **_kw: (_ for _ in ()).throw(OSError("offline")))
    weights = reference.squeezenet1_0_weights()
    first = squeezenet_lesson.compress_squeezenet(bits=4, weights=weights)
    path = squeezenet_lesson.squeezenet_dcz_path(weights, _config(4))
    path.write_bytes(first.dcz[:100])
    again = squeezenet_lesson.compress_squeezenet(bits=4, weights=weights)
    assert again.dcz == first.dcz and path.read_bytes() == first.dcz


def _config(bits: int):
    from dclab.pipeline import CompressionConfig

    return CompressionConfig(sparsity=squeezenet_lesson.SQUEEZENET_DC_SPARSITY, conv_bits=bits, fc_bits=bits)


@pytest.mark.slow
def test_cached_mnist_comparison_equals_the_measured_one(mnist_test, lenet5, tmp_path, monkeypatch):
    from dclab.lessons import store

    compressed = squeezenet_lesson.compress_firenet(progress=False)
    monkeypatch.setattr(store, "cache_dir", lambda: tmp_path)
    cached = squeezenet_lesson.cached_mnist_comparison(compressed)
    firenet = squeezenet_lesson.pretrained_firenet(progress=False)
    assert cached == squeezenet_lesson.mnist_comparison(lenet5, firenet, compressed, mnist_test)
    monkeypatch.setattr(squeezenet_lesson, "test_error", lambda *a, **k: pytest.fail("measured again"))
    assert squeezenet_lesson.cached_mnist_comparison(compressed) == cached


# ---------------------------------------------------------------- FireNet: BatchNorm folding, training, compression


def test_fold_batchnorm_keeps_the_function_and_drops_the_batchnorm():
    torch.manual_seed(0)
    trained = sqn.FireNet(batchnorm=True)
    for m in trained.modules():  # BatchNorm statistics as after training, far from the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.2, 3)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    trained.eval()
    folded = sqn.fold_batchnorm(trained)
    x = torch.randn(8, 1, 28, 28)
    assert torch.allclose(folded(x), trained(x), atol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert set(folded.state_dict()) == set(build("firenet").state_dict())  # what a .dcz stores and rebuilds
    assert count_parameters(folded) < count_parameters(trained)


@pytest.mark.slow
def test_trained_firenet_is_small_and_accurate(mnist_test, lenet5):
    from dclab.train import test_error

    firenet = squeezenet_lesson.pretrained_firenet(progress=False)
    info = zoo.baseline_info("firenet")
    assert info["trained_by"] == zoo.FIRENET_TRAINER
    assert test_error(firenet, mnist_test) == pytest.approx(info["test_error"], abs=1e-6)
    assert info["test_error"] < 0.01
    assert count_parameters(lenet5) / count_parameters(firenet) > 10


@pytest.mark.slow
def test_compressed_firenet_is_a_real_dcz_that_rebuilds_the_model(mnist_test):
    from dclab.pipeline import load_model
    from dclab.train import test_error

    result = squeezenet_lesson.compress_firenet(progress=False)
    assert result.file_bytes == len(result.dcz) == result.path.stat().st_size == result.report.file_bytes
    assert result.report.dense_bytes == 4 * count_parameters(sqn.FireNet())
    assert result.report.ratio > 3
    rebuilt = load_model(result.dcz)
    for (name, a), b in zip(rebuilt.state_dict().items(), result.model.state_dict().values()):
        assert torch.equal(a, b), name
    error = test_error(rebuilt, mnist_test)
    assert error == pytest.approx(result.report.test_error_after, abs=1e-6)
    assert error < result.report.test_error_before + 0.005  # Deep Compression: (almost) no accuracy lost
