"""One engine under every number (issue 11): for random settings on both LeNets, every place that compresses
without training writes the same file and measures the same accuracy, because each calls the one mask, the one
k-means and the one encoder. Untrained (seeded) networks and synthetic digits: the equivalence does not depend
on the weights, and it runs in seconds."""
from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dclab.algorithms import quantize
from dclab.algorithms.prune import magnitude_mask
from dclab.codec import container
from dclab.codec.sparse import encode_pruned
from dclab.data import Digits
from dclab.models import LeNet5, LeNet300, compressible_layers
from dclab.pipeline import (
    CompressionConfig,
    WeightCache,
    compress,
    compress_weights,
    load_model,
)
from dclab.pipeline.session import CompressionSession
from dclab.train import evaluate

BUILD = {"lenet300": LeNet300, "lenet5": LeNet5}


def digits(n: int = 96, seed: int = 0) -> Digits:
    g = torch.Generator().manual_seed(seed)
    return Digits(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))


@functools.lru_cache(maxsize=None)
def network(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return BUILD[arch]().eval()


@functools.lru_cache(maxsize=None)
def session(arch: str) -> CompressionSession:
    return CompressionSession(digits(), {arch: network(arch)})


SETTINGS = dict(
    arch=st.sampled_from(sorted(BUILD)),
    sparsity=st.sampled_from([0.0, 0.25, 0.5, 0.77, 0.9, 0.97]),
    bits=st.integers(1, 6),
    gap_bits=st.integers(2, 8),
    init=st.sampled_from(quantize.INITS),
    huffman=st.booleans(),
)


@settings(max_examples=20, deadline=None)
@given(**SETTINGS)
def test_session_widget_and_engine_write_the_same_bytes_and_accuracy(arch, sparsity, bits, gap_bits, init, huffman):
    from dclab.widgets.coding import pipeline_widget

    model = network(arch)
    config = CompressionConfig(sparsity=sparsity, conv_bits=bits, fc_bits=bits, conv_gap_bits=gap_bits,
                               fc_gap_bits=gap_bits, init=init, huffman=huffman)
    _, engine, report = compress_weights(model, config)
    snap = session(arch).compress(arch, config)  # the capstone
    assert snap.dcz == engine and snap.report.stage_bytes == report.stage_bytes
    assert snap.accuracy == evaluate(load_model(engine), digits())
    if init == "linear" and huffman:  # notebook 04's pipeline widget: one sparsity, bits and gap width for all
        point = pipeline_widget(model, digits(), sparsity, bits, gap_bits).point
        assert point.dcz == engine and point.test_error == 1 - snap.accuracy


@settings(max_examples=8, deadline=None)
@given(**SETTINGS)
def test_the_pipeline_with_training_off_stores_the_same_layers(arch, sparsity, bits, gap_bits, init, huffman):
    model = network(arch)
    config = CompressionConfig(sparsity=sparsity, conv_bits=bits, fc_bits=bits, conv_gap_bits=gap_bits,
                               fc_gap_bits=gap_bits, init=init, huffman=huffman, prune_steps=1,
                               retrain_epochs=0, finetune_epochs=0)
    full = compress(model, config, train_data=digits(32), test_data=digits(), progress=False)
    _, engine, _ = compress_weights(model, config)
    a, b = container.from_bytes(full.dcz), container.from_bytes(engine)
    assert [x.name for x in a.layers] == [y.name for y in b.layers]
    for x, y in zip(a.layers, b.layers):  # the files differ only in their metadata (timings, errors)
        assert torch.equal(x.indices, y.indices) and torch.equal(x.centroids, y.centroids)
        assert x.gap_bits == y.gap_bits and torch.equal(x.bias, y.bias)
    assert full.report.stage_bytes["pruned"] == compress_weights(model, config)[2].stage_bytes["pruned"]


@settings(max_examples=10, deadline=None)
@given(arch=st.sampled_from(sorted(BUILD)), sparsity=st.sampled_from([0.1, 0.5, 0.9, 0.97]),
       gap_bits=st.integers(2, 8))
def test_prune_explorer_cuts_the_engines_masks_and_shows_the_engines_pruned_bytes(arch, sparsity, gap_bits):
    from dclab.widgets.pruning import prune_explorer

    model = network(arch)
    explorer = prune_explorer(model, digits(), sparsity=sparsity)
    cache = WeightCache(model)
    for name, w in cache.weights.items():
        assert torch.equal(explorer.state["masks"][name], cache.mask(name, sparsity))
        assert torch.equal(explorer.state["masks"][name], magnitude_mask(w, sparsity))
    # the explorer's bytes and the report's pruned stage are the same encoder's output
    config = CompressionConfig(sparsity=sparsity, conv_gap_bits=gap_bits, fc_gap_bits=gap_bits)
    _, _, report = compress_weights(model, config)
    masks = {n: cache.mask(n, sparsity) for n in cache.weights}
    biases = sum(4 * m.bias.numel() for m in compressible_layers(model).values())
    stage = sum(len(encode_pruned(cache.weights[n], masks[n], gap_bits)) for n in masks) + biases
    assert report.stage_bytes["pruned"] == stage


@settings(max_examples=8, deadline=None)
@given(arch=st.sampled_from(sorted(BUILD)), bits=st.integers(1, 6), init=st.sampled_from(quantize.INITS))
def test_bit_width_widget_shares_the_engines_codebooks(arch, bits, init):
    from dclab.widgets.sharing import bit_width_explorer

    model = network(arch)
    layer = list(compressible_layers(model))[-1]
    widget = bit_width_explorer(model, digits(), layer=layer, bits=bits, init=init)
    _, engine, _ = compress_weights(model, CompressionConfig(sparsity=0.0, conv_bits=bits, fc_bits=bits, init=init))
    stored = {x.name: x for x in container.from_bytes(engine).layers}[layer]
    assert torch.equal(widget.state["codebook"].centroids, stored.centroids)
    assert torch.equal(widget.state["codebook"].indices.reshape(stored.indices.shape), stored.indices)


@pytest.mark.parametrize("arch, args", [
    ("lenet300", ["--sparsity", "ip1=0.93,ip2=0.9,ip3=0.6", "--bits-fc", "4", "--gap-bits-fc", "3"]),
    ("lenet5", ["--sparsity", "0.8", "--bits-conv", "5", "--bits-fc", "3", "--gap-bits-conv", "6", "--init", "density"]),
])
def test_the_command_line_with_training_off_writes_the_engines_layers(arch, args, tmp_path, capsys):
    from dclab.cli import main
    from dclab.zoo import pretrained

    out = tmp_path / f"{arch}.dcz"
    assert main(["compress", arch, *args, "--prune-steps", "1", "--retrain-epochs", "0", "--finetune-epochs", "0",
                 "--out", str(out)]) == 0
    written = container.read_dcz(out)
    config = CompressionConfig(**written.meta["config"])  # the settings the file says it was made with
    _, engine, _ = compress_weights(pretrained(arch, progress=False), config)
    for x, y in zip(written.layers, container.from_bytes(engine).layers, strict=True):
        assert x.name == y.name and x.gap_bits == y.gap_bits and x.bits == y.bits
        assert torch.equal(x.indices, y.indices) and torch.equal(x.centroids, y.centroids)
        assert torch.equal(x.bias, y.bias)
