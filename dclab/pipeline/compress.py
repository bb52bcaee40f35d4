"""The whole Deep Compression pipeline, from a trained model to a ``.dcz`` file (notebooks 04-06).

Han, Mao and Dally (ICLR 2016), Figure 1: prune (iteratively, retraining the
survivors), quantize by weight sharing and fine-tune the centroids (trained
quantization), then Huffman-code the indices and gaps.

``compress`` trains (minutes); ``compress_weights`` skips all training (prune +
k-means + encode, milliseconds) for the interactive widgets, and a
``WeightCache`` lets a slider reuse each layer's sorted weights.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from dclab import models
from dclab.algorithms.prune import (
    MagnitudeOrder,
    Pruner,
    magnitude_mask,
    threshold_mask,
)
from dclab.algorithms.quantize import (
    Codebook,
    SortedValues,
    apply_codebooks_,
    quantize_layer,
    share_weights_,
    unshare_weights_,
)
from dclab.codec import container
from dclab.codec.container import CompressedLayer, DczModel
from dclab.data import Digits, load_mnist
from dclab.errors import DclabError
from dclab.pipeline.config import DEFAULT_SPARSITY, FALLBACK_SPARSITY, CompressionConfig
from dclab.pipeline.report import CompressionReport, CompressionResult, measured_report


def arch_of(model: nn.Module) -> str:
    """The zoo name of a model (``"lenet300"``...) from its class; ``"custom:<ClassName>"`` for a network of
    your own (notebook 05), whose ``.dcz`` loads back with ``load_model(path, into=YourNet())``."""
    for name, builder in models.BUILDERS.items():
        if isinstance(builder, type) and type(model) is builder:
            return name
    return container.CUSTOM_ARCH + type(model).__name__


def check_storable(model: nn.Module) -> None:
    """Refuse, naming what and why, a model whose state a ``.dcz`` cannot hold (notebook 05).

    A ``.dcz`` stores the float32 weight and bias of every ``nn.Linear`` and ``nn.Conv2d`` (by module
    name) and nothing else: no BatchNorm statistics, no other parameters or buffers.
    """
    layers = models.compressible_layers(model)
    what = type(model).__name__
    if not layers:
        raise DclabError(f"a {what} has no nn.Linear or nn.Conv2d layer: nothing for a .dcz to store")
    if "" in layers:
        raise DclabError(f"the model is itself a {what}; wrap it (nn.Sequential(layer)) so that its layer has a name")
    stored = {f"{name}.{p}" for name in layers for p in ("weight", "bias")}
    owners = dict(model.named_modules())
    others: dict[str, list[str]] = {}
    for key, value in model.state_dict().items():
        if key not in stored:
            owner = type(owners.get(key.rpartition(".")[0], model)).__name__
            others.setdefault(owner, []).append(key)
        elif value.dtype != torch.float32:
            raise DclabError(f"{key} is {value.dtype}; a .dcz stores float32 weights: convert the model with .float()")
    if others:
        found = "; ".join(f"{owner}: {', '.join(keys[:4])}{f' and {len(keys) - 4} more' if len(keys) > 4 else ''}"
                          for owner, keys in others.items())
        raise DclabError(
            f"a .dcz stores only the weights and biases of nn.Linear and nn.Conv2d layers, but this {what} "
            f"also holds {found}. Fold each BatchNorm into the layer before it (as dclab.models.fold_batchnorm "
            "does for FireNet) and compress the folded network; any other layer must become nn.Linear or nn.Conv2d."
        )


def layer_sparsities(
    model: nn.Module, arch: str | None, config: CompressionConfig
) -> dict[str, float]:
    """The final sparsity of every compressible layer (quality converted on the current weights). Refuses a
    per-layer setting (sparsity, quality, ``layer_bits``) that names a layer the model does not have."""
    layers = models.compressible_layers(model)
    check_layer_names(config.layer_bits, layers)
    if config.quality is not None:
        quality = config.quality
        check_layer_names(quality, layers)
        out = {}
        for name, module in layers.items():
            q = quality.get(name) if isinstance(quality, Mapping) else quality
            if q is None:
                out[name] = 0.0
                continue
            w = module.weight.detach()
            pruned = 1 - threshold_mask(w, q).sum().item() / w.numel()  # the one quality rule (dclab.algorithms.prune)
            out[name] = min(pruned, 1 - 1 / w.numel())  # keep at least one weight
        return out
    sparsity = config.sparsity
    if sparsity is None:
        preset = DEFAULT_SPARSITY.get(arch or "", {})
        return {
            name: preset.get(name, FALLBACK_SPARSITY[models.layer_kind(module)])
            for name, module in layers.items()
        }
    if isinstance(sparsity, Mapping):
        check_layer_names(sparsity, layers)
        return {name: float(sparsity.get(name, 0.0)) for name in layers}
    return {name: float(sparsity) for name in layers}


def check_layer_names(per_layer: Any, layers: Mapping[str, nn.Module]) -> None:
    """Refuse a per-layer setting that names a layer the model lacks, naming the layers it has."""
    if isinstance(per_layer, Mapping):
        unknown = sorted(set(per_layer) - set(layers))
        if unknown:
            raise DclabError(f"the model has no layer {', '.join(unknown)}; its layers are {', '.join(layers)}")


def _schedule(final: float, step: int, steps: int) -> float:
    """Iterative pruning: the density falls geometrically, density_i = density ** (i / steps)."""
    return 1.0 - (1.0 - final) ** (step / steps)


def dcz_layers(
    model: nn.Module,
    codebooks: Mapping[str, Codebook],
    bits: Callable[[str, str], int],
    gap_bits: Callable[[str, str], int],
    bias_bits: int = 32,
    codebook_bits: int = 32,
) -> list[CompressedLayer]:
    """A model's codebooks as ``.dcz`` layers, in the model's layer order: the one place they are assembled
    (``compress``, ``compress_weights``, the capstone's session, notebook 03's experiments).

    ``bits(name, kind)`` is the width of a weight index; a pruned codebook (reserved zero) stores its
    gaps in ``gap_bits(name, kind)`` bits, a dense one stores every index. Biases go in as float32, or as
    float16 with ``bias_bits=16`` (round the model's first, ``round_biases_``, so it holds what the file does);
    centroids likewise with ``codebook_bits`` (``stored_codebooks``).
    """
    compressed = []
    for name, module in models.compressible_layers(model).items():
        if name not in codebooks:
            continue
        kind, book = models.layer_kind(module), codebooks[name]
        compressed.append(CompressedLayer.from_codebook(
            name, kind, book, bits=bits(name, kind),
            gap_bits=gap_bits(name, kind) if book.reserved_zero else 0,
            bias=None if module.bias is None else module.bias.detach(), bias_bits=bias_bits,
            codebook_bits=codebook_bits,
        ))
    return compressed


def stored_codebooks(codebooks: Mapping[str, Codebook], codebook_bits: int) -> dict[str, Codebook]:
    """The codebooks with their centroids as a ``.dcz`` stores them at ``codebook_bits`` (float16 rounds them,
    ``container.stored_centroids``); apply these to the model before measuring it, so it holds what the file does."""
    return {name: dataclasses.replace(book, centroids=container.stored_centroids(book.centroids, codebook_bits))
            for name, book in codebooks.items()}


def round_biases_(model: nn.Module, bias_bits: int) -> nn.Module:
    """Round the bias of every compressible layer as a ``.dcz`` stores it at ``bias_bits`` (in place)."""
    with torch.no_grad():
        for module in models.compressible_layers(model).values():
            if module.bias is not None:
                module.bias.copy_(container.stored_bias(module.bias.detach().float(), bias_bits))
    return model


def encode_dcz(
    arch: str,
    compressed: nn.Module,
    codebooks: dict[str, Codebook],
    config: CompressionConfig,
    meta: dict[str, Any],
) -> tuple[bytes, CompressionReport]:
    """The one ``.dcz`` encoder of a compressed model: encode both ways (fixed-width and Huffman), and with ANS
    when ``config.coder`` asks for it; return the configured file's bytes and the report measured from those bytes. ``compressed`` may be any
    network that ``check_storable`` accepts (``arch``: its zoo name, or ``arch_of``'s ``"custom:..."``)."""
    check_storable(compressed)
    missing = set(models.compressible_layers(compressed)) - set(codebooks)
    if missing:
        raise DclabError(f"no codebook for layer(s) {', '.join(sorted(missing))}")
    layers = dcz_layers(compressed, codebooks, config.bits_for, lambda name, kind: config.gap_bits_for(kind),
                        config.bias_bits, config.codebook_bits)
    fixed = container.to_bytes(arch, layers, huffman=False, meta=meta)
    coded = container.to_bytes(arch, layers, huffman=True, meta=meta)
    chosen = coded if config.huffman else fixed
    if config.coder == "ans":
        chosen = container.to_bytes(arch, layers, meta=meta, coder="ans")
    report = measured_report(container.from_bytes(coded), len(fixed), len(coded), len(chosen))
    return chosen, report


def finetune_centroids(
    model: nn.Module,
    codebooks: Mapping[str, Codebook],
    train_data: Digits,
    config: CompressionConfig,
    *,
    test_data: Digits | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    progress: bool = True,
) -> tuple[dict[str, Codebook], list[dict]]:
    """Trained quantization, the one implementation (``compress``, the capstone's fine-tune button; notebook 06).

    Shares ``model``'s layers through ``codebooks`` and trains only the centroids and biases
    (the indices stay, so pruned weights stay pruned; a centroid moves by the summed gradient of
    its weights) for ``config.finetune_epochs`` at ``config.finetune_lr`` (cosine, no weight decay).
    Afterwards ``model`` holds exactly the returned codebooks' weights. ``test_data`` adds a test
    accuracy to each epoch's record. Returns ``(codebooks, history)``.
    """
    from dclab.train import train

    share_weights_(model, dict(codebooks))
    history = []
    if config.finetune_epochs:
        params = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith(".original")]
        history = train(
            model, train_data, config.finetune_epochs, config.finetune_lr,
            batch_size=config.batch_size, max_shift=config.max_shift, seed=config.seed + 100,
            parameters=params, weight_decay=0.0, after_step=after_step, eval_data=test_data, on_epoch=on_epoch,
            progress=progress, desc="fine-tune centroids",
        )
    tuned = unshare_weights_(model)
    apply_codebooks_(model, tuned)  # exactly what the file stores
    return tuned, history


def retrain_pruned(
    model: nn.Module,
    masks: Mapping[str, torch.Tensor | None],
    train_data: Digits,
    epochs: int,
    lr: float,
    *,
    after_step: Callable[[nn.Module], None] | None = None,
    progress: bool = True,
    desc: str = "retrain",
    **train_options: Any,
) -> list[dict]:
    """Prune ``model`` in place with ``masks`` (None: dense) and retrain the survivors for ``epochs``; the
    pruned weights stay exactly 0 (a ``Pruner`` after every step, then ``after_step``). The one
    retraining loop: ``compress``'s iterative pruning, the retrained ladder, notebook 02's experiments.
    ``train_options`` go to ``dclab.train.train`` (batch_size, max_shift, seed, eval_data, l1...)."""
    from dclab.train import train

    pruner = Pruner(model, {n: m for n, m in masks.items() if m is not None})

    def step(m: nn.Module) -> None:
        pruner.apply()
        if after_step is not None:
            after_step(m)

    try:
        if not epochs:
            return []
        return train(model, train_data, epochs, lr, after_step=step, progress=progress, desc=desc, **train_options)
    finally:
        pruner.remove()


def compress(
    model: nn.Module,
    config: CompressionConfig | None = None,
    *,
    train_data: Digits | None = None,
    test_data: Digits | None = None,
    arch: str | None = None,
    progress: bool = True,
) -> CompressionResult:
    """Prune + retrain, quantize + fine-tune centroids, Huffman-code: a ``.dcz`` (notebook 05).

    ``model`` is not changed: a copy is compressed. Training uses MNIST's training
    digits (``config.train_subset`` of them if set); errors are measured on the test
    digits. Without a config, ``CompressionConfig.preset(arch)``. The result's model
    has exactly the weights stored in the ``.dcz``. Any network whose layers are ``nn.Linear`` and
    ``nn.Conv2d`` will do (``check_storable``); one not in the zoo gets the per-kind defaults.
    """
    from dclab.train import test_error

    check_storable(model)  # before minutes of training, not after
    arch = arch or arch_of(model)
    config = (config or CompressionConfig.preset(arch)).validate()
    start = time.perf_counter()
    train_data = train_data if train_data is not None else load_mnist("train")
    if config.train_subset is not None:
        train_data = train_data.subset(config.train_subset)
    test_data = test_data if test_data is not None else load_mnist("test")

    net = copy.deepcopy(model).cpu()
    layers = models.compressible_layers(net)
    error_before = test_error(net, test_data)
    final = layer_sparsities(net, arch, config)

    # 1. prune iteratively, retraining the survivors after each step (pruned weights stay 0)
    masks: dict[str, torch.Tensor | None] = {name: None for name in layers}
    for step in range(1, config.prune_steps + 1):
        masks = {
            name: magnitude_mask(module.weight, _schedule(final[name], step, config.prune_steps))
            if final[name] > 0 else None
            for name, module in layers.items()
        }
        retrain_pruned(net, masks, train_data, config.retrain_epochs, config.retrain_lr,
                       batch_size=config.batch_size, max_shift=config.max_shift, seed=config.seed + step,
                       progress=progress, desc=f"prune step {step}/{config.prune_steps}: retrain")

    # 2. share weights by k-means, then fine-tune the centroids (and biases): trained quantization
    codebooks = {
        name: quantize_layer(
            module.weight.detach(), masks[name], config.bits_for(name, models.layer_kind(module)), config.init,
            seed=config.seed,
        )
        for name, module in layers.items()
    }
    codebooks, _ = finetune_centroids(net, codebooks, train_data, config, progress=progress)
    codebooks = stored_codebooks(codebooks, config.codebook_bits)
    apply_codebooks_(net, codebooks)  # unchanged at 32 bits; float16-rounded centroids at 16
    round_biases_(net.eval(), config.bias_bits)
    error_after = test_error(net, test_data)

    # 3. encode
    meta = {
        "test_error_before": error_before,
        "test_error_after": error_after,
        "seconds": round(time.perf_counter() - start, 3),
        "config": config.to_dict(),
    }
    data, report = encode_dcz(arch, net, codebooks, config, meta)
    return CompressionResult(net, data, report, codebooks, config)


class WeightCache:
    """A model's weights, each layer sorted once, for repeated ``compress_weights`` calls (notebook 05).

    A slider changes the settings; the cache keeps what does not change: the
    original weights and their sorted values (so k-means never sorts again).
    """

    def __init__(self, model: nn.Module, arch: str | None = None) -> None:
        check_storable(model)
        self.model = model
        self.arch = arch or arch_of(model)
        self.layers = models.compressible_layers(model)
        self.weights = {name: m.weight.detach().clone().cpu() for name, m in self.layers.items()}
        self.sorted = {name: SortedValues.of(w) for name, w in self.weights.items()}
        self.kinds = {name: models.layer_kind(m) for name, m in self.layers.items()}
        self.by_magnitude = {name: MagnitudeOrder(w) for name, w in self.weights.items()}

    def mask(self, name: str, sparsity: float) -> torch.Tensor:
        """``magnitude_mask(weight, sparsity)``, cut from the layer's cached ``MagnitudeOrder``."""
        return self.by_magnitude[name].mask(sparsity)

    def __repr__(self) -> str:
        return f"WeightCache({self.arch}, layers={list(self.layers)})"


def compress_weights(
    model: nn.Module,
    config: CompressionConfig | None = None,
    cache: WeightCache | None = None,
    test_data: Digits | None = None,
) -> tuple[nn.Module, bytes, CompressionReport]:
    """Prune + k-means + encode without any training: ``(model, dcz bytes, report)`` (notebook 05).

    Fast enough for a slider (tens of milliseconds for LeNet-300-100 with a
    ``WeightCache``). ``test_data`` adds the test error after compression.
    """
    config = (config or CompressionConfig()).validate()
    cache = cache if cache is not None and cache.model is model else WeightCache(model)
    final = layer_sparsities(model, cache.arch, config)
    masks: dict[str, torch.Tensor | None] = {}
    codebooks = {}
    for name, w in cache.weights.items():
        masks[name] = cache.mask(name, final[name]) if final[name] > 0 else None
        codebooks[name] = quantize_layer(
            w, masks[name], config.bits_for(name, cache.kinds[name]), config.init,
            seed=config.seed, presorted=cache.sorted[name],
        )
    codebooks = stored_codebooks(codebooks, config.codebook_bits)
    net = round_biases_(apply_codebooks_(copy.deepcopy(model).cpu().eval(), codebooks), config.bias_bits)
    error = None
    if test_data is not None:
        from dclab.train import test_error

        error = test_error(net, test_data)
    meta = {"test_error_after": error, "config": config.to_dict()}
    data, report = encode_dcz(cache.arch, net, codebooks, config, meta)
    return net, data, report


def load_model(
    path_or_bytes: str | os.PathLike | bytes | bytearray | DczModel, into: nn.Module | None = None
) -> nn.Module:
    """The model stored in a ``.dcz`` (bytes or a path), in eval mode (notebook 05).

    A zoo network is rebuilt by name; a network of your own (``arch`` ``"custom:..."``) needs its
    architecture: ``into=YourNet()``, whose weights are replaced in place and which is returned. Either
    way the names and shapes must match the file's exactly. Nothing in the file is executed: the class
    name it records only labels messages. The weights equal the compressed ones bit for bit:
    ``centroids[indices]``, biases as stored.
    """
    if isinstance(path_or_bytes, DczModel):
        dcz = path_or_bytes
    elif isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        dcz = container.from_bytes(path_or_bytes)
    else:
        path = Path(path_or_bytes)
        if not path.is_file():
            raise DclabError(f"no such file: {path}; compress a model first (python -m dclab compress lenet300)")
        dcz = container.read_dcz(path)
    if into is None:
        if dcz.arch not in models.BUILDERS:
            own = dcz.arch.removeprefix(container.CUSTOM_ARCH)
            raise DclabError(
                f"this .dcz holds a network of your own ({own!r}), not one of the zoo's "
                f"({', '.join(models.BUILDERS)}); pass its architecture: load_model(path, into={own}())"
            )
        model = models.build(dcz.arch)
    elif isinstance(into, nn.Module):
        model = into
    else:
        raise DclabError(f"into must be a torch nn.Module (a fresh instance of your network), not {type(into).__name__}")
    _load_state(model, dcz)
    return model.eval()


def _load_state(model: nn.Module, dcz: DczModel) -> None:
    """``load_state_dict`` of the file's weights, after checking every name and shape (missing, unexpected, mismatched)."""
    state = dcz.state_dict()
    have = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state.items()}
    missing = [f"{k} {have[k]}" for k in have if k not in stored]
    unexpected = [f"{k} {stored[k]}" for k in stored if k not in have]
    mismatched = [f"{k} (file {stored[k]}, model {have[k]})" for k in stored if k in have and stored[k] != have[k]]
    if missing or unexpected or mismatched:
        problems = [f"{label}: {', '.join(items)}" for label, items in (
            ("in the model, not in the file", missing),
            ("in the file, not in the model", unexpected),
            ("shapes differ", mismatched),
        ) if items]
        raise DclabError(
            f"this .dcz ({dcz.arch}) does not fit a {type(model).__name__}: {'; '.join(problems)}. Pass a fresh "
            "instance of the network it was compressed from (same layer names and shapes): load_model(path, into=...)"
        )
    model.load_state_dict(state)
