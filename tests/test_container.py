"""The .dcz file: the documented example byte for byte, round trips, and refusing every bad file."""
from __future__ import annotations

import dataclasses
import gzip
import io
import pickle
import struct
import zipfile
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dclab.codec import container
from dclab.codec.container import (
    CompressedLayer,
    from_bytes,
    read_dcz,
    to_bytes,
    write_dcz,
)
from dclab.errors import DclabError, DczFormatError

# The example of docs/dcz-format.md, "A complete example".
DOC_EXAMPLE_HEX = (
    "8944435a0d0a1a0a010048454144350000007b2261726368223a2264656d6f22"
    "2c22687566666d616e223a747275652c226e5f6c6179657273223a312c226d65"
    "7461223a7b7d7db49a2f404c4159521900000003697031010202000000080000"
    "0002020400000005000000002710e86a43454e541000000000000000000000bf"
    "0000803e0000403f27d1daad575441420400000002020202b925d97e57444154"
    "0300000006d080bc9326a6475441420400000000020201a38d62314744415402"
    "00000000b3fc3e991444454e44000000005fb8285c"
)


def doc_layer() -> CompressedLayer:
    indices = torch.tensor([[0, 3, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 2]])
    centroids = torch.tensor([0.0, -0.5, 0.25, 0.75])
    return CompressedLayer("ip1", "fc", (2, 8), 2, 2, centroids, indices)


def random_layer(name, kind, shape, bits, gap_bits, seed, keep=0.3, bias=True, bias_bits=32) -> CompressedLayer:
    g = torch.Generator().manual_seed(seed)
    k = 2**bits
    indices = torch.randint(1, k, shape, generator=g)
    indices[torch.rand(shape, generator=g) > keep] = 0
    centroids = torch.randn(k, generator=g)
    centroids[0] = 0.0
    b = torch.randn(shape[0], generator=g) if bias else None
    return CompressedLayer(name, kind, shape, bits, gap_bits, centroids, indices, b, bias_bits)


def small_layers(bias_bits: int = 32) -> list[CompressedLayer]:
    """Three tiny layers: sparse fc with fillers, sparse conv without bias, dense fc (its bias float32 always)."""
    return [
        random_layer("ip1", "fc", (5, 12), 2, 2, seed=1, bias_bits=bias_bits),
        random_layer("conv1", "conv", (2, 1, 3, 3), 3, 3, seed=2, bias=False),
        random_layer("ip2", "fc", (3, 4), 2, 0, seed=3, keep=0.5),
    ]


def assert_same_layer(a: CompressedLayer, b: CompressedLayer) -> None:
    assert (a.name, a.kind, a.shape, a.bits, a.gap_bits) == (b.name, b.kind, b.shape, b.bits, b.gap_bits)
    assert torch.equal(a.centroids.view(torch.int32), b.centroids.view(torch.int32))  # bit for bit
    assert torch.equal(a.indices, b.indices)
    assert torch.equal(a.weight().view(torch.int32), b.weight().view(torch.int32))
    if a.bias is None:
        assert b.bias is None
    else:
        assert torch.equal(a.bias.view(torch.int32), b.bias.view(torch.int32))


# ---------------------------------------------------------------------------
# The documented example


def test_doc_example_byte_for_byte():
    data = to_bytes("demo", [doc_layer()])
    assert data.hex() == DOC_EXAMPLE_HEX
    model = from_bytes(data)
    assert model.arch == "demo" and model.huffman and model.meta == {}
    assert_same_layer(doc_layer(), model.layers[0])
    assert model["ip1"].weight().tolist() == [
        [0.0, 0.75, 0.0, 0.0, -0.5, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25],
    ]


DOC_EXAMPLE_ANS_HEX = (  # docs/dcz-format.md, the same layer ANS-coded
    "8944435a0d0a1a0a030048454144440000007b2261726368223a2264656d6f222c22687566666d616e223a66616c73652c226e5f6c6179"
    "657273223a312c226d657461223a7b7d2c22636f646572223a22616e73227da4fe3a844c41595219000000036970310102020000000800"
    "000002020400000005000000002710e86a43454e541000000000000000000000bf0000803e0000403f27d1daad57414e53070000001249"
    "000000c081de8bd00f47414e530600000015a46000005f0651616e44454e44000000005fb8285c"
)


