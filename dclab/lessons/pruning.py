"""The experiments of notebook 02 (pruning), cached by their settings (``dclab.lessons.store``).

Sizes are measured: a pruned layer is really encoded in the relative-index sparse format
(``dclab.codec.sparse.encode_pruned``: gaps + float32 values). Accuracies are on all 10,000 MNIST
test digits unless a ``test_subset`` says otherwise. Long loops show progress bars (``dclab.progress``).
The retraining comparisons (L2 vs L1, the learning rate) retrain on the first ``RETRAIN_SUBSET``
training digits for one epoch, so that all of them take seconds.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

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
    test_set,
    train_set,
)
from dclab.pipeline.compress import retrain_pruned
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
    **train_options: Any,
) -> list[dict]:
    """Prune ``model`` in place with ``masks`` and retrain the survivors, masks kept (notebook 02).

    ``train_options`` go to ``dclab.train.train`` (e.g. ``weight_decay=0.0, l1=5e-4``).
    """
    return retrain_pruned(model, masks, data, epochs, lr, after_step=after_step, progress=progress,
                          desc="retraining", eval_data=eval_data, seed=seed, **train_options)


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
        prune_and_retrain(model, masks, train_set(), epochs, lr, progress=progress)

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
        test = test_set()
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
                prune_and_retrain(m, masks, train_set(), epochs, lr, progress=False)

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
    test_subset: int | None = None,
) -> dict:
    """Accuracy when one layer alone is pruned to each sparsity, no retraining (notebook 02).

    ``test_subset`` evaluates on the first that many test digits instead of all 10,000 (LeNet-5's
    convolutions take seconds per pass on a CPU). The result names each layer's kind (conv or fc).
    """
    sparsities = [float(s) for s in sparsities]
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "sparsities": sparsities}
    if test_subset is not None:  # absent otherwise, so results cached before this option stay valid
        settings["test_subset"] = int(test_subset)

    def compute() -> dict:
        base = copy.deepcopy(zoo.pretrained(arch, progress=progress))
        test = test_set() if test_subset is None else test_set().subset(int(test_subset))
        layers = list(prune.prunable_weights(base))
        bar = progress_bar(len(layers) * len(sparsities), "sensitivity", enabled=progress)
        scan = prune.sensitivity_scan(base, lambda m: evaluate(m, test), sparsities,
                                      callback=lambda *_: bar.update())
        bar.close()
        sizes = {n: int(w.numel()) for n, w in prune.prunable_weights(base).items()}
        kinds = {n: layer_kind(m) for n, m in compressible_layers(base).items()}
        return {"sparsity": sparsities, "accuracy": scan, "weights": sizes, "kinds": kinds,
                "baseline": evaluate(base, test), "test_digits": len(test)}

    return cached_result("sensitivity", settings, compute)


def sensitivity_summary(sens: Mapping, at: float = 0.8) -> str:
    """Sentences saying which layer loses most and least at sparsity ``at``, conv vs fc (notebook 02)."""
    i = min(range(len(sens["sparsity"])), key=lambda k: abs(sens["sparsity"][k] - at))
    s, base = sens["sparsity"][i], sens["baseline"]
    loss = {layer: 100 * (base - acc[i]) for layer, acc in sens["accuracy"].items()}
    order = sorted(loss, key=loss.get, reverse=True)
    kinds = sens.get("kinds", {})

    def name(layer: str) -> str:
        return f"{layer} ({kinds[layer]})" if layer in kinds else layer

    lines = [f"Pruned alone to {s:.0%} (no retraining), {name(order[0])} loses most: "
             f"{100 * base:.2f}% -> {100 * (base - loss[order[0]] / 100):.2f}% ({loss[order[0]]:.2f} points); "
             f"{name(order[-1])} loses least ({loss[order[-1]]:.2f} points)."]
    by_kind = {k: [loss[n] for n in loss if kinds.get(n) == k] for k in ("conv", "fc")}
    if all(by_kind.values()):
        conv, fc = (sum(v) / len(v) for v in by_kind.values())
        more = "conv" if conv > fc else "fc"
        lines.append(f"On average a conv layer loses {conv:.2f} points and an fc layer {fc:.2f}: "
                     f"the {more} layers are the more sensitive here.")
    n = sens.get("test_digits")
    if n:
        lines.append(f"(Accuracy on {n:,} test digits.)")
    return "\n".join(lines)


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
        data, test = train_set().subset(train_digits), test_set()
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


# ---------------------------------------------------------------- how to retrain (notebook 02)

RETRAIN_SUBSET = 20_000
"""Training digits the retraining comparisons use (the first ones): enough to recover most accuracy, and cheap."""


def baseline_masks(arch: str = "lenet300", sparsity: float = 0.95, scope: str = "global") -> dict[str, torch.Tensor]:
    """Magnitude masks of the trained baseline, by layer (notebook 02's retraining comparisons)."""
    return _masks(zoo.pretrained(arch, progress=False), sparsity, scope)


def _retrained(arch: str, masks: Mapping[str, torch.Tensor], train_subset: int, epochs: int, lr: float,
               after_step: Callable[[nn.Module], None] | None = None, **train_options: Any) -> nn.Module:
    model = copy.deepcopy(zoo.pretrained(arch, progress=False))
    data = train_set().subset(train_subset)
    prune_and_retrain(model, masks, data, epochs, lr, after_step=after_step, progress=False, **train_options)
    return model


def _survivor_stats(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> tuple[float, int]:
    """(mean |w| of the kept weights, how many pruned weights are not exactly zero: 0 when masks hold)."""
    weights = prune.prunable_weights(model)
    kept = torch.cat([weights[n].detach()[m] for n, m in masks.items()])
    leaked = sum(int((weights[n].detach()[~m] != 0).sum()) for n, m in masks.items())
    return float(kept.abs().mean()), leaked


def regularization_comparison(
    arch: str = "lenet300",
    sparsity: float = 0.95,
    strengths: Sequence[float] = (5e-4, 5e-3, 2e-2, 5e-2),
    train_subset: int = RETRAIN_SUBSET,
    epochs: int = 1,
    lr: float = RETRAIN_LR,
    scope: str = "global",
    progress: bool = True,
) -> dict:
    """Retraining a pruned network with L2 weight decay vs an L1 penalty of the same strength (notebook 02).

    Both runs of a strength start from the same pruned baseline and retrain with the same data, epochs
    and learning rate; only the penalty differs (``train(weight_decay=...)`` or ``train(l1=...)``).
    Returns test accuracies, the mean |w| of the survivors, and the count of pruned weights that came
    back (always 0: the masks hold).
    """
    strengths = [float(x) for x in strengths]
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "sparsity": float(sparsity),
                "strengths": strengths, "train_subset": train_subset, "epochs": epochs, "lr": lr, "scope": scope}

    def compute() -> dict:
        base, test = zoo.pretrained(arch, progress=False), test_set()
        masks = _masks(base, sparsity, scope)
        out = {"sparsity": float(sparsity), "strength": strengths, "baseline": evaluate(base, test),
               "no_retraining": evaluate(masked_copy(base, masks), test),
               "kept": {n: int(m.sum()) for n, m in masks.items()}, "train_digits": train_subset}
        bar = progress_bar(2 * len(strengths), "L2 vs L1", enabled=progress)
        for penalty in ("l2", "l1"):
            out[penalty], out[f"{penalty}_mean_abs"], out[f"{penalty}_pruned_nonzero"] = [], [], []
            for x in strengths:
                options = {"weight_decay": x} if penalty == "l2" else {"weight_decay": 0.0, "l1": x}
                model = _retrained(arch, masks, train_subset, epochs, lr, **options)
                mean_abs, leaked = _survivor_stats(model, masks)
                out[penalty].append(evaluate(model, test))
                out[f"{penalty}_mean_abs"].append(mean_abs)
                out[f"{penalty}_pruned_nonzero"].append(leaked)
                bar.update()
        bar.close()
        return out

    return cached_result("regularization", settings, compute)


def retrain_lr_comparison(
    arch: str = "lenet300",
    sparsity: float = 0.95,
    factors: Sequence[float] = (1.0, 0.1, 0.01),
    train_subset: int = RETRAIN_SUBSET,
    epochs: int = 1,
    n_points: int = 10,
    scope: str = "global",
    progress: bool = True,
) -> dict:
    """Retraining a pruned network at ``factor`` x the original learning rate, same budget (notebook 02).

    The papers' rule is 1/10 (``RETRAIN_LR``). Each run records the test accuracy at ``n_points``
    steps spread over the retraining, so the figure shows how fast each rate recovers.
    """
    factors = [float(f) for f in factors]
    settings = {"model": arch, "baseline": baseline_fingerprint(arch), "sparsity": float(sparsity),
                "factors": factors, "train_subset": train_subset, "epochs": epochs, "n_points": n_points,
                "scope": scope, "base_lr": BASELINE_LR}

    def compute() -> dict:
        base, test = zoo.pretrained(arch, progress=False), test_set()
        masks = _masks(base, sparsity, scope)
        total = epochs * -(-train_subset // 128)  # train()'s default batch size
        at = {round(total * (k + 1) / n_points) for k in range(n_points)}
        out = {"sparsity": float(sparsity), "factor": factors, "lr": [BASELINE_LR * f for f in factors],
               "baseline": evaluate(base, test), "no_retraining": evaluate(masked_copy(base, masks), test),
               "steps": [0] + sorted(at), "curves": [], "accuracy": [], "pruned_nonzero": [],
               "train_digits": train_subset}
        bar = progress_bar(len(factors), "retraining rates", enabled=progress)
        for f in factors:
            curve, step = [out["no_retraining"]], [0]

            def record(m: nn.Module) -> None:
                step[0] += 1
                if step[0] in at:
                    curve.append(evaluate(m, test))
                    m.train()

            model = _retrained(arch, masks, train_subset, epochs, BASELINE_LR * f, after_step=record)
            out["curves"].append(curve)
            out["accuracy"].append(evaluate(model, test))
            out["pruned_nonzero"].append(_survivor_stats(model, masks)[1])
            bar.update()
        bar.close()
        return out

    return cached_result("retrain_lr", settings, compute)


def regularization_summary(res: Mapping) -> str:
    """Sentences comparing L2 and L1 retraining, built from ``regularization_comparison`` (notebook 02)."""
    lines = [f"{100 * res['sparsity']:.0f}% pruned: {100 * res['no_retraining']:.2f}% before retraining "
             f"(unpruned {100 * res['baseline']:.2f}%); one epoch on {res['train_digits']:,} digits, same budget each."]
    for x, l2, l1, a2, a1 in zip(res["strength"], res["l2"], res["l1"], res["l2_mean_abs"], res["l1_mean_abs"]):
        diff = 100 * (l2 - l1)
        verdict = ("the same accuracy" if abs(diff) < 0.005 else
                   f"L2 ahead by {diff:.2f} points" if diff > 0 else f"L1 ahead by {-diff:.2f} points")
        lines.append(f"strength {x:g}: L2 {100 * l2:.2f}%, L1 {100 * l1:.2f}% ({verdict}); "
                     f"mean |w| kept: L2 {a2:.4f}, L1 {a1:.4f}")
    leaked = sum(res["l2_pruned_nonzero"]) + sum(res["l1_pruned_nonzero"])
    lines.append(f"Pruned weights that came back in any run: {leaked}.")
    return "\n".join(lines)


def lr_summary(res: Mapping) -> str:
    """Sentences comparing the retraining learning rates, built from ``retrain_lr_comparison`` (notebook 02)."""
    parts = [f"lr {lr:g} ({'original' if f == 1 else f'1/{round(1 / f)}'}): {100 * a:.2f}%"
             for f, lr, a in zip(res["factor"], res["lr"], res["accuracy"])]
    best = max(range(len(res["factor"])), key=lambda i: res["accuracy"][i])
    f = res["factor"][best]
    which = "the original rate" if f == 1 else f"1/{round(1 / f)} of the original rate"
    return (f"After one epoch on {res['train_digits']:,} digits ({100 * res['sparsity']:.0f}% pruned, "
            f"{100 * res['no_retraining']:.2f}% before retraining, unpruned {100 * res['baseline']:.2f}%): "
            + "; ".join(parts) + f".\nWith this budget {which} recovers most.")


class DropoutRow(NamedTuple):
    """One layer of ``retrain_dropout_table``: C_io, C_ir and the dropout rate the rule gives."""

    layer: str
    connections: int  # C_io, the layer's connections before pruning
    kept: int  # C_ir, after pruning
    dropout: float  # D_r = D_o * sqrt(C_ir / C_io)

    @property
    def density(self) -> float:
        return self.kept / self.connections


def retrain_dropout_table(masks: Mapping[str, torch.Tensor], p_original: float = 0.5) -> list[DropoutRow]:
    """The pruning paper's dropout rule for retraining, per layer: D_r = D_o sqrt(C_ir / C_io) (notebook 02).

    For a fully connected layer C_i = N_i N_(i-1) is its weight count; the rule itself is
    ``dclab.algorithms.prune.retrain_dropout``.
    """
    return [DropoutRow(name, m.numel(), int(m.sum()), prune.retrain_dropout(p_original, int(m.sum()), m.numel()))
            for name, m in masks.items()]


def format_dropout_table(rows: Sequence[DropoutRow], p_original: float = 0.5) -> str:
    """``retrain_dropout_table`` as a text table (notebook 02)."""
    lines = [f"{'layer':<6} {'C_io':>9} {'C_ir':>8} {'kept':>6}  D_r (D_o = {p_original})"]
    lines += [f"{r.layer:<6} {r.connections:>9,} {r.kept:>8,} {r.density:>6.1%}  {r.dropout:.3f}" for r in rows]
    if rows:
        low = min(rows, key=lambda r: r.density)
        lines.append(f"{low.layer} keeps the fewest of its connections ({low.density:.1%}), so the rule drops its "
                     f"dropout most: from {p_original:g} to {low.dropout:.3f}.")
    return "\n".join(lines)


def masked_step_demo(step_fn: Callable, arch: str = "lenet300", layer: str = "ip2", sparsity: float = 0.95,
                     lr: float = RETRAIN_LR, batch_size: int = 128) -> dict:
    """One retraining step of a pruned layer with ``step_fn(w, grad, mask, lr)`` on a real batch (notebook 02).

    The network is pruned to ``sparsity`` (one global threshold); only ``layer`` takes the step.
    Returns the batch's loss before and after the step, how many pruned weights are not zero after it,
    and how many kept weights moved.
    """
    masks = baseline_masks(arch, sparsity)
    model, mask = masked_copy(zoo.pretrained(arch, progress=False), masks), masks[layer]  # the whole network pruned
    weight = prune.prunable_weights(model)[layer]
    x, y = next(train_set().subset(batch_size).batches(batch_size))  # reads only these digits
    loss = nn.functional.cross_entropy(model(x), y)
    grad, = torch.autograd.grad(loss, weight)
    before = weight.detach().clone()
    after = torch.as_tensor(step_fn(before.clone(), grad, mask, lr)).detach()
    with torch.no_grad():
        weight.copy_(after)
        loss_after = nn.functional.cross_entropy(model(x), y).item()
    return {"layer": layer, "loss_before": loss.item(), "loss_after": loss_after,
            "pruned": int((~mask).sum()), "pruned_nonzero": int((after[~mask] != 0).sum()),
            "kept": int(mask.sum()), "kept_moved": int((after[mask] != before[mask]).sum())}


def curves_summary(curves: Mapping, last: int = 2) -> str:
    """Lines for notebook 02 from ``pruning_curves``: the ``last`` sparsities, pruned alone, retrained, iterative."""
    n = len(curves["sparsity"])
    return "\n".join(
        f"{curves['sparsity'][i]:.0%} pruned: no retraining {curves['no_retraining'][i]:.2%}, retrained once "
        f"{curves['retrained'][i]:.2%}, iterative {curves['iterative'][i]:.2%} (baseline {curves['baseline']:.2%})"
        for i in range(max(0, n - last), n))
