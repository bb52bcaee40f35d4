"""The experiments of notebook 07 (how far can it go): dclab's files on a rate-accuracy chart beside the
published records on the same LeNets.

Every dclab point is a ``.dcz`` made by ``pipeline_run`` (the cached runs notebook 04 also reads, by recipe): its byte
count on disk and the test error of the model read back from it. A cold cache shows the recipe's REDUCED
run, labelled as such; ``python -m dclab compress ARCH --recipe RECIPE`` makes the full one where the
notebook looks for it. The published points are typed in once (``dclab.paper.RECORDS``) with what each
counts: none is a file.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dclab import paper
from dclab.data import Digits
from dclab.lessons.coding import PipelineRun, pipeline_run, recipe_config

if TYPE_CHECKING:
    from dclab.codec.container import DczModel

ARCHES = ("lenet300", "lenet5")
RECIPES = ("default", "frontier", "noloss")
TITLES = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}

GOALS = {  # issue 15: at least this ratio (so at most these bytes) at no more than this error
    "lenet300": {"bytes": 16_663, "ratio": 64, "error": 0.0164},
    "lenet5": {"bytes": 17_243, "ratio": 100, "error": 0.0080},
}
"""The frontier's goals: Soft weight-sharing's 64x for LeNet-300-100 and 100x for LeNet-5, at the papers'
baseline errors (1.64%, 0.80%), measured on files."""


@dataclass(frozen=True)
class FilePoint:
    """One ``.dcz`` on the chart: bytes on disk, the error of the model read back from it."""

    arch: str
    recipe: str
    bytes: int
    error: float
    baseline_error: float
    seconds: float
    reduced: bool
    command: str
    path: Path
    label: str
    run: PipelineRun = field(repr=False, compare=False)

    @property
    def ratio(self) -> float:
        return paper.ORIGINAL_BYTES[self.arch] / self.bytes

    @property
    def loss(self) -> float:
        """Test error added by compression (points of error, as a fraction)."""
        return self.error - self.baseline_error


def file_point(run: PipelineRun) -> FilePoint:
    """The chart's point for a pipeline run: its file's bytes, the error read back, the training time."""
    meta = run.dcz.meta
    return FilePoint(run.arch, run.recipe, run.path.stat().st_size, run.error_file,
                     float(meta["test_error_before"]), float(meta.get("seconds", 0.0)), run.reduced, run.command,
                     run.path, run.label, run)


def no_loss_choice(points: Sequence[FilePoint]) -> FilePoint | None:
    """The largest-ratio file among ``points`` whose error is "no loss" against its own baseline
    (``coding.no_loss``: at most 0.1 point above it), or None when none is (benchmarks/noloss.py, notebook 07).
    Ties in ratio go to the lower error, then to the earlier point."""
    from dclab.lessons.coding import no_loss

    within = [p for p in points if no_loss(p.error, p.baseline_error)]
    return min(within, key=lambda p: (-p.ratio, p.error), default=None)


def file_points(arches: Sequence[str] = ARCHES, recipes: Sequence[str] = RECIPES, *,
                progress: bool = True) -> list[FilePoint]:
    """Every recipe's ``.dcz`` for every network: from the cache, else its reduced run (computed now)."""
    return [file_point(pipeline_run(arch, recipe=recipe, progress=progress)) for arch in arches for recipe in recipes]


def published_points(arches: Sequence[str] = ARCHES) -> list[dict[str, Any]]:
    """The later records (``paper.RECORDS``) as chart points: bytes = the float32 original over the ratio."""
    return [{"method": r.method, "arch": r.arch, "error": r.error, "ratio": r.ratio, "counts": r.counts,
             "bytes": paper.ORIGINAL_BYTES[r.arch] / r.ratio, "source": r.source}
            for r in paper.RECORDS if r.arch in arches]


