"""A cache shared read-only by an instructor (a course JupyterHub): read through, never written, no crash.

The shared folder is made read-only (``chmod a-w``) and the student side runs in a process that really
cannot write it: when the tests run as root (root writes through any permission bits), the student's
process gives up every capability first, so the permission bits hold for it as for any user.
"""
from __future__ import annotations

import ctypes
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dclab import paths

PR_CAPBSET_DROP = 24


def unprivileged() -> None:
    """``preexec_fn`` for a root parent: the child (after exec) holds no capability, so file modes bind it."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(int(Path("/proc/sys/kernel/cap_last_cap").read_text()) + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _chmod_tree(root: Path, writable: bool) -> None:
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture
def classroom(tmp_path):
    """``(shared, home)``: a shared cache as an instructor leaves it (read-only) and a student's empty home."""
    shared, home = tmp_path / "shared-cache", tmp_path / "student"
    (shared / "models").mkdir(parents=True)
    (shared / "experiments").mkdir()
    (shared / "models" / "lenet300-v1-e30-s0.pt").write_bytes(b"the instructor's weights")
    (shared / "experiments" / "sweep-0123.json").write_text("{}")
    home.mkdir()
    _chmod_tree(shared, writable=False)
    yield shared, home
    _chmod_tree(shared, writable=True)  # so pytest can remove it


def run_as_student(code: str, shared: Path, home: Path) -> dict:
    """Run ``code`` (which prints one JSON line) in a fresh Python as the student, with DCLAB_CACHE=shared."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(home), USER="student", DCLAB_CACHE=str(shared), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=home, capture_output=True, text=True,
                          timeout=300, preexec_fn=unprivileged if os.geteuid() == 0 else None)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


STUDENT = """
import json, os
from pathlib import Path
from dclab import cache, paths
from dclab.lessons import store

shared = Path(os.environ["DCLAB_CACHE"])
first = store.cached_result("probe", {"n": 4}, lambda: {"squares": [i * i for i in range(4)]})
again = store.cached_result("probe", {"n": 4}, lambda: 1 / 0)  # read back, not computed again
mine = sorted(str(p.relative_to(paths.cache_dir())) for p in paths.cache_dir().rglob("*") if p.is_file())
baseline = paths.cache_dir() / "models" / "lenet300-v1-e30-s0.pt"
try:
    cache.atomic_write_bytes(shared / "models" / "retrained.pt", b"x")
    refused = None
except cache.NotWritableError as exc:
    refused = [str(exc), isinstance(exc, PermissionError)]
print(json.dumps({
    "cache_dir": str(paths.cache_dir()), "first": first, "again": again, "mine": mine,
    "baseline": baseline.read_bytes().decode(), "baseline_resolves_to": str(baseline.resolve()),
    "same_fingerprint": cache.fingerprint(baseline) == cache.fingerprint(shared / "models" / baseline.name),
    "refused": refused,
}))
"""


def test_a_student_reads_the_shared_cache_and_writes_only_into_their_own(classroom):
    shared, home = classroom
    before = _tree(shared)
    seen = run_as_student(STUDENT, shared, home)

    own = Path(seen["cache_dir"])
    assert home in own.parents, f"results should go to the student's own cache, not {own}"
    assert seen["first"] == seen["again"] == {"squares": [0, 1, 4, 9]}
    assert seen["baseline"] == "the instructor's weights"  # the shared baseline, read through a link
    assert seen["baseline_resolves_to"] == str(shared.resolve() / "models" / "lenet300-v1-e30-s0.pt")
    assert seen["same_fingerprint"]  # results keyed by the baseline's fingerprint stay valid
    assert any(name.startswith("experiments/probe-") for name in seen["mine"])
    assert _tree(shared) == before, "the shared cache changed"
    message, is_permission_error = seen["refused"]
    assert is_permission_error and "read-only" in message and "DCLAB_CACHE" in message and "retrained.pt" in message


def test_a_second_kernel_finds_the_first_ones_results_and_the_instructors_new_files(classroom):
    shared, home = classroom
    code = STUDENT.replace('"n": 4', '"n": 5').replace("range(4)", "range(5)")
    run_as_student(code, shared, home)
    _chmod_tree(shared, writable=True)
    (shared / "experiments" / "added-later.json").write_text("{}")
    _chmod_tree(shared, writable=False)
    seen = run_as_student(code.replace("lambda: {", "lambda: 1 / 0 or {"), shared, home)  # must not compute
    assert seen["first"] == {"squares": [0, 1, 4, 9, 16]}
    assert "experiments/added-later.json" in seen["mine"]


def test_a_writable_cache_is_used_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setenv("DCLAB_CACHE", str(tmp_path / "cache"))
    assert paths.cache_dir() == tmp_path / "cache"  # even before it exists
    (tmp_path / "cache").mkdir()
    assert paths.cache_dir() == tmp_path / "cache"

