"""Sparse storage of a pruned layer with relative indices ("gaps") and filler zeros.

Notebooks 02 (storing a pruned layer) and 04; Figure 2 of Deep Compression
(Han et al. 2016): instead of the absolute position of each kept weight, store
the gap to the previous stored entry, in ``gap_bits`` bits. A gap too long for those
bits is bridged with filler entries whose value is codebook index 0 (the value
0.0), so every stored gap fits.

Convention (also in ``docs/dcz-format.md``): the layer's indices are read
row-major; the first gap counts from position -1; a gap is at least 1 and at
most ``2**gap_bits``, written as ``gap - 1`` in ``gap_bits`` bits. A filler
always has the longest gap, ``2**gap_bits``. The paper's 3-bit example,
non-zeros at positions 1, 4 and 15 of 16, stores gaps 2, 3, 8, 3 and values
v1, v4, 0 (a filler at position 12), v15.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch

from dclab.codec import huffman
from dclab.deprecation import renamed_keywords
from dclab.errors import DclabError

MAX_GAP_BITS = 16
"""The widest gap field: gaps up to 2**16 positions."""

Indices = Union[np.ndarray, torch.Tensor]


@dataclass(frozen=True, eq=False)
class SparseLayer:
    """A layer's codebook indices as (gap, value) entries, fillers included (notebooks 02, 04).

    ``gaps[i]`` is the distance from the previous entry (from position -1 for
    the first), in ``[1, 2**gap_bits]``; ``values[i]`` is the codebook index
    stored there (0 for a filler). ``length`` is the number of weights, so
    trailing zeros come back on decoding.
    """

    gaps: np.ndarray
    values: np.ndarray
    length: int
    gap_bits: int

    @property
    def n_entries(self) -> int:
        """Stored entries: the non-zeros plus the fillers."""
        return int(self.gaps.size)

    @property
    def n_fillers(self) -> int:
        """Filler entries (value 0) inserted to bridge gaps longer than ``2**gap_bits``."""
        return int(np.count_nonzero(self.values == 0))

    @property
    def n_nonzero(self) -> int:
        """Entries holding a kept weight."""
        return self.n_entries - self.n_fillers

    @property
    def positions(self) -> np.ndarray:
        """Absolute row-major position of every entry."""
        return np.cumsum(self.gaps, dtype=np.int64) - 1

    @property
    def gap_codes(self) -> np.ndarray:
        """The gaps as written in ``gap_bits`` bits: ``gap - 1``, in ``[0, 2**gap_bits)``."""
        return self.gaps.astype(np.int64) - 1

    def __repr__(self) -> str:
        return (
            f"SparseLayer(length={self.length}, gap_bits={self.gap_bits}, "
            f"n_entries={self.n_entries}, n_fillers={self.n_fillers})"
        )


def _check_gap_bits(gap_bits: int) -> int:
    if not isinstance(gap_bits, (int, np.integer)) or not 1 <= gap_bits <= MAX_GAP_BITS:
        raise DclabError(f"gap_bits must be an integer in [1, {MAX_GAP_BITS}]; got {gap_bits!r}")
    return int(gap_bits)


@renamed_keywords
def encode_gaps(flat_indices: Indices, gap_bits: int) -> SparseLayer:
    """Store the non-zero codebook indices as gaps and values, with filler zeros (notebooks 02 and 04, Figure 2)."""
    gap_bits = _check_gap_bits(gap_bits)
    if isinstance(flat_indices, torch.Tensor):
        flat_indices = flat_indices.detach().cpu().numpy()
    idx = np.asarray(flat_indices).ravel()
    if idx.size and idx.dtype.kind not in "iub":
        raise DclabError(f"codebook indices must be integers; got dtype {idx.dtype}")
    if idx.size and int(idx.min()) < 0:
        raise DclabError("codebook indices must be >= 0")
    max_gap = 1 << gap_bits
    pos = np.flatnonzero(idx)
    gap = np.diff(pos, prepend=-1)
    # Entry j needs (gap - 1) // max_gap fillers before it, each max_gap apart;
    # what is left over, gap - fillers * max_gap, lies in [1, max_gap].
    n_fill = (gap - 1) // max_gap
    slot = np.arange(pos.size) + np.cumsum(n_fill)  # where entry j lands among all entries
    n_entries = pos.size + int(n_fill.sum())
    gaps = np.full(n_entries, max_gap, dtype=np.uint32)
    values = np.zeros(n_entries, dtype=np.uint32)
    gaps[slot] = gap - n_fill * max_gap
    values[slot] = idx[pos]
    return SparseLayer(gaps=gaps, values=values, length=int(idx.size), gap_bits=gap_bits)


def decode_gaps(gaps: np.ndarray, values: np.ndarray, length: int) -> np.ndarray:
    """Restore ``length`` flat int64 codebook indices, 0 where nothing is stored (notebooks 02, 04)."""
    gaps = np.asarray(gaps).ravel()
    values = np.asarray(values).ravel()
    length = int(length)
    if gaps.shape != values.shape:
        raise DclabError(f"{gaps.size} gaps but {values.size} values: they must pair up")
    if length < 0:
        raise DclabError(f"a layer length cannot be negative; got {length}")
    out = np.zeros(length, dtype=np.int64)
    if gaps.size == 0:
        return out
    if gaps.dtype.kind not in "iu" or values.dtype.kind not in "iu":
        raise DclabError("gaps and values must be integer arrays")
    if int(gaps.min()) < 1:
        raise DclabError("every gap must be >= 1 (the first counts from position -1)")
    positions = np.cumsum(gaps, dtype=np.int64) - 1
    if positions[-1] >= length:
        raise DclabError(f"the entries reach position {positions[-1]}, past the layer's {length} weights")
    out[positions] = values
    return out


def fixed_width_bits(layer: SparseLayer, bits: int) -> int:
    """Bits of the layer stored at fixed width: entries x (bits + gap_bits), the paper's P+Q size (Table 2)."""
    return layer.n_entries * (int(bits) + layer.gap_bits)


