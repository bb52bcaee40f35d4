"""Trained ternary quantization (dclab.algorithms.ternary, dclab.pipeline.ternary): small cases worked by hand,
the paper's gradient rule, and the .dcz round trip. No accuracy of a trained model is asserted."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from dclab.algorithms import ternary
from dclab.algorithms.prune import magnitude_mask
from dclab.codec import container
from dclab.errors import DclabError
from dclab.pipeline import CompressionConfig, load_model
from dclab.pipeline.ternary import kept_masks, train_ternary
from dclab.train import evaluate

W = torch.tensor([0.9, -0.5, 0.02, -0.03, 0.4, -1.0])


def test_threshold_is_t_times_the_largest_magnitude_of_the_kept_weights():
    w = torch.tensor([1.0, -4.0, 2.5, 0.1])
    assert ternary.ternary_threshold(w, 0.5) == pytest.approx(2.0)
    assert ternary.ternary_threshold(w, 0.5, mask=torch.tensor([True, False, True, True])) == pytest.approx(1.25)
    assert ternary.ternarize(w, 0.5, 3.0, 2.0).tolist() == [0.0, -2.0, 3.0, 0.0]
    assert ternary.ternarize(w, 0.5, 3.0, 2.0, mask=torch.tensor([True, False, True, True])).tolist() == [
        0.0, 0.0, 3.0, 0.0]


def test_ternary_weight_by_hand():
    # threshold 0.05 * 1.0: 0.02 and -0.03 fall inside it
    assert ternary.ternarize(W, 0.05, 0.7, 0.6).tolist() == pytest.approx([0.7, -0.6, 0, 0, 0.7, -0.6])
    wp, wn = ternary.ternary_scales(W, 0.05)
    assert wp == pytest.approx((0.9 + 0.4) / 2) and wn == pytest.approx((0.5 + 1.0) / 2)


@pytest.mark.parametrize("seed", range(5))
def test_three_values_with_the_signs_of_the_latent_weights(seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(40, 30, generator=g)
    mask = magnitude_mask(w, 0.5)
    t = 0.2
    wp, wn = ternary.ternary_scales(w, t, mask)
    wt = ternary.ternarize(w, t, wp, wn, mask)
    assert set(wt.unique().tolist()) == {-torch.tensor(wn).item(), 0.0, torch.tensor(wp).item()}
    cut = ternary.ternary_threshold(w, t, mask)
    assert torch.equal(wt > 0, (w > cut) & mask) and torch.equal(wt < 0, (w < -cut) & mask)
    assert bool((wt[~mask] == 0).all())
    book = ternary.ternary_codebook(w, t, wp, wn, mask)
    assert book.reserved_zero and book.n_clusters == 3 and book.bits == 2
    assert torch.equal(book.weights(), wt)


def test_gradient_rule_of_the_paper_on_a_tiny_tensor():
    layer = nn.Linear(6, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(W.reshape(1, 6))
    keep = torch.tensor([[True, True, True, True, True, False]])  # the last weight is pruned
    model = nn.Sequential(layer)
    ternary.ternarize_(model, {"0": keep}, t=0.05)
    p = layer.parametrizations.weight[0]
    with torch.no_grad():
        p.wp.fill_(0.7)
        p.wn.fill_(0.6)
    c = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    assert layer.weight[0].tolist() == pytest.approx([0.7, -0.6, 0, 0, 0.7, 0])  # threshold 0.05 * 0.9
    (layer.weight * c).sum().backward()  # dL/dw_t = c
    assert p.wp.grad.item() == pytest.approx(1.0 + 5.0)  # sum over the positives
    assert p.wn.grad.item() == pytest.approx(-2.0)  # w_t = -wn on the negatives
    latent = layer.parametrizations.weight.original.grad
    assert latent[0].tolist() == pytest.approx([0.7 * 1, 0.6 * 2, 3.0, 4.0, 0.7 * 5, 0.0])


def test_ternarize_then_unternarize_gives_plain_layers_holding_the_codebook():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    ternary.ternarize_(model, {"0": None, "2": None}, t=0.1)
    names = {n for n, _ in model.named_parameters()}
    assert {"0.parametrizations.weight.original", "0.parametrizations.weight.0.wp",
            "0.parametrizations.weight.0.wn"} <= names
    with pytest.raises(DclabError, match="already parametrized"):
        ternary.ternarize_(model, {"0": None})
    books = ternary.unternarize_(model)
    assert set(books) == {"0", "2"}
    assert {n for n, _ in model.named_parameters()} == {"0.weight", "0.bias", "2.weight", "2.bias"}
    for name, book in books.items():
        assert torch.equal(dict(model.named_modules())[name].weight, book.weights())


def test_bad_threshold_and_unknown_layer_are_refused():
    with pytest.raises(DclabError, match=r"in \[0, 1\)"):
        ternary.ternarize(W, 1.5, 1.0, 1.0)
    with pytest.raises(DclabError, match="no layer 'nope'"):
        ternary.ternarize_(nn.Sequential(nn.Linear(2, 2)), {"nope": None})


def _pruned(model: nn.Module, sparsity: float) -> nn.Module:
    net = copy.deepcopy(model)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(magnitude_mask(m.weight, sparsity))
    return net


def test_ternary_file_reads_back_to_the_ternary_weights_and_the_same_accuracy(untrained_lenet300, synthetic_digits):
    model = _pruned(untrained_lenet300, 0.9)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    config = CompressionConfig(fc_bits=4, fc_gap_bits=6, max_shift=0.0, bias_bits=16)
    result = train_ternary(model, config, layers=["ip1", "ip2"], epochs=1, train_data=synthetic_digits.subset(256),
                           test_data=synthetic_digits, progress=False)
    assert all(torch.equal(model.state_dict()[n], p) for n, p in before.items())  # the input is not changed
    dcz = container.from_bytes(result.dcz)
    back = load_model(dcz)
    for name, p in back.state_dict().items():
        assert torch.equal(p, result.model.state_dict()[name]), name
    assert evaluate(back, synthetic_digits) == evaluate(result.model, synthetic_digits)
    layers = {layer.name: layer for layer in dcz.layers}
    for name in ("ip1", "ip2"):
        w, book = back.state_dict()[f"{name}.weight"], result.codebooks[name]
        assert layers[name].bits == 2 and layers[name].gap_bits == 6
        assert len(w.unique()) <= 3 and book.centroids[0] == 0 and book.centroids[1] < 0 < book.centroids[2]
        assert bool((w[before[f"{name}.weight"] == 0] == 0).all())  # pruned weights stay pruned
    assert layers["ip3"].bits == 4  # a layer not made ternary is shared as the config says
    assert len(back.ip3.weight.unique()) <= 16
    wp, wn = ternary.ternary_scales(model.ip1.weight, 0.05, model.ip1.weight != 0)
    assert result.codebooks["ip1"].centroids.tolist() != pytest.approx([0.0, -wn, wp])  # the scales trained
    assert dcz.meta["ternary"]["layers"] == ["ip1", "ip2"]
    assert result.report.file_bytes == len(result.dcz)


def test_shared_layers_of_a_quantized_network_keep_their_codebook(untrained_lenet300, synthetic_digits):
    from dclab.pipeline import compress_weights

    config = CompressionConfig(sparsity=0.9, fc_bits=3, fc_gap_bits=6, max_shift=0.0)
    quantized, _, _ = compress_weights(untrained_lenet300, config)
    result = train_ternary(quantized, config, layers=["ip1"], epochs=0, test_data=synthetic_digits,
                           train_data=synthetic_digits, progress=False)
    for name in ("ip2", "ip3"):
        assert torch.equal(result.model.state_dict()[f"{name}.weight"], quantized.state_dict()[f"{name}.weight"])
    assert kept_masks(untrained_lenet300)["ip1"] is None


def test_no_layer_or_an_unknown_one_is_refused(untrained_lenet300, synthetic_digits):
    with pytest.raises(DclabError, match="no layer conv9"):
        train_ternary(untrained_lenet300, layers=["conv9"], train_data=synthetic_digits, test_data=synthetic_digits)
    with pytest.raises(DclabError, match="no layer to make ternary"):
        train_ternary(untrained_lenet300, layers=[], train_data=synthetic_digits, test_data=synthetic_digits)
