"""The test pass by stages (dclab.pipeline.staged): the same accuracy as a plain pass, rerunning only what changed."""
from __future__ import annotations

import copy

import pytest
import torch

from dclab import models
from dclab.pipeline.staged import StagedAccuracy, Superseded, weight_keys
from dclab.train import evaluate


@pytest.fixture()
def lenet5():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return models.build("lenet5").eval()


def _runs(model: torch.nn.Module) -> dict[str, int]:
    """How often each layer runs: forward hooks on the model's compressible layers."""
    counts = {}
    for name, module in models.compressible_layers(model).items():
        counts[name] = 0
        module.register_forward_hook(lambda *_, name=name: counts.__setitem__(name, counts[name] + 1))
    return counts


def _measure(staged: StagedAccuracy, model: torch.nn.Module) -> float:
    return staged.accuracy(weight_keys(model.state_dict(), staged.layers), lambda layers: None)


def _nudge(model: torch.nn.Module, layer: str, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    weight = models.compressible_layers(model)[layer].weight
    with torch.no_grad():
        weight.add_(0.5 * weight.std() * torch.randn(weight.shape, generator=g))


def _plain(model: torch.nn.Module) -> torch.nn.Module:
    """The same weights in a fresh model (no hooks): what a plain test pass measures."""
    fresh = models.build("lenet5")
    fresh.load_state_dict(model.state_dict())
    return fresh.eval()


MOVES = ["ip1", "ip1", "ip2", "ip1", "conv2", "conv2", "conv1"]
# how often conv1, conv2, ip1, ip2 run per move: "every" keeps every stage's output (1,000 digits: even
# conv1's fits), so each move resumes at its layer; "resume" keeps the input of the layer last moved
RUNS = {
    "every": [(0, 0, 1, 1), (0, 0, 1, 1), (0, 0, 0, 1), (0, 0, 1, 1), (0, 1, 1, 1), (0, 1, 1, 1), (1, 1, 1, 1)],
    "resume": [(1, 1, 1, 1), (0, 0, 1, 1), (0, 0, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1), (0, 1, 1, 1), (1, 1, 1, 1)],
}


@pytest.mark.parametrize("keep", ["every", "resume"])
def test_each_pass_equals_a_plain_test_pass_and_reruns_only_the_stages_after_a_change(lenet5, synthetic_digits,
                                                                                        keep):
    work = copy.deepcopy(lenet5)
    staged = StagedAccuracy(work, synthetic_digits, keep=keep)
    runs = _runs(work)
    assert _measure(staged, work) == evaluate(lenet5, synthetic_digits)
    for seed, (layer, expected) in enumerate(zip(MOVES, RUNS[keep])):
        before = dict(runs)
        _nudge(work, layer, seed)
        assert _measure(staged, work) == evaluate(_plain(work), synthetic_digits)  # bit-identical logits
        assert tuple(runs[n] - before[n] for n in staged.layers) == expected, (seed, layer)
    if keep == "resume":
        assert len(staged.activations) <= 1  # one stage's outputs at most, per reader


def test_a_changed_bias_reruns_its_stage(lenet5, synthetic_digits):
    work = copy.deepcopy(lenet5)
    staged = StagedAccuracy(work, synthetic_digits, keep="every")
    runs = _runs(work)
    _measure(staged, work)
    with torch.no_grad():
        work.conv2.bias.add_(1.0)
    before = runs["conv2"]
    assert _measure(staged, work) == evaluate(_plain(work), synthetic_digits)
    assert runs["conv2"] == before + 1


def test_weight_keys_change_with_any_tensor_of_the_layer_and_only_that_layer(lenet5):
    layers = list(models.compressible_layers(lenet5))
    keys = weight_keys(lenet5.state_dict(), layers)
    state = {k: v.clone() for k, v in lenet5.state_dict().items()}
    state["ip1.bias"][0] += 1.0
    changed = weight_keys(state, layers)
    assert [n for n in layers if changed[n] != keys[n]] == ["ip1"]
    state["extra.buffer"] = torch.ones(3)  # a tensor of no listed layer counts with the first layer
    assert [n for n in layers if weight_keys(state, layers)[n] != changed[n]] == ["conv1"]


def test_a_cancelled_pass_keeps_nothing(lenet5, synthetic_digits):
    work = copy.deepcopy(lenet5)
    staged = StagedAccuracy(work, synthetic_digits, keep="every")
    with pytest.raises(Superseded):
        staged.accuracy(weight_keys(work.state_dict(), staged.layers), lambda layers: None, lambda: True)
    assert staged.activations == {}
    with pytest.raises(ValueError, match="every"):
        StagedAccuracy(work, synthetic_digits, keep="all")
