"""The experiments of notebook 03 (weight sharing), cached by their settings (``dclab.lessons.store``).

A quantized model's size is the byte count of the ``.dcz`` the one encoder writes
(``dclab.pipeline.encode_dcz``'s layers, ``dclab.codec.container``). Accuracies are on all 10,000
MNIST test digits.
"""
from __future__ import annotations

import copy
import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from dclab import zoo
from dclab.algorithms import lowrank, quantize
from dclab.codec import container
from dclab.codec.sparse import decode_gaps, decode_pruned, encode_gaps, encode_pruned  # noqa: F401  (re-exported)
from dclab.errors import DclabError
from dclab.lessons.pruning import PRUNE_GAP_BITS, pruned_model, pruned_model_bytes
from dclab.lessons.store import (
    baseline_fingerprint,
    cached_result,
    test_set,
    train_set,
)
from dclab.models import compressible_layers, layer_kind
from dclab.pipeline import dcz_layers
from dclab.progress import progress_bar
from dclab.train import evaluate, train


def encode_quantized(model: nn.Module, codebooks: Mapping[str, quantize.Codebook], arch: str = "model",
                     gap_bits: Mapping[str, int] | None = None, huffman: bool = False) -> bytes:
    """Quantized layers written as a real ``.dcz`` (``dclab.codec.container``), biases included (notebook 03).

    A pruned codebook (reserved zero) is stored sparse with the papers' gap bits;
    a dense one stores every index (``gap_bits=0``).
    """
    def bits(name: str, kind: str) -> int:
        return max(1, math.ceil(math.log2(codebooks[name].n_clusters)))

    def gap_bits_of(name: str, kind: str) -> int:
        return (gap_bits or {}).get(name, PRUNE_GAP_BITS[kind])

    return container.to_bytes(arch, dcz_layers(model, codebooks, bits, gap_bits_of), huffman=huffman)


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


def accuracy_vs_bits(arch: str = "lenet5", bits: Sequence[int] = range(1, 9), init: str = "linear",
                     progress: bool = True) -> dict:
    """Test accuracy with only the conv layers, or only the fc layers, sharing 2**bits weights (notebook 03).

    The other layers stay float32 and nothing is retrained: how many bits each kind
    of layer needs (Deep Compression uses 8 for conv, 5 for fc).
    """
    bits = [int(b) for b in bits]
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "bits": bits, "init": init}

    def compute() -> dict:
        base = zoo.pretrained(arch, progress=progress)
        test = test_set()
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


def init_comparison(arch: str = "lenet300", bits: Sequence[int] = range(1, 9),
                    inits: Sequence[str] = quantize.INITS, layer: str = "ip2", layer_bits: int = 4,
                    progress: bool = True) -> dict:
    """Centroid initializations compared: accuracy, k-means error, one layer's codebooks (notebook 03).

    Every layer is quantized with the same bits and no retraining. For ``layer`` at
    ``layer_bits`` the result also holds the layer's weight CDF and each method's
    initial and final centroids, Deep Compression's Figure 4 on a real layer.
    """
    bits, inits = [int(b) for b in bits], list(inits)
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "bits": bits, "inits": inits,
                "layer": layer, "layer_bits": layer_bits}

    def compute() -> dict:
        base = zoo.pretrained(arch, progress=progress)
        test = test_set()
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


GRIDS = ("uniform", "kmeans")
"""Notebook 03's two ways to place 2**bits shared values: evenly spaced, or learned by k-means."""


def layer_codebooks(model: nn.Module, bits: int, grid: str = "kmeans",
                    masks: Mapping[str, torch.Tensor] | None = None) -> dict[str, quantize.Codebook]:
    """Every layer's codebook at ``bits``: k-means from the linear start, or that start alone (notebook 03).

    ``grid="uniform"`` is ``quantize.uniform_codebook`` (evenly spaced levels, nearest level, no
    iteration); ``"kmeans"`` is ``quantize.quantize_layer`` from the same levels. With ``masks``,
    index 0 is reserved for the pruned zeros.
    """
    if grid not in GRIDS:
        raise DclabError(f"grid must be one of {', '.join(GRIDS)}, not {grid!r}")
    share = quantize.uniform_codebook if grid == "uniform" else quantize.quantize_layer
    return {name: share(module.weight.detach(), None if masks is None else masks.get(name), bits)
            for name, module in compressible_layers(model).items()}


def squared_error(model: nn.Module, codebooks: Mapping[str, quantize.Codebook]) -> float:
    """Sum over the layers of (w - shared value)**2: what k-means minimises (notebook 03)."""
    modules = compressible_layers(model)
    return sum(float(((modules[n].weight.detach().double() - b.weights().double()) ** 2).sum())
               for n, b in codebooks.items())