def recipe_changes(arch: str, recipe: str = "frontier") -> list[dict[str, Any]]:
    """The settings in which ``recipe`` differs from the default recipe, side by side."""
    from dclab.pipeline import DEFAULT_SPARSITY, CompressionConfig

    default, other = recipe_config(arch).to_dict(), recipe_config(arch, recipe).to_dict()
    for settings in (default, other):  # None means the model's default sparsities: show them
        if settings["sparsity"] is None and settings["quality"] is None:
            settings["sparsity"] = DEFAULT_SPARSITY.get(arch)
    fields = CompressionConfig.__dataclass_fields__
    rows = []
    for key in fields:  # a setting to_dict leaves out is at its default (ADDED_SETTINGS)
        if key in default or key in other:
            before, after = (d.get(key, fields[key].default) for d in (default, other))
            if before != after:
                rows.append({"setting": key, "default": _show(before), recipe: _show(after)})
    return rows


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.1%}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
    return str(value)


def gains(points: Sequence[FilePoint], arch: str, recipe: str = "frontier") -> dict[str, Any]:
    """What ``recipe`` buys over the default on ``arch``: bytes, ratio, error, training time (measured)."""
    by = {p.recipe: p for p in points if p.arch == arch}
    base, new = by["default"], by[recipe]
    return {"network": TITLES.get(arch, arch), "default bytes": base.bytes, f"{recipe} bytes": new.bytes,
            "bytes saved": base.bytes - new.bytes, "default ratio": base.ratio, f"{recipe} ratio": new.ratio,
            "default error": base.error, f"{recipe} error": new.error, "error change": new.error - base.error,
            "default training s": base.seconds, f"{recipe} training s": new.seconds,
            "reduced": base.reduced or new.reduced}


def gains_sentence(gain: dict[str, Any], recipe: str = "frontier") -> str:
    """One line from ``gains(points, arch, recipe)``: the recipe's file against the default recipe's, in bytes,
    error and training time (notebook 07)."""
    g = gain
    return (f"{g['network']}: the {recipe} recipe's file is {g[f'{recipe} bytes']:,} bytes ({g[f'{recipe} ratio']:.1f}x) "
            f"at {g[f'{recipe} error']:.2%} error, the default recipe's {g['default bytes']:,} bytes "
            f"({g['default ratio']:.1f}x) at {g['default error']:.2%}: {abs(g['bytes saved']):,} bytes "
            f"{'smaller' if g['bytes saved'] >= 0 else 'larger'} for {g['error change']:+.2%} of error, trained in {g[f'{recipe} training s']:,.0f} s instead of "
            f"{g['default training s']:,.0f} s" + (" (REDUCED runs: not the recipes' full results)" if g["reduced"] else ""))

def goal_rows(points: Sequence[FilePoint], recipe: str = "frontier") -> list[dict[str, Any]]:
    """Each network's frontier file against its goal (``GOALS``): met or not, and by how much."""
    rows = []
    for p in points:
        if p.recipe != recipe:
            continue
        goal = GOALS[p.arch]
        rows.append({"network": TITLES.get(p.arch, p.arch), "file bytes": p.bytes, "goal bytes": goal["bytes"],
                     "ratio": p.ratio, "goal ratio": goal["ratio"], "error": p.error, "goal error": goal["error"],
                     "met": p.bytes <= goal["bytes"] and p.error <= goal["error"],
                     "run": "reduced run, not the recipe's full one" if p.reduced else "full run"})
    return rows


def goal_sentence(rows: Sequence[dict[str, Any]]) -> str:
    """One line per network, from ``goal_rows``: what was measured against the goal."""
    lines = []
    for r in rows:
        verdict = "meets" if r["met"] else "misses"
        lines.append(f"{r['network']}: {r['file bytes']:,} bytes ({r['ratio']:.0f}x) at {r['error']:.2%} error "
                     f"{verdict} the goal of <= {r['goal bytes']:,} bytes ({r['goal ratio']}x) at <= "
                     f"{r['goal error']:.2%} ({r['run']})")
    return "\n".join(lines)


def noloss_rows(points: Sequence[FilePoint], recipe: str = "noloss") -> list[dict[str, Any]]:
    """Each network's ``recipe`` file against its own baseline: no loss (``coding.no_loss``) or not, and by how much."""
    from dclab.lessons.coding import NO_LOSS_POINTS, no_loss

    return [{"network": TITLES.get(p.arch, p.arch), "file bytes": p.bytes, "ratio": p.ratio, "error": p.error,
             "baseline error": p.baseline_error, "budget": p.baseline_error + NO_LOSS_POINTS / 100,
             "points over the baseline": 100 * p.loss, "no loss": no_loss(p.error, p.baseline_error),
             "training s": p.seconds, "run": "reduced run, not the recipe's full one" if p.reduced else "full run"}
            for p in points if p.recipe == recipe]


