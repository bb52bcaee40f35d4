"""How many bits a symbol stream really needs: Huffman beside other coders (notebook 04).

Deep Compression's last stage Huffman-codes two streams per layer: the
quantized weight indices and the sparse index gaps (Han et al. 2016,
section 4). This module measures those streams under several coders, always
by encoding them for real and decoding them back:

- ``fixed-length``: ``bits`` per symbol, packed (the P+Q size of Table 2);
- ``Huffman``: ``dclab.codec.huffman`` (payload; its code-length table is side information);
- ``ANS``: asymmetric numeral systems, an entropy coder with fractional code lengths:
  ``dclab.codec.ans``, the coder of a version-3 ``.dcz`` (its frequency table is side information);
- ``zlib`` and ``lzma``: general-purpose compressors, one byte (or two) per symbol in;
- ``entropy bound``: ``n * H`` bits, the least any code for these frequencies can
  spend (not an encoding; no coder gets below it, up to rounding to whole bytes).

Where Huffman loses to the bound is in its whole-bit code lengths: a symbol of
probability p costs ``-log2 p`` bits ideally but a whole number of bits in a
Huffman code, at least 1. ``symbol_costs`` shows that per symbol.
"""
from __future__ import annotations

import lzma
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

from dclab.codec import ans, huffman
from dclab.codec.sparse import encode_gaps
from dclab.deprecation import renamed_keywords
from dclab.errors import DclabError

if TYPE_CHECKING:  # the pipeline (and torch training) load only when a run is asked for

    from dclab.codec.container import DczModel



Symbols = Union[np.ndarray, torch.Tensor, Sequence[int]]


CODERS = ("fixed-length", "Huffman", "ANS", "zlib", "lzma", "entropy bound")
"""The coders ``compare_coders`` measures, in the order shown."""


_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]


@dataclass(frozen=True)
class CoderSize:
    """One coder's size for one stream (notebook 04).

    ``payload_bytes`` is the coded data (``len()`` of real bytes, except for the
    entropy bound, which is ``n * H / 8``); ``side_bytes`` is what a decoder
    needs besides (Huffman's code-length table, ANS's frequency table); ``exact``
    is False only for the entropy bound, which is not an encoding.
    """

    coder: str
    n_symbols: int
    payload_bytes: float
    side_bytes: int
    exact: bool
    note: str = ""

    @property
    def total_bytes(self) -> float:
        """Payload plus side information."""
        return self.payload_bytes + self.side_bytes

    @property
    def bits_per_symbol(self) -> float:
        """Payload bits per symbol (0.0 for an empty stream)."""
        return 8 * self.payload_bytes / self.n_symbols if self.n_symbols else 0.0

    @property
    def total_bits_per_symbol(self) -> float:
        """Payload plus side information, in bits per symbol."""
        return 8 * self.total_bytes / self.n_symbols if self.n_symbols else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The fields and derived numbers, for a table."""
        return {
            "coder": self.coder,
            "n_symbols": self.n_symbols,
            "payload_bytes": self.payload_bytes,
            "side_bytes": self.side_bytes,
            "total_bytes": self.total_bytes,
            "bits_per_symbol": self.bits_per_symbol,
            "total_bits_per_symbol": self.total_bits_per_symbol,
            "exact": self.exact,
            "note": self.note,
        }


def _byte_symbols(sym: np.ndarray) -> bytes:
    """Symbols one byte each (two, little-endian, when some symbol exceeds 255): zlib's and lzma's input."""
    dtype = np.uint8 if not sym.size or int(sym.max()) < 256 else np.dtype("<u2")
    return sym.astype(dtype).tobytes()


def fixed_length_size(symbols: Symbols, bits: int) -> CoderSize:
    """Symbols packed at ``bits`` bits each, really packed (notebook 04)."""
    sym = huffman.as_symbols(symbols)
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 32:
        raise DclabError(f"bits must be an integer in [1, 32]; got {bits!r}")
    if sym.size and int(sym.max()) >= 1 << int(bits):
        raise DclabError(f"symbol {int(sym.max())} does not fit in {bits} bits: pass the stream's own bits")
    payload, _ = huffman.pack_codes(sym, int(bits))
    return CoderSize("fixed-length", int(sym.size), len(payload), 0, True, f"{bits} bits per symbol")


def huffman_size(symbols: Symbols) -> CoderSize:
    """dclab's canonical Huffman code: payload bytes, and one table byte per symbol up to the largest (notebook 04)."""
    sym = huffman.as_symbols(symbols)
    stream = huffman.encode(sym)
    if not np.array_equal(huffman.decode(stream), sym):
        raise DclabError("Huffman round trip failed: dclab.codec.huffman has a bug")  # pragma: no cover
    return CoderSize("Huffman", int(sym.size), stream.payload_bytes, int(stream.lengths.size), True,
                     "canonical; table = one code length (byte) per symbol")


