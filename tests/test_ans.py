"""ANS coding of index and gap streams (dclab.codec.ans): round trips, the bytes pinned, refusing every bad stream."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dclab.codec import ans, huffman
from dclab.errors import DclabError


def test_a_known_stream_byte_for_byte():
    # precision 2 (00010), gamma codes of q + 1 for q = 2, 1, 0, 1 (011 010 1 010), zero padding; then constriction's
    # 32-bit words. A change in constriction's model (Categorical(perfect=False)) would show here first.
    stream = ans.encode([0, 1, 0, 3])
    assert (stream.precision, stream.freqs.tolist()) == (2, [2, 1, 0, 1])
    assert stream.table == bytes([0b00010011, 0b01010100])
    assert stream.to_bytes().hex() == "13540b00000b"
    assert ans.decode(stream.to_bytes(), 4, 4)[0].tolist() == [0, 1, 0, 3]


def test_quantized_counts_sum_to_the_precision_and_keep_every_symbol():
    counts = np.array([1000, 1, 0, 3, 500])
    for precision in range(2, 17):
        q = ans.quantize_counts(counts, precision)
        assert q.sum() == 2**precision
        assert np.all((q > 0) == (counts > 0))
    with pytest.raises(DclabError, match="do not fit"):
        ans.quantize_counts(np.array([1, 1, 1, 1, 1]), 2)


def test_ans_beats_huffmans_whole_bit_on_a_skewed_stream():
    # p = 0.95 / 0.05: entropy 0.29 bits per symbol; Huffman must spend 1 bit on every symbol
    rng = np.random.default_rng(0)
    sym = (rng.random(8000) < 0.05).astype(np.int64)
    stream = ans.encode(sym)
    bound = sym.size * huffman.entropy_bits(np.bincount(sym)) / 8
    assert len(stream.to_bytes()) < 0.4 * huffman.encode(sym).payload_bytes
    assert stream.payload_bytes <= 1.02 * bound + 8


def test_empty_and_constant_streams_cost_no_words():
    assert ans.encode([]).to_bytes() == b""
    const = ans.encode([5] * 1000)
    assert (const.precision, const.payload_bytes) == (0, 0)
    assert ans.decode(const.to_bytes(), 1000, 8)[0].tolist() == [5] * 1000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=300), st.integers(0, 3))
def test_roundtrip(symbols, skew):
    sym = np.asarray(symbols, dtype=np.int64) >> skew
    stream = ans.encode(sym)
    back, table, payload = ans.decode(stream.to_bytes(), sym.size, 41)
    assert np.array_equal(back, sym)
    assert (table, payload) == (stream.table_bytes, stream.payload_bytes)


def _stream() -> tuple[bytes, int]:
    rng = np.random.default_rng(1)
    sym = rng.geometric(0.3, 400) - 1
    return ans.encode(np.minimum(sym, 15)).to_bytes(), 400


def test_every_truncation_and_extension_is_refused():
    body, n = _stream()
    for cut in range(len(body)):
        with pytest.raises(DclabError):
            ans.decode(body[:cut], n, 16)
    for extra in (b"\x00", b"\x00\x00\x00\x00", b"\x01\x00\x00\x00"):
        with pytest.raises(DclabError):
            ans.decode(body + extra, n, 16)


def test_a_wrong_count_or_alphabet_is_refused():
    # Fewer symbols than coded leave words over. (More are not detectable: ANS decodes on past the end of its words,
    # so the count is the layer header's, which the file's checksum protects.)
    body, n = _stream()
    for wrong in (n - 1, n // 2, 0):
        with pytest.raises(DclabError):
            ans.decode(body, wrong, 16)
    with pytest.raises(DclabError, match="longer than the alphabet"):
        ans.decode(body, n, 3)


def test_changed_bytes_are_refused_or_decode_to_allowed_symbols():
    # Without the file's checksums a changed byte may still decode (ANS decodes any words), but never to a
    # symbol the table forbids, never with words left over, and never with anything but DclabError.
    body, n = _stream()
    refused = 0
    for i in range(len(body)):
        for flip in (0x01, 0x80, 0xFF):
            changed = bytearray(body)
            changed[i] ^= flip
            try:
                out, _, _ = ans.decode(bytes(changed), n, 16)
            except DclabError:
                refused += 1
                continue
            assert out.size == n and out.min() >= 0 and out.max() < 16
    assert refused > len(body)  # most changes are caught by the stream's own checks