def test_doc_example_ans_byte_for_byte():
    data = to_bytes("demo", [doc_layer()], coder="ans")
    assert data.hex() == DOC_EXAMPLE_ANS_HEX and len(data) == 204
    model = from_bytes(data)
    assert model.ans and not model.huffman and model.coding == "ans"
    assert_same_layer(doc_layer(), model.layers[0])
    (s,) = model.layer_stats()
    assert s.sections == {"LAYR": 25, "CENT": 16, "WANS": 7, "GANS": 6}
    assert (s.ans_table_bytes, s.ans_payload_bytes) == (3 + 2, 4 + 4)


def test_doc_example_layer_stats():
    model = from_bytes(bytes.fromhex(DOC_EXAMPLE_HEX))
    (s,) = model.layer_stats()
    assert (s.n_weights, s.n_nonzero, s.n_fillers, s.n_entries) == (16, 3, 2, 5)
    assert s.density == pytest.approx(3 / 16)
    assert s.fixed_bits == 5 * (2 + 2)
    assert s.huffman_bits == 10 + 8  # indices 11 01 00 00 10, gaps 10 11 0 0 11
    assert s.weight_bits_huffman == pytest.approx(2.0) and s.gap_bits_huffman == pytest.approx(1.6)
    assert s.sections == {"LAYR": 25, "CENT": 16, "WTAB": 4, "WDAT": 3, "GTAB": 4, "GDAT": 2}
    assert (s.codebook_bytes, s.table_bytes, s.bias_bytes) == (16, 8, 0)
    assert s.size_pq_bytes == 16 + 3 and s.size_pqh_bytes == 16 + 8 + 3
    assert s.original_bytes == 64
    assert s.stored_bytes == sum(s.sections.values()) + 12 * len(s.sections)
    assert model.header_bytes + s.stored_bytes == model.n_bytes == 213


def test_sizes_are_the_same_from_either_kind_of_file():
    layers = small_layers()
    huff = from_bytes(to_bytes("tiny", layers, huffman=True)).layer_stats()
    fixed = from_bytes(to_bytes("tiny", layers, huffman=False)).layer_stats()
    for a, b in zip(huff, fixed):
        da, db = a.as_dict(), b.as_dict()
        for key in ("huffman", "stored_bytes"):
            da.pop(key), db.pop(key)
        assert da == db


def test_huffman_file_is_smaller_for_skewed_indices():
    g = torch.Generator().manual_seed(0)
    indices = torch.multinomial(torch.tensor([0.6, 0.3, 0.05, 0.05]), 4000, replacement=True, generator=g)
    layer = CompressedLayer("ip1", "fc", (40, 100), 2, 0, torch.tensor([0.0, 1.0, 2.0, 3.0]), indices)
    huff, fixed = to_bytes("x", [layer], huffman=True), to_bytes("x", [layer], huffman=False)
    assert len(huff) < len(fixed) - 150  # about 1.5 bits instead of 2 per index
    (s,) = from_bytes(huff).layer_stats()
    assert s.weight_bits_huffman == pytest.approx(1.5, abs=0.05)
    assert s.size_pqh_bytes < s.size_pq_bytes


# ---------------------------------------------------------------------------
# Round trips


def test_roundtrip_small_model_both_codings(tmp_path):
    layers = small_layers()
    meta = {"accuracy": 0.9842, "config": {"bits": {"conv": 8, "fc": 5}}, "note": "synthetic"}
    for huffman in (True, False):
        path = tmp_path / f"m{huffman}.dcz"
        n = write_dcz(path, "lenet5", layers, huffman=huffman, meta=meta)
        assert n == path.stat().st_size
        model = read_dcz(path)
        assert (model.arch, model.huffman, model.meta, model.n_bytes) == ("lenet5", huffman, meta, n)
        for a, b in zip(layers, model.layers):
            assert_same_layer(a, b)
        assert model.header_bytes + sum(s.stored_bytes for s in model.layer_stats()) == n


