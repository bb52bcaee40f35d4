"""The Deep Compression pipeline: settings, the engine, its reports, and the live session (notebooks 04-06).

- ``config``: ``CompressionConfig`` and its defaults;
- ``compress``: prune, share weights, fine-tune, encode a ``.dcz`` (``compress``, ``compress_weights``,
  ``load_model``): the one engine behind every size and accuracy the app shows;
- ``report``: per-layer records and stage sizes, measured from the ``.dcz`` bytes;
- ``session``: the capstone's ``CompressionSession``, the engine with every step cached.
"""
from dclab.pipeline.compress import (
    WeightCache,
    arch_of,
    check_storable,
    compress,
    compress_weights,
    dcz_layers,
    encode_dcz,
    finetune_centroids,
    layer_sparsities,
    load_model,
)
from dclab.pipeline.config import (
    BASELINE_LR,
    DEFAULT_GAP_BITS,
    DEFAULT_SPARSITY,
    PAPER_SPARSITY,
    FRONTIER,
    NOLOSS,
    PRESETS,
    RECIPES,
    CompressionConfig,
)
from dclab.pipeline.report import (
    STAGES,
    CompressionReport,
    CompressionResult,
    LayerReport,
    measured_report,
    pruned_stage_bytes,
    report_from_dcz,
)

__all__ = [
    "PAPER_SPARSITY", "DEFAULT_SPARSITY", "PRESETS", "FRONTIER", "NOLOSS", "RECIPES", "DEFAULT_GAP_BITS", "BASELINE_LR", "STAGES",
    "CompressionConfig", "LayerReport", "CompressionReport", "CompressionResult", "WeightCache",
    "compress", "compress_weights", "encode_dcz", "dcz_layers", "finetune_centroids", "layer_sparsities",
    "measured_report", "pruned_stage_bytes", "report_from_dcz", "load_model", "arch_of", "check_storable",
]
