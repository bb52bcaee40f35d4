"""What the capstone dashboard computes, cached so that a slider redoes only what changed (notebook 06).

A ``CompressionSession`` holds, per network, everything that settings do not change:
the trained baseline, each layer's weights sorted by value (for k-means) and by
magnitude (for pruning masks), the baseline's test accuracy and a histogram binning
of every layer. Everything that settings do change is memoised by what it depends on:

- a pruning mask by (layer, sparsity), from the engine's cached order of |w|;
- a codebook by (layer, sparsity, bits, init): changing the bits never redoes a mask;
- the test accuracy by the codebooks of all layers, and the forward pass by prefix:
  the activations after each layer are kept, so when only the last layers change
  (LeNet-5's fc layers) the convolutions are not recomputed;
- the ``.dcz`` bytes and report by (codebooks, gap bits, Huffman).

The file does not depend on the accuracy (its metadata records the settings, not
the test error), so ``compress(..., evaluate=False)`` answers sizes first and
``evaluate(snapshot)`` adds the accuracy: a page can redraw its sizes before the
test pass ends. Compressing with the same settings gives exactly the bytes of
``dclab.pipeline.compress_weights(model, config)``: the masks, codebooks and
encoder are the engine's, only cached.
"""
from __future__ import annotations

import copy
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Hashable, Mapping, NamedTuple

import numpy as np
import torch
from torch import nn

from dclab import pipeline
from dclab.algorithms.quantize import Codebook, apply_codebooks_, quantize_layer
from dclab.data import Digits
from dclab.errors import DclabError
from dclab.pipeline import CompressionConfig, CompressionReport, WeightCache
from dclab.pipeline.ladder import LEVELS, Ladder, Rung, ladder_for, retrained_ladder
from dclab.memory import release_freed_memory
from dclab.pipeline.staged import EVAL_BATCH, StagedAccuracy, Superseded, staged_forward

__all__ = ["HIST_BINS", "LayerView", "Snapshot", "NetworkCache", "CompressionSession", "Superseded", "staged_forward"]

HIST_BINS = 80
"""Bins of the weight histograms the dashboard draws."""

ESTIMATE_PER_CLASS = 100
"""Digits per class of the quick estimate a page shows before the full test pass (1,000 for MNIST)."""


class Estimate(NamedTuple):
    """Accuracy on the fixed, class-stratified subset, with its binomial standard error."""

    accuracy: float
    stderr: float
    digits: int

    @classmethod
    def of(cls, accuracy: float, digits: int) -> "Estimate":
        """An accuracy measured on ``digits`` digits, with its binomial standard error sqrt(p (1 - p) / n)."""
        return cls(accuracy, math.sqrt(max(accuracy * (1 - accuracy), 0.0) / digits), digits)


