"""Benchmark: per-layer sparsity and bit allocation by measured sensitivity, on both LeNets (issue 15).

    DCLAB_DATA=../shared/data python benchmarks/allocation.py [--arches lenet300 lenet5] [--out-dir DIR] [--no-write]

``dclab.pipeline.allocate.allocate`` searches greedily, one layer and one move at a time (prune 15% more of a
layer's survivors, or one bit fewer), for the smallest real file whose weights stay within an error budget; it
trains nothing. It starts from two networks already trained and cached, each under the frontier goal's error
(``lessons.frontier.GOALS``: 1.64% for LeNet-300-100, 0.80% for LeNet-5):

1. **the ladder's rung at the papers' rates** (retrained after pruning, ``python -m dclab prepare``), at the
   default recipe's bits and float16 biases: what allocation alone reaches from a retrained pruned network;
2. **the frontier recipe's file** (``python -m dclab compress MODEL --recipe frontier``, read back from the
   cache; skipped when not cached): whether allocation moves the frontier past the tuned recipe.

With ``--retrain``, the full pipeline then runs at each allocated setting with the frontier recipe's schedule
(pruning from the zoo's baseline, retraining, centroid fine-tuning: training again, minutes per run; cached where
``python -m dclab compress`` puts it, and the command is recorded). Each end point is written as a ``.dcz``
(``--out-dir``), read back from disk, and its error measured on the model decoded from that file (the 10,000 MNIST test digits: chosen on the test set, as the papers' settings and the
recipes were). One torch thread; the load average is recorded.
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


def start_points(arch: str) -> list[tuple[str, object, object]]:
    """(label, model, starting config) for each start that is cached."""
    import dataclasses

    from dclab import paper
    from dclab.lessons.coding import compressed_path, pipeline_run, recipe_config
    from dclab.models import compressible_layers
    from dclab.pipeline import CompressionConfig, load_model
    from dclab.pipeline.ladder import retrained_ladder

    ladder = retrained_ladder(arch, progress=False)
    rung = ladder.rung_for(paper.SPARSITY[arch])
    starts = [(f"ladder rung {rung.index} ({rung.describe()})", rung.model(arch),
               CompressionConfig(sparsity=dict(rung.sparsities), bias_bits=16))]
    frontier = recipe_config(arch, "frontier", False)
    if compressed_path(arch, frontier).is_file():  # the full run only: a reduced one is no frontier
        model = load_model(pipeline_run(arch, recipe="frontier", reduced=False, progress=False).dcz)
        sparsity = {n: float((m.weight == 0).float().mean()) for n, m in compressible_layers(model).items()}
        starts.append(("the frontier recipe's file", model,
                       dataclasses.replace(frontier, sparsity=sparsity, quality=None, bias_bits=16)))
    else:
        print(f"{arch}: the frontier recipe's full run is not cached; `python -m dclab compress {arch} "
              "--recipe frontier` writes it", flush=True)
    return starts


def _replace(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)


def retrained_at(arch: str, step, start) -> dict:
    """The full pipeline at ``step``'s per-layer setting with the frontier recipe's schedule (cached run)."""
    from dclab import paper
    from dclab.lessons.coding import config_run
    from dclab.pipeline import CompressionConfig

    config = CompressionConfig.preset(arch, "frontier", sparsity=dict(step.sparsity), layer_bits=dict(step.bits),
                                      bias_bits=16, init=start.init)
    load = os.getloadavg()[0]
    run = config_run(arch, config, recipe="allocated", progress=False)
    sparsity = ",".join(f"{n}={v:g}" for n, v in step.sparsity.items())
    bits = ",".join(f"{n}={b}" for n, b in step.bits.items())
    command = (f"python -m dclab compress {arch} --recipe frontier --sparsity {sparsity} --layer-bits {bits} "
               f"--bias-bits 16 --out {arch}-allocated.dcz")
    size = run.path.stat().st_size
    return {"what": "allocated, then retrained", "bytes": size, "ratio": paper.ORIGINAL_BYTES[arch] / size,
            "error": run.error_file, "step": step, "seconds": run.report.seconds, "command": command,
            "load": (load, os.getloadavg()[0]), "computed": run.computed}


def run_start(arch: str, label: str, model, start, out_dir: Path, retrain: bool = False) -> dict:
    from dclab import paper
    from dclab.codec.container import read_dcz
    from dclab.data import load_mnist
    from dclab.lessons.frontier import GOALS
    from dclab.pipeline import compress_weights, load_model
    from dclab.pipeline.allocate import allocate
    from dclab.train import test_error

    test = load_mnist("test")
    load, t = os.getloadavg()[0], time.perf_counter()
    result = allocate(model, test, start, GOALS[arch]["error"], arch=arch)
    seconds = time.perf_counter() - t
    rows = []
    for name, step in (("start", result.steps[0]), ("allocated", result.best)):
        config = _replace(start, sparsity=dict(step.sparsity), quality=None, layer_bits=dict(step.bits))
        _, data, _ = compress_weights(model, config)
        path = out_dir / f"{arch}-{'ladder' if label.startswith('ladder') else 'frontier'}-{name}.dcz"
        path.write_bytes(data)
        on_disk = path.stat().st_size
        error = test_error(load_model(read_dcz(path)), test)
        rows.append({"what": name, "bytes": on_disk, "ratio": paper.ORIGINAL_BYTES[arch] / on_disk, "error": error,
                     "step": step})
    if retrain:
        rows.append(retrained_at(arch, result.best, start))
    return {"arch": arch, "label": label, "rows": rows, "steps": len(result.steps) - 1,
            "evaluations": result.evaluations, "seconds": seconds, "load": (load, os.getloadavg()[0]),
            "moves": [s.move for s in result.steps[1:]]}


def setting(step) -> str:
    return ", ".join(f"{n} {step.sparsity[n]:.1%}/{step.bits[n]}b" for n in step.sparsity)


def report(results: list[dict]) -> str:
    from dclab.lessons.frontier import GOALS, TITLES

    lines = ["## Per-layer allocation by measured sensitivity (issue 15)", "",
             "`dclab.pipeline.allocate.allocate`: from a trained network, one move at a time (prune 15% more of one "
             "layer's survivors, or one bit fewer for one layer), each measured by the one engine (`compress_weights`: "
             "the real file's bytes, the error of its weights), taking the move that saves the most bytes per test "
             "digit lost, until every move would pass the frontier goal's error (1.64% for LeNet-300-100, 0.80% for "
             "LeNet-5). **No training**: each start is a network already trained. Every file below was written, read "
             "back from disk and its model's error measured on the 10,000 test digits (chosen on the test set, as the "
             "papers' settings were). Setting: per layer, sparsity / bits per index; float16 biases.", "",
             "| network | start | file | bytes | ratio | error (read back) | per-layer setting | goal met |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        goal = GOALS[r["arch"]]
        for row in r["rows"]:
            met = row["bytes"] <= goal["bytes"] and row["error"] <= goal["error"]
            lines.append(f"| {TITLES[r['arch']]} | {r['label']} | {row['what']} | {row['bytes']:,} | {row['ratio']:.1f}x "
                         f"| {row['error']:.2%} | {setting(row['step'])} | {'yes' if met else 'no'} |")
    lines.append("")
    for r in results:
        for row in r["rows"]:
            if "command" in row:
                seconds = f"{row['seconds']:.0f} s of training" if row["seconds"] else "training time not recorded"
                lines.append(f"- {TITLES[r['arch']]}, {r['label']}, retrained: {seconds} "
                             f"({'computed now' if row['computed'] else 'a cached run'}, load {row['load'][0]:.1f} -> "
                             f"{row['load'][1]:.1f}): `{row['command']}`")
    for r in results:
        lines.append(f"- {TITLES[r['arch']]}, {r['label']}: {r['steps']} moves ({', '.join(r['moves']) or 'none'}), "
                     f"{r['evaluations']} settings measured in {r['seconds']:.0f} s (load {r['load'][0]:.1f} -> "
                     f"{r['load'][1]:.1f}).")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arches", nargs="+", default=["lenet300", "lenet5"])
    parser.add_argument("--out-dir", help="where the .dcz files go (default: a temporary folder)")
    parser.add_argument("--retrain", action="store_true",
                        help="also run the full pipeline at each allocated setting (the frontier schedule; minutes)")
    parser.add_argument("--no-write", action="store_true", help="print the section, do not write RESULTS.md")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="dclab-allocation-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for arch in args.arches:
        for label, model, start in start_points(arch):
            results.append(run_start(arch, label, model, start, out_dir, args.retrain))
            print(results[-1]["label"], [(r["bytes"], round(100 * r["error"], 2)) for r in results[-1]["rows"]],
                  flush=True)
    text = report(results)
    print(text)
    if not args.no_write:
        write_section("allocation", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
