"""Sparse storage with gaps and filler zeros: cases worked by hand, round-trip properties."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dclab.codec import sparse
from dclab.errors import DclabError


def _layer(length: int, nonzeros: dict[int, int]) -> np.ndarray:
    x = np.zeros(length, dtype=np.int64)
    for pos, value in nonzeros.items():
        x[pos] = value
    return x


def test_paper_figure_2_by_hand():
    # 16 weights, non-zeros at 1, 4, 15, 3-bit gaps (1..8): 15 - 4 = 11 > 8 needs one filler at 12.
    x = _layer(16, {1: 5, 4: 6, 15: 7})
    s = sparse.encode_gaps(x, gap_bits=3)
    assert s.gaps.tolist() == [2, 3, 8, 3]
    assert s.values.tolist() == [5, 6, 0, 7]
    assert s.gap_codes.tolist() == [1, 2, 7, 2]  # what 3 bits store
    assert s.positions.tolist() == [1, 4, 12, 15]
    assert (s.n_entries, s.n_fillers, s.n_nonzero, s.length) == (4, 1, 3, 16)
    assert sparse.fixed_width_bits(s, bits=5) == 4 * (5 + 3)
    assert sparse.decode_gaps(s.gaps, s.values, 16).tolist() == x.tolist()


def test_fillers_by_hand():
    # gap_bits = 2: gaps 1..4. From position -1: entry at 0 (gap 1), then gaps 4, 5, 8, 9, 13.
    x = _layer(40, {0: 1, 4: 2, 9: 3, 17: 1, 26: 2, 39: 3})
    s = sparse.encode_gaps(x, gap_bits=2)
    # gap 4 fits; 5 = 4 + 1; 8 = 4 + 4; 9 = 4 + 4 + 1; 13 = 4 + 4 + 4 + 1.
    assert s.gaps.tolist() == [1, 4, 4, 1, 4, 4, 4, 4, 1, 4, 4, 4, 1]
    assert s.values.tolist() == [1, 2, 0, 3, 0, 1, 0, 0, 2, 0, 0, 0, 3]
    assert s.n_fillers == 7
    assert sparse.count_entries(x, 2) == s.n_entries == 13
    assert sparse.decode_gaps(s.gaps, s.values, 40).tolist() == x.tolist()


def test_gap_of_exactly_the_maximum_needs_no_filler():
    s = sparse.encode_gaps(_layer(8, {7: 1}), gap_bits=3)  # gap 8 from -1
    assert s.gaps.tolist() == [8] and s.n_fillers == 0
    s = sparse.encode_gaps(_layer(9, {8: 1}), gap_bits=3)  # gap 9 = 8 + 1
    assert s.gaps.tolist() == [8, 1] and s.values.tolist() == [0, 1]


def test_all_zeros_and_trailing_zeros():
    s = sparse.encode_gaps(np.zeros(50, dtype=np.int64), gap_bits=4)
    assert s.n_entries == 0 and s.length == 50
    assert sparse.decode_gaps(s.gaps, s.values, s.length).tolist() == [0] * 50
    x = _layer(1000, {2: 3})  # 997 trailing zeros cost nothing: the length restores them
    s = sparse.encode_gaps(x, gap_bits=2)
    assert s.n_entries == 1
    assert sparse.decode_gaps(s.gaps, s.values, 1000).tolist() == x.tolist()
    empty = sparse.encode_gaps(np.zeros(0, dtype=np.int64), gap_bits=1)
    assert empty.n_entries == 0 and sparse.decode_gaps(empty.gaps, empty.values, 0).size == 0


def test_accepts_a_shaped_tensor_row_major():
    w = torch.tensor([[0, 2, 0], [0, 0, 1]])
    s = sparse.encode_gaps(w, gap_bits=1)  # gaps 1..2: positions 1 (gap 2), 5 (gap 4 = 2 + 2)
    assert s.gaps.tolist() == [2, 2, 2] and s.values.tolist() == [2, 0, 1]
    assert sparse.decode_gaps(s.gaps, s.values, 6).tolist() == w.flatten().tolist()


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.int64, st.integers(0, 300), elements=st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2, 7, 31])),
    st.integers(1, 6),
)
def test_roundtrip_and_invariants(x, gap_bits):
    s = sparse.encode_gaps(x, gap_bits)
    assert np.array_equal(sparse.decode_gaps(s.gaps, s.values, s.length), x)
    max_gap = 2**gap_bits
    assert s.gaps.size == s.values.size == s.n_entries
    assert np.all((s.gaps >= 1) & (s.gaps <= max_gap))
    assert np.all(s.gaps[s.values == 0] == max_gap)  # a filler always bridges a full gap
    assert s.n_entries == 0 or s.values[-1] != 0  # never a trailing filler
    assert s.n_nonzero == np.count_nonzero(x)
    assert s.n_entries == sparse.count_entries(x, gap_bits)
    assert sparse.fixed_width_bits(s, 4) == s.n_entries * (4 + gap_bits)
    # The minimum: every run of zeros longer than the reach of one gap costs fillers.
    gaps = np.diff(np.flatnonzero(x), prepend=-1)
    assert s.n_fillers == int(((gaps - 1) // max_gap).sum())


def test_bad_input_raises():
    with pytest.raises(DclabError, match="gap_bits"):
        sparse.encode_gaps(np.ones(3, dtype=np.int64), gap_bits=0)
    with pytest.raises(DclabError, match="gap_bits"):
        sparse.encode_gaps(np.ones(3, dtype=np.int64), gap_bits=17)
    with pytest.raises(DclabError, match=">= 0"):
        sparse.encode_gaps(np.array([0, -1]), gap_bits=2)
    with pytest.raises(DclabError, match="integers"):
        sparse.encode_gaps(np.array([0.0, 1.5]), gap_bits=2)
    with pytest.raises(DclabError, match="past"):
        sparse.decode_gaps(np.array([2, 3]), np.array([1, 1]), length=4)
    with pytest.raises(DclabError, match=">= 1"):
        sparse.decode_gaps(np.array([1, 0]), np.array([1, 1]), length=4)
    with pytest.raises(DclabError, match="pair up"):
        sparse.decode_gaps(np.array([1, 1]), np.array([1]), length=4)
