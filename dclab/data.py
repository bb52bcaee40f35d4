"""MNIST held in memory as tensors, so an epoch of LeNet-300-100 takes seconds on a CPU.

The data root is chosen by :func:`dclab.paths.data_root`: an explicit argument, then
``$DCLAB_DATA``, then a per-user cache folder. Missing files are downloaded with a
progress bar; offline, a :class:`~dclab.errors.DataNotFoundError` says where dclab looked.

The raw IDX files are read here directly (torchvision only downloads them): importing torchvision
costs a kernel ~90 MB of its own memory, and a page that shows the 10,000 test digits needs none of it.
The 60,000 training digits (188 MB as float32) are needed only to retrain; ``load_mnist("train",
lazy=True)`` returns a :class:`LazyDigits` that reads them on first use, so a page that merely offers
a "retrain" button does not hold them (``benchmarks/page_memory.py`` measures what each page holds).
A whole split is kept, normalised, as a float32 file in dclab's cache and mapped into memory copy-on-write
(``MAPPED_MIN_DIGITS``): every kernel on a machine that maps the same file shares its pages, so thirty
students' pages hold the 10,000 test digits (31 MB) once, not thirty times.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import numpy as np
import torch

from dclab.cache import atomic_write
from dclab.errors import DataNotFoundError
from dclab.paths import cache_dir, data_root

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DOWNLOAD_TIMEOUT_S = 15
MAPPED_MIN_DIGITS = 5_000
"""A whole split of at least this many digits is mapped from a float32 file in dclab's cache (``_mapped``)."""


@dataclass(frozen=True)
class Digits:
    """A split of MNIST in memory: normalised ``images`` (N x 1 x 28 x 28) and ``labels``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def batches(
        self, batch_size: int = 1000, shuffle: bool = False, seed: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` batches from memory, shuffled reproducibly when asked."""
        n = len(self)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else None
        for start in range(0, n, batch_size):
            if order is None:
                yield self.images[start : start + batch_size], self.labels[start : start + batch_size]
            else:
                idx = order[start : start + batch_size]
                yield self.images[idx], self.labels[idx]

    def subset(self, n: int) -> "Digits":
        """The first ``n`` digits (for quick demonstrations and tests)."""
        return Digits(self.images[:n], self.labels[:n])

    def stratified(self, per_class: int) -> "Digits":
        """The first ``per_class`` digits of every class, in their order: a fixed, class-balanced subset
        (the live pages' quick accuracy estimate)."""
        keep = torch.cat([torch.nonzero(self.labels == c).reshape(-1)[:per_class] for c in self.labels.unique()])
        keep = keep.sort().values
        return Digits(self.images[keep], self.labels[keep])


def mnist_present(root: Path) -> bool:
    """Whether the four raw MNIST files are under ``root/MNIST/raw``."""
    raw = root / "MNIST" / "raw"
    return all((raw / name).is_file() for pair in MNIST_FILES.values() for name in pair)