def noloss_sentence(rows: Sequence[dict[str, Any]]) -> str:
    """One line per network, from ``noloss_rows``: what the file measured against its baseline's error."""
    lines = []
    for r in rows:
        verdict = "no loss" if r["no loss"] else "a loss"
        lines.append(f"{r['network']}: {r['file bytes']:,} bytes ({r['ratio']:.1f}x) at {r['error']:.2%} error, "
                     f"{r['points over the baseline']:+.2f} points against its baseline's {r['baseline error']:.2%}: "
                     f"{verdict} (the budget is <= {r['budget']:.2%}), trained in {r['training s']:,.0f} s ({r['run']})")
    return "\n".join(lines)


def byte_budget(point: FilePoint) -> list[dict[str, Any]]:
    """Where a file's bytes go: each layer's coded weights (indices and gaps, Huffman-coded), the biases (float32,
    or float16 in a version-2 file), and the rest of the file (headers, codebooks, code tables, checksums), as bytes and shares."""
    report, total = point.run.report, point.bytes
    rows = [{"part": f"{layer.name}: coded weights", "bytes": layer.size_pqh_bytes} for layer in point.run.report.layers]
    stored = [layer for layer in point.run.dcz.layers if layer.bias is not None]
    biases = sum(layer.bias_bytes for layer in stored)
    kinds = "/".join(sorted({f"float{layer.bias_bits}" for layer in stored})) or "none"
    rows.append({"part": f"biases ({kinds})", "bytes": biases})
    rows.append({"part": "the rest (headers, codebooks, code tables, checksums)",
                 "bytes": total - biases - sum(layer.size_pqh_bytes for layer in report.layers)})
    for row in rows:
        row["share"] = row["bytes"] / total
    return rows


CODINGS = {"Huffman": {}, "ANS": {"coder": "ans"}, "Huffman, float16 codebooks": {"codebook_bits": 16},
           "ANS, float16 codebooks": {"coder": "ans", "codebook_bits": 16}}
"""The files ``coded_files`` writes: the point's own (Huffman), then with the options of ``.dcz`` version 3."""


def coded_files(point: FilePoint, test_data: Digits, folder: Path) -> list[dict[str, Any]]:
    """``point``'s file written again with its index and gap streams ANS-coded and/or its codebooks in float16
    (``coder="ans"``, ``codebook_bits=16``: version-3 ``.dcz`` files) into ``folder``; nothing is retrained. For
    each (``CODINGS``; the first is the point's own file): the bytes on disk and the test error of the model read
    back from that file (notebook 07; benchmarks/ans.py). ANS stores the very same weights; float16 codebooks round
    the centroids, and the file's metadata records the error of the rounded model, as ``compress`` would."""
    import dataclasses

    from dclab.codec import container
    from dclab.pipeline import load_model
    from dclab.train import test_error

    dcz, rows = point.run.dcz, []
    for label, options in CODINGS.items():
        path = point.path
        if options:
            layers = [dataclasses.replace(layer, codebook_bits=options.get("codebook_bits", layer.codebook_bits))
                      for layer in dcz.layers]
            meta = {**dcz.meta, "config": {**dcz.meta.get("config", {}), **options}}
            if "codebook_bits" in options:
                meta["test_error_after"] = test_error(load_model(container.to_bytes(dcz.arch, layers, meta=meta)),
                                                      test_data)
            path = Path(folder) / f"{point.path.stem}-{label.lower().replace(', ', '-').replace(' ', '-')}.dcz"
            container.write_dcz(path, dcz.arch, layers, meta=meta, coder=options.get("coder", "huffman"))
        back = container.read_dcz(path)
        rows.append({"network": TITLES.get(point.arch, point.arch), "coding": label, "version": path.read_bytes()[8],
                     "bytes": back.n_bytes, "saved": point.bytes - back.n_bytes,
                     "share saved": (point.bytes - back.n_bytes) / point.bytes,
                     "ratio": paper.ORIGINAL_BYTES[point.arch] / back.n_bytes,
                     "error": test_error(load_model(back), test_data), "path": path, "dcz": back})
    return rows


