"""The test pass by stages: when only the last layers of a network change, the first ones are not rerun (notebooks 02, 03, 06).

A model's ``forward_stages()`` (``dclab.models``) cuts its forward pass after each layer. ``StagedAccuracy``
runs the test digits through those stages and keeps the outputs of the leading stages, each under the
identity of the weights that made it (a key per layer, chosen by the caller: the capstone's codebooks,
or a digest of the weights a widget measures). A later pass whose leading layers have the same keys starts
from the kept output: moving LeNet-5's fc layers does not rerun its convolutions. The logits are exactly
those of ``model(x)`` over ``dclab.train.evaluate``'s batches, so the accuracy is the same number.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Hashable, Literal, Mapping, Sequence

import torch
from torch import nn

from dclab import models
from dclab.data import Digits

__all__ = ["EVAL_BATCH", "MAX_CACHED_ACTIVATION_BYTES", "Superseded", "staged_forward", "weight_keys",
           "StagedAccuracy"]

EVAL_BATCH = 2000
"""The batch size of ``dclab.train.evaluate``: the same batches give bit-identical logits."""

MAX_CACHED_ACTIVATION_BYTES = 64 * 2**20
"""Activations larger than this (LeNet-5 after conv1: 115 MB) are recomputed, not kept."""

Stage = tuple[list[str], Callable[[torch.Tensor], torch.Tensor]]


class Superseded(Exception):
    """A test pass stopped because a newer setting replaced the one it was measuring."""


def staged_forward(model: nn.Module) -> list[Stage]:
    """``model.forward`` cut after each layer: ``[(layers the stage uses, stage function)]`` (notebook 06).

    The cut is the model's own ``forward_stages()`` (``dclab.models``), which its ``forward`` runs, so the
    stages in turn compute exactly ``model(x)``. A model without stages is one stage that uses all
    its layers.
    """
    if not hasattr(model, "forward_stages"):
        return [(list(models.compressible_layers(model)), model)]
    return [([name], fn) for name, fn in model.forward_stages()]


def weight_keys(state: Mapping[str, torch.Tensor], layers: Sequence[str]) -> dict[str, str]:
    """A digest per layer of the tensors named ``layer.*`` in ``state`` (its weight and bias): equal keys,
    equal weights. Tensors of no listed layer count with the first layer, so a change to them reruns all."""
    digests = {layer: hashlib.blake2b(digest_size=16) for layer in layers}
    for name in sorted(state):
        owner = name.split(".", 1)[0]
        digest = digests.get(owner, digests[layers[0]])
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().numpy().tobytes())
    return {layer: d.hexdigest() for layer, d in digests.items()}


class StagedAccuracy:
    """The test accuracy of ``model``, rerunning only the stages after the first layer whose key changed.

    ``keep="every"`` keeps the output of every stage but the last (each up to ``MAX_CACHED_ACTIVATION_BYTES``):
    for a page whose sliders move any layer (the capstone). ``keep="resume"`` keeps one: the input of the
    first stage that changed since the last pass, the one the next move of the same slider resumes from
    (the widgets of notebooks 02 and 03, which should not hold every stage's outputs for each reader).
    """

    def __init__(self, model: nn.Module, test_data: Digits, keep: Literal["every", "resume"] = "every") -> None:
        if keep not in ("every", "resume"):
            raise ValueError(f"keep is 'every' or 'resume', not {keep!r}")
        self.model, self.test_data, self.keep = model, test_data, keep
        self.stages = staged_forward(model)
        self.layers = [layer for layers, _ in self.stages for layer in layers]
        self.activations: dict[int, tuple[tuple, list[torch.Tensor]]] = {}
        self._last: tuple | None = None  # the per-stage keys of the last pass

    def accuracy(self, keys: Mapping[str, Hashable], load: Callable[[list[str]], None],
                 cancelled: Callable[[], bool] | None = None) -> float:
        """Accuracy on every test digit of the weights ``keys`` name (a key per layer).

        ``load(layers)`` must put those layers' weights into ``model`` (called before the pass with the
        layers of the stages that will run). ``cancelled()`` is asked between batches; when it says so the
        pass stops with ``Superseded`` and nothing half-measured is kept."""
        per_stage = tuple(tuple(keys[layer] for layer in layers) for layers, _ in self.stages)
        prefixes = [per_stage[: i + 1] for i in range(len(per_stage))]
        start, inputs = 0, None
        for i, prefix in enumerate(prefixes):  # start after the last stage whose kept output has these layers
            cached = self.activations.get(i)
            if cached is not None and cached[0] == prefix:
                start, inputs = i + 1, cached[1]
        if inputs is None:
            inputs = [x for x, _ in self.test_data.batches(EVAL_BATCH)]
        stages = range(start, len(self.stages))
        keep = {i: [] for i in stages if i in self._stages_to_keep(per_stage)}
        load([layer for layers, _ in self.stages[start:] for layer in layers])
        logits = []
        with torch.no_grad():
            for x in inputs:  # batch by batch through the remaining stages (cache-friendly)
                if cancelled is not None and cancelled():
                    raise Superseded("a newer setting replaced this one")
                for i in stages:
                    x = self.stages[i][1](x)
                    if i in keep:
                        if x.numel() * x.element_size() * len(inputs) > MAX_CACHED_ACTIVATION_BYTES:
                            del keep[i]  # too large to keep (LeNet-5 after conv1)
                        else:
                            keep[i].append(x)
                logits.append(x)
        if self.keep == "resume":
            wanted = self._stages_to_keep(per_stage)
            self.activations = {i: v for i, v in self.activations.items() if i in wanted}
        for i, outputs in keep.items():
            self.activations[i] = (prefixes[i], outputs)
        self._last = per_stage
        predicted = torch.cat([batch.argmax(1) for batch in logits])
        return (predicted == self.test_data.labels).float().mean().item()

    def _stages_to_keep(self, per_stage: tuple) -> set[int]:
        last = len(self.stages) - 1
        if self.keep == "every":
            return set(range(last))
        if self._last is None:
            return set()  # nothing moved yet: which stage a reader moves first is unknown
        changed = next((i for i, (a, b) in enumerate(zip(self._last, per_stage)) if a != b), None)
        if changed is None:  # the same weights again: keep what the last pass kept
            return set(self.activations)
        return {changed - 1} if changed >= 1 else set()