def load_mnist(split: str = "train", root: str | os.PathLike | None = None,
               lazy: bool = False, count: int | None = None) -> "Digits | LazyDigits":
    """Load an MNIST split (``"train"`` or ``"test"``) as in-memory tensors.

    Loaded once per process (a second call returns the same tensors). ``lazy=True``: a
    :class:`LazyDigits` that reads the files only when its images are first used (notebook 02's
    "retrain the survivors" button); a missing data set is still reported at once. ``count``: only the
    split's first ``count`` digits are read (notebook 03's retrained centroids: 10,000 of the training set).
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"count is a number of digits (1 or more) or None for all, not {count!r}")
    if lazy:
        return LazyDigits(split, root)
    return _load(split, str(data_root(root).resolve()), count)


@functools.lru_cache(maxsize=4)
def _load(split: str, root: str, count: int | None = None) -> Digits:
    if count is None:
        mapped = _mapped(split, Path(root))
        if mapped is not None:
            return mapped
    return _read(split, Path(root), count)


def _mapped(split: str, root: Path) -> Digits | None:
    """The whole split with its normalised images mapped copy-on-write from a float32 ``.npy`` in dclab's cache.

    Kernels that map the same file share its pages (a write to a mapped tensor makes that page the writer's
    own; the file never changes). The file is written on first use, named by the IDX file it came from (path,
    size, time) and the normalisation. None (the caller reads the split into memory) for a split smaller than
    ``MAPPED_MIN_DIGITS`` or when the cache cannot be written; a damaged file is written again."""
    ensure_mnist(root)
    raw = root / "MNIST" / "raw"
    image_file, label_file = MNIST_FILES[split]
    count = mnist_count(split, root)
    if count < MAPPED_MIN_DIGITS:
        return None
    stat = (raw / image_file).stat()
    key = f"{(raw / image_file).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{MNIST_MEAN}|{MNIST_STD}|float32-v1"
    path = cache_dir() / "mnist" / f"{split}-images-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"
    for attempt in range(2):
        if not path.is_file() or attempt:
            digits = _read(split, root)
            try:
                atomic_write(path, lambda tmp: _save_npy(tmp, digits.images.numpy()))
            except OSError:
                return digits  # a cache that cannot be written: the split stays in this process's memory
            del digits
        try:
            images = torch.from_numpy(np.load(path, mmap_mode="c"))
        except (OSError, ValueError):
            continue  # damaged: written again
        if images.shape == (count, 1, 28, 28) and images.dtype == torch.float32:
            return Digits(images, read_idx(raw / label_file).long())
    return None


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would add ".npy" to a temporary name
        np.save(f, array)


def _read(split: str, root: Path, count: int | None = None) -> Digits:
    """The first ``count`` digits (all when None) of ``split``, read from the raw IDX files, normalised."""
    ensure_mnist(root)
    raw = root / "MNIST" / "raw"
    image_file, label_file = MNIST_FILES[split]
    pixels = read_idx(raw / image_file, count)
    images = pixels.unsqueeze(1).float()  # one float32 copy, normalised in place: no temporaries
    del pixels
    images.div_(255.0).sub_(MNIST_MEAN).div_(MNIST_STD)
    return Digits(images, read_idx(raw / label_file, count).long())


def _idx_header(f: IO[bytes]) -> tuple[int, ...]:
    magic = f.read(4)
    if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] != 0x08:
        raise DataNotFoundError(f"{f.name} is not an IDX file of unsigned bytes (MNIST's format)")
    return struct.unpack(f">{magic[3]}i", f.read(4 * magic[3]))


def read_idx(path: Path, count: int | None = None) -> torch.Tensor:
    """An IDX file of unsigned bytes (MNIST's format) as a uint8 tensor; only the first ``count`` items
    when given (the same bytes torchvision's ``MNIST`` reads)."""
    with open(path, "rb") as f:
        shape = _idx_header(f)
        n = shape[0] if count is None else min(int(count), shape[0])
        item = math.prod(shape[1:])
        data = bytearray(f.read(n * item))
    if len(data) != n * item:
        raise DataNotFoundError(f"{path} is truncated: expected {n * item:,} bytes of data, read {len(data):,}")
    if not data:
        return torch.empty(0, *shape[1:], dtype=torch.uint8)
    return torch.frombuffer(data, dtype=torch.uint8).view(n, *shape[1:])


def mnist_count(split: str, root: str | os.PathLike | None = None) -> int:
    """How many digits ``split`` holds, read from its label file's header (no data is loaded)."""
    folder = data_root(root).resolve()
    ensure_mnist(folder)
    with open(folder / "MNIST" / "raw" / MNIST_FILES[split][1], "rb") as f:
        return _idx_header(f)[0]


class LazyDigits:
    """A split of MNIST that is read from disk the first time its images are used (notebook 02, section 3).

    It stands wherever a :class:`Digits` does (``len``, ``batches``, ``images``, ``labels``, ``subset``,
    ``stratified``): ``len`` comes from the file's header, ``subset(n)`` before the first load reads only
    the first ``n`` digits, and everything else loads the whole split once (``load_mnist``'s, shared with
    any other caller). ``loaded`` says whether it has been.
    """

    def __init__(self, split: str = "train", root: str | os.PathLike | None = None) -> None:
        if split not in MNIST_FILES:
            raise ValueError(f"split must be 'train' or 'test', not {split!r}")
        self.split, self._root = split, str(data_root(root).resolve())
        self._len = mnist_count(split, self._root)  # a missing data set is reported now, not at first use
        self._digits: Digits | None = None

    @property
    def loaded(self) -> bool:
        """Whether the split has been read into memory."""
        return self._digits is not None

    def load(self) -> Digits:
        """The split in memory (read on the first call)."""
        if self._digits is None:
            self._digits = _load(self.split, self._root, None)
        return self._digits

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"LazyDigits({self.split!r}, {self._len:,} digits, {'loaded' if self.loaded else 'not loaded'})"

    @property
    def images(self) -> torch.Tensor:
        return self.load().images

    @property
    def labels(self) -> torch.Tensor:
        return self.load().labels

    def batches(self, batch_size: int = 1000, shuffle: bool = False,
                seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``Digits.batches`` of the whole split (loads it)."""
        return self.load().batches(batch_size, shuffle=shuffle, seed=seed)

    def subset(self, n: int) -> Digits:
        """The first ``n`` digits; before the split is loaded, only those are read from disk."""
        if self._digits is not None:
            return self._digits.subset(n)
        return _read(self.split, Path(self._root), n)

    def stratified(self, per_class: int) -> Digits:
        """``Digits.stratified`` of the whole split (loads it)."""
        return self.load().stratified(per_class)


def ensure_mnist(root: Path) -> None:
    """Make sure MNIST is under ``root``: download it if missing, or explain what to do."""
    if mnist_present(root):
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        download_mnist(root)
    except Exception as exc:  # any failure here means: no data, and we say how to fix it
        raise DataNotFoundError(_missing_message(root, exc)) from None
    if not mnist_present(root):
        raise DataNotFoundError(_missing_message(root, "the download did not produce the files"))


def download_mnist(root: Path) -> None:
    """Download MNIST into ``root`` with torchvision (shows a progress bar)."""
    from torchvision.datasets import MNIST

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # offline: fail in seconds, never hang
    try:
        for train in (True, False):
            MNIST(root=str(root), train=train, download=True)
    finally:
        socket.setdefaulttimeout(previous)


def _missing_message(root: Path, reason: object) -> str:
    raw = root / "MNIST" / "raw"
    reason = (str(reason).strip().splitlines() or ["unknown error"])[0][:200]
    names = ", ".join(n for pair in MNIST_FILES.values() for n in pair)
    return (
        f"MNIST is not in {raw} and could not be downloaded ({reason}). "
        f"Put the four files ({names}) there, or point DCLAB_DATA at a folder that holds "
        f"MNIST/raw/, e.g.  export DCLAB_DATA=/path/to/data"
    )