def coded_files_sentence(rows: Sequence[dict[str, Any]]) -> str:
    """What ``coded_files`` measured, in words: each file against the Huffman file, bytes and error."""
    base = rows[0]
    parts = [f"{base['network']}: the Huffman file is {base['bytes']:,} bytes at {base['error']:.2%} error"]
    for r in rows[1:]:
        parts.append(f"{r['coding']} {r['bytes']:,} bytes ({r['saved']:+,} saved, {r['share saved']:.1%}) at "
                     f"{r['error']:.2%}")
    return "; ".join(parts) + "."


def stream_bytes(huffman: "DczModel", ans: "DczModel") -> list[dict[str, Any]]:
    """Per layer, the index and gap streams of a Huffman file and of the same layers ANS-coded: each coder's side
    data (Huffman's code-length tables, ANS's frequency tables) and coded payload, in bytes as stored, and the
    layer's bytes in each file, section framing included (notebook 07, benchmarks/ans.py)."""
    rows = []
    for h, a in zip(huffman.layer_stats(), ans.layer_stats()):
        data = sum(n for k, n in h.sections.items() if k in ("WDAT", "GDAT"))
        rows.append({"layer": h.name, "entries": h.n_entries, "Huffman tables": h.table_bytes,
                     "Huffman payload": data, "ANS tables": a.ans_table_bytes, "ANS payload": a.ans_payload_bytes,
                     "Huffman layer": h.stored_bytes, "ANS layer": a.stored_bytes,
                     "saved": h.stored_bytes - a.stored_bytes})
    return rows


def stream_bytes_sentence(network: str, rows: Sequence[dict[str, Any]]) -> str:
    """Where ANS's saving over Huffman comes from, from ``stream_bytes``: smaller tables, less payload, and the
    section framing (an ANS stream is one section, a Huffman stream two)."""
    saved = sum(r["saved"] for r in rows)
    tables = sum(r["Huffman tables"] - r["ANS tables"] for r in rows)
    payload = sum(r["Huffman payload"] - r["ANS payload"] for r in rows)
    return (f"{network}: ANS saves {saved:,} bytes in the layers: {tables:,} of side data (frequency tables against "
            f"code-length tables), {payload:,} of payload (coded streams) and {saved - tables - payload:,} of "
            f"section framing.")


def kmeans_comparison(arch: str, test_data: Digits, progress: bool = True, **bits: int) -> dict[str, Any]:
    """Lloyd from the paper's linear start against the optimal 1-D k-means (``init="optimal"``), at equal bits.

    On the retrained ladder's rung at the paper's sparsities (a retrained pruned network, as the pipeline
    shares it), each layer's survivors are shared at the default recipe's bits (or ``conv_bits=``, ``fc_bits=``)
    both ways: the squared error
    of each layer, the time each clustering took, and the test accuracy with every layer shared (before
    any fine-tuning of the centroids, which would move both). A ladder not cached yet is climbed first
    (``python -m dclab prepare`` caches it), with a progress bar unless ``progress=False``."""
    from dclab.algorithms import quantize
    from dclab.models import compressible_layers, layer_kind
    from dclab.pipeline import CompressionConfig
    from dclab.pipeline.ladder import retrained_ladder
    from dclab.train import evaluate

    config = CompressionConfig.preset(arch, **bits)
    rung = retrained_ladder(arch, progress=progress).rung_for(paper.SPARSITY[arch])
    net = rung.model(arch)
    layers = compressible_layers(net)
    rows, books = [], {"linear": {}, "optimal": {}}
    for name, module in layers.items():
        w = module.weight.detach()
        mask = w != 0
        bits = config.bits_for(name, layer_kind(module))
        row = {"layer": name, "bits": bits, "survivors": int(mask.sum())}
        for init in books:
            start = time.perf_counter()
            book = quantize.quantize_layer(w, mask, bits, init)
            row[f"{init} seconds"] = time.perf_counter() - start
            row[f"{init} SSE"] = float(((book.weights() - w)[mask].double() ** 2).sum())
            books[init][name] = book
        row["SSE ratio"] = row["linear SSE"] / row["optimal SSE"] if row["optimal SSE"] > 0 else float("nan")
        rows.append(row)
    accuracy = {}
    for init, codebooks in books.items():
        shared = rung.model(arch)
        quantize.apply_codebooks_(shared, codebooks)
        accuracy[init] = evaluate(shared, test_data)
    return {"network": TITLES.get(arch, arch), "rung": rung.describe(), "bits": {"conv": config.conv_bits, "fc": config.fc_bits}, "rung accuracy": evaluate(net, test_data),
            "rows": rows, "accuracy": accuracy}


