"""ANS coding of codebook indices and gaps: past Huffman's whole-bit limit (notebook 07, issue 15).

Huffman spends a whole number of bits per symbol; asymmetric numeral systems (ANS) spend
``-log2 p`` bits, fractions included. A stream is coded here with constriction's ``AnsCoder``
(32-bit words) under a static model: the stream's own symbol counts quantized to frequencies
``q[s]`` that sum to ``2**precision``, every symbol that occurs keeping ``q[s] >= 1``. The
decoder needs the model, so it is stored in front of the coded words, as small as it can be: the
precision in 5 bits, then each ``q[s] + 1`` as an Elias gamma code, up to the largest symbol that
occurs (the table ends where the frequencies reach ``2**precision``). The writer tries every
precision and keeps the one whose table and words together are the fewest bytes. A stream of
one distinct symbol has precision 0 and no words at all. The byte layout is in
``docs/dcz-format.md`` (version 3).

constriction turns the frequencies into its 24-bit model with ``Categorical(perfect=False)``,
which is exact integer arithmetic for frequencies that sum to a power of two (the bytes of a
known stream are pinned by a test). Decoding checks every count against the bytes present, and
refuses a stream that does not decode to exactly ``n_symbols`` symbols the table allows, using
every word.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
from bitarray import bitarray
from bitarray.util import ba2int

from dclab.codec import huffman
from dclab.errors import DclabError

MAX_PRECISION = 16
"""Largest table precision: frequencies sum to at most ``2**16``."""

_PRECISION_BITS = 5
Symbols = Union[np.ndarray, torch.Tensor, list]


@dataclass(frozen=True, eq=False)
class AnsStream:
    """An ANS-coded symbol stream: its frequency table and its coded words (notebook 07).

    ``freqs[s]`` is the quantized frequency of symbol ``s`` (they sum to ``2**precision``);
    ``table`` is how the file stores them (precision and gamma codes, padded to a byte) and
    ``payload`` the coded 32-bit words, little-endian.
    """

    precision: int
    freqs: np.ndarray
    n_symbols: int
    table: bytes
    payload: bytes

    @property
    def table_bytes(self) -> int:
        """Bytes of side data: the precision and the frequency table."""
        return len(self.table)

    @property
    def payload_bytes(self) -> int:
        """Bytes of coded data."""
        return len(self.payload)

    def to_bytes(self) -> bytes:
        """The stream as a ``.dcz`` stores it: table, then words."""
        return self.table + self.payload

    def __repr__(self) -> str:
        return (f"AnsStream(n_symbols={self.n_symbols}, precision={self.precision}, "
                f"table_bytes={self.table_bytes}, payload_bytes={self.payload_bytes})")


def quantize_counts(counts: np.ndarray, precision: int) -> np.ndarray:
    """Symbol counts as frequencies summing to ``2**precision``, at least 1 for every symbol that occurs.

    Each gets ``floor(count * 2**precision / n)`` (at least 1); what is left over goes one each to the
    largest remainders, and an excess is taken one at a time from the largest frequency.
    """
    counts = np.asarray(counts, dtype=np.int64)
    present = counts > 0
    total, n = 1 << precision, int(counts.sum())
    if int(present.sum()) > total:
        raise DclabError(f"{int(present.sum())} distinct symbols do not fit frequencies summing to 2**{precision}")
    q = np.where(present, np.maximum(1, counts * total // max(n, 1)), 0)
    short = total - int(q.sum())
    if short > 0:
        remainder = np.where(present, counts * total % max(n, 1), -1)
        order = np.lexsort((np.arange(q.size), -remainder))  # largest remainder first, then lowest symbol
        q[order[:short]] += 1
    while short < 0:
        q[int(np.argmax(q))] -= 1
        short += 1
    return q


def _model(freqs: np.ndarray):
    import constriction  # a compiled dependency: imported only when ANS is asked for

    return constriction.stream.model.Categorical(freqs.astype(np.float64), perfect=False)


def _table(precision: int, freqs: np.ndarray) -> bytes:
    values = freqs.astype(np.int64) + 1  # gamma codes start at 1
    lengths = np.array([2 * int(v).bit_length() - 1 for v in values], dtype=np.int64)
    codes = np.concatenate([[precision], values]).astype(np.uint64)
    payload, _ = huffman.pack_codes(codes, np.concatenate([[_PRECISION_BITS], lengths]))
    return payload


def _words(sym: np.ndarray, freqs: np.ndarray) -> bytes:
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(sym.astype(np.int32), _model(freqs))
    return coder.get_compressed().astype("<u4").tobytes()


def encode(symbols: Symbols) -> AnsStream:
    """ANS-code integer symbols with the quantized counts that give the fewest bytes (notebook 07)."""
    sym = huffman.as_symbols(symbols)
    if sym.size == 0:
        return AnsStream(0, np.zeros(0, np.int64), 0, b"", b"")
    counts = np.bincount(sym)
    used = int(np.count_nonzero(counts))
    if used == 1:
        freqs = (counts > 0).astype(np.int64)
        return AnsStream(0, freqs, int(sym.size), _table(0, freqs), b"")
    best = None
    for precision in range(max(1, (used - 1).bit_length()), MAX_PRECISION + 1):
        freqs = quantize_counts(counts, precision)
        stream = AnsStream(precision, freqs, int(sym.size), _table(precision, freqs), _words(sym, freqs))
        if best is None or len(stream.to_bytes()) < len(best.to_bytes()):
            best = stream
    return best


def decode(body: bytes, n_symbols: int, alphabet: int) -> tuple[np.ndarray, int, int]:
    """Symbols (int64) of a stream stored as ``body``: ``(symbols, table bytes, payload bytes)``.

    ``DclabError`` for anything an ``encode`` would not write: a table that overruns the alphabet or
    the frequencies' total, non-zero padding, words that are not whole, a stream that does not end
    exactly after ``n_symbols`` symbols, or a symbol the table gives no frequency.
    """
    body = bytes(body)
    if n_symbols == 0:
        if body:
            raise DclabError(f"an empty stream has no bytes; found {len(body)}")
        return np.zeros(0, np.int64), 0, 0
    bits = bitarray(endian="big")
    bits.frombytes(body[: (_PRECISION_BITS + alphabet * (2 * MAX_PRECISION + 1) + 7) // 8 + 1])
    if len(bits) < _PRECISION_BITS:
        raise DclabError("the stream ends inside its frequency table")
    precision = ba2int(bits[:_PRECISION_BITS])
    if precision > MAX_PRECISION:
        raise DclabError(f"precision {precision} is above {MAX_PRECISION}")
    total, pos, freqs, used = 1 << precision, _PRECISION_BITS, [], 0
    while used < total:
        if len(freqs) >= alphabet:
            raise DclabError(f"the frequency table is longer than the alphabet ({alphabet} symbols)")
        try:
            zeros = bits.index(1, pos) - pos
        except ValueError:
            raise DclabError("the stream ends inside its frequency table") from None
        if zeros > MAX_PRECISION or pos + 2 * zeros + 1 > len(bits):
            raise DclabError("the frequency table holds an invalid code")
        q = ba2int(bits[pos + zeros : pos + 2 * zeros + 1]) - 1
        pos += 2 * zeros + 1
        used += q
        if used > total:
            raise DclabError(f"the frequencies add up to more than 2**{precision}")
        freqs.append(q)
    table_bytes = (pos + 7) // 8
    if bits[pos : 8 * table_bytes].any():
        raise DclabError("the padding bits after the frequency table must be zero")
    freqs_arr = np.asarray(freqs, dtype=np.int64)
    payload = body[table_bytes:]
    present = np.flatnonzero(freqs_arr)
    if precision == 0:
        if payload:
            raise DclabError("a stream of one symbol has no coded words")
        return np.full(n_symbols, int(present[0]), dtype=np.int64), table_bytes, 0
    if present.size < 2:
        raise DclabError("a stream of one symbol must have precision 0")
    if not payload or len(payload) % 4:
        raise DclabError(f"{len(payload)} bytes of coded words are not whole 32-bit words")
    import constriction

    try:
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        out = np.asarray(coder.decode(_model(freqs_arr), n_symbols), dtype=np.int64)
        finished = coder.is_empty()
    except (ValueError, RuntimeError, AssertionError) as err:
        raise DclabError(f"the coded words do not decode ({err})") from None
    if not finished:
        raise DclabError(f"the coded words hold more than the {n_symbols} symbols declared")
    if out.size != n_symbols or np.any(freqs_arr[out] == 0):
        raise DclabError("the coded words decode to a symbol the frequency table does not allow")
    if _words(out, freqs_arr) != payload:  # the encoder is deterministic: one stream has one encoding
        raise DclabError(f"the coded words are not the encoding of {n_symbols} symbols")
    return out, table_bytes, len(payload)


__all__ = ["MAX_PRECISION", "AnsStream", "decode", "encode", "quantize_counts"]
