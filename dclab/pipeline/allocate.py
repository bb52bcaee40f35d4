"""Per-layer sparsity and bit allocation under an error budget, by measured sensitivity (issue 15, notebook 07).

The papers set one sparsity per layer from a sensitivity scan and one bit width per layer kind. Bytes are not
spent evenly, though: LeNet-300-100's ip1 holds 88% of the weights and ip3 0.4%, so pruning ip3 saves almost
nothing while it may cost accuracy. ``allocate`` searches greedily: from a starting setting, each step tries,
for every layer, one step more pruning (its density times ``DENSITY_STEP``) and one bit fewer, each measured by
the one engine (``compress_weights``: the bytes of the real file, the error of exactly its weights), and takes
the move that saves the most bytes per test digit it loses (a move that loses none ranks as losing one). It
stops when every move would pass the error budget, or after ``max_steps``. Nothing is retrained: the search
runs on a network already retrained after pruning (the ladder's rung), and the setting it ends on is what the
full pipeline then retrains at (``Allocation.config``; benchmarks/allocation.py writes both files).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from torch import nn

from dclab.algorithms.quantize import check_bits
from dclab.data import Digits
from dclab.errors import DclabError
from dclab.pipeline.compress import WeightCache, compress_weights, layer_sparsities
from dclab.pipeline.config import CompressionConfig
from dclab.train import test_error

DENSITY_STEP = 0.85
"""One pruning move keeps this fraction of a layer's surviving weights (15% of them pruned)."""

MIN_BITS = 2
"""The fewest bits per index a move may leave a layer (1 bit leaves one shared value beside the pruned zero)."""

MAX_SPARSITY = 0.995


@dataclass(frozen=True)
class Step:
    """One setting of the search: per-layer sparsities and bits, the file's bytes, the error of its weights."""

    sparsity: dict[str, float]
    bits: dict[str, int]
    bytes: int
    error: float
    move: str


@dataclass
class Allocation:
    """The settings the greedy search went through (``steps[0]``: the start; ``steps[-1]``: where it stopped)."""

    steps: list[Step]
    max_error: float
    evaluations: int

    @property
    def best(self) -> Step:
        return self.steps[-1]

    def config(self, base: CompressionConfig) -> CompressionConfig:
        """``base`` with the final per-layer sparsities and bits (what the full pipeline retrains at)."""
        return dataclasses.replace(base, sparsity=dict(self.best.sparsity), quality=None,
                                   layer_bits=dict(self.best.bits))


def _moves(step: Step) -> list[tuple[str, dict[str, float], dict[str, int]]]:
    moves = []
    for name, s in step.sparsity.items():
        pruned = round(1 - (1 - s) * DENSITY_STEP, 4)
        if pruned <= MAX_SPARSITY:
            moves.append((f"prune {name} to {pruned:.1%}", {**step.sparsity, name: pruned}, step.bits))
    for name, b in step.bits.items():
        if b > MIN_BITS:
            moves.append((f"{name} to {b - 1} bits", step.sparsity, {**step.bits, name: b - 1}))
    return moves


def allocate(model: nn.Module, data: Digits, start: CompressionConfig, max_error: float, *,
             arch: str | None = None, max_steps: int = 80,
             on_step: Callable[[Step], None] | None = None) -> Allocation:
    """Greedy per-layer allocation from ``start`` while the error on ``data`` stays at most ``max_error``.

    ``model`` is not changed. ``start`` gives the first sparsities (per layer, or as ``compress_weights`` reads
    them) and bits (``layer_bits``, else by kind), and every other setting of the file (gap bits, init, bias
    bits). ``on_step(step)`` sees each accepted step. Raises ``DclabError`` when ``start`` itself errs above
    ``max_error``."""
    if not 0.0 <= max_error <= 1.0:
        raise DclabError(f"max_error is a fraction of the test digits (0 to 1), not {max_error!r}")
    cache = WeightCache(model, arch)
    sparsity = layer_sparsities(model, cache.arch, start)
    bits = {n: start.bits_for(n, cache.kinds[n]) for n in cache.weights}
    for name, b in bits.items():
        check_bits(b, f" of layer {name!r}")
    base = dataclasses.replace(start, quality=None)

    def measure(move: str, sp: dict[str, float], bt: dict[str, int]) -> Step:
        config = dataclasses.replace(base, sparsity=dict(sp), layer_bits=dict(bt))
        net, data_bytes, _ = compress_weights(model, config, cache)
        return Step(dict(sp), dict(bt), len(data_bytes), test_error(net, data), move)

    current = measure("start", sparsity, bits)
    if current.error > max_error:
        raise DclabError(f"the starting setting errs at {current.error:.2%}, above the budget of {max_error:.2%}: "
                         "start from a less compressed setting or allow more error")
    steps, evaluations = [current], 1
    one_digit = 1 / len(data)
    for _ in range(max_steps):
        best, best_score = None, 0.0
        for move, sp, bt in _moves(current):
            candidate = measure(move, sp, bt)
            evaluations += 1
            saved = current.bytes - candidate.bytes
            if saved <= 0 or candidate.error > max_error:
                continue
            score = saved / max(candidate.error - current.error, one_digit)
            if score > best_score:
                best, best_score = candidate, score
        if best is None:
            break
        current = best
        steps.append(current)
        if on_step is not None:
            on_step(current)
    return Allocation(steps, max_error, evaluations)

