"""Notebook 04's measurements: one stream under several coders, all really encoded and decoded."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dclab.codec import container, entropy, huffman
from dclab.errors import DclabError
from dclab.lessons import coding as coding_lesson


def skewed(n: int, p: list[float], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice(len(p), size=n, p=np.asarray(p) / sum(p))


def by_coder(sizes: list[entropy.CoderSize]) -> dict[str, entropy.CoderSize]:
    return {s.coder: s for s in sizes}


def test_compare_coders_measures_every_coder_in_order():
    x = skewed(20_000, [0.5, 0.2, 0.1, 0.1, 0.05, 0.05])
    sizes = entropy.compare_coders(x, bits=3)
    assert [s.coder for s in sizes] == list(entropy.CODERS)
    s = by_coder(sizes)
    assert s["fixed-length"].payload_bytes == math.ceil(20_000 * 3 / 8)
    counts = np.bincount(x)
    assert s["Huffman"].payload_bytes == math.ceil(huffman.coded_bits(counts) / 8)
    assert s["Huffman"].side_bytes == 6  # one code length per symbol 0..5
    h = huffman.entropy_bits(counts)
    assert s["entropy bound"].payload_bytes == pytest.approx(20_000 * h / 8)
    assert not s["entropy bound"].exact and all(v.exact for k, v in s.items() if k != "entropy bound")
    # nothing gets below the bound (up to the ANS coder's final state word)
    bound = s["entropy bound"].payload_bytes
    for name in ("Huffman", "ANS", "zlib", "lzma", "fixed-length"):
        assert s[name].payload_bytes >= bound - 8, name
    # ANS has fractional code lengths: within 1% of the bound here; Huffman is not
    assert s["ANS"].payload_bytes <= 1.01 * bound + 8
    assert s["Huffman"].payload_bytes < s["fixed-length"].payload_bytes


def test_huffman_loses_most_when_one_symbol_dominates():
    x = skewed(50_000, [0.9, 0.05, 0.03, 0.02])
    s = by_coder(entropy.compare_coders(x, bits=2))
    h = huffman.entropy_bits(np.bincount(x))
    assert h < 0.65
    # every Huffman codeword has at least one bit: the stream costs >= 1 bit per symbol
    assert s["Huffman"].bits_per_symbol >= 1.0
    assert s["ANS"].bits_per_symbol < h + 0.01
    assert entropy.huffman_redundancy(x) > 0.4
    costs = entropy.symbol_costs(x)
    assert costs[0].symbol == 0 and costs[0].huffman_bits == 1 and costs[0].ideal_bits < 0.2
    # the redundancy is the probability-weighted excess of each symbol
    assert sum(c.probability * c.excess_bits for c in costs) == pytest.approx(entropy.huffman_redundancy(x))


def test_symbol_costs_are_the_canonical_code():
    x = skewed(5_000, [0.4, 0.3, 0.2, 0.1], seed=3)
    costs = entropy.symbol_costs(x)
    assert [c.count for c in costs] == sorted((c.count for c in costs), reverse=True)
    lengths = huffman.code_lengths(np.bincount(x))
    codes = huffman.canonical_codes(lengths)
    for c in costs:
        assert c.huffman_bits == lengths[c.symbol] == len(c.codeword)
        assert c.codeword == codes[c.symbol]
        assert c.ideal_bits == pytest.approx(-math.log2(c.count / x.size))
    words = [c.codeword for c in costs]
    assert not any(a != b and b.startswith(a) for a in words for b in words)  # prefix-free


def test_an_empty_and_a_constant_stream():
    empty = by_coder(entropy.compare_coders(np.zeros(0, dtype=np.int64), bits=5))
    coded = [s for s in empty.values() if s.coder not in ("zlib", "lzma")]  # these two write an end marker
    assert all(s.payload_bytes == 0 and s.bits_per_symbol == 0.0 for s in coded)
    const = by_coder(entropy.compare_coders(np.full(1000, 7), bits=3))
    assert const["entropy bound"].payload_bytes == 0
    assert const["Huffman"].payload_bytes == 125  # a prefix code spends at least one bit
    assert const["ANS"].payload_bytes <= 8  # about nothing: a constant carries no information


def test_zlib_and_lzma_take_two_bytes_per_symbol_past_255():
    x = np.arange(1000) % 300
    s = by_coder([entropy.zlib_size(x), entropy.lzma_size(x)])
    assert s["zlib"].payload_bytes > 0 and s["lzma"].payload_bytes > 0  # and they round-tripped


def test_layer_streams_are_what_the_container_codes():
    rng = np.random.default_rng(1)
    w = torch.from_numpy(rng.standard_normal((40, 50)).astype(np.float32))
    indices = torch.from_numpy(rng.integers(1, 32, size=(40, 50)))
    indices[w.abs() < 1.2] = 0  # about 77% pruned, some gaps longer than 2**3 need fillers
    layer = container.CompressedLayer("ip1", "fc", (40, 50), 5, 3, torch.linspace(-1, 1, 32), indices)
    streams = entropy.layer_streams(indices, gap_bits=3)
    assert streams["weights"].size == streams["gaps"].size
    assert (streams["weights"] == 0).sum() > 0 and streams["gaps"].max() <= 7
    stats = container.from_bytes(container.to_bytes("lenet300", [layer], huffman=True)).layer_stats()[0]
    for stream, tag in (("weights", "W"), ("gaps", "G")):
        h = entropy.huffman_size(streams[stream])
        assert stats.sections[f"{tag}DAT"] == h.payload_bytes + 1  # + the padding-count byte
        assert stats.sections[f"{tag}TAB"] == h.side_bytes
    fixed = container.from_bytes(container.to_bytes("lenet300", [layer], huffman=False)).layer_stats()[0]
    assert fixed.sections["WDAT"] == entropy.fixed_length_size(streams["weights"], 5).payload_bytes + 1
    assert fixed.sections["GDAT"] == entropy.fixed_length_size(streams["gaps"], 3).payload_bytes + 1


def test_stream_table_rows():
    streams = {"ip3": entropy.layer_streams(np.array([0, 3, 0, 0, 1, 2, 0, 3] * 50), 2)}
    rows = entropy.stream_table(streams, {"ip3": {"weights": 2, "gaps": 2}})
    assert len(rows) == 2 * len(entropy.CODERS)
    assert {(r["layer"], r["stream"]) for r in rows} == {("ip3", "weights"), ("ip3", "gaps")}
    assert all(r["total_bytes"] == r["payload_bytes"] + r["side_bytes"] for r in rows)


@pytest.mark.parametrize("bad", [np.array([0.5, 1.0]), np.array([-1, 2]), np.array([70_000])])
def test_bad_streams_raise_dclab_error(bad):
    with pytest.raises(DclabError):
        entropy.compare_coders(bad, bits=16)


def test_fixed_length_needs_enough_bits():
    with pytest.raises(DclabError, match="does not fit in 2 bits"):
        entropy.fixed_length_size(np.array([0, 5]), 2)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 15), min_size=1, max_size=400))
def test_huffman_is_never_worse_than_fixed_length_nor_better_than_entropy(symbols):
    x = np.array(symbols)
    s = by_coder([entropy.fixed_length_size(x, 4), entropy.huffman_size(x), entropy.entropy_size(x)])
    assert s["Huffman"].payload_bytes <= s["fixed-length"].payload_bytes
    assert s["Huffman"].payload_bytes >= math.floor(s["entropy bound"].payload_bytes)
    r = entropy.huffman_redundancy(x)
    assert 0 <= r < 1 if len(set(symbols)) > 1 else r == 1.0  # a constant still costs 1 bit


# ---------------------------------------------------------------- the papers' tables from cached pipeline runs


@pytest.fixture
def cached_runs(lenet300, monkeypatch, tmp_path):
    """Two .dcz files at the cache paths of the reduced and the full run (made without training)."""
    from dclab.pipeline import PAPER_SPARSITY, CompressionConfig, compress_weights

    monkeypatch.setattr("dclab.paths.cache_dir", lambda: tmp_path)
    files = {}
    for reduced, sparsity in ((True, PAPER_SPARSITY["lenet300"]), (False, 0.95)):
        _, dcz, _ = compress_weights(lenet300, CompressionConfig(sparsity=sparsity))
        path = coding_lesson.compressed_path("lenet300", coding_lesson.recipe_config("lenet300", reduced=reduced))
        assert path.parent == tmp_path / "compressed"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(dcz)
        files[reduced] = (path, dcz)
    return files


def test_pipeline_run_prefers_the_full_result_and_measures_the_file(cached_runs, mnist_test):
    from dclab.pipeline import load_model
    from dclab.train import test_error

    run = coding_lesson.pipeline_run("lenet300", progress=False)
    path, dcz = cached_runs[False]
    assert (run.path, run.reduced, run.computed) == (path, False, False)
    assert run.report.file_bytes == len(dcz)
    assert run.error_file == test_error(load_model(dcz), mnist_test)
    assert "full pipeline" in run.label and "read from the cache" in run.label

    path.unlink()  # only the reduced result left: it is used, and labelled as reduced
    reduced = coding_lesson.pipeline_run("lenet300", progress=False)
    assert (reduced.path, reduced.reduced) == (cached_runs[True][0], True)
    assert "REDUCED" in reduced.label


def test_tables_put_the_paper_beside_the_measurement(cached_runs):
    run = coding_lesson.pipeline_run("lenet300", reduced=True, progress=False)
    rows = coding_lesson.table2_rows(run.report)
    assert [(r["layer"], r["source"]) for r in rows] == [
        (layer, source) for layer in ("ip1", "ip2", "ip3", "total") for source in ("measured", "paper")
    ]
    ip1 = rows[0]
    assert ip1["density"] == pytest.approx(0.08, abs=0.001)  # the papers' sparsity, 92% pruned
    assert ip1["weight bits P+Q"] == 5 and ip1["weight bits +H"] < 5
    assert rows[1]["weight bits +H"] == 4.4 and rows[7]["size +H"] == 0.0249
    t1 = coding_lesson.table1_rows([run])
    assert [r["source"] for r in t1] == ["measured (reduced)", "paper"]
    assert t1[0]["KB after"] == run.report.file_bytes / 1000 and t1[0]["ratio"] == pytest.approx(
        run.report.dense_bytes / run.report.file_bytes)
    assert t1[1]["ratio"] == 40
    assert set(coding_lesson.TABLE2_FORMATS) == set(coding_lesson.TABLE2_COLUMNS)
    assert list(coding_lesson.frame(t1, ["network", "source"]).columns) == list(coding_lesson.TABLE1_FORMATS)


def test_huffman_losses_count_both_tables_and_the_summary_reads_them():
    """ANS wins where one symbol dominates a long stream (Huffman spends >= 1 bit on each symbol) and
    must lose on a tiny one (its 32-bit words and its table outweigh 8 Huffman bits and a 2-byte table)."""
    streams = {"fc": {"weights": skewed(50_000, [0.9, 0.05, 0.03, 0.02]), "gaps": np.array([0, 1] * 4)}}
    rows = entropy.stream_table(streams, {"fc": {"weights": 2, "gaps": 1}})
    losses = coding_lesson.huffman_losses(rows)
    by = {(d["layer"], d["stream"]): d for d in losses}
    long, tiny = by["fc", "weights"], by["fc", "gaps"]
    assert [d["Huffman over entropy"] for d in losses] == sorted((d["Huffman over entropy"] for d in losses), reverse=True)
    sizes = {(r["stream"], r["coder"]): r for r in rows}
    for d, stream in ((long, "weights"), (tiny, "gaps")):
        h, a = sizes[stream, "Huffman"], sizes[stream, "ANS"]
        assert d["Huffman over ANS (bytes, tables in)"] == h["payload_bytes"] + h["side_bytes"] - a["payload_bytes"] - a["side_bytes"]
    assert long["Huffman over ANS (bytes, tables in)"] > 50_000 * 0.3 / 8  # H < 0.65 bits, Huffman >= 1 bit
    assert tiny["Huffman over ANS (bytes, tables in)"] < 0
    summary = coding_lesson.whole_bit_summary(losses)
    assert "on these 2 streams" in summary
    assert f"ANS is smaller on 1 of them, by {long['Huffman over ANS (bytes, tables in)']:,} bytes at most (fc weights (50,000 symbols))" in summary
    assert f"larger on 1, by {-tiny['Huffman over ANS (bytes, tables in)']:,} bytes at most (fc gaps (8 symbols))" in summary


def test_ans_size_is_the_files_coder():
    """Notebook 04's ANS column is the bytes a version-3 .dcz stores for the stream: table, then words."""
    from dclab.codec import ans

    x = skewed(5_000, [0.6, 0.2, 0.1, 0.1], seed=2)
    size, stream = entropy.ans_size(x), ans.encode(x)
    assert (size.payload_bytes, size.side_bytes) == (len(stream.payload), len(stream.table))
    assert size.total_bytes == len(stream.to_bytes())
