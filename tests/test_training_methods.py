"""Notebook 07's training-methods section (dclab.lessons.frontier): it shows the benchmark's cached result, or says
what to run, and never trains. The verdicts are computed from the numbers given (made up here)."""
from __future__ import annotations

import pytest
import torch

from dclab.lessons import frontier, store


def _result(dsd_bytes: int, dsd_error: float) -> dict:
    def row(method, size, error, **extra):
        return {"method": method, "bytes": size, "ratio": 1_066_400 / size, "error": error, "training seconds": 10.0,
                "load": [1.0, 1.0], "command": "cmd", "file": f"lenet300-{method}.dcz", **extra}

    return {"arch": "lenet300", "baseline error": 0.008, "schedule": frontier.TRAINING_METHODS["lenet300"],
            "rows": [row("frontier", 12_000, 0.0140), row("dsd-frontier", dsd_bytes, dsd_error, dsd_seconds=5.0,
                                                          dense_error=0.0079),
                     row("ttq-fc", 9_000, 0.0300, layers=["ip1", "ip2", "ip3"])]}


def test_rows_compare_each_file_with_the_frontier_file():
    rows = frontier.training_methods_rows(_result(11_900, 0.0140))
    assert [r["moves the frontier"] for r in rows] == [False, True, False]  # smaller at equal error; above the goal
    assert rows[1]["bytes vs frontier"] == -100 and rows[2]["error vs frontier"] == pytest.approx(0.016)
    assert frontier.training_methods_rows(_result(12_000, 0.0140))[1]["moves the frontier"] is False  # the same file
    assert frontier.training_methods_rows(_result(12_100, 0.0120))[1]["moves the frontier"] is True  # lower error
    assert frontier.training_methods_rows(_result(12_100, 0.0150))[1]["moves the frontier"] is False  # dominated
    # 0.05 point lower (5 test digits) for more bytes: within one run's noise, so no better than the frontier file
    assert frontier.training_methods_rows(_result(12_100, 0.0135))[1]["moves the frontier"] is False
    text = frontier.training_methods_sentence(_result(11_900, 0.0140))
    assert "12,000 bytes" in text and "-100 bytes" in text and "moves the frontier" in text
    assert "+1.60 points of error: does not move the frontier (above the goal's 1.64% error)" in text


def test_a_file_dominated_by_another_method_does_not_move_the_frontier():
    result = _result(11_000, 0.0150)
    result["rows"].append({**result["rows"][1], "method": "tq2-fc", "bytes": 10_900, "error": 0.0155})  # within 0.1
    moves = {r["method"]: r["moves the frontier"] for r in frontier.training_methods_rows(result)}
    assert moves[frontier.TRAINING_METHOD_NAMES["dsd-frontier"]] is False
    assert moves[frontier.TRAINING_METHOD_NAMES["tq2-fc"]] is True


def test_cold_cache_says_what_to_run_and_trains_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DCLAB_CACHE", str(tmp_path))  # no baseline, no result
    assert frontier.stored_training_methods("lenet300") is None
    text = frontier.training_methods_summary("lenet5")
    assert text.startswith("LeNet-5: skipped") and "python benchmarks/training_methods.py" in text
    assert not (tmp_path / "models").exists()  # nothing was trained


def test_a_cached_result_is_shown(tmp_path, monkeypatch):
    from dclab import zoo
    from dclab.models import build

    monkeypatch.setenv("DCLAB_CACHE", str(tmp_path))
    path = zoo.checkpoint_path("lenet300")
    path.parent.mkdir(parents=True)
    torch.save(build("lenet300").state_dict(), path)  # a stand-in baseline: only its fingerprint keys the result
    assert frontier.stored_training_methods("lenet300") is None
    settings = frontier._training_methods_settings("lenet300")
    store.cached_result("training_methods", settings, lambda: _result(11_900, 0.0140))
    assert frontier.stored_training_methods("lenet300") == _result(11_900, 0.0140)
    assert "moves the frontier" in frontier.training_methods_summary("lenet300")


def test_stored_result_reads_only_what_cached_result_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "cache_dir", lambda: tmp_path)
    assert store.stored_result("demo", {"a": 1}) is None
    store.cached_result("demo", {"a": 1}, lambda: {"n": 1})
    assert store.stored_result("demo", {"a": 1}) == {"n": 1}
    assert store.stored_result("demo", {"a": 2}) is None
