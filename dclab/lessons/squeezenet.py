"""The experiments of notebook 05 (SqueezeNet): sizes beside the papers', FireNet and SqueezeNet
compressed by the one pipeline, each file cached.

Every count comes from a real ``nn.Module`` (``dclab.models.reference``), every compressed size from
a ``.dcz`` written by ``dclab.pipeline``; the papers' figures (``dclab.paper``) are only shown beside
them.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from torch import nn

from dclab import paper, zoo
from dclab.cache import atomic_write_bytes, fingerprint
from dclab.codec.container import FORMAT_VERSION
from dclab.errors import DclabError
from dclab.models import compressible_layers, count_parameters
from dclab.models.squeezenet import FireNet
from dclab.paths import cache_dir
from dclab.train import test_error

if TYPE_CHECKING:
    from dclab.pipeline import CompressionConfig, CompressionReport
from dclab.models.reference import (
    FP32_BYTES,
    MB,
    REFERENCE_ARCHITECTURES,
    ArchSummary,
    PretrainedSqueezeNet,
    reference_architecture,
    squeezenet1_0_weights,
    summarize,
)

PAPER_FIGURES = paper.SQUEEZENET_REFERENCES


PAPER_SQUEEZENET_DC = paper.SQUEEZENET_DEEP_COMPRESSION


def pretrained_firenet(*, progress: bool = True) -> FireNet:
    """Trained FireNet from the zoo's cache, trained (minutes, with a progress bar) and cached if missing (notebook 05)."""
    return zoo.pretrained("firenet", progress=progress)


def reference_summaries(names: tuple[str, ...] = REFERENCE_ARCHITECTURES) -> list[ArchSummary]:
    """AlexNet, VGG-16 and SqueezeNet 1.0/1.1 as torchvision builds them, counted (notebook 05, section 2)."""
    return [
        summarize(reference_architecture(n), (3, 224, 224), n, PAPER_FIGURES[n]["title"]) for n in names
    ]


class SizeRow(NamedTuple):
    """One bar of the size chart: a measured size and, if the paper gives one, the paper's (notebook 05)."""

    label: str
    bytes: int
    paper_bytes: int | None = None
    kind: str = "dense"  # "dense", "compressed" or "untrained" (compressed from random weights)
    note: str = ""


def reference_size_rows(summaries: list[ArchSummary]) -> list[SizeRow]:
    """fp32 sizes of the reference architectures beside the papers' MB (notebook 05, section 2)."""
    rows = []
    for s in summaries:
        paper_mb = PAPER_FIGURES.get(s.name, {}).get("megabytes")
        rows.append(SizeRow(s.title, s.fp32_bytes, None if paper_mb is None else round(paper_mb * MB)))
    return rows


def summaries_frame(summaries: list[ArchSummary]):
    """The accounting as a pandas table, the papers' figures beside ours (notebook 05, section 2)."""
    import pandas as pd

    rows = []
    for s in summaries:
        paper = PAPER_FIGURES.get(s.name, {})
        rows.append({
            "architecture": s.title,
            "parameters": s.parameters,
            "conv params": s.conv_parameters,
            "fc params": s.fc_parameters,
            "fp32 MB": round(s.fp32_megabytes, 2),
            "GMACs / image": round(s.macs / 1e9, 3),
            "paper: params": paper.get("parameters"),
            "paper: MB": paper.get("megabytes"),
        })
    return pd.DataFrame(rows).set_index("architecture")


SQUEEZENET_DC_SPARSITY = paper.SQUEEZENET_DC_SPARSITY
"""The SqueezeNet paper's Deep Compression setting (section 4): 33% sparsity, 6- or 8-bit weights."""


class SqueezeNetCompression(NamedTuple):
    """SqueezeNet 1.0 pruned, quantized and Huffman-coded by the engine, measured (notebook 05, section 6)."""

    report: "CompressionReport"
    dcz: bytes
    trained: bool
    note: str
    alexnet_bytes: int

    @property
    def file_bytes(self) -> int:
        """Length of the ``.dcz``."""
        return len(self.dcz)

    @property
    def ratio_vs_alexnet(self) -> float:
        """AlexNet's fp32 bytes (torchvision's architecture) / the ``.dcz``'s bytes."""
        return self.alexnet_bytes / self.file_bytes

    def __repr__(self) -> str:
        weights = "trained" if self.trained else "UNTRAINED (indicative only)"
        return (
            f"SqueezeNetCompression({weights} weights: {self.report.dense_bytes:,} -> {self.file_bytes:,} bytes, "
            f"{self.report.ratio:.1f}x; {self.ratio_vs_alexnet:.0f}x smaller than fp32 AlexNet)"
        )