def _zeros_kept(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> int:
    """How many of the pruned positions hold exactly 0.0."""
    modules = compressible_layers(model)
    return sum(int(((modules[n].weight.detach() == 0) & ~m).sum()) for n, m in masks.items())


def pruned_vs_dense_bits(arch: str = "lenet300", sparsity: float = 0.9, scope: str = "global", epochs: int = 1,
                         bits: Sequence[int] = range(1, 9), progress: bool = True) -> dict:
    """Accuracy vs bits, every layer shared, for the dense baseline and the pruned network (notebook 03).

    Deep Compression's Figure 7 ("pruning doesn't hurt quantization"). The pruned network is
    ``lessons.pruning.pruned_model`` (cached, shared with notebook 02); its codebooks reserve
    index 0 for the pruned zeros. k-means from the linear start, no retraining after quantization.
    ``zeros_kept[i]`` counts the pruned positions still exactly 0 after sharing at ``bits[i]``.
    """
    bits = [int(b) for b in bits]
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "sparsity": round(float(sparsity), 6),
                "scope": scope, "epochs": epochs, "bits": bits}

    def compute() -> dict:
        base = zoo.pretrained(arch, progress=progress)
        pruned, masks = pruned_model(arch, sparsity, scope, epochs, progress=progress)
        test = test_set()
        out = {"bits": bits, "sparsity": sparsity, "baseline": evaluate(base, test),
               "pruned": evaluate(pruned, test), "pruned_weights": sum(int((~m).sum()) for m in masks.values()),
               "dense_quantized": [], "pruned_quantized": [], "zeros_kept": []}
        bar = progress_bar(2 * len(bits), "pruned vs dense, accuracy vs bits", enabled=progress)
        for b in bits:
            out["dense_quantized"].append(evaluate(quantized_copy(base, layer_codebooks(base, b)), test))
            bar.update()
            shared = quantized_copy(pruned, layer_codebooks(pruned, b, masks=masks))
            out["pruned_quantized"].append(evaluate(shared, test))
            out["zeros_kept"].append(_zeros_kept(shared, masks))
            bar.update()
        bar.close()
        return out

    return cached_result("pruned_vs_dense_bits", settings, compute)


def uniform_vs_kmeans(arch: str = "lenet300", bits: Sequence[int] = range(1, 9), progress: bool = True) -> dict:
    """A uniform grid vs k-means at equal bits, every layer of the dense baseline shared (notebook 03).

    Both start from the same evenly spaced levels (``layer_codebooks``): the uniform grid stops
    there, k-means moves them to its clusters' means. Accuracy on the test digits and the
    squared error (``squared_error``) per bit width; no retraining.
    """
    bits = [int(b) for b in bits]
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "bits": bits}

    def compute() -> dict:
        base = zoo.pretrained(arch, progress=progress)
        test = test_set()
        out = {"bits": bits, "baseline": evaluate(base, test),
               "accuracy": {g: [] for g in GRIDS}, "sse": {g: [] for g in GRIDS}}
        bar = progress_bar(len(GRIDS) * len(bits), "uniform grid vs k-means", enabled=progress)
        for b in bits:
            for grid in GRIDS:
                books = layer_codebooks(base, b, grid)
                out["accuracy"][grid].append(evaluate(quantized_copy(base, books), test))
                out["sse"][grid].append(squared_error(base, books))
                bar.update()
        bar.close()
        return out

    return cached_result("uniform_vs_kmeans", settings, compute)


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
    arch: str = "lenet300",
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
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "sparsities": sparsities,
                "pq_bits": pq_bits, "q_bits": list(q_bits), "svd_keep": list(svd_keep), "scope": scope,
                "epochs": epochs}

    def compute() -> dict:
        base = zoo.pretrained(arch, progress=progress)
        test = test_set()
        baseline = evaluate(base, test)
        dense = 4 * sum(p.numel() for p in base.parameters())
        out = {"baseline": baseline, "dense_bytes": dense}

        def point(method: str, setting: float, n_bytes: int, accuracy: float) -> None:
            out.setdefault(method, []).append({"setting": setting, "bytes": n_bytes, "rate": dense / n_bytes,
                                               "accuracy": accuracy, "loss": baseline - accuracy})

        total = 2 * len(sparsities) + len(q_bits) + len(svd_keep)
        bar = progress_bar(total, "compression methods", enabled=progress)
        for s in sparsities:
            model, masks = pruned_model(arch, s, scope, epochs, progress=False)
            point("pruning", s, pruned_model_bytes(model, masks), evaluate(model, test))
            bar.update()
            books = _codebooks(model, pq_bits, "linear", masks=masks)
            point("pruning+quantization", s, len(encode_quantized(model, books, arch)),
                  evaluate(quantized_copy(model, books), test))
            bar.update()
        for b in q_bits:
            books = _codebooks(base, b, "linear")
            point("quantization", b, len(encode_quantized(base, books, arch)),
                  evaluate(quantized_copy(base, books), test))
            bar.update()
        for keep in svd_keep:
            low, ranks = svd_model(base, keep)
            point("svd", keep, _svd_bytes(base, ranks), evaluate(low, test))
            bar.update()
        bar.close()
        return out

    return cached_result("compression_tradeoff", settings, compute)