def kmeans_sentence(result: dict[str, Any]) -> str:
    """What ``kmeans_comparison`` measured, in words."""
    total = {init: sum(r[f"{init} SSE"] for r in result["rows"]) for init in ("linear", "optimal")}
    acc = result["accuracy"]
    bits = ", ".join(f"{kind} {b} bits" for kind, b in result["bits"].items())
    return (f"{result['network']} ({result['rung']}; {bits}): the optimal clustering's squared error is "
            f"{total['optimal'] / total['linear']:.1%} of Lloyd's from the linear start over all layers; "
            f"test accuracy with every layer shared, before fine-tuning: linear {100 * acc['linear']:.2f}%, "
            f"optimal {100 * acc['optimal']:.2f}% (pruned and retrained, unshared: {100 * result['rung accuracy']:.2f}%).")


def with_float16_biases(point: FilePoint, test_data: Digits, folder: Path) -> dict[str, Any]:
    """``point``'s file written again with its biases in float16 (a version-2 ``.dcz``, ``bias_bits=16``) into
    ``folder``: the bytes on disk and the test error of the model read back, beside the float32 file's.

    Nothing is retrained: the weights stay as they are and only the biases are rounded, which is what
    ``compress`` with ``bias_bits=16`` does after fine-tuning (it then measures the rounded model)."""
    import dataclasses

    from dclab.codec import container
    from dclab.pipeline import load_model
    from dclab.train import test_error

    dcz = point.run.dcz
    layers = [dataclasses.replace(layer, bias_bits=16) for layer in dcz.layers]
    meta = {**dcz.meta, "config": {**dcz.meta.get("config", {}), "bias_bits": 16}}
    meta["test_error_after"] = test_error(load_model(container.to_bytes(dcz.arch, layers, meta=meta)), test_data)
    path = Path(folder) / f"{point.path.stem}-float16-biases.dcz"
    size = container.write_dcz(path, dcz.arch, layers, huffman=True, meta=meta)
    error = test_error(load_model(path), test_data)  # the model read back from the file on disk
    return {"network": TITLES.get(point.arch, point.arch), "recipe": point.recipe, "float32 biases: bytes": point.bytes,
            "float16 biases: bytes": size, "saved": point.bytes - size,
            "float32 biases: error": point.error, "float16 biases: error": error, "ratio": paper.ORIGINAL_BYTES[point.arch] / size,
            "path": path}


