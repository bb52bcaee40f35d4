"""Huffman coding: hand-worked codes, other optimal codes as references, round-trip properties."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from bitarray.util import canonical_huffman, huffman_code
from dahuffman import HuffmanCodec
from hypothesis import given, settings
from hypothesis import strategies as st

from dclab.codec import huffman
from dclab.codec.huffman import HuffmanStream
from dclab.errors import DclabError

# Counts of at least two distinct symbols, as {symbol: count}.
freq_maps = st.dictionaries(st.integers(0, 300), st.integers(1, 10_000), min_size=2, max_size=60)


def _kraft(lengths: dict[int, int]) -> float:
    return sum(2.0 ** -n for n in lengths.values())


# ---------------------------------------------------------------------------
# Small cases worked by hand


def test_code_lengths_by_hand():
    # Merge 2+3 (1+1 -> 2), then 1+{2,3} (2+2 -> 4), then 0+rest (5+4): depths 1, 2, 3, 3.
    assert huffman.code_lengths({0: 5, 1: 2, 2: 1, 3: 1}) == {0: 1, 1: 2, 2: 3, 3: 3}


def test_canonical_codes_by_hand():
    assert huffman.canonical_codes({0: 1, 1: 2, 2: 3, 3: 3}) == {0: "0", 1: "10", 2: "110", 3: "111"}
    # Equal lengths count up in symbol order; a longer code continues from (previous + 1) << 1.
    assert huffman.canonical_codes({5: 2, 1: 2, 9: 2, 3: 3, 4: 3}) == {
        1: "00",
        5: "01",
        9: "10",
        3: "110",
        4: "111",
    }


def test_encode_by_hand_matches_the_format_doc():
    # docs/dcz-format.md: 0 1 0 3 -> 0 10 0 111 = 0100111(0) = 0x4E, 7 bits.
    stream = huffman.encode([0, 1, 0, 3], lengths={0: 1, 1: 2, 2: 3, 3: 3})
    assert stream.payload == bytes([0x4E])
    assert stream.n_bits == 7 and stream.n_symbols == 4
    assert stream.lengths.tolist() == [1, 2, 3, 3]
    assert huffman.decode(stream).tolist() == [0, 1, 0, 3]


def test_own_counts_give_the_optimal_code():
    symbols = [0] * 5 + [1] * 2 + [2, 3]
    stream = huffman.encode(symbols)
    assert stream.lengths.tolist() == [1, 2, 3, 3]
    assert stream.n_bits == 5 * 1 + 2 * 2 + 3 + 3
    assert stream.payload_bytes == 2


def test_single_symbol_alphabet_costs_one_bit_each():
    assert huffman.code_lengths({7: 10}) == {7: 1}
    assert huffman.canonical_codes({7: 1}) == {7: "0"}
    stream = huffman.encode(np.full(9, 7))
    assert stream.n_bits == 9 and stream.payload == bytes([0, 0])
    assert huffman.decode(stream).tolist() == [7] * 9


def test_empty_input():
    assert huffman.code_lengths({}) == {}
    assert huffman.code_lengths([0, 0, 0]) == {}
    assert huffman.entropy_bits({}) == 0.0
    stream = huffman.encode([])
    assert (stream.n_symbols, stream.n_bits, stream.payload) == (0, 0, b"")
    out = huffman.decode(stream)
    assert out.dtype == np.int64 and out.size == 0


def test_entropy_and_mean_length_by_hand():
    assert huffman.entropy_bits([1, 1, 1, 1]) == pytest.approx(2.0)
    assert huffman.mean_code_length([1, 1, 1, 1]) == pytest.approx(2.0)
    # Dyadic probabilities: Huffman meets the entropy exactly.
    freqs = {0: 8, 1: 4, 2: 2, 3: 1, 4: 1}
    assert huffman.entropy_bits(freqs) == pytest.approx(huffman.mean_code_length(freqs)) == pytest.approx(1.875)


def test_accepts_tensors_and_frequency_arrays():
    x = torch.tensor([[3, 3, 1], [0, 3, 3]])
    assert huffman.decode(huffman.encode(x)).tolist() == [3, 3, 1, 0, 3, 3]
    assert huffman.code_lengths(np.array([1, 1, 0, 4])) == {0: 2, 1: 2, 3: 1}
    assert huffman.frequencies(x).tolist() == [1, 1, 0, 4]


# ---------------------------------------------------------------------------
# References: other optimal codes on the same counts


@settings(max_examples=150, deadline=None)
@given(freq_maps)
def test_total_bits_equal_bitarrays_huffman(freqs):
    ours = huffman.code_lengths(freqs)
    theirs = {s: len(c) for s, c in huffman_code(freqs).items()}
    canon = {s: len(c) for s, c in canonical_huffman(freqs)[0].items()}
    total = sum(freqs[s] * ours[s] for s in freqs)
    assert total == sum(freqs[s] * theirs[s] for s in freqs)
    assert total == sum(freqs[s] * canon[s] for s in freqs)
    assert total == huffman.coded_bits(freqs)


@settings(max_examples=100, deadline=None)
@given(freq_maps)
def test_total_bits_equal_dahuffman(freqs):
    # With its end-of-file marker set to a real symbol, dahuffman builds a plain Huffman code.
    codec = HuffmanCodec.from_frequencies(freqs, eof=next(iter(freqs)))
    table = codec.get_code_table()
    assert huffman.coded_bits(freqs) == sum(freqs[s] * table[s][0] for s in freqs)


# ---------------------------------------------------------------------------
# Properties


@settings(max_examples=150, deadline=None)
@given(freq_maps)
def test_mean_length_between_entropy_and_entropy_plus_one(freqs):
    h = huffman.entropy_bits(freqs)
    mean = huffman.mean_code_length(freqs)
    assert h - 1e-9 <= mean < h + 1


@settings(max_examples=150, deadline=None)
@given(freq_maps)
def test_canonical_code_is_complete_prefix_free_and_ordered(freqs):
    lengths = huffman.code_lengths(freqs)
    assert _kraft(lengths) == pytest.approx(1.0)  # Huffman codes are complete
    codes = huffman.canonical_codes(lengths)
    assert {s: len(c) for s, c in codes.items()} == lengths
    words = sorted(codes.values())
    assert all(not b.startswith(a) for a, b in zip(words, words[1:]))
    ranked = [codes[s] for s in sorted(codes, key=lambda s: (lengths[s], s))]
    assert all(int(a, 2) < int(b, 2) for a, b in zip(ranked, ranked[1:]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=400))
def test_decode_encode_roundtrip(symbols):
    stream = huffman.encode(symbols)
    out = huffman.decode(stream)
    assert out.dtype == np.int64
    assert out.tolist() == symbols
    assert stream.n_bits == huffman.coded_bits(huffman.frequencies(symbols))
    assert len(stream.payload) == (stream.n_bits + 7) // 8


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 2**16 - 1), min_size=1, max_size=300), st.integers(0, 2**16 - 1))
def test_roundtrip_large_alphabet(symbols, extra):
    symbols = symbols + [extra] * 50
    assert huffman.decode(huffman.encode(np.array(symbols, dtype=np.uint16))).tolist() == symbols


def test_roundtrip_long_codes_across_word_boundaries():
    # Geometric counts give codewords from 1 to 24 bits, so many straddle 64-bit words.
    rng = np.random.default_rng(0)
    counts = 2 ** np.arange(24, 0, -1)
    counts[-1] = 1
    lengths = huffman.length_array(counts)
    assert lengths.max() >= 20
    symbols = rng.permutation(np.repeat(np.arange(24), 3))
    for n in (1, 2, 3, 63, 64, 65, symbols.size):
        stream = huffman.encode(symbols[:n], lengths=lengths)
        assert huffman.decode(stream).tolist() == symbols[:n].tolist()
    big = rng.choice(24, size=200_001, p=counts / counts.sum())
    assert np.array_equal(huffman.decode(huffman.encode(big)), big)


def test_code_lengths_are_limited():
    # Fibonacci counts make the deepest Huffman trees: 40 symbols would need 39 bits.
    fib = [1, 1]
    while len(fib) < 40:
        fib.append(fib[-1] + fib[-2])
    assert max(huffman._huffman_depths(fib)) == 39
    lengths = huffman.length_array(fib)
    assert 20 < lengths.max() <= huffman.MAX_CODE_LENGTH
    assert _kraft({s: int(n) for s, n in enumerate(lengths)}) == pytest.approx(1.0)
    symbols = np.arange(40).repeat(2)
    assert huffman.decode(huffman.encode(symbols, lengths=lengths)).tolist() == symbols.tolist()
    short = huffman.length_array(fib, max_length=8)
    assert short.max() <= 8 and _kraft({s: int(n) for s, n in enumerate(short)}) <= 1.0


@pytest.mark.parametrize("width", [1, 3, 5, 8, 13, 16])
def test_fixed_width_pack_roundtrip(width):
    rng = np.random.default_rng(width)
    values = rng.integers(0, 2**width, size=1001)
    payload, n_bits = huffman.pack_codes(values, width)
    assert n_bits == 1001 * width and len(payload) == (n_bits + 7) // 8
    assert huffman.unpack_fixed(payload, 1001, width).tolist() == values.tolist()
    # MSB first: the value 1 in 3 bits, then 6 in 3 bits -> 001 110 (00) = 0x38.
    assert huffman.pack_codes([1, 6], 3) == (bytes([0x38]), 6)


# ---------------------------------------------------------------------------
# Bad input and corrupt streams


def _stream(**changes) -> HuffmanStream:
    good = huffman.encode([0, 1, 0, 3], lengths={0: 1, 1: 2, 2: 3, 3: 3})
    fields = dict(lengths=good.lengths, n_symbols=good.n_symbols, n_bits=good.n_bits, payload=good.payload)
    fields.update(changes)
    return HuffmanStream(**fields)


@pytest.mark.parametrize(
    "changes",
    [
        dict(lengths=np.array([1, 1, 2], dtype=np.uint8)),  # Kraft sum 5/4
        dict(lengths=np.array([32, 1], dtype=np.uint8)),  # too long
        dict(lengths=np.zeros(4, dtype=np.uint8)),  # symbols but no codewords
        dict(n_bits=6),  # the last codeword is cut
        dict(n_bits=9),  # payload size does not match
        dict(n_symbols=5),  # more symbols declared than coded
        dict(n_symbols=3),  # fewer symbols declared than coded
        dict(payload=bytes([0x4F])),  # a non-zero padding bit
        dict(n_symbols=-1),
    ],
)
def test_corrupt_streams_raise(changes):
    with pytest.raises(DclabError):
        huffman.decode(_stream(**changes))


def test_bad_symbols_raise():
    with pytest.raises(DclabError, match="integers"):
        huffman.encode([0.5, 1.0])
    with pytest.raises(DclabError, match="lie in"):
        huffman.encode([-1, 2])
    with pytest.raises(DclabError, match="lie in"):
        huffman.encode([2**16])
    with pytest.raises(DclabError, match="no codeword"):
        huffman.encode([0, 5], lengths={0: 1, 1: 1})
    with pytest.raises(DclabError, match=">= 0"):
        huffman.code_lengths([3, -1])
