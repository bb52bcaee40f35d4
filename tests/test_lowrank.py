"""Truncated SVD baseline (Figure 6): exact rank, Eckart-Young error, parameter counts."""
import pytest
import torch
from torch import nn

from dclab.algorithms.lowrank import (
    svd_compress,
    svd_compress_,
    svd_parameters,
    svd_rank_for,
)
from dclab.errors import DclabError


def test_rank_r_matrix_is_recovered_exactly():
    torch.manual_seed(0)
    w = torch.randn(30, 3) @ torch.randn(3, 20)
    assert torch.allclose(svd_compress(w, 3), w, atol=1e-5)
    assert torch.linalg.matrix_rank(svd_compress(w, 2)).item() == 2


def test_error_is_the_dropped_singular_values():
    torch.manual_seed(1)
    w = torch.randn(40, 25)
    s = torch.linalg.svdvals(w.double())
    for rank in (1, 5, 24):
        err = (svd_compress(w, rank).double() - w.double()).pow(2).sum()
        assert err.item() == pytest.approx(s[rank:].pow(2).sum().item(), rel=1e-4)


def test_conv_kernels_are_flattened_per_output_channel():
    w = torch.randn(8, 4, 3, 3)
    approx = svd_compress(w, 8)
    assert approx.shape == w.shape and torch.allclose(approx, w, atol=1e-5)
    assert svd_parameters(w.shape, 2) == 2 * (8 + 36)


def test_rank_for_a_budget_and_model_wide_compression():
    assert svd_rank_for((300, 784), 0.1) == int(0.1 * 300 * 784 // 1084)
    assert svd_rank_for((10, 10), 0.01) == 1
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(50, 40), nn.ReLU(), nn.Linear(40, 10))
    ranks = svd_compress_(model, 0.5)
    assert ranks == {"0": 11, "2": 4}  # 0.5 * 2000 // 90, 0.5 * 400 // 50
    assert torch.linalg.matrix_rank(model[0].weight.detach()).item() == 11


@pytest.mark.parametrize("rank", [0, 21, 1.5])
def test_bad_rank_is_a_clear_error(rank):
    with pytest.raises(DclabError, match="rank must be an integer from 1 to 20"):
        svd_compress(torch.randn(20, 30), rank)
    with pytest.raises(DclabError, match="matrix"):
        svd_compress(torch.randn(5), 1)
