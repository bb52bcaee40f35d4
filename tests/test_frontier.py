"""Notebook 07 (issue 15): the frontier recipe, the chart's points from real files, the published records
beside them, and the byte budget of a file. Deterministic: files of an untrained LeNet-300-100 (no training)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from dclab import paper
from dclab.codec import container
from dclab.errors import DclabError
from dclab.lessons import coding as coding_lesson
from dclab.lessons import frontier
from dclab.pipeline import DEFAULT_SPARSITY, FRONTIER, CompressionConfig, compress_weights, report_from_dcz
from dclab.viz.frontier import fig_rate_accuracy


@pytest.fixture(scope="module")
def point(tmp_path_factory, untrained_lenet300):
    """A FilePoint of a real .dcz (frontier sparsities and bits, no training): bytes on disk, read back."""
    config = CompressionConfig.preset("lenet300", "frontier")
    _, data, _ = compress_weights(untrained_lenet300, config)
    path = tmp_path_factory.mktemp("dcz") / "lenet300-frontier.dcz"
    path.write_bytes(data)
    dcz = container.read_dcz(path)
    dcz.meta.setdefault("test_error_before", 0.9)
    run = coding_lesson.PipelineRun("lenet300", path, report_from_dcz(dcz), dcz, 0.9, False, False, "frontier")
    return frontier.file_point(run)


def test_the_frontier_recipe_is_a_preset_of_every_lenet():
    for arch, settings in FRONTIER.items():
        config = CompressionConfig.preset(arch, "frontier")
        assert all(getattr(config, k) == v for k, v in settings.items())
        default = CompressionConfig.preset(arch)
        # further than the default recipe: at least as much removed in every layer, never more bits
        assert all(config.sparsity[n] >= s for n, s in DEFAULT_SPARSITY[arch].items())
        assert config.fc_bits <= default.fc_bits and config.conv_bits <= default.conv_bits
    with pytest.raises(DclabError, match="tuned for lenet300, lenet5 only"):
        CompressionConfig.preset("firenet", "frontier")
    with pytest.raises(DclabError, match="no recipe 'best'"):
        CompressionConfig.preset("lenet300", "best")


def test_recipe_changes_lists_exactly_the_settings_that_differ():
    rows = frontier.recipe_changes("lenet5")
    default, other = coding_lesson.recipe_config("lenet5").to_dict(), coding_lesson.recipe_config("lenet5", "frontier").to_dict()
    assert {r["setting"] for r in rows} == {k for k in default if default[k] != other[k]}
    assert "sparsity" in {r["setting"] for r in rows}


def test_a_reduced_recipe_keeps_its_sparsities_and_bits_on_the_short_schedule():
    full, reduced = (coding_lesson.recipe_config("lenet300", "frontier", r) for r in (False, True))
    assert reduced.sparsity == full.sparsity and reduced.fc_bits == full.fc_bits
    assert all(getattr(reduced, k) == v for k, v in coding_lesson.REDUCED.items())
    assert coding_lesson.compressed_path("lenet300", full) != coding_lesson.compressed_path("lenet300", reduced)


def test_a_points_bytes_are_the_files_and_its_parts_add_up(point):
    assert point.bytes == point.path.stat().st_size
    assert point.ratio == pytest.approx(paper.ORIGINAL_BYTES["lenet300"] / point.bytes)
    parts = frontier.byte_budget(point)
    assert sum(r["bytes"] for r in parts) == point.bytes
    assert all(r["bytes"] >= 0 for r in parts) and sum(r["share"] for r in parts) == pytest.approx(1.0)
    assert next(r for r in parts if r["part"].startswith("biases"))["bytes"] == 4 * (300 + 100 + 10)


def test_goals_are_judged_on_bytes_and_error(point):
    rows = frontier.goal_rows([point])
    goal = frontier.GOALS["lenet300"]
    assert rows[0]["met"] == (point.bytes <= goal["bytes"] and point.error <= goal["error"])
    assert f"{point.bytes:,} bytes" in frontier.goal_sentence(rows)
    assert frontier.goal_rows([point], recipe="default") == []


def test_published_points_are_drawn_at_the_bytes_their_ratio_implies():
    rows = frontier.published_points()
    assert rows and {r["counts"] for r in rows} <= {"params", "bits", "file"}
    for r in rows:
        assert r["bytes"] == pytest.approx(paper.ORIGINAL_BYTES[r["arch"]] / r["ratio"])
    assert not any(r["counts"] == "file" for r in rows)  # papers.md: none wrote a file a reader can load


def test_the_chart_draws_every_file_and_record_on_a_log_axis(point):
    reduced = frontier.FilePoint(**{**{f: getattr(point, f) for f in point.__dataclass_fields__}, "recipe": "default",
                                    "reduced": True})
    published = frontier.published_points()
    fig = fig_rate_accuracy([point, reduced], published, frontier.TITLES, frontier.GOALS)
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    markers = [t for t in fig.data if t.mode and "markers" in t.mode]
    assert len(markers) == 2 + len(published)
    drawn = {(round(t.x[0]), round(t.y[0], 4)) for t in markers}
    assert (point.bytes, round(100 * point.error, 4)) in drawn
    assert all((round(r["bytes"]), round(100 * r["error"], 4)) in drawn for r in published)
    symbols = {t.name: t.marker.symbol for t in markers}
    assert any(name.endswith("(REDUCED run)") and symbol.endswith("-open") for name, symbol in symbols.items())


def test_recipe_changes_show_the_default_sparsities_not_none():
    row = next(r for r in frontier.recipe_changes("lenet300") if r["setting"] == "sparsity")
    assert "None" not in row["default"] and "ip1" in row["default"]


def test_the_explorer_hides_and_shows_each_kind_of_point(point):
    from dclab.widgets.frontier import frontier_explorer

    published = frontier.published_points()
    box = frontier_explorer([point], published, frontier.TITLES, frontier.GOALS)
    assert set(box.boxes) == {"files", "params", "bits", "goal"}  # no record counts a file
    assert all(box.visible().values())
    box.boxes["params"].value = False
    shown = box.visible()
    assert shown["params"] is False and shown["files"] and shown["bits"] and shown["goal"]
    hidden = [t for t in box.figure.data if t.visible is False]
    assert len(hidden) == sum(r["counts"] == "params" for r in published)
    box.boxes["params"].value = True
    assert all(box.visible().values())


def one_rung_ladder(monkeypatch, untrained_lenet300) -> torch.nn.Module:
    """A deterministic stand-in for the cached ladder: an untrained LeNet-300-100 pruned by magnitude at the papers'
    rates as its one rung (``retrained_ladder`` patched to return it); the pruned network."""
    import copy

    from dclab.algorithms import prune
    from dclab.pipeline import ladder as ladder_module

    net = copy.deepcopy(untrained_lenet300)
    masks = prune.layer_masks(prune.prunable_weights(net), sparsity=paper.SPARSITY["lenet300"])
    with torch.no_grad():
        for name, weight in prune.prunable_weights(net).items():
            weight.mul_(masks[name])
    rung = ladder_module.Rung(1, 0.92, dict(paper.SPARSITY["lenet300"]), copy.deepcopy(net.state_dict()), None, 0.0)
    base = ladder_module.Rung(0, 0.0, {n: 0.0 for n in rung.sparsities}, untrained_lenet300.state_dict(), None, 0.0)
    monkeypatch.setattr(ladder_module, "retrained_ladder",
                        lambda arch, progress=True: ladder_module.Ladder(arch, [base, rung]))
    return net


def test_kmeans_comparison_shares_the_rungs_survivors_both_ways(monkeypatch, untrained_lenet300, synthetic_digits):
    """Notebook 07's optimal k-means section, on a deterministic one-rung ladder (an untrained LeNet-300-100 pruned
    by magnitude): per layer the optimal squared error is never above Lloyd's, both keep the pruned zeros."""
    net = one_rung_ladder(monkeypatch, untrained_lenet300)

    result = frontier.kmeans_comparison("lenet300", synthetic_digits, fc_bits=3)
    assert [r["layer"] for r in result["rows"]] == ["ip1", "ip2", "ip3"]
    for row in result["rows"]:
        weight = net.state_dict()[f"{row['layer']}.weight"]
        assert row["survivors"] == int((weight != 0).sum()) and row["bits"] == 3
        assert row["optimal SSE"] <= row["linear SSE"] * (1 + 1e-9)
    assert set(result["accuracy"]) == {"linear", "optimal"} and result["bits"] == {"conv": 8, "fc": 3}
    assert "fc 3 bits" in frontier.kmeans_sentence(result)


