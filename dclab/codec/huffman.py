"""Huffman coding of codebook indices and gaps: the third stage of Deep Compression.

Notebook 04 (Huffman coding). The last stage of Deep Compression codes the
quantized weight indices and the sparse gaps with a Huffman code: frequent
symbols get short codewords, rare ones long codewords, which saves another
20-30% on top of pruning and quantization (Han et al. 2016, section 4).

The code is *canonical* (as in DEFLATE and JPEG): the codewords follow from the
code lengths alone, so a file stores one length per symbol and no tree.
Canonical order sorts symbols by (length, symbol); the first codeword is all
zeros and each next one is the previous plus one, shifted left whenever the
length grows. Bits are packed most significant bit first.

Encoding is vectorised numpy (codewords are or-ed into 64-bit words);
decoding uses bitarray's ``canonical_decode``, written in C.
"""
from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
from bitarray import bitarray
from bitarray.util import canonical_decode

from dclab.errors import DclabError

MAX_CODE_LENGTH = 31
"""Longest codeword, in bits (the limit of bitarray's ``canonical_decode``)."""

MAX_ALPHABET = 2**16
"""Symbols are integers in ``[0, MAX_ALPHABET)`` (16-bit codebook indices or gaps)."""

_U = np.uint64

Freqs = Union[Mapping[int, int], Sequence[int], np.ndarray]
Symbols = Union[np.ndarray, torch.Tensor, Sequence[int]]


@dataclass(frozen=True, eq=False)
class HuffmanStream:
    """A Huffman-coded sequence: code lengths per symbol plus the packed bits (notebook 04).

    ``lengths[s]`` is the codeword length of symbol ``s`` (0 = the symbol does
    not occur); it is all a decoder needs to rebuild the canonical code.
    ``payload`` holds ``n_bits`` bits, most significant bit first, padded with
    zero bits to a whole byte.
    """

    lengths: np.ndarray
    n_symbols: int
    n_bits: int
    payload: bytes

    @property
    def payload_bytes(self) -> int:
        """Bytes of coded data, without the code-length table."""
        return len(self.payload)

    @property
    def bits_per_symbol(self) -> float:
        """Average coded bits per symbol (0.0 for an empty stream)."""
        return self.n_bits / self.n_symbols if self.n_symbols else 0.0

    def __repr__(self) -> str:
        used = int(np.count_nonzero(self.lengths))
        return (
            f"HuffmanStream(n_symbols={self.n_symbols}, n_bits={self.n_bits}, "
            f"payload_bytes={self.payload_bytes}, alphabet={used}, "
            f"bits_per_symbol={self.bits_per_symbol:.3f})"
        )


# ---------------------------------------------------------------------------
# Frequencies, entropy and code lengths


def _freq_array(freqs: Freqs) -> np.ndarray:
    """Counts as an int64 array indexed by symbol."""
    if isinstance(freqs, Mapping):
        if not freqs:
            return np.zeros(0, dtype=np.int64)
        keys = list(freqs)
        if not all(isinstance(k, (int, np.integer)) and 0 <= k < MAX_ALPHABET for k in keys):
            raise DclabError(f"Huffman symbols must be integers in [0, {MAX_ALPHABET}); got keys {keys[:5]}...")
        out = np.zeros(int(max(keys)) + 1, dtype=np.int64)
        out[np.asarray(keys, dtype=np.int64)] = np.asarray([freqs[k] for k in keys], dtype=np.int64)
    else:
        out = np.asarray(freqs, dtype=np.int64).ravel()
        if out.size > MAX_ALPHABET:
            raise DclabError(f"a Huffman alphabet has at most {MAX_ALPHABET} symbols; got {out.size}")
    if out.size and out.min() < 0:
        raise DclabError("symbol frequencies must be >= 0")
    return out


def frequencies(symbols: Symbols) -> np.ndarray:
    """Count how often each symbol occurs: ``counts[s]`` (notebook 04, Figure 5's histograms)."""
    sym = as_symbols(symbols)
    return np.bincount(sym) if sym.size else np.zeros(0, dtype=np.int64)


def entropy_bits(freqs: Freqs) -> float:
    """Shannon entropy in bits per symbol: the lower bound of any code's mean length (notebook 04)."""
    f = _freq_array(freqs)
    f = f[f > 0].astype(np.float64)
    if f.size == 0:
        return 0.0
    p = f / f.sum()
    return float(-(p * np.log2(p)).sum())


