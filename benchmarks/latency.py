"""Benchmark: the capstone dashboard's slider callback, in-process, against one dense test pass.

For each network (LeNet-300-100, LeNet-5, trained baselines), the dashboard of notebook
06 is built and then driven by a seeded random walk over its controls, one step at a
time as arrow keys would move them (a slider one step up or down, a toggle flipped).
Each move's time is the wall time of ``control.value = new`` (the callback runs
synchronously: masks, k-means, the full-test-set accuracy, the .dcz encoding and the
page update). The floor is one plain dense evaluation pass over the 10,000 test digits
(``dclab.train.evaluate`` on the baseline), measured in the same run: the page must
show a measured accuracy, so a move that changes the weights cannot be cheaper than
a pass, except where the cache reuses the layers before the change.

    python benchmarks/latency.py [--moves 40] [--seed 0] [--networks lenet300 lenet5]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section  # noqa: E402

from dclab.data import load_mnist  # noqa: E402
from dclab.pipeline.session import CompressionSession  # noqa: E402
from dclab.train import evaluate  # noqa: E402
from dclab.widgets.dashboard import NETWORKS, compression_dashboard  # noqa: E402

GOAL = 1.5  # p50 of a move at most 1.5x one dense pass

CONTROLS = {
    "lenet300": ["fc_sparsity", "fc_bits", "fc_gap_bits", "huffman", "init"],
    "lenet5": ["conv_sparsity", "fc_sparsity", "conv_bits", "fc_bits", "conv_gap_bits", "fc_gap_bits",
               "huffman", "init"],
}
INITS = ["linear", "density", "random"]


def step(widget, rng: random.Random):
    """The value one arrow key (or click) away from the current one."""
    value = widget.value
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        options = [o for o in INITS if o != value]
        return rng.choice(options)
    delta = widget.step * rng.choice([-1, 1])
    new = value + delta
    if not widget.min <= new <= widget.max:
        new = value - delta
    return round(new, 4) if isinstance(value, float) else int(new)


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def dense_pass(model, test, repeats: int = 5, clock=time.perf_counter) -> float:
    evaluate(model, test)  # warm-up
    times = []
    for _ in range(repeats):
        t = clock()
        evaluate(model, test)
        times.append(clock() - t)
    return statistics.median(times)


def run(network: str, session: CompressionSession, moves: int, seed: int, clock=time.perf_counter) -> dict:
    """The walk; ``clock=time.thread_time`` (with one torch thread) measures CPU time instead of wall time."""
    rng = random.Random(seed)
    t = time.perf_counter()
    box = compression_dashboard(session, network=network, pruning="sparsity", preload=False)
    build = time.perf_counter() - t
    model = session.network(network).model
    floor = dense_pass(model, session.test_data, clock=clock)
    records = []
    for _ in range(moves):
        name = rng.choice(CONTROLS[network])
        widget = getattr(box, name)
        new = step(widget, rng)
        t = clock()
        widget.value = new
        seconds = clock() - t
        records.append({"control": name, "seconds": seconds, "evaluated": "accuracy" not in box.snapshot.reused,
                        **{k: v for k, v in box.timings.items() if k != "total"}})
    floor_after = dense_pass(model, session.test_data, clock=clock)
    return {"network": network, "build": build, "floor": (floor + floor_after) / 2, "records": records}


def summarize(result: dict) -> tuple[str, dict]:
    recs = result["records"]
    floor = result["floor"]
    all_s = [r["seconds"] for r in recs]
    ev = [r["seconds"] for r in recs if r["evaluated"]]
    p50, p95 = statistics.median(all_s), quantile(all_s, 0.95)
    lines = [
        f"| {NETWORKS[result['network']]} | {1000 * floor:.0f} | {len(recs)} | {1000 * p50:.0f} | {1000 * p95:.0f} "
        f"| **{p50 / floor:.2f}x** | {len(ev)} | {1000 * statistics.median(ev) if ev else 0:.0f} "
        f"| {statistics.median(ev) / floor if ev else 0:.2f}x | {result['build']:.1f} |"
    ]
    per = []
    for control in CONTROLS[result["network"]]:
        rs = [r for r in recs if r["control"] == control]
        if not rs:
            continue
        parts = {k: statistics.median(r.get(k, 0.0) for r in rs)
                 for k in ("prune + quantize", "evaluate", "encode", "show")}
        per.append(
            f"| {NETWORKS[result['network']]} | {control} | {len(rs)} | {1000 * statistics.median(r['seconds'] for r in rs):.0f} "
            f"| {sum(r['evaluated'] for r in rs)} | "
            + " | ".join(f"{1000 * v:.0f}" for v in parts.values()) + " |"
        )
    return "\n".join(lines), {"p50_ratio": p50 / floor, "per": per}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--networks", nargs="+", default=["lenet300", "lenet5"], choices=list(CONTROLS))
    parser.add_argument("--no-cpu", action="store_true", help="skip the second walk in CPU time (one thread)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    test = load_mnist("test")
    session = CompressionSession(test)
    rows, per, verdicts, why = [], [], [], []
    for network in args.networks:
        result = run(network, session, args.moves, args.seed)
        row, info = summarize(result)
        rows.append(row)
        per.extend(info["per"])
        ok = info["p50_ratio"] <= GOAL
        verdicts.append(f"{NETWORKS[network]}: p50 = {info['p50_ratio']:.2f}x the dense pass "
                        f"({'meets' if ok else 'misses'} the {GOAL}x goal"
                        + ("" if ok else f" by {info['p50_ratio'] / GOAL:.2f}x") + ")")
        print(row, flush=True)
        ev = [r for r in result["records"] if r["evaluated"]]
        if ev:
            floor = result["floor"]
            rest = statistics.median(r["seconds"] - r.get("evaluate", 0.0) for r in ev)
            test_pass = statistics.median(r.get("evaluate", 0.0) for r in ev)
            why.append(f"{NETWORKS[network]}, moves that evaluate: the test pass takes {1000 * test_pass:.0f} ms "
                       f"({test_pass / floor:.2f}x the dense pass; less when only late layers changed), everything "
                       f"else (masks, k-means, encoding, page) {1000 * rest:.0f} ms ({rest / floor:.2f}x).")
    cpu_rows = []
    if not args.no_cpu:  # the same walks again in CPU time of the calling thread, torch on one thread
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        fresh = CompressionSession(test, {n: session.network(n).model for n in args.networks})
        for network in args.networks:
            result = run(network, fresh, args.moves, args.seed, clock=time.thread_time)
            recs, floor = result["records"], result["floor"]
            all_s = [r["seconds"] for r in recs]
            ev = [r["seconds"] for r in recs if r["evaluated"]]
            cpu_rows.append(
                f"| {NETWORKS[network]} | {1000 * floor:.0f} | {1000 * statistics.median(all_s):.0f} "
                f"| **{statistics.median(all_s) / floor:.2f}x** | {1000 * statistics.median(ev):.0f} "
                f"| {statistics.median(ev) / floor:.2f}x | {1000 * quantile(all_s, 0.95):.0f} |"
            )
            print(cpu_rows[-1], flush=True)
        torch.set_num_threads(threads)
    markdown = "\n".join([
        "## Dashboard latency, in-process (notebook 06)",
        "",
        f"A seeded random walk of {args.moves} moves per network over the dashboard's controls, one arrow-key "
        "step (or toggle) at a time; each move is timed from `control.value = new` to the end of the page update "
        "(masks, k-means, accuracy on all 10,000 test digits, `.dcz` encoding, HTML and figure). The floor is one "
        "plain dense evaluation pass over the test set (`dclab.train.evaluate`, median of 5, before and after the "
        f"walk). Goal: p50 at most {GOAL}x the floor. Machine load average (1 min) before / after: "
        f"{load_before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other jobs share them: absolute "
        "times are inflated, the ratios much less).",
        "",
        "| network | dense pass (ms) | moves | p50 (ms) | p95 (ms) | p50 / pass | moves that evaluate | their p50 (ms) "
        "| their p50 / pass | dashboard built (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Per control (medians, ms; 'evaluate' is 0 when the cached accuracy was reused, and for LeNet-5's fc "
        "layers it starts from the cached convolution outputs):",
        "",
        "| network | control | moves | p50 | evaluated | prune + quantize | evaluate | encode | show |",
        "|---|---|---|---|---|---|---|---|---|",
        *per,
        "",
        *[f"- {v}" for v in verdicts],
        *[f"- {w}" for w in why],
        *([
            "",
            "The same walks measured in CPU time of the kernel's thread, torch on one thread (what the moves cost "
            "without the other jobs on this machine; the page's own thread, as under Voila):",
            "",
            "| network | dense pass (CPU ms) | p50 of all moves | p50 / pass | p50 of moves that evaluate "
            "| their p50 / pass | p95 of all moves |",
            "|---|---|---|---|---|---|---|",
            *cpu_rows,
        ] if cpu_rows else []),
    ])
    print(markdown)
    if not args.no_write:
        write_section("latency", markdown)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
