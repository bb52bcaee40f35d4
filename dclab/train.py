"""Training and evaluation loops, seeded and deterministic on the CPU, with progress bars.

``after_step(model)`` runs after every optimizer step: that is where a pruner puts
pruned weights back to zero (notebook 02) and a quantizer keeps codebooks shared.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
from torch import nn

from dclab.data import Digits
from dclab.progress import progress_bar


def augment_shift(x: torch.Tensor, max_shift: float, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels in x and y (a cheap, batched augmentation)."""
    n, _, h, w = x.shape
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * max_shift
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = shift[:, 0] * 2 / w
    theta[:, 1, 2] = shift[:, 1] * 2 / h
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return nn.functional.grid_sample(x, grid, padding_mode="border", align_corners=False)


def train(
    model: nn.Module,
    data: Digits,
    epochs: int,
    lr: float = 0.05,
    *,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    l1: float = 0.0,
    batch_size: int = 128,
    max_shift: float = 0.0,
    schedule: str = "cosine",
    seed: int = 0,
    after_step: Callable[[nn.Module], None] | None = None,
    parameters: list[torch.nn.Parameter] | list[dict] | None = None,
    eval_data: Digits | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    progress: bool = True,
    desc: str = "training",
) -> list[dict]:
    """Train with SGD (momentum, L2 weight decay, cosine or constant lr); returns one dict per epoch.

    ``l1`` adds an L1 penalty ``l1 * sum|p|`` over the optimised parameters, as its subgradient
    ``l1 * sign(p)`` added to each gradient (``weight_decay`` adds the L2 one's, ``weight_decay * p``;
    notebook 02 compares them for retraining). A weight at exactly zero gets no push from either.

    ``parameters`` restricts what is optimised (e.g. only the centroids of trained
    quantization); it may also be torch's parameter groups, dicts with their own ``"lr"`` (each follows
    the schedule from its own rate: the scales of trained ternary quantization); ``eval_data`` adds a test accuracy to each epoch's record;
    ``on_epoch(record)`` runs when an epoch's record is complete (a widget's progress).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    groups = list(parameters) if parameters is not None else [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    steps_per_epoch = math.ceil(len(data) / batch_size)
    total_steps = max(1, epochs * steps_per_epoch)
    history = []
    bar = progress_bar(total_steps, desc, enabled=progress)
    step = 0
    for epoch in range(epochs):
        model.train()
        start, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        for x, y in data.batches(batch_size, shuffle=True, seed=seed * 1000 + epoch):
            if max_shift > 0:
                x = augment_shift(x, max_shift, generator)
            if schedule == "cosine":
                for group, base in zip(optimizer.param_groups, base_lrs):
                    group["lr"] = base * 0.5 * (1 + math.cos(math.pi * step / total_steps))
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if l1:
                with torch.no_grad():
                    for p in params:
                        if p.grad is not None:
                            p.grad.add_(p.sign(), alpha=l1)
            optimizer.step()
            if after_step is not None:
                after_step(model)
            step += 1
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            bar.update(1)
        record = {
            "epoch": epoch + 1,
            "loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            "seconds": time.perf_counter() - start,
        }
        if eval_data is not None:
            record["test_accuracy"] = evaluate(model, eval_data)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"}, refresh=False)
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    bar.close()
    model.eval()
    return history


@torch.no_grad()
def predict(model: nn.Module, data: Digits, batch_size: int = 2000,
            cancelled: Callable[[], bool] | None = None) -> torch.Tensor | None:
    """Predicted labels for every digit in ``data``; None when ``cancelled()``, asked before each batch, says stop."""
    model.eval()
    labels = []
    for x, _ in data.batches(batch_size):
        if cancelled is not None and cancelled():
            return None
        labels.append(model(x).argmax(1))
    return torch.cat(labels)


def evaluate(model: nn.Module, data: Digits, batch_size: int = 2000,
             cancelled: Callable[[], bool] | None = None) -> float | None:
    """Accuracy in [0, 1] on every digit in ``data``.

    ``cancelled()`` is asked before each batch; when it says stop the pass ends and returns None (a live
    widget whose setting changed meanwhile, notebooks 02-03: nothing half-measured is returned).
    """
    predicted = predict(model, data, batch_size, cancelled)
    return None if predicted is None else (predicted == data.labels).float().mean().item()


def test_error(model: nn.Module, data: Digits) -> float:
    """Error rate in [0, 1] (the papers report this, in percent)."""
    return 1.0 - evaluate(model, data)


test_error.__test__ = False  # not a pytest test, despite its name