def _huffman_depths(weights: list[int]) -> list[int]:
    """Depth of each leaf in a Huffman tree built on ``weights`` (at least two, all > 0)."""
    # The textbook construction: repeatedly merge the two lightest subtrees.
    # Ties break on node id, so the result is deterministic.
    n = len(weights)
    heap = [(w, node) for node, w in enumerate(weights)]
    heapq.heapify(heap)
    parent = [0] * (2 * n - 1)
    next_node = n
    while len(heap) > 1:
        w1, a = heapq.heappop(heap)
        w2, b = heapq.heappop(heap)
        parent[a] = parent[b] = next_node
        heapq.heappush(heap, (w1 + w2, next_node))
        next_node += 1
    # Internal nodes were created after their children, so walking from the
    # root (the last node) downwards sees every parent before its children.
    depth = [0] * (2 * n - 1)
    for node in range(2 * n - 3, -1, -1):
        depth[node] = depth[parent[node]] + 1
    return depth[:n]


def length_array(freqs: Freqs, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Huffman code lengths as a uint8 array indexed by symbol, 0 for absent symbols (notebook 04)."""
    f = _freq_array(freqs)
    lengths = np.zeros(f.size, dtype=np.uint8)
    used = np.flatnonzero(f)
    if used.size == 1:
        lengths[used] = 1  # a prefix code spends at least one bit, as DEFLATE does
    if used.size <= 1:
        return lengths
    if not 1 <= max_length <= MAX_CODE_LENGTH or used.size > 2**max_length:
        raise DclabError(f"cannot code {used.size} symbols with codewords of at most {max_length} bits")
    weights = f[used].tolist()
    while True:
        depths = _huffman_depths(weights)
        if max(depths) <= max_length:
            break
        # Too deep (only for extremely skewed counts): flatten the distribution
        # by halving every count and rebuild. Counts of 1 stay 1, so this ends
        # at worst with a balanced tree.
        weights = [max(1, w >> 1) for w in weights]
    lengths[used] = depths
    return lengths


def code_lengths(freqs: Freqs) -> dict[int, int]:
    """Optimal prefix code lengths ``{symbol: bits}`` for the symbols that occur (notebook 04)."""
    lengths = length_array(freqs)
    return {int(s): int(lengths[s]) for s in np.flatnonzero(lengths)}


def mean_code_length(freqs: Freqs, lengths: Mapping[int, int] | np.ndarray | None = None) -> float:
    """Average bits per symbol of a code (default: the Huffman code) under ``freqs`` (notebook 04)."""
    f = _freq_array(freqs)
    if lengths is None:
        lengths = length_array(f)
    lens = _length_table(lengths, f.size)
    total = int(f.sum())
    if total == 0:
        return 0.0
    if np.any((f > 0) & (lens == 0)):
        raise DclabError("the code has no codeword for a symbol that occurs")
    return float((f * lens).sum() / total)


# ---------------------------------------------------------------------------
# Canonical codes


def _length_table(lengths: Mapping[int, int] | np.ndarray | Sequence[int], size: int = 0) -> np.ndarray:
    """Code lengths as an int64 array indexed by symbol, at least ``size`` long."""
    if isinstance(lengths, Mapping):
        table = np.zeros(max([size, *(int(s) + 1 for s in lengths)]), dtype=np.int64)
        for s, n in lengths.items():
            table[int(s)] = int(n)
    else:
        table = np.asarray(lengths, dtype=np.int64).ravel()
        if table.size < size:
            table = np.concatenate([table, np.zeros(size - table.size, dtype=np.int64)])
    return table


def check_lengths(lengths: np.ndarray) -> None:
    """Raise DclabError unless ``lengths`` describe a valid prefix code (Kraft sum <= 1)."""
    lens = np.asarray(lengths, dtype=np.int64)
    if lens.size > MAX_ALPHABET:
        raise DclabError(f"a Huffman table has at most {MAX_ALPHABET} symbols; got {lens.size}")
    if lens.size and (lens.min() < 0 or lens.max() > MAX_CODE_LENGTH):
        raise DclabError(f"code lengths must be in [0, {MAX_CODE_LENGTH}]")
    used = lens[lens > 0]
    # Kraft's inequality, in integers: sum 2**(L - l) <= 2**L.
    if used.size and int((np.int64(1) << (MAX_CODE_LENGTH - used)).sum()) > 1 << MAX_CODE_LENGTH:
        raise DclabError("code lengths are over-subscribed (Kraft sum > 1): not a prefix code")


def _canonical_order(lens: np.ndarray) -> np.ndarray:
    """Symbols with a codeword, sorted by (length, symbol)."""
    used = np.flatnonzero(lens)
    return used[np.lexsort((used, lens[used]))]


def _canonical_code_array(lens: np.ndarray) -> np.ndarray:
    """Canonical codewords as uint64 integers indexed by symbol (0 where unused)."""
    codes = np.zeros(lens.size, dtype=np.uint64)
    order = _canonical_order(lens)
    if order.size == 0:
        return codes
    sorted_lens = lens[order]
    # The DEFLATE recurrence: code[i] = (code[i-1] + 1) << (len[i] - len[i-1]).
    # Only as many iterations as distinct lengths: within one length the codes count up.
    code, prev_len, start = 0, int(sorted_lens[0]), 0
    for length in np.unique(sorted_lens):
        length = int(length)
        stop = start + int(np.count_nonzero(sorted_lens == length))
        code <<= length - prev_len
        codes[order[start:stop]] = np.arange(code, code + stop - start, dtype=np.uint64)
        code += stop - start
        prev_len, start = length, stop
    return codes


def canonical_codes(lengths: Mapping[int, int] | np.ndarray | Sequence[int]) -> dict[int, str]:
    """Canonical codewords ``{symbol: "0101"}`` from code lengths alone (notebook 04)."""
    lens = _length_table(lengths)
    check_lengths(lens)
    codes = _canonical_code_array(lens)
    return {int(s): format(int(codes[s]), f"0{int(lens[s])}b") for s in _canonical_order(lens)}


# ---------------------------------------------------------------------------
# Bit packing


def as_symbols(symbols: Symbols) -> np.ndarray:
    """Symbols as a flat int64 numpy array, checked to lie in [0, MAX_ALPHABET)."""
    if isinstance(symbols, torch.Tensor):
        symbols = symbols.detach().cpu().numpy()
    sym = np.asarray(symbols)
    if sym.size == 0:
        return np.zeros(0, dtype=np.int64)
    if sym.dtype.kind not in "iub":
        raise DclabError(f"a symbol stream holds integers (codebook indices or gaps); got dtype {sym.dtype}")
    sym = sym.ravel().astype(np.int64, copy=False)
    lo, hi = int(sym.min()), int(sym.max())
    if lo < 0 or hi >= MAX_ALPHABET:
        raise DclabError(f"symbols must lie in [0, {MAX_ALPHABET}); got [{lo}, {hi}]")
    return sym


def pack_codes(codes: np.ndarray, lengths: np.ndarray | int) -> tuple[bytes, int]:
    """Concatenate codewords (``lengths`` bits each, at most 64, MSB first) into bytes; returns (bytes, n_bits)."""
    codes = np.asarray(codes, dtype=np.uint64).ravel()
    lens = np.broadcast_to(np.asarray(lengths, dtype=np.uint64), codes.shape)
    if codes.size == 0:
        return b"", 0
    if int(lens.max()) > 64:
        raise DclabError("a codeword can hold at most 64 bits")
    ends = np.cumsum(lens)
    n_bits = int(ends[-1])
    word = (ends - lens) >> _U(6)  # the 64-bit word each codeword starts in
    end = ends - (word << _U(6))  # where it ends, counted from that word's top bit
    # The part in the first word: shifted up to its place, or down if it spills over.
    # (numpy defines shifts by >= 64 bits as 0, which the zero-length padding relies on.)
    first = (codes << (_U(64) - np.minimum(end, _U(64)))) >> (np.maximum(end, _U(64)) - _U(64))
    words = np.zeros(((n_bits + 63) >> 6) + 1, dtype=np.uint64)
    # Codewords in one word occupy disjoint bits, so their sum is their bitwise or.
    heads = np.flatnonzero(np.diff(word, prepend=_U(1) << _U(63)))
    words[word[heads]] = np.add.reduceat(first, heads)
    spill = np.flatnonzero(end > _U(64))
    if spill.size:
        # The low bits that did not fit go to the top of the next word
        # (at most one codeword spills into any word).
        words[word[spill] + _U(1)] |= codes[spill] << (_U(128) - end[spill])
    return words.astype(">u8").tobytes()[: (n_bits + 7) // 8], n_bits


def _symbol_codewords(sym: np.ndarray, codes: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codeword and length of each symbol, merged into as few <= 64-bit words as possible.

    Packing costs per codeword, so neighbours are concatenated first: two
    symbols at a time through a table of all pairs when the alphabet is small,
    then halving again while twice the longest merged codeword fits in 64 bits.
    """
    lens = lens.astype(np.uint64)
    max_len = int(lens.max())
    if lens.size <= 256 and sym.size >= 2 and 2 * max_len <= 64:
        pair_codes = ((codes[:, None] << lens[None, :]) | codes[None, :]).ravel()
        pair_lens = (lens[:, None] + lens[None, :]).ravel()
        even = sym.size - sym.size % 2
        pairs = sym[0:even:2] * lens.size + sym[1:even:2]
        c, n = pair_codes[pairs], pair_lens[pairs]
        if even < sym.size:
            c, n = np.append(c, codes[sym[-1]]), np.append(n, lens[sym[-1]])
        max_len *= 2
    else:
        c, n = codes[sym], lens[sym]
    while 2 * max_len <= 64 and c.size > 1:
        if c.size % 2:  # pad with an empty codeword
            c, n = np.append(c, _U(0)), np.append(n, _U(0))
        c, n = (c[0::2] << n[1::2]) | c[1::2], n[0::2] + n[1::2]
        max_len *= 2
    return c, n


def unpack_fixed(payload: bytes, n_values: int, width: int) -> np.ndarray:
    """Read ``n_values`` unsigned integers of ``width`` bits each (MSB first) from ``payload``."""
    if not 1 <= width <= 32:
        raise DclabError(f"fixed-width fields hold 1 to 32 bits; got {width}")
    if len(payload) * 8 < n_values * width:
        raise DclabError(f"{len(payload)} bytes cannot hold {n_values} values of {width} bits")
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=n_values * width)
    weights = np.left_shift(np.int64(1), np.arange(width - 1, -1, -1, dtype=np.int64))
    return bits.reshape(n_values, width).astype(np.int64) @ weights


