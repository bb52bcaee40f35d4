"""The experiments of notebook 02 (pruning), cached by their settings (``dclab.lessons.store``).

Sizes are measured: a pruned layer is really encoded in the relative-index sparse format
(``dclab.codec.sparse.encode_pruned``: gaps + float32 values). Accuracies are on all 10,000 MNIST
test digits. Long loops show progress bars (``dclab.progress``).
"""
from __future__ import annotations

import copy
import time
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from dclab import paper, zoo
from dclab.algorithms import prune
from dclab.codec.sparse import encode_pruned
from dclab.data import Digits
from dclab.lessons.store import (
    baseline_fingerprint,
    cached_result,
    cached_state,
    test_digits,
    train_digits,
)
from dclab.models import compressible_layers, layer_kind
from dclab.models.rnn import RowLSTM
from dclab.pipeline import BASELINE_LR
from dclab.progress import progress_bar
from dclab.train import evaluate, train

PRUNE_GAP_BITS = dict(paper.GAP_BITS)  # notebook 02 stores pruned layers with the papers' gaps
"""The papers' bits per relative index (gap) in sparse storage: 8 for conv, 5 for fc layers."""


RETRAIN_LR = BASELINE_LR / 10  # the papers' rule for LeNet: retrain at 1/10 of the original rate
"""Retraining learning rate: 1/10 of the baselines' 0.05, as the pruning paper did for LeNet."""


def _gap_bits(module: nn.Module) -> int:
    return PRUNE_GAP_BITS[layer_kind(module)]


def pruned_layer_bytes(module: nn.Module, mask: torch.Tensor, weight: torch.Tensor | None = None) -> int:
    """Bytes of one pruned layer's weights, really encoded with ``encode_pruned`` (notebook 02)."""
    w = module.weight if weight is None else weight
    return len(encode_pruned(w, mask, _gap_bits(module)))


def pruned_model_bytes(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> int:
    """Bytes of a pruned model: each masked layer encoded sparse, every other parameter as float32."""
    layers = compressible_layers(model)
    total = sum(pruned_layer_bytes(layers[name], mask) for name, mask in masks.items())
    pruned = {f"{name}.weight" for name in masks}
    return total + sum(4 * p.numel() for name, p in model.named_parameters() if name not in pruned)


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


def pruned_model(arch: str = "lenet300", sparsity: float = 0.9, scope: str = "global", epochs: int = 1,
                 lr: float = RETRAIN_LR, progress: bool = True) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The baseline pruned once to ``sparsity`` and retrained ``epochs`` (cached); returns (model, masks)."""
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "sparsity": round(float(sparsity), 6),
                "scope": scope, "epochs": epochs, "lr": lr}
    base = zoo.pretrained(arch, progress=progress)
    masks = _masks(base, sparsity, scope)

    def compute(model: nn.Module) -> None:
        prune_and_retrain(model, masks, train_digits(), epochs, lr, progress=progress)

    model = cached_state("pruned", settings, copy.deepcopy(base), compute)
    return model, masks


def pruning_curves(
    arch: str = "lenet300",
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
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "sparsities": sparsities,
                "scope": scope, "epochs": epochs, "lr": lr}

    def compute() -> dict:
        base = zoo.pretrained(arch, progress=progress)
        test = test_digits()
        out = {"sparsity": sparsities, "baseline": evaluate(base, test), "no_retraining": [], "retrained": [],
               "iterative": [], "bytes": [], "dense_bytes": 4 * sum(p.numel() for p in base.parameters())}
        bar = progress_bar(2 * len(sparsities), "pruning curves", enabled=progress)
        for s in sparsities:
            masks = _masks(base, s, scope)
            out["no_retraining"].append(evaluate(masked_copy(base, masks), test))
            model, _ = pruned_model(arch, s, scope, epochs, lr, progress=False)
            out["retrained"].append(evaluate(model, test))
            out["bytes"].append(pruned_model_bytes(model, masks))
            bar.update()
        model = copy.deepcopy(base)
        for s in sparsities:  # iterative: prune the retrained model further each time
            settings_i = {**settings, "step": s}
            masks = _masks(model, s, scope)

            def step(m: nn.Module, masks=masks) -> None:
                prune_and_retrain(m, masks, train_digits(), epochs, lr, progress=False)

            model = cached_state("iterative", settings_i, model, step)
            out["iterative"].append(evaluate(model, test))
            bar.update()
        bar.close()
        return out

    return cached_result("pruning_curves", settings, compute)


def layer_sensitivity(
    arch: str = "lenet300",
    sparsities: Sequence[float] = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99),
    progress: bool = True,
) -> dict:
    """Accuracy when one layer alone is pruned to each sparsity, no retraining (notebook 02)."""
    sparsities = [float(s) for s in sparsities]
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "sparsities": sparsities}

    def compute() -> dict:
        base = copy.deepcopy(zoo.pretrained(arch, progress=progress))
        test = test_digits()
        layers = list(prune.prunable_weights(base))
        bar = progress_bar(len(layers) * len(sparsities), "sensitivity", enabled=progress)
        scan = prune.sensitivity_scan(base, lambda m: evaluate(m, test), sparsities,
                                      callback=lambda *_: bar.update())
        bar.close()
        sizes = {n: int(w.numel()) for n, w in prune.prunable_weights(base).items()}
        return {"sparsity": sparsities, "accuracy": scan, "weights": sizes, "baseline": evaluate(base, test)}

    return cached_result("sensitivity", settings, compute)


def weights_before_after(arch: str = "lenet300", layer: str = "ip2", sparsity: float = 0.92,
                         scope: str = "global", epochs: int = 1, progress: bool = True) -> dict[str, torch.Tensor]:
    """A layer's weights before pruning, after pruning, and after pruning + retraining (notebook 02)."""
    base = zoo.pretrained(arch, progress=progress)
    model, masks = pruned_model(arch, sparsity, scope, epochs, progress=progress)
    before = dict(base.named_parameters())[f"{layer}.weight"].detach()
    return {
        "before": before.clone(),
        "pruned": (before * masks[layer]).clone(),
        "retrained": dict(model.named_parameters())[f"{layer}.weight"].detach().clone(),
        "mask": masks[layer].clone(),
    }


def lstm_pruning_demo(hidden: int = 128, train_digits: int = 60000, epochs: int = 1, sparsity: float = 0.8,
                      retrain_epochs: int = 1, lr: float = 0.1, retrain_lr: float = 0.03,
                      progress: bool = True) -> dict:
    """Train a row-reading LSTM, prune its recurrent and input weights, retrain with masks (notebook 02)."""
    settings = {"hidden": hidden, "train_digits": train_digits, "epochs": epochs, "sparsity": sparsity,
                "retrain_epochs": retrain_epochs, "lr": lr, "retrain_lr": retrain_lr}

    def compute() -> dict:
        torch.manual_seed(0)
        data, test = train_digits().subset(train_digits), test_digits()
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
