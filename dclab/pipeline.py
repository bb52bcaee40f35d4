"""The whole Deep Compression pipeline, from a trained model to a ``.dcz`` file (notebook 05).

Han, Mao and Dally (ICLR 2016), Figure 1: prune (iteratively, retraining the
survivors), quantize by weight sharing and fine-tune the centroids (trained
quantization), then Huffman-code the indices and gaps. Every size reported here
is a length of real bytes: the dense model at 4 bytes per parameter, the pruned
model in the sparse format with float32 values, and the ``.dcz`` written without
and with Huffman coding.

``compress`` trains (minutes); ``compress_weights`` skips all training (prune +
k-means + encode, milliseconds) for the interactive widgets, and a
``WeightCache`` lets a slider reuse each layer's sorted weights.
"""
from __future__ import annotations

import copy
import math
import numbers
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from . import container, models, paper
from .cache import atomic_write_bytes
from .container import CompressedLayer, DczModel, LayerStats
from .data import Digits, load_mnist
from .errors import DclabError
from .prune import (
    MagnitudeOrder,
    Pruner,
    check_quality,
    check_sparsity,
    magnitude_mask,
    threshold_mask,
)
from .quantize import (
    apply_codebooks_,
    DEFAULT_BITS,
    INITS,
    Codebook,
    SortedValues,
    check_bits,
    quantize_layer,
    share_weights_,
    unshare_weights_,
)
from .sparse import encode_pruned

__all__ = [
    "PAPER_SPARSITY",
    "DEFAULT_SPARSITY",
    "PRESETS",
    "DEFAULT_INDEX_BITS",
    "CompressionConfig",
    "LayerReport",
    "CompressionReport",
    "CompressionResult",
    "WeightCache",
    "compress",
    "compress_weights",
    "report_from_dcz",
    "load_model",
    "arch_of",
]

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

FALLBACK_SPARSITY = {"conv": 0.6, "fc": 0.9}
"""For a model without a preset: by layer kind."""

DEFAULT_INDEX_BITS = dict(paper.GAP_BITS)
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
    sum over all the weights that share it).
    """

    sparsity: float | dict[str, float] | None = None
    quality: float | dict[str, float] | None = None
    conv_bits: int = DEFAULT_BITS["conv"]
    fc_bits: int = DEFAULT_BITS["fc"]
    layer_bits: dict[str, int] = field(default_factory=dict)
    conv_index_bits: int = DEFAULT_INDEX_BITS["conv"]
    fc_index_bits: int = DEFAULT_INDEX_BITS["fc"]
    prune_steps: int = 3
    retrain_epochs: int = 2
    retrain_lr: float = BASELINE_LR / 5
    finetune_epochs: int = 1
    finetune_lr: float = BASELINE_LR / 50
    init: str = "linear"
    huffman: bool = True
    max_shift: float = 2.0
    batch_size: int = 128
    train_subset: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
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
        for label, value in (("conv_index_bits", self.conv_index_bits), ("fc_index_bits", self.fc_index_bits)):
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
        if self.init not in INITS:
            raise DclabError(f"init must be one of {', '.join(INITS)}, not {self.init!r}")
        if self.train_subset is not None and self.train_subset < 1:
            raise DclabError(f"train_subset must be a positive number of digits, not {self.train_subset!r}")
        return self

    @classmethod
    def preset(cls, arch: str, **overrides: Any) -> "CompressionConfig":
        """The tuned settings for a zoo model (``PRESETS``), with ``overrides`` (notebook 05)."""
        return cls(**{**PRESETS.get(arch, {}), **overrides})

    def bits_for(self, name: str, kind: str) -> int:
        """Bits per weight index of a layer."""
        return self.layer_bits.get(name, self.conv_bits if kind == "conv" else self.fc_bits)

    def index_bits_for(self, kind: str) -> int:
        """Bits per sparse gap of a layer."""
        return self.conv_index_bits if kind == "conv" else self.fc_index_bits

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data (stored in the ``.dcz`` metadata)."""
        return asdict(self)


def _per_layer_items(value: float | Mapping[str, float] | None) -> list[tuple[str, float]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.items())
    return [("", value)]


# ---------------------------------------------------------------------------
# Reports


