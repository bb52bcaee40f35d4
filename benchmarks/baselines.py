"""Train both LeNet baselines from scratch and record their test error and training time.

    DCLAB_DATA=../shared/data python benchmarks/baselines.py

Trains into a temporary cache, so the user's cached baselines are left alone.
With ``--from-cache`` it reports what the training of the cached baselines measured
(``python -m dclab prepare`` records it) instead of training again.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section  # noqa: E402

PAPER = {"lenet300": ("LeNet-300-100", 0.0164), "lenet5": ("LeNet-5", 0.0080)}


def main() -> None:
    from_cache = "--from-cache" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        if not from_cache:
            os.environ["DCLAB_CACHE"] = tmp
        from dclab import zoo

        rows = []
        for name, (title, paper_error) in PAPER.items():
            info = zoo.baseline_info(name) if from_cache else zoo.train_baseline(name, progress=False)
            recipe = info["recipe"]
            verdict = "meets" if info["test_error"] <= paper_error else "MISSES"
            rows.append(
                f"| {title} | {100 * info['test_error']:.2f}% | {100 * paper_error:.2f}% | {verdict} | "
                f"{info['train_seconds']:.0f} s | {recipe['epochs']} epochs, SGD lr {recipe['lr']} cosine, "
                f"L2 {recipe['weight_decay']}, shifts of up to {recipe['max_shift']:g} px, "
                f"{info['threads']} torch thread(s) |"
            )
            print(rows[-1], flush=True)
    table = (
        "## Baselines (issue 2)\n\n"
        "Test error on the 10,000 MNIST test digits, trained from scratch on this machine"
        + (" (figures recorded when the cached baselines were trained, while other jobs shared the two cores)" if from_cache else "")
        + ".\n\n"
        "| network | test error | paper's reference | | training time | recipe |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    write_section("baselines", table)


if __name__ == "__main__":
    main()
