"""The whole pipeline on MNIST with tiny settings: real bytes, bit-exact reload, the fast path."""
import copy
import math
import time

import pytest
import torch

from dclab.codec import container
from dclab.errors import DclabError, DczFormatError
from dclab.models import LeNet5, LeNet300, compressible_layers, count_parameters
from dclab.pipeline import (
    CompressionConfig,
    WeightCache,
    arch_of,
    compress,
    compress_weights,
    load_model,
    report_from_dcz,
)
from dclab.train import predict, test_error, train

SPARSITY = {"ip1": 0.9, "ip2": 0.8, "ip3": 0.5}


@pytest.fixture(scope="module")
def trained(mnist_train):
    """A LeNet-300-100 trained for one quick epoch on 3,000 digits (good enough to compress)."""
    torch.manual_seed(0)
    model = LeNet300()
    train(model, mnist_train.subset(3000), 1, progress=False)
    return model


@pytest.fixture(scope="module")
def run(trained, mnist_train, mnist_test):
    before = copy.deepcopy(trained.state_dict())
    config = CompressionConfig(
        sparsity=SPARSITY, prune_steps=2, retrain_epochs=1, finetune_epochs=1, train_subset=2000
    )
    result = compress(trained, config, train_data=mnist_train, test_data=mnist_test, progress=False)
    return before, result


def test_compress_leaves_the_input_model_alone(trained, run):
    before, _ = run
    for key, value in trained.state_dict().items():
        assert torch.equal(value, before[key])


def test_compressed_layers_are_pruned_and_shared(run):
    _, result = run
    for name, module in compressible_layers(result.model).items():
        w = module.weight.detach()
        removed = int((w == 0).sum())
        assert removed == round(SPARSITY[name] * w.numel()), name
        assert len(torch.unique(w[w != 0])) <= 2**5 - 1  # fc: 5 bits, index 0 reserved for zero
        book = result.codebooks[name]
        assert book.reserved_zero and book.centroids[0].item() == 0.0
        assert torch.equal(book.weights(), w)


def test_the_file_rebuilds_the_model_bit_for_bit(run, mnist_test, tmp_path):
    _, result = run
    path = tmp_path / "lenet300.dcz"
    assert result.save(path) == len(result.dcz) == result.report.file_bytes
    for source in (result.dcz, path, str(path)):
        rebuilt = load_model(source)
        assert isinstance(rebuilt, LeNet300) and not rebuilt.training
        state = rebuilt.state_dict()
        for key, value in result.model.state_dict().items():
            assert torch.equal(state[key], value), key
    assert torch.equal(predict(rebuilt, mnist_test), predict(result.model, mnist_test))
    error = test_error(rebuilt, mnist_test)
    assert error == result.report.test_error_after == test_error(result.model, mnist_test)
    assert error < 0.5  # it still classifies digits (the model had one short epoch)


def test_stage_sizes_are_real_bytes(run):
    _, result = run
    report = result.report
    stages = report.stage_bytes
    assert list(stages) == ["dense", "pruned", "pruned + quantized", "+ Huffman"]
    assert stages["dense"] == 4 * count_parameters(LeNet300()) == 1_066_440
    assert stages["+ Huffman"] == len(result.dcz)
    read = container.from_bytes(result.dcz)
    fixed = container.to_bytes(read.arch, read.layers, huffman=False, meta=read.meta)
    assert stages["pruned + quantized"] == len(fixed)
    assert stages["dense"] > stages["pruned"] > stages["pruned + quantized"] > stages["+ Huffman"]
    # pruned: the real bytes of each layer in the pruning-only format (dclab.codec.sparse), plus the biases
    from dclab.codec.sparse import encode_pruned

    model = load_model(result.dcz)
    layers = {s.name: s for s in read.layer_stats()}
    pruned = sum(len(encode_pruned(m.weight.detach(), m.weight.detach() != 0, layers[name].gap_bits))
                 for name, m in compressible_layers(model).items())
    assert stages["pruned"] == pruned + 4 * 410
    assert report.ratio == pytest.approx(stages["dense"] / len(result.dcz))
    assert report.ratio > 10


def test_report_rows_and_file_alone_agree(run):
    _, result = run
    report = result.report
    assert [layer.name for layer in report.layers] == ["ip1", "ip2", "ip3"]
    ip1 = report.layers[0]
    assert ip1.weights == 235_200 and ip1.density == pytest.approx(0.1, abs=1e-4)
    assert ip1.bits == 5 and ip1.gap_bits == 5
    assert 0 < ip1.weight_bits_huffman < 5 and 0 < ip1.gap_bits_huffman < 5
    assert ip1.share_pqh < ip1.share_pq < 0.1
    from_file = report_from_dcz(result.dcz)
    assert from_file.layers == report.layers
    assert from_file.stage_bytes == report.stage_bytes
    assert from_file.test_error_after == report.test_error_after
    assert from_file.test_error_before == report.test_error_before