@dataclass(frozen=True)
class LayerReport:
    """One row of the paper's Table 2, measured from the ``.dcz`` (notebook 05)."""

    name: str
    kind: str
    weights: int
    kept: int
    fillers: int
    bits: int
    weight_bits_huffman: float
    index_bits: int
    index_bits_huffman: float
    size_pq_bytes: int
    size_pqh_bytes: int
    stored_bytes: int

    @property
    def density(self) -> float:
        """Fraction of weights kept after pruning."""
        return self.kept / self.weights

    @property
    def original_bytes(self) -> int:
        """The layer's weights as float32."""
        return 4 * self.weights

    @property
    def share_pq(self) -> float:
        """Size after pruning + quantization, as a fraction of the original."""
        return self.size_pq_bytes / self.original_bytes

    @property
    def share_pqh(self) -> float:
        """Size after pruning + quantization + Huffman, as a fraction of the original."""
        return self.size_pqh_bytes / self.original_bytes

    @classmethod
    def from_stats(cls, s: LayerStats) -> "LayerReport":
        """From the container's per-layer statistics."""
        return cls(
            name=s.name,
            kind=s.kind,
            weights=s.n_weights,
            kept=s.n_nonzero,
            fillers=s.n_fillers,
            bits=s.bits,
            weight_bits_huffman=s.weight_bits_huffman,
            index_bits=s.index_bits,
            index_bits_huffman=s.index_bits_huffman,
            size_pq_bytes=s.size_pq_bytes,
            size_pqh_bytes=s.size_pqh_bytes,
            stored_bytes=s.stored_bytes,
        )

    def row(self) -> dict[str, Any]:
        """The Table 2 columns as a dict."""
        return {
            "layer": self.name,
            "weights": self.weights,
            "density": self.density,
            "weight bits P+Q": self.bits,
            "weight bits +H": self.weight_bits_huffman,
            "index bits P+Q": self.index_bits,
            "index bits +H": self.index_bits_huffman,
            "size P+Q": self.share_pq,
            "size +H": self.share_pqh,
            "bytes +H": self.size_pqh_bytes,
        }

    def __repr__(self) -> str:
        return (
            f"LayerReport({self.name}: {self.weights:,} weights, {self.density:.1%} kept, "
            f"{self.bits}->{self.weight_bits_huffman:.1f} weight bits, "
            f"{self.index_bits}->{self.index_bits_huffman:.1f} index bits, "
            f"{self.share_pq:.2%} -> {self.share_pqh:.2%} of the original)"
        )


STAGES = ("dense", "pruned", "pruned + quantized", "+ Huffman")


