"""The store behind the lessons' experiments: each result computed once, kept as JSON by its settings.

A sweep (pruning curves, layer sensitivity, accuracy vs bits...) is stored in
``cache_dir()/experiments``, keyed by its settings and by the fingerprint of the trained
baseline it started from (``dclab.cache``), so a second run (and CI) reads the file and a
retrained baseline invalidates it. Models retrained along the way are stored as state dicts.

Measurements of the machine itself (notebook 01's roofline and sparse timings) are not results of
a baseline: ``cached_measurement`` keeps each in ``cache_dir()/measurements``, keyed by the
machine it was measured on (``machine()``), with when it was measured and the load average at the
time, so a page can show a measurement made earlier and say so (``Measurement.label``), and another
machine measures again.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import platform
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

import torch
from torch import nn

from dclab import hardware, numformats, zoo
from dclab.cache import atomic_write, fingerprint
from dclab.codec.sparse import decode_gaps, decode_pruned, encode_gaps, encode_pruned  # noqa: F401  (re-exported)
from dclab.data import Digits, LazyDigits, load_mnist
from dclab.paths import cache_dir
from dclab.progress import progress_bar
from dclab.train import evaluate

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


def stored_result(kind: str, settings: Mapping) -> dict | None:
    """The JSON result ``cached_result`` keeps for these settings, or None when there is none (nothing computed):
    a page that shows a benchmark's result without running it (notebook 07)."""
    path = _cache_path(kind, settings, ".json")
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # none yet, or a damaged file (recomputed by cached_result)
    return stored["result"] if stored.get("settings") == json.loads(json.dumps(settings, default=str)) else None


def cached_result(kind: str, settings: Mapping, compute: Callable[[], dict], refresh: bool = False) -> dict:
    """``compute()``'s JSON result, read from ``cache_dir()/experiments`` when these settings ran before."""
    path = _cache_path(kind, settings, ".json")
    stored = None if refresh else stored_result(kind, settings)
    if stored is not None:
        return stored
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


def train_set() -> LazyDigits:
    """The 60,000 MNIST training digits (retraining), read on first use: a result found in the cache
    never loads them, and ``train_set().subset(n)`` reads only the first ``n``."""
    return load_mnist("train", lazy=True)



# ---------------------------------------------------------------- measurements of this machine (notebook 01)

SESSION = uuid.uuid4().hex
"""This process: a measurement it made is "from this session"; one read from the cache is not."""

MEASUREMENTS_VERSION = 1


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What a measurement of speed depends on: host name, processor, CPU count, torch's version (notebook 01)."""
    return {"host": platform.node(), "processor": _processor(), "cpus": os.cpu_count(), "torch": torch.__version__}


class Measurement(NamedTuple):
    """A measurement of this machine with where and when it was made (notebook 01).

    ``result`` is what ``measure()`` returned (JSON); ``this_session`` is False when it was read from
    the cache, made by an earlier process on the same machine.
    """

    result: Any
    machine: dict
    measured_at: str  # ISO 8601, local time with its UTC offset
    load: float  # 1-minute load average when the measurement started
    seconds: float  # how long it took
    this_session: bool

    def label(self) -> str:
        """Where and when it was measured, in words: shown beside every cached measurement."""
        when = datetime.datetime.fromisoformat(self.measured_at)
        where = f"{self.machine['host']} ({self.machine['processor']}, {self.machine['cpus']} CPUs)"
        load = f"load average {self.load:.1f} on {self.machine['cpus']} CPUs"
        if self.this_session:
            return f"measured on this machine, {where}, in this session at {when:%H:%M:%S} ({load})"
        return (f"measured on this machine, {where}, on {when:%Y-%m-%d} at {when:%H:%M} in an earlier session "
                f"({load}), read from dclab's cache")


def _measurement_path(kind: str, settings: Mapping) -> Path:
    key = json.dumps({"version": MEASUREMENTS_VERSION, "machine": machine(), **settings}, sort_keys=True, default=str)
    return cache_dir() / "measurements" / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def stored_measurement(kind: str, settings: Mapping) -> Measurement | None:
    """The measurement ``kind`` with these settings made earlier on this machine, or None (notebook 01).

    A record made on another machine (another host, processor, CPU count or torch) is never returned.
    """
    path = _measurement_path(kind, settings)
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if stored.get("machine") != machine() or stored.get("settings") != json.loads(json.dumps(settings, default=str)):
        return None
    return Measurement(stored["result"], stored["machine"], stored["measured_at"], stored["load"], stored["seconds"],
                       stored.get("session") == SESSION)


