"""The experiments behind notebooks 02 (pruning) and 03 (weight sharing), cached by their settings.

Each sweep (pruning curves, layer sensitivity, accuracy vs bits, centroid
initializations, accuracy vs compression rate) is computed once and stored as
JSON in ``cache_dir()/experiments``, keyed by its settings and by a fingerprint
of the trained baseline it started from; a second run (and CI) reads the file.
Models retrained along the way are cached as state dicts beside it.

Sizes are measured: a pruned layer is really encoded in the relative-index
sparse format (``encode_pruned``: ``dclab.sparse`` gaps + float32 values), a
quantized one really written by ``dclab.container``. Accuracies are on all
10,000 MNIST test digits. Long loops show progress bars (dclab.progress).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from . import container, lowrank, paper, prune, quantize, zoo
from .cache import atomic_write, fingerprint
from .data import Digits, load_mnist
from .models import compressible_layers, layer_kind
from .paths import cache_dir
from .pipeline import BASELINE_LR, dcz_layers
from .progress import progress_bar
from .sparse import decode_gaps, decode_pruned, encode_gaps, encode_pruned  # noqa: F401  (re-exported)
from .train import evaluate, train

__all__ = [
    "PRUNE_INDEX_BITS",
    "RETRAIN_LR",
    "cached_result",
    "single_thread",
    "encode_pruned",
    "decode_pruned",
    "pruned_layer_bytes",
    "pruned_model_bytes",
    "masked_copy",
    "prune_and_retrain",
    "pruned_model",
    "pruning_curves",
    "layer_sensitivity",
    "weights_before_after",
    "RowLSTM",
    "lstm_pruning_demo",
    "encode_quantized",
    "quantized_copy",
    "accuracy_vs_bits",
    "init_comparison",
    "svd_model",
    "compression_tradeoff",
    "trained_quantization",
    "PAPER_4X4_WEIGHTS",
    "PAPER_4X4_GRADIENTS",
    "paper_weight_sharing_example",
]

CACHE_VERSION = 2
PRUNE_INDEX_BITS = dict(paper.GAP_BITS)  # notebook 02 stores pruned layers with the papers' gaps
"""The papers' bits per relative index (gap) in sparse storage: 8 for conv, 5 for fc layers."""

RETRAIN_LR = BASELINE_LR / 10  # the papers' rule for LeNet: retrain at 1/10 of the original rate
"""Retraining learning rate: 1/10 of the baselines' 0.05, as the pruning paper did for LeNet."""


# ---------------------------------------------------------------- cache


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


def _baseline_fingerprint(name: str) -> str:
    """The baseline's fingerprint (``dclab.cache``), so retraining it invalidates results."""
    zoo.pretrained(name)  # trains and caches it when missing
    return fingerprint(zoo.checkpoint_path(name))


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


def _cached_state(kind: str, settings: Mapping, model: nn.Module, compute: Callable[[nn.Module], None]) -> nn.Module:
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


def _test() -> Digits:
    return load_mnist("test")


def _train() -> Digits:
    return load_mnist("train")


# ---------------------------------------------------------------- pruned layers as bytes


def _index_bits(module: nn.Module) -> int:
    return PRUNE_INDEX_BITS[layer_kind(module)]


def pruned_layer_bytes(module: nn.Module, mask: torch.Tensor, weight: torch.Tensor | None = None) -> int:
    """Bytes of one pruned layer's weights, really encoded with ``encode_pruned`` (notebook 02)."""
    w = module.weight if weight is None else weight
    return len(encode_pruned(w, mask, _index_bits(module)))


