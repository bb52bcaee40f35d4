"""Progressive measuring for the live pages (notebooks 02, 03 and 06): the sizes at once, the accuracy after.

A slider move redraws what is cheap (figure, sizes) at once and hands the test pass to
``ProgressiveMeasure.start``. In a running kernel (Jupyter, Voila) the pass runs on a background
thread, one at a time; a newer move supersedes a running pass, which stops between two batches and
is dropped, so ten quick key presses end on the last setting's figure instead of a queue of stale
passes, and the last setting's full figure is never skipped. Outside a kernel (tests, scripts) the
pass runs at once in the caller's thread, so a test reads the full figure as soon as it sets a value.

``AccuracyPass`` is the pass of notebooks 02 and 03: a quick estimate on a fixed class-stratified
subset (1,000 MNIST digits, with its binomial standard error), then the accuracy on every test digit,
measured on a private copy of the model loaded with a snapshot of the weights shown, so a new move
can change the working model while the pass reads its own copy. The pass runs by stages
(``dclab.pipeline.staged``): a move of one slider keeps the outputs of the layers before the one it
changes, so moving LeNet-5's ip1 does not rerun its convolutions. The capstone (06) measures through
its ``CompressionSession`` instead, which keeps its own copies (``work``, ``estimator``).
"""
from __future__ import annotations

import copy
import sys
import threading
import time
import traceback
from html import escape
from typing import Callable

import torch
from torch import nn

from dclab.data import Digits
from dclab.lessons.store import single_thread
from dclab.pipeline.session import ESTIMATE_PER_CLASS, Estimate, Superseded
from dclab.pipeline.staged import StagedAccuracy, weight_keys
from dclab.train import evaluate
from dclab.viz import style

Job = Callable[[Callable[[], bool]], None]
"""A measuring job: called with ``stale()``, which says whether a newer move has replaced it."""

ESTIMATE_AFTER_S = 0.3
"""A page shows the quick estimate first when one full test pass takes longer than this (issue 13's
first-answer goal); a cheaper pass (LeNet-300-100: ~80 ms) answers in full at once."""