def cached_measurement(kind: str, settings: Mapping, measure: Callable[[], Any], refresh: bool = False) -> Measurement:
    """``measure()`` made once per machine and kept with where and when (notebook 01); ``refresh`` measures again."""
    if not refresh:
        stored = stored_measurement(kind, settings)
        if stored is not None:
            return stored
    load, here = os.getloadavg()[0], machine()
    at = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    start = time.perf_counter()
    result = json.loads(json.dumps(measure()))  # what a later session will read back
    seconds = time.perf_counter() - start
    record = {"settings": settings, "machine": here, "measured_at": at, "load": load, "seconds": seconds,
              "session": SESSION, "result": result}
    atomic_write(_measurement_path(kind, settings), lambda tmp: Path(tmp).write_text(json.dumps(record, default=str)))
    return Measurement(result, here, at, load, seconds, True)


def measured_roofline(seconds: float = 2.0, device: str = "cpu", refresh: bool = False) -> tuple[hardware.Roofline, Measurement]:
    """``hardware.measure_roofline`` once per machine, cached with where and when (notebook 01, section 2)."""
    settings = {"seconds": float(seconds), "device": device, "threads": torch.get_num_threads()}
    measured = cached_measurement(
        "roofline", settings, lambda: hardware.measure_roofline(seconds, device, refresh)._asdict(), refresh)
    return hardware.Roofline(**measured.result), measured


SPARSE_BATCH_SIZES = (1, 1000)
"""The batch sizes notebook 01 times a pruned ip1 at: one request, and a batch that makes the layer compute-bound."""


def measured_sparse_timings(batch_sizes: Sequence[int] = SPARSE_BATCH_SIZES, seconds: float = 0.25,
                            refresh: bool = False, stored_only: bool = False
                            ) -> tuple[list[hardware.SparseTiming], Measurement] | None:
    """``hardware.time_sparse_matvec`` at each batch size, once per machine (notebook 01, "Does it run faster?").

    ``stored_only``: what was measured earlier on this machine, or None, without measuring.
    """
    settings = {"batch_sizes": [int(b) for b in batch_sizes], "seconds": float(seconds),
                "densities": list(hardware.DENSITIES)}

    def measure() -> list[dict]:
        return [t._asdict() for b in batch_sizes for t in hardware.time_sparse_matvec(batch_size=b, seconds=seconds)]

    if stored_only and not refresh:
        measured = stored_measurement("sparse-matvec", settings)
        if measured is None:
            return None
    else:
        measured = cached_measurement("sparse-matvec", settings, measure, refresh)
    timings = [hardware.SparseTiming(**{**t, "shape": tuple(t["shape"])}) for t in measured.result]
    return timings, measured


# ---------------------------------------------------------------- number formats on trained networks (notebook 01)


def _format_key(fmt: numformats.Format | str) -> str:
    return fmt if isinstance(fmt, str) else repr(fmt)


def format_accuracy(archs: Mapping[str, str], formats: Mapping[str, numformats.Format | str],
                    progress: bool = True) -> dict[str, dict[str, float]]:
    """``{title: {format label: test accuracy}}``: each baseline with every weight cast to each format (notebook 01).

    ``archs`` maps a title to a zoo name, ``formats`` a label to a format (``numformats.cast_model``);
    every accuracy is measured on the 10,000 test digits, once, and cached by the baseline and the formats.
    """
    accuracy = {}
    for title, arch in archs.items():
        settings = {"arch": arch, "baseline": baseline_fingerprint(arch),
                    "formats": {label: _format_key(fmt) for label, fmt in formats.items()}, "test": "mnist-test"}

        def compute(arch: str = arch, title: str = title) -> dict:
            model, test = zoo.pretrained(arch), test_set()
            bar = progress_bar(len(formats), f"{title}: test accuracy per format", enabled=progress)
            result = {}
            for label, fmt in formats.items():
                result[label] = evaluate(numformats.cast_model(model, fmt), test)
                bar.update()
            bar.close()
            return result

        result = cached_result("format-accuracy", settings, compute)
        accuracy[title] = {label: result[label] for label in formats}  # in the order asked for
    return accuracy
