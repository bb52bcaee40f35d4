"""Benchmark: the largest ratio at no loss against its own baseline, for both LeNets (issue 15, notebook 07).

    DCLAB_DATA=../shared/data python benchmarks/noloss.py [--arches lenet300 lenet5] [--max-runs 4] [--no-write]

"No loss" is ``dclab.lessons.coding.no_loss``: a test error at most 0.1 point above the network's own baseline's,
measured on the model read back from the ``.dcz`` on disk. The search is the cheapest honest one, in two stages:

1. **Bits, on the retrained ladder** (already trained and cached by ``python -m dclab prepare``; nothing is trained
   here): every rung shared at each bit pair of ``BITS``, float16 biases, by the one engine (``compress_weights``),
   written to a file and read back. The bit pair of the largest no-loss file, and its rung's level, start stage 2.
2. **Sparsity, with the full pipeline** (training included, the default recipe's schedule, cached where
   ``python -m dclab compress`` puts the same run): at those bits and float16 biases, the per-layer sparsities of
   the ladder's profile (``ladder.rung_sparsities``) at each ``LEVELS`` step from stage 1's level upward, stopping
   at the first file that loses (or after ``--max-runs``). Its largest no-loss file is the one the ``noloss``
   recipe (``dclab.pipeline.config.NOLOSS``) writes.

The choice is made on the MNIST test set (the only error the pipeline measures), as the papers' own settings were.
Training runs on one torch thread (the machine is shared). Every candidate is recorded: bytes, ratio, error,
baseline error, training seconds, the command that writes it, and the load average before and after it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import write_section  # noqa: E402

BITS = {"lenet300": [(8, 5), (8, 4), (8, 3)], "lenet5": [(8, 5), (6, 5), (8, 4), (5, 4)]}
"""Stage 1's bit pairs (conv, fc) per network (LeNet-300-100 has no conv layer)."""

LEVELS = (0.7, 0.8, 0.82, 0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98)
"""Stage 2's steps: the largest layer's sparsity, the others in the papers' proportions (``rung_sparsities``)."""


def schedules(arch: str) -> dict[str, dict]:
    """Stage 2's training schedules: the default recipe's, then the frontier recipe's longer one."""
    from dclab.pipeline import FRONTIER, PRESETS

    longer = {k: FRONTIER[arch][k] for k in ("prune_steps", "retrain_epochs")}
    return {"default schedule": {}, "longer schedule": longer if longer != PRESETS[arch] else {}}


def cli_command(arch: str, overrides: dict) -> str:
    """The ``python -m dclab compress`` line that runs the default recipe with ``overrides`` (and caches its file
    where ``config_run`` looks)."""
    flags = {"sparsity": "--sparsity", "conv_bits": "--bits-conv", "fc_bits": "--bits-fc", "bias_bits": "--bias-bits",
             "prune_steps": "--prune-steps", "retrain_epochs": "--retrain-epochs", "finetune_epochs": "--finetune-epochs"}
    parts = [f"python -m dclab compress {arch}"]
    for key, value in overrides.items():
        if isinstance(value, dict):
            value = ",".join(f"{name}={v:g}" for name, v in value.items())
        parts.append(f"{flags[key]} {value}")
    return " ".join(parts + [f"--out {arch}-noloss.dcz"])


def stage1(arch: str, test, folder: Path) -> list:
    """Every rung of the ladder at every bit pair: FilePoints of files written and read back (no training)."""
    import dataclasses

    from dclab.codec import container
    from dclab.lessons import frontier
    from dclab.lessons.coding import PipelineRun
    from dclab.pipeline import CompressionConfig, compress_weights, load_model, report_from_dcz
    from dclab.pipeline.ladder import retrained_ladder
    from dclab.train import test_error

    ladder = retrained_ladder(arch, progress=False)
    baseline = test_error(ladder.rungs[0].model(arch), test)
    points = []
    for rung in ladder.rungs[1:]:
        for conv_bits, fc_bits in BITS[arch]:
            config = CompressionConfig(sparsity=rung.sparsities, conv_bits=conv_bits, fc_bits=fc_bits, bias_bits=16)
            _, data, _ = compress_weights(rung.model(arch), config)
            path = folder / f"{arch}-rung{rung.index}-{conv_bits}-{fc_bits}.dcz"
            path.write_bytes(data)
            dcz = container.read_dcz(path)
            dcz.meta["test_error_before"] = baseline
            dcz.meta["seconds"] = sum(r.seconds for r in ladder.rungs[: rung.index + 1])  # the ladder's training
            run = PipelineRun(arch, path, report_from_dcz(dcz), dcz, test_error(load_model(path), test), False, False,
                              f"rung {rung.index} ({rung.level:.0%}), bits {conv_bits}/{fc_bits}")
            points.append(dataclasses.replace(frontier.file_point(run), command="stage 1 (ladder rung, no training)"))
    return points


