"""Benchmark: notebook 02's prune explorer and notebook 03's bit-width widget, in-process, against one dense pass.

For each network (LeNet-300-100, LeNet-5, trained baselines) and each widget, a seeded random walk
moves one control at a time as an arrow key would (a slider one step, a toggle flipped); each move's
time is the wall time of ``control.value = new`` (the callback runs synchronously: masks or k-means,
the accuracy on all 10,000 test digits, the encoded size, the page update). The prune explorer walks
on the retrained ladder (its default on the zoo's baselines). The floor is one dense test pass of the
same model (``dclab.train.evaluate`` on one thread, as the widgets run), median of 5, measured in the
same run; the goal is p50 at most 1.5x the floor.

    python benchmarks/widget_latency.py [--moves 30] [--seed 0] [--networks lenet300 lenet5]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section  # noqa: E402
from latency import GOAL, dense_pass, quantile  # noqa: E402

from dclab import zoo  # noqa: E402
from dclab.data import load_mnist  # noqa: E402
from dclab.lessons.store import single_thread  # noqa: E402
from dclab.widgets.dashboard import NETWORKS  # noqa: E402
from dclab.widgets.pruning import prune_explorer  # noqa: E402
from dclab.widgets.sharing import bit_width_explorer  # noqa: E402

WIDGETS = {
    "prune explorer (02)": (lambda model, test: prune_explorer(model, test, sparsity=0.9),
                            {"sparsity": 0.80, "retrained": 0.20}),
    "bit-width widget (03)": (lambda model, test: bit_width_explorer(model, test, bits=4),
                              {"bits": 0.8, "init": 0.2}),
    "bit-width widget (03), retrained centroids": (
        lambda model, test: bit_width_explorer(model, test, bits=4, retrained=True), {"bits": 0.8, "init": 0.2}),
}
"""Each widget, how it is built, and how often each control moves in the walk."""

SHORT = {"prune": "prune explorer (02)", "bits": "bit-width widget (03)",
         "bits-retrained": "bit-width widget (03), retrained centroids"}
"""``--widgets`` names. The default walk (prune, bits) writes RESULTS.md's ``widget-latency``; any other choice
its own section, ``widget-latency-<names>``."""


def move(widget, rng: random.Random):
    """The value one arrow key (or click) away from the current one."""
    value = widget.value
    if isinstance(value, bool):
        return not value
    if hasattr(widget, "options") and not hasattr(widget, "step"):
        values = [o[1] if isinstance(o, tuple) else o for o in widget.options]
        return rng.choice([v for v in values if v != value])
    delta = widget.step * rng.choice([-1, 1])
    new = value + delta
    if not widget.min <= new <= widget.max:
        new = value - delta
    return round(new, 4) if isinstance(value, float) else int(new)


def walk(box, controls: dict[str, float], moves: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    names, weights = list(controls), list(controls.values())
    records = []
    for _ in range(moves):
        name = rng.choices(names, weights)[0]
        control = getattr(box, name)
        if control.disabled:
            continue
        new = move(control, rng)
        passes = box.measuring.passes
        t = time.perf_counter()
        control.value = new
        records.append({"control": name, "seconds": time.perf_counter() - t,
                        "evaluated": box.measuring.passes > passes})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--networks", nargs="+", default=["lenet300", "lenet5"], choices=list(NETWORKS))
    parser.add_argument("--widgets", nargs="+", default=["prune", "bits"], choices=list(SHORT))
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    widgets = {SHORT[name]: WIDGETS[SHORT[name]] for name in args.widgets}

    load_before = os.getloadavg()[0]
    test = load_mnist("test")
    rows, verdicts = [], []
    for network in args.networks:
        model = zoo.pretrained(network)
        with single_thread():
            floor = dense_pass(model, test)
        for title, (build, controls) in widgets.items():
            t = time.perf_counter()
            box = build(model, test)
            built = time.perf_counter() - t
            records = walk(box, controls, args.moves, args.seed)
            with single_thread():
                floor = (floor + dense_pass(model, test)) / 2
            evaluating = [r for r in records if r["evaluated"]]  # the goal's moves: a test pass ran
            if not evaluating:
                print(f"{NETWORKS[network]}, {title}: no move evaluated (every setting was cached); more --moves")
                continue
            seconds = [r["seconds"] for r in evaluating]
            p50, p95 = statistics.median(seconds), quantile(seconds, 0.95)
            cached = [r["seconds"] for r in records if not r["evaluated"]]
            per = ", ".join(
                f"{name} {1000 * statistics.median(r['seconds'] for r in evaluating if r['control'] == name):.0f} ms"
                for name in controls if any(r["control"] == name for r in evaluating))
            rows.append(f"| {NETWORKS[network]} | {title} | {1000 * floor:.0f} | {len(records)} | {len(evaluating)} "
                        f"| {1000 * p50:.0f} | {1000 * p95:.0f} | **{p50 / floor:.2f}x** | {per} "
                        f"| {f'{1000 * statistics.median(cached):.0f}' if cached else '-'} | {built:.1f} |")
            ok = p50 / floor <= GOAL
            verdicts.append(f"{NETWORKS[network]}, {title}: p50 = {p50 / floor:.2f}x the dense pass "
                            f"({'meets' if ok else 'misses'} the {GOAL}x goal)")
            print(rows[-1], flush=True)
    markdown = "\n".join([
        "## Widget latency, in-process (notebooks 02 and 03)",
        "",
        f"`python benchmarks/widget_latency.py --moves {args.moves} --seed {args.seed} --widgets {' '.join(args.widgets)}`"
        ": a seeded random walk per "
        "widget and network, one arrow-key step (or toggle) at a time, each move timed from `control.value = new` "
        "to the end of the widget's update (masks or k-means, accuracy on all 10,000 test digits, encoded size, "
        "figure). The prune explorer answers on the retrained ladder (its default on the zoo's baselines; the "
        "walk also flips it to *not retrained* and back); the bit-width widget with retrained centroids retrains the "
        "layer's centroids (one epoch of 10,000 training digits) in every move that evaluates. The floor is one dense test pass of the same model on "
        f"one thread (the widgets' own setting), median of 5, before and after. Goal (issue 13): p50 of the moves "
        f"that evaluate (a setting not seen before: a test pass ran) at most {GOAL}x the floor; a setting seen "
        "before answers from the widget's cache (last column). "
        f"Load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs (shared).",
        "",
        "| network | widget | dense pass (ms) | moves | moves that evaluate | p50 (ms) | p95 (ms) | p50 / pass "
        "| p50 by control | p50 of cached moves (ms) | built (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        *[f"- {v}" for v in verdicts],
    ])
    print(markdown)
    if not args.no_write:
        default = args.widgets == ["prune", "bits"]
        write_section("widget-latency" if default else "widget-latency-" + "-".join(args.widgets), markdown)


if __name__ == "__main__":
    main()
