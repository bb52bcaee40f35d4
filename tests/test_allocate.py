"""Per-layer allocation (dclab.pipeline.allocate): one measured move at a time, never past the error budget."""
from __future__ import annotations

import pytest

from dclab.errors import DclabError
from dclab.pipeline import CompressionConfig, compress_weights, load_model
from dclab.pipeline.allocate import DENSITY_STEP, MIN_BITS, allocate
from dclab.train import test_error

START = CompressionConfig(sparsity={"ip1": 0.5, "ip2": 0.5, "ip3": 0.2}, fc_bits=4, bias_bits=16)


def _changed(a, b) -> list[str]:
    return [n for n in a.sparsity if a.sparsity[n] != b.sparsity[n]] + [n for n in a.bits if a.bits[n] != b.bits[n]]


def test_each_step_is_one_measured_move_that_saves_bytes_within_the_budget(untrained_lenet300, synthetic_digits):
    budget = 0.95  # noise labels: an untrained network errs near 90%; the budget binds on some moves or none
    result = allocate(untrained_lenet300, synthetic_digits, START, budget, arch="lenet300", max_steps=6)
    assert result.steps[0].move == "start" and len(result.steps) > 1
    for before, after in zip(result.steps, result.steps[1:]):
        assert after.bytes < before.bytes and after.error <= budget
        assert len(_changed(before, after)) == 1  # one layer, one move
        name = _changed(before, after)[0]
        if after.bits[name] != before.bits[name]:
            assert after.bits[name] == before.bits[name] - 1 >= MIN_BITS
        else:
            assert 1 - after.sparsity[name] == pytest.approx((1 - before.sparsity[name]) * DENSITY_STEP, abs=1e-4)
    best = result.best
    net, data, _ = compress_weights(untrained_lenet300, result.config(START))  # the step is the engine's real file
    assert len(data) == best.bytes
    assert test_error(load_model(data), synthetic_digits) == pytest.approx(best.error)
    assert result.config(START).layer_bits == best.bits and result.config(START).bias_bits == 16


def test_a_budget_at_the_starting_error_allows_no_move_that_loses(untrained_lenet300, synthetic_digits):
    first = allocate(untrained_lenet300, synthetic_digits, START, 1.0, arch="lenet300", max_steps=0).steps[0]
    result = allocate(untrained_lenet300, synthetic_digits, START, first.error, arch="lenet300", max_steps=4)
    assert all(step.error <= first.error for step in result.steps)


def test_bad_budgets_say_what_to_do(untrained_lenet300, synthetic_digits):
    first = allocate(untrained_lenet300, synthetic_digits, START, 1.0, arch="lenet300", max_steps=0).steps[0]
    with pytest.raises(DclabError, match="above the budget"):
        allocate(untrained_lenet300, synthetic_digits, START, first.error - 0.01, arch="lenet300")
    with pytest.raises(DclabError, match="fraction of the test digits"):
        allocate(untrained_lenet300, synthetic_digits, START, 1.5, arch="lenet300")
