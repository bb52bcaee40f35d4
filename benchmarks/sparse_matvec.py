"""Benchmark: does a pruned layer run faster? LeNet-300-100's ip1 (300 x 784), dense vs torch.sparse CSR.

The thorough version of notebook 01's "Does it run faster?" cell: more densities, more batch
sizes and a longer time budget per density, through the same `dclab.hardware.time_sparse_matvec`
(random normal weights of ip1's shape, magnitude-pruned; dense = the pruned matrix with its zeros,
CSR = its non-zeros with int32 indices; timer = the fastest of interleaved repeats of loops of
calls, one torch thread). Each sweep is run `--rounds` times; a row shows the median over rounds of
each time and of the ratio dense / sparse (each ratio taken within one round, so both sides of it
saw the same machine load). The load average is recorded before and after.

    python benchmarks/sparse_matvec.py [--seconds 1.0] [--rounds 3] [--threads 1] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section  # noqa: E402

from dclab import hardware  # noqa: E402

DENSITIES = (1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01)
BATCHES = (1, 10, 100, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per density and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    load_before = os.getloadavg()
    sweeps = {b: [hardware.time_sparse_matvec(DENSITIES, b, seconds=args.seconds, threads=args.threads, seed=r)
                  for r in range(args.rounds)] for b in BATCHES}
    load_after = os.getloadavg()

    roof = hardware.measure_roofline()  # after the sweeps, with all threads: the DRAM bandwidth to compare with
    lines = [
        "## Does a pruned layer run faster? Dense vs `torch.sparse` CSR (issue 12)",
        "",
        f"`W @ X` for LeNet-300-100's ip1 (300 x 784, random normal weights magnitude-pruned to each density; "
        f"at batch 1 `torch.mv`), dense fp32 with its zeros against CSR with int32 indices. "
        f"{args.threads} torch thread(s); each time is the fastest of interleaved repeats (dense, CSR, dense, ...) "
        f"of loops of calls, about {args.seconds:g} s per density; median of {args.rounds} rounds. "
        f"**dense / CSR** above 1 means CSR is faster; each ratio is taken within one round. "
        f"Load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; after: "
        f"{', '.join(f'{v:.2f}' for v in load_after)}, on {os.cpu_count()} CPUs.",
        "",
        "| batch | density | kept | dense µs | CSR µs | dense / CSR (median) | range over rounds | dense / CSR bytes | agree |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for batch, rounds in sweeps.items():
        for i, density in enumerate(DENSITIES):
            rs = [sweep[i] for sweep in rounds]
            ratios = [r.speedup for r in rs]
            lines.append(
                f"| {batch} | {density:.0%} | {rs[0].kept:,} | {statistics.median(r.dense_s for r in rs) * 1e6:.1f} | "
                f"{statistics.median(r.sparse_s for r in rs) * 1e6:.1f} | **{statistics.median(ratios):.2f}x** | "
                f"{min(ratios):.2f}-{max(ratios):.2f}x | {rs[0].bytes_ratio:.2f}x | {all(r.agree for r in rs)} |"
            )
        wins = [hardware.sparse_wins_below(sweep) for sweep in rounds]
        said = ["never" if w is None else f"{w:.0%}" for w in wins]
        verdicts.append(f"batch {batch}: CSR faster from this density down, per round: {', '.join(said)}")
    first = sweeps[BATCHES[0]][0]
    full, best = first[0], min(first, key=lambda r: r.density)
    dense1 = statistics.median(sweep[0].dense_s for sweep in sweeps[BATCHES[0]])
    lines += [
        "",
        "; ".join(verdicts) + ".",
        f"CSR reads fewer weight bytes than dense below {hardware.csr_break_even_density(hardware.IP1_SHAPE):.1%} "
        f"density (8 bytes per kept weight against 4 per weight); at {best.density:.0%} it reads "
        f"{best.bytes_ratio:.1f}x fewer.",
        f"Dense ip1 at batch {full.batch_size} reads its {full.dense_bytes / 1e6:.2f} MB of weights in "
        f"{dense1 * 1e6:.1f} µs, an effective {full.dense_bytes / dense1 / 1e9:.0f} GB/s, against "
        f"{roof.bandwidth / 1e9:.1f} GB/s measured for a 128 MiB copy ({roof.threads} threads)"
        + (": faster than DRAM, so in a timing loop the layer stays in the caches; these are cache-resident times."
           if full.dense_bytes / dense1 > roof.bandwidth else
           ": no faster than DRAM, so these times are bounded by memory bandwidth."),
    ]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        command = "python benchmarks/sparse_matvec.py" + "".join(
            f" --{k} {v}" for k, v in (("seconds", args.seconds), ("rounds", args.rounds), ("threads", args.threads))
            if v != parser.get_default(k)
        )
        print(f"wrote {write_section('sparse_matvec', markdown, command)}")


if __name__ == "__main__":
    main()