def allocated_file(arch: str, test_data: Digits, folder: Path, max_error: float | None = None,
                   max_steps: int = 80, cached: bool = True) -> dict[str, Any]:
    """Per-layer allocation (``dclab.pipeline.allocate``) from the ladder's rung at the papers' rates, at the default
    recipe's bits and float16 biases, under ``max_error`` (default: the frontier goal's error, ``GOALS``); nothing
    is trained. The start and the allocated setting are written into ``folder`` as ``.dcz`` files and read back:
    bytes on disk and the error of the model decoded from each (notebook 07; benchmarks/allocation.py for both
    LeNets). ``cached``: the search's result is kept by ``store.cached_result`` (the files are written anew)."""
    import dataclasses

    from dclab.codec.container import read_dcz
    from dclab.lessons.store import baseline_fingerprint, cached_result
    from dclab.pipeline import CompressionConfig, compress_weights, load_model
    from dclab.pipeline import allocate as allocation
    from dclab.pipeline.ladder import ladder_dir, retrained_ladder
    from dclab.train import test_error

    rung = retrained_ladder(arch, progress=False).rung_for(paper.SPARSITY[arch])
    start = CompressionConfig(sparsity=dict(rung.sparsities), bias_bits=16)
    budget = GOALS[arch]["error"] if max_error is None else max_error
    model = rung.model(arch)

    def search() -> dict[str, Any]:
        begin = time.perf_counter()
        result = allocation.allocate(model, test_data, start, budget, arch=arch, max_steps=max_steps)
        return {"steps": [{"sparsity": s.sparsity, "bits": s.bits} for s in (result.steps[0], result.best)],
                "moves": [s.move for s in result.steps[1:]], "evaluations": result.evaluations,
                "seconds": time.perf_counter() - begin}

    settings = {"arch": arch, "baseline": baseline_fingerprint(arch), "ladder": ladder_dir(arch).name,
                "rung": rung.index, "max_error": budget, "max_steps": max_steps, "digits": len(test_data),
                "density_step": allocation.DENSITY_STEP, "min_bits": allocation.MIN_BITS, "version": 1}
    found = cached_result("allocation", settings, search) if cached else search()
    files = {}
    for what, step in zip(("start", "allocated"), found["steps"]):
        config = dataclasses.replace(start, sparsity=dict(step["sparsity"]), layer_bits=dict(step["bits"]))
        path = Path(folder) / f"{arch}-{what}.dcz"
        path.write_bytes(compress_weights(model, config)[1])
        files[what] = {"bytes": path.stat().st_size, "error": test_error(load_model(read_dcz(path)), test_data),
                       "setting": ", ".join(f"{n} {step['sparsity'][n]:.1%} / {step['bits'][n]} bits"
                                            for n in step["sparsity"]),
                       "path": path}
    return {"network": TITLES.get(arch, arch), "arch": arch, "rung": rung.describe(), "max_error": budget,
            "files": files, "moves": found["moves"], "evaluations": found["evaluations"], "seconds": found["seconds"]}


def allocation_sentence(res: dict[str, Any]) -> str:
    """What ``allocated_file`` measured, in words: the two files, the moves, and the search's cost."""
    start, end = res["files"]["start"], res["files"]["allocated"]
    ratio = paper.ORIGINAL_BYTES[res["arch"]]
    return (f"{res['network']}, from the rung with {res['rung']}: {start['bytes']:,} bytes ({ratio / start['bytes']:.1f}x)"
            f" at {start['error']:.2%} -> {end['bytes']:,} bytes ({ratio / end['bytes']:.1f}x) at {end['error']:.2%} "
            f"(budget {res['max_error']:.2%}), in {len(res['moves'])} moves: {', '.join(res['moves']) or 'none'}; "
            f"{res['evaluations']} settings measured in {res['seconds']:.0f} s, nothing trained. Allocated per layer: "
            f"{end['setting']}.")


# ---------------------------------------------------------------- training methods: DSD and TTQ (issue 15)

TRAINING_METHODS: dict[str, dict[str, Any]] = {
    # short, for two shared cores (LeNet-300-100 ~2 s an epoch, LeNet-5 ~9 s): benchmarks/training_methods.py
    "lenet300": {"dsd": {"sparse_epochs": 4, "dense_epochs": 4}, "ttq_epochs": 4},
    "lenet5": {"dsd": {"sparse_epochs": 2, "dense_epochs": 2}, "ttq_epochs": 2},
}
"""The schedule of the training-methods experiment: the DSD phases' epochs (``pipeline.dsd.dsd``'s rates, 1/5 then
1/10 of the baseline's), and the epochs of trained ternary quantization (``pipeline.ternary.train_ternary``)."""

TRAINING_METHODS_VERSION = 2  # 2: the ternary scales train at the centroids rate


def training_methods_config(arch: str) -> "CompressionConfig":
    """The recipe every file of the experiment is compressed with: the frontier recipe as it is (so its file is the
    one ``python -m dclab compress ARCH --recipe frontier`` caches and the chart above shows)."""
    return recipe_config(arch, "frontier")


def _training_methods_settings(arch: str) -> dict[str, Any] | None:
    from dclab import zoo
    from dclab.cache import fingerprint
    from dclab.pipeline.dsd import DSD_SPARSITY

    path = zoo.checkpoint_path(arch)
    if not path.is_file():
        return None
    return {"arch": arch, "baseline": fingerprint(path), "config": training_methods_config(arch).to_dict(),
            "schedule": TRAINING_METHODS[arch], "dsd_sparsity": DSD_SPARSITY, "version": TRAINING_METHODS_VERSION}


