"""Freed heap memory handed back to the system (dclab.memory), as the live pages do once they are built."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dclab.memory import release_freed_memory

ROLLUP = Path("/proc/self/smaps_rollup")


def _own_mb() -> float:
    return int(re.search(r"Private_Dirty:\s+(\d+)", ROLLUP.read_text()).group(1)) / 1024


@pytest.mark.skipif(not ROLLUP.is_file(), reason="Linux's /proc/self/smaps_rollup measures a process's own memory")
def test_freed_heap_between_live_objects_is_handed_back():
    chunks = [bytearray(2000) for _ in range(50_000)]  # ~100 MB through malloc (above pymalloc's 512 bytes)
    survivors = chunks[::50]  # scattered through the heap: it cannot just shrink from the top
    del chunks
    before = _own_mb()
    if not release_freed_memory():
        pytest.skip("not glibc: no malloc_trim")
    assert _own_mb() < before - 50  # most of the ~98 MB freed is no longer the process's own
    assert all(len(c) == 2000 for c in survivors)  # what is still in use is untouched
