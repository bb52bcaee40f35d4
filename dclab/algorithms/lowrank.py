"""Low-rank approximation by truncated SVD: the cheap baseline of Deep Compression's Figure 6 (notebook 03).

A weight matrix m x n is replaced by two factors m x r and r x n, so it costs
r (m + n) numbers instead of m n. A convolution's weight is flattened to
out_channels x (in_channels * kh * kw) first.
"""
from __future__ import annotations

import numbers

import torch
from torch import nn

from dclab.errors import DclabError

__all__ = ["svd_compress", "svd_parameters", "svd_rank_for", "svd_compress_"]


def _as_matrix(w: torch.Tensor) -> torch.Tensor:
    if w.dim() < 2:
        raise DclabError(f"SVD needs a matrix or a convolution kernel, not a tensor shaped {tuple(w.shape)}")
    return w.detach().reshape(w.shape[0], -1)


def _check_rank(rank: int, m: int, n: int) -> int:
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or not 1 <= rank <= min(m, n):
        raise DclabError(f"rank must be an integer from 1 to {min(m, n)} for a {m} x {n} weight, not {rank!r}")
    return int(rank)


def svd_compress(w: torch.Tensor, rank: int) -> torch.Tensor:
    """The best rank-``rank`` approximation of ``w`` (truncated SVD), shaped like ``w`` (notebook 03)."""
    a = _as_matrix(w)
    rank = _check_rank(rank, *a.shape)
    u, s, vh = torch.linalg.svd(a.double(), full_matrices=False)
    approx = (u[:, :rank] * s[:rank]) @ vh[:rank]
    return approx.to(w.dtype).reshape(w.shape)


def svd_parameters(shape: tuple[int, ...] | torch.Size, rank: int) -> int:
    """Numbers stored for a rank-``rank`` factorization of a weight shaped ``shape``: r (m + n)."""
    m = int(shape[0])
    n = int(torch.Size(shape).numel() // max(m, 1))
    return _check_rank(rank, m, n) * (m + n)


def svd_rank_for(shape: tuple[int, ...] | torch.Size, keep: float) -> int:
    """The largest rank (at least 1) storing at most ``keep`` of the weight's numbers."""
    if not 0.0 < keep <= 1.0:
        raise DclabError(f"keep must be a fraction in (0, 1], not {keep!r}")
    m = int(shape[0])
    n = int(torch.Size(shape).numel() // max(m, 1))
    return max(1, min(min(m, n), int(keep * m * n // (m + n))))


def svd_compress_(model: nn.Module, keep: float) -> dict[str, int]:
    """Replace every Linear/Conv2d weight by its low-rank approximation; return the rank per layer.

    Each layer gets the largest rank that stores at most ``keep`` of its weights
    (and at least rank 1), the SVD curve of Figure 6.
    """
    ranks = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            rank = svd_rank_for(module.weight.shape, keep)
            with torch.no_grad():
                module.weight.copy_(svd_compress(module.weight, rank))
            ranks[name] = rank
    return ranks
