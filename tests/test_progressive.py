"""Progressive measuring (dclab.widgets.progressive): one pass at a time, the newest move wins, estimate then full."""
from __future__ import annotations

import math
import threading

import pytest
import torch

from dclab.pipeline.session import ESTIMATE_PER_CLASS, Superseded
from dclab.train import evaluate
from dclab.widgets.progressive import AccuracyPass, ProgressiveMeasure


def test_without_a_kernel_a_pass_runs_at_once_and_is_never_stale():
    measuring = ProgressiveMeasure()
    assert not measuring.background  # pytest runs no IPython kernel
    seen = []
    measuring.move()
    measuring.start(lambda stale: seen.append(stale()))
    assert seen == [False] and measuring.superseded == 0


def test_a_newer_move_supersedes_the_running_pass_and_only_the_last_is_measured():
    measuring = ProgressiveMeasure(background=True)
    entered, gate, shown, ran = threading.Event(), threading.Event(), [], []

    def job(value: int):
        def run(stale):
            ran.append(value)
            if value == 0:
                entered.set()
                gate.wait(timeout=60)
            if stale():  # what a pass asks between batches
                raise Superseded("newer move")
            measuring.show(stale, lambda: shown.append(value))
        return run

    measuring.move()
    measuring.start(job(0))
    assert entered.wait(timeout=60)
    for value in range(1, 10):  # nine quick moves while the first pass runs
        measuring.move()
        measuring.start(job(value))
    gate.set()
    for worker in [t for t in threading.enumerate() if t.name == "dclab-measure"]:
        worker.join(timeout=60)
    assert shown == [9]  # the last setting's figure, never skipped
    assert ran == [0, 9]  # the moves in between never started a pass
    assert measuring.superseded == 1 and measuring.serial == 10 and measuring.passes == 2


def test_show_skips_an_update_once_a_newer_move_came():
    measuring = ProgressiveMeasure()
    measuring.move()
    serial = measuring.serial
    shown = []
    assert measuring.show(lambda: measuring.serial != serial, lambda: shown.append(1))
    measuring.move()
    assert not measuring.show(lambda: measuring.serial != serial, lambda: shown.append(2))
    assert shown == [1]


def test_evaluate_stops_between_batches_when_cancelled(untrained_lenet300, synthetic_digits):
    full = evaluate(untrained_lenet300, synthetic_digits, batch_size=100)
    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 3

    assert evaluate(untrained_lenet300, synthetic_digits, batch_size=100, cancelled=lambda: False) == full
    assert evaluate(untrained_lenet300, synthetic_digits, batch_size=100, cancelled=cancelled) is None
    assert len(asked) == 4  # asked before each batch, stopped before the fourth


def test_the_estimate_is_the_stratified_subsets_accuracy_with_its_binomial_error(untrained_lenet300,
                                                                                  synthetic_digits):
    tester = AccuracyPass(untrained_lenet300, synthetic_digits, estimate=True)
    assert tester.baseline == evaluate(untrained_lenet300, synthetic_digits)
    quick = synthetic_digits.stratified(ESTIMATE_PER_CLASS)
    estimate = tester.estimate()
    p = evaluate(untrained_lenet300, quick)
    assert estimate.accuracy == p and estimate.digits == len(quick)
    assert estimate.stderr == pytest.approx(math.sqrt(p * (1 - p) / len(quick)))


def test_a_pass_measures_the_weights_as_they_were_when_it_was_started(untrained_lenet300, synthetic_digits):
    import copy

    model = copy.deepcopy(untrained_lenet300)
    tester = AccuracyPass(model, synthetic_digits, estimate=True)
    measuring = ProgressiveMeasure(background=True)
    expected = evaluate(model, synthetic_digits)
    seen, kept = [], []
    measuring.move()
    with measuring.showing:  # the pass's answers wait for the page's lock
        tester.measure(measuring, model, lambda e: seen.append(("estimated", e.accuracy)),
                       lambda a: seen.append(("measured", a)), kept.append)
        with torch.no_grad():  # the page's next change to its working model, while the pass runs
            model.ip1.weight.zero_()
    measuring.wait()
    assert [state for state, _ in seen] == ["estimated", "measured"]  # the estimate first, then the full figure
    assert seen[1][1] == kept[0] == expected  # of the weights shown when the move was made


def test_a_pass_after_a_move_of_one_fc_layer_does_not_rerun_the_convolutions(synthetic_digits):
    from dclab import models

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = models.build("lenet5").eval()
    tester = AccuracyPass(model, synthetic_digits, estimate=False)
    conv_runs = []
    tester.model.conv2.register_forward_hook(lambda *_: conv_runs.append(1))
    measuring = ProgressiveMeasure(background=False)
    for scale in (0.5, 0.25):  # the same slider (ip1) moved twice
        with torch.no_grad():
            model.ip1.weight.mul_(scale)
        measuring.move()
        seen = []
        runs_before = len(conv_runs)
        tester.measure(measuring, model, lambda e: None, seen.append)
        assert seen == [evaluate(model, synthetic_digits)]
    assert len(conv_runs) == runs_before  # the second pass started from the kept convolution outputs


def test_a_failed_background_pass_is_reported_not_left_waiting(capfd):
    """A pass that raises in the background would leave a page 'measuring' for ever: it is counted, its
    traceback goes to the server's log and the page's on_error shows it; at once, it raises."""
    from dclab.widgets.progressive import failure_html

    reported = []
    measuring = ProgressiveMeasure(background=True, on_error=reported.append)

    def broken(stale):
        raise ValueError("weights of the wrong shape")

    measuring.move()
    measuring.start(broken)
    measuring.wait()
    assert measuring.failed == 1 and [type(e) for e in reported] == [ValueError]
    assert "ValueError: weights of the wrong shape" in capfd.readouterr().err
    assert "weights of the wrong shape" in failure_html(reported[0]) and "measure again" in failure_html(reported[0])
    at_once = ProgressiveMeasure(background=False, on_error=reported.append)
    at_once.move()
    with pytest.raises(ValueError, match="wrong shape"):
        at_once.start(broken)
    assert len(reported) == 1