def _load(before: float | None, after: float | None) -> str:
    return "not recorded" if before is None else f"{before:.1f} -> {after:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arches", nargs="+", default=["lenet300", "lenet5"])
    parser.add_argument("--max-runs", type=int, default=4, help="full pipeline runs per network, at most")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import dataclasses

    import torch

    torch.set_num_threads(args.threads)
    from dclab import paper
    from dclab.data import load_mnist
    from dclab.lessons import frontier
    from dclab.lessons.coding import compressed_path, config_run, no_loss
    from dclab.pipeline import PRESETS, CompressionConfig
    from dclab.pipeline.ladder import rung_sparsities

    test, folder = load_mnist("test"), Path(tempfile.mkdtemp())
    load_start, sections = os.getloadavg(), []
    for arch in args.arches:
        load = os.getloadavg()[0]
        first = stage1(arch, test, folder)
        print(f"{arch} stage 1: {len(first)} ladder files (load {load:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)
        for p in first:
            print(f"  {p.recipe}: {p.bytes:,} B {p.ratio:.1f}x error {p.error:.2%} (baseline {p.baseline_error:.2%})")
        start = frontier.no_loss_choice(first)
        if start is None:
            print(f"{arch}: no ladder file is within the budget; stage 2 starts at the lowest level", flush=True)
        level = start.run.dcz.meta["config"]["sparsity"] if start else None
        conv_bits, fc_bits = (start.run.dcz.meta["config"][k] for k in ("conv_bits", "fc_bits")) if start else (8, 5)
        start_level = max(level.values()) if level else LEVELS[0]
        rows = []
        for schedule, timing in schedules(arch).items():
            steps = [v for v in LEVELS if v >= start_level - 1e-9][: args.max_runs]
            for step in steps:
                overrides = {"sparsity": rung_sparsities(arch, step), "conv_bits": conv_bits, "fc_bits": fc_bits,
                             "bias_bits": 16, **timing}
                config = CompressionConfig.preset(arch, **overrides)
                sidecar = compressed_path(arch, config).with_suffix(".load.json")  # the load while it trained
                cached = compressed_path(arch, config).is_file()
                before = os.getloadavg()[0]
                run = config_run(arch, config, recipe=f"{schedule}, level {step:.0%}", progress=False)
                point = dataclasses.replace(frontier.file_point(run), command=cli_command(arch, overrides))
                after = os.getloadavg()[0]
                if not cached:
                    sidecar.write_text(json.dumps({"before": before, "after": after}))
                elif sidecar.is_file():
                    before, after = json.loads(sidecar.read_text()).values()
                else:
                    before = after = None  # trained by another command: its load was not recorded
                rows.append((point, step, before, after, cached, {**PRESETS[arch], **overrides}))
                print(f"{arch} {schedule} level {step:.0%}: {point.bytes:,} B {point.ratio:.1f}x error {point.error:.2%} "
                      f"(baseline {point.baseline_error:.2%}), trained {point.seconds:.0f} s, load {_load(before, after)}"
                      f"{' (cached)' if cached else ''}", flush=True)
                if not no_loss(point.error, point.baseline_error):
                    start_level = step  # a longer schedule starts where this one lost
                    break
            else:
                start_level = steps[-1] if steps else start_level
        best = frontier.no_loss_choice([r[0] for r in rows])
        sections.append((arch, first, start, rows, best))
        if best is not None:
            settings = next(r[5] for r in rows if r[0] is best)
            print(f"{arch} no-loss: {best.bytes:,} B {best.ratio:.1f}x error {best.error:.2%}; recipe settings "
                  f"{settings}", flush=True)

    lines = ["## The largest ratio at no loss (issue 15, notebook 07)", "",
             "No loss: a test error at most 0.1 point above the network's own baseline's, measured on the model read "
             "back from the `.dcz` on disk. Every setting below was **chosen on the test set, as the papers' own "
             "settings were** (the pipeline measures no other error): the no-loss figure is an optimistic one. "
             f"Training on {torch.get_num_threads()} torch thread(s), on {os.cpu_count()} shared cores.", ""]
    for arch, first, start, rows, best in sections:
        title = frontier.TITLES[arch]
        lines += [f"### {title}", "",
                  "Stage 1, bits on the retrained ladder (no training here; training = the ladder's, up to the rung; "
                  "float16 biases):", "",
                  "| rung, bits conv/fc | bytes | ratio | error (baseline) | no loss | training |",
                  "|---|---|---|---|---|---|"]
        for p in first:
            lines.append(f"| {p.recipe} | {p.bytes:,} | {p.ratio:.1f}x | {p.error:.2%} ({p.baseline_error:.2%}) | "
                         f"{'yes' if no_loss(p.error, p.baseline_error) else 'no'}{' (start)' if p is start else ''} "
                         f"| {p.seconds:.0f} s |")
        lines += ["", "Stage 2, the full pipeline at stage 1's bits and float16 biases, the sparsity climbing until a file "
                  "loses, with the default recipe's schedule, then the frontier recipe's longer one from the level "
                  "where the first lost (each run's own training time; a cached run's is the one it recorded):", "",
                  "| schedule, level | bytes | ratio | error (baseline) | no loss | training | load while training | command |",
                  "|---|---|---|---|---|---|---|---|"]
        for p, step, before, after, cached, _ in rows:
            lines.append(f"| {p.recipe} | {p.bytes:,} | {p.ratio:.1f}x | {p.error:.2%} ({p.baseline_error:.2%}) | "
                         f"{'yes' if no_loss(p.error, p.baseline_error) else 'no'} | {p.seconds:.0f} s"
                         f"{' (cached run)' if cached else ''} | {_load(before, after)} | `{p.command}` |")
        if best is None:
            lines += ["", f"**{title}: no file within the budget.**", ""]
        else:
            settings = next(r[5] for r in rows if r[0] is best)
            same = CompressionConfig.preset(arch, "noloss").to_dict() == CompressionConfig(**settings).to_dict()
            recipe = (f"The `noloss` recipe holds these settings: `python -m dclab compress {arch} --recipe noloss "
                      f"--out {arch}-noloss.dcz` writes the same run (and caches it where notebook 07 reads it)."
                      if same else f"The `noloss` recipe does NOT hold these settings yet (`{settings}`): update "
                      "`dclab.pipeline.config.NOLOSS`.")
            lines += ["", f"**{title}, no loss: {best.bytes:,} bytes, {best.ratio:.1f}x "
                      f"(float32 original {paper.ORIGINAL_BYTES[arch]:,} bytes), error {best.error:.2%} against the "
                      f"baseline's {best.baseline_error:.2%}, trained in {best.seconds:.0f} s ({best.recipe}).** "
                      + recipe, ""]
    load_end = os.getloadavg()
    trained = sum(not r[4] for _, _, _, rows, _ in sections for r in rows)
    total = sum(len(rows) for _, _, _, rows, _ in sections)
    lines += [f"Load average (1, 5, 15 min) {', '.join(f'{v:.1f}' for v in load_start)} before this command, "
              f"{', '.join(f'{v:.1f}' for v in load_end)} after; it trained {trained} of the {total} pipeline runs "
              "above, the others were cached by earlier invocations of the same search (a cached run's training time "
              "is the one it recorded when it ran; its load, where the search recorded it)."]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        write_section("noloss", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
