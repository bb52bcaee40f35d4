"""The ``.dcz`` file: a whole compressed model in real bytes (Deep Compression, all three stages).

Notebooks 04 (the papers' tables from a real file) and 06 (the dashboard);
the byte layout is in ``docs/dcz-format.md``. A ``.dcz`` holds, per layer, the codebook (float32 centroids, or
float16), the codebook indices of the kept weights and their gaps (sparse storage with filler zeros,
``dclab.codec.sparse``), Huffman-coded, packed at fixed width, or ANS-coded (``dclab.codec.ans``, notebook 07),
and the bias (float32, or float16). Sizes shown by the app are ``len()`` of these bytes.

The file is a signature, a version and a sequence of checksummed sections
(PNG's layout). Headers are JSON or fixed binary fields; nothing in a file is ever executed or
unpickled. Reading validates every count against the bytes that are really
there before it allocates anything, and refuses a truncated, corrupted,
foreign or future-version file with ``DczFormatError``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from dclab.cache import atomic_write_bytes
from dclab.codec import ans, huffman
from dclab.codec.sparse import MAX_GAP_BITS, encode_gaps
from dclab.deprecation import renamed_attribute, renamed_keywords
from dclab.errors import DclabError, DczFormatError

SIGNATURE = b"\x89DCZ\r\n\x1a\n"
"""The first 8 bytes of every ``.dcz`` (like PNG's: catches text-mode and 7-bit mangling)."""

FORMAT_VERSION = 3
"""The newest version this reader accepts (it reads 1 to 3). Version 2 adds float16 biases (LAYR flags
bit 1); version 3 adds ANS-coded streams (``coder="ans"``) and float16 codebooks (LAYR flags bit 2). A
file is written at the lowest version that holds it, so a file without these is a version-1 file that
dclab 1 reads; any further change to the layout bumps the version again."""

BIAS_BITS = (32, 16)
"""How a bias may be stored: float32 (version 1), or float16 (version 2)."""

CODEBOOK_BITS = (32, 16)
"""How a codebook (the centroids) may be stored: float32 (version 1), or float16 (version 3)."""

CODERS = ("huffman", "ans")
"""How the index and gap streams may be entropy-coded: Huffman (the paper's, the default) or ANS (version 3)."""

MAX_BITS = 16
"""Widest codebook index: 2**16 centroids."""

MAX_WEIGHTS = 2**28
"""Most weights a file may describe (all layers together): a guard against absurd headers."""

KINDS = ("conv", "fc")

CUSTOM_ARCH = "custom:"
"""``arch`` of a network that is not in the zoo: ``"custom:" + its class name``, a label only (the reader
supplies the architecture; nothing in a file names code to run). Zoo names never contain ``":"``."""

_PREFIX = len(SIGNATURE) + 2  # signature + u16 version
_FRAME = 12  # chunk type (4) + body length (4) + CRC32 (4)
_REPAIR = "Re-create it with dclab.codec.container.write_dcz (or `python -m dclab compress`)."

PathLike = Union[str, "os.PathLike[str]"]
Array = Union[torch.Tensor, np.ndarray, Sequence[float]]


# ---------------------------------------------------------------------------
# Layers


def stored_floats(values: torch.Tensor, bits: int = 32, what: str = "a value") -> torch.Tensor:
    """``values`` (float32) as a file stores them: unchanged at 32 bits, rounded to the nearest float16 at 16
    (a finite value beyond float16's range, 65504, is refused). The pipeline rounds a model's biases and
    codebooks with this before it measures the model, so the file holds what was measured."""
    if bits != 16:
        return values
    half = values.to(torch.float16)
    if bool((torch.isinf(half) & torch.isfinite(values)).any()):
        raise DclabError(f"{what} beyond float16's range (|x| > 65504) cannot be stored in 16 bits: store it as float32")
    return half.to(torch.float32)


def stored_bias(bias: torch.Tensor, bias_bits: int = 32) -> torch.Tensor:
    """``bias`` (float32) as a file stores it at ``bias_bits`` (``stored_floats``)."""
    return stored_floats(bias, bias_bits, "a bias")


def stored_centroids(centroids: torch.Tensor, codebook_bits: int = 32) -> torch.Tensor:
    """A codebook's ``centroids`` (float32) as a file stores them at ``codebook_bits`` (``stored_floats``)."""
    return stored_floats(centroids, codebook_bits, "a centroid")


def _tensor(x: Array, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    return x.detach().to("cpu", dtype).contiguous()


@dataclass(eq=False)
class CompressedLayer:
    """One pruned and quantized layer: its codebook, its indices and its bias (notebooks 04, 06).

    ``indices`` are codebook indices shaped like the weight (a flat tensor is
    reshaped); the weight is ``centroids[indices]``. With ``gap_bits > 0``
    the file stores only the non-zero indices with their gaps (index 0 is the
    zero value of a pruned layer); ``gap_bits == 0`` stores every index
    (a dense layer, quantized but not pruned).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    bits: int
    gap_bits: int
    centroids: torch.Tensor
    indices: torch.Tensor
    bias: torch.Tensor | None = None
    bias_bits: int = 32
    codebook_bits: int = 32

    index_bits = renamed_attribute("index_bits", "gap_bits")

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or len(self.name.encode("utf-8")) > 255:
            raise DclabError(f"a layer name must be a non-empty string of at most 255 bytes; got {self.name!r}")
        if self.kind not in KINDS:
            raise DclabError(f"layer {self.name!r}: kind must be one of {KINDS}; got {self.kind!r}")
        shape = tuple(self.shape)
        if not 1 <= len(shape) <= 5 or not all(isinstance(d, (int, np.integer)) and d >= 1 for d in shape):
            raise DclabError(f"layer {self.name!r}: shape must be 1 to 5 positive integers; got {self.shape!r}")
        self.shape = tuple(int(d) for d in shape)
        if not isinstance(self.bits, (int, np.integer)) or not 1 <= self.bits <= MAX_BITS:
            raise DclabError(f"layer {self.name!r}: bits must be an integer in [1, {MAX_BITS}]; got {self.bits!r}")
        if not isinstance(self.gap_bits, (int, np.integer)) or not 0 <= self.gap_bits <= MAX_GAP_BITS:
            raise DclabError(
                f"layer {self.name!r}: gap_bits must be an integer in [0, {MAX_GAP_BITS}] "
                f"(0 = dense, no gaps); got {self.gap_bits!r}"
            )
        self.bits, self.gap_bits = int(self.bits), int(self.gap_bits)
        if self.codebook_bits not in CODEBOOK_BITS or isinstance(self.codebook_bits, bool):
            raise DclabError(f"layer {self.name!r}: codebook_bits must be 32 or 16 (float32 or float16 centroids); "
                             f"got {self.codebook_bits!r}")
        self.codebook_bits = int(self.codebook_bits)
        self.centroids = stored_centroids(_tensor(self.centroids, torch.float32).reshape(-1), self.codebook_bits)
        if not 1 <= self.centroids.numel() <= 2**self.bits:
            raise DclabError(
                f"layer {self.name!r}: {self.centroids.numel()} centroids do not fit {self.bits} bits "
                f"(1 to {2**self.bits}); pass the codebook made with these bits"
            )
        indices = self.indices
        if isinstance(indices, torch.Tensor) and indices.is_floating_point():
            raise DclabError(f"layer {self.name!r}: indices must be integers; got {indices.dtype}")
        if isinstance(indices, np.ndarray) and indices.dtype.kind not in "iu":
            raise DclabError(f"layer {self.name!r}: indices must be integers; got {indices.dtype}")
        self.indices = _tensor(indices, torch.int64)
        if self.indices.numel() != math.prod(self.shape):
            raise DclabError(
                f"layer {self.name!r}: {self.indices.numel()} indices for shape {self.shape} "
                f"({math.prod(self.shape)} weights)"
            )
        self.indices = self.indices.reshape(self.shape)
        if self.indices.numel() and (self.indices.min() < 0 or self.indices.max() >= self.centroids.numel()):
            raise DclabError(
                f"layer {self.name!r}: indices must lie in [0, {self.centroids.numel()}) "
                f"(one per centroid); got [{int(self.indices.min())}, {int(self.indices.max())}]"
            )
        if self.bias_bits not in BIAS_BITS or isinstance(self.bias_bits, bool):
            raise DclabError(f"layer {self.name!r}: bias_bits must be 32 or 16 (float32 or float16); got {self.bias_bits!r}")
        self.bias_bits = int(self.bias_bits)
        if self.bias is not None:
            self.bias = stored_bias(_tensor(self.bias, torch.float32).reshape(-1), self.bias_bits)
            if self.bias.numel() != self.shape[0]:
                raise DclabError(
                    f"layer {self.name!r}: bias has {self.bias.numel()} values; "
                    f"expected one per output, {self.shape[0]}"
                )

    @classmethod
    @renamed_keywords
    def from_codebook(
        cls,
        name: str,
        kind: str,
        codebook: Any,
        bits: int,
        gap_bits: int,
        bias: Array | None = None,
        bias_bits: int = 32,
        codebook_bits: int = 32,
    ) -> CompressedLayer:
        """A layer from a ``dclab.algorithms.quantize.Codebook`` (centroids, indices shaped like ``w``) (notebooks 04, 06)."""
        indices = codebook.indices
        return cls(name, kind, tuple(indices.shape), bits, gap_bits, codebook.centroids, indices, bias, bias_bits,
                   codebook_bits)

    @property
    def bias_bytes(self) -> int:
        """Bytes of the stored bias (0 without one)."""
        return 0 if self.bias is None else self.bias_bits // 8 * self.bias.numel()

    @property
    def codebook_bytes(self) -> int:
        """Bytes of the stored codebook."""
        return self.codebook_bits // 8 * self.centroids.numel()

    @property
    def n_weights(self) -> int:
        """Weights in the layer (bias excluded)."""
        return math.prod(self.shape)

    def weight(self) -> torch.Tensor:
        """The dense float32 weight: ``centroids[indices]``, zeros where pruned (notebooks 04, 06)."""
        return self.centroids[self.indices]

    def __repr__(self) -> str:
        bias = "" if self.bias is None else f", float{self.bias_bits} bias"
        return (
            f"CompressedLayer({self.name!r}, {self.kind}, shape={self.shape}, bits={self.bits}, "
            f"gap_bits={self.gap_bits}, n_centroids={self.centroids.numel()} float{self.codebook_bits}{bias})"
        )


@dataclass(frozen=True)
class LayerStats:
    """Per-layer sizes read from a ``.dcz``: the columns of the paper's Table 2 (notebooks 04, 06).

    ``fixed_bits`` and ``huffman_bits`` count the coded indices plus gaps at
    fixed width (P+Q) and Huffman-coded (P+Q+H), whichever way the file
    stores them; ``size_pq_bytes`` / ``size_pqh_bytes`` add the codebook (and
    for +H the code-length tables), as the paper's ratios do. ``stored_bytes``
    are this layer's bytes in the file, chunk framing and headers included. In an ANS-coded file
    (``ans``) the Huffman fields are what Huffman would give, and ``ans_table_bytes`` /
    ``ans_payload_bytes`` are the ANS streams' frequency tables and coded words as stored.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    n_weights: int
    n_nonzero: int
    n_fillers: int
    n_entries: int
    bits: int
    gap_bits: int
    n_centroids: int
    huffman: bool
    weight_bits_huffman: float
    gap_bits_huffman: float
    fixed_bits: int
    huffman_bits: int
    codebook_bytes: int
    table_bytes: int
    bias_bytes: int
    stored_bytes: int
    sections: dict[str, int] = field(default_factory=dict)
    ans: bool = False
    ans_table_bytes: int = 0
    ans_payload_bytes: int = 0
    index_bits = renamed_attribute("index_bits", "gap_bits")
    index_bits_huffman = renamed_attribute("index_bits_huffman", "gap_bits_huffman")

    @property
    def density(self) -> float:
        """Fraction of weights kept ("kept after P")."""
        return self.n_nonzero / self.n_weights

    @property
    def original_bytes(self) -> int:
        """The weights as float32, the paper's reference size."""
        return 4 * self.n_weights

    @property
    def size_pq_bytes(self) -> int:
        """Pruned + quantized at fixed width: codebook + indices + gaps ("size P+Q")."""
        return self.codebook_bytes + (self.fixed_bits + 7) // 8

    @property
    def size_pqh_bytes(self) -> int:
        """Pruned + quantized + Huffman: codebook + code tables + coded indices and gaps ("size +H")."""
        return self.codebook_bytes + self.table_bytes + (self.huffman_bits + 7) // 8

    def as_dict(self) -> dict[str, Any]:
        """Every field and derived size, for a table (``pandas.DataFrame(list_of_dicts)``)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "sections"}
        d.update(
            density=self.density,
            original_bytes=self.original_bytes,
            size_pq_bytes=self.size_pq_bytes,
            size_pqh_bytes=self.size_pqh_bytes,
        )
        return d


@dataclass(eq=False)
class DczModel:
    """A ``.dcz`` read back: architecture name, layers, metadata and sizes (notebooks 04, 06).

    ``arch`` is a zoo name (``"lenet300"``) or ``CUSTOM_ARCH + class name`` for a network of your own.
    ``huffman``: the streams are Huffman-coded; ``ans``: ANS-coded (version 3); neither: fixed width.
    """

    arch: str
    layers: list[CompressedLayer]
    meta: dict[str, Any]
    huffman: bool
    n_bytes: int
    header_bytes: int
    stats: list[LayerStats] = field(repr=False, default_factory=list)
    ans: bool = False

    @property
    def coding(self) -> str:
        """How the streams are coded: ``"huffman"``, ``"ans"`` or ``"fixed-width"``."""
        return "ans" if self.ans else "huffman" if self.huffman else "fixed-width"

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Dense tensors keyed ``"{name}.weight"`` / ``"{name}.bias"`` for ``load_state_dict`` (notebooks 04, 06)."""
        out: dict[str, torch.Tensor] = {}
        for layer in self.layers:
            out[f"{layer.name}.weight"] = layer.weight()
            if layer.bias is not None:
                out[f"{layer.name}.bias"] = layer.bias.clone()
        return out

    def layer_stats(self) -> list[LayerStats]:
        """Per-layer sizes, from the file alone (``python -m dclab inspect``; the paper's Table 2)."""
        return list(self.stats)

    def __getitem__(self, name: str) -> CompressedLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def __repr__(self) -> str:
        names = ", ".join(layer.name for layer in self.layers)
        return f"DczModel({self.arch!r}, {self.coding}, {self.n_bytes} bytes, layers=[{names}])"


# ---------------------------------------------------------------------------
# Writing


def _json_bytes(obj: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as err:
        raise DclabError(f"metadata must be JSON data (dicts, lists, str, finite numbers, bools): {err}") from None


def _chunk(ctype: bytes, body: bytes) -> bytes:
    if len(body) >= 2**32:
        raise DclabError(f"a {ctype.decode()} section of {len(body)} bytes is too large for a .dcz (limit 4 GiB)")
    return ctype + struct.pack("<I", len(body)) + body + struct.pack("<I", zlib.crc32(ctype + body))


def _stream_chunks(tag: bytes, symbols: np.ndarray, width: int, use_huffman: bool, use_ans: bool) -> Iterator[bytes]:
    """The table (Huffman only) and data chunks of one symbol stream; one chunk, table and words, with ANS."""
    if use_ans:
        yield _chunk(tag + b"ANS", ans.encode(symbols).to_bytes())
        return
    if use_huffman:
        stream = huffman.encode(symbols)
        payload, n_bits = stream.payload, stream.n_bits
        yield _chunk(tag + b"TAB", stream.lengths.astype(np.uint8).tobytes())
    else:
        payload, n_bits = huffman.pack_codes(symbols, width)
    pad = 8 * len(payload) - n_bits
    yield _chunk(tag + b"DAT", bytes([pad]) + payload)


def _layer_chunks(layer: CompressedLayer, use_huffman: bool, use_ans: bool) -> Iterator[bytes]:
    flat = layer.indices.reshape(-1).numpy()
    sparse = encode_gaps(flat, layer.gap_bits) if layer.gap_bits else None
    values = sparse.values if sparse is not None else flat
    name = layer.name.encode("utf-8")
    header = b"".join(
        [
            struct.pack("<B", len(name)),
            name,
            struct.pack("<BB", KINDS.index(layer.kind), len(layer.shape)),
            struct.pack(f"<{len(layer.shape)}I", *layer.shape),
            struct.pack("<BBII", layer.bits, layer.gap_bits, layer.centroids.numel(), values.size),
            # flags: bit 0 = has a bias, bit 1 = the bias is float16 (version 2), bit 2 = float16 codebook (version 3)
            struct.pack("<B", (layer.bias is not None) | (layer.bias is not None and layer.bias_bits == 16) << 1
                        | (layer.codebook_bits == 16) << 2),
        ]
    )
    yield _chunk(b"LAYR", header)
    yield _chunk(b"CENT", layer.centroids.numpy().astype("<f2" if layer.codebook_bits == 16 else "<f4").tobytes())
    yield from _stream_chunks(b"W", values, layer.bits, use_huffman, use_ans)
    if sparse is not None:
        yield from _stream_chunks(b"G", sparse.gap_codes, layer.gap_bits, use_huffman, use_ans)
    if layer.bias is not None:
        yield _chunk(b"BIAS", layer.bias.numpy().astype("<f2" if layer.bias_bits == 16 else "<f4").tobytes())


def to_bytes(
    arch: str,
    layers: Sequence[CompressedLayer],
    huffman: bool = True,
    meta: Mapping[str, Any] | None = None,
    coder: str = "huffman",
) -> bytes:
    """Encode a compressed model as ``.dcz`` bytes (notebooks 04, 06): entropy-coded by ``coder`` (``"huffman"``,
    or ``"ans"``: a version-3 file, notebook 07), or at fixed width with ``huffman=False``."""
    if coder not in CODERS:
        raise DclabError(f"coder must be one of {', '.join(CODERS)}; got {coder!r}")
    use_ans = coder == "ans"
    if use_ans and not huffman:
        raise DclabError("coder='ans' entropy-codes the streams, huffman=False writes them at fixed width: choose one")
    if not isinstance(arch, str) or not arch:
        raise DclabError(f"arch must be a model name such as 'lenet300'; got {arch!r}")
    layers = list(layers)
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise DclabError(f"layer names must be unique; got {names}")
    if sum(layer.n_weights for layer in layers) > MAX_WEIGHTS:
        raise DclabError(f"a .dcz holds at most {MAX_WEIGHTS} weights")
    meta = dict(meta or {})
    if not all(isinstance(k, str) for k in meta):
        raise DclabError("metadata keys must be strings")
    head = {"arch": arch, "huffman": bool(huffman) and not use_ans, "n_layers": len(layers), "meta": meta}
    if use_ans:
        head["coder"] = "ans"
    parts = [SIGNATURE, struct.pack("<H", _lowest_version(layers, use_ans)), _chunk(b"HEAD", _json_bytes(head))]
    for layer in layers:
        parts.extend(_layer_chunks(layer, bool(huffman) and not use_ans, use_ans))
    parts.append(_chunk(b"DEND", b""))
    return b"".join(parts)


def _lowest_version(layers: Sequence[CompressedLayer], use_ans: bool) -> int:
    """The lowest format version that holds these layers so coded: 3 with ANS or a float16 codebook, 2 with a
    float16 bias, else 1."""
    if use_ans or any(layer.codebook_bits == 16 for layer in layers):
        return 3
    return 2 if any(layer.bias is not None and layer.bias_bits == 16 for layer in layers) else 1


def write_dcz(
    path: PathLike,
    arch: str,
    layers: Sequence[CompressedLayer],
    huffman: bool = True,
    meta: Mapping[str, Any] | None = None,
    coder: str = "huffman",
) -> int:
    """Write a ``.dcz`` file (via a temporary file and a rename); returns the bytes written (notebooks 04, 06)."""
    data = to_bytes(arch, layers, huffman=huffman, meta=meta, coder=coder)
    atomic_write_bytes(path, data)
    return len(data)


# ---------------------------------------------------------------------------
# Reading


_FOREIGN = [
    (b"\x89PNG", "a PNG image"),
    (b"PK\x03\x04", "a ZIP archive (a PyTorch .pt checkpoint is one: load it with torch.load)"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x80\x02", "a Python pickle (dclab never unpickles files)"),
    (b"\x80\x03", "a Python pickle (dclab never unpickles files)"),
    (b"\x80\x04", "a Python pickle (dclab never unpickles files)"),
    (b"\x80\x05", "a Python pickle (dclab never unpickles files)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF", "an HDF5 file"),
    (b"{", "a JSON text"),
]


def _check_prefix(data: bytes) -> int:
    """Refuse data that does not start with the signature and a version this reader knows; the version."""
    if not data:
        raise DczFormatError(f"the file is empty (0 bytes), not a compressed model (.dcz). {_REPAIR}")
    if data[: len(SIGNATURE)] != SIGNATURE[: len(data)]:
        what = next((name for magic, name in _FOREIGN if data.startswith(magic)), None)
        kind = f"it looks like {what}" if what else f"it starts with bytes {data[:8].hex(' ')}, not the .dcz signature"
        raise DczFormatError(f"not a dclab compressed model (.dcz): {kind}. {_REPAIR}")
    if len(data) < _PREFIX:
        raise DczFormatError(f"truncated .dcz: the file ends after {len(data)} bytes, inside its signature. {_REPAIR}")
    (version,) = struct.unpack_from("<H", data, len(SIGNATURE))
    if version > FORMAT_VERSION:
        raise DczFormatError(
            f"this .dcz uses format version {version}, newer than this dclab reads ({FORMAT_VERSION}): "
            "upgrade dclab to read it."
        )
    if version < 1:
        raise DczFormatError(f"invalid .dcz format version {version} (this dclab reads 1 to {FORMAT_VERSION}). {_REPAIR}")
    return version


class _Reader:
    """Walks the chunks of a ``.dcz``, checking each length and CRC before use."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = _PREFIX

    def chunk(self, ctype: bytes) -> memoryview:
        name = ctype.decode()
        left = len(self.data) - self.pos
        if left < _FRAME:
            raise DczFormatError(
                f"truncated .dcz: the file ends at byte {len(self.data)}, where a {name} section belongs. {_REPAIR}"
            )
        found = bytes(self.data[self.pos : self.pos + 4])
        (n,) = struct.unpack_from("<I", self.data, self.pos + 4)
        if n > left - _FRAME:
            raise DczFormatError(
                f"truncated or corrupted .dcz: a section at byte {self.pos} claims {n} bytes "
                f"but only {left - _FRAME} remain. {_REPAIR}"
            )
        body = self.data[self.pos + 8 : self.pos + 8 + n]
        (crc,) = struct.unpack_from("<I", self.data, self.pos + 8 + n)
        if zlib.crc32(body, zlib.crc32(found)) != crc:
            raise DczFormatError(
                f"corrupted .dcz: the checksum of the section at byte {self.pos} does not match "
                f"(expected a {name} section). {_REPAIR}"
            )
        if found != ctype:
            raise DczFormatError(
                f"corrupted .dcz: found a {found!r} section at byte {self.pos} where {name} belongs. {_REPAIR}"
            )
        self.pos += _FRAME + n
        return body

    def end(self) -> None:
        self.chunk(b"DEND")
        if self.pos != len(self.data):
            extra = len(self.data) - self.pos
            raise DczFormatError(f"corrupted .dcz: {extra} unexpected bytes after the end section. {_REPAIR}")


def _json_object(body: memoryview, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(bytes(body).decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DczFormatError(f"corrupted .dcz: the {what} header is not valid JSON ({err}). {_REPAIR}") from None
    if not isinstance(obj, dict):
        raise DczFormatError(f"corrupted .dcz: the {what} header is not a JSON object. {_REPAIR}")
    return obj


def _field(obj: Mapping[str, Any], key: str, kind: type, what: str, lo: int = 0, hi: int = 2**62) -> Any:
    value = obj.get(key)
    ok = isinstance(value, kind) and (kind is not int or not isinstance(value, bool))
    if ok and kind is int:
        ok = lo <= value <= hi
    if not ok:
        raise DczFormatError(f"corrupted .dcz: the {what} header has an invalid {key!r}: {value!r}. {_REPAIR}")
    return value


def _check_keys(obj: Mapping[str, Any], keys: set[str], what: str) -> None:
    if set(obj) != keys:
        odd = sorted(set(obj) ^ keys)
        raise DczFormatError(f"corrupted .dcz: the {what} header has unexpected or missing keys {odd}. {_REPAIR}")


def _read_stream(
    reader: _Reader, tag: bytes, n_symbols: int, width: int, alphabet: int, use_huffman: bool, what: str
) -> tuple[np.ndarray, int, dict[str, int]]:
    """Decode one symbol stream; returns (symbols, coded bits, {section: bytes})."""
    sections: dict[str, int] = {}
    table = None
    if use_huffman:
        table = reader.chunk(tag + b"TAB")
        sections[(tag + b"TAB").decode()] = len(table)
        if len(table) > alphabet:
            raise DczFormatError(
                f"corrupted .dcz: {what} has a code table for {len(table)} symbols, more than {alphabet}. {_REPAIR}"
            )
    body = reader.chunk(tag + b"DAT")
    sections[(tag + b"DAT").decode()] = len(body)
    if len(body) < 1 or body[0] > 7 or (len(body) == 1 and body[0]):
        raise DczFormatError(f"corrupted .dcz: {what} has an invalid padding count. {_REPAIR}")
    n_bits = 8 * (len(body) - 1) - body[0]
    payload = bytes(body[1:])
    try:
        if table is not None:
            lengths = np.frombuffer(bytes(table), dtype=np.uint8)
            stream = huffman.HuffmanStream(lengths=lengths, n_symbols=n_symbols, n_bits=n_bits, payload=payload)
            symbols = huffman.decode(stream)
        else:
            if n_bits != n_symbols * width:
                raise DclabError(f"{n_bits} bits do not hold {n_symbols} values of {width} bits")
            if payload and payload[-1] & ((1 << body[0]) - 1):
                raise DclabError("the padding bits must be zero")
            symbols = huffman.unpack_fixed(payload, n_symbols, width)
            if symbols.size and int(symbols.max()) >= alphabet:
                raise DclabError(f"a value {int(symbols.max())} is out of range (< {alphabet})")
    except DclabError as err:
        raise DczFormatError(f"corrupted .dcz: {what}: {err}. {_REPAIR}") from None
    return symbols, n_bits, sections


def _read_ans_stream(
    reader: _Reader, tag: bytes, n_symbols: int, alphabet: int, what: str
) -> tuple[np.ndarray, dict[str, int], int, int]:
    """Decode one ANS stream (version 3); returns (symbols, {section: bytes}, table bytes, payload bytes)."""
    body = reader.chunk(tag + b"ANS")
    try:
        symbols, table_bytes, payload_bytes = ans.decode(body, n_symbols, alphabet)
    except DclabError as err:
        raise DczFormatError(f"corrupted .dcz: {what}: {err}. {_REPAIR}") from None
    return symbols, {(tag + b"ANS").decode(): len(body)}, table_bytes, payload_bytes


def _read_layer(
    reader: _Reader, use_huffman: bool, use_ans: bool, budget: int, version: int
) -> tuple[CompressedLayer, LayerStats]:
    start = reader.pos
    body = reader.chunk(b"LAYR")
    sections = {"LAYR": len(body)}
    name, kind, shape, bits, gap_bits, n_centroids, n_entries, bias_bits, codebook_bits = _layer_header(
        bytes(body), version)
    what = f"layer {name!r}"
    n_weights = math.prod(shape)
    if n_weights > budget:
        raise DczFormatError(f"corrupted .dcz: {what} declares more weights than a .dcz may hold ({MAX_WEIGHTS})")
    if n_entries > n_weights or (gap_bits == 0 and n_entries != n_weights):
        raise DczFormatError(f"corrupted .dcz: {what} declares {n_entries} entries for {n_weights} weights")

    cent = reader.chunk(b"CENT")
    sections["CENT"] = len(cent)
    if len(cent) != codebook_bits // 8 * n_centroids:
        raise DczFormatError(f"corrupted .dcz: {what} has {len(cent)} codebook bytes for {n_centroids} centroids "
                             f"in float{codebook_bits}")
    centroids = torch.from_numpy(
        np.frombuffer(bytes(cent), dtype="<f2" if codebook_bits == 16 else "<f4").astype(np.float32))

    ans_sizes = [0, 0]  # table, payload bytes of the ANS streams

    def stream(tag: bytes, width: int, alphabet: int, label: str) -> tuple[np.ndarray, int]:
        if use_ans:
            symbols, s, table, payload = _read_ans_stream(reader, tag, n_entries, alphabet, f"{what} {label}")
            ans_sizes[0] += table
            ans_sizes[1] += payload
            n_bits = 0
        else:
            symbols, n_bits, s = _read_stream(reader, tag, n_entries, width, alphabet, use_huffman, f"{what} {label}")
        sections.update(s)
        return symbols, n_bits

    values, w_bits = stream(b"W", bits, n_centroids, "indices")
    if gap_bits:
        codes, g_bits = stream(b"G", gap_bits, 2**gap_bits, "gaps")
        flat = _scatter(values, codes + 1, n_weights, gap_bits, what)
        n_fillers = int(np.count_nonzero(values == 0))
    else:
        codes, g_bits, flat, n_fillers = None, 0, values, 0

    bias = None
    if bias_bits:
        body = reader.chunk(b"BIAS")
        sections["BIAS"] = len(body)
        if len(body) != bias_bits // 8 * shape[0]:
            raise DczFormatError(f"corrupted .dcz: {what} has {len(body)} bias bytes for {shape[0]} outputs "
                                 f"in float{bias_bits}")
        bias = torch.from_numpy(np.frombuffer(bytes(body), dtype="<f2" if bias_bits == 16 else "<f4").astype(np.float32))

    layer = CompressedLayer(name, kind, tuple(shape), bits, gap_bits, centroids, torch.from_numpy(flat), bias,
                            bias_bits or 32, codebook_bits)
    stats = _layer_stats(layer, values, codes, n_fillers, use_huffman, w_bits, g_bits, sections, reader.pos - start)
    if use_ans:
        stats = dataclasses.replace(stats, ans=True, ans_table_bytes=ans_sizes[0], ans_payload_bytes=ans_sizes[1])
    return layer, stats


_FLAGS = {1: (0, 1), 2: (0, 1, 3), 3: (0, 1, 3, 4, 5, 7)}
"""The LAYR flags each version allows: bit 0 = has a bias, bit 1 (with bit 0, version 2 on) = the bias is
float16, bit 2 (version 3 on) = the codebook is float16."""


def _layer_header(body: bytes, version: int) -> tuple[str, str, list[int], int, int, int, int, int, int]:
    """Parse a LAYR section: name, kind, shape, bits, gap_bits, n_centroids, n_entries, bias bits (0: no bias),
    codebook bits. The flags must be ones ``version`` allows (``_FLAGS``)."""
    bad = f"corrupted .dcz: a layer header ({len(body)} bytes) is invalid"
    n = body[0] if body else 0
    if len(body) < n + 3:
        raise DczFormatError(f"{bad}: too short. {_REPAIR}")
    try:
        name = body[1 : 1 + n].decode("utf-8")
    except UnicodeDecodeError:
        raise DczFormatError(f"{bad}: the name is not UTF-8. {_REPAIR}") from None
    kind, ndim = body[1 + n], body[2 + n]
    if not name or kind >= len(KINDS) or not 1 <= ndim <= 5 or len(body) != n + 3 + 4 * ndim + 11:
        raise DczFormatError(f"{bad}: name, kind or number of dimensions. {_REPAIR}")
    shape = list(struct.unpack_from(f"<{ndim}I", body, 3 + n))
    bits, gap_bits, n_centroids, n_entries, flags = struct.unpack_from("<BBIIB", body, 3 + n + 4 * ndim)
    if (
        min(shape) < 1
        or not 1 <= bits <= MAX_BITS
        or gap_bits > MAX_GAP_BITS
        or not 1 <= n_centroids <= 2**bits
        or flags not in _FLAGS[version]
    ):
        raise DczFormatError(
            f"{bad}: layer {name!r} has shape {shape}, bits {bits}, gap_bits {gap_bits}, "
            f"{n_centroids} centroids, flags {flags}. {_REPAIR}"
        )
    bias_bits = 0 if not flags & 1 else (16 if flags & 2 else 32)
    return name, KINDS[kind], shape, bits, gap_bits, n_centroids, n_entries, bias_bits, 16 if flags & 4 else 32


def _scatter(values: np.ndarray, gaps: np.ndarray, length: int, gap_bits: int, what: str) -> np.ndarray:
    """Flat indices from sparse entries, refusing any encoding ``encode_gaps`` would not produce."""
    out = np.zeros(length, dtype=np.int64)
    if values.size == 0:
        return out
    fillers = values == 0
    if values[-1] == 0 or np.any(gaps[fillers] != 1 << gap_bits):
        raise DczFormatError(
            f"corrupted .dcz: {what} has a filler entry that bridges no gap (fillers have gap {1 << gap_bits})"
        )
    positions = np.cumsum(gaps, dtype=np.int64) - 1
    if positions[-1] >= length:
        raise DczFormatError(f"corrupted .dcz: {what} has entries past its {length} weights")
    out[positions] = values
    return out


def _layer_stats(
    layer: CompressedLayer,
    values: np.ndarray,
    gap_codes: np.ndarray | None,
    n_fillers: int,
    use_huffman: bool,
    w_bits: int,
    g_bits: int,
    sections: dict[str, int],
    stored_bytes: int,
) -> LayerStats:
    """Sizes of a layer at fixed width and Huffman-coded, whichever the file holds."""
    n = int(values.size)
    fixed = n * (layer.bits + layer.gap_bits)
    if use_huffman:
        h_bits = w_bits + g_bits
        table_bytes = sections.get("WTAB", 0) + sections.get("GTAB", 0)
    else:  # what Huffman coding would give, from the decoded symbols
        w_freq = np.bincount(values) if n else np.zeros(0, np.int64)
        w_bits = huffman.coded_bits(w_freq)
        table_bytes = w_freq.size
        g_bits = 0
        if gap_codes is not None and n:
            g_freq = np.bincount(gap_codes)
            g_bits = huffman.coded_bits(g_freq)
            table_bytes += g_freq.size
        h_bits = w_bits + g_bits
    return LayerStats(
        name=layer.name,
        kind=layer.kind,
        shape=layer.shape,
        n_weights=layer.n_weights,
        n_nonzero=n - n_fillers if layer.gap_bits else int(torch.count_nonzero(layer.weight())),
        n_fillers=n_fillers,
        n_entries=n,
        bits=layer.bits,
        gap_bits=layer.gap_bits,
        n_centroids=int(layer.centroids.numel()),
        huffman=use_huffman,
        weight_bits_huffman=w_bits / n if n else 0.0,
        gap_bits_huffman=g_bits / n if n and layer.gap_bits else 0.0,
        fixed_bits=fixed,
        huffman_bits=h_bits,
        codebook_bytes=layer.codebook_bytes,
        table_bytes=table_bytes,
        bias_bytes=layer.bias_bytes,
        stored_bytes=stored_bytes,
        sections=sections,
    )


def from_bytes(data: bytes | bytearray | memoryview) -> DczModel:
    """Read ``.dcz`` bytes back; ``DczFormatError`` if truncated, corrupted, foreign or too new (notebooks 04, 06)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DczFormatError(f"from_bytes needs bytes, not {type(data).__name__}; use read_dcz for a path")
    data = bytes(data)
    try:
        return _parse(data)
    except DczFormatError:
        raise
    except Exception as err:  # a last line of defence: reading raises nothing else
        raise DczFormatError(f"unexpected problem reading the .dcz ({type(err).__name__}: {err}). {_REPAIR}") from err


def _parse(data: bytes) -> DczModel:
    version = _check_prefix(data)
    reader = _Reader(data)
    head = _json_object(reader.chunk(b"HEAD"), "file")
    use_ans = version >= 3 and "coder" in head  # version 3: "coder": "ans" with "huffman": false
    _check_keys(head, {"arch", "huffman", "n_layers", "meta"} | ({"coder"} if use_ans else set()), "file")
    arch = _field(head, "arch", str, "file")
    use_huffman = _field(head, "huffman", bool, "file")
    if use_ans and (head["coder"] != "ans" or use_huffman):
        raise DczFormatError(f"corrupted .dcz: the file header's coder is {head['coder']!r} with huffman "
                             f"{use_huffman} (an ANS file says \"ans\" and false). {_REPAIR}")
    n_layers = _field(head, "n_layers", int, "file", 0, len(data))  # a truncated file fails below
    meta = _field(head, "meta", dict, "file")
    if not arch:
        raise DczFormatError(f"corrupted .dcz: the architecture name is empty. {_REPAIR}")
    header_bytes = reader.pos
    layers, stats, budget = [], [], MAX_WEIGHTS
    for _ in range(n_layers):
        layer, layer_stats = _read_layer(reader, use_huffman, use_ans, budget, version)
        budget -= layer.n_weights
        layers.append(layer)
        stats.append(layer_stats)
    if version == 2 and not any(layer.bias is not None and layer.bias_bits == 16 for layer in layers):
        # written at the lowest version that holds it: a version-2 file has a float16 bias
        raise DczFormatError(f"corrupted .dcz: version 2 but no float16 bias (a writer would say 1). {_REPAIR}")
    if version == 3 and not use_ans and not any(layer.codebook_bits == 16 for layer in layers):
        # a version-3 file is ANS-coded or has a float16 codebook
        raise DczFormatError(f"corrupted .dcz: version 3 but neither ANS-coded nor with a float16 codebook "
                             f"(a writer would say {_lowest_version(layers, False)}). {_REPAIR}")
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise DczFormatError(f"corrupted .dcz: two layers share a name ({names}). {_REPAIR}")
    end = reader.pos
    reader.end()
    header_bytes += reader.pos - end
    return DczModel(arch, layers, meta, use_huffman, len(data), header_bytes, stats, use_ans)


def read_dcz(path: PathLike) -> DczModel:
    """Read a ``.dcz`` file; ``DczFormatError`` if it cannot be read or is not a valid ``.dcz`` (notebooks 04, 06)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            prefix = f.read(_PREFIX)
            if len(prefix) == _PREFIX:
                _check_prefix(prefix)  # refuse a foreign file before reading all of it
            data = prefix + f.read()
    except OSError as err:
        raise DczFormatError(f"cannot read {path}: {err.strerror or err}. Check the path.") from None
    return from_bytes(data)
