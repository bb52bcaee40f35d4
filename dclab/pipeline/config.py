"""How to compress: ``CompressionConfig`` and the defaults behind it (notebooks 04-06).

The papers' per-layer sparsities and gap bits come from ``dclab.paper``; the sparsities dclab uses
when a config names none were tuned on MNIST (benchmarks/table1.py).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import InitVar, asdict, dataclass, field
from typing import Any, Mapping

from dclab import paper
from dclab.algorithms.prune import (
    check_quality,
    check_sparsity,
)
from dclab.algorithms.quantize import (
    ALL_INITS,
    DEFAULT_BITS,
    check_bits,
)
from dclab.codec.container import BIAS_BITS, CODEBOOK_BITS, CODERS
from dclab.deprecation import warn_renamed
from dclab.errors import DclabError

PAPER_SPARSITY: dict[str, dict[str, float]] = paper.SPARSITY
"""The papers' per-layer sparsities (``dclab.paper``)."""


DEFAULT_SPARSITY: dict[str, dict[str, float]] = {
    # tuned on MNIST (benchmarks/table1.py): beyond the papers' sparsity, within their error
    "lenet300": {"ip1": 0.95, "ip2": 0.93, "ip3": 0.75},
    "lenet5": {"conv1": 0.40, "conv2": 0.90, "ip1": 0.96, "ip2": 0.85},
}
"""The per-layer sparsities ``compress`` uses when the config names none."""


PRESETS: dict[str, dict[str, Any]] = {
    # LeNet-300-100 trains fast, so it affords more, longer retraining steps
    "lenet300": {"prune_steps": 4, "retrain_epochs": 4},
    "lenet5": {"prune_steps": 3, "retrain_epochs": 2},
}
"""Training settings per model for ``CompressionConfig.preset`` (benchmarks/table1.py)."""


FRONTIER: dict[str, dict[str, Any]] = {
    # issue 15, tuned on MNIST (benchmarks/frontier.py): past the paper's ratio at the paper's error, from real files
    "lenet300": {"sparsity": {"ip1": 0.97, "ip2": 0.95, "ip3": 0.8}, "fc_bits": 4, "fc_gap_bits": 6,
                 "prune_steps": 6, "retrain_epochs": 6},
    "lenet5": {"sparsity": {"conv1": 0.4, "conv2": 0.93, "ip1": 0.985, "ip2": 0.9}, "conv_bits": 5, "fc_bits": 4,
               "fc_gap_bits": 6, "prune_steps": 6, "retrain_epochs": 4},
}
"""The ``frontier`` recipe: higher sparsity, fewer bits, more gradual pruning (notebook 07)."""


NOLOSS: dict[str, dict[str, Any]] = {
    # issue 15, chosen on the MNIST test set (benchmarks/noloss.py): the largest ratio found whose file, read back,
    # errs at most 0.1 point above the network's own baseline; the papers' per-layer proportions (ladder.rung_sparsities),
    # the frontier recipe's longer schedule
    "lenet300": {"prune_steps": 6, "retrain_epochs": 6, "sparsity": {"ip1": 0.9, "ip2": 0.8875, "ip3": 0.675},
                 "conv_bits": 8, "fc_bits": 4, "bias_bits": 16},
    "lenet5": {"prune_steps": 6, "retrain_epochs": 4, "sparsity": {"conv1": 0.505, "conv2": 0.91, "ip1": 0.94, "ip2": 0.8575},
               "conv_bits": 5, "fc_bits": 4, "bias_bits": 16},
}
"""The ``noloss`` recipe: no loss against the network's own baseline, float16 biases (notebook 07)."""


RECIPES: dict[str, dict[str, dict[str, Any]]] = {"default": PRESETS, "frontier": FRONTIER, "noloss": NOLOSS}
"""``CompressionConfig.preset(arch, recipe)``: the tuned settings by recipe, then by model."""


ADDED_SETTINGS = {"bias_bits": 32, "codebook_bits": 32, "coder": "huffman"}
"""Settings added after dclab 1, with the default that behaves as dclab 1 did. ``to_dict`` leaves out each one at
that default, so the metadata of every file made before (and the cache keys made from it) stays the same."""


FALLBACK_SPARSITY = {"conv": 0.6, "fc": 0.9}
"""For a model without a preset: by layer kind."""


DEFAULT_GAP_BITS = dict(paper.GAP_BITS)
"""The paper's bits per sparse gap: 8 for conv layers, 5 for fc layers."""


BASELINE_LR = 0.05  # the zoo's training rate


