import json

import pytest
import torch

from dclab import models, train, zoo


def test_training_is_deterministic_and_learns(mnist_test):
    data = mnist_test.subset(2000)
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = models.LeNet300()
        history = train.train(model, data, epochs=2, lr=0.05, max_shift=1.0, seed=7, progress=False)
        runs.append((model, history))
    (a, ha), (b, hb) = runs
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert ha[-1]["loss"] < ha[0]["loss"]
    assert train.evaluate(a, data) > 0.6  # far above chance (0.1) after two short epochs


def test_after_step_runs_after_every_step(mnist_test):
    calls = []
    train.train(models.LeNet300(), mnist_test.subset(500), epochs=1, batch_size=100,
                after_step=lambda m: calls.append(1), progress=False)
    assert len(calls) == 5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lenet300", "lenet5"])
def test_baselines_reach_the_papers_error(name, mnist_test):
    model = zoo.pretrained(name, progress=False)
    recipe = zoo.RECIPES[name]
    error = train.test_error(model, mnist_test)
    assert error <= recipe.target_error
    info = zoo.baseline_info(name)
    assert abs(info["test_error"] - error) < 1e-9  # the recorded figure is the one we measure now


def test_checkpoints_are_plain_state_dicts(lenet300):
    path = zoo.checkpoint_path("lenet300")
    state = torch.load(path, weights_only=True)  # refuses anything but tensors and containers
    assert set(state) == set(models.LeNet300().state_dict())
    assert json.loads(path.with_suffix(".json").read_text())["name"] == "lenet300"


def test_pretrained_models_are_fresh_copies(lenet300):
    a = zoo.pretrained("lenet300")
    a.ip1.weight.data.zero_()
    b = zoo.pretrained("lenet300")
    assert b.ip1.weight.abs().sum() > 0
