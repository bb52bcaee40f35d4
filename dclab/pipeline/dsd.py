"""Dense-sparse-dense training (notebook 07, beyond the paper).

Han, Pool, Narang, Mao, Gong, Tang, Elsen, Vajda, Paluri, Tran, Catanzaro and Dally, "DSD: Dense-Sparse-Dense
Training for Deep Neural Networks" (ICLR 2017): from a trained network, (S) prune each layer by magnitude
(30% for their CNNs) and retrain the sparse network, then (D) release the mask, so the pruned weights restart
at zero and train again, and retrain the whole dense network at a lower rate. The result is a dense network
again, meant as a better start: here, a better start for Deep Compression's pipeline (``compress``).
Both phases are the pipeline's one retraining loop, ``compress.retrain_pruned``.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import nn

from dclab import models
from dclab.algorithms.prune import check_sparsity, magnitude_mask
from dclab.data import Digits, load_mnist
from dclab.pipeline.compress import check_layer_names, check_storable, retrain_pruned
from dclab.pipeline.config import BASELINE_LR

DSD_SPARSITY = 0.3
"""The sparse phase prunes this fraction of every layer (the DSD paper's rate for its CNNs)."""


@dataclass
class DSDResult:
    """``dsd``'s network (dense again), the sparse phase's masks, each phase's training record and the time it took."""

    model: nn.Module = field(repr=False)
    masks: dict[str, torch.Tensor] = field(repr=False)
    sparse_history: list[dict]
    dense_history: list[dict]
    seconds: float

    def __repr__(self) -> str:
        return (f"DSDResult({len(self.sparse_history)} sparse + {len(self.dense_history)} dense epochs, "
                f"{self.seconds:.0f} s)")


def dsd(
    model: nn.Module,
    train_data: Digits | None = None,
    *,
    sparsity: float | Mapping[str, float] = DSD_SPARSITY,
    sparse_epochs: int = 4,
    dense_epochs: int = 4,
    sparse_lr: float = BASELINE_LR / 5,
    dense_lr: float = BASELINE_LR / 10,
    batch_size: int = 128,
    max_shift: float = 2.0,
    seed: int = 0,
    progress: bool = True,
) -> DSDResult:
    """Dense-sparse-dense retraining of a trained ``model`` (not changed: a copy is trained) (notebook 07).

    Sparse phase: every compressible layer loses ``sparsity`` of its weights by magnitude (one number, or a dict
    by layer name; a layer left out stays dense) and the survivors retrain for ``sparse_epochs`` at ``sparse_lr``
    with the pruned weights held at exactly 0. Dense phase: the mask is released (the pruned weights restart from
    0) and every weight retrains for ``dense_epochs`` at ``dense_lr`` (the paper's lower rate; both cosine).
    """
    check_storable(model)
    layers_of = models.compressible_layers
    if isinstance(sparsity, Mapping):
        check_layer_names(sparsity, layers_of(model))
    for name, s in (sparsity.items() if isinstance(sparsity, Mapping) else [("", sparsity)]):
        check_sparsity(s, f" of layer {name!r}" if name else "")
    train_data = train_data if train_data is not None else load_mnist("train")
    start = time.perf_counter()
    net = copy.deepcopy(model).cpu()
    layers = layers_of(net)
    amount = {name: float(sparsity.get(name, 0.0)) if isinstance(sparsity, Mapping) else float(sparsity)
              for name in layers}
    masks = {name: magnitude_mask(module.weight, amount[name]) for name, module in layers.items() if amount[name] > 0}
    options = {"batch_size": batch_size, "max_shift": max_shift}
    sparse = retrain_pruned(net, masks, train_data, sparse_epochs, sparse_lr, seed=seed + 1, progress=progress,
                            desc="DSD sparse phase", **options)
    dense = retrain_pruned(net, {}, train_data, dense_epochs, dense_lr, seed=seed + 2, progress=progress,
                           desc="DSD dense phase", **options)
    return DSDResult(net.eval(), masks, sparse, dense, time.perf_counter() - start)