@dataclass(frozen=True)
class CompressionReport:
    """What compression did: per-layer rows, stage sizes in bytes, test errors (notebook 05).

    ``stage_bytes`` (the waterfall): ``dense`` = 4 bytes per parameter (biases
    included); ``pruned`` = sparse format with float32 values and ``index_bits``
    gaps, plus float32 biases; ``pruned + quantized`` = the ``.dcz`` written at fixed
    width; ``+ Huffman`` = the ``.dcz`` written with Huffman coding. ``file_bytes`` is
    the file this run produced (with or without Huffman, as configured).
    """

    arch: str
    layers: list[LayerReport]
    stage_bytes: dict[str, int]
    file_bytes: int
    test_error_before: float | None = None
    test_error_after: float | None = None
    seconds: float | None = None

    @property
    def dense_bytes(self) -> int:
        """The original model: float32 weights and biases."""
        return self.stage_bytes["dense"]

    @property
    def ratio(self) -> float:
        """Original bytes / compressed file bytes."""
        return self.dense_bytes / self.file_bytes

    @property
    def weights(self) -> int:
        """Weights in the compressed layers."""
        return sum(layer.weights for layer in self.layers)

    @property
    def density(self) -> float:
        """Fraction of all weights kept."""
        return sum(layer.kept for layer in self.layers) / max(self.weights, 1)

    def totals(self) -> dict[str, Any]:
        """The Table 2 'total' row (bits averaged over stored entries)."""
        entries = [layer.kept + layer.fillers for layer in self.layers]
        n = max(sum(entries), 1)
        original = max(sum(layer.original_bytes for layer in self.layers), 1)
        return {
            "layer": "total",
            "weights": self.weights,
            "density": self.density,
            "weight bits P+Q": sum(e * layer.bits for e, layer in zip(entries, self.layers)) / n,
            "weight bits +H": sum(e * layer.weight_bits_huffman for e, layer in zip(entries, self.layers)) / n,
            "index bits P+Q": sum(e * layer.index_bits for e, layer in zip(entries, self.layers)) / n,
            "index bits +H": sum(e * layer.index_bits_huffman for e, layer in zip(entries, self.layers)) / n,
            "size P+Q": sum(layer.size_pq_bytes for layer in self.layers) / original,
            "size +H": sum(layer.size_pqh_bytes for layer in self.layers) / original,
            "bytes +H": sum(layer.size_pqh_bytes for layer in self.layers),
        }

    def to_frame(self):
        """Per-layer Table 2 as a pandas DataFrame, with a total row."""
        import pandas as pd

        return pd.DataFrame([layer.row() for layer in self.layers] + [self.totals()]).set_index("layer")

    def stages_frame(self):
        """Stage sizes (bytes, ratio to dense) as a pandas DataFrame, for the waterfall."""
        import pandas as pd

        rows = [{"stage": k, "bytes": v, "ratio": self.dense_bytes / v} for k, v in self.stage_bytes.items()]
        return pd.DataFrame(rows).set_index("stage")

    def table(self) -> str:
        """The per-layer table as plain text (what ``python -m dclab compress`` prints)."""
        head = f"{'layer':<8}{'weights':>10}{'density':>8}{'w bits':>8}{'w +H':>7}{'i bits':>8}{'i +H':>7}" \
               f"{'P+Q':>8}{'+H':>8}{'bytes':>9}"
        lines = [head, "-" * len(head)]
        for row in [layer.row() for layer in self.layers] + [self.totals()]:
            lines.append(
                f"{row['layer']:<8}{row['weights']:>10,}{row['density']:>8.1%}{row['weight bits P+Q']:>8.3g}"
                f"{row['weight bits +H']:>7.2f}{row['index bits P+Q']:>8.3g}{row['index bits +H']:>7.2f}"
                f"{row['size P+Q']:>8.2%}{row['size +H']:>8.2%}{row['bytes +H']:>9,}"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        """Stage sizes, ratio and test errors in a few lines."""
        lines = [
            f"{stage:<20}{size:>12,} bytes  {self.dense_bytes / size:6.1f}x"
            for stage, size in self.stage_bytes.items()
        ]
        lines.append(f"{'.dcz file':<20}{self.file_bytes:>12,} bytes  {self.ratio:6.1f}x")
        fixed, coded = self.stage_bytes.get("pruned + quantized"), self.stage_bytes.get("+ Huffman")
        if fixed and coded:
            lines.append(f"Huffman saves {1 - coded / fixed:.1%} of the fixed-width file")
        if self.test_error_before is not None or self.test_error_after is not None:
            lines.append(f"test error: {_pct(self.test_error_before)} -> {_pct(self.test_error_after)}")
        if self.seconds is not None:
            lines.append(f"time: {self.seconds:.1f} s")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"CompressionReport({self.arch}: {self.dense_bytes:,} -> {self.file_bytes:,} bytes, " \
               f"{self.ratio:.1f}x, test error {_pct(self.test_error_before)} -> {_pct(self.test_error_after)})"

    def __str__(self) -> str:
        return f"{self.table()}\n\n{self.summary()}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


@dataclass(eq=False)
class CompressionResult:
    """A compressed model in memory, its ``.dcz`` bytes and its report (notebook 05)."""

    model: nn.Module
    dcz: bytes
    report: CompressionReport
    codebooks: dict[str, Codebook] = field(repr=False, default_factory=dict)
    config: CompressionConfig | None = None

    def save(self, path: str | os.PathLike) -> int:
        """Write the ``.dcz`` file; returns the bytes on disk."""
        return atomic_write_bytes(path, self.dcz)

    def __repr__(self) -> str:
        return f"CompressionResult({self.report!r})"


# ---------------------------------------------------------------------------
# Shared helpers


def arch_of(model: nn.Module) -> str:
    """The zoo name of a model (``"lenet300"``...) from its class."""
    for name, builder in models.BUILDERS.items():
        if isinstance(builder, type) and type(model) is builder:
            return name
    raise DclabError(
        f"cannot tell which architecture a {type(model).__name__} is; pass arch= one of {', '.join(models.BUILDERS)}"
    )


def layer_sparsities(
    model: nn.Module, arch: str | None, config: CompressionConfig
) -> dict[str, float]:
    """The final sparsity of every compressible layer (quality converted on the current weights)."""
    layers = models.compressible_layers(model)
    if config.quality is not None:
        quality = config.quality
        _check_names(quality, layers)
        out = {}
        for name, module in layers.items():
            q = quality.get(name) if isinstance(quality, Mapping) else quality
            if q is None:
                out[name] = 0.0
                continue
            w = module.weight.detach()
            pruned = 1 - threshold_mask(w, q).sum().item() / w.numel()  # the one quality rule (dclab.prune)
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
        _check_names(sparsity, layers)
        return {name: float(sparsity.get(name, 0.0)) for name in layers}
    return {name: float(sparsity) for name in layers}


def _check_names(per_layer: Any, layers: Mapping[str, nn.Module]) -> None:
    if isinstance(per_layer, Mapping):
        unknown = sorted(set(per_layer) - set(layers))
        if unknown:
            raise DclabError(f"the model has no layer {', '.join(unknown)}; its layers are {', '.join(layers)}")


def _schedule(final: float, step: int, steps: int) -> float:
    """Iterative pruning: the density falls geometrically, density_i = density ** (i / steps)."""
    return 1.0 - (1.0 - final) ** (step / steps)


def _stage_bytes(stats: list[LayerStats], pruned_bytes: int, fixed_bytes: int, huffman_bytes: int) -> dict[str, int]:
    """The waterfall's sizes, each one measured: dense, pruned, and the two .dcz files."""
    dense = sum(4 * s.n_weights + s.bias_bytes for s in stats)
    pruned = pruned_bytes + sum(s.bias_bytes for s in stats)
    return {"dense": dense, "pruned": pruned, "pruned + quantized": fixed_bytes, "+ Huffman": huffman_bytes}


def pruned_stage_bytes(layers: Sequence[CompressedLayer]) -> int:
    """The pruning-only stage of a ``.dcz``'s layers, measured (notebooks 02, 04, 06): each sparse layer
    really written by ``sparse.encode_pruned`` (its gaps + one float32 value per entry, fillers too),
    a dense one as float32. Biases are not counted here."""
    total = 0
    for layer in layers:
        if layer.index_bits:
            weights = layer.centroids[layer.indices]
            total += len(encode_pruned(weights, layer.indices != 0, layer.index_bits))
        else:
            total += 4 * layer.indices.numel()
    return total


def dcz_layers(
    model: nn.Module,
    codebooks: Mapping[str, Codebook],
    bits: Callable[[str, str], int],
    gap_bits: Callable[[str, str], int],
) -> list[CompressedLayer]:
    """A model's codebooks as ``.dcz`` layers, in the model's layer order: the one place they are assembled
    (``compress``, ``compress_weights``, the capstone's session, notebook 03's experiments).

    ``bits(name, kind)`` is the width of a weight index; a pruned codebook (reserved zero) stores its
    gaps in ``gap_bits(name, kind)`` bits, a dense one stores every index. Biases go in as float32.
    """
    compressed = []
    for name, module in models.compressible_layers(model).items():
        if name not in codebooks:
            continue
        kind, book = models.layer_kind(module), codebooks[name]
        compressed.append(CompressedLayer.from_codebook(
            name, kind, book, bits=bits(name, kind),
            index_bits=gap_bits(name, kind) if book.reserved_zero else 0,
            bias=None if module.bias is None else module.bias.detach(),
        ))
    return compressed


def _encode(
    arch: str,
    model: nn.Module,
    codebooks: Mapping[str, Codebook],
    config: CompressionConfig,
    meta: Mapping[str, Any],
) -> tuple[bytes, bytes]:
    """The ``.dcz`` bytes at fixed width and Huffman-coded."""
    missing = set(models.compressible_layers(model)) - set(codebooks)
    if missing:
        raise DclabError(f"no codebook for layer(s) {', '.join(sorted(missing))}")
    compressed = dcz_layers(model, codebooks, config.bits_for, lambda name, kind: config.index_bits_for(kind))
    fixed = container.to_bytes(arch, compressed, huffman=False, meta=meta)
    coded = container.to_bytes(arch, compressed, huffman=True, meta=meta)
    return fixed, coded


def report_from_dcz(dcz: DczModel | bytes, **extra: Any) -> CompressionReport:
    """A report from a ``.dcz`` alone (``python -m dclab inspect``): per-layer rows and stage sizes.

    The file holds one coding; the other is re-encoded from its contents (the encoder is
    deterministic, so these are exactly the bytes that file would have).
    """
    model = dcz if isinstance(dcz, DczModel) else container.from_bytes(dcz)
    other = len(container.to_bytes(model.arch, model.layers, huffman=not model.huffman, meta=model.meta))
    fixed, coded = (other, model.n_bytes) if model.huffman else (model.n_bytes, other)
    stats = model.layer_stats()
    meta = model.meta
    fields = {
        "test_error_before": _number(meta.get("test_error_before")),
        "test_error_after": _number(meta.get("test_error_after")),
        "seconds": _number(meta.get("seconds")),
    }
    fields.update(extra)
    return CompressionReport(
        arch=model.arch,
        layers=[LayerReport.from_stats(s) for s in stats],
        stage_bytes=_stage_bytes(stats, pruned_stage_bytes(model.layers), fixed, coded),
        file_bytes=model.n_bytes,
        **fields,
    )


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def encode_dcz(
    arch: str,
    compressed: nn.Module,
    codebooks: dict[str, Codebook],
    config: CompressionConfig,
    meta: dict[str, Any],
) -> tuple[bytes, CompressionReport]:
    """The one ``.dcz`` encoder of a compressed model: encode both ways (fixed-width and Huffman), return
    the configured file's bytes and the report measured from those bytes."""
    fixed, coded = _encode(arch, compressed, codebooks, config, meta)
    read = container.from_bytes(coded)
    report = CompressionReport(
        arch=arch,
        layers=[LayerReport.from_stats(s) for s in read.layer_stats()],
        stage_bytes=_stage_bytes(read.layer_stats(), pruned_stage_bytes(read.layers), len(fixed), len(coded)),
        file_bytes=len(coded if config.huffman else fixed),
        test_error_before=_number(meta.get("test_error_before")),
        test_error_after=_number(meta.get("test_error_after")),
        seconds=_number(meta.get("seconds")),
    )
    return (coded if config.huffman else fixed), report


# ---------------------------------------------------------------------------
# The full pipeline (trains)


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
    from .train import train

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
    has exactly the weights stored in the ``.dcz``.
    """
    from .train import test_error, train

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
        pruner = Pruner(net, {n: m for n, m in masks.items() if m is not None})
        if config.retrain_epochs:
            train(
                net, train_data, config.retrain_epochs, config.retrain_lr,
                batch_size=config.batch_size, max_shift=config.max_shift, seed=config.seed + step,
                after_step=pruner, progress=progress,
                desc=f"prune step {step}/{config.prune_steps}: retrain",
            )
        pruner.remove()

    # 2. share weights by k-means, then fine-tune the centroids (and biases): trained quantization
    codebooks = {
        name: quantize_layer(
            module.weight.detach(), masks[name], config.bits_for(name, models.layer_kind(module)), config.init,
            seed=config.seed,
        )
        for name, module in layers.items()
    }
    codebooks, _ = finetune_centroids(net, codebooks, train_data, config, progress=progress)
    net.eval()
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


# ---------------------------------------------------------------------------
# The fast path (no training), for widgets


class WeightCache:
    """A model's weights, each layer sorted once, for repeated ``compress_weights`` calls (notebook 05).

    A slider changes the settings; the cache keeps what does not change: the
    original weights and their sorted values (so k-means never sorts again).
    """

    def __init__(self, model: nn.Module, arch: str | None = None) -> None:
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
    net = apply_codebooks_(copy.deepcopy(model).cpu().eval(), codebooks)
    error = None
    if test_data is not None:
        from .train import test_error

        error = test_error(net, test_data)
    meta = {"test_error_after": error, "config": config.to_dict()}
    data, report = encode_dcz(cache.arch, net, codebooks, config, meta)
    return net, data, report


# ---------------------------------------------------------------------------
# Reading back


def load_model(path_or_bytes: str | os.PathLike | bytes | bytearray | DczModel) -> nn.Module:
    """Rebuild the model stored in a ``.dcz`` (bytes or a path), in eval mode (notebook 05).

    Its weights equal the compressed ones bit for bit: ``centroids[indices]``, biases as stored.
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
    model = models.build(dcz.arch)
    state = dcz.state_dict()
    expected = {k for k, _ in model.named_parameters()}
    if set(state) != expected:
        raise DclabError(
            f"the .dcz holds {sorted(state)} but a {dcz.arch} has {sorted(expected)}; was it written by another dclab?"
        )
    model.load_state_dict(state)
    return model.eval()