def test_state_dict_loads_into_torch_modules():
    net = torch.nn.Module()
    net.conv1 = torch.nn.Conv2d(1, 2, 3, bias=False)
    net.ip1 = torch.nn.Linear(12, 5)
    net.ip2 = torch.nn.Linear(4, 3)
    model = from_bytes(to_bytes("tiny", small_layers()))
    state = model.state_dict()
    assert sorted(state) == ["conv1.weight", "ip1.bias", "ip1.weight", "ip2.bias", "ip2.weight"]
    net.load_state_dict(state, strict=True)
    assert torch.equal(net.ip1.weight, small_layers()[0].weight())


def test_dense_layer_with_nonzero_first_centroid():
    # A quantized-but-unpruned layer uses all 2**bits centroids, index 0 included.
    layer = CompressedLayer("fc", "fc", (3, 3), 2, 0, [-1.5, 0.5, 1.0, 2.0], torch.arange(9).reshape(3, 3) % 4)
    for huffman in (True, False):
        assert_same_layer(layer, from_bytes(to_bytes("x", [layer], huffman=huffman)).layers[0])
    # Stored sparse instead, index 0 is simply "not stored" and still comes back exactly.
    sparse = CompressedLayer("fc", "fc", (3, 3), 2, 1, layer.centroids, layer.indices)
    assert_same_layer(sparse, from_bytes(to_bytes("x", [sparse])).layers[0])


def test_from_codebook_and_special_values():
    class Codebook:  # duck-typed dclab.algorithms.quantize.Codebook
        centroids = torch.tensor([0.0, -0.0, float("inf"), float("nan")])
        indices = torch.tensor([[1, 2, 3, 0]])

    layer = CompressedLayer.from_codebook("ip9", "fc", Codebook(), bits=2, gap_bits=1, bias=[1.0])
    assert layer.shape == (1, 4)
    assert_same_layer(layer, from_bytes(to_bytes("x", [layer])).layers[0])


def test_empty_and_single_symbol_streams():
    zeros = CompressedLayer("a", "fc", (4, 4), 3, 2, torch.zeros(8), torch.zeros(16, dtype=torch.int64))
    one = CompressedLayer("b", "fc", (1, 3), 1, 1, [0.0, 1.0], torch.tensor([1, 1, 1]))
    model = from_bytes(to_bytes("x", [zeros, one]))
    assert_same_layer(zeros, model.layers[0])
    assert_same_layer(one, model.layers[1])
    assert model.layer_stats()[0].n_entries == 0 and model.layer_stats()[0].huffman_bits == 0
    assert from_bytes(to_bytes("x", [])).layers == []


@st.composite
def layer_lists(draw):
    n = draw(st.integers(1, 3))
    layers = []
    for i in range(n):
        kind = draw(st.sampled_from(["fc", "conv"]))
        shape = (
            (draw(st.integers(1, 6)), draw(st.integers(1, 20)))
            if kind == "fc"
            else (draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        )
        bits = draw(st.integers(1, 9))
        gap_bits = draw(st.integers(0, 5))
        k = draw(st.integers(1, 2**bits))
        numel = int(np.prod(shape))
        zero_rate = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))
        idx = draw(st.lists(st.integers(0, k - 1), min_size=numel, max_size=numel))
        mask = draw(st.lists(st.floats(0, 1), min_size=numel, max_size=numel))
        idx = [0 if m < zero_rate else v for v, m in zip(idx, mask)]
        centroids = draw(st.lists(st.floats(width=32, allow_nan=False), min_size=k, max_size=k))
        bias = draw(st.none() | st.lists(st.floats(width=32), min_size=shape[0], max_size=shape[0]))
        layers.append(CompressedLayer(f"layer{i}.w", kind, shape, bits, gap_bits, centroids, idx, bias))
    return layers