@renamed_keywords
def count_entries(flat_indices: Indices, gap_bits: int) -> int:
    """Entries (non-zeros plus fillers) a layer needs, without building them (notebook 02 sliders)."""
    gap_bits = _check_gap_bits(gap_bits)
    if isinstance(flat_indices, torch.Tensor):
        flat_indices = flat_indices.detach().cpu().numpy()
    pos = np.flatnonzero(np.asarray(flat_indices).ravel())
    gap = np.diff(pos, prepend=-1)
    return int(pos.size + ((gap - 1) >> gap_bits).sum())


# ---------------------------------------------------------------- the pruning-only stage: gaps + float32 values


@renamed_keywords
def encode_pruned(w: torch.Tensor, mask: torch.Tensor, gap_bits: int = 5) -> bytes:
    """A pruned layer in the relative-index sparse format: gaps of ``gap_bits`` + float32 values (notebook 02).

    Layout: u32 entries, u32 weights, the gap codes packed at ``gap_bits`` bits
    each (``dclab.codec.sparse``, filler zeros included), then one little-endian
    float32 per entry (0.0 for a filler). This is the pruning-only stage of Deep
    Compression: positions cost ``gap_bits``, values stay 32-bit floats.
    """
    if tuple(mask.shape) != tuple(w.shape):
        raise DclabError(f"mask is shaped {tuple(mask.shape)} but the weight is {tuple(w.shape)}")
    keep = mask.detach().reshape(-1).cpu().numpy().astype(np.uint8)
    layer = encode_gaps(keep, gap_bits)
    values = np.zeros(layer.n_entries, dtype="<f4")
    real = layer.values != 0
    values[real] = w.detach().reshape(-1).cpu().numpy()[layer.positions[real]]
    gaps, _ = huffman.pack_codes(layer.gap_codes, gap_bits)
    return struct.pack("<II", layer.n_entries, layer.length) + gaps + values.tobytes()


@renamed_keywords
def decode_pruned(data: bytes, shape: Sequence[int], gap_bits: int = 5) -> torch.Tensor:
    """The dense float32 weight back from ``encode_pruned`` bytes (zeros where pruned)."""
    if len(data) < 8:
        raise DclabError("pruned-layer bytes are too short: they start with two u32 counts")
    n_entries, length = struct.unpack_from("<II", data)
    if length != math.prod(shape):
        raise DclabError(f"the bytes hold {length} weights, not the {math.prod(shape)} of shape {tuple(shape)}")
    gap_bytes = (n_entries * gap_bits + 7) // 8
    if len(data) != 8 + gap_bytes + 4 * n_entries:
        raise DclabError(f"{len(data)} bytes do not hold {n_entries} entries of {gap_bits}-bit gaps + float32")
    gaps = huffman.unpack_fixed(data[8 : 8 + gap_bytes], n_entries, gap_bits) + 1
    values = np.frombuffer(data[8 + gap_bytes :], dtype="<f4")
    slots = decode_gaps(gaps, np.arange(1, n_entries + 1), length)  # entry number + 1 at each stored position
    dense = np.zeros(length, dtype=np.float32)
    stored = slots > 0
    dense[stored] = values[slots[stored] - 1]
    return torch.from_numpy(dense).reshape(tuple(shape))
