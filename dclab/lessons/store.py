"""The store behind the lessons' experiments: each result computed once, kept as JSON by its settings.

A sweep (pruning curves, layer sensitivity, accuracy vs bits...) is stored in
``cache_dir()/experiments``, keyed by its settings and by the fingerprint of the trained
baseline it started from (``dclab.cache``), so a second run (and CI) reads the file and a
retrained baseline invalidates it. Models retrained along the way are stored as state dicts.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

from dclab import zoo
from dclab.cache import atomic_write, fingerprint
from dclab.codec.sparse import decode_gaps, decode_pruned, encode_gaps, encode_pruned  # noqa: F401  (re-exported)
from dclab.data import Digits, load_mnist
from dclab.paths import cache_dir

CACHE_VERSION = 2


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (notebooks 02-03).

    These networks are too small to gain from more threads, and on a busy or
    quota-limited CPU (a shared laptop, Binder) torch's spinning worker threads
    can make an epoch 30x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def baseline_fingerprint(arch: str) -> str:
    """The baseline's fingerprint (``dclab.cache``), so retraining it invalidates results."""
    zoo.pretrained(arch)  # trains and caches it when missing
    return fingerprint(zoo.checkpoint_path(arch))


def _cache_path(kind: str, settings: Mapping, suffix: str) -> Path:
    key = json.dumps({"version": CACHE_VERSION, **settings}, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / "experiments" / f"{kind}-{digest}{suffix}"


def cached_result(kind: str, settings: Mapping, compute: Callable[[], dict], refresh: bool = False) -> dict:
    """``compute()``'s JSON result, read from ``cache_dir()/experiments`` when these settings ran before."""
    path = _cache_path(kind, settings, ".json")
    if path.is_file() and not refresh:
        try:
            stored = json.loads(path.read_text())
            if stored.get("settings") == json.loads(json.dumps(settings, default=str)):
                return stored["result"]
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed
    start = time.perf_counter()
    with single_thread():
        result = compute()
    result = json.loads(json.dumps(result))  # what a later run will read back
    record = {"settings": settings, "seconds": time.perf_counter() - start, "result": result}
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(record, default=str)))
    return result


def cached_state(kind: str, settings: Mapping, model: nn.Module, compute: Callable[[nn.Module], None]) -> nn.Module:
    """Load ``model``'s weights from the cache, else run ``compute(model)`` and cache them."""
    path = _cache_path(kind, settings, ".pt")
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()
        except Exception:  # noqa: BLE001 - a damaged cache file is recomputed
            pass
    with single_thread():
        compute(model)
    atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))
    return model.eval()


def test_set() -> Digits:
    """All 10,000 MNIST test digits (every accuracy the lessons show)."""
    return load_mnist("test")


def train_set() -> Digits:
    """The 60,000 MNIST training digits (retraining)."""
    return load_mnist("train")