def ans_size(symbols: Symbols) -> CoderSize:
    """The ``.dcz``'s ANS coder (``dclab.codec.ans``, format version 3) on the stream (notebook 04).

    The payload is its 32-bit words; the side information is its table (the precision and the
    quantized frequencies, gamma-coded), which is what the decoder needs to rebuild the same model.
    """
    sym = huffman.as_symbols(symbols)
    stream = ans.encode(sym)
    alphabet = int(sym.max()) + 1 if sym.size else 0
    back, _, _ = ans.decode(stream.to_bytes(), int(sym.size), alphabet)
    if not np.array_equal(back, sym):
        raise DclabError("ANS round trip failed: dclab.codec.ans has a bug")  # pragma: no cover
    return CoderSize("ANS", int(sym.size), stream.payload_bytes, stream.table_bytes, True,
                     f"as in a version-3 .dcz; table = frequencies summing to 2**{stream.precision}, gamma-coded")


def zlib_size(symbols: Symbols) -> CoderSize:
    """Raw DEFLATE, level 9, one byte per symbol in (notebook 04)."""
    sym = huffman.as_symbols(symbols)
    data = _byte_symbols(sym)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = packer.compress(data) + packer.flush()
    if zlib.decompress(out, -15) != data:
        raise DclabError("zlib round trip failed")  # pragma: no cover
    return CoderSize("zlib", int(sym.size), len(out), 0, True, "raw DEFLATE level 9 (its own Huffman + LZ77)")