class _LRU(OrderedDict):
    """A small least-recently-used memo: ``get_or(key, compute)``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_or(self, key: Hashable, compute: Callable[[], Any]) -> tuple[Any, bool]:
        if key in self:
            self.move_to_end(key)
            return self[key], True
        value = compute()
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value, False


# ---------------------------------------------------------------------------
# ---------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class LayerView:
    """What the histogram of one layer shows: counts per bin, kept and pruned, the cut and the centroids."""

    name: str
    kind: str
    edges: np.ndarray
    kept_counts: np.ndarray
    pruned_counts: np.ndarray
    cut: float
    centroids: np.ndarray
    sparsity: float
    bits: int

    @property
    def centers(self) -> np.ndarray:
        """Bin centres."""
        return (self.edges[1:] + self.edges[:-1]) / 2

    @property
    def width(self) -> float:
        """Bin width."""
        return float(self.edges[1] - self.edges[0])


@dataclass(eq=False)
class Snapshot:
    """One setting of the dashboard, computed: accuracy, ``.dcz`` bytes, report, codebooks (notebook 06).

    ``accuracy`` is measured on the whole test set with exactly the weights the
    ``.dcz`` stores (None until ``CompressionSession.evaluate``); ``report.file_bytes
    == len(dcz)``. ``timings`` (seconds by step) and ``reused`` (steps answered from
    the cache) explain the latency; ``keys`` identify each layer's codebook.
    """

    network: str
    config: CompressionConfig
    sparsities: dict[str, float]
    codebooks: dict[str, Codebook]
    accuracy: float | None
    dcz: bytes
    report: CompressionReport
    baseline_accuracy: float
    keys: dict[str, Hashable] = field(default_factory=dict)
    finetune_history: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    rung: int = 0
    rung_label: str = "the dense baseline (not retrained)"

    @property
    def retrained(self) -> bool:
        """Whether the setting was computed on a retrained rung of the ladder (``dclab.pipeline.ladder``)."""
        return self.rung > 0

    @property
    def ratio(self) -> float:
        """Dense bytes / ``.dcz`` bytes."""
        return self.report.ratio

    @property
    def file_bytes(self) -> int:
        """Bytes of the ``.dcz`` file: ``len(self.dcz)``."""
        return len(self.dcz)

    @property
    def finetuned(self) -> bool:
        """Whether the centroids were fine-tuned (trained quantization)."""
        return bool(self.finetune_history)

    def __repr__(self) -> str:
        tuned = f", fine-tuned {len(self.finetune_history)} epochs" if self.finetuned else ""
        accuracy = "not measured" if self.accuracy is None else f"{self.accuracy:.2%}"
        return (
            f"Snapshot({self.network}: accuracy {accuracy}, {self.file_bytes:,} bytes, "
            f"{self.ratio:.1f}x{tuned})"
        )


# ---------------------------------------------------------------------------
# Per-network cache


class NetworkCache:
    """Everything about one trained network that settings do not change, and memos for what they do."""

    def __init__(self, arch: str, model: nn.Module, test_data: Digits, accuracy: float | None = None) -> None:
        self.arch = arch
        self.model = model.eval()
        self.test_data = test_data
        self.weights = WeightCache(model, arch=arch)
        self.layers = self.weights.layers
        self.kinds = self.weights.kinds
        w = self.weights.weights
        # magnitudes sorted, for the pruning cut the histogram draws
        self.abs_sorted: dict[str, np.ndarray] = {}
        self.bins: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for layer, t in w.items():
            self.abs_sorted[layer] = np.sort(t.abs().reshape(-1).numpy())
            flat = t.reshape(-1).numpy()
            lo, hi = float(flat.min()), float(flat.max())
            edges = np.linspace(lo, hi + 1e-12 * max(1.0, abs(hi)), HIST_BINS + 1)
            which = np.clip(np.searchsorted(edges, flat, side="right") - 1, 0, HIST_BINS - 1)
            self.bins[layer] = (edges, which)
        self.masks = _LRU(32)
        self.codebooks = _LRU(24)  # LeNet-5's ip1 indices are 3.2 MB (int64) per codebook
        self.accuracies = _LRU(256)
        self.encoded = _LRU(32)
        self.work = copy.deepcopy(model).eval()  # the weights of the stages being run
        self.staged = StagedAccuracy(self.work, test_data, keep="every")
        self.quick = test_data.stratified(ESTIMATE_PER_CLASS)
        self.estimator = copy.deepcopy(model).eval()  # the quick estimate's own copy
        self.estimates = _LRU(256)
        self.baseline_accuracy = self._evaluate_plain(self.model) if accuracy is None else accuracy

    def _evaluate_plain(self, model: nn.Module) -> float:
        from dclab.train import evaluate

        return evaluate(model, self.test_data, batch_size=EVAL_BATCH)

    # -- masks and codebooks

    def mask(self, layer: str, sparsity: float) -> torch.Tensor | None:
        """The engine's mask (``WeightCache.mask``, from the cached order of |w|), memoised; None = dense."""
        if sparsity <= 0:
            return None
        return self.masks.get_or((layer, sparsity), lambda: self.weights.mask(layer, sparsity))[0]

    def codebook(self, layer: str, sparsity: float, bits: int, init: str, seed: int) -> tuple[Codebook, bool]:
        """``quantize_layer`` of the masked layer, memoised by (layer, sparsity, bits, init, seed)."""

        def compute() -> Codebook:
            return quantize_layer(
                self.weights.weights[layer], self.mask(layer, sparsity), bits, init,
                seed=seed, presorted=self.weights.sorted[layer],
            )

        return self.codebooks.get_or((layer, sparsity, bits, init, seed), compute)

    def cut(self, layer: str, sparsity: float) -> float:
        """The smallest magnitude kept at this sparsity (0 when nothing is pruned)."""
        a = self.abs_sorted[layer]
        k = round(sparsity * a.size)
        return float(a[min(k, a.size - 1)]) if k > 0 else 0.0

    def view(self, layer: str, sparsity: float, codebook: Codebook, bits: int) -> LayerView:
        """Histogram counts (kept and pruned), the pruning cut and the centroids of ``layer``."""
        edges, which = self.bins[layer]
        total = np.bincount(which, minlength=HIST_BINS)
        mask = self.mask(layer, sparsity)
        if mask is None:
            kept = total
        else:
            kept = np.bincount(which[mask.reshape(-1).numpy()], minlength=HIST_BINS)
        centroids = codebook.centroids.numpy()
        if codebook.reserved_zero:
            centroids = centroids[1:]
        return LayerView(
            layer, self.kinds[layer], edges, kept, total - kept, self.cut(layer, sparsity),
            centroids, sparsity, bits,
        )

    # -- accuracy, by prefix of the forward pass

    def accuracy(self, keys: Mapping[str, Hashable], codebooks: Mapping[str, Codebook],
                 cancelled: Callable[[], bool] | None = None) -> tuple[float, bool]:
        """Test accuracy with every layer's weight ``codebooks[layer].weights()``; ``keys`` identify them.

        ``cancelled()`` is asked between batches; when it says so the pass stops with ``Superseded``
        (nothing half-measured is kept)."""
        full = tuple(keys[layer] for layer in self.layers)
        return self.accuracies.get_or(full, lambda: self._staged_accuracy(keys, codebooks, cancelled))

    def measured(self, keys: Mapping[str, Hashable]) -> bool:
        """Whether the full test accuracy of these codebooks is already known (no pass needed)."""
        return tuple(keys[layer] for layer in self.layers) in self.accuracies

    def estimate(self, keys: Mapping[str, Hashable], codebooks: Mapping[str, Codebook]) -> tuple[Estimate, bool]:
        """Accuracy on the fixed stratified subset (``ESTIMATE_PER_CLASS`` digits per class), with its
        binomial standard error sqrt(p (1 - p) / n): what a page shows while the full pass runs."""

        def compute() -> Estimate:
            apply_codebooks_(self.estimator, dict(codebooks))
            with torch.no_grad():
                p = (self.estimator(self.quick.images).argmax(1) == self.quick.labels).float().mean().item()
            return Estimate.of(p, len(self.quick))

        return self.estimates.get_or(tuple(keys[layer] for layer in self.layers), compute)

    def _staged_accuracy(self, keys: Mapping[str, Hashable], codebooks: Mapping[str, Codebook],
                         cancelled: Callable[[], bool] | None = None) -> float:
        def load(layers: list[str]) -> None:
            apply_codebooks_(self.work, {layer: codebooks[layer] for layer in layers})

        return self.staged.accuracy(keys, load, cancelled)