CENTROID_LR = 3e-4
"""The learning rate of trained quantization on a dense layer (notebook 03): a centroid's gradient sums those of
every weight sharing it, so the rate is far below training's (the bit-width widget's retrained centroids use it too;
measured on LeNet-300-100's ip1 at 2 bits, one epoch of 10,000 digits at 1e-3 lost 0.9 point more than k-means alone)."""


def trained_quantization(arch: str = "lenet300", bits: int = 2, init: str = "linear", epochs: int = 2,
                         lr: float = CENTROID_LR, record_every: int = 10, train_bias: bool = False,
                         progress: bool = True) -> dict:
    """Quantize every layer, then fine-tune only the centroids with grouped gradients (notebook 03).

    Records every layer's centroids every ``record_every`` steps and the test accuracy
    before and after each epoch. The paper's update: dL/dC_k = sum over the weights
    with index k of dL/dW.
    """
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "bits": bits, "init": init,
                "epochs": epochs, "lr": lr, "record_every": record_every, "train_bias": train_bias}

    def compute() -> dict:
        base = zoo.pretrained(arch, progress=progress)
        test = test_set()
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
        history = train(model, train_set(), epochs, lr, weight_decay=0.0, parameters=params, after_step=record,
                        eval_data=test, progress=progress, desc="fine-tuning centroids")
        final = quantize.unshare_weights_(model)
        accuracy = [before] + [h["test_accuracy"] for h in history]
        return {"bits": bits, "baseline": evaluate(base, test), "accuracy": accuracy,
                "steps": steps, "centroids": trace,
                "final": {n: b.centroids.tolist() for n, b in final.items()}}

    return cached_result("trained_quantization", settings, compute)


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


def bits_summary(res: Mapping, bits: Sequence[int] = (1, 2, 3)) -> str:
    """Lines for notebook 03 from ``accuracy_vs_bits``: conv-only vs fc-only accuracy, and which loses more at 1 bit."""
    lines = []
    for b in bits:
        i = res["bits"].index(b)
        lines.append(f"{b} bit(s): only the conv layers shared {res['conv'][i]:.2%}, only the fc layers "
                     f"{res['fc'][i]:.2%} (float32: {res['baseline']:.2%})")
    i = res["bits"].index(min(res["bits"]))
    worse = "conv" if res["conv"][i] < res["fc"][i] else "fc"
    lines.append(f"with {res['bits'][i]} bit the {worse} layers lose more")
    return "\n".join(lines)


def init_summary(res: Mapping, bits: Sequence[int] = (1, 2, 4, 8)) -> str:
    """Lines for notebook 03 from ``init_comparison``: accuracy and clustering error per initialization."""
    lines = []
    for b in bits:
        i = res["bits"].index(b)
        lines.append(f"{b} bit(s): " + ", ".join(
            f"{init} {res['accuracy'][init][i]:.2%} (clustering error {res['sse'][init][i]:.3g})"
            for init in res["accuracy"]))
    top = max(res["bits"])
    lowest = min(res["sse"], key=lambda init: res["sse"][init][res["bits"].index(top)])
    lines.append(f"lowest clustering error at {top} bits: {lowest}")
    return "\n".join(lines)


def trained_quantization_summary(res: Mapping) -> str:
    """The line for notebook 03 from ``trained_quantization``: what sharing cost and what fine-tuning gave back."""
    before, after = res["accuracy"][0], res["accuracy"][-1]
    lost, back = res["baseline"] - before, after - before
    return (f"float32 {res['baseline']:.2%}; {2 ** res['bits']} shared values per layer {before:.2%}; after fine-tuning"
            f" the centroids {after:.2%}: {100 * back:.2f} of the {100 * lost:.2f} points lost came back")
