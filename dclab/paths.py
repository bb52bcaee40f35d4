"""Where dclab keeps things: the data root and the cache of trained models.

A course can share one cache: the instructor runs ``python -m dclab prepare`` with
``DCLAB_CACHE`` pointing at a shared folder, then makes it read-only. For a student whose
``DCLAB_CACHE`` cannot be written, ``cache_dir()`` is a folder of the student's own
(``<user cache>/shared/<name>-<hash>``) that mirrors the shared one: its folders are real,
its files are links to the shared files, so the instructor's baselines are read from the
shared folder and anything the student computes (a sweep, a compressed file) is written
beside the links, in the student's own folder, instead of failing on the shared one.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """The cache folder: ``$DCLAB_CACHE`` if set, else the user cache folder.

    When that folder exists and cannot be written (a cache shared read-only by an
    instructor), the answer is the user's own mirror of it (see the module docstring).
    """
    root = os.environ.get("DCLAB_CACHE")
    path = Path(root) if root else Path(platformdirs.user_cache_dir("dclab"))
    path = path.expanduser()
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        return _mirror(str(path.resolve()))
    return path


@functools.lru_cache(maxsize=8)
def _mirror(shared: str) -> Path:
    """The user's writable mirror of the read-only cache ``shared``, linked once per process.

    Files the instructor adds later appear in the next kernel. Where the user's own cache
    cannot be written either, ``shared`` itself is returned (and a write there fails with
    ``dclab.cache``'s message).
    """
    own = Path(platformdirs.user_cache_dir("dclab")).expanduser()
    name = f"{Path(shared).name}-{hashlib.sha256(shared.encode()).hexdigest()[:8]}"
    mirror = own / "shared" / name
    if own.resolve() == Path(shared) or Path(shared) in own.resolve().parents:
        return Path(shared)
    try:
        for folder, _, files in os.walk(shared):
            target = mirror / os.path.relpath(folder, shared)
            target.mkdir(parents=True, exist_ok=True)
            for file in files:
                if file.startswith("."):  # another writer's temporary file
                    continue
                link, source = target / file, os.path.join(folder, file)
                if link.is_symlink() and os.readlink(link) != source:
                    link.unlink()
                if not link.exists() and not link.is_symlink():
                    try:
                        link.symlink_to(source)
                    except FileExistsError:  # another kernel of this user linked it just now
                        pass
                    except OSError:  # no symlinks (some Windows accounts): a copy
                        shutil.copy2(source, link)
    except OSError:
        return Path(shared)
    return mirror


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$DCLAB_DATA``, else ``cache_dir()/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("DCLAB_DATA")
    if env:
        return Path(env).expanduser()
    return cache_dir() / "data"
