"""Trained ternary quantization of a network's layers, written as a ``.dcz`` (notebook 07, beyond the paper).

``train_ternary`` makes the chosen layers (by default every fc layer) ternary, ``{-wn, 0, +wp}`` with trained
scales (``dclab.algorithms.ternary``, after Zhu, Han, Mao and Dally, ICLR 2017), training the latent weights, the
scales and every bias with the one training loop (``dclab.train.train``). The other layers are shared by k-means
as ``config`` says and stay fixed. A weight that is already 0 (a pruned network, such as a frontier file read
back) stays 0. The file is written by the pipeline's one encoder, ``encode_dcz``: a ternary layer is a pruned
layer with the codebook ``[0, -wn, +wp]``, stored at 2 bits per index (3 entries), Huffman-coded.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from typing import Sequence

import torch
from torch import nn

from dclab import models
from dclab.algorithms.quantize import apply_codebooks_, quantize_layer
from dclab.algorithms.ternary import DEFAULT_THRESHOLD, check_threshold, ternarize_, unternarize_
from dclab.data import Digits, load_mnist
from dclab.errors import DclabError
from dclab.pipeline.compress import check_layer_names, arch_of, check_storable, encode_dcz, round_biases_
from dclab.pipeline.config import BASELINE_LR, CompressionConfig
from dclab.pipeline.report import CompressionResult

TERNARY_BITS = 2
"""Bits per index of a ternary layer at fixed width: its codebook holds 0, -wn and +wp."""


def kept_masks(model: nn.Module) -> dict[str, torch.Tensor | None]:
    """Each compressible layer's nonzero weights (None for a layer with no zero): what a pruned network kept."""
    masks = {}
    for name, module in models.compressible_layers(model).items():
        mask = module.weight.detach() != 0
        masks[name] = None if bool(mask.all()) else mask
    return masks


def train_ternary(
    model: nn.Module,
    config: CompressionConfig | None = None,
    *,
    layers: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    epochs: int = 2,
    lr: float = BASELINE_LR / 5,
    scale_lr: float = BASELINE_LR / 50,
    train_data: Digits | None = None,
    test_data: Digits | None = None,
    arch: str | None = None,
    progress: bool = True,
) -> CompressionResult:
    """Ternary ``layers`` (default: the fc layers), trained for ``epochs`` (cosine, no weight decay), the rest shared
    as ``config`` says (default ``CompressionConfig.preset(arch)``): a ``.dcz`` (notebook 07).

    The latent weights and the biases train from ``lr``, the scales from ``scale_lr``, the pipeline's rate for
    centroids: a scale's gradient is the sum over all of its layer's weights on one side (at ``lr`` a LeNet-300-100
    layer's scales ran away within the first 150 steps).

    ``model`` is not changed. Its zero weights stay zero (its pruning is kept); ``threshold`` is the paper's t
    (a ternary weight is 0 within ``t * max|w|``). Every layer not ternary is shared by k-means at
    ``config``'s bits on its nonzero weights and held fixed; on a network read back from a ``.dcz`` that gives
    back the file's own codebooks (a layer with no more distinct values than centroids clusters to itself). The
    result's model holds exactly the file's weights; its report is measured from the file's bytes.
    """
    from dclab.train import test_error, train

    check_storable(model)
    check_threshold(threshold)
    arch = arch or arch_of(model)
    config = (config or CompressionConfig.preset(arch)).validate()
    net = copy.deepcopy(model).cpu()
    all_layers = models.compressible_layers(net)
    names = [n for n, m in all_layers.items() if models.layer_kind(m) == "fc"] if layers is None else list(layers)
    check_layer_names(dict.fromkeys(names), all_layers)
    if not names:
        raise DclabError("no layer to make ternary: name at least one (layers=['ip1', ...])")
    train_data = train_data if train_data is not None else load_mnist("train")
    if config.train_subset is not None:
        train_data = train_data.subset(config.train_subset)
    test_data = test_data if test_data is not None else load_mnist("test")
    start = time.perf_counter()
    error_before = test_error(net, test_data)

    masks = kept_masks(net)
    shared = {name: quantize_layer(module.weight.detach(), masks[name], config.bits_for(name, models.layer_kind(module)),
                                   config.init, seed=config.seed)
              for name, module in all_layers.items() if name not in names}
    apply_codebooks_(net, shared)
    for name in shared:
        all_layers[name].weight.requires_grad_(False)  # shared layers stay as the file will store them
    ternarize_(net, {name: masks[name] for name in names}, threshold)
    scales = [p for n, p in net.named_parameters() if n.endswith((".wp", ".wn"))]
    others = [p for n, p in net.named_parameters() if p.requires_grad and not n.endswith((".wp", ".wn"))]
    try:
        history = train(net, train_data, epochs, lr, parameters=[{"params": others}, {"params": scales, "lr": scale_lr}],
                        weight_decay=0.0, batch_size=config.batch_size,
                        max_shift=config.max_shift, seed=config.seed + 200, progress=progress,
                        desc="trained ternary quantization") if epochs else []
    finally:
        ternary = unternarize_(net)
        for name in shared:
            all_layers[name].weight.requires_grad_(True)
    round_biases_(net.eval(), config.bias_bits)
    error_after = test_error(net, test_data)

    stored = dataclasses.replace(config, layer_bits={**config.layer_bits, **dict.fromkeys(names, TERNARY_BITS)})
    meta = {"test_error_before": error_before, "test_error_after": error_after,
            "seconds": round(time.perf_counter() - start, 3), "config": stored.to_dict(),
            "ternary": {"layers": names, "threshold": threshold, "epochs": epochs, "lr": lr, "scale_lr": scale_lr,
                        "history": [round(r["loss"], 5) for r in history]}}
    data, report = encode_dcz(arch, net, {**shared, **ternary}, stored, meta)
    return CompressionResult(net, data, report, {**shared, **ternary}, stored)