def training_methods(arch: str, folder: Path, *, refresh: bool = False, progress: bool = True) -> dict[str, Any]:
    """Dense-sparse-dense retraining and trained ternary quantization against the frontier recipe, as real files
    (issue 15; benchmarks/training_methods.py; minutes of training, cached by ``store.cached_result``).

    Every file uses ``training_methods_config(arch)``: (1) the frontier file, ``compress`` of the zoo's baseline
    (``coding.config_run``, cached); (2) DSD, then the same ``compress`` of the DSD network; (3) the frontier file's
    network with its fc layers made ternary and trained (``train_ternary``, its pruning kept), with every fc layer,
    and with every fc layer but the last; and, as TTQ's control, the same network with its fc layers shared at 2 bits
    by the pipeline's own trained quantization (k-means, centroids fine-tuned, as many epochs). Each file is written into ``folder``, read back, and its model's error
    measured on the 10,000 test digits; the training time and load average of each are recorded."""
    import dataclasses
    import os
    import shutil

    from dclab import zoo
    from dclab.data import load_mnist
    from dclab.lessons.coding import config_run
    from dclab.lessons.store import cached_result
    from dclab.models import compressible_layers, layer_kind
    from dclab.pipeline import compress, load_model
    from dclab.pipeline.dsd import dsd
    from dclab.pipeline.ternary import train_ternary
    from dclab.train import test_error

    zoo.pretrained(arch, progress=progress)
    settings = _training_methods_settings(arch)
    config, schedule = training_methods_config(arch), TRAINING_METHODS[arch]
    folder = Path(folder)

    def written(method: str, data: bytes | Path, seconds: float, load: tuple[float, float], command: str,
                **extra: Any) -> dict[str, Any]:
        path = folder / f"{arch}-{method}.dcz"
        if isinstance(data, Path):
            shutil.copyfile(data, path)
        else:
            path.write_bytes(data)
        size = path.stat().st_size
        return {"method": method, "bytes": size, "ratio": paper.ORIGINAL_BYTES[arch] / size,
                "error": test_error(load_model(path), test), "training seconds": seconds, "load": list(load),
                "command": command, "file": path.name, **extra}

    def compute() -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        baseline = zoo.pretrained(arch, progress=progress)
        train = load_mnist("train")
        rerun = f"python benchmarks/training_methods.py --arches {arch} --out-dir DIR"
        rows = []  # DSD first: a frontier run being made elsewhere meanwhile is then read from the cache
        load = os.getloadavg()[0]
        dense = dsd(baseline, train, **schedule["dsd"], progress=progress)
        result = compress(dense.model, config, train_data=train, test_data=test, arch=arch, progress=progress)
        rows.append(written("dsd-frontier", result.dcz, dense.seconds + float(result.report.seconds or 0.0),
                            (load, os.getloadavg()[0]), rerun, dsd_seconds=dense.seconds,
                            dense_error=test_error(dense.model, test)))
        load = os.getloadavg()[0]
        run = config_run(arch, config, recipe="frontier", progress=progress)  # pipeline_run's full frontier run
        rows.insert(0, written("frontier", run.path, float(run.dcz.meta["seconds"]), (load, os.getloadavg()[0]),
                               run.command, cached=not run.computed))
        frontier_net = load_model(run.dcz)
        fc = [n for n, m in compressible_layers(frontier_net).items() if layer_kind(m) == "fc"]
        # the control: Deep Compression's own trained quantization at 2 bits on the same fc layers, same epochs
        load = os.getloadavg()[0]
        kept = {n: float((m.weight == 0).double().mean()) for n, m in compressible_layers(frontier_net).items()}
        control = dataclasses.replace(config, sparsity=kept, quality=None, prune_steps=1, retrain_epochs=0,
                                      finetune_epochs=schedule["ttq_epochs"], layer_bits=dict.fromkeys(fc, 2))
        shared = compress(frontier_net, control, train_data=train, test_data=test, arch=arch, progress=progress)
        rows.append(written("tq2-fc", shared.dcz, float(shared.report.seconds or 0.0), (load, os.getloadavg()[0]),
                            rerun, layers=fc))
        for method, layers in (("ttq-fc", fc), ("ttq-fc-but-last", fc[:-1])):
            load = os.getloadavg()[0]
            ternary = train_ternary(frontier_net, config, layers=layers, epochs=schedule["ttq_epochs"],
                                    train_data=train, test_data=test, arch=arch, progress=progress)
            rows.append(written(method, ternary.dcz, float(ternary.report.seconds or 0.0),
                                (load, os.getloadavg()[0]), rerun, layers=layers))
        return {"arch": arch, "baseline error": test_error(baseline, test), "rows": rows,
                "schedule": schedule, "threads": 1}

    test = load_mnist("test")
    return cached_result("training_methods", settings, compute, refresh=refresh)


