"""The retrained ladder behind the live pages: a network pruned step by step, retrained at every rung (notebook 06).

Deep Compression's accuracy comes from retraining the survivors after pruning (Han et al. 2015,
iterative pruning). Retraining takes minutes, so a live page cannot do it for every slider position;
instead ``prepare`` (or the first use, with a progress bar) climbs a ladder once and caches it: each
rung prunes the previous rung's weights further and retrains the survivors for an epoch. A page then
answers a setting on the *nearest retrained rung*: the most pruned rung that prunes no layer more than
the setting does, pruned the rest of the way by magnitude (without retraining), shared and encoded by
the one engine (``compress_weights``). Rung 0 is the dense baseline: "without retraining".

A rung's per-layer sparsities follow the papers' profile (``dclab.paper.SPARSITY``), scaled so that the
largest layer is pruned to the rung's ``level``: at ``level`` 0.92 a LeNet is pruned exactly at the
papers' per-layer rates; further up, every layer keeps density in the papers' proportions.
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from dclab import models, paper
from dclab.algorithms import prune
from dclab.cache import atomic_write, fingerprint
from dclab.data import Digits
from dclab.errors import DclabError
from dclab.paths import cache_dir
from dclab.pipeline.compress import retrain_pruned
from dclab.pipeline.config import BASELINE_LR
from dclab.progress import progress_bar

LEVELS: dict[str, tuple[float, ...]] = {
    "lenet300": (0.5, 0.7, 0.8, 0.9, 0.92, 0.95, 0.97, 0.98),
    "lenet5": (0.7, 0.85, 0.92, 0.95, 0.97),
}
"""The sparsity of each rung's largest layer, bottom to top (rung 0, the baseline, is not listed)."""

RETRAIN: dict[str, dict] = {
    # measured on LeNet-300-100 (seed 0, 99.21%; each rung starts from the one below), the rung at the papers'
    # rates (92%): one epoch at 1/10 of the rate 98.51%, two at 2/5 98.84%, three at 1/5 98.94-98.96%; the six
    # rungs up to 95% climbed with 3, 6 or 10 epochs at 1/5, 2/5 or 3/5 of the rate: 98.94-99.07% at 92%, six
    # epochs at 2/5 99.07% (-0.14 points) for 6 s a rung (benchmarks/ladder.py, RESULTS.md `ladder_lenet300`)
    "lenet300": {"epochs": 6, "lr": BASELINE_LR / 2.5, "batch_size": 128, "max_shift": 2.0},
    "lenet5": {"epochs": 1, "lr": BASELINE_LR / 5, "batch_size": 128, "max_shift": 2.0},
}
"""How each network's rungs retrain (epochs per rung, learning rate, batch, shift augmentation)."""

VERSION = 1


@dataclass(frozen=True)
class Rung:
    """One retrained network of the ladder: its per-layer sparsities, its weights and its test accuracy."""

    index: int
    level: float
    sparsities: dict[str, float]
    state: dict[str, torch.Tensor]
    accuracy: float | None
    seconds: float

    def model(self, arch: str) -> nn.Module:
        """A fresh model with this rung's weights."""
        net = models.build(arch)
        net.load_state_dict(self.state)
        return net.eval()

    def pruned_counts(self) -> dict[str, int]:
        """Weights that are exactly zero in each compressible layer."""
        return {name: int((self.state[f"{name}.weight"] == 0).sum()) for name in self.sparsities}

    def describe(self) -> str:
        """``"ip1 92%, ip2 91%, ip3 74% pruned"`` (or ``"the dense baseline"``)."""
        if self.index == 0:
            return "the dense baseline (not retrained)"
        return ", ".join(f"{n} {s:.0%}" for n, s in self.sparsities.items()) + " pruned, retrained"


