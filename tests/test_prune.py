"""Pruning: masks against hand-worked cases and torch.nn.utils.prune, the Pruner through retraining."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune as torch_prune

from dclab.algorithms.prune import (
    MagnitudeOrder,
    Pruner,
    global_magnitude_masks,
    layer_masks,
    magnitude_mask,
    prunable_weights,
    retrain_dropout,
    sensitivity_scan,
    sparsity_of,
    threshold_mask,
)
from dclab.errors import DclabError

W5 = torch.tensor(
    [
        [0.10, -0.90, 0.05, 0.40, -0.20],
        [-0.60, 0.01, 0.70, -0.03, 0.25],
        [0.80, -0.15, -0.02, 0.55, 0.30],
        [-0.07, 0.35, 0.95, -0.45, 0.12],
        [0.50, -0.65, 0.04, 0.20001, -0.85],
    ]
)


def test_magnitude_mask_worked_5x5():
    # 40% of 25 = 10 removed: the 10 smallest |w| are 0.01 .02 .03 .04 .05 .07 .10 .12 .15 .20
    expected = torch.tensor(
        [
            [0, 1, 0, 1, 0],
            [1, 0, 1, 0, 1],
            [1, 0, 0, 1, 1],
            [0, 1, 1, 1, 0],
            [1, 1, 0, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(magnitude_mask(W5, 0.4), expected)


def test_threshold_mask_worked_example():
    w = torch.tensor([1.0, -1.0, 3.0, -3.0])  # std = sqrt(20/3) = 2.582
    assert torch.equal(threshold_mask(w, 1.0), torch.tensor([False, False, True, True]))
    assert torch.equal(threshold_mask(w, 0.0), torch.ones(4, dtype=torch.bool))
    assert not threshold_mask(w, 2.0).any()


def test_threshold_mask_uses_std_of_kept_weights_when_given_a_mask():
    w = torch.tensor([0.0, 0.0, 1.0, -1.0, 3.0, -3.0])
    before = torch.tensor([False, False, True, True, True, True])
    assert torch.equal(threshold_mask(w, 1.0, before), torch.tensor([False, False, False, False, True, True]))


@settings(max_examples=60, deadline=None)
@given(
    shape=st.sampled_from([(7,), (13, 5), (4, 3, 3, 3), (100,)]),
    sparsity=st.floats(0.0, 0.999),
    seed=st.integers(0, 10_000),
)
def test_magnitude_mask_equals_torch_l1_unstructured_without_ties(shape, sparsity, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    layer = nn.Linear(1, 1)
    layer.weight = nn.Parameter(w.clone())
    torch_prune.l1_unstructured(layer, "weight", amount=sparsity)
    mask = magnitude_mask(w, sparsity)
    assert torch.equal(mask, layer.weight_mask.bool())
    assert (~mask).sum().item() == round(sparsity * w.numel())


@settings(max_examples=60, deadline=None)
@given(
    shape=st.sampled_from([(7,), (13, 5), (4, 3, 3, 3), (100,)]),
    sparsities=st.lists(st.floats(0.0, 0.999), min_size=2, max_size=4),
    seed=st.integers(0, 10_000),
)
def test_one_magnitude_order_breaks_ties_by_position_and_nests(shape, sparsities, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.round(torch.randn(shape, generator=g) * 2) / 2  # many equal magnitudes
    order = MagnitudeOrder(w)
    flat = w.abs().reshape(-1)
    previous = None
    for s in sorted(sparsities):
        mask = order.mask(s)
        assert torch.equal(mask, magnitude_mask(w, s))
        assert (~mask).sum().item() == round(s * w.numel())
        pruned, kept = flat[~mask.reshape(-1)], flat[mask.reshape(-1)]
        if pruned.numel() and kept.numel():
            assert pruned.max() <= kept.min()
            cut = pruned.max()  # among weights of the cut magnitude, the earlier ones go first
            tied = torch.nonzero(flat == cut).reshape(-1)
            gone = ~mask.reshape(-1)[tied]
            assert torch.equal(gone, torch.sort(gone, descending=True).values)
        if previous is not None:  # a higher sparsity prunes everything a lower one did
            assert not (mask & ~previous).any()
        previous = mask


def test_global_masks_equal_torch_global_unstructured():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 20), nn.Linear(20, 10), nn.Conv2d(2, 3, 3))
    weights = {str(i): m.weight.detach().clone() for i, m in enumerate(model)}
    torch_prune.global_unstructured(
        [(m, "weight") for m in model], pruning_method=torch_prune.L1Unstructured, amount=0.7
    )
    masks = global_magnitude_masks(weights, 0.7)
    for i, module in enumerate(model):
        assert torch.equal(masks[str(i)], module.weight_mask.bool())
    removed = sum((~m).sum().item() for m in masks.values())
    assert removed == round(0.7 * sum(w.numel() for w in weights.values()))


def test_global_scope_prunes_small_layers_more_than_per_layer():
    torch.manual_seed(0)
    weights = {"big": torch.randn(1000) * 1.0, "small": torch.randn(1000) * 0.1}
    masks = layer_masks(weights, sparsity=0.5, scope="global")
    assert sparsity_of(masks["small"]) > 0.8 and sparsity_of(masks["big"]) < 0.2
    per_layer = layer_masks(weights, sparsity=0.5)
    assert sparsity_of(per_layer["small"]) == sparsity_of(per_layer["big"]) == 0.5
    by_quality = layer_masks(weights, quality=1.0, scope="global")
    assert sparsity_of(by_quality["small"]) == 1.0


def test_layer_masks_per_layer_dicts():
    torch.manual_seed(1)
    weights = {"ip1": torch.randn(50, 20), "ip2": torch.randn(10, 50), "ip3": torch.randn(10, 10)}
    masks = layer_masks(weights, sparsity={"ip1": 0.9, "ip2": 0.5})
    assert sparsity_of(masks["ip1"]) == 0.9 and sparsity_of(masks["ip2"]) == 0.5
    assert masks["ip3"].all()  # not named: left dense
    masks = layer_masks(weights, quality={"ip1": 1.0})
    assert torch.equal(masks["ip1"], threshold_mask(weights["ip1"], 1.0))
    with pytest.raises(DclabError, match="no layer named ip9"):
        layer_masks(weights, sparsity={"ip9": 0.5})
    with pytest.raises(DclabError, match="exactly one"):
        layer_masks(weights, sparsity=0.5, quality=1.0)
    with pytest.raises(DclabError, match="scope"):
        layer_masks(weights, sparsity=0.5, scope="network")


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, float("nan"), "0.5", None, True])
def test_bad_sparsity_is_a_clear_error(bad):
    with pytest.raises(DclabError, match=r"sparsity.*\[0, 1\)"):
        magnitude_mask(torch.randn(10), bad)


def test_bad_sparsity_in_a_dict_names_the_layer():
    with pytest.raises(DclabError, match="layer 'a'"):
        layer_masks({"a": torch.randn(4)}, sparsity={"a": 1.0})


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf"), "1"])
def test_bad_quality_is_a_clear_error(bad):
    with pytest.raises(DclabError, match="quality"):
        threshold_mask(torch.randn(10), bad)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
        lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-2),
    ],
    ids=["sgd-momentum-wd", "adam-wd"],
)
def test_pruned_weights_stay_exactly_zero_through_retraining(make_optimizer):
    model = _mlp()
    masks = layer_masks(prunable_weights(model), sparsity=0.8)
    pruner = Pruner(model, masks)
    kept_before = {n: w.detach()[masks[n]].clone() for n, w in prunable_weights(model).items()}
    optimizer = make_optimizer(model.parameters())
    x, y = torch.randn(64, 20), torch.randint(0, 5, (64,))
    for _ in range(25):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        for name, w in prunable_weights(model).items():  # the hooks masked the gradients
            assert (w.grad[~masks[name]] == 0).all()
        optimizer.step()
        pruner.apply()
    for name, w in prunable_weights(model).items():
        assert (w.detach()[~masks[name]] == 0).all(), name
        assert not torch.equal(w.detach()[masks[name]], kept_before[name])  # survivors did train
    assert pruner.sparsity() == pytest.approx(0.8, abs=1e-3)


def test_gradient_hooks_alone_keep_sgd_momentum_weight_decay_at_zero():
    # without apply(): masked gradients + zero weights => weight decay and momentum add nothing
    model = _mlp()
    masks = layer_masks(prunable_weights(model), sparsity=0.5)
    Pruner(model, masks)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    x, y = torch.randn(32, 20), torch.randint(0, 5, (32,))
    for _ in range(10):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    for name, w in prunable_weights(model).items():
        assert (w.detach()[~masks[name]] == 0).all()


def test_pruner_remove_takes_the_hooks_off():
    model = _mlp()
    masks = layer_masks(prunable_weights(model), sparsity=0.5)
    pruner = Pruner(model, masks)
    pruner.remove()
    nn.functional.cross_entropy(model(torch.randn(8, 20)), torch.randint(0, 5, (8,))).backward()
    assert (model[0].weight.grad[~masks["0"]] != 0).any()
    assert "0: 50.0%" in repr(pruner)


def test_pruner_is_an_after_step_callback():
    model = _mlp()
    masks = layer_masks(prunable_weights(model), sparsity=0.5)
    pruner = Pruner(model, masks)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    pruner(model)
    assert (model[0].weight[~masks["0"]] == 0).all()


def test_pruner_rejects_bad_masks():
    model = _mlp()
    with pytest.raises(DclabError, match="no layer 'ip1'"):
        Pruner(model, {"ip1": torch.ones(30, 20, dtype=torch.bool)})
    with pytest.raises(DclabError, match="shaped"):
        Pruner(model, {"0": torch.ones(20, 30, dtype=torch.bool)})


def test_sensitivity_scan_prunes_one_layer_at_a_time_and_restores():
    model = _mlp()
    before = {n: w.detach().clone() for n, w in prunable_weights(model).items()}
    seen = []

    def nonzero_fraction(m):  # stands in for accuracy: what the scan changed
        ws = prunable_weights(m)
        return sum(int((w != 0).sum()) for w in ws.values()) / sum(w.numel() for w in ws.values())

    scan = sensitivity_scan(model, nonzero_fraction, [0.0, 0.5, 0.9], callback=lambda *a: seen.append(a))
    assert list(scan) == ["0", "2"]
    n0, n2 = 600, 150
    assert scan["0"] == pytest.approx([1.0, 1 - 300 / 750, 1 - 540 / 750])
    assert scan["2"] == pytest.approx([1.0, 1 - 75 / 750, 1 - 135 / 750])
    assert len(seen) == 6 and seen[1][:2] == ("0", 0.5) and n0 + n2 == 750
    for name, w in prunable_weights(model).items():
        assert torch.equal(w.detach(), before[name])
    with pytest.raises(DclabError, match="no prunable layer"):
        sensitivity_scan(model, nonzero_fraction, [0.5], layers=["ip1"])


def test_retrain_dropout_follows_the_paper():
    assert retrain_dropout(0.5, 25, 100) == pytest.approx(0.25)
    assert retrain_dropout(0.5, 100, 100) == 0.5
    assert retrain_dropout(0.3, 9, 100) == pytest.approx(0.3 * math.sqrt(0.09))
    with pytest.raises(DclabError):
        retrain_dropout(0.5, 200, 100)
    with pytest.raises(DclabError):
        retrain_dropout(1.0, 10, 100)
