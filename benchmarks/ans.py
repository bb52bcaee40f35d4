"""Benchmark: ANS-coded `.dcz` files and float16 codebooks (version 3) against the Huffman files (issue 15).

    DCLAB_DATA=../shared/data python benchmarks/ans.py [--recipes frontier noloss] [--arches lenet300 lenet5]

For each recipe's full run (``pipeline_run(arch, recipe=..., reduced=False)``: the cached files notebook 07 reads;
a run not cached yet is trained first, as ``python -m dclab compress ARCH --recipe RECIPE`` would), the file is
written again with ANS-coded streams and/or float16 codebooks (``lessons.frontier.coded_files``; nothing
retrained) and each is read back: its bytes on disk and the test error of the model decoded from it. Per layer,
each coder's side data and payload as stored (``lessons.frontier.stream_bytes``). Last, the design choice of the
ANS side data: the stored static model (quantized counts, a gamma-coded table) against an adaptive model that
needs no table (counts learnt as the stream is coded, Krichevsky-Trofimov: each symbol's count + 1/2), both
coded for real with constriction's AnsCoder, summed over the layers' streams.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import write_section  # noqa: E402


def adaptive_ans_bytes(symbols: np.ndarray, alphabet: int) -> int:
    """Bytes of an adaptive (Krichevsky-Trofimov) ANS coding of ``symbols``: no table; each symbol coded with the
    counts of those before it + 1/2 (a design alternative, measured here only)."""
    import constriction

    if symbols.size == 0:
        return 0
    seen = np.zeros((symbols.size, alphabet))
    seen[np.arange(symbols.size), symbols] = 1
    probs = np.cumsum(seen, 0) - seen + 0.5
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), constriction.stream.model.Categorical(perfect=False),
                         probs / probs.sum(1, keepdims=True))
    return 4 * int(coder.get_compressed().size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["frontier", "noloss"])
    parser.add_argument("--arches", nargs="+", default=["lenet300", "lenet5"])
    parser.add_argument("--cached-only", action="store_true",
                        help="measure only the runs already cached, naming the others, instead of training them")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import torch

    from dclab.codec import ans
    from dclab.codec.entropy import dcz_streams
    from dclab.data import load_mnist
    from dclab.lessons import frontier
    from dclab.lessons.coding import compressed_path, pipeline_run, recipe_config

    load_before = os.getloadavg()[0]
    test, folder = load_mnist("test"), Path(tempfile.mkdtemp())
    files, layers, design, sources, skipped = [], [], [], [], []
    for arch in args.arches:
        for recipe in args.recipes:
            if args.cached_only and not compressed_path(arch, recipe_config(arch, recipe)).is_file():
                skipped.append(f"{frontier.TITLES[arch]} {recipe}")
                continue
            point = frontier.file_point(pipeline_run(arch, recipe=recipe, reduced=False))
            rows = frontier.coded_files(point, test, folder)
            print(frontier.coded_files_sentence(rows), flush=True)
            files += [{**r, "recipe": recipe, "command": point.command} for r in rows]
            per_layer = frontier.stream_bytes(rows[0]["dcz"], rows[1]["dcz"])
            layers += [{"network": frontier.TITLES[arch], "recipe": recipe, **r} for r in per_layer]
            sources.append(frontier.stream_bytes_sentence(f"{frontier.TITLES[arch]} ({recipe})", per_layer))
            static = adaptive = 0
            for layer in point.run.dcz.layers:
                for name, sym in dcz_streams(point.run.dcz)[layer.name].items():
                    alphabet = layer.centroids.numel() if name == "weights" else 2**layer.gap_bits
                    static += len(ans.encode(sym).to_bytes())
                    adaptive += adaptive_ans_bytes(sym, alphabet)
            design.append({"network": frontier.TITLES[arch], "recipe": recipe, "static": static, "adaptive": adaptive})
    load_after = os.getloadavg()[0]

    lines = ["## ANS-coded files and float16 codebooks: `.dcz` version 3 (issue 15, notebook 07)", "",
             "Each recipe's cached full-run file (Huffman, the taught default) written again with its index and gap "
             "streams ANS-coded (`coder=\"ans\"`), with float16 codebooks (`codebook_bits=16`), and both; nothing "
             "retrained (`lessons.frontier.coded_files`). Bytes are the files on disk; the error is that of the model "
             "read back from each file, on the 10,000 MNIST test digits.", "",
             "| network | recipe | file | version | bytes | saved | ratio | error |", "|---|---|---|---|---|---|---|---|"]
    for r in files:
        lines.append(f"| {r['network']} | {r['recipe']} | {r['coding']} | {r['version']} | {r['bytes']:,} | "
                     f"{r['saved']:+,} ({r['share saved']:.1%}) | {r['ratio']:.1f}x | {r['error']:.2%} |")
    lines += ["", "Per layer, Huffman against ANS, in bytes as stored (`lessons.frontier.stream_bytes`): each coder's "
              "side data (Huffman: one code length per symbol; ANS: the gamma-coded quantized frequencies and their "
              "precision) and payload (Huffman: the bit stream with its padding byte; ANS: the 32-bit words), and the "
              "layer's bytes in each file with its headers, codebook, bias and section framing (an ANS stream is one "
              "section, a Huffman stream two: 12 bytes less per stream).", "",
              "| network | recipe | layer | entries | Huffman tables | Huffman payload | ANS tables | ANS payload | "
              "layer, Huffman | layer, ANS | saved |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in layers:
        lines.append(f"| {r['network']} | {r['recipe']} | {r['layer']} | {r['entries']:,} | {r['Huffman tables']:,} | "
                     f"{r['Huffman payload']:,} | {r['ANS tables']:,} | {r['ANS payload']:,} | {r['Huffman layer']:,} | "
                     f"{r['ANS layer']:,} | {r['saved']:+,} |")
    if skipped:
        lines += ["", f"Not measured (`--cached-only`; their full runs were not cached yet): {', '.join(skipped)}."]
    lines += [""] + [f"- {line}" for line in sources]
    lines += ["", "The ANS side data, a design choice measured on the same streams (all layers' index and gap "
              "streams, table and words, framing not included): the stored static model (chosen) against an adaptive "
              "Krichevsky-Trofimov model that needs no table (each symbol coded with the counts of those before it "
              "+ 1/2), both real constriction encodings.", "",
              "| network | recipe | static model, stored table | adaptive, no table | adaptive - static |",
              "|---|---|---|---|---|"]
    for d in design:
        lines.append(f"| {d['network']} | {d['recipe']} | {d['static']:,} | {d['adaptive']:,} | "
                     f"{d['adaptive'] - d['static']:+,} |")
    gap = sum(d["adaptive"] - d["static"] for d in design)
    verdict = (f"the adaptive model is {-gap:,} bytes smaller over these files, but the static one is kept"
               if gap < 0 else f"the static model is {gap:,} bytes smaller over these files, and is kept")
    lines += ["", f"So {verdict}: its model is exact integer frequencies (the format defines it without floating "
              "point), it decodes a whole stream in one vectorised call (an adaptive decoder needs one call per "
              "symbol) and its table is checked against the bytes present.", "",
              f"Load average {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} cores, "
              f"{torch.get_num_threads()} torch threads."]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        write_section("ans", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