def test_a_file_with_float16_biases_is_smaller_by_their_halves_and_reads_back(point, synthetic_digits, tmp_path):
    row = frontier.with_float16_biases(point, synthetic_digits, tmp_path)
    n_bias = sum(layer.bias.numel() for layer in point.run.dcz.layers if layer.bias is not None)
    back = container.read_dcz(row["path"])
    assert all(layer.bias_bits == 16 for layer in back.layers if layer.bias is not None)
    assert row["float16 biases: bytes"] == row["path"].stat().st_size
    # half the bias bytes saved; the metadata grows by the setting and the measured error (a few dozen bytes)
    assert 0 < 2 * n_bias - row["saved"] < 80
    assert back.meta["config"]["bias_bits"] == 16 and back.meta["test_error_after"] == row["float16 biases: error"]
    budget = frontier.byte_budget(dataclasses.replace(point, path=row["path"], bytes=row["float16 biases: bytes"],
                                                      run=dataclasses.replace(point.run, dcz=back)))
    assert {"part": "biases (float16)", "bytes": 2 * n_bias} == {k: v for k, v in budget[-2].items() if k != "share"}


# ---------------------------------------------------------------- the noloss recipe (issue 15: the largest ratio at no loss)


def test_no_loss_is_at_most_a_tenth_of_a_point_above_the_baseline():
    assert coding_lesson.no_loss(0.0090, 0.0080) and coding_lesson.no_loss(0.0050, 0.0080)
    assert not coding_lesson.no_loss(0.0091, 0.0080)


