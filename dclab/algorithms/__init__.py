"""The compression algorithms on tensors and modules (notebooks 02-03): pure functions first, ``_`` for in-place.

- ``prune``: the one magnitude order and its masks (per layer and global), the quality threshold,
  ``Pruner`` (masks kept through retraining), the retraining dropout rule;
- ``quantize``: k-means weight sharing (``Codebook``), centroid initializations, shared layers whose
  centroids train, applying codebooks to a model;
- ``lowrank``: truncated SVD of a layer (notebook 03's comparison).
"""