@settings(max_examples=40, deadline=None)
@given(layer_lists(), st.booleans(), st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)))
def test_roundtrip_random_models(layers, huffman, meta):
    model = from_bytes(to_bytes("arch", layers, huffman=huffman, meta=meta))
    assert model.meta == meta and len(model.layers) == len(layers)
    for a, b in zip(layers, model.layers):
        assert_same_layer(a, b)


# ---------------------------------------------------------------------------
# Refusing bad files: every truncation, every changed byte, foreign files


@pytest.fixture(scope="module", params=[(True, 32, "huffman", 32), (False, 32, "huffman", 32), (True, 16, "huffman", 32),
                                        (True, 32, "ans", 32), (True, 16, "huffman", 16)],
                ids=["huffman", "fixed", "version-2-float16-bias", "version-3-ans", "version-3-float16-codebook"])
def small_file(request) -> bytes:
    huffman, bias_bits, coder, codebook_bits = request.param
    layers = [dataclasses.replace(layer, codebook_bits=codebook_bits) for layer in small_layers(bias_bits)]
    data = to_bytes("tiny", layers, huffman=huffman, meta={"a": 1}, coder=coder)
    assert 300 < len(data) < 700
    return data


def _refused(data: bytes) -> str:
    with pytest.raises(DczFormatError) as info:
        from_bytes(data)
    message = str(info.value)
    assert "unexpected problem" not in message  # refused by a real check, not the safety net
    return message


def test_every_truncation_is_refused(small_file):
    for n in range(len(small_file)):
        message = _refused(small_file[:n])
        assert "truncated" in message or "empty" in message or "corrupted" in message, (n, message)


def test_every_single_byte_change_is_refused(small_file):
    for i in range(len(small_file)):
        for flip in (0x01, 0x80, 0xFF):
            changed = bytearray(small_file)
            changed[i] ^= flip
            _refused(bytes(changed))


def test_appended_bytes_are_refused(small_file):
    assert "after the end" in _refused(small_file + b"\x00")


def _sections(data: bytes) -> list[tuple[int, int]]:
    pos, out = container._PREFIX, []
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos + 4)
        out.append((pos, n))
        pos += 12 + n
    return out


def test_crafted_bodies_with_valid_checksums_never_crash(small_file):
    # Change a body byte and fix the CRC: the file may now be valid (a different
    # centroid, say), but reading must never fail with anything but DczFormatError.
    rng = np.random.default_rng(0)
    for pos, n in _sections(small_file):
        for i in range(n):
            for flip in (0x01, int(rng.integers(2, 256))):
                changed = bytearray(small_file)
                changed[pos + 8 + i] ^= flip
                try:
                    from_bytes(_rechecksum(changed, pos, n))
                except DczFormatError as err:
                    assert "unexpected problem" not in str(err)


def _rechecksum(data: bytearray, pos: int, n: int) -> bytes:
    """The file with the CRC of the section at ``pos`` (body ``n`` bytes) recomputed."""
    crc = zlib.crc32(bytes(data[pos : pos + 4]) + bytes(data[pos + 8 : pos + 8 + n]))
    struct.pack_into("<I", data, pos + 8 + n, crc)
    return bytes(data)


def test_huge_declared_sizes_are_refused_before_allocating():
    data = bytearray(to_bytes("x", [doc_layer()]))
    pos, n = _sections(bytes(data))[1]  # LAYR
    body = pos + 8
    layr = bytearray(data[body : body + n])
    struct.pack_into("<2I", layr, 6, 2**20, 2**20)  # shape (2**20, 2**20): 2**40 weights
    data[body : body + n] = layr
    assert "more weights" in _refused(_rechecksum(data, pos, n))
    data = bytearray(to_bytes("x", [doc_layer()]))
    struct.pack_into("<I", data, body + 20, 2**31)  # n_entries (after name, kind, ndim, shape, bits)
    assert "entries" in _refused(_rechecksum(data, pos, n))


def test_future_version_is_refused():
    data = bytearray(to_bytes("x", [doc_layer()]))
    struct.pack_into("<H", data, 8, container.FORMAT_VERSION + 1)
    message = _refused(bytes(data))
    assert "newer" in message and "upgrade dclab" in message


