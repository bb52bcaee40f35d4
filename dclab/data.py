"""MNIST held in memory as tensors, so an epoch of LeNet-300-100 takes seconds on a CPU.

The data root is chosen by :func:`dclab.paths.data_root`: an explicit argument, then
``$DCLAB_DATA``, then a per-user cache folder. Missing files are downloaded with a
progress bar; offline, a :class:`~dclab.errors.DataNotFoundError` says where dclab looked.
"""
from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from dclab.errors import DataNotFoundError
from dclab.paths import data_root

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DOWNLOAD_TIMEOUT_S = 15


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


def load_mnist(split: str = "train", root: str | os.PathLike | None = None) -> Digits:
    """Load an MNIST split (``"train"`` or ``"test"``) as in-memory tensors."""
    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    return _load(split, str(data_root(root).resolve()))


@functools.lru_cache(maxsize=4)
def _load(split: str, root: str) -> Digits:
    from torchvision.datasets import MNIST

    ensure_mnist(Path(root))
    dataset = MNIST(root=root, train=(split == "train"), download=False)
    images = (dataset.data.unsqueeze(1).float() / 255.0 - MNIST_MEAN) / MNIST_STD
    return Digits(images.contiguous(), dataset.targets.long().contiguous())


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