def stored_training_methods(arch: str) -> dict[str, Any] | None:
    """``training_methods``' result if benchmarks/training_methods.py has cached it for this baseline, else None;
    never trains (notebook 07 in CI shows a message instead)."""
    from dclab.lessons.store import stored_result

    settings = _training_methods_settings(arch)
    return None if settings is None else stored_result("training_methods", settings)


TRAINING_METHOD_NAMES = {"frontier": "frontier recipe", "dsd-frontier": "DSD, then the frontier recipe",
                         "tq2-fc": "frontier file, every fc layer at 2 bits, centroids fine-tuned (control)",
                         "ttq-fc": "frontier file, every fc layer ternary (TTQ)",
                         "ttq-fc-but-last": "frontier file, fc layers but the last ternary (TTQ)"}


def training_methods_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per file of ``training_methods``: bytes, ratio, error, the change against the frontier file, and
    whether it moves the frontier: within the goal's error (``GOALS``), and no other file of the experiment as small
    or smaller at an error as low or lower, errors within ``coding.NO_LOSS_POINTS`` (0.1 point, 10 test digits: the
    noise of one run) counted as equal (the frontier file is the reference, so it never moves itself)."""
    from dclab.lessons.coding import NO_LOSS_POINTS

    files = result["rows"]
    base = next(r for r in files if r["method"] == "frontier")
    goal = GOALS[result["arch"]]["error"]

    def dominated(r: dict[str, Any]) -> bool:
        return any(o is not r and o["bytes"] <= r["bytes"] and o["error"] <= r["error"] + NO_LOSS_POINTS / 100 + 1e-9
                   for o in files)

    return [{"network": TITLES.get(result["arch"], result["arch"]), "method": TRAINING_METHOD_NAMES.get(r["method"], r["method"]),
             "bytes": r["bytes"], "ratio": r["ratio"], "error": r["error"], "bytes vs frontier": r["bytes"] - base["bytes"],
             "error vs frontier": r["error"] - base["error"], "training s": r["training seconds"],
             "moves the frontier": r is not base and r["error"] <= goal and not dominated(r)}
            for r in files]


def training_methods_sentence(result: dict[str, Any]) -> str:
    """What ``training_methods`` measured, in words: each method's file against the frontier file."""
    rows = training_methods_rows(result)
    base = rows[0]
    lines = [f"{base['network']}: the frontier recipe's file is {base['bytes']:,} bytes ({base['ratio']:.1f}x) at "
             f"{base['error']:.2%} error."]
    for r in rows[1:]:
        verdict = "moves the frontier" if r["moves the frontier"] else "does not move the frontier"
        if not r["moves the frontier"] and r["error"] > GOALS[result["arch"]]["error"]:
            verdict += f" (above the goal's {GOALS[result['arch']]['error']:.2%} error)"
        lines.append(f"  {r['method']}: {r['bytes']:,} bytes ({r['ratio']:.1f}x) at {r['error']:.2%}, "
                     f"{r['bytes vs frontier']:+,} bytes and {100 * r['error vs frontier']:+.2f} points of error: "
                     f"{verdict}; {r['training s']:,.0f} s of training.")
    return "\n".join(lines)


def training_methods_summary(arch: str) -> str:
    """``training_methods_sentence`` of the cached result, or what to run when there is none (notebook 07)."""
    result = stored_training_methods(arch)
    if result is None:
        return (f"{TITLES.get(arch, arch)}: skipped, not measured with this baseline yet (it trains for minutes); "
                "`python benchmarks/training_methods.py` measures it and caches the result that this cell shows.")
    return training_methods_sentence(result)