def _at(point, **fields):
    return dataclasses.replace(point, **fields)


def test_the_no_loss_choice_is_the_largest_ratio_within_the_budget(point):
    base = 0.0080
    small_lossy = _at(point, bytes=5_000, error=0.0095, baseline_error=base)   # the largest ratio, but a loss
    within_big = _at(point, bytes=20_000, error=0.0089, baseline_error=base)
    within_small = _at(point, bytes=12_000, error=0.0090, baseline_error=base)  # exactly at the budget: kept
    within_better = _at(point, bytes=30_000, error=0.0070, baseline_error=base)
    candidates = [small_lossy, within_big, within_small, within_better]
    assert frontier.no_loss_choice(candidates) is within_small
    assert frontier.no_loss_choice([small_lossy]) is None and frontier.no_loss_choice([]) is None
    tie = _at(point, bytes=12_000, error=0.0085, baseline_error=base)  # same ratio, lower error
    assert frontier.no_loss_choice(candidates + [tie]) is tie
    # each against its own baseline: a file at the same error passes beside a worse baseline
    assert frontier.no_loss_choice([_at(small_lossy, baseline_error=0.0090)]).bytes == 5_000


def test_noloss_rows_judge_each_file_against_its_own_baseline(point):
    lossy = _at(point, recipe="noloss", error=point.baseline_error + 0.002)
    fine = _at(point, recipe="noloss", arch="lenet5", error=point.baseline_error + 0.0005, reduced=True)
    rows = frontier.noloss_rows([point, lossy, fine])
    assert [r["no loss"] for r in rows] == [False, True]  # the frontier point is not a noloss file
    assert rows[0]["budget"] == pytest.approx(point.baseline_error + 0.001)
    assert rows[1]["points over the baseline"] == pytest.approx(0.05)
    sentence = frontier.noloss_sentence(rows)
    assert f"{lossy.bytes:,} bytes" in sentence and ": a loss" in sentence and ": no loss" in sentence
    assert "reduced run" in sentence.splitlines()[1] and "full run" in sentence.splitlines()[0]


