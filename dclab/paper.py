"""What the papers report, typed in once (``../shared/refs/papers.md``), each with its table or figure.

These figures are only ever shown *beside* what dclab measures on the reader's machine; no
size or accuracy dclab reports comes from here. Errors are fractions, sizes as printed.
"""
from __future__ import annotations

from typing import NamedTuple


class Table1Row(NamedTuple):
    """One network of Deep Compression's Table 1 (pruning + trained quantization + Huffman)."""

    error_before: float
    error_after: float
    kb_before: int
    kb_after: int
    ratio: int


TABLE1 = {  # Deep Compression (Han, Mao, Dally; ICLR 2016), Table 1
    "lenet300": Table1Row(0.0164, 0.0158, 1070, 27, 40),
    "lenet5": Table1Row(0.0080, 0.0074, 1720, 44, 39),
}

TABLE2 = {  # Deep Compression, Table 2 (LeNet-300-100 per layer): weights, kept, weight bits P+Q / +H,
    # gap bits P+Q / +H, size P+Q / +H; kept and sizes as fractions of the original
    "ip1": (235_000, 0.08, 6, 4.4, 5, 3.7, 0.031, 0.0232),
    "ip2": (30_000, 0.09, 6, 4.4, 5, 4.3, 0.038, 0.0304),
    "ip3": (1_000, 0.26, 6, 4.3, 5, 3.2, 0.157, 0.1270),
    "total": (266_000, 0.08, 6, 5.1, 5, 3.7, 0.031, 0.0249),
}

SPARSITY = {
    # the fraction of weights removed per layer: Deep Compression Table 2 (LeNet-300-100) and
    # "Learning both Weights and Connections" (NIPS 2015) Table 2 (LeNet-5)
    "lenet300": {"ip1": 0.92, "ip2": 0.91, "ip3": 0.74},
    "lenet5": {"conv1": 0.34, "conv2": 0.88, "ip1": 0.92, "ip2": 0.81},
}

BITS = {"conv": 8, "fc": 5}
"""Deep Compression section 3: weight bits per layer kind (256 shared values for conv, 32 for fc)."""

GAP_BITS = {"conv": 8, "fc": 5}
"""Deep Compression section 2: bits per relative index (gap) in sparse storage, conv and fc."""

SQUEEZENET_REFERENCES = {  # SqueezeNet (Iandola et al. 2016), Table 2 and section 4
    "alexnet": {"title": "AlexNet", "parameters": 61_000_000, "megabytes": 240.0},
    "vgg16": {"title": "VGG-16", "parameters": 138_000_000, "megabytes": 552.0},
    "squeezenet1_0": {"title": "SqueezeNet 1.0", "parameters": 1_240_000, "megabytes": 4.8},
    "squeezenet1_1": {"title": "SqueezeNet 1.1", "parameters": None, "megabytes": None},
}
SQUEEZENET_DEEP_COMPRESSION = {  # SqueezeNet, Table 2: SqueezeNet + Deep Compression (33% sparsity)
    6: {"megabytes": 0.47, "ratio_vs_alexnet": 510},
    8: {"megabytes": 0.66, "ratio_vs_alexnet": 363},
}
SQUEEZENET_DC_SPARSITY = 0.33
"""SqueezeNet section 4: Deep Compression applied with 33% sparsity, 6- or 8-bit weights."""


class Record(NamedTuple):
    """A later published result on the same LeNets (``../shared/refs/papers.md``, "Later records").

    ``counts`` says what its ratio measures: ``"params"`` (a ratio of parameter counts: no index or
    codebook cost), ``"bits"`` (a size computed from bit counts; no file published) or ``"file"``."""

    method: str
    arch: str
    error: float
    ratio: float
    counts: str
    source: str


ORIGINAL_BYTES = {"lenet300": 1_066_440, "lenet5": 1_724_320}  # the Caffe LeNets' float32 parameters

RECORDS = (
    Record("Deep Compression (Han 2016)", "lenet300", 0.0158, 40, "bits", "arXiv 1510.00149, Table 1"),
    Record("Deep Compression (Han 2016)", "lenet5", 0.0074, 39, "bits", "arXiv 1510.00149, Table 1"),
    Record("Dynamic Network Surgery (Guo 2016)", "lenet300", 0.0199, 56, "params", "arXiv 1608.04493"),
    Record("Dynamic Network Surgery (Guo 2016)", "lenet5", 0.0091, 108, "params", "arXiv 1608.04493 (108-111x)"),
    Record("Soft weight-sharing (Ullrich 2017)", "lenet300", 0.0194, 64, "bits", "arXiv 1702.04008"),
    Record("Soft weight-sharing (Ullrich 2017)", "lenet5", 0.0097, 162, "bits", "arXiv 1702.04008"),
    Record("Sparse variational dropout (Molchanov 2017)", "lenet300", 0.0192, 68, "params", "arXiv 1701.05369"),
    Record("Sparse variational dropout (Molchanov 2017)", "lenet5", 0.0075, 280, "params", "arXiv 1701.05369"),
    Record("Bayesian compression, GNJ (Louizos 2017)", "lenet5", 0.010, 361, "bits", "arXiv 1705.08665"),
    Record("Bayesian compression, GHS (Louizos 2017)", "lenet5", 0.010, 419, "bits", "arXiv 1705.08665"),
    Record("MIRACLE (Havasi 2019)", "lenet5", 0.0069, 570, "bits", "arXiv 1810.00440 (~3 kB, read off a figure)"),
)
"""None of these wrote a file a reader can load back: their ratios are not like for like with a ``.dcz``."""
