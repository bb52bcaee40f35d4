"""Trained baselines: from the cache when present, else trained once and cached.

Checkpoints are plain state dicts loaded with ``weights_only=True`` (no code runs on load).
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from dclab import models
from dclab.cache import atomic_write
from dclab.data import load_mnist
from dclab.errors import DclabError
from dclab.paths import cache_dir
from dclab.train import test_error, train


@dataclass(frozen=True)
class Recipe:
    """How a baseline is trained, and the papers' test error it must reach."""

    epochs: int
    lr: float
    max_shift: float = 2.0
    weight_decay: float = 5e-4
    batch_size: int = 128
    seed: int = 0
    target_error: float = 1.0
    version: int = 1

    def tag(self) -> str:
        return f"v{self.version}-e{self.epochs}-s{self.seed}"


FIRENET_RECIPE = Recipe(epochs=4, lr=0.1, max_shift=0.0, batch_size=64, target_error=0.01, version=2)
"""How FireNet is trained (with BatchNorm, then folded): 4 epochs of SGD, no augmentation (notebook 05)."""
FIRENET_TRAINER = "dclab.zoo.train_firenet: FireNet(batchnorm=True), BatchNorm folded"  # as recorded in cached baselines

RECIPES: dict[str, Recipe] = {
    "lenet300": Recipe(epochs=30, lr=0.05, target_error=0.0164),
    "lenet5": Recipe(epochs=15, lr=0.05, target_error=0.0080),
    "firenet": FIRENET_RECIPE,
}


def train_firenet(recipe: Recipe = FIRENET_RECIPE, *, progress: bool = True) -> tuple[nn.Module, dict]:
    """Train FireNet with BatchNorm on MNIST, fold it, measure it: ``(model, info)`` (notebook 05, section 4)."""
    model = models.FireNet(batchnorm=True)
    seconds = _fit(model, recipe, progress, "training FireNet")
    folded = models.fold_batchnorm(model.eval())
    info = {**_measured("firenet", folded, recipe, seconds), "trained_by": FIRENET_TRAINER}
    return folded, info


# A model whose training is not the plain loop (FireNet trains with BatchNorm, then folds it)
# has its own trainer: ``trainer(recipe, progress=...) -> (trained model, info dict)``.
TRAINERS: dict[str, Callable[..., tuple[nn.Module, dict]]] = {"firenet": train_firenet}


def register(
    name: str,
    builder: Callable[[], nn.Module],
    recipe: Recipe,
    title: str | None = None,
    trainer: Callable[..., tuple[nn.Module, dict]] | None = None,
) -> None:
    """Add a trainable baseline (e.g. the Fire-module network of notebook 05)."""
    models.register_architecture(name, builder, title)
    RECIPES[name] = recipe
    if trainer is not None:
        TRAINERS[name] = trainer


SEED_VARIABLE = "DCLAB_SEED"
"""Set it (``DCLAB_SEED=1 make test``) to train and use baselines from another seed; unset means each recipe's own."""


def checkpoint_path(arch: str) -> Path:
    """Where the trained weights of ``arch`` are cached (the seed is part of the name)."""
    return cache_dir() / "models" / f"{arch}-{recipe(arch).tag()}.pt"


def pretrained(arch: str, *, progress: bool = True) -> nn.Module:
    """A trained baseline by name (``"lenet300"``, ``"lenet5"``...), in eval mode."""
    path = checkpoint_path(arch)
    model = models.build(arch)
    if not path.is_file():
        train_baseline(arch, progress=progress)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def baseline_info(arch: str) -> dict:
    """What training the cached baseline measured: test error, seconds, recipe."""
    path = checkpoint_path(arch).with_suffix(".json")
    if not path.is_file():
        pretrained(arch)
    return json.loads(path.read_text())


def train_baseline(arch: str, *, progress: bool = True) -> dict:
    """Train ``arch`` from scratch with its recipe, cache it, and return what was measured.

    Prints one summary line (model, epochs, seconds, test error) to stderr when done.
    """
    chosen = recipe(arch)
    torch.manual_seed(chosen.seed)  # the initial weights too: the same recipe gives the same model
    if arch in TRAINERS:
        model, info = TRAINERS[arch](chosen, progress=progress)
    else:
        model, info = _train_plain(arch, chosen, progress)
    _save(arch, model, info)
    print(training_summary(arch, info), file=sys.stderr, flush=True)
    return info


def training_summary(arch: str, info: dict) -> str:
    """``trained LeNet-5: 15 epochs in 300 s, test error 0.47% (target <= 0.80%, seed 0)``."""
    chosen = info["recipe"]
    met = "" if info["test_error"] <= chosen["target_error"] else " MISSED THE TARGET"
    return (
        f"trained {models.TITLES.get(arch, arch)}: {chosen['epochs']} epochs in {info['train_seconds']:.0f} s "
        f"on {info['threads']} thread(s), test error {100 * info['test_error']:.2f}% "
        f"(target <= {100 * chosen['target_error']:.2f}%{met}, seed {chosen['seed']})"
    )


def _train_plain(arch: str, chosen: Recipe, progress: bool) -> tuple[nn.Module, dict]:
    model = models.build(arch)
    seconds = _fit(model, chosen, progress, f"training {models.TITLES.get(arch, arch)}")
    return model, _measured(arch, model, chosen, seconds)


def _fit(model: nn.Module, chosen: Recipe, progress: bool, desc: str) -> float:
    """Train ``model`` on MNIST's training digits by the recipe; the seconds it took."""
    start = time.perf_counter()
    train(
        model, load_mnist("train"), chosen.epochs, chosen.lr,
        weight_decay=chosen.weight_decay, batch_size=chosen.batch_size, max_shift=chosen.max_shift,
        seed=chosen.seed, progress=progress, desc=desc,
    )
    return time.perf_counter() - start


def _measured(arch: str, model: nn.Module, chosen: Recipe, seconds: float) -> dict:
    """What a baseline's .json records: its test error, training time, threads and recipe."""
    return {
        "name": arch,
        "test_error": test_error(model, load_mnist("test")),
        "train_seconds": seconds,
        "threads": torch.get_num_threads(),
        "recipe": asdict(chosen),
    }


def _save(arch: str, model: nn.Module, info: dict) -> None:
    path = checkpoint_path(arch)
    # atomic: another process training the same baseline never sees half a file
    atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))
    atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(info, indent=2)))


def recipe(arch: str) -> Recipe:
    """The recipe ``arch`` is trained with, its seed replaced by ``$DCLAB_SEED`` when that is set."""
    if arch not in RECIPES:
        raise DclabError(f"no trained baseline called {arch!r}; choose one of: {', '.join(sorted(RECIPES))}")
    seed = os.environ.get(SEED_VARIABLE, "").strip()
    if not seed:
        return RECIPES[arch]
    if not seed.isdigit():
        raise DclabError(f"{SEED_VARIABLE} must be a whole number such as 1 (or unset for the recipes' own seeds), "
                         f"not {seed!r}")
    return replace(RECIPES[arch], seed=int(seed))
