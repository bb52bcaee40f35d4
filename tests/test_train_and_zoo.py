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


def test_seed_variable_picks_another_baseline_and_bad_values_say_what_to_do(monkeypatch):
    from dclab.errors import DclabError

    monkeypatch.delenv(zoo.SEED_VARIABLE, raising=False)
    default = zoo.checkpoint_path("lenet300")
    assert zoo.recipe("lenet300") == zoo.RECIPES["lenet300"]
    monkeypatch.setenv(zoo.SEED_VARIABLE, "3")
    assert zoo.recipe("lenet300").seed == 3 and zoo.recipe("lenet5").seed == 3
    assert zoo.checkpoint_path("lenet300") != default and zoo.checkpoint_path("lenet300").name.endswith("-s3.pt")
    assert zoo.recipe("lenet300").target_error == zoo.RECIPES["lenet300"].target_error
    for bad in ("one", "-1", "1.5"):
        monkeypatch.setenv(zoo.SEED_VARIABLE, bad)
        with pytest.raises(DclabError, match="DCLAB_SEED must be a whole number"):
            zoo.checkpoint_path("lenet300")


def test_training_summary_is_one_line_with_what_was_measured():
    info = {"test_error": 0.0047, "train_seconds": 299.6, "threads": 2,
            "recipe": {"epochs": 15, "target_error": 0.008, "seed": 0}}
    assert zoo.training_summary("lenet5", info) == (
        "trained LeNet-5: 15 epochs in 300 s on 2 thread(s), test error 0.47% (target <= 0.80%, seed 0)")
    missed = zoo.training_summary("lenet5", {**info, "test_error": 0.009})
    assert "MISSED THE TARGET" in missed and "\n" not in missed


def test_progress_in_a_log_is_a_line_now_and_then(capsys):
    from dclab import progress

    bar = progress.progress_bar(10_000, "steps")  # stderr is captured: not a terminal
    assert bar.mininterval == progress.LOG_INTERVAL_S and bar.leave
    for _ in range(10_000):
        bar.update(1)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert 1 <= len(lines) <= 3 and "10000/10000" in lines[-1]  # the first and last states: not one per step
    assert all("\r" not in line for line in lines)
    quiet = progress.progress_bar(10, "steps", enabled=False)
    quiet.update(10)
    quiet.close()
    assert capsys.readouterr().err == ""


def test_parameter_groups_train_each_from_its_own_rate(synthetic_digits):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    weight, bias = model[1].weight, model[1].bias
    w0, b0 = weight.detach().clone(), bias.detach().clone()
    train.train(model, synthetic_digits.subset(64), 1, 0.05, progress=False, weight_decay=0.0,
                parameters=[{"params": [weight]}, {"params": [bias], "lr": 0.0}])
    assert not torch.equal(weight, w0)  # the default rate
    assert torch.equal(bias, b0)  # its own rate, 0, all along the cosine schedule