# ---------------------------------------------------------------------------
# Encode and decode


def encode(symbols: Symbols, lengths: Mapping[int, int] | np.ndarray | None = None) -> HuffmanStream:
    """Huffman-code integer symbols (by default with the optimal code for their own counts) (notebook 04)."""
    sym = as_symbols(symbols)
    if lengths is None:
        lens = length_array(np.bincount(sym) if sym.size else [])
    else:
        lens = _length_table(lengths).astype(np.uint8)
        check_lengths(lens)
        if sym.size and (int(sym.max()) >= lens.size or not lens[sym].all()):
            raise DclabError("the given code lengths have no codeword for some symbol to encode")
    if sym.size == 0:
        return HuffmanStream(lengths=lens, n_symbols=0, n_bits=0, payload=b"")
    codes = _canonical_code_array(lens.astype(np.int64))
    payload, n_bits = pack_codes(*_symbol_codewords(sym, codes, lens))
    return HuffmanStream(lengths=lens, n_symbols=int(sym.size), n_bits=n_bits, payload=payload)


def decode(stream: HuffmanStream) -> np.ndarray:
    """Restore the exact symbols (int64) of a HuffmanStream; DclabError if it is corrupt (notebook 04)."""
    lens = np.asarray(stream.lengths, dtype=np.int64).ravel()
    check_lengths(lens)
    n_symbols, n_bits = int(stream.n_symbols), int(stream.n_bits)
    if n_symbols < 0 or n_bits < 0:
        raise DclabError("a Huffman stream cannot have a negative size")
    if len(stream.payload) != (n_bits + 7) // 8:
        raise DclabError(f"a stream of {n_bits} bits needs {(n_bits + 7) // 8} bytes, not {len(stream.payload)}")
    if n_symbols == 0:
        if n_bits:
            raise DclabError("an empty Huffman stream must have no bits")
        return np.zeros(0, dtype=np.int64)
    order = _canonical_order(lens)
    if order.size == 0:
        raise DclabError("the Huffman stream has symbols but its code has no codewords")
    if n_bits < n_symbols or n_bits > n_symbols * int(lens.max()):
        raise DclabError(f"{n_bits} bits cannot hold exactly {n_symbols} codewords of this code")
    bits = bitarray(endian="big")
    bits.frombytes(stream.payload)
    if bits[n_bits:].any():
        raise DclabError("the padding bits after the last codeword must be zero")
    del bits[n_bits:]
    count = np.bincount(lens[order], minlength=int(lens.max()) + 1).tolist()
    symbol = order.tolist()
    it = canonical_decode(bits, count, symbol)
    try:
        if lens.size <= 256:  # collecting bytes is about twice as fast as np.fromiter
            out = np.frombuffer(bytes(it), dtype=np.uint8).astype(np.int64)
        else:
            out = np.fromiter(it, dtype=np.int64, count=n_symbols)
            if next(it, None) is not None:
                raise ValueError("more codewords than declared")
    except ValueError as err:  # too few codewords, or bits that match no codeword
        raise DclabError(f"corrupt Huffman stream: {err}") from None
    if out.size != n_symbols:
        raise DclabError(f"the Huffman stream holds {out.size} symbols, not the {n_symbols} it declares")
    return out


def coded_bits(freqs: Freqs, lengths: Mapping[int, int] | np.ndarray | None = None) -> int:
    """Total bits of the payload when symbols with counts ``freqs`` are Huffman-coded (notebook 04)."""
    f = _freq_array(freqs)
    if lengths is None:
        lengths = length_array(f)
    lens = _length_table(lengths, f.size)[: f.size]
    return int((f * lens).sum())


__all__ = [
    "MAX_ALPHABET",
    "MAX_CODE_LENGTH",
    "HuffmanStream",
    "canonical_codes",
    "check_lengths",
    "code_lengths",
    "coded_bits",
    "decode",
    "encode",
    "entropy_bits",
    "frequencies",
    "length_array",
    "mean_code_length",
    "pack_codes",
    "unpack_fixed",
]
