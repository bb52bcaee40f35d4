"""Benchmark: dense-sparse-dense retraining and trained ternary quantization against the frontier recipe (issue 15).

    DCLAB_DATA=../shared/data python benchmarks/training_methods.py [--arches lenet300 lenet5] [--out-dir DIR]
        [--refresh] [--no-write]

For each LeNet, ``dclab.lessons.frontier.training_methods`` writes and reads back four ``.dcz`` files, all with the
frontier recipe's settings:

1. the frontier file: ``python -m dclab compress ARCH --recipe frontier`` (float32 biases, as the recipe has them; cached where that
   command caches it; read back, not retrained, when present);
2. DSD (``dclab.pipeline.dsd.dsd``: 30% of every layer pruned by magnitude, sparse retraining, the mask released,
   dense retraining at half the rate), then the same frontier compression of the DSD network;
3. the frontier file's network with every fc layer made ternary and trained (``pipeline.ternary.train_ternary``,
   the file's pruning kept; conv layers as the frontier file has them);
4. the same with every fc layer but the last (the TTQ paper keeps the last layer in full precision);
5. TTQ's control: the frontier file's network with every fc layer shared at 2 bits by the pipeline's own trained
   quantization (k-means on the survivors, centroids fine-tuned for as many epochs as TTQ trains).

Recorded per file: bytes on disk, the test error of the model read back from it, training seconds, the load
average before and after, and the command that makes it. The schedule is short (``frontier.TRAINING_METHODS``) to
fit about 15 minutes on two shared cores; the result is cached for notebook 07 (``--refresh`` computes it again).
One torch thread (``store.cached_result``).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import write_section  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arches", nargs="+", default=["lenet300", "lenet5"])
    parser.add_argument("--out-dir", help="where the .dcz files go (default: a new temporary folder)")
    parser.add_argument("--refresh", action="store_true", help="train again even if the result is cached")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args()

    from dclab.lessons import frontier

    folder = Path(args.out_dir or tempfile.mkdtemp(prefix="training-methods-"))
    start, load = time.perf_counter(), os.getloadavg()[0]
    results = []
    for arch in args.arches:
        result = frontier.training_methods(arch, folder, refresh=args.refresh)
        print(frontier.training_methods_sentence(result), flush=True)
        results.append(result)
    wall = time.perf_counter() - start

    lines = ["## Training methods: dense-sparse-dense and trained ternary quantization (issue 15, notebook 07)", "",
             "Every file is compressed with the frontier recipe's settings (float32 biases, as the recipe has them), written, read back, and "
             "its model's error measured on the 10,000 test digits. DSD: 30% of every layer pruned by magnitude, "
             "retrained sparse (1/5 of the baseline's rate), the mask released (the pruned weights restart at 0), "
             "retrained dense (1/10), then compressed from the DSD network exactly as the frontier file is from the "
             "baseline. TTQ: the frontier file's network, its fc layers ternary {-wn, 0, +wp} with trained scales "
             "(threshold 0.05 max|w|, the file's pruning kept; stored as pruned layers with the codebook "
             "[0, -wn, +wp], 2 bits per index before Huffman coding), conv layers as the frontier file has them. Its control: the same fc layers shared at 2 bits by the "
             "pipeline's trained quantization (k-means, centroids fine-tuned as many epochs). "
             "A file moves the frontier if its error is within the goal (1.64%, 0.80%) and no other file here is as small "
             "or smaller at an error as low or lower (errors within 0.1 point, the noise of one run, count as equal). "
             "Trained on one torch thread (`store.cached_result`). "
             "One seed each.", "",
             "| network | method | bytes | ratio | error (read back) | vs frontier: bytes | error | training | load | epochs |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    commands = []
    for result in results:
        schedule = result["schedule"]
        epochs = {"frontier": "the recipe's", "dsd-frontier": f"DSD {schedule['dsd']['sparse_epochs']} + "
                  f"{schedule['dsd']['dense_epochs']}, then the recipe's",
                  "ttq-fc": f"{schedule['ttq_epochs']}", "ttq-fc-but-last": f"{schedule['ttq_epochs']}",
                  "tq2-fc": f"{schedule['ttq_epochs']} (centroids)"}
        by = {r["method"]: r for r in result["rows"]}
        for row, raw in zip(frontier.training_methods_rows(result), result["rows"]):
            seconds = f"{row['training s']:,.0f} s" + (" (cached run)" if raw.get("cached") else "")
            if raw["method"] == "dsd-frontier":
                seconds += f" (DSD {raw['dsd_seconds']:,.0f} s)"
            same = raw["method"] == "frontier"
            lines.append(f"| {row['network']} | {row['method']} | {row['bytes']:,} | {row['ratio']:.1f}x | "
                         f"{row['error']:.2%} | {'' if same else format(row['bytes vs frontier'], '+,')} | "
                         f"{'' if same else format(100 * row['error vs frontier'], '+.2f')} | {seconds} | "
                         f"{raw['load'][0]:.1f} -> {raw['load'][1]:.1f} | {epochs.get(raw['method'], '')} |")
            commands.append(f"- {row['network']}, {row['method']} (`{raw['file']}`): `{raw['command']}`")
        dsd_row = by["dsd-frontier"]
        lines_after = (f"- {frontier.TITLES[result['arch']]}: the DSD network itself (dense, before compression) "
                       f"errs {dsd_row['dense_error']:.2%}, the baseline {result['baseline error']:.2%}.")
        commands.append(lines_after)
    skipped = [frontier.TITLES[a] for a in frontier.ARCHES if a not in args.arches]
    commands += [f"- {name}: not run by this command; `python benchmarks/training_methods.py --arches "
                 f"{next(a for a in frontier.ARCHES if frontier.TITLES[a] == name)}` runs it." for name in skipped]
    verdicts = [line.strip() for result in results for line in frontier.training_methods_sentence(result).splitlines()]
    lines += ["", "In words (`lessons.frontier.training_methods_sentence`, as notebook 07 prints it):", "",
              *[f"- {v}" for v in verdicts]]
    lines += ["", *commands, "",
              f"Wall time {wall:,.0f} s for this command (cached parts read back); load average {load:.1f} at the "
              f"start, {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores."]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        write_section("training_methods", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
