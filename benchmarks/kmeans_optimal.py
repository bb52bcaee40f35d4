"""Benchmark: Lloyd from the paper's linear start against the optimal 1-D k-means, at equal bits (issue 15).

    DCLAB_DATA=../shared/data python benchmarks/kmeans_optimal.py [--bits 5 3 2] [--no-write]

For each LeNet, on the retrained ladder's rung at the paper's sparsities (``lessons.frontier.kmeans_comparison``,
which notebook 07 shows for the default bits): each layer's survivors shared at the same bits by Lloyd from the
linear start (the paper's, dclab's default) and by the least-squares clustering (``init="optimal"``), with the
squared error of each, the seconds each clustering took, and the test accuracy with every layer shared, before any
fine-tuning of the centroids. ``--bits B`` sets the fc layers' bits to B and the conv layers' to B + 3 (the
paper's 5 / 8 is B = 5).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import write_section  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", nargs="+", type=int, default=[5, 3, 2], help="fc bits (conv: 3 more)")
    parser.add_argument("--arches", nargs="+", default=["lenet300", "lenet5"])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from dclab.data import load_mnist
    from dclab.lessons import frontier

    test = load_mnist("test")
    load_before = os.getloadavg()[0]
    lines = ["## Optimal 1-D k-means against Lloyd from the linear start (issue 15)", "",
             "Each layer's survivors of the retrained ladder's rung at the paper's sparsities, shared at equal bits. "
             "SSE: squared error of the shared survivors; time: one clustering (the optimal one is a dynamic program, "
             "O(K n log n)); accuracy: every layer shared, no fine-tuning of the centroids.", "",
             "| network | bits (conv / fc) | layer | survivors | SSE linear | SSE optimal | optimal / linear | "
             "time linear | time optimal |", "|---|---|---|---|---|---|---|---|---|"]
    sentences = []
    for arch in args.arches:
        for fc_bits in args.bits:
            result = frontier.kmeans_comparison(arch, test, progress=False, conv_bits=min(fc_bits + 3, 8), fc_bits=fc_bits)
            bits = f"{result['bits']['conv']} / {result['bits']['fc']}"
            for r in result["rows"]:
                lines.append(f"| {result['network']} | {bits} | {r['layer']} | {r['survivors']:,} | "
                             f"{r['linear SSE']:.4g} | {r['optimal SSE']:.4g} | "
                             f"{r['optimal SSE'] / r['linear SSE']:.0%} | {1000 * r['linear seconds']:.0f} ms | "
                             f"{1000 * r['optimal seconds']:.0f} ms |")
            sentences.append("- " + frontier.kmeans_sentence(result))
            print(sentences[-1], flush=True)
    lines += ["", *sentences, "",
              f"Load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores."]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        write_section("kmeans_optimal", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