def weights_digest(model: nn.Module) -> str:
    """16 hex digits of the sha256 of a model's state dict (names and bytes): what a cached result was computed from."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def squeezenet_dcz_path(weights: PretrainedSqueezeNet, config: "CompressionConfig") -> Path:
    """Where ``compress_squeezenet`` caches its ``.dcz``: keyed by the weights' bytes, the settings and the format."""
    key = json.dumps({"weights": weights_digest(weights.model), "config": config.to_dict(),
                      "format": FORMAT_VERSION}, sort_keys=True, default=str)
    return cache_dir() / "compressed" / f"squeezenet1_0-{hashlib.sha256(key.encode()).hexdigest()[:16]}.dcz"


def compress_squeezenet(
    bits: int = 6,
    sparsity: float = SQUEEZENET_DC_SPARSITY,
    weights: PretrainedSqueezeNet | None = None,
    huffman: bool = True,
    cache: bool = True,
) -> SqueezeNetCompression:
    """SqueezeNet 1.0 + Deep Compression without retraining: prune, k-means, Huffman, a real ``.dcz`` (notebook 05, section 6).

    Uses the pipeline's no-training path (``compress_weights``): on ImageNet the
    paper retrains, which a CPU cannot do here, so no accuracy is claimed. The file is
    cached (``squeezenet_dcz_path``: by the weights' bytes and the settings; the encoder is
    deterministic), and its report is read from the file (``report_from_dcz``), as for a
    freshly written one.
    """
    from dclab.pipeline import CompressionConfig, compress_weights, report_from_dcz

    weights = weights or squeezenet1_0_weights()
    config = CompressionConfig(sparsity=sparsity, conv_bits=bits, fc_bits=bits, huffman=huffman)
    alexnet_bytes = count_parameters(reference_architecture("alexnet")) * FP32_BYTES
    path = squeezenet_dcz_path(weights, config) if cache else None
    if path is not None and path.is_file():
        try:
            dcz = path.read_bytes()
            return SqueezeNetCompression(report_from_dcz(dcz), dcz, weights.trained, weights.note, alexnet_bytes)
        except (OSError, DclabError):
            path.unlink(missing_ok=True)  # a damaged cache file is recomputed
    _, dcz, report = compress_weights(weights.model, config)
    if path is not None:
        atomic_write_bytes(path, dcz)
    return SqueezeNetCompression(report, dcz, weights.trained, weights.note, alexnet_bytes)


def firenet_config() -> "CompressionConfig":
    """Deep Compression settings for FireNet (notebook 05, section 5).

    Its layers are all small convolutions: 4-bit codebooks (16 shared weights; the
    paper's 8 bits would spend more on 256-entry codebooks than they save), 4-bit
    gaps, 60% of every layer pruned in two steps, each followed by one epoch of
    retraining, then one epoch of centroid fine-tuning, at the pipeline's default
    rate (0.005). Without its BatchNorm the folded network is touchier than the one
    that was trained: retraining at 0.01 (1/10 of its training rate) diverges.
    """
    from dclab.pipeline import CompressionConfig

    return CompressionConfig(**FIRENET_DC)


FIRENET_DC = dict(sparsity=0.6, conv_bits=4, conv_gap_bits=4, prune_steps=2, retrain_epochs=1,
                  finetune_epochs=1, max_shift=0.0)
"""FireNet's Deep Compression settings (see ``firenet_config``)."""


class FireNetCompression(NamedTuple):
    """FireNet after the whole pipeline, read back from its cached ``.dcz`` (notebook 05, section 5)."""

    model: nn.Module
    dcz: bytes
    report: "CompressionReport"
    path: Path
    computed: bool

    @property
    def file_bytes(self) -> int:
        """Length of the ``.dcz``."""
        return len(self.dcz)


def firenet_dcz_path(config: "CompressionConfig") -> Path:
    """Where ``compress_firenet`` caches its ``.dcz``: keyed by the trained baseline and the settings."""
    baseline = zoo.checkpoint_path("firenet")
    key = json.dumps({"baseline": fingerprint(baseline), "config": config.to_dict()}, sort_keys=True, default=str)
    return cache_dir() / "compressed" / f"firenet-{hashlib.sha256(key.encode()).hexdigest()[:16]}.dcz"


