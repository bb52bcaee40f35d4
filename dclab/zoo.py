"""Trained baselines: from the cache when present, else trained once and cached.

Checkpoints are plain state dicts loaded with ``weights_only=True`` (no code runs on load).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import models
from .data import load_mnist
from .errors import DclabError
from .paths import cache_dir
from .train import test_error, train


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


RECIPES: dict[str, Recipe] = {
    "lenet300": Recipe(epochs=30, lr=0.05, target_error=0.0164),
    "lenet5": Recipe(epochs=15, lr=0.05, target_error=0.0080),
}


# A model whose training is not the plain loop (FireNet trains with BatchNorm, then folds it)
# registers its own trainer: ``trainer(recipe, progress=...) -> (trained model, info dict)``.
TRAINERS: dict[str, Callable[..., tuple[nn.Module, dict]]] = {}


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


def checkpoint_path(name: str) -> Path:
    """Where the trained weights of ``name`` are cached."""
    return cache_dir() / "models" / f"{name}-{_recipe(name).tag()}.pt"


def pretrained(name: str, *, progress: bool = True) -> nn.Module:
    """A trained baseline by name (``"lenet300"``, ``"lenet5"``...), in eval mode."""
    path = checkpoint_path(name)
    model = models.build(name)
    if not path.is_file():
        train_baseline(name, progress=progress)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def baseline_info(name: str) -> dict:
    """What training the cached baseline measured: test error, seconds, recipe."""
    path = checkpoint_path(name).with_suffix(".json")
    if not path.is_file():
        pretrained(name)
    return json.loads(path.read_text())


def train_baseline(name: str, *, progress: bool = True) -> dict:
    """Train ``name`` from scratch with its recipe, cache it, and return what was measured."""
    recipe = _recipe(name)
    torch.manual_seed(recipe.seed)  # the initial weights too: the same recipe gives the same model
    if name in TRAINERS:
        model, info = TRAINERS[name](recipe, progress=progress)
        _save(name, model, info)
        return info
    model = models.build(name)
    start = time.perf_counter()
    train(
        model,
        load_mnist("train"),
        recipe.epochs,
        recipe.lr,
        weight_decay=recipe.weight_decay,
        batch_size=recipe.batch_size,
        max_shift=recipe.max_shift,
        seed=recipe.seed,
        progress=progress,
        desc=f"training {models.TITLES.get(name, name)}",
    )
    info = {
        "name": name,
        "test_error": test_error(model, load_mnist("test")),
        "train_seconds": time.perf_counter() - start,
        "threads": torch.get_num_threads(),
        "recipe": asdict(recipe),
    }
    _save(name, model, info)
    return info


def _save(name: str, model: nn.Module, info: dict) -> None:
    path = checkpoint_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(path, lambda tmp: torch.save(model.state_dict(), tmp))
    _atomic_save(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(info, indent=2)))


def _recipe(name: str) -> Recipe:
    models._register_lazy_architectures()
    if name not in RECIPES:
        raise DclabError(f"no trained baseline called {name!r}; choose one of: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


def _atomic_save(path: Path, save: Callable[[str], None]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    save(tmp)
    os.replace(tmp, path)  # another process training the same baseline never sees half a file