def test_report_reads_well(run):
    _, result = run
    report = result.report
    frame = report.to_frame()
    assert list(frame.index) == ["ip1", "ip2", "ip3", "total"]
    assert {"density", "weight bits +H", "gap bits +H", "size P+Q", "size +H"} <= set(frame.columns)
    assert frame.loc["total", "weights"] == 266_200
    assert list(report.stages_frame().index)[-1] == "+ Huffman"
    text = str(report)
    assert "ip1" in text and "total" in text and "+ Huffman" in text and "test error" in text
    assert repr(report).startswith("CompressionReport(lenet300: 1,066,440 -> ")
    assert "% kept" in repr(report.layers[0])


def test_fast_path_is_fast_and_matches_the_file(mnist_test):
    torch.manual_seed(1)
    model = LeNet300()
    cache = WeightCache(model)
    config = CompressionConfig(sparsity=SPARSITY)
    compress_weights(model, config, cache)  # warm up
    start = time.perf_counter()
    net, data, report = compress_weights(model, config, cache)
    assert time.perf_counter() - start < 1.0
    assert report.file_bytes == len(data) and report.test_error_after is None
    rebuilt = load_model(data)
    for key, value in net.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value)
    _, uncached, _ = compress_weights(model, config)  # same result without a cache
    assert uncached == data
    _, _, scored = compress_weights(model, config, cache, test_data=mnist_test.subset(500))
    assert scored.test_error_after == test_error(net, mnist_test.subset(500))


def test_huffman_off_writes_the_fixed_width_file():
    model = LeNet300()
    _, data, report = compress_weights(model, CompressionConfig(sparsity=0.9, huffman=False))
    assert not container.from_bytes(data).huffman
    assert report.file_bytes == len(data) == report.stage_bytes["pruned + quantized"]


def test_quality_prunes_below_quality_times_std():
    model = LeNet300()
    _, data, report = compress_weights(model, CompressionConfig(quality={"ip1": 1.0}))
    w = model.ip1.weight.detach()
    expected = (w.abs() < w.std()).sum().item()
    assert report.layers[0].kept == w.numel() - expected
    ip2 = report.layers[1]
    assert ip2.kept == ip2.weights and ip2.gap_bits == 0  # not pruned: stored dense


def test_conv_layers_get_conv_bits_and_gap_bits():
    model = LeNet5()
    config = CompressionConfig(sparsity={"conv1": 0.3, "conv2": 0.8, "ip1": 0.9, "ip2": 0.8}, conv_bits=6)
    net, data, report = compress_weights(model, config)
    rows = {layer.name: layer for layer in report.layers}
    assert rows["conv1"].bits == 6 and rows["conv1"].gap_bits == 8
    assert rows["ip1"].bits == 5 and rows["ip1"].gap_bits == 5
    assert isinstance(load_model(data), LeNet5)
    assert arch_of(model) == "lenet5"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"fc_bits": 0}, "bits for fc layers must be an integer from 1 to 16"),
        ({"conv_bits": 17}, "bits for conv layers must be an integer from 1 to 16"),
        ({"sparsity": 1.0}, r"sparsity must be in \[0, 1\)"),
        ({"sparsity": float("nan")}, r"sparsity must be in \[0, 1\)"),
        ({"sparsity": {"ip1": -0.1}}, "sparsity of layer 'ip1'"),
        ({"quality": -1.0}, "quality"),
        ({"sparsity": 0.5, "quality": 1.0}, "not both"),
        ({"init": "kmeans++"}, "init must be one of"),
        ({"fc_gap_bits": 0}, "fc_gap_bits"),
        ({"retrain_epochs": -1}, "retrain_epochs"),
    ],
)
def test_bad_settings_are_clear_errors(settings, message):
    with pytest.raises(DclabError, match=message):
        CompressionConfig(**settings)


def test_unknown_layer_names_are_refused():
    with pytest.raises(DclabError, match="no layer conv9"):
        compress_weights(LeNet300(), CompressionConfig(sparsity={"conv9": 0.5}))


def test_load_model_refuses_what_it_cannot_read(tmp_path):
    with pytest.raises(DclabError, match="no such file"):
        load_model(tmp_path / "missing.dcz")
    with pytest.raises(DczFormatError):
        load_model(b"not a dcz at all")
    assert math.isfinite(CompressionConfig().retrain_lr)