def test_the_noloss_recipe_is_a_preset_of_every_lenet_with_float16_biases():
    from dclab.pipeline import NOLOSS, RECIPES

    assert RECIPES["noloss"] is NOLOSS and set(NOLOSS) == set(frontier.ARCHES)
    for arch, settings in NOLOSS.items():
        config = CompressionConfig.preset(arch, "noloss")
        assert all(getattr(config, k) == v for k, v in settings.items())
        assert config.bias_bits == 16 and set(config.sparsity) == set(DEFAULT_SPARSITY[arch])
    assert "noloss" in frontier.RECIPES
    with pytest.raises(DclabError, match="tuned for lenet300, lenet5 only"):
        CompressionConfig.preset("firenet", "noloss")


@pytest.mark.parametrize("arch", frontier.ARCHES)
def test_a_noloss_file_reads_back_to_the_weights_it_was_written_from(arch, tmp_path):
    """The recipe's sparsities, bits and float16 biases through the one encoder (no training): the model read back
    from the file on disk has the compressed weights bit for bit, float16 biases and the recipe's sparsity."""
    from dclab import models
    from dclab.pipeline import load_model

    torch.manual_seed(0)
    net = models.build(arch)
    config = CompressionConfig.preset(arch, "noloss")
    compressed, data, _ = compress_weights(net, config)
    path = tmp_path / f"{arch}-noloss.dcz"
    path.write_bytes(data)
    back = load_model(path)
    assert container.read_dcz(path).meta["config"]["bias_bits"] == 16
    for key, value in compressed.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    for name, sparsity in config.sparsity.items():
        w = back.state_dict()[f"{name}.weight"]
        assert int((w == 0).sum()) >= round(sparsity * w.numel()) - 1


def test_the_cli_accepts_the_noloss_recipe():
    from dclab.cli import build_parser

    args = build_parser().parse_args(["compress", "lenet5", "--recipe", "noloss", "--out", "f.dcz"])
    assert args.recipe == "noloss" and args.out == "f.dcz"


