"""MNIST read from its IDX files, and the lazy training set a page holds until it retrains (issue 14).

Synthetic IDX files in a temporary folder: no MNIST needed. That notebook 02, run top to bottom, holds the test
digits but not the training ones is checked where it runs (tests/test_notebooks.py)."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch

from dclab.data import MNIST_FILES, MNIST_MEAN, MNIST_STD, Digits, LazyDigits, load_mnist, mnist_count, read_idx
from dclab.errors import DataNotFoundError

SIZES = {"train": 300, "test": 70}


def _write_idx(path, data: torch.Tensor) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, data.dim()) + struct.pack(f">{data.dim()}i", *data.shape)
    path.write_bytes(header + data.numpy().tobytes())


@pytest.fixture
def fake_mnist(tmp_path):
    """A data root holding four IDX files in MNIST's format: seeded noise images and labels 0-9."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(1)
    for split, (images, labels) in MNIST_FILES.items():
        n = SIZES[split]
        _write_idx(raw / images, torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8))
        _write_idx(raw / labels, torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8))
    return tmp_path


def test_idx_files_read_as_torchvision_reads_them(fake_mnist):
    mnist = pytest.importorskip("torchvision.datasets.mnist")
    raw = fake_mnist / "MNIST" / "raw"
    for images, labels in MNIST_FILES.values():
        assert torch.equal(read_idx(raw / images), mnist.read_image_file(str(raw / images)))
        assert torch.equal(read_idx(raw / labels).long(), mnist.read_label_file(str(raw / labels)))
    assert torch.equal(read_idx(raw / "train-images-idx3-ubyte", 7), read_idx(raw / "train-images-idx3-ubyte")[:7])


def test_digits_are_the_normalised_pixels(fake_mnist):
    digits = load_mnist("test", root=fake_mnist)
    pixels = read_idx(fake_mnist / "MNIST" / "raw" / "t10k-images-idx3-ubyte")
    assert digits.images.shape == (SIZES["test"], 1, 28, 28) and digits.images.dtype == torch.float32
    assert torch.equal(digits.images, (pixels.unsqueeze(1).float() / 255.0 - MNIST_MEAN) / MNIST_STD)
    assert digits.labels.dtype == torch.int64
    assert load_mnist("test", root=fake_mnist) is digits  # read once per process


def test_lazy_training_set_reads_nothing_until_used(fake_mnist):
    lazy = load_mnist("train", root=fake_mnist, lazy=True)
    assert isinstance(lazy, LazyDigits) and not lazy.loaded
    assert len(lazy) == mnist_count("train", fake_mnist) == SIZES["train"]  # from the header
    assert "not loaded" in repr(lazy)

    head = lazy.subset(10)  # only the first 10 digits are read
    assert not lazy.loaded and isinstance(head, Digits) and len(head) == 10

    eager = load_mnist("train", root=fake_mnist)
    assert torch.equal(head.images, eager.images[:10]) and torch.equal(head.labels, eager.labels[:10])
    batches = list(lazy.batches(128, shuffle=True, seed=2))
    assert lazy.loaded
    assert lazy.images is eager.images  # the one copy load_mnist holds, not a second one
    for (x, y), (ex, ey) in zip(batches, eager.batches(128, shuffle=True, seed=2)):
        assert torch.equal(x, ex) and torch.equal(y, ey)
    assert torch.equal(lazy.stratified(3).labels, eager.stratified(3).labels)


def test_lazy_set_reports_missing_data_at_once(tmp_path):
    with pytest.raises(DataNotFoundError, match="DCLAB_DATA"):
        load_mnist("train", root=tmp_path / "empty", lazy=True)
    with pytest.raises(ValueError):
        load_mnist("validation", lazy=True)


def test_not_an_idx_file_says_so(fake_mnist):
    (fake_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(DataNotFoundError, match="IDX"):
        mnist_count("test", fake_mnist)


def test_prune_explorer_loads_a_lazy_training_set_only_when_retraining(fake_mnist, untrained_lenet300, synthetic_digits):
    from dclab.widgets.pruning import prune_explorer

    lazy = load_mnist("train", root=fake_mnist, lazy=True)
    box = prune_explorer(untrained_lenet300, synthetic_digits, lazy, sparsity=0.5, retrained=False)
    box.sparsity.value = 0.7
    assert not lazy.loaded and not box.retrain_button.disabled
    box.epochs.value = 1
    box.retrain()
    assert lazy.loaded
    assert box.progress.value == box.progress.max == -(-SIZES["train"] // 128)  # one epoch of the 300 digits



def test_a_count_reads_only_the_first_digits(fake_mnist):
    head = load_mnist("train", root=fake_mnist, count=25)  # notebook 03's retrained centroids read 10,000 this way
    full = load_mnist("train", root=fake_mnist)
    assert len(head) == 25 and torch.equal(head.images, full.images[:25]) and torch.equal(head.labels, full.labels[:25])
    assert load_mnist("train", root=fake_mnist, count=25) is head  # read once per process, as the whole split
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="count"):
            load_mnist("train", root=fake_mnist, count=bad)


def test_a_whole_split_is_mapped_copy_on_write_from_a_float32_file_in_the_cache(fake_mnist, tmp_path, monkeypatch):
    import numpy as np

    from dclab import data

    cache = tmp_path / "cache"
    monkeypatch.setenv("DCLAB_CACHE", str(cache))
    monkeypatch.setattr(data, "MAPPED_MIN_DIGITS", 100)  # the fake split (300 digits) counts as a big one
    data._load.cache_clear()
    expected = data._read("train", fake_mnist)
    digits = load_mnist("train", root=fake_mnist)
    files = list((cache / "mnist").glob("train-images-*.npy"))
    assert len(files) == 1 and torch.equal(digits.images, expected.images) and torch.equal(digits.labels, expected.labels)
    if Path("/proc/self/maps").is_file():  # Linux: the images are the file's pages, not a copy
        assert str(files[0]) in Path("/proc/self/maps").read_text()
    digits.images[0].fill_(7.0)  # a write stays in this process: the file never changes
    assert np.array_equal(np.load(files[0]), expected.images.numpy())

    data._load.cache_clear()
    files[0].write_bytes(files[0].read_bytes()[:1000])  # damaged: written again
    again = load_mnist("train", root=fake_mnist)
    assert torch.equal(again.images, expected.images) and files[0].stat().st_size > 1000

    data._load.cache_clear()
    monkeypatch.setattr(data, "atomic_write", lambda *a, **k: (_ for _ in ()).throw(PermissionError("read-only")))
    files[0].unlink()
    in_memory = load_mnist("train", root=fake_mnist)  # a cache that cannot be written: read into memory
    assert torch.equal(in_memory.images, expected.images) and not files[0].exists()
    data._load.cache_clear()


def test_a_small_split_is_read_into_memory(fake_mnist, tmp_path, monkeypatch):
    from dclab import data

    monkeypatch.setenv("DCLAB_CACHE", str(tmp_path / "cache"))
    data._load.cache_clear()
    assert len(load_mnist("test", root=fake_mnist)) == SIZES["test"] < data.MAPPED_MIN_DIGITS
    assert not (tmp_path / "cache" / "mnist").exists()
    data._load.cache_clear()