def compress_firenet(config: "CompressionConfig | None" = None, *, progress: bool = True) -> FireNetCompression:
    """The trained FireNet through the whole Deep Compression pipeline, cached as a ``.dcz`` (notebook 05, section 5).

    The first call prunes and retrains, shares weights and fine-tunes the centroids
    (a few CPU minutes, with progress bars); later calls read the file back.
    """
    from dclab.codec.container import read_dcz
    from dclab.pipeline import compress, load_model, report_from_dcz

    config = config or firenet_config()
    pretrained_firenet(progress=progress)  # the cache key needs the trained baseline
    path = firenet_dcz_path(config)
    computed = not path.is_file()
    if computed:
        path.parent.mkdir(parents=True, exist_ok=True)
        result = compress(pretrained_firenet(progress=progress), config, arch="firenet", progress=progress)
        atomic_write_bytes(path, result.dcz)
    try:
        dcz = read_dcz(path)
    except DclabError:
        if computed:
            raise
        path.unlink(missing_ok=True)  # a damaged cache file is recomputed
        return compress_firenet(config, progress=progress)
    data = path.read_bytes()
    return FireNetCompression(load_model(dcz), data, report_from_dcz(dcz), path, computed)


def mnist_comparison(lenet5: nn.Module, firenet: nn.Module, compressed: FireNetCompression, test_data) -> list[dict]:
    """LeNet-5, FireNet and FireNet + Deep Compression side by side, every number measured (notebook 05, section 5)."""
    base = count_parameters(lenet5) * FP32_BYTES
    rows = []
    for label, model, size in (
        ("LeNet-5 (fp32)", lenet5, base),
        ("FireNet (fp32)", firenet, count_parameters(firenet) * FP32_BYTES),
        ("FireNet + Deep Compression (.dcz)", compressed.model, compressed.file_bytes),
    ):
        rows.append({
            "model": label,
            "parameters": count_parameters(model),
            "nonzero weights": sum(int((m.weight != 0).sum()) for m in compressible_layers(model).values()),
            "bytes": size,
            "test error %": round(100 * test_error(model, test_data), 2),
            "x smaller than LeNet-5": round(base / size, 1),
        })
    return rows


def cached_mnist_comparison(compressed: FireNetCompression) -> list[dict]:
    """``mnist_comparison`` of the zoo's LeNet-5 and FireNet and ``compressed``, measured once and cached (notebook 05, section 5).

    Keyed by both baselines' fingerprints and the bytes of the compressed file: three passes over the
    10,000 test digits (FireNet's many multiply-accumulates make it the slowest cell of the page) are
    made on the first run only.
    """
    from dclab.lessons.store import baseline_fingerprint, cached_result, test_set

    settings = {"lenet5": baseline_fingerprint("lenet5"), "firenet": baseline_fingerprint("firenet"),
                "compressed": hashlib.sha256(compressed.dcz).hexdigest()[:16], "test": "mnist-test"}
    return cached_result("mnist-comparison", settings, lambda: {"rows": mnist_comparison(
        zoo.pretrained("lenet5"), pretrained_firenet(), compressed, test_set())})["rows"]


def squeezenet_size_rows(summaries: list[ArchSummary], compressed: dict[int, SqueezeNetCompression]) -> list[SizeRow]:
    """AlexNet and SqueezeNet in fp32, then SqueezeNet + Deep Compression per bit width, beside the papers (notebook 05, section 6)."""
    by_name = {s.name: s for s in summaries}
    rows = [
        SizeRow("AlexNet (fp32)", by_name["alexnet"].fp32_bytes, round(PAPER_FIGURES["alexnet"]["megabytes"] * MB)),
        SizeRow("SqueezeNet 1.0 (fp32)", by_name["squeezenet1_0"].fp32_bytes,
                round(PAPER_FIGURES["squeezenet1_0"]["megabytes"] * MB)),
    ]
    for bits, result in sorted(compressed.items(), reverse=True):
        paper = PAPER_SQUEEZENET_DC.get(bits)
        rows.append(SizeRow(
            f"SqueezeNet + DC, {bits}-bit", result.file_bytes, round(paper["megabytes"] * MB) if paper else None,
            "compressed" if result.trained else "untrained", "" if result.trained else "untrained weights",
        ))
    return rows


def mnist_size_rows(comparison: list[dict]) -> list[SizeRow]:
    """The MNIST comparison (``mnist_comparison``) as bars, LeNet-5 beside the paper's size (notebook 05, section 5)."""
    rows = []
    for row in comparison:
        lenet = row["model"].startswith("LeNet-5")
        kind = "compressed" if "Deep Compression" in row["model"] else "dense"
        rows.append(SizeRow(row["model"], row["bytes"], 1000 * paper.TABLE1["lenet5"].kb_before if lenet else None, kind))
    return rows