def rung_sparsities(arch: str, level: float) -> dict[str, float]:
    """Per-layer sparsities of a rung: the papers' density proportions, the largest layer at ``level``."""
    if arch not in paper.SPARSITY:
        raise DclabError(f"no retrained ladder for {arch!r}; ladders exist for {', '.join(LEVELS)}")
    if not 0.0 <= level < 1.0:
        raise DclabError(f"a rung's level is a sparsity in [0, 1), not {level!r}")
    rates = paper.SPARSITY[arch]
    largest = max(rates, key=lambda n: models.compressible_layers(models.build(arch))[n].weight.numel())
    ref = 1.0 - rates[largest]
    return {n: round(1.0 - min(1.0, (1.0 - level) * (1.0 - s) / ref), 4) for n, s in rates.items()}


class Ladder:
    """The rungs of one network, bottom (the baseline) to top; ``rung_for`` picks the one a setting uses."""

    def __init__(self, arch: str, rungs: list[Rung]) -> None:
        self.arch, self.rungs = arch, rungs
        self._counts = [r.pruned_counts() for r in rungs]

    def rung_for(self, sparsities: Mapping[str, float]) -> Rung:
        """The most pruned rung that prunes no layer more than ``sparsities`` do (rung 0 always qualifies)."""
        sizes = {n: self.rungs[0].state[f"{n}.weight"].numel() for n in self.rungs[0].sparsities}
        best = self.rungs[0]
        for rung, counts in zip(self.rungs, self._counts):
            if all(counts[n] <= round(float(sparsities.get(n, 0.0)) * sizes[n]) for n in counts):
                if sum(counts.values()) >= sum(self._counts[best.index].values()):
                    best = rung
        return best

    def grown_from(self, model: nn.Module) -> bool:
        """Whether ``model`` holds exactly the baseline this ladder was climbed from (rung 0)."""
        state = model.state_dict()
        base = self.rungs[0].state
        return state.keys() == base.keys() and all(torch.equal(state[k], base[k]) for k in base)

    def __repr__(self) -> str:
        accs = ", ".join(f"{r.level:.0%}: {r.accuracy:.2%}" for r in self.rungs[1:] if r.accuracy is not None)
        return f"Ladder({self.arch}: {len(self.rungs) - 1} retrained rungs; {accs})"


def ladder_dir(arch: str) -> Path:
    """Where ``arch``'s ladder is cached: named by the baseline's fingerprint and the ladder's recipe."""
    from dclab.zoo import checkpoint_path

    key = json.dumps({"version": VERSION, "levels": LEVELS.get(arch), "retrain": RETRAIN.get(arch),
                      "paper": paper.SPARSITY.get(arch)}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    baseline = fingerprint(checkpoint_path(arch)).replace(":", "-")
    return cache_dir() / "ladders" / f"{arch}-{baseline}-{digest}"


def _load(path: Path) -> tuple[dict, dict[str, torch.Tensor]] | None:
    try:
        record = json.loads(path.with_suffix(".json").read_text())
        return record, torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, EOFError):
        return None  # missing or damaged: climbed again


def climb_rung(net: nn.Module, arch: str, index: int, level: float, recipe: Mapping, train_data: Digits) -> dict[str, float]:
    """One step up the ladder, in place: prune ``net`` (the rung below) by magnitude to ``rung_sparsities(arch,
    level)`` and retrain the survivors as ``recipe`` says (a ``RETRAIN`` entry; seed ``index``). Returns the
    sparsities; ``net`` is left in eval mode."""
    sparsities = rung_sparsities(arch, level)
    masks = prune.layer_masks(prune.prunable_weights(net), sparsity=sparsities)
    retrain_pruned(net, masks, train_data, recipe["epochs"], recipe["lr"], batch_size=recipe["batch_size"],
                   max_shift=recipe["max_shift"], seed=index, progress=False, desc=f"rung {index}")
    net.eval()
    return sparsities


