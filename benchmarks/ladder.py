"""Benchmark: how the retrained ladder's rungs should retrain, and where the capstone opens (issue 13, notebook 06).

    DCLAB_DATA=../shared/data python benchmarks/ladder.py [--arch lenet300] [--recipes 3:5 6:2.5 10:2.5] [--no-write]

Each recipe ``EPOCHS:DIVISOR`` climbs the whole ladder of ``--arch`` from the zoo's baseline with
``dclab.pipeline.ladder.climb_rung`` (the step ``prepare`` takes), retraining every rung for EPOCHS at
``BASELINE_LR / DIVISOR``, and records each rung's test accuracy and the climb's seconds. Nothing is cached:
the ladder the pages use is the one ``dclab.pipeline.ladder.RETRAIN`` names (``prepare`` climbs it). Then the
capstone is opened on that cached ladder, as notebook 06 opens it (the papers' per-layer rates and bits), and its
first numbers are recorded: the accuracy of the ``.dcz``'s weights, its bytes and ratio. Training runs on one
torch thread (the machine is shared); the load average is recorded before and after.
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import write_section  # noqa: E402


def climb(arch: str, epochs: int, divisor: float, train, test) -> dict:
    """The whole ladder climbed with one recipe: each rung's accuracy, and the seconds of the climb."""
    from dclab.pipeline.config import BASELINE_LR
    from dclab.pipeline.ladder import LEVELS, RETRAIN, climb_rung
    from dclab.train import evaluate
    from dclab.zoo import pretrained

    recipe = dict(RETRAIN[arch], epochs=epochs, lr=BASELINE_LR / divisor)
    net = copy.deepcopy(pretrained(arch, progress=False))
    load, start, accuracies = os.getloadavg()[0], time.perf_counter(), {}
    for index, level in enumerate(LEVELS[arch], start=1):
        climb_rung(net, arch, index, level, recipe, train)
        accuracies[level] = evaluate(net, test)
    return {"epochs": epochs, "divisor": divisor, "accuracies": accuracies,
            "seconds": time.perf_counter() - start, "load": (load, os.getloadavg()[0])}


def capstone_opening(arch: str) -> dict:
    """The capstone's first answer on the cached ladder, as notebook 06 opens it (``compression_dashboard``)."""
    from dclab.widgets.dashboard import compression_dashboard

    box = compression_dashboard(network=arch, preload=False, progressive=False)
    snap = box.snapshot
    text = re.sub(r"\s+", " ", re.sub("<[^>]+>", " ", box.numbers.value)).strip()
    return {"accuracy": snap.accuracy, "baseline": snap.baseline_accuracy, "bytes": snap.file_bytes,
            "ratio": snap.ratio, "rung": snap.rung_label, "line": text}


def report(arch: str, rows: list[dict], opening: dict, adopted: tuple[int, float]) -> str:
    from dclab.pipeline.ladder import LEVELS
    from dclab.zoo import baseline_info

    base = 1 - baseline_info(arch)["test_error"]
    levels = LEVELS[arch]
    head = "| epochs per rung, lr | " + " | ".join(f"{lv:.0%}" for lv in levels) + " | climb (s) | load |"
    lines = [f"## The retrained ladder's recipe, and where the capstone opens (issue 13, notebook 06): {arch}", "",
             f"Every recipe climbs the whole ladder from the zoo's baseline ({base:.2%}), each rung starting from the "
             "one below (`ladder.climb_rung`, what `prepare` runs), on 1 torch thread; each cell is the rung's test "
             "accuracy (10,000 digits, one climb each: a difference of 0.1 point between two cells is within the test's own standard error). "
             "**Bold**: the recipe `dclab.pipeline.ladder.RETRAIN` adopts.", "",
             head, "|" + "---|" * (len(levels) + 3)]
    for r in rows:
        name = f"{r['epochs']}, 1/{r['divisor']:g} of the rate"
        if (r["epochs"], r["divisor"]) == adopted:
            name = f"**{name}**"
        cells = " | ".join(f"{100 * r['accuracies'][lv]:.2f}%" for lv in levels)
        lines.append(f"| {name} | {cells} | {r['seconds']:.0f} | {r['load'][0]:.1f} -> {r['load'][1]:.1f} |")
    delta = 100 * (opening["accuracy"] - opening["baseline"])
    lines += ["", f"The capstone opened on the cached ladder (the papers' rates and bits, as notebook 06 opens): "
              f"**{opening['ratio']:.1f}x ({opening['bytes']:,} bytes), {opening['accuracy']:.2%} ({delta:+.2f} points "
              f"against {opening['baseline']:.2%})**, computed on {opening['rung']}: "
              f"{round(-delta * 100)} more of the 10,000 test digits misread than the baseline misreads.", "",
              f"The page's line: {opening['line']}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="lenet300")
    parser.add_argument("--recipes", nargs="+", default=["3:5", "6:5", "6:2.5", "10:2.5"],
                        help="EPOCHS:DIVISOR, the rung's learning rate being BASELINE_LR / DIVISOR")
    parser.add_argument("--no-write", action="store_true", help="print the section, do not write RESULTS.md")
    args = parser.parse_args()

    import torch

    from dclab.data import load_mnist
    from dclab.pipeline.config import BASELINE_LR
    from dclab.pipeline.ladder import RETRAIN

    torch.set_num_threads(1)
    train, test = load_mnist("train"), load_mnist("test")
    rows = []
    for spec in args.recipes:
        epochs, divisor = spec.split(":")
        rows.append(climb(args.arch, int(epochs), float(divisor), train, test))
        print(rows[-1], flush=True)
    adopted = (RETRAIN[args.arch]["epochs"], round(BASELINE_LR / RETRAIN[args.arch]["lr"], 4))
    text = report(args.arch, rows, capstone_opening(args.arch), adopted)
    print(text)
    if not args.no_write:
        write_section(f"ladder_{args.arch}", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
