import subprocess
import sys

import pytest
import torch

from dclab import paths
from dclab.data import load_mnist, mnist_present
from dclab.errors import DataNotFoundError


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("DCLAB_DATA", str(tmp_path / "env"))
    assert paths.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert paths.data_root() == tmp_path / "env"
    monkeypatch.delenv("DCLAB_DATA")
    monkeypatch.setenv("DCLAB_CACHE", str(tmp_path / "cache"))
    assert paths.data_root() == tmp_path / "cache" / "data"


def test_missing_data_offline_names_folder_and_fix(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("test", root=tmp_path / "empty")
    message = str(info.value)
    assert str(tmp_path / "empty" / "MNIST" / "raw") in message
    assert "DCLAB_DATA" in message


def test_missing_data_read_only_root(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(DataNotFoundError, match="DCLAB_DATA"):
            load_mnist("train", root=root)
    finally:
        root.chmod(0o700)


def test_missing_data_command_line_is_one_clear_line(tmp_path):
    env = {"DCLAB_DATA": str(tmp_path / "nowhere"), "DCLAB_CACHE": str(tmp_path / "cache"), "PATH": ""}
    result = subprocess.run([sys.executable, "-m", "dclab", "prepare"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "DCLAB_DATA" in result.stderr


def test_bad_split():
    with pytest.raises(ValueError):
        load_mnist("validation")


def test_mnist_in_memory(mnist_test):
    assert mnist_present(paths.data_root())
    assert mnist_test.images.shape == (10000, 1, 28, 28)
    assert mnist_test.images.dtype == torch.float32
    assert mnist_test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert abs(mnist_test.images.mean().item()) < 0.05  # normalised
    sizes = [len(y) for _, y in mnist_test.batches(3000)]
    assert sizes == [3000, 3000, 3000, 1000]


def test_shuffled_batches_are_reproducible(mnist_test):
    first = next(iter(mnist_test.batches(100, shuffle=True, seed=3)))[1]
    again = next(iter(mnist_test.batches(100, shuffle=True, seed=3)))[1]
    other = next(iter(mnist_test.batches(100, shuffle=True, seed=4)))[1]
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_stratified_subset_takes_the_first_digits_of_every_class_in_order():
    import torch

    from dclab.data import Digits

    labels = torch.tensor([3, 1, 3, 0, 1, 3, 0, 2, 2, 1])
    digits = Digits(torch.arange(10, dtype=torch.float32).reshape(10, 1, 1, 1), labels)
    sub = digits.stratified(2)
    assert sub.labels.tolist() == [3, 1, 3, 0, 1, 0, 2, 2]  # two of each class, original order kept
    assert sub.images.reshape(-1).tolist() == [0, 1, 2, 3, 4, 6, 7, 8]