def live_kernel() -> bool:
    """Whether this runs inside a live IPython kernel (Jupyter, Voila), where widgets answer in the background."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


class ProgressiveMeasure:
    """One test pass at a time, the newest move wins (notebooks 02, 03, 06).

    ``move()`` marks a new setting (call it before changing what a running pass might show);
    ``start(job)`` runs ``job(stale)`` in the background when ``background`` (default: in a live
    kernel), else at once. A job that raises ``Superseded`` (its ``stale()`` said so between batches)
    is dropped and counted in ``superseded``; a job whose move was replaced before it began never runs;
    ``passes`` counts the jobs that began (a setting answered from a page's cache starts none).
    ``showing`` is the lock under which a page updates its figure and labels, from either thread.
    A background job that fails is counted in ``failed``, its traceback goes to the server's log
    (``sys.__stderr__``) and ``on_error(exc)`` runs, so the page says so instead of waiting forever;
    a job run at once raises as any call does.
    """

    def __init__(self, background: bool | None = None, name: str = "dclab-measure",
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.background = live_kernel() if background is None else bool(background)
        self.name = name
        self.on_error = on_error
        self.serial = 0
        self.superseded = 0
        self.passes = 0
        self.failed = 0
        self.worker: threading.Thread | None = None
        self.showing = threading.RLock()
        self._passes = threading.Lock()

    def move(self) -> int:
        """A new setting: every pass started before it is now stale. Returns its serial number."""
        self.serial += 1
        return self.serial

    def start(self, job: Job) -> None:
        """Measure the current setting with ``job(stale)``, in the background or at once."""
        serial = self.serial

        def stale() -> bool:
            return self.serial != serial

        def run() -> None:
            with self._passes:  # one test pass at a time; a superseded one stops at its next batch
                if stale():
                    return
                self.passes += 1
                try:
                    job(stale)
                except Superseded:
                    self.superseded += 1
                except Exception as exc:
                    if not self.background:
                        raise
                    self._failed(exc)

        if self.background:
            self.worker = threading.Thread(target=run, daemon=True, name=self.name)
            self.worker.start()
        else:
            run()

    def _failed(self, exc: Exception) -> None:
        self.failed += 1
        traceback.print_exception(exc, file=sys.__stderr__)
        if self.on_error is not None:
            with self.showing:
                self.on_error(exc)

    def show(self, stale: Callable[[], bool], update: Callable[[], None]) -> bool:
        """Run ``update()`` under ``showing`` unless a newer move came first; whether it ran."""
        with self.showing:
            if stale():
                return False
            update()
            return True

    def wait(self) -> None:
        """Until the pass of the last move is done (background measuring)."""
        worker = self.worker
        if worker is not None:
            worker.join()


def failure_html(exc: BaseException) -> str:
    """What a page shows when its accuracy pass failed (notebooks 02, 03, 06): the error, and what to do."""
    return (f'<span class="dclab-measure-failed" style="color:{style.ERROR}">The accuracy pass failed '
            f"({escape(type(exc).__name__)}: {escape(str(exc))}); move a control to measure again.</span>")


def estimate_note(estimate: Estimate, total_digits: int) -> str:
    """What a page writes beside a quick estimate (notebooks 02, 03, 06)."""
    return (f"estimate on {estimate.digits:,} digits, +/- {100 * estimate.stderr:.1f}; "
            f"the full {total_digits:,}-digit figure follows")


def accuracy_html(state: str, inner: str, serial: int) -> str:
    """An accuracy line marked by its ``data-state`` (notebooks 02, 03): ``"measured"``, ``"estimated"``
    (the quick estimate, dark grey) or ``"measuring"`` (the last figure, light grey, until the new one)."""
    colour = {"measured": "", "estimated": f";color:{style.DARK_GREY}", "measuring": f";color:{style.GREY}"}[state]
    return f'<div data-state="{state}" data-serial="{serial}" style="font-size:1.15em{colour}">{inner}</div>'


def accuracy_line(measured: str | None, estimate: Estimate | None, previous: str, lead: str, css: str,
                  total_digits: int, serial: int) -> str:
    """The accuracy line of notebooks 02 and 03: the ``measured`` inner HTML when there is one, else the quick
    ``estimate`` after ``lead`` (class ``{css}-estimate``, marked as an estimate), else the ``previous``
    measured line greyed until the new figure comes."""
    if measured is not None:
        return accuracy_html("measured", measured, serial)
    if estimate is not None:
        return accuracy_html("estimated", (
            f'{lead}<b class="{css}-estimate">~{100 * estimate.accuracy:.1f}%</b> '
            f'<span class="dclab-estimate-note">({estimate_note(estimate, total_digits)})</span>'), serial)
    return accuracy_html("measuring", previous.replace("accuracy-value", "accuracy-previous"), serial)


class AccuracyPass:
    """The test accuracy of a model's weights, measured on its own copy: estimate first, then full (notebooks 02, 03).

    ``estimate`` says whether a quick estimate on ``ESTIMATE_PER_CLASS`` digits of every class comes
    first; None: when one full pass (timed on the baseline, ``baseline``) takes over ``ESTIMATE_AFTER_S``.
    """

    def __init__(self, model: nn.Module, test_data: Digits, estimate: bool | None = None) -> None:
        self.model = copy.deepcopy(model).eval()
        self.test_data = test_data
        self.staged = StagedAccuracy(self.model, test_data, keep="resume")
        self.quick = test_data.stratified(ESTIMATE_PER_CLASS)
        start = time.perf_counter()
        self.baseline = self.accuracy()
        self.seconds = time.perf_counter() - start
        self.estimates = self.seconds > ESTIMATE_AFTER_S if estimate is None else bool(estimate)

    @staticmethod
    def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
        """A copy of ``model``'s weights and biases that later changes to ``model`` do not touch."""
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def load(self, weights: dict[str, torch.Tensor]) -> None:
        """Put a ``snapshot`` into the private copy."""
        self.model.load_state_dict(weights)

    def estimate(self) -> Estimate:
        """Accuracy of the loaded weights on the stratified subset, with its binomial standard error
        (``Estimate.of``, as the capstone's ``NetworkCache.estimate``)."""
        with single_thread():
            p = evaluate(self.model, self.quick)
        return Estimate.of(p, len(self.quick))

    def accuracy(self, cancelled: Callable[[], bool] | None = None) -> float:
        """Accuracy of the loaded weights on every test digit; ``Superseded`` when ``cancelled()`` says stop.

        The stages before the first layer whose weights changed since the last pass are not rerun."""
        keys = weight_keys(self.model.state_dict(), self.staged.layers)
        # one thread (torch's thread count is per thread, so this sets only the caller's): on this 2-core
        # machine a LeNet-5 pass over 10,000 digits takes 1.0 s on one thread, 0.6 s on two when the machine
        # is quiet, but two were slower than one as soon as other work shared it (2.9 s against 2.5 s before
        # the convolutions went channels-last; LeNet-300-100: 320 ms against 75 ms); one thread also leaves
        # the other core to the kernel, which redraws the next move while a background pass runs
        with single_thread():
            return self.staged.accuracy(keys, lambda layers: None, cancelled)  # the weights are loaded

    def measure(self, measuring: ProgressiveMeasure, model: nn.Module, show_estimate: Callable[[Estimate], None],
                show_accuracy: Callable[[float], None], keep: Callable[[float], None] | None = None,
                weights: Callable[[Callable[[], bool]], dict[str, torch.Tensor]] | None = None) -> None:
        """Measure ``model``'s weights as they are now (a snapshot), through ``measuring``.

        ``show_estimate(estimate)`` (when estimating) and then ``show_accuracy(accuracy)`` run under
        ``measuring.showing`` while no newer move has come; ``keep(accuracy)`` gets every full figure
        measured to its end, current or not (a page's cache of settings). ``weights(stale)``, when given,
        computes the weights to measure inside the pass instead (notebook 03's retrained centroids: the
        retraining runs where the test pass does, and a newer move stops it as it stops the pass)."""
        snapshot = self.snapshot(model) if weights is None else None

        def run(stale: Callable[[], bool]) -> None:
            self.load(snapshot if weights is None else weights(stale))
            if self.estimates:
                estimate = self.estimate()
                measuring.show(stale, lambda: show_estimate(estimate))
            accuracy = self.accuracy(stale)  # a stale pass stops at its next batch
            if keep is not None:
                keep(accuracy)
            measuring.show(stale, lambda: show_accuracy(accuracy))

        measuring.start(run)