def test_config_run_caches_a_run_where_the_cli_and_notebook_look(monkeypatch, tmp_path, untrained_lenet300,
                                                                  synthetic_digits):
    """``config_run`` (behind ``pipeline_run`` and benchmarks/noloss.py) compresses once into ``compressed_path`` and
    measures the model read back; a second call reads the file instead of compressing again."""
    from dclab import zoo
    from dclab.pipeline import compress_weights as no_training

    calls = []

    def fake_compress(model, config, arch=None, progress=True):
        calls.append(config)
        net, data, report = no_training(model, config)

        class Result:
            def save(self, path):
                return path.write_bytes(data)
        return Result()

    monkeypatch.setenv("DCLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(zoo, "pretrained", lambda arch, progress=True: untrained_lenet300)
    monkeypatch.setattr(zoo, "checkpoint_path", lambda arch: tmp_path / "baseline.pt")
    (tmp_path / "baseline.pt").write_bytes(b"a baseline")
    monkeypatch.setattr("dclab.pipeline.compress", fake_compress)
    monkeypatch.setattr("dclab.data.load_mnist", lambda split="test", **kw: synthetic_digits)
    config = CompressionConfig.preset("lenet300", "noloss", finetune_epochs=0)
    first = coding_lesson.config_run("lenet300", config, recipe="noloss", progress=False)
    again = coding_lesson.config_run("lenet300", config, recipe="noloss", progress=False)
    assert len(calls) == 1 and first.computed and not again.computed
    assert first.path == again.path == coding_lesson.compressed_path("lenet300", config)
    assert again.error_file == first.error_file and again.recipe == "noloss"


class _Captured(Exception):
    pass


def _config_the_cli_runs(monkeypatch, argv):
    """The CompressionConfig ``python -m dclab ARGV`` hands to ``compress`` (stopped there: nothing trains)."""
    from dclab import zoo
    from dclab.cli import main

    seen = {}

    def fake_compress(model, config, arch=None, progress=True):
        seen["config"] = config
        raise _Captured

    monkeypatch.setattr(zoo, "pretrained", lambda arch, progress=True: None)
    monkeypatch.setattr("dclab.pipeline.compress", fake_compress)
    with pytest.raises(_Captured):
        main(argv)
    return seen["config"]


@pytest.mark.parametrize("arch", frontier.ARCHES)
def test_the_noloss_benchmark_records_commands_that_run_its_candidates(arch, monkeypatch):
    """benchmarks/noloss.py's command for a candidate makes the CLI run exactly that candidate's settings (so the
    run lands in the same cache file), and ``--recipe noloss`` runs the recipe's."""
    import importlib.util
    import shlex
    from pathlib import Path

    from dclab.pipeline.ladder import rung_sparsities

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "noloss.py"
    spec = importlib.util.spec_from_file_location("noloss_benchmark", path)
    noloss = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noloss)
    overrides = {"sparsity": rung_sparsities(arch, 0.9), "conv_bits": 5, "fc_bits": 3, "bias_bits": 16,
                 "prune_steps": 5, "retrain_epochs": 3}
    argv = shlex.split(noloss.cli_command(arch, overrides))[3:]  # after "python -m dclab"
    config = _config_the_cli_runs(monkeypatch, argv)
    assert config.to_dict() == CompressionConfig.preset(arch, **overrides).to_dict()
    assert coding_lesson.compressed_path(arch, config) == coding_lesson.compressed_path(
        arch, CompressionConfig.preset(arch, **overrides))
    recipe = _config_the_cli_runs(monkeypatch, ["compress", arch, "--recipe", "noloss", "--out", "x.dcz"])
    assert recipe.to_dict() == CompressionConfig.preset(arch, "noloss").to_dict()


def test_the_gains_sentence_says_what_each_recipe_file_measured(point):
    default = dataclasses.replace(point, recipe="default", bytes=40_000, error=0.0120, seconds=30.0, reduced=False)
    smaller = dataclasses.replace(point, recipe="frontier", bytes=15_000, error=0.0130, seconds=90.0, reduced=False)
    larger = dataclasses.replace(point, recipe="noloss", bytes=45_000, error=0.0085, seconds=100.0, reduced=True)
    line = frontier.gains_sentence(frontier.gains([default, smaller, larger], point.arch))
    assert "frontier recipe's file is 15,000 bytes" in line and "default recipe's 40,000 bytes" in line
    assert "25,000 bytes smaller for +0.10% of error" in line and "trained in 90 s instead of 30 s" in line
    assert "REDUCED" not in line
    line = frontier.gains_sentence(frontier.gains([default, smaller, larger], point.arch, "noloss"), "noloss")
    assert "5,000 bytes larger for -0.35% of error" in line and line.endswith("(REDUCED runs: not the recipes' full results)")


def test_the_allocated_file_reads_back_within_its_budget(monkeypatch, untrained_lenet300, synthetic_digits, tmp_path):
    """Notebook 07's allocation section, on a deterministic one-rung ladder (an untrained LeNet-300-100 pruned by
    magnitude at the papers' rates): both files are on disk at the bytes reported, the allocated one no larger,
    and the model read back from each errs within the budget."""
    from dclab.codec.container import read_dcz
    from dclab.pipeline import load_model
    from dclab.train import test_error

    one_rung_ladder(monkeypatch, untrained_lenet300)

    result = frontier.allocated_file("lenet300", synthetic_digits, tmp_path, max_error=0.95, max_steps=3,
                                     cached=False)  # a stand-in ladder: nothing kept
    start, end = result["files"]["start"], result["files"]["allocated"]
    for f in (start, end):
        assert f["path"].stat().st_size == f["bytes"]
        assert f["error"] == test_error(load_model(read_dcz(f["path"])), synthetic_digits) <= 0.95
    assert end["bytes"] <= start["bytes"] and (end["bytes"] < start["bytes"]) == bool(result["moves"])
    sentence = frontier.allocation_sentence(result)
    assert f"{start['bytes']:,} bytes" in sentence and f"{end['bytes']:,} bytes" in sentence and "nothing trained" in sentence


