"""What a compression measured: one record per layer (the paper's Table 2) and the whole model's stages.

Every size is read from a real ``.dcz`` (``report_from_dcz``): the dense model at 4 bytes per
parameter, the pruned model in the sparse format with float32 values, the file without and with
Huffman coding.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from torch import nn

from dclab.algorithms.quantize import (
    Codebook,
)
from dclab.cache import atomic_write_bytes
from dclab.deprecation import renamed_attribute
from dclab.codec import container
from dclab.codec.container import CompressedLayer, DczModel, LayerStats
from dclab.codec.sparse import encode_pruned
from dclab.pipeline.config import CompressionConfig


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
    gap_bits: int
    gap_bits_huffman: float
    size_pq_bytes: int
    size_pqh_bytes: int
    stored_bytes: int
    index_bits = renamed_attribute("index_bits", "gap_bits")
    index_bits_huffman = renamed_attribute("index_bits_huffman", "gap_bits_huffman")

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
            gap_bits=s.gap_bits,
            gap_bits_huffman=s.gap_bits_huffman,
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
            "gap bits P+Q": self.gap_bits,
            "gap bits +H": self.gap_bits_huffman,
            "size P+Q": self.share_pq,
            "size +H": self.share_pqh,
            "bytes +H": self.size_pqh_bytes,
        }

    def __repr__(self) -> str:
        return (
            f"LayerReport({self.name}: {self.weights:,} weights, {self.density:.1%} kept, "
            f"{self.bits}->{self.weight_bits_huffman:.1f} weight bits, "
            f"{self.gap_bits}->{self.gap_bits_huffman:.1f} gap bits, "
            f"{self.share_pq:.2%} -> {self.share_pqh:.2%} of the original)"
        )


STAGES = ("dense", "pruned", "pruned + quantized", "+ Huffman")


@dataclass(frozen=True)
class CompressionReport:
    """What compression did: per-layer rows, stage sizes in bytes, test errors (notebook 05).

    ``stage_bytes`` (the waterfall): ``dense`` = 4 bytes per parameter (biases
    included); ``pruned`` = sparse format with float32 values and ``gap_bits``
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
            "gap bits P+Q": sum(e * layer.gap_bits for e, layer in zip(entries, self.layers)) / n,
            "gap bits +H": sum(e * layer.gap_bits_huffman for e, layer in zip(entries, self.layers)) / n,
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
                f"{row['weight bits +H']:>7.2f}{row['gap bits P+Q']:>8.3g}{row['gap bits +H']:>7.2f}"
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


def pruned_stage_bytes(layers: Sequence[CompressedLayer]) -> int:
    """The pruning-only stage of a ``.dcz``'s layers, measured (notebooks 02, 04, 06): each sparse layer
    really written by ``sparse.encode_pruned`` (its gaps + one float32 value per entry, fillers too),
    a dense one as float32. Biases are not counted here."""
    total = 0
    for layer in layers:
        if layer.gap_bits:
            weights = layer.centroids[layer.indices]
            total += len(encode_pruned(weights, layer.indices != 0, layer.gap_bits))
        else:
            total += 4 * layer.indices.numel()
    return total


def measured_report(dcz: DczModel, fixed_bytes: int, huffman_bytes: int, file_bytes: int,
                    **extra: Any) -> CompressionReport:
    """The one report of a ``.dcz``: its per-layer rows, and each stage's size measured (dense at 4 bytes
    per parameter, pruned in the sparse format, the file at fixed width and Huffman-coded)."""
    stats = dcz.layer_stats()
    bias = sum(s.bias_bytes for s in stats)  # as the file stores them (float16 in a version-2 file)
    dense_bias = sum(4 * layer.bias.numel() for layer in dcz.layers if layer.bias is not None)  # float32
    stage_bytes = {
        "dense": sum(4 * s.n_weights for s in stats) + dense_bias,
        "pruned": pruned_stage_bytes(dcz.layers) + bias,
        "pruned + quantized": fixed_bytes,
        "+ Huffman": huffman_bytes,
    }
    fields = {key: _number(dcz.meta.get(key)) for key in ("test_error_before", "test_error_after", "seconds")}
    return CompressionReport(arch=dcz.arch, layers=[LayerReport.from_stats(s) for s in stats],
                             stage_bytes=stage_bytes, file_bytes=file_bytes, **{**fields, **extra})


def report_from_dcz(dcz: DczModel | bytes, **extra: Any) -> CompressionReport:
    """A report from a ``.dcz`` alone (``python -m dclab inspect``).

    The file holds one coding; the others (fixed width, Huffman) are re-encoded from its contents (the
    encoder is deterministic, so these are exactly the bytes that file would have).
    """
    model = dcz if isinstance(dcz, DczModel) else container.from_bytes(dcz)
    fixed = model.n_bytes if model.coding == "fixed-width" else len(
        container.to_bytes(model.arch, model.layers, huffman=False, meta=model.meta))
    coded = model.n_bytes if model.huffman else len(
        container.to_bytes(model.arch, model.layers, huffman=True, meta=model.meta))
    return measured_report(model, fixed, coded, model.n_bytes, **extra)


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None
