"""The experiments of notebook 04 (Huffman coding): the full pipeline's runs, cached, and the papers'
Tables 1 and 2 beside what dclab measures.

``pipeline_run`` compresses a baseline with the whole pipeline (training included) once per
settings and baseline fingerprint and keeps the ``.dcz``; in CI (``CI`` set) it uses the reduced
settings ``REDUCED``. Every size in the tables is read from that file.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dclab import paper
from dclab.cache import fingerprint
from dclab.errors import DclabError

if TYPE_CHECKING:  # the pipeline (and torch training) load only when a run is asked for
    import pandas

    from dclab.codec.container import DczModel
    from dclab.pipeline import CompressionConfig, CompressionReport



PAPER_TABLE1 = paper.TABLE1
"""Deep Compression's Table 1 for the LeNets (``dclab.paper``): errors as fractions, sizes in KB."""


PAPER_TABLE2 = paper.TABLE2
"""Deep Compression's Table 2 (LeNet-300-100 per layer), as printed (``dclab.paper``)."""


TABLE2_COLUMNS = ("weights", "density", "weight bits P+Q", "weight bits +H", "gap bits P+Q", "gap bits +H",
                  "size P+Q", "size +H")


REDUCED = {"prune_steps": 1, "retrain_epochs": 1, "retrain_lr": 0.02, "finetune_epochs": 1, "train_subset": 10_000,
           "max_shift": 0.0}
"""The reduced schedule notebook 04 runs, at the papers' sparsities, when no full result is cached.

A minute or two per LeNet on two cores, against many minutes for the default ``CompressionConfig``.
"""


TABLE1_FORMATS = {"error before": "{:.2%}", "error after": "{:.2%}", "KB before": "{:,.0f}", "KB after": "{:,.1f}",
                  "ratio": "{:.1f}x"}


TABLE2_FORMATS = {"weights": "{:,}", "density": "{:.1%}", "weight bits P+Q": "{:.2g}", "weight bits +H": "{:.2f}",
                  "gap bits P+Q": "{:.2g}", "gap bits +H": "{:.2f}", "size P+Q": "{:.2%}", "size +H": "{:.2%}"}
"""Display formats for ``frame(...).style.format(...)``."""


CACHE_VERSION = 1


@dataclass
class PipelineRun:
    """A pipeline result read back from its cached ``.dcz`` (notebook 04, Tables 1 and 2).

    ``error_file`` is measured on the model decoded from the file;
    ``reduced`` says the run used the short ``REDUCED`` schedule.
    """

    arch: str
    path: Path
    report: "CompressionReport"
    dcz: "DczModel" = field(repr=False)
    error_file: float
    reduced: bool
    computed: bool
    recipe: str = "default"

    @property
    def label(self) -> str:
        """How the result was obtained, for the notebook."""
        schedule = ", ".join(f"{k}={v:,}" for k, v in REDUCED.items())
        if self.reduced and self.recipe == "default":
            how = f"REDUCED pipeline (the papers' sparsities; {schedule}): not the full run, expect a higher error"
        elif self.reduced:
            how = (f"REDUCED {self.recipe} pipeline (its sparsities and bits; {schedule}): not the full run, "
                   f"expect a much higher error; `{self.command}` makes the full one")
        elif self.recipe == "default":
            how = f"full pipeline (the default recipe, `{self.command}`)"
        else:
            how = f"full {self.recipe} pipeline (`{self.command}`)"
        return how + ("; computed now and cached" if self.computed else "; read from the cache")

    @property
    def command(self) -> str:
        """The command that writes this run's full ``.dcz`` (and caches it where ``pipeline_run`` looks)."""
        return f"python -m dclab compress {self.arch} --recipe {self.recipe} --out {self.arch}-{self.recipe}.dcz"