class _Boom:
    ran = False

    def __reduce__(self):
        return (setattr, (_Boom, "ran", True))


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hello")
    return buf.getvalue()


def _torch_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: b"", "empty"),
        (lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "PNG"),
        (_zip_bytes, "ZIP"),
        (_torch_bytes, "ZIP"),
        (lambda: pickle.dumps({"w": [1.0, 2.0]}), "pickle"),
        (lambda: pickle.dumps(_Boom()), "pickle"),
        (lambda: gzip.compress(b"hello"), "gzip"),
        (lambda: b"hello world, this is text", "signature"),
        (lambda: bytes(range(256)), "signature"),
        (lambda: container.SIGNATURE[:5], "truncated"),
    ],
    ids=["empty", "png", "zip", "torch", "pickle", "pickle-exploit", "gzip", "text", "binary", "short"],
)
def test_foreign_files_are_refused(make, expected):
    message = _refused(make())
    assert expected in message
    assert not _Boom.ran  # nothing was unpickled


def test_read_dcz_refuses_missing_paths_and_foreign_files(tmp_path):
    with pytest.raises(DczFormatError, match="cannot read"):
        read_dcz(tmp_path / "missing.dcz")
    with pytest.raises(DczFormatError, match="cannot read"):
        read_dcz(tmp_path)
    png = tmp_path / "image.dcz"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(DczFormatError, match="PNG"):
        read_dcz(png)


def test_from_bytes_refuses_non_bytes():
    with pytest.raises(DczFormatError, match="read_dcz"):
        from_bytes("model.dcz")


# ---------------------------------------------------------------------------
# Writing refuses bad layers with a message


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(indices=torch.tensor([0, 4])), "indices must lie"),
        (dict(indices=torch.tensor([0, 1, 2])), "3 indices"),
        (dict(indices=torch.tensor([0.0, 1.0])), "integers"),
        (dict(bits=1), "do not fit 1 bits"),
        (dict(bits=17), "bits must"),
        (dict(gap_bits=17), "gap_bits"),
        (dict(kind="lstm"), "kind"),
        (dict(shape=(2, 0)), "shape"),
        (dict(name=""), "name"),
        (dict(bias=torch.zeros(2)), "bias"),
    ],
)
def test_bad_layers_raise(kwargs, match):
    args = dict(name="ip1", kind="fc", shape=(1, 2), bits=2, gap_bits=1)
    args.update(centroids=torch.zeros(4), indices=torch.tensor([0, 1]), bias=None)
    args.update(kwargs)
    with pytest.raises(DclabError, match=match):
        CompressedLayer(**args)


def test_bad_models_raise():
    layer = doc_layer()
    with pytest.raises(DclabError, match="unique"):
        to_bytes("x", [layer, layer])
    with pytest.raises(DclabError, match="JSON"):
        to_bytes("x", [layer], meta={"f": object()})
    with pytest.raises(DclabError, match="arch"):
        to_bytes("", [layer])


# ---------------------------------------------------------------------------
# Version 2: float16 biases


def test_float16_biases_round_trip_as_version_2_and_float32_stays_version_1():
    v1, v2 = to_bytes("tiny", small_layers(32)), to_bytes("tiny", small_layers(16))
    assert struct.unpack_from("<H", v1, 8) == (1,) and struct.unpack_from("<H", v2, 8) == (2,)
    assert len(v1) - len(v2) == 2 * 5  # ip1's 5 biases: 2 bytes each instead of 4; nothing else changes
    back = from_bytes(v2)
    for written, read in zip(small_layers(16), back.layers):
        assert_same_layer(written, read)
        assert read.bias_bits == written.bias_bits
    original = small_layers(32)[0].bias
    assert torch.equal(back.layers[0].bias, original.half().float())  # rounded to the nearest float16
    assert back.layer_stats()[0].bias_bytes == 10 and back.layer_stats()[0].sections["BIAS"] == 10


def test_a_version_1_reader_refuses_a_version_2_file_asking_for_an_upgrade(monkeypatch):
    data = to_bytes("tiny", small_layers(16))
    monkeypatch.setattr(container, "FORMAT_VERSION", 1)  # what dclab 1's reader checks
    message = _refused(data)
    assert "version 2" in message and "upgrade dclab" in message