def test_weight_cache_masks_equal_magnitude_masks(trained):
    from dclab.algorithms.prune import magnitude_mask

    cache = WeightCache(trained)
    for name, w in cache.weights.items():
        for sparsity in (0.0, 0.3, 0.95):
            assert torch.equal(cache.mask(name, sparsity), magnitude_mask(w, sparsity))
    assert "lenet300" in repr(cache)


def test_float16_biases_are_measured_as_the_file_stores_them(synthetic_digits):
    torch.manual_seed(2)
    model = LeNet300()
    with torch.no_grad():
        model.ip1.bias.add_(0.123456)  # values float16 must round
    wide = CompressionConfig(sparsity=SPARSITY)
    narrow = CompressionConfig(sparsity=SPARSITY, bias_bits=16)
    net32, data32, report32 = compress_weights(model, wide)
    net16, data16, report16 = compress_weights(model, narrow, test_data=synthetic_digits)
    assert container.from_bytes(data32).layers[0].bias_bits == 32 and struct_version(data32) == 1
    assert struct_version(data16) == 2
    rebuilt = load_model(data16)
    for key, value in net16.state_dict().items():  # the model measured is the file's, bit for bit
        assert torch.equal(rebuilt.state_dict()[key], value)
    assert torch.equal(net16.ip1.bias, model.ip1.bias.detach().half().float())
    assert not torch.equal(net16.ip1.bias, net32.ip1.bias)
    assert report16.test_error_after == test_error(rebuilt, synthetic_digits)
    n_bias = sum(m.bias.numel() for m in compressible_layers(model).values())
    assert report16.stage_bytes["dense"] == report32.stage_bytes["dense"]  # the original stays float32
    assert report32.stage_bytes["pruned"] - report16.stage_bytes["pruned"] == 2 * n_bias
    assert "bias_bits" not in wide.to_dict() and narrow.to_dict()["bias_bits"] == 16  # older keys unchanged
    with pytest.raises(DclabError, match="bias_bits must be 32 or 16"):
        CompressionConfig(bias_bits=8)


def struct_version(data: bytes) -> int:
    return int.from_bytes(data[8:10], "little")


def test_float16_codebooks_and_ans_are_measured_as_the_file_stores_them(synthetic_digits):
    """``codebook_bits=16`` rounds the centroids before the model is measured; ``coder="ans"`` codes the same
    weights in other bytes (version 3 either way); settings at their defaults leave the metadata unchanged."""
    torch.manual_seed(3)
    model = LeNet300()
    plain = CompressionConfig(sparsity=SPARSITY)
    net32, data32, report32 = compress_weights(model, plain, test_data=synthetic_digits)
    for config in (CompressionConfig(sparsity=SPARSITY, codebook_bits=16),
                   CompressionConfig(sparsity=SPARSITY, coder="ans"),
                   CompressionConfig(sparsity=SPARSITY, coder="ans", codebook_bits=16, bias_bits=16)):
        net, data, report = compress_weights(model, config, test_data=synthetic_digits)
        assert struct_version(data) == 3 and report.file_bytes == len(data)
        dcz = container.from_bytes(data)
        assert dcz.ans == (config.coder == "ans") and dcz.meta["config"] == config.to_dict()
        rebuilt = load_model(data)
        for key, value in net.state_dict().items():  # the model measured is the file's, bit for bit
            assert torch.equal(rebuilt.state_dict()[key], value)
        assert report.test_error_after == test_error(rebuilt, synthetic_digits)
        if config.codebook_bits == 16:
            for layer in dcz.layers:
                assert torch.equal(layer.centroids, layer.centroids.half().float())
        else:  # ANS alone: the very weights of the Huffman file
            for key, value in net32.state_dict().items():
                assert torch.equal(net.state_dict()[key], value)
            meta = len(',"coder":"ans"')  # the only difference of the fixed-width and Huffman files: the setting
            assert {k: v - report32.stage_bytes[k] for k, v in report.stage_bytes.items()} == {
                "dense": 0, "pruned": 0, "pruned + quantized": meta, "+ Huffman": meta}
        assert report_from_dcz(data).stage_bytes == report.stage_bytes  # re-encoded from the file alone
    for key in ("coder", "codebook_bits"):
        assert key not in plain.to_dict()  # older cache keys and metadata unchanged
    with pytest.raises(DclabError, match="codebook_bits must be 32 or 16"):
        CompressionConfig(codebook_bits=8)
    with pytest.raises(DclabError, match="coder must be one of huffman, ans"):
        CompressionConfig(coder="arithmetic")
    with pytest.raises(DclabError, match="choose one"):
        CompressionConfig(coder="ans", huffman=False)