# ---------------------------------------------------------------------------
# The session


class CompressionSession:
    """Trained baselines and test digits, with per-network caches, for the dashboard (notebook 06).

    ``models`` maps a network name to a trained model; missing names are loaded with
    ``dclab.zoo.pretrained`` on first use. ``compress(name, config)`` answers a setting.
    """

    def __init__(
        self,
        test_data: Digits | None = None,
        models: Mapping[str, nn.Module] | None = None,
        train_data: Digits | None = None,
        ladders: bool | None = None,
    ) -> None:
        self._test_data = test_data
        self._train_data = train_data
        self._models = dict(models or {})
        self._use_ladders = ladders
        self._networks: dict[str, NetworkCache] = {}
        self._rungs: dict[tuple[str, int], NetworkCache] = {}
        self._ladders: dict[str, Ladder] = {}
        self._lock = threading.Lock()

    @property
    def test_data(self) -> Digits:
        """The 10,000 MNIST test digits (loaded on first use)."""
        if self._test_data is None:
            from dclab.data import load_mnist

            self._test_data = load_mnist("test")
        return self._test_data

    @property
    def train_data(self) -> Digits:
        """The 60,000 MNIST training digits, for fine-tuning (loaded on first use)."""
        if self._train_data is None:
            from dclab.data import load_mnist

            self._train_data = load_mnist("train")
        return self._train_data

    def network(self, arch: str) -> NetworkCache:
        """The cache of one network (the baseline is loaded, sorted and evaluated once)."""
        with self._lock:  # a preload in the background finishes first
            if arch not in self._networks:
                model = self._models.get(arch)
                if model is None:
                    from dclab.zoo import pretrained

                    model = pretrained(arch)  # trains (with a progress bar) only if not cached
                self._networks[arch] = NetworkCache(arch, model, self.test_data)
            return self._networks[arch]

    def has_ladder(self, arch: str) -> bool:
        """Whether settings of ``arch`` can be answered on retrained networks (``dclab.pipeline.ladder``).

        ``ladders=None``: yes for the zoo's baselines (the ladder is climbed on first use if need be) and
        for a given model that is the zoo's baseline with its ladder cached; no for other given models.
        ``ladders=True`` asks for it (a given model must then be the zoo's baseline)."""
        if arch not in LEVELS or self._use_ladders is False:
            return False
        if arch not in self._models or self._use_ladders:
            return True
        return self._given_ladder(arch) is not None

    def _given_ladder(self, arch: str, asked: bool | None = None) -> Ladder | None:
        with self._lock:
            if arch not in self._ladders:
                found = ladder_for(self._models[arch], asked, arch)
                if found is None:
                    return None
                self._ladders[arch] = found
            return self._ladders[arch]

    def ladder(self, arch: str) -> Ladder:
        """``arch``'s retrained ladder (climbed, with a progress bar, only if not cached)."""
        if not self.has_ladder(arch):
            raise DclabError(f"{arch} has no retrained ladder in this session; compress it with retrained=False")
        if arch in self._models:
            return self._given_ladder(arch, asked=True)
        with self._lock:
            if arch not in self._ladders:
                self._ladders[arch] = retrained_ladder(arch, test_data=self.test_data)
            return self._ladders[arch]

    def _rung_network(self, arch: str, rung: Rung) -> NetworkCache:
        if rung.index == 0:
            return self.network(arch)
        with self._lock:
            key = (arch, rung.index)
            if key not in self._rungs:
                self._rungs[key] = NetworkCache(arch, rung.model(arch), self.test_data, accuracy=rung.accuracy)
            return self._rungs[key]

    def _cache_of(self, snapshot: Snapshot) -> NetworkCache:
        if snapshot.rung == 0:
            return self.network(snapshot.network)
        return self._rung_network(snapshot.network, self.ladder(snapshot.network).rungs[snapshot.rung])

    def preload(self, *names: str) -> threading.Thread:
        """Prepare networks in a background thread (while the page is idle); ``network()`` waits for it.

        Only networks already trained (given, or in the cache) are preloaded, with their retrained ladder
        if it is cached: training belongs in the foreground, where its progress bar shows.
        """
        from dclab.zoo import checkpoint_path

        from dclab.pipeline.ladder import ladder_ready

        ready = [n for n in names if n in self._models or checkpoint_path(n).is_file()]

        def load() -> None:
            for n in ready:
                self.network(n)
                if self.has_ladder(n) and ladder_ready(n):  # already climbed: loading it takes a moment
                    self.ladder(n)
            # glibc gives this thread a malloc arena of its own, which keeps what the loading freed (the
            # baseline's test pass, the sorts: ~60 MB of a reader's kernel, benchmarks/page_memory.py)
            # unless asked to hand it back; the memory still in use is untouched
            release_freed_memory()

        thread = threading.Thread(target=load, daemon=True, name="dclab-preload")
        thread.start()
        return thread

    def sparsities(self, arch: str, config: CompressionConfig) -> dict[str, float]:
        """The sparsity of every layer for ``config`` (quality converted on the baseline's weights)."""
        net = self.network(arch)
        return pipeline.layer_sparsities(net.model, arch, config)

    def compress(self, arch: str, config: CompressionConfig, *, evaluate: bool = True,
                 retrained: bool = False) -> Snapshot:
        """Masks, codebooks, ``.dcz`` and test accuracy for ``config``, reusing everything cached (notebook 06).

        ``retrained=True`` answers on the nearest retrained rung of ``arch``'s ladder (``Ladder.rung_for``
        the setting's per-layer sparsities, computed on the baseline), pruned the rest of the way; its
        ``.dcz`` equals ``compress_weights(rung.model(arch), config with those sparsities)``.
        ``evaluate=False`` leaves the accuracy to a later ``evaluate(snapshot)``.
        """
        config = config.validate()
        timings: dict[str, float] = {}
        reused: list[str] = []
        t = time.perf_counter()
        sparsities = self.sparsities(arch, config)
        rung = self.ladder(arch).rung_for(sparsities) if retrained else None
        net = self.network(arch) if rung is None else self._rung_network(arch, rung)
        keys, codebooks = {}, {}
        for layer in net.layers:
            bits = config.bits_for(layer, net.kinds[layer])
            keys[layer] = (sparsities[layer], bits, config.init, config.seed)
            codebooks[layer], hit = net.codebook(layer, sparsities[layer], bits, config.init, config.seed)
            if hit:
                reused.append(f"codebook {layer}")
        timings["prune + quantize"] = time.perf_counter() - t

        t = time.perf_counter()
        meta = {"test_error_after": None, "config": config.to_dict()}  # what compress_weights writes
        gap_bits = tuple(config.gap_bits_for(net.kinds[layer]) for layer in net.layers)
        key = (tuple(keys[layer] for layer in net.layers), gap_bits, config.huffman, _config_key(config))
        (dcz, report), hit = net.encoded.get_or(key, lambda: self._encode(net, codebooks, config, meta))
        if hit:
            reused.append("encode")
        timings["encode"] = time.perf_counter() - t
        snapshot = Snapshot(
            arch, config, sparsities, codebooks, None, dcz, report, self.network(arch).baseline_accuracy, keys,
            timings=timings, reused=reused, rung=0 if rung is None else rung.index,
            rung_label=Snapshot.rung_label if rung is None else rung.describe(),
        )
        return self.evaluate(snapshot) if evaluate else snapshot

    def evaluate(self, snapshot: Snapshot, cancelled: Callable[[], bool] | None = None) -> Snapshot:
        """The snapshot with its test accuracy (from the cache, or a pass from the first changed layer).

        ``cancelled()``, asked between batches, stops the pass with ``Superseded`` (a page whose setting
        changed meanwhile); the full figure of the setting that stays is always measured."""
        if snapshot.accuracy is not None:
            return snapshot
        net = self._cache_of(snapshot)
        t = time.perf_counter()
        accuracy, hit = net.accuracy(snapshot.keys, snapshot.codebooks, cancelled)
        timings = dict(snapshot.timings, evaluate=time.perf_counter() - t)
        reused = snapshot.reused + (["accuracy"] if hit else [])
        return replace(snapshot, accuracy=accuracy, timings=timings, reused=reused)

    def measured(self, snapshot: Snapshot) -> bool:
        """Whether ``evaluate(snapshot)`` would answer from the cache (no test pass)."""
        return snapshot.accuracy is not None or self._cache_of(snapshot).measured(snapshot.keys)

    def estimate(self, snapshot: Snapshot) -> Estimate:
        """The quick accuracy estimate of a snapshot: ``ESTIMATE_PER_CLASS`` test digits of every class,
        with the binomial standard error (shown, marked as an estimate, until the full figure arrives)."""
        return self._cache_of(snapshot).estimate(snapshot.keys, snapshot.codebooks)[0]

    @staticmethod
    def _encode(
        net: NetworkCache, codebooks: Mapping[str, Codebook], config: CompressionConfig, meta: dict[str, Any]
    ) -> tuple[bytes, CompressionReport]:
        # the engine's own encoder and report (what compress_weights returns), on the baseline's biases
        return pipeline.encode_dcz(net.arch, net.model, dict(codebooks), config, meta)

    def view(self, snapshot: Snapshot, layer: str) -> LayerView:
        """The histogram view of one layer of a snapshot."""
        net = self._cache_of(snapshot)
        if layer not in net.layers:
            raise DclabError(f"{snapshot.network} has no layer {layer!r}; its layers are {', '.join(net.layers)}")
        book = snapshot.codebooks[layer]
        bits = snapshot.config.bits_for(layer, net.kinds[layer])
        return net.view(layer, snapshot.sparsities[layer], book, bits)

    def finetune(
        self,
        snapshot: Snapshot,
        epochs: int = 2,
        lr: float = pipeline.BASELINE_LR / 10,
        *,
        train_data: Digits | None = None,
        max_shift: float = 2.0,
        on_step: Callable[[int, int], None] | None = None,
        on_epoch: Callable[[int, float], None] | None = None,
    ) -> Snapshot:
        """Trained quantization of a snapshot: fine-tune its centroids (and biases), masks kept (notebook 06).

        The indices stay fixed, so pruned weights stay pruned; each centroid moves by
        the summed gradient of its weights (``dclab.algorithms.quantize.SharedWeights``). The
        learning rate follows a cosine over the epochs. ``on_step(step, total)`` and
        ``on_epoch(epoch, test_accuracy)`` report progress. Returns a new snapshot
        whose ``.dcz`` holds the fine-tuned codebooks.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise DclabError(f"epochs must be a whole number >= 1, not {epochs!r}")
        net = self._cache_of(snapshot)
        snapshot = self.evaluate(snapshot)
        data = train_data if train_data is not None else self.train_data
        config = replace(snapshot.config, finetune_epochs=epochs, finetune_lr=lr, max_shift=max_shift)
        model = copy.deepcopy(net.model).train()
        total = epochs * math.ceil(len(data) / config.batch_size)
        done = [0]

        def after_step(_: nn.Module) -> None:
            done[0] += 1
            if on_step is not None:
                on_step(done[0], total)

        def epoch_done(record: dict) -> None:
            if on_epoch is not None:
                on_epoch(record["epoch"], record["test_accuracy"])

        codebooks, history = pipeline.finetune_centroids(
            model, snapshot.codebooks, data, config, test_data=self.test_data, after_step=after_step,
            on_epoch=epoch_done, progress=False,
        )
        model.eval()
        accuracy = history[-1]["test_accuracy"]
        meta = {
            "test_error_before": 1.0 - snapshot.accuracy,
            "test_error_after": 1.0 - accuracy,
            "config": config.to_dict(),
        }
        dcz, report = pipeline.encode_dcz(net.arch, model, codebooks, config, meta)
        return Snapshot(
            snapshot.network, config, dict(snapshot.sparsities), codebooks, accuracy, dcz, report,
            snapshot.baseline_accuracy, finetune_history=history, rung=snapshot.rung, rung_label=snapshot.rung_label,
        )  # no keys: a fine-tuned codebook is in no cache


def _config_key(config: CompressionConfig) -> str:
    import json

    return json.dumps(config.to_dict(), sort_keys=True)
