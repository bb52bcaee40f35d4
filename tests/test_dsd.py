"""Dense-sparse-dense training (dclab.pipeline.dsd): the sparse phase holds pruned weights at 0, the dense phase
releases them. Deterministic small runs on synthetic digits; no accuracy asserted."""
from __future__ import annotations

import pytest
import torch

from dclab.algorithms.prune import magnitude_mask
from dclab.errors import DclabError
from dclab.pipeline.dsd import dsd


def test_sparse_phase_keeps_the_pruned_weights_at_zero(untrained_lenet300, synthetic_digits):
    before = {n: p.clone() for n, p in untrained_lenet300.state_dict().items()}
    result = dsd(untrained_lenet300, synthetic_digits.subset(256), sparsity={"ip1": 0.5, "ip2": 0.3},
                 sparse_epochs=1, dense_epochs=0, max_shift=0.0, progress=False)
    assert all(torch.equal(untrained_lenet300.state_dict()[n], p) for n, p in before.items())  # a copy was trained
    assert set(result.masks) == {"ip1", "ip2"}  # ip3 left out: dense
    for name in ("ip1", "ip2"):
        mask = result.masks[name]
        assert torch.equal(mask, magnitude_mask(before[f"{name}.weight"], {"ip1": 0.5, "ip2": 0.3}[name]))
        w = getattr(result.model, name).weight
        assert bool((w[~mask] == 0).all())
        assert bool((w[mask] != before[f"{name}.weight"][mask]).any())  # the survivors trained
    assert len(result.sparse_history) == 1 and result.dense_history == []


def test_dense_phase_releases_the_mask(untrained_lenet300, synthetic_digits):
    kwargs = dict(sparsity=0.5, sparse_epochs=1, max_shift=0.0, progress=False)
    sparse = dsd(untrained_lenet300, synthetic_digits.subset(256), dense_epochs=0, **kwargs)
    dense = dsd(untrained_lenet300, synthetic_digits.subset(256), dense_epochs=1, **kwargs)
    for name, mask in dense.masks.items():
        assert torch.equal(mask, sparse.masks[name])  # the same sparse phase (seeded)
        w = getattr(dense.model, name).weight
        assert (w[~mask] != 0).float().mean() > 0.5  # the pruned weights restarted from 0 and trained
    assert len(dense.dense_history) == 1


def test_bad_settings_are_refused(untrained_lenet300, synthetic_digits):
    with pytest.raises(DclabError, match=r"in \[0, 1\)"):
        dsd(untrained_lenet300, synthetic_digits, sparsity=1.0)
    with pytest.raises(DclabError, match="no layer conv1"):
        dsd(untrained_lenet300, synthetic_digits, sparsity={"conv1": 0.3})