def pruned_model_bytes(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> int:
    """Bytes of a pruned model: each masked layer encoded sparse, every other parameter as float32."""
    layers = compressible_layers(model)
    total = sum(pruned_layer_bytes(layers[name], mask) for name, mask in masks.items())
    pruned = {f"{name}.weight" for name in masks}
    return total + sum(4 * p.numel() for name, p in model.named_parameters() if name not in pruned)


# ---------------------------------------------------------------- pruning (notebook 02)


def masked_copy(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """A copy of ``model`` with the pruned weights set to zero (notebook 02)."""
    pruned = copy.deepcopy(model)
    prune.Pruner(pruned, masks).remove()
    return pruned.eval()


def prune_and_retrain(
    model: nn.Module,
    masks: Mapping[str, torch.Tensor],
    data: Digits,
    epochs: int = 1,
    lr: float = RETRAIN_LR,
    *,
    eval_data: Digits | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    progress: bool = True,
    seed: int = 0,
) -> list[dict]:
    """Prune ``model`` in place with ``masks`` and retrain the survivors, masks kept (notebook 02)."""
    pruner = prune.Pruner(model, masks)

    def step(m: nn.Module) -> None:
        pruner.apply()
        if after_step is not None:
            after_step(m)

    try:
        return train(model, data, epochs, lr, after_step=step, eval_data=eval_data, progress=progress,
                     seed=seed, desc="retraining")
    finally:
        pruner.remove()


def _masks(model: nn.Module, sparsity: float, scope: str) -> dict[str, torch.Tensor]:
    return prune.layer_masks(prune.prunable_weights(model), sparsity=sparsity, scope=scope)


def pruned_model(name: str = "lenet300", sparsity: float = 0.9, scope: str = "global", epochs: int = 1,
                 lr: float = RETRAIN_LR, progress: bool = True) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The baseline pruned once to ``sparsity`` and retrained ``epochs`` (cached); returns (model, masks)."""
    settings = {"model": name, "baseline": _baseline_fingerprint(name), "sparsity": round(float(sparsity), 6),
                "scope": scope, "epochs": epochs, "lr": lr}
    base = zoo.pretrained(name, progress=progress)
    masks = _masks(base, sparsity, scope)

    def compute(model: nn.Module) -> None:
        prune_and_retrain(model, masks, _train(), epochs, lr, progress=progress)

    model = _cached_state("pruned", settings, copy.deepcopy(base), compute)
    return model, masks


def pruning_curves(
    name: str = "lenet300",
    sparsities: Sequence[float] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98),
    scope: str = "global",
    epochs: int = 1,
    lr: float = RETRAIN_LR,
    progress: bool = True,
) -> dict:
    """Accuracy vs parameters pruned: without retraining, retrained once, and iteratively (notebook 02).

    "retrained" prunes the baseline straight to each sparsity and retrains ``epochs``;
    "iterative" walks the sparsities in order, each step pruning the previous
    step's retrained model further and retraining it again (the paper's
    iterative pruning). Returns accuracies in [0, 1] and measured sizes in bytes.
    """
    sparsities = sorted(float(s) for s in sparsities)
    settings = {"model": name, "baseline": _baseline_fingerprint(name), "sparsities": sparsities,
                "scope": scope, "epochs": epochs, "lr": lr}

    def compute() -> dict:
        base = zoo.pretrained(name, progress=progress)
        test = _test()
        out = {"sparsity": sparsities, "baseline": evaluate(base, test), "no_retraining": [], "retrained": [],
               "iterative": [], "bytes": [], "dense_bytes": 4 * sum(p.numel() for p in base.parameters())}
        bar = progress_bar(2 * len(sparsities), "pruning curves", enabled=progress)
        for s in sparsities:
            masks = _masks(base, s, scope)
            out["no_retraining"].append(evaluate(masked_copy(base, masks), test))
            model, _ = pruned_model(name, s, scope, epochs, lr, progress=False)
            out["retrained"].append(evaluate(model, test))
            out["bytes"].append(pruned_model_bytes(model, masks))
            bar.update()
        model = copy.deepcopy(base)
        for s in sparsities:  # iterative: prune the retrained model further each time
            settings_i = {**settings, "step": s}
            masks = _masks(model, s, scope)

            def step(m: nn.Module, masks=masks) -> None:
                prune_and_retrain(m, masks, _train(), epochs, lr, progress=False)

            model = _cached_state("iterative", settings_i, model, step)
            out["iterative"].append(evaluate(model, test))
            bar.update()
        bar.close()
        return out

    return cached_result("pruning_curves", settings, compute)


def layer_sensitivity(
    name: str = "lenet300",
    sparsities: Sequence[float] = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99),
    progress: bool = True,
) -> dict:
    """Accuracy when one layer alone is pruned to each sparsity, no retraining (notebook 02)."""
    sparsities = [float(s) for s in sparsities]
    settings = {"model": name, "baseline": _baseline_fingerprint(name), "sparsities": sparsities}

    def compute() -> dict:
        base = copy.deepcopy(zoo.pretrained(name, progress=progress))
        test = _test()
        layers = list(prune.prunable_weights(base))
        bar = progress_bar(len(layers) * len(sparsities), "sensitivity", enabled=progress)
        scan = prune.sensitivity_scan(base, lambda m: evaluate(m, test), sparsities,
                                      callback=lambda *_: bar.update())
        bar.close()
        sizes = {n: int(w.numel()) for n, w in prune.prunable_weights(base).items()}
        return {"sparsity": sparsities, "accuracy": scan, "weights": sizes, "baseline": evaluate(base, test)}

    return cached_result("sensitivity", settings, compute)


def weights_before_after(name: str = "lenet300", layer: str = "ip2", sparsity: float = 0.92,
                         scope: str = "global", epochs: int = 1, progress: bool = True) -> dict[str, torch.Tensor]:
    """A layer's weights before pruning, after pruning, and after pruning + retraining (notebook 02)."""
    base = zoo.pretrained(name, progress=progress)
    model, masks = pruned_model(name, sparsity, scope, epochs, progress=progress)
    before = dict(base.named_parameters())[f"{layer}.weight"].detach()
    return {
        "before": before.clone(),
        "pruned": (before * masks[layer]).clone(),
        "retrained": dict(model.named_parameters())[f"{layer}.weight"].detach().clone(),
        "mask": masks[layer].clone(),
    }


# ---------------------------------------------------------------- a recurrent network (notebook 02)


class RowLSTM(nn.Module):
    """An LSTM reading a digit's 28 rows, one per time step; gates as ``nn.Linear`` (notebook 02).

    ``ih`` (input to gates) and ``hh`` (hidden to gates) are plain Linear layers, so
    ``dclab.prune`` masks and its ``Pruner`` work on them unchanged.
    """

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = hidden
        self.ih = nn.Linear(28, 4 * hidden)
        self.hh = nn.Linear(hidden, 4 * hidden, bias=False)
        self.fc = nn.Linear(hidden, 10)
        with torch.no_grad():
            self.ih.bias.zero_()
            self.ih.bias[hidden : 2 * hidden] = 1.0  # forget gate open at the start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(x.shape[0], 28, 28)
        gates_x = self.ih(rows)
        h = x.new_zeros(x.shape[0], self.hidden)
        c = torch.zeros_like(h)
        for t in range(rows.shape[1]):
            i, f, g, o = (gates_x[:, t] + self.hh(h)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return self.fc(h)


def lstm_pruning_demo(hidden: int = 128, train_digits: int = 60000, epochs: int = 1, sparsity: float = 0.8,
                      retrain_epochs: int = 1, lr: float = 0.1, retrain_lr: float = 0.03,
                      progress: bool = True) -> dict:
    """Train a row-reading LSTM, prune its recurrent and input weights, retrain with masks (notebook 02)."""
    settings = {"hidden": hidden, "train_digits": train_digits, "epochs": epochs, "sparsity": sparsity,
                "retrain_epochs": retrain_epochs, "lr": lr, "retrain_lr": retrain_lr}

    def compute() -> dict:
        torch.manual_seed(0)
        data, test = _train().subset(train_digits), _test()
        model = RowLSTM(hidden)
        start = time.perf_counter()
        train(model, data, epochs, lr, progress=progress, desc="training the LSTM")
        train_s = time.perf_counter() - start
        dense = evaluate(model, test)
        masks = prune.layer_masks({"ih": model.ih.weight, "hh": model.hh.weight}, sparsity=sparsity)
        pruned = evaluate(masked_copy(model, masks), test)
        prune_and_retrain(model, masks, data, retrain_epochs, retrain_lr, progress=progress)
        kept = {n: int(m.sum()) for n, m in masks.items()}
        return {"dense": dense, "pruned": pruned, "retrained": evaluate(model, test), "train_seconds": train_s,
                "kept": kept, "weights": {n: int(m.numel()) for n, m in masks.items()},
                "parameters": sum(p.numel() for p in model.parameters())}

    return cached_result("lstm", settings, compute)


# ---------------------------------------------------------------- weight sharing (notebook 03)


def encode_quantized(model: nn.Module, codebooks: Mapping[str, quantize.Codebook], arch: str = "model",
                     index_bits: Mapping[str, int] | None = None, huffman: bool = False) -> bytes:
    """Quantized layers written as a real ``.dcz`` (``dclab.container``), biases included (notebook 03).

    A pruned codebook (reserved zero) is stored sparse with the papers' index bits;
    a dense one stores every index (``index_bits=0``).
    """
    def bits(name: str, kind: str) -> int:
        return max(1, math.ceil(math.log2(codebooks[name].n_clusters)))

    def gap_bits(name: str, kind: str) -> int:
        return (index_bits or {}).get(name, PRUNE_INDEX_BITS[kind])

    return container.to_bytes(arch, dcz_layers(model, codebooks, bits, gap_bits), huffman=huffman)


def quantized_copy(model: nn.Module, codebooks: Mapping[str, quantize.Codebook]) -> nn.Module:
    """A copy of ``model`` whose named layers hold ``centroids[indices]`` (notebook 03)."""
    return quantize.apply_codebooks_(copy.deepcopy(model), codebooks).eval()


def _codebooks(model: nn.Module, bits: int | Mapping[str, int], init: str = "linear",
               masks: Mapping[str, torch.Tensor] | None = None, layers: Iterable[str] | None = None
               ) -> dict[str, quantize.Codebook]:
    modules = compressible_layers(model)
    names = list(modules) if layers is None else list(layers)
    books = {}
    for name in names:
        b = bits[name] if isinstance(bits, Mapping) else bits
        mask = None if masks is None else masks.get(name)
        books[name] = quantize.quantize_layer(modules[name].weight.detach(), mask, b, init)
    return books


def accuracy_vs_bits(name: str = "lenet5", bits: Sequence[int] = range(1, 9), init: str = "linear",
                     progress: bool = True) -> dict:
    """Test accuracy with only the conv layers, or only the fc layers, sharing 2**bits weights (notebook 03).

    The other layers stay float32 and nothing is retrained: how many bits each kind
    of layer needs (Deep Compression uses 8 for conv, 5 for fc).
    """
    bits = [int(b) for b in bits]
    settings = {"model": name, "baseline": _baseline_fingerprint(name), "bits": bits, "init": init}

    def compute() -> dict:
        base = zoo.pretrained(name, progress=progress)
        test = _test()
        kinds = {n: layer_kind(m) for n, m in compressible_layers(base).items()}
        out = {"bits": bits, "baseline": evaluate(base, test), "layers": kinds}
        groups = [k for k in ("conv", "fc") if k in kinds.values()]
        bar = progress_bar(len(groups) * len(bits), "accuracy vs bits", enabled=progress)
        for kind in groups:
            names = [n for n, k in kinds.items() if k == kind]
            out[kind] = []
            for b in bits:
                out[kind].append(evaluate(quantized_copy(base, _codebooks(base, b, init, layers=names)), test))
                bar.update()
        bar.close()
        return out

    return cached_result("accuracy_vs_bits", settings, compute)


def init_comparison(name: str = "lenet300", bits: Sequence[int] = range(1, 9),
                    inits: Sequence[str] = quantize.INITS, layer: str = "ip2", layer_bits: int = 4,
                    progress: bool = True) -> dict:
    """Centroid initializations compared: accuracy, k-means error, one layer's codebooks (notebook 03).

    Every layer is quantized with the same bits and no retraining. For ``layer`` at
    ``layer_bits`` the result also holds the layer's weight CDF and each method's
    initial and final centroids, Deep Compression's Figure 4 on a real layer.
    """
    bits, inits = [int(b) for b in bits], list(inits)
    settings = {"model": name, "baseline": _baseline_fingerprint(name), "bits": bits, "inits": inits,
                "layer": layer, "layer_bits": layer_bits}

    def compute() -> dict:
        base = zoo.pretrained(name, progress=progress)
        test = _test()
        out = {"bits": bits, "baseline": evaluate(base, test), "accuracy": {}, "sse": {}}
        bar = progress_bar(len(inits) * len(bits), "centroid initialization", enabled=progress)
        for init in inits:
            out["accuracy"][init], out["sse"][init] = [], []
            for b in bits:
                books = _codebooks(base, b, init)
                out["accuracy"][init].append(evaluate(quantized_copy(base, books), test))
                out["sse"][init].append(sum(
                    float(((m.weight.detach() - books[n].weights()) ** 2).sum())
                    for n, m in compressible_layers(base).items()))
                bar.update()
        bar.close()
        w = compressible_layers(base)[layer].weight.detach().reshape(-1)
        values = np.sort(w.double().numpy())
        pick = np.linspace(0, len(values) - 1, min(len(values), 400)).round().astype(int)
        k = 2**layer_bits
        out["layer"] = {
            "name": layer, "bits": layer_bits, "cdf_x": values[pick].tolist(),
            "cdf_y": ((pick + 1) / len(values)).tolist(),
            "initial": {i: quantize.init_centroids(values, k, i).tolist() for i in inits},
            "final": {i: quantize.kmeans_1d(w, k, i)[0].tolist() for i in inits},
        }
        return out

    return cached_result("init_comparison", settings, compute)


def svd_model(model: nn.Module, keep: float) -> tuple[nn.Module, dict[str, int]]:
    """A copy with every layer but the output layer replaced by its low-rank approximation (notebook 03).

    Each layer gets the largest rank storing at most ``keep`` of its numbers. The
    output layer (10 x 100 in LeNet-300-100) stays whole: it is tiny, and at rank 4
    of 10 it alone would cost a quarter of the accuracy.
    """
    low = copy.deepcopy(model)
    layers = list(compressible_layers(low).items())[:-1]
    ranks = {}
    with torch.no_grad():
        for name, module in layers:
            ranks[name] = lowrank.svd_rank_for(module.weight.shape, keep)
            module.weight.copy_(lowrank.svd_compress(module.weight, ranks[name]))
    return low.eval(), ranks


def _svd_bytes(model: nn.Module, ranks: Mapping[str, int]) -> int:
    """Bytes of the float32 factors (m x r and r x n) of the factored layers plus the other parameters."""
    total = 0
    for name, module in compressible_layers(model).items():
        if name not in ranks:
            continue
        a = module.weight.detach().reshape(module.weight.shape[0], -1)
        u, s, vh = torch.linalg.svd(a, full_matrices=False)
        r = ranks[name]
        total += len((u[:, :r] * s[:r]).numpy().astype("<f4").tobytes()) + len(vh[:r].numpy().astype("<f4").tobytes())
    factored = {f"{n}.weight" for n in ranks}
    return total + sum(4 * p.numel() for n, p in model.named_parameters() if n not in factored)


def compression_tradeoff(
    name: str = "lenet300",
    sparsities: Sequence[float] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98),
    pq_bits: int = 5,
    q_bits: Sequence[int] = (8, 6, 5, 4, 3, 2, 1),
    svd_keep: Sequence[float] = (0.5, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02),
    scope: str = "global",
    epochs: int = 1,
    progress: bool = True,
) -> dict:
    """Accuracy loss vs compression rate for P+Q, P, Q and SVD: Deep Compression's Figure 6 (notebook 03).

    Pruning points retrain ``epochs`` (cached, shared with notebook 02); P+Q quantizes
    those pruned models with ``pq_bits`` (index 0 reserved for the pruned zeros),
    Q quantizes the dense baseline, SVD keeps a fraction of each hidden layer's
    numbers (``svd_model``); neither Q nor SVD retrains. Every size is bytes really written (sparse
    float32 for P, a ``.dcz`` at fixed width for P+Q and Q, float32 factors for
    SVD), biases included; rate = fp32 model bytes / those bytes.
    """
    sparsities = sorted(float(s) for s in sparsities)
    settings = {"model": name, "baseline": _baseline_fingerprint(name), "sparsities": sparsities,
                "pq_bits": pq_bits, "q_bits": list(q_bits), "svd_keep": list(svd_keep), "scope": scope,
                "epochs": epochs}

    def compute() -> dict:
        base = zoo.pretrained(name, progress=progress)
        test = _test()
        baseline = evaluate(base, test)
        dense = 4 * sum(p.numel() for p in base.parameters())
        out = {"baseline": baseline, "dense_bytes": dense}

        def point(method: str, setting: float, n_bytes: int, accuracy: float) -> None:
            out.setdefault(method, []).append({"setting": setting, "bytes": n_bytes, "rate": dense / n_bytes,
                                               "accuracy": accuracy, "loss": baseline - accuracy})

        total = 2 * len(sparsities) + len(q_bits) + len(svd_keep)
        bar = progress_bar(total, "compression methods", enabled=progress)
        for s in sparsities:
            model, masks = pruned_model(name, s, scope, epochs, progress=False)
            point("pruning", s, pruned_model_bytes(model, masks), evaluate(model, test))
            bar.update()
            books = _codebooks(model, pq_bits, "linear", masks=masks)
            point("pruning+quantization", s, len(encode_quantized(model, books, name)),
                  evaluate(quantized_copy(model, books), test))
            bar.update()
        for b in q_bits:
            books = _codebooks(base, b, "linear")
            point("quantization", b, len(encode_quantized(base, books, name)),
                  evaluate(quantized_copy(base, books), test))
            bar.update()
        for keep in svd_keep:
            low, ranks = svd_model(base, keep)
            point("svd", keep, _svd_bytes(base, ranks), evaluate(low, test))
            bar.update()
        bar.close()
        return out

    return cached_result("compression_tradeoff", settings, compute)


def trained_quantization(name: str = "lenet300", bits: int = 2, init: str = "linear", epochs: int = 2,
                         lr: float = 3e-4, record_every: int = 10, train_bias: bool = False,
                         progress: bool = True) -> dict:
    """Quantize every layer, then fine-tune only the centroids with grouped gradients (notebook 03).

    Records every layer's centroids every ``record_every`` steps and the test accuracy
    before and after each epoch. The paper's update: dL/dC_k = sum over the weights
    with index k of dL/dW.
    """
    settings = {"model": name, "baseline": _baseline_fingerprint(name), "bits": bits, "init": init,
                "epochs": epochs, "lr": lr, "record_every": record_every, "train_bias": train_bias}

    def compute() -> dict:
        base = zoo.pretrained(name, progress=progress)
        test = _test()
        model = copy.deepcopy(base)
        books = _codebooks(model, bits, init)
        quantize.share_weights_(model, books)
        centroids = [p for n, p in model.named_parameters() if n.endswith("centroids")]
        params = centroids + ([p for n, p in model.named_parameters() if n.endswith("bias")] if train_bias else [])
        trace = {n: [b.centroids.tolist()] for n, b in books.items()}
        steps = [0]
        counter = [0]

        def record(m: nn.Module) -> None:
            counter[0] += 1
            if counter[0] % record_every == 0:
                steps.append(counter[0])
                for n, b in quantize.shared_codebooks(m).items():
                    trace[n].append(b.centroids.tolist())

        before = evaluate(model, test)
        history = train(model, _train(), epochs, lr, weight_decay=0.0, parameters=params, after_step=record,
                        eval_data=test, progress=progress, desc="fine-tuning centroids")
        final = quantize.unshare_weights_(model)
        accuracy = [before] + [h["test_accuracy"] for h in history]
        return {"bits": bits, "baseline": evaluate(base, test), "accuracy": accuracy,
                "steps": steps, "centroids": trace,
                "final": {n: b.centroids.tolist() for n, b in final.items()}}

    return cached_result("trained_quantization", settings, compute)


# ---------------------------------------------------------------- the paper's 4x4 example (Figure 3)

PAPER_4X4_WEIGHTS = [
    [2.09, -0.98, 1.48, 0.09],
    [0.05, -0.14, -1.08, 2.12],
    [-0.91, 1.92, 0.00, -1.03],
    [1.87, 0.00, 1.53, 1.49],
]
"""Deep Compression, Figure 3: the 4x4 weight matrix clustered into 4 shared weights."""

PAPER_4X4_GRADIENTS = [
    [-0.03, -0.01, 0.03, 0.02],
    [-0.01, 0.01, -0.02, 0.12],
    [-0.01, 0.02, 0.04, 0.01],
    [-0.07, -0.02, 0.01, -0.02],
]
"""Deep Compression, Figure 3: the gradient of the loss with respect to each of those weights."""


def paper_weight_sharing_example(lr: float = 1.0) -> dict:
    """Figure 3 of Deep Compression run through dclab: cluster, codebook, quantize, grouped gradient, update.

    k-means (linear init) on the 16 weights gives 4 centroids; the layer is made to
    share them (``share_weights_``); a loss whose gradient is the paper's gradient
    matrix is back-propagated, so each centroid's gradient is the sum over its
    cluster; one SGD step with ``lr`` gives the fine-tuned centroids.
    """
    w = torch.tensor(PAPER_4X4_WEIGHTS)
    grad = torch.tensor(PAPER_4X4_GRADIENTS)
    book = quantize.quantize_layer(w, None, bits=2, init="linear")
    layer = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        layer.weight.copy_(w)
    quantize.share_weights_(layer, {"": book})
    centroids = layer.parametrizations.weight[0].centroids
    (layer.weight * grad).sum().backward()  # dL/dW = grad
    grouped = centroids.grad.detach().clone()
    with torch.no_grad():
        centroids -= lr * centroids.grad
    n, b, k = w.numel(), 32, book.n_clusters
    return {
        "weights": w,
        "indices": book.indices,
        "centroids": book.centroids,
        "gradients": grad,
        "grouped_gradients": grouped,
        "fine_tuned": centroids.detach().clone(),
        "lr": lr,
        "ratio": n * b / (n * math.log2(k) + k * b),
        "n": n,
        "b": b,
        "k": k,
    }