def test_the_version_byte_must_be_the_lowest_that_holds_the_file():
    v1, v2 = bytearray(to_bytes("tiny", small_layers(32))), bytearray(to_bytes("tiny", small_layers(16)))
    struct.pack_into("<H", v1, 8, 2)
    assert "no float16 bias" in _refused(bytes(v1))
    struct.pack_into("<H", v2, 8, 1)
    assert "flags" in _refused(bytes(v2))


def test_bias_bits_must_be_16_or_32():
    with pytest.raises(DclabError, match="bias_bits must be 32 or 16"):
        random_layer("ip1", "fc", (5, 12), 2, 2, seed=1, bias_bits=8)


# ---------------------------------------------------------------------------
# Version 3: ANS-coded streams and float16 codebooks


def _v3_layers(codebook_bits: int = 32, bias_bits: int = 32) -> list[CompressedLayer]:
    return [dataclasses.replace(layer, codebook_bits=codebook_bits) for layer in small_layers(bias_bits)]


def test_ans_and_float16_codebooks_round_trip_as_version_3():
    for coder, codebook_bits in (("ans", 32), ("huffman", 16), ("ans", 16)):
        layers = _v3_layers(codebook_bits, bias_bits=16)
        data = to_bytes("tiny", layers, coder=coder, meta={"m": 1})
        assert struct.unpack_from("<H", data, 8) == (3,)
        back = from_bytes(data)
        assert (back.ans, back.huffman, back.meta) == (coder == "ans", coder == "huffman", {"m": 1})
        for written, read in zip(layers, back.layers):
            assert_same_layer(written, read)
            assert (read.codebook_bits, read.bias_bits) == (written.codebook_bits, written.bias_bits)


def test_float16_codebooks_are_rounded_and_half_the_bytes():
    v1, v3 = to_bytes("tiny", _v3_layers(32)), to_bytes("tiny", _v3_layers(16))
    assert len(v1) - len(v3) == 2 * (4 + 8 + 4)  # 2 bytes less per centroid; nothing else changes
    back = from_bytes(v3)
    for original, read in zip(small_layers(), back.layers):
        assert torch.equal(read.centroids, original.centroids.half().float())
    assert [s.codebook_bytes for s in back.layer_stats()] == [8, 16, 8]
    with pytest.raises(DclabError, match="float16's range"):
        CompressedLayer("ip1", "fc", (1, 2), 1, 0, [0.0, 1e6], torch.tensor([0, 1]), codebook_bits=16)
    with pytest.raises(DclabError, match="codebook_bits must be 32 or 16"):
        CompressedLayer("ip1", "fc", (1, 2), 1, 0, [0.0, 1.0], torch.tensor([0, 1]), codebook_bits=8)


def test_ans_file_stats_split_table_and_words_and_match_the_huffman_files_sizes():
    layers = small_layers()
    coded, huff = from_bytes(to_bytes("tiny", layers, coder="ans")), from_bytes(to_bytes("tiny", layers))
    for a, h in zip(coded.layer_stats(), huff.layer_stats()):
        assert a.ans and not a.huffman
        streams = [v for k, v in a.sections.items() if k.endswith("ANS")]
        assert a.ans_table_bytes + a.ans_payload_bytes == sum(streams)
        assert (a.huffman_bits, a.size_pqh_bytes, a.table_bytes) == (h.huffman_bits, h.size_pqh_bytes, h.table_bytes)


def test_ans_saves_past_huffmans_whole_bit():
    g = torch.Generator().manual_seed(0)
    indices = (torch.rand(4000, generator=g) < 0.05).long()  # entropy 0.29 bits, Huffman 1 bit per index
    layer = CompressedLayer("ip1", "fc", (40, 100), 1, 0, torch.tensor([0.5, 2.0]), indices)
    huff, coded = to_bytes("x", [layer]), to_bytes("x", [layer], coder="ans")
    assert len(coded) < len(huff) - 300
    assert_same_layer(layer, from_bytes(coded).layers[0])


