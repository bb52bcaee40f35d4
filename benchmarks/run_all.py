"""Run every benchmark in turn; each writes its own section of benchmarks/RESULTS.md.

    DCLAB_DATA=../shared/data python benchmarks/run_all.py [--skip table1 ...]
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["baselines", "table1", "huffman", "kmeans", "kmeans_optimal", "latency", "widget_latency", "browser_latency",
           "sparse_matvec", "notebook_times", "page_open"]


def main() -> int:
    skip = set(sys.argv[sys.argv.index("--skip") + 1 :]) if "--skip" in sys.argv else set()
    failed = []
    for name in SCRIPTS:
        if name in skip:
            continue
        print(f"== benchmarks/{name}.py", flush=True)
        if subprocess.run([sys.executable, str(HERE / f"{name}.py")]).returncode != 0:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