def huffman_losses(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per stream of ``stream_table`` rows: what Huffman spends beyond the entropy and beyond ANS (notebook 04).

    Huffman's payload over the entropy (the whole-bit loss), its code-length table, and its bytes
    over the ``.dcz``'s ANS coder with both coders' tables included (what a file would save); worst
    stream first.
    """
    streams: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for r in rows:
        streams.setdefault((r["layer"], r["stream"]), {})[r["coder"]] = r
    out = []
    for (layer, stream), by in streams.items():
        h, a, e = by["Huffman"], by["ANS"], by["entropy bound"]
        bound = max(e["payload_bytes"], 1e-9)
        out.append({
            "layer": layer, "stream": stream, "symbols": h["n_symbols"],
            "entropy bits/symbol": e["bits_per_symbol"], "Huffman bits/symbol": h["bits_per_symbol"],
            "ANS bits/symbol": a["bits_per_symbol"],
            "Huffman over entropy": h["payload_bytes"] / bound - 1,
            "Huffman table bytes": h["side_bytes"],
            "Huffman total over entropy": h["total_bytes"] / bound - 1,
            "Huffman over ANS (bytes, tables in)": h["total_bytes"] - a["total_bytes"],
        })
    return sorted(out, key=lambda d: -d["Huffman over entropy"])


LOSS_FORMATS = {"symbols": "{:,}", "entropy bits/symbol": "{:.3f}", "Huffman bits/symbol": "{:.3f}",
                "ANS bits/symbol": "{:.3f}", "Huffman over entropy": "{:+.1%}", "Huffman table bytes": "{:,}",
                "Huffman total over entropy": "{:+.1%}", "Huffman over ANS (bytes, tables in)": "{:+,.0f}"}


def whole_bit_summary(losses: Sequence[Mapping[str, Any]]) -> str:
    """Notebook 04's reading of the ``huffman_losses`` table, in words computed from it."""
    over = [d["Huffman over entropy"] for d in losses]
    name = lambda d: f"{d['layer']} {d['stream']} ({d['symbols']:,} symbols)"  # noqa: E731
    gains = sorted(losses, key=lambda d: -d["Huffman over ANS (bytes, tables in)"])
    ans_wins = [d for d in gains if d["Huffman over ANS (bytes, tables in)"] > 0]
    text = (f"Huffman's payload is {min(over):+.1%} to {max(over):+.1%} over the entropy on these {len(losses)} "
            f"streams. With each coder's table included, ANS is smaller on {len(ans_wins)} of them")
    if ans_wins:
        best = ans_wins[0]
        text += f", by {best['Huffman over ANS (bytes, tables in)']:,.0f} bytes at most ({name(best)})"
    losers = [d for d in gains if d["Huffman over ANS (bytes, tables in)"] < 0]
    if losers:
        worst = losers[-1]
        text += (f"; it is larger on {len(losers)}, by {-worst['Huffman over ANS (bytes, tables in)']:,.0f} bytes "
                 f"at most ({name(worst)})")
    return text + "."


def recipe_config(arch: str, recipe: str = "default", reduced: bool = False) -> "CompressionConfig":
    """The settings of a ``pipeline_run``: a recipe's (``CompressionConfig.preset(arch, recipe)``, what
    ``python -m dclab compress --recipe`` and ``benchmarks/table1.py`` run). Reduced: the ``REDUCED``
    schedule, at the papers' sparsities for the default recipe (notebook 04), at the recipe's own
    sparsities and bits for another (notebook 07)."""
    from dclab.pipeline import PAPER_SPARSITY, CompressionConfig

    if recipe == "default" and reduced:
        return CompressionConfig(sparsity=PAPER_SPARSITY.get(arch), **REDUCED)
    return CompressionConfig.preset(arch, recipe, **(REDUCED if reduced else {}))


def compressed_path(arch: str, config: "CompressionConfig") -> Path:
    """Where the ``.dcz`` of ``compress(pretrained(arch), config)`` is cached: ``cache_dir()/compressed``."""
    from dclab import zoo
    from dclab.paths import cache_dir

    baseline = zoo.checkpoint_path(arch)
    key = json.dumps({"version": CACHE_VERSION, "arch": arch, "baseline": fingerprint(baseline), "config": config.to_dict()},
                     sort_keys=True, default=str)
    return cache_dir() / "compressed" / f"{arch}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.dcz"


def pipeline_run(arch: str, *, recipe: str = "default", reduced: bool | None = None,
                 progress: bool = True) -> PipelineRun:
    """The full pipeline's cached ``.dcz`` for ``arch``, else the reduced one, computed and cached (notebooks 04, 07).

    ``reduced=None`` takes the full run when cached, else the reduced one;
    ``True``/``False`` insist. Computing the full run takes many minutes. ``recipe``: see ``recipe_config``.
    """
    from dclab import zoo

    zoo.pretrained(arch, progress=progress)  # the cache key needs the trained baseline
    choices = [False, True] if reduced is None else [bool(reduced)]
    use = next((c for c in choices if compressed_path(arch, recipe_config(arch, recipe, c)).is_file()), choices[-1])
    return config_run(arch, recipe_config(arch, recipe, use), recipe=recipe, reduced=use, progress=progress)


def config_run(arch: str, config: "CompressionConfig", *, recipe: str = "default", reduced: bool = False,
               progress: bool = True) -> PipelineRun:
    """``compress(pretrained(arch), config)`` read back from its cached ``.dcz`` (``compressed_path``), computed and
    cached first when missing: ``pipeline_run``'s engine, and benchmarks/noloss.py's for settings no recipe names.
    ``recipe`` and ``reduced`` only label the run. The error is measured on the model read back from the file."""
    from dclab import zoo
    from dclab.codec import container
    from dclab.data import load_mnist
    from dclab.pipeline import compress, load_model, report_from_dcz
    from dclab.train import test_error

    path = compressed_path(arch, config)
    computed = not path.is_file()
    if computed:
        path.parent.mkdir(parents=True, exist_ok=True)
        compress(zoo.pretrained(arch, progress=progress), config, arch=arch, progress=progress).save(path)
    try:
        dcz = container.read_dcz(path)
    except DclabError:
        if computed:
            raise
        path.unlink(missing_ok=True)  # a damaged cache file is recomputed
        return config_run(arch, config, recipe=recipe, reduced=reduced, progress=progress)
    error = test_error(load_model(dcz), load_mnist("test"))
    return PipelineRun(arch, path, report_from_dcz(dcz), dcz, error, reduced, computed, recipe)


def table2_rows(report: "CompressionReport") -> list[dict[str, Any]]:
    """The paper's Table 2 beside ours: rows ``{layer, source, columns...}`` (notebook 04)."""
    ours = {row["layer"]: row for row in [layer.row() for layer in report.layers] + [report.totals()]}
    rows = []
    for layer, measured in ours.items():
        rows.append({"layer": layer, "source": "measured", **{c: measured[c] for c in TABLE2_COLUMNS}})
        if layer in PAPER_TABLE2:
            rows.append({"layer": layer, "source": "paper", **dict(zip(TABLE2_COLUMNS, PAPER_TABLE2[layer]))})
    return rows


def table1_rows(runs: Sequence[PipelineRun]) -> list[dict[str, Any]]:
    """The paper's Table 1 beside ours for each run (notebook 04): errors, sizes in KB, ratio."""
    from dclab.models import TITLES

    rows = []
    for run in runs:
        r = run.report
        rows.append({
            "network": TITLES.get(run.arch, run.arch), "source": "measured" + (" (reduced)" if run.reduced else ""),
            "error before": r.test_error_before, "error after": run.error_file,
            "KB before": r.dense_bytes / 1000, "KB after": r.file_bytes / 1000, "ratio": r.dense_bytes / r.file_bytes,
        })
        if run.arch in PAPER_TABLE1:
            e0, e1, kb0, kb1, ratio = PAPER_TABLE1[run.arch]
            rows.append({"network": TITLES.get(run.arch, run.arch), "source": "paper", "error before": e0,
                         "error after": e1, "KB before": kb0, "KB after": kb1, "ratio": ratio})
    return rows


def frame(rows: Sequence[Mapping[str, Any]], index: Sequence[str]) -> "pandas.DataFrame":
    """Rows as a pandas DataFrame indexed by ``index`` (for the notebook's tables)."""
    import pandas as pd

    return pd.DataFrame(list(rows)).set_index(list(index))


NO_LOSS_POINTS = 0.1
""""No loss": the compressed network's test accuracy within 0.1 point of its own baseline's."""


def no_loss(error: float, baseline_error: float) -> bool:
    """Whether a compressed network's test error is "no loss" against its own baseline's: at most
    ``NO_LOSS_POINTS`` points (of percent) above it (notebooks 04, 07; a float's rounding forgiven)."""
    return error <= baseline_error + NO_LOSS_POINTS / 100 + 1e-9


def ladder_tradeoff(arch: str, *, progress: bool = True) -> dict[str, Any]:
    """Every rung of ``arch``'s retrained ladder compressed at the papers' bits: ratio and accuracy (notebook 04).

    Table 1 interpreted: the ratio dclab reaches with no loss against its *own* baseline (the largest ratio
    within ``NO_LOSS_POINTS`` of it), beside the accuracy at the papers' rates. Each rung is shared with
    k-means (8 bits conv, 5 fc, no fine-tuning), Huffman-coded by the one engine (``compress_weights``), and
    its accuracy measured on all 10,000 test digits with the model decoded from the file. Cached by the
    ladder (its folder names the baseline's fingerprint and the ladder's recipe).
    """
    from dclab.lessons.store import cached_result, test_set
    from dclab.pipeline import CompressionConfig, compress_weights, load_model
    from dclab.pipeline.ladder import ladder_dir, retrained_ladder
    from dclab.train import evaluate

    ladder = retrained_ladder(arch, progress=progress)
    settings = {"arch": arch, "ladder": ladder_dir(arch).name, "bits": paper.BITS, "gap_bits": paper.GAP_BITS}

    def compute() -> dict[str, Any]:
        test = test_set()
        base = evaluate(ladder.rungs[0].model(arch), test)
        rows = []
        for rung in ladder.rungs:
            config = CompressionConfig(sparsity=rung.sparsities, conv_bits=paper.BITS["conv"], fc_bits=paper.BITS["fc"],
                                       conv_gap_bits=paper.GAP_BITS["conv"], fc_gap_bits=paper.GAP_BITS["fc"])
            _, dcz, report = compress_weights(rung.model(arch), config)
            rows.append({"rung": rung.index, "level": rung.level, "label": rung.describe(), "ratio": report.ratio,
                         "bytes": len(dcz), "accuracy": evaluate(load_model(dcz), test)})
        return {"arch": arch, "baseline": base, "rows": rows}

    result = cached_result("ladder_tradeoff", settings, compute)
    within = [r for r in result["rows"] if no_loss(1 - r["accuracy"], 1 - result["baseline"])]
    at_paper = min(result["rows"], key=lambda r: abs(r["level"] - max(paper.SPARSITY[arch].values())))
    return {**result, "no_loss": max(within, key=lambda r: r["ratio"]), "at_paper": at_paper}


def no_loss_sentence(tradeoff: Mapping[str, Any]) -> str:
    """The notebook's sentence about ``ladder_tradeoff``, built from its numbers."""
    from dclab.models import TITLES

    base, best, at = tradeoff["baseline"], tradeoff["no_loss"], tradeoff["at_paper"]
    name = TITLES.get(tradeoff["arch"], tradeoff["arch"])
    return (f"{name}: with no loss against its own baseline ({base:.2%}, within {NO_LOSS_POINTS} point) dclab's ladder "
            f"reaches {best['ratio']:.1f}x ({best['label']}); at the papers' rates it reaches {at['ratio']:.1f}x at "
            f"{at['accuracy']:.2%} ({100 * (at['accuracy'] - base):+.2f} points).")
