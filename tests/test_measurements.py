"""Notebook 01's slow cells, cached (issue 13, part 3): measurements of the machine are kept with where and when they
were made and never reused on another machine; the number-format sweep read back equals a fresh one; the optional
sparse timing runs only when its button is pressed."""
from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from dclab import hardware as hw
from dclab import numformats as nf
from dclab.lessons import store
from dclab.train import evaluate


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """The store's cache in a temporary folder (the trained baselines still come from the real one)."""
    monkeypatch.setattr(store, "cache_dir", lambda: tmp_path)
    return tmp_path


def counting(result):
    calls = []

    def measure():
        calls.append(1)
        return {"value": result, "call": len(calls)}

    return measure, calls


def test_a_measurement_is_made_once_per_machine_and_says_when(tmp_cache, monkeypatch):
    measure, calls = counting(1.5)
    first = store.cached_measurement("demo", {"n": 1}, measure)
    assert first.this_session and "in this session" in first.label()
    assert first.machine == store.machine() and first.machine["host"] in first.label()
    again = store.cached_measurement("demo", {"n": 1}, measure)
    assert len(calls) == 1 and again.result == first.result and again.measured_at == first.measured_at

    monkeypatch.setattr(store, "SESSION", "a later process")  # the same machine, another session
    later = store.cached_measurement("demo", {"n": 1}, measure)
    assert len(calls) == 1 and not later.this_session
    assert "earlier session" in later.label() and first.measured_at[:10] in later.label()
    assert "load average" in later.label()

    assert store.cached_measurement("demo", {"n": 1}, measure, refresh=True).result["call"] == 2
    assert store.cached_measurement("demo", {"n": 2}, measure).result["call"] == 3  # other settings


def test_a_measurement_from_another_machine_is_not_used(tmp_cache, monkeypatch):
    measure, calls = counting(2.0)
    store.cached_measurement("demo", {}, measure)
    here = store.machine()
    monkeypatch.setattr(store, "machine", lambda: {**here, "host": "elsewhere", "cpus": 64})
    other = store.cached_measurement("demo", {}, measure)
    assert len(calls) == 2 and other.this_session and "elsewhere" in other.label()
    monkeypatch.setattr(store, "machine", lambda: here)
    # a record that claims another machine under this machine's name (a copied or edited cache) is not trusted
    path = next(p for p in (tmp_cache / "measurements").iterdir()
                if json.loads(p.read_text())["machine"]["host"] == here["host"])
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "machine": {**here, "processor": "something else"}}))
    assert store.stored_measurement("demo", {}) is None


def test_measured_roofline_is_the_stored_measurement(tmp_cache, monkeypatch):
    roof, measured = store.measured_roofline(seconds=0.05)
    assert isinstance(roof, hw.Roofline) and roof.peak_flops > 0 and roof.bandwidth > 0
    assert roof == hw.Roofline(**measured.result) and measured.this_session
    monkeypatch.setattr(store.hardware, "measure_roofline", lambda *a, **k: pytest.fail("measured again"))
    again, stored = store.measured_roofline(seconds=0.05)
    assert again == roof and stored.measured_at == measured.measured_at


def test_measure_roofline_refresh_measures_again():
    first = hw.measure_roofline(seconds=0.05)
    assert hw.measure_roofline(seconds=0.05) is first
    assert hw.measure_roofline(seconds=0.05, refresh=True) is not first


def test_sparse_timings_read_back_as_the_records_measured(tmp_cache):
    assert store.measured_sparse_timings((1,), seconds=0.0, stored_only=True) is None
    timings, measured = store.measured_sparse_timings((1,), seconds=0.0)
    assert [t.density for t in timings] == list(hw.DENSITIES) and all(t.batch_size == 1 for t in timings)
    stored, again = store.measured_sparse_timings((1,), seconds=0.0, stored_only=True)
    assert stored == timings and isinstance(stored[0].shape, tuple) and again.measured_at == measured.measured_at


def test_format_accuracy_read_back_equals_a_fresh_measurement(lenet300, mnist_test, tmp_cache, monkeypatch):
    formats = {"fp16": "fp16", "int2": "int2", "fixed Q3.4": nf.fixed_point(3, 4)}
    accuracy = store.format_accuracy({"LeNet-300-100": "lenet300"}, formats, progress=False)
    fresh = {label: evaluate(nf.cast_model(lenet300, fmt), mnist_test) for label, fmt in formats.items()}
    assert accuracy == {"LeNet-300-100": fresh}
    assert list(accuracy["LeNet-300-100"]) == list(formats)  # the labels, in order
    monkeypatch.setattr(store, "evaluate", lambda *a, **k: pytest.fail("recomputed a cached result"))
    assert store.format_accuracy({"LeNet-300-100": "lenet300"}, formats, progress=False) == accuracy


def test_sparse_timing_runs_only_when_its_button_is_pressed(tmp_cache, monkeypatch):
    from dclab.widgets.hardware import sparse_timing_panel

    real = hw.time_sparse_matvec
    monkeypatch.setattr(store.hardware, "time_sparse_matvec", lambda *a, **k: pytest.fail("timed on opening"))
    panel = sparse_timing_panel(seconds=0.0)
    assert panel.timings is None and panel.figure is None and "not timed" in panel.status.value

    monkeypatch.setattr(store.hardware, "time_sparse_matvec", real)
    panel.button.click()
    assert {t.batch_size for t in panel.timings} == set(store.SPARSE_BATCH_SIZES)
    assert isinstance(panel.figure, go.FigureWidget) and len(panel.figure.data) == 4 * len(store.SPARSE_BATCH_SIZES)
    assert panel.figure in panel.children and "in this session" in panel.summary.value
    assert "batch 1 " in panel.summary.value and "CSR" in panel.summary.value and not panel.button.disabled

    # the next page shows that timing at once, saying it was made earlier, and does not time again
    monkeypatch.setattr(store.hardware, "time_sparse_matvec", lambda *a, **k: pytest.fail("timed on opening"))
    monkeypatch.setattr(store, "SESSION", "a later process")
    later = sparse_timing_panel(hw.Roofline(1e11, 1e10, "cpu", 2), seconds=0.0)
    assert later.timings == panel.timings and "earlier session" in later.summary.value
    assert "DRAM bandwidth" in later.summary.value  # the roofline's sentence
    assert later.button.description.startswith("Time it again")


def test_timing_again_redraws_the_shown_figure_in_place(tmp_cache):
    """Pressing "Time it again" updates the figure already on the page (a replaced and closed FigureWidget
    logged anywidget errors in the browser) and shows the new timing."""
    from dclab.viz.hardware import fig_sparse_timings
    from dclab.widgets.hardware import sparse_timing_panel

    panel = sparse_timing_panel(seconds=0.0)
    panel.button.click()
    shown = panel.figure
    first = [list(trace.y) for trace in shown.data]
    panel.button.click()
    assert panel.figure is shown and list(panel.children).count(shown) == 1
    expected = fig_sparse_timings(panel.timings)
    assert [list(trace.y) for trace in shown.data] == [list(trace.y) for trace in expected.data]
    assert [list(trace.y) for trace in shown.data] != first  # timed again: other numbers