@dataclass
class CompressionConfig:
    """How to compress (notebook 05). ``CompressionConfig.preset("lenet5")`` gives the tuned settings.

    ``sparsity`` (fraction removed) or ``quality`` (threshold in stds of the layer's
    weights): one number for every layer or a dict by layer name; ``None`` uses the
    model's ``DEFAULT_SPARSITY``. Pruning reaches it in ``prune_steps`` steps (the
    density falls geometrically), each followed by ``retrain_epochs`` of retraining
    with the survivors kept (cosine schedule from ``retrain_lr``; the papers retrain
    at 1/10 of the original rate, 1/5 recovered more here). Then the weights are
    shared (``conv_bits``/``fc_bits``, ``init``) and the centroids fine-tuned for
    ``finetune_epochs`` from ``finetune_lr`` (small: a centroid's gradient is the
    sum over all the weights that share it). ``bias_bits=16`` stores the biases as float16 (a
    version-2 ``.dcz``), ``codebook_bits=16`` the centroids (version 3); the model is measured with them
    so rounded. ``coder="ans"`` codes the indices and gaps with ANS instead of Huffman (version 3,
    notebook 07); ``huffman=False`` stores them at fixed width.
    """

    sparsity: float | dict[str, float] | None = None
    quality: float | dict[str, float] | None = None
    conv_bits: int = DEFAULT_BITS["conv"]
    fc_bits: int = DEFAULT_BITS["fc"]
    layer_bits: dict[str, int] = field(default_factory=dict)
    conv_gap_bits: int = DEFAULT_GAP_BITS["conv"]
    fc_gap_bits: int = DEFAULT_GAP_BITS["fc"]
    prune_steps: int = 3
    retrain_epochs: int = 2
    retrain_lr: float = BASELINE_LR / 5
    finetune_epochs: int = 1
    finetune_lr: float = BASELINE_LR / 50
    init: str = "linear"
    huffman: bool = True
    bias_bits: int = 32
    codebook_bits: int = 32
    coder: str = "huffman"
    max_shift: float = 2.0
    batch_size: int = 128
    train_subset: int | None = None
    seed: int = 0
    conv_index_bits: InitVar[int | None] = None  # dclab 1's names for the gap bits: accepted, with a warning
    fc_index_bits: InitVar[int | None] = None

    def __post_init__(self, conv_index_bits: int | None = None, fc_index_bits: int | None = None) -> None:
        for old, new, value in (("conv_index_bits", "conv_gap_bits", conv_index_bits),
                                ("fc_index_bits", "fc_gap_bits", fc_index_bits)):
            if value is not None:
                warn_renamed(old, new, stacklevel=4)
                setattr(self, new, value)
        self.validate()

    def validate(self) -> "CompressionConfig":
        """Raise DclabError for any setting out of range; return self."""
        if self.sparsity is not None and self.quality is not None:
            raise DclabError("give sparsity or quality, not both")
        for name, value in _per_layer_items(self.sparsity):
            check_sparsity(value, f" of layer {name!r}" if name else "")
        for name, value in _per_layer_items(self.quality):
            check_quality(value, f" of layer {name!r}" if name else "")
        check_bits(self.conv_bits, " for conv layers")
        check_bits(self.fc_bits, " for fc layers")
        for name, bits in self.layer_bits.items():
            check_bits(bits, f" of layer {name!r}")
        for label, value in (("conv_gap_bits", self.conv_gap_bits), ("fc_gap_bits", self.fc_gap_bits)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= 16:
                raise DclabError(f"{label} must be an integer from 1 to 16 (bits per sparse gap), not {value!r}")
        for label in ("prune_steps", "retrain_epochs", "finetune_epochs"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise DclabError(f"{label} must be a whole number >= 0, not {value!r}")
        if self.prune_steps < 1:
            raise DclabError("prune_steps must be at least 1")
        for label in ("retrain_lr", "finetune_lr"):
            value = getattr(self, label)
            if not isinstance(value, numbers.Real) or not value > 0 or math.isinf(value):
                raise DclabError(f"{label} must be a positive number, not {value!r}")
        if isinstance(self.bias_bits, bool) or self.bias_bits not in BIAS_BITS:
            raise DclabError(f"bias_bits must be 32 or 16 (biases stored as float32 or float16), not {self.bias_bits!r}")
        if isinstance(self.codebook_bits, bool) or self.codebook_bits not in CODEBOOK_BITS:
            raise DclabError(f"codebook_bits must be 32 or 16 (centroids stored as float32 or float16), "
                             f"not {self.codebook_bits!r}")
        if self.coder not in CODERS:
            raise DclabError(f"coder must be one of {', '.join(CODERS)} (how the indices and gaps are entropy-coded), "
                             f"not {self.coder!r}")
        if self.coder == "ans" and not self.huffman:
            raise DclabError("coder='ans' entropy-codes the indices and gaps, huffman=False stores them at fixed "
                             "width: choose one")
        if self.init not in ALL_INITS:
            raise DclabError(f"init must be one of {', '.join(ALL_INITS)}, not {self.init!r}")
        if self.train_subset is not None and self.train_subset < 1:
            raise DclabError(f"train_subset must be a positive number of digits, not {self.train_subset!r}")
        return self

    @classmethod
    def preset(cls, arch: str, recipe: str = "default", **overrides: Any) -> "CompressionConfig":
        """The tuned settings of ``recipe`` (``RECIPES``: ``"default"``, notebook 05; ``"frontier"`` and
        ``"noloss"``, notebook 07) for a zoo model, with ``overrides``."""
        if recipe not in RECIPES:
            raise DclabError(f"no recipe {recipe!r}; choose one of: {', '.join(RECIPES)}")
        if recipe != "default" and arch not in RECIPES[recipe]:
            raise DclabError(f"the {recipe} recipe is tuned for {', '.join(RECIPES[recipe])} only, not {arch!r}")
        return cls(**{**RECIPES[recipe].get(arch, {}), **overrides})

    def bits_for(self, name: str, kind: str) -> int:
        """Bits per weight index of a layer."""
        return self.layer_bits.get(name, self.conv_bits if kind == "conv" else self.fc_bits)

    def gap_bits_for(self, kind: str) -> int:
        """Bits per sparse gap of a layer."""
        return self.conv_gap_bits if kind == "conv" else self.fc_gap_bits

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data (stored in the ``.dcz`` metadata)."""
        settings = asdict(self)
        for key, old in ADDED_SETTINGS.items():
            if settings[key] == old:
                del settings[key]
        return settings


def _per_layer_items(value: float | Mapping[str, float] | None) -> list[tuple[str, float]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.items())
    return [("", value)]
