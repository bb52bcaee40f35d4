"""Benchmark: the recipes' full runs for both LeNets, the files notebook 07 charts (issue 15).

    DCLAB_DATA=../shared/data python benchmarks/frontier.py [--recipes default frontier] [--arches lenet300 lenet5]

Each run is what ``python -m dclab compress ARCH --recipe RECIPE`` does (``pipeline_run(arch, recipe=...,
reduced=False)``: the recipe's settings, training included, on one process's torch threads), cached where
notebook 07 reads it. Recorded per file: its bytes on disk, the ratio to the float32 original, the test error
of the model read back from the file, the baseline's error, the training time the run wrote into the file,
and the goal of issue 15 it meets or misses. A run already in the cache is read back, not retrained (its
training time is the one it recorded); ``--fresh`` deletes the cached files first.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import write_section  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["default", "frontier"])
    parser.add_argument("--arches", nargs="+", default=["lenet300", "lenet5"])
    parser.add_argument("--fresh", action="store_true", help="delete cached runs first (retrain them)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import torch

    from dclab.lessons import frontier
    from dclab.lessons.coding import compressed_path, pipeline_run, recipe_config

    load_before = os.getloadavg()[0]
    points = []
    for arch in args.arches:
        for recipe in args.recipes:
            if args.fresh:
                compressed_path(arch, recipe_config(arch, recipe)).unlink(missing_ok=True)
            point = frontier.file_point(pipeline_run(arch, recipe=recipe, reduced=False))
            print(f"{arch} {recipe}: {point.bytes:,} bytes, {point.ratio:.1f}x, error {point.error:.2%} "
                  f"(baseline {point.baseline_error:.2%}), trained {point.seconds:.0f} s", flush=True)
            points.append(point)
    load_after = os.getloadavg()[0]

    lines = ["## The recipes' files, read back (issue 15, notebook 07)", "",
             "Every size is a `.dcz` on disk; every error is measured on the model read back from that file. Training "
             "time is what the run recorded in its file (on this machine, at the load below).", "",
             "| network | recipe | bytes | ratio | error (baseline) | training | goal | command |",
             "|---|---|---|---|---|---|---|---|"]
    for p in points:
        goal = frontier.GOALS[p.arch]
        met = p.bytes <= goal["bytes"] and p.error <= goal["error"]
        verdict = (f"{'meets' if met else 'misses'} <= {goal['bytes']:,} B at <= {goal['error']:.2%}"
                   if p.recipe == "frontier" else "")
        lines.append(f"| {frontier.TITLES[p.arch]} | {p.recipe} | {p.bytes:,} | {p.ratio:.1f}x | {p.error:.2%} "
                     f"({p.baseline_error:.2%}) | {p.seconds:.0f} s | {verdict} | `{p.command}` |")
    lines += ["", "The frontier files written again with float16 biases (`bias_bits=16`, a version-2 `.dcz`; "
              "`lessons.frontier.with_float16_biases`: nothing retrained, the biases rounded as `compress` rounds "
              "them after fine-tuning), error of the model read back from the new file:", "",
              "| network | float32 biases | float16 biases | saved | ratio | error (float32 -> float16) | goal |",
              "|---|---|---|---|---|---|---|"]
    from dclab.data import load_mnist

    test, folder = load_mnist("test"), Path(tempfile.mkdtemp())
    for p in (p for p in points if p.recipe == "frontier"):
        h = frontier.with_float16_biases(p, test, folder)
        goal = frontier.GOALS[p.arch]
        met = h["float16 biases: bytes"] <= goal["bytes"] and h["float16 biases: error"] <= goal["error"]
        lines.append(f"| {h['network']} | {h['float32 biases: bytes']:,} B | {h['float16 biases: bytes']:,} B | "
                     f"{h['saved']:,} B | {h['ratio']:.1f}x | {h['float32 biases: error']:.2%} -> "
                     f"{h['float16 biases: error']:.2%} | {'meets' if met else 'misses'} |")
    lines += ["", f"Load average {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} cores, "
              f"{torch.get_num_threads()} torch threads."]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        write_section("frontier", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