def lzma_size(symbols: Symbols) -> CoderSize:
    """Raw LZMA2, preset 9e, one byte per symbol in (notebook 04)."""
    sym = huffman.as_symbols(symbols)
    data = _byte_symbols(sym)
    out = lzma.compress(data, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
    if lzma.decompress(out, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS) != data:
        raise DclabError("lzma round trip failed")  # pragma: no cover
    return CoderSize("lzma", int(sym.size), len(out), 0, True, "raw LZMA2 preset 9e (range coder + LZ)")


def entropy_size(symbols: Symbols) -> CoderSize:
    """The entropy bound ``n * H / 8`` bytes for the stream's own frequencies (notebook 04)."""
    sym = huffman.as_symbols(symbols)
    h = huffman.entropy_bits(np.bincount(sym)) if sym.size else 0.0
    return CoderSize("entropy bound", int(sym.size), sym.size * h / 8, 0, False, f"H = {h:.4f} bits per symbol")


def compare_coders(symbols: Symbols, bits: int) -> list[CoderSize]:
    """Sizes of one stream under every coder in ``CODERS``, each a real encode + decode (notebook 04)."""
    sym = huffman.as_symbols(symbols)
    return [
        fixed_length_size(sym, bits),
        huffman_size(sym),
        ans_size(sym),
        zlib_size(sym),
        lzma_size(sym),
        entropy_size(sym),
    ]


@dataclass(frozen=True)
class SymbolCost:
    """One symbol of a stream: how often, its ideal length ``-log2 p`` and its Huffman length (notebook 04)."""

    symbol: int
    count: int
    probability: float
    ideal_bits: float
    huffman_bits: int
    codeword: str

    @property
    def excess_bits(self) -> float:
        """Bits per occurrence Huffman spends beyond the ideal (negative: fewer)."""
        return self.huffman_bits - self.ideal_bits


def symbol_costs(symbols: Symbols) -> list[SymbolCost]:
    """Per-symbol ideal and Huffman code lengths, most frequent first (notebook 04, where Huffman loses)."""
    sym = huffman.as_symbols(symbols)
    counts = np.bincount(sym) if sym.size else np.zeros(0, np.int64)
    lengths = huffman.length_array(counts)
    codes = huffman.canonical_codes(lengths)
    total = int(counts.sum())
    out = [
        SymbolCost(int(s), int(counts[s]), float(counts[s] / total), -math.log2(counts[s] / total),
                   int(lengths[s]), codes[int(s)])
        for s in np.flatnonzero(counts)
    ]
    return sorted(out, key=lambda c: (-c.count, c.symbol))


def huffman_redundancy(symbols: Symbols) -> float:
    """Huffman's mean code length minus the entropy, in bits per symbol (notebook 04).

    In [0, 1) for two or more distinct symbols; exactly 1 for a constant stream
    (entropy 0, but every codeword has a bit).
    """
    sym = huffman.as_symbols(symbols)
    if sym.size == 0:
        return 0.0
    counts = np.bincount(sym)
    return huffman.mean_code_length(counts) - huffman.entropy_bits(counts)


@renamed_keywords
def layer_streams(indices: torch.Tensor | np.ndarray, gap_bits: int) -> dict[str, np.ndarray]:
    """The two streams the ``.dcz`` codes for a pruned layer: ``{"weights": values, "gaps": gap - 1}`` (notebook 04).

    ``indices`` are a layer's codebook indices (0 = pruned); the streams
    include the filler entries that bridge gaps longer than ``2**gap_bits``,
    exactly as ``dclab.codec.container`` writes them.
    """
    if isinstance(indices, torch.Tensor):
        indices = indices.detach().cpu().numpy()
    sparse = encode_gaps(np.asarray(indices).ravel(), gap_bits)
    return {"weights": sparse.values.astype(np.int64), "gaps": sparse.gap_codes}


def stream_table(
    streams: Mapping[str, Mapping[str, np.ndarray]], bits: Mapping[str, Mapping[str, int]]
) -> list[dict[str, Any]]:
    """Rows ``{layer, stream, coder, ...}`` of ``compare_coders`` for several layers' streams (notebook 04).

    ``streams[layer][stream]`` is a symbol array, ``bits[layer][stream]`` its fixed width.
    """
    rows = []
    for layer, per_layer in streams.items():
        for name, sym in per_layer.items():
            for size in compare_coders(sym, bits[layer][name]):
                rows.append({"layer": layer, "stream": name, **size.as_dict()})
    return rows


def dcz_streams(dcz: "DczModel") -> dict[str, dict[str, np.ndarray]]:
    """Every layer's weight-index and gap streams from a ``.dcz`` read back (notebook 04)."""
    out = {}
    for layer in dcz.layers:
        if layer.gap_bits:
            out[layer.name] = layer_streams(layer.indices, layer.gap_bits)
        else:
            out[layer.name] = {"weights": layer.indices.reshape(-1).numpy().astype(np.int64)}
    return out


def dcz_stream_bits(dcz: "DczModel") -> dict[str, dict[str, int]]:
    """The fixed widths of ``dcz_streams``: ``bits`` for weight indices, ``gap_bits`` for gaps."""
    return {layer.name: {"weights": layer.bits, "gaps": layer.gap_bits} for layer in dcz.layers}
