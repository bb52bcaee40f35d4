"""Writing into dclab's cache: one atomic write and one fingerprint rule for every cached thing.

A reader (another notebook, another student on the same server, a test) never sees half a
file: each write goes to a temporary file of its own in the same folder, then is renamed over
the target. A cached result names the baseline it came from by ``fingerprint``: the file's name
and a hash of its bytes, so a baseline trained again (another seed, another machine) invalidates
everything computed from the old one, and a copy of the same bytes does not.

A folder that cannot be written raises ``NotWritableError`` (a ``DclabError`` that is still a
``PermissionError``), saying which folder and what to do. A read-only ``DCLAB_CACHE`` shared by
an instructor does not get there: ``dclab.paths.cache_dir()`` answers the user's own mirror of it.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable

from dclab.errors import DclabError

__all__ = ["NotWritableError", "atomic_write", "atomic_write_bytes", "fingerprint"]


class NotWritableError(DclabError, PermissionError):
    """A folder dclab must write into is read-only (still a ``PermissionError`` for callers that catch one)."""

    def __str__(self) -> str:
        return str(self.args[0])


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Create ``path`` by ``write(temporary_path)`` then a rename; the folder is made if missing."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise NotWritableError(
            f"cannot write {path.name} into {path.parent}: the folder is read-only ({exc.strerror}). "
            "If it is dclab's cache, set DCLAB_CACHE to a folder you can write (a read-only "
            "DCLAB_CACHE is used through a mirror in your own cache folder, which could not be made)"
        ) from exc
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> int:
    """Write ``data`` to ``path`` atomically; returns the bytes on disk."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data)).stat().st_size


def fingerprint(path: str | os.PathLike) -> str:
    """``"<file name>:<sha256 of its bytes, 16 hex digits>"``, or ``""`` for a missing file."""
    path = Path(path)
    if not path.is_file():
        return ""
    stat = path.stat()
    return f"{path.name}:{_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)}"


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a rewritten file is hashed again
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