# ---------------------------------------------------------------- past Huffman: ANS files and float16 codebooks (version 3)


def test_coded_files_are_real_version_3_files_read_back(point, synthetic_digits, tmp_path):
    rows = frontier.coded_files(point, synthetic_digits, tmp_path)
    assert [r["coding"] for r in rows] == list(frontier.CODINGS)
    base, ans_row, half, both = rows
    assert base["path"] == point.path and base["bytes"] == point.bytes and base["version"] == 1
    for r in rows:
        assert r["bytes"] == r["path"].stat().st_size and r["saved"] == point.bytes - r["bytes"]
    assert [r["version"] for r in rows[1:]] == [3, 3, 3] and ans_row["dcz"].ans and both["dcz"].ans
    # ANS stores the very weights of the Huffman file: the same error, bit for bit the same tensors
    for key, value in base["dcz"].state_dict().items():
        assert torch.equal(ans_row["dcz"].state_dict()[key], value)
    assert ans_row["error"] == base["error"]
    # float16 codebooks: 2 bytes less per centroid (the metadata grows by the setting and the error measured)
    n_centroids = sum(layer.centroids.numel() for layer in point.run.dcz.layers)
    assert 0 < 2 * n_centroids - half["saved"] < 80
    assert all(torch.equal(layer.centroids, layer.centroids.half().float()) for layer in half["dcz"].layers)
    assert half["dcz"].meta["test_error_after"] == half["error"] and both["error"] == half["error"]
    sentence = frontier.coded_files_sentence(rows)
    assert f"{ans_row['bytes']:,} bytes" in sentence and f"{base['error']:.2%}" in sentence


def test_stream_bytes_split_each_layer_into_side_data_and_payload(point, synthetic_digits, tmp_path):
    base, ans_row = frontier.coded_files(point, synthetic_digits, tmp_path)[:2]
    rows = frontier.stream_bytes(base["dcz"], ans_row["dcz"])
    assert [r["layer"] for r in rows] == [layer.name for layer in point.run.dcz.layers]
    for r, h, a in zip(rows, base["dcz"].layer_stats(), ans_row["dcz"].layer_stats()):
        assert r["Huffman tables"] + r["Huffman payload"] == sum(n for k, n in h.sections.items() if k[1:] in ("TAB", "DAT"))
        assert r["ANS tables"] + r["ANS payload"] == sum(n for k, n in a.sections.items() if k.endswith("ANS"))
        assert r["saved"] == h.stored_bytes - a.stored_bytes
    sentence = frontier.stream_bytes_sentence("LeNet-300-100", rows)
    framing = 12 * sum(1 + (layer.gap_bits > 0) for layer in point.run.dcz.layers)  # one section less per stream
    tables = sum(r["Huffman tables"] - r["ANS tables"] for r in rows)
    payload = sum(r["Huffman payload"] - r["ANS payload"] for r in rows)
    assert sum(r["saved"] for r in rows) == tables + payload + framing
    assert f"{tables:,} of side data" in sentence and f"{payload:,} of payload" in sentence
    assert f"{framing:,} of section framing" in sentence
    # the layers are the whole file but its header: the file's saving is the layers' and the header's
    header = ans_row["dcz"].header_bytes - base["dcz"].header_bytes
    assert sum(r["saved"] for r in rows) - header == ans_row["saved"]