def retrained_ladder(arch: str, *, train_data: Digits | None = None, test_data: Digits | None = None,
                     progress: bool = True) -> Ladder:
    """``arch``'s ladder from the cache, climbing (and caching) the rungs that are missing (notebook 06).

    Each rung starts from the one below, prunes it to ``rung_sparsities`` by magnitude and retrains the
    survivors (``retrain_pruned``: pruned weights stay 0) as ``RETRAIN`` says; its test accuracy is
    measured on ``test_data``. The baseline comes from ``dclab.zoo.pretrained``.
    """
    from dclab.data import load_mnist
    from dclab.train import evaluate
    from dclab.zoo import pretrained

    if arch not in LEVELS:
        raise DclabError(f"no retrained ladder for {arch!r}; ladders exist for {', '.join(LEVELS)}")
    base = pretrained(arch, progress=progress)
    folder = ladder_dir(arch)
    empty = {n: 0.0 for n in models.compressible_layers(base)}
    rungs = [Rung(0, 0.0, empty, copy.deepcopy(base.state_dict()), None, 0.0)]
    net = copy.deepcopy(base)
    bar = None
    for index, level in enumerate(LEVELS[arch], start=1):
        path = folder / f"rung-{index}.pt"
        cached = _load(path)
        if cached is None:
            if bar is None:
                bar = progress_bar(len(LEVELS[arch]) - index + 1, f"retrained ladder for {arch}", enabled=progress)
                train_data = train_data if train_data is not None else load_mnist("train")
                test_data = test_data if test_data is not None else load_mnist("test")
            start = time.perf_counter()
            sparsities = climb_rung(net, arch, index, level, RETRAIN[arch], train_data)
            record = {"level": level, "sparsities": sparsities, "accuracy": evaluate(net, test_data),
                      "seconds": round(time.perf_counter() - start, 2)}
            atomic_write(path, lambda tmp: torch.save(net.state_dict(), tmp))
            atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(record)))
            bar.update()
        else:
            record, state = cached
            net.load_state_dict(state)
        rungs.append(Rung(index, level, record["sparsities"], copy.deepcopy(net.state_dict()), record["accuracy"],
                          record["seconds"]))
    if bar is not None:
        bar.close()
    return Ladder(arch, rungs)


def ladder_ready(arch: str) -> bool:
    """Whether ``arch``'s baseline and every rung of its ladder are cached (nothing to train)."""
    from dclab.zoo import checkpoint_path

    if arch not in LEVELS or not checkpoint_path(arch).is_file():
        return False
    folder = ladder_dir(arch)
    return all((folder / f"rung-{i}.pt").is_file() for i in range(1, len(LEVELS[arch]) + 1))


def ladder_of(model: nn.Module, arch: str) -> Ladder | None:
    """The cached ladder climbed from this very ``model`` (the zoo's baseline of ``arch``), or None when
    ``model`` is another network or the ladder is not cached yet (nothing is trained here)."""
    if arch not in LEVELS or not ladder_ready(arch):
        return None
    ladder = retrained_ladder(arch, progress=False)
    return ladder if ladder.grown_from(model) else None


def ladder_for(model: nn.Module, asked: bool | None = None, arch: str | None = None) -> Ladder | None:
    """The retrained ladder behind a live page showing ``model`` (notebooks 02, 04, 06).

    ``asked=None``: the cached ladder if ``model`` is the zoo's baseline it was climbed from, else None;
    ``True``: that ladder, climbed (with a progress bar) if not cached, refusing any other network with
    a clear error; ``False``: None."""
    from dclab.pipeline.compress import arch_of

    if asked is False:
        return None
    if arch is None:
        try:
            arch = arch_of(model)
        except DclabError:
            arch = None
    if not asked:
        return ladder_of(model, arch) if arch is not None else None
    if arch not in LEVELS:
        raise DclabError(f"no retrained ladder for this network; ladders exist for {', '.join(LEVELS)} "
                         "(answer it with retrained=False)")
    ladder = retrained_ladder(arch)
    if not ladder.grown_from(model):
        raise DclabError(f"this {arch} is not the zoo's baseline that the retrained ladder was climbed from "
                         "(answer it with retrained=False)")
    return ladder