@settings(max_examples=30, deadline=None)
@given(layer_lists(), st.sampled_from(["huffman", "ans"]), st.sampled_from([32, 16]), st.sampled_from([32, 16]))
def test_roundtrip_random_models_version_3(layers, coder, codebook_bits, bias_bits):
    def half_range(x):  # float16 refuses a finite value beyond 65504 (tested above)
        return None if x is None else torch.where(torch.isfinite(x), x.clamp(-6e4, 6e4), x)

    layers = [dataclasses.replace(layer, centroids=half_range(layer.centroids), bias=half_range(layer.bias),
                                  codebook_bits=codebook_bits, bias_bits=bias_bits) for layer in layers]
    data = to_bytes("arch", layers, coder=coder)
    uses_v3 = coder == "ans" or codebook_bits == 16
    uses_v2 = any(layer.bias is not None for layer in layers) and bias_bits == 16
    assert struct.unpack_from("<H", data, 8) == (3 if uses_v3 else 2 if uses_v2 else 1,)
    model = from_bytes(data)
    for a, b in zip(layers, model.layers):
        assert_same_layer(a, b)


def test_files_without_the_new_options_keep_their_bytes():
    # coder="huffman" and float32 codebooks are what every earlier file has: the very same bytes
    assert to_bytes("demo", [doc_layer()], coder="huffman").hex() == DOC_EXAMPLE_HEX
    assert to_bytes("tiny", _v3_layers(32, 16)) == to_bytes("tiny", small_layers(16))


def test_a_version_2_reader_refuses_a_version_3_file_asking_for_an_upgrade(monkeypatch):
    for data in (to_bytes("tiny", small_layers(), coder="ans"), to_bytes("tiny", _v3_layers(16))):
        monkeypatch.setattr(container, "FORMAT_VERSION", 2)  # what the reader before version 3 checks
        message = _refused(data)
        assert "version 3" in message and "upgrade dclab" in message
        monkeypatch.undo()


def test_version_3_must_be_the_lowest_that_holds_the_file():
    for data in (to_bytes("tiny", small_layers(32)), to_bytes("tiny", small_layers(16))):
        changed = bytearray(data)
        struct.pack_into("<H", changed, 8, 3)
        assert "neither ANS-coded nor with a float16 codebook" in _refused(bytes(changed))
    ans_file, half = bytearray(to_bytes("tiny", small_layers(16), coder="ans")), bytearray(to_bytes("tiny", _v3_layers(16)))
    struct.pack_into("<H", ans_file, 8, 2)
    assert "unexpected or missing keys ['coder']" in _refused(bytes(ans_file))
    struct.pack_into("<H", half, 8, 2)
    assert "flags" in _refused(bytes(half))


def _with_head(data: bytes, head: dict) -> bytes:
    import json

    pos, n = _sections(data)[0]
    body = json.dumps(head, separators=(",", ":")).encode()
    chunk = b"HEAD" + struct.pack("<I", len(body)) + body + struct.pack("<I", zlib.crc32(b"HEAD" + body))
    return data[:pos] + chunk + data[pos + 12 + n :]


def test_an_inconsistent_coder_in_the_header_is_refused():
    data = to_bytes("tiny", small_layers(), coder="ans")
    head = {"arch": "tiny", "huffman": False, "n_layers": 3, "meta": {}, "coder": "ans"}
    assert from_bytes(_with_head(data, head)).ans  # the header rewritten as it was: still valid
    assert "coder" in _refused(_with_head(data, {**head, "huffman": True}))
    assert "coder" in _refused(_with_head(data, {**head, "coder": "lzma"}))
    assert "corrupted" in _refused(_with_head(data, {k: v for k, v in head.items() if k != "coder"}))


def test_ans_needs_entropy_coding_and_a_known_coder():
    with pytest.raises(DclabError, match="choose one"):
        to_bytes("x", small_layers(), huffman=False, coder="ans")
    with pytest.raises(DclabError, match="coder must be one of huffman, ans"):
        to_bytes("x", small_layers(), coder="arithmetic")
