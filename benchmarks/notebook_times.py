"""Benchmark: how long each notebook takes to run the first time, after `prepare` (the start page quotes it).

    DCLAB_DATA=../shared/data python benchmarks/notebook_times.py [--baselines CACHE]

A reader runs `python -m dclab prepare` (timed by benchmarks/first_run.py: baselines and the retrained
ladders), then opens the notebooks. This script measures that second part: it makes an empty dclab cache,
copies in only what `prepare` leaves (``models/`` and ``ladders/`` from ``--baselines``), and runs every
notebook top to bottom in a kernel, in order, so each computes its experiments from scratch (notebook 04's
pipeline runs take the reduced schedule, as on a reader's first run). It writes the seconds to its section
of RESULTS.md and prints the ``FIRST_RUN_SECONDS`` dict that ``dclab.lectures`` shows; a test checks the
two agree.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _results import write_section  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def run(path: Path, env: dict[str, str]) -> float:
    """Seconds to execute one notebook in a fresh kernel (raises if a cell fails)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old = dict(os.environ)
    os.environ.update(env)
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        return time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(old)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baselines", type=Path, default=None,
                        help="a dclab cache after `prepare` (default: this machine's, dclab.paths.cache_dir())")
    args = parser.parse_args()
    if args.baselines is None:
        from dclab.paths import cache_dir

        args.baselines = cache_dir()
    cache = Path(tempfile.mkdtemp(prefix="dclab-notebook-times-"))
    try:
        for part in ("models", "ladders"):
            shutil.copytree(args.baselines / part, cache / part)
        env = {"DCLAB_CACHE": str(cache)}
        load = os.getloadavg()
        seconds = {path.name: round(run(path, env)) for path in NOTEBOOKS}
        after = os.getloadavg()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    rows = "\n".join(f"| {name} | {s} |" for name, s in seconds.items())
    write_section("notebook-times", (
        "## First run of each notebook, after `prepare`\n\n"
        "Every notebook run top to bottom in a fresh kernel, in order, from a cache holding only the trained\n"
        "baselines and ladders (so each notebook computes its own experiments once). Load average "
        f"{load[0]:.1f} before, {after[0]:.1f} after, on 2 cores.\n\n"
        "| notebook | seconds |\n|---|---|\n" + rows
    ))
    print("FIRST_RUN_SECONDS =", seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
