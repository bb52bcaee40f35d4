"""Handing freed heap memory back to the operating system (issue 14: what one reader's kernel holds).

glibc keeps memory a process has freed for its next allocations: after a page has built its figures and
caches, 10-60 MB of freed temporaries (a test pass's activations, the sorts of k-means) stay counted as the
kernel's own until it allocates them again (``benchmarks/page_memory.py``). ``release_freed_memory`` asks
glibc to hand back what is free, in the calling thread's arena and the main one; memory in use is untouched.
"""
from __future__ import annotations

import ctypes
import functools


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only; elsewhere nothing to do
    except OSError:
        return None


def release_freed_memory() -> bool:
    """``malloc_trim(0)`` where glibc has it; whether anything was asked (False on other C libraries)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
