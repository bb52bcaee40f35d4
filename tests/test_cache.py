"""dclab.cache: atomic writes that concurrent writers cannot collide in, and the one fingerprint rule."""
import threading
from pathlib import Path

import pytest

from dclab import cache


def test_atomic_write_leaves_no_temporary_file_and_makes_the_folder(tmp_path):
    target = tmp_path / "new" / "folder" / "result.json"
    cache.atomic_write(target, lambda tmp: Path(tmp).write_text("{}"))
    assert target.read_text() == "{}"
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")

    def broken(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cache.atomic_write(target, broken)
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_concurrent_writers_each_write_a_whole_file(tmp_path):
    target = tmp_path / "shared.dcz"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    threads = [threading.Thread(target=cache.atomic_write_bytes, args=(target, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_bytes() in payloads  # one writer's whole file, never a mix or a fixed-name clash
    assert list(tmp_path.iterdir()) == [target]


def test_fingerprint_follows_the_bytes_not_the_time(tmp_path):
    a, b = tmp_path / "lenet300.pt", tmp_path / "copy" / "lenet300.pt"
    a.write_bytes(b"weights")
    b.parent.mkdir()
    b.write_bytes(b"weights")
    assert cache.fingerprint(a) == cache.fingerprint(b) and cache.fingerprint(a).startswith("lenet300.pt:")
    a.write_bytes(b"retrained")
    assert cache.fingerprint(a) != cache.fingerprint(b)
    assert cache.fingerprint(tmp_path / "missing.pt") == ""
