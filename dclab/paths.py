"""Where dclab keeps things: the data root and the cache of trained models."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """The cache folder: ``$DCLAB_CACHE`` if set, else the user cache folder."""
    root = os.environ.get("DCLAB_CACHE")
    path = Path(root) if root else Path(platformdirs.user_cache_dir("dclab"))
    return path.expanduser()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$DCLAB_DATA``, else ``cache_dir()/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("DCLAB_DATA")
    if env:
        return Path(env).expanduser()
    return cache_dir() / "data"
