"""Student copies: solutions become stubs, outputs go, narrative and checks stay, and the copy still runs."""
from __future__ import annotations

import heapq
import json
import math

import nbformat
import numpy as np
import pytest
import torch
from conftest import NOTEBOOKS
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from dclab import exercises
from dclab.cli import main
from dclab.errors import DclabError
from dclab.student import (
    has_solutions,
    student_notebook,
    student_source,
    write_student_copies,
)

SOLUTION = {"nbgrader": {"grade": False, "grade_id": "magnitude_mask", "locked": False, "schema_version": 3,
                         "solution": True, "task": False}}
GRADED_CHECK = {"nbgrader": {"grade": True, "grade_id": "check_magnitude_mask", "locked": True, "points": 2,
                             "schema_version": 3, "solution": False, "task": False}}

SOLUTION_CELL = '''\
def magnitude_mask(w, sparsity):
    """Keep all but the round(sparsity * numel) smallest |w|."""
    n_pruned = round(sparsity * w.numel())
    ### BEGIN SOLUTION
    mask = torch.ones_like(w, dtype=torch.bool)
    if n_pruned > 0:
        mask.view(-1)[torch.topk(w.abs().flatten(), n_pruned, largest=False).indices] = False
    return mask
    ### END SOLUTION'''

STUDENT_CELL = '''\
def magnitude_mask(w, sparsity):
    """Keep all but the round(sparsity * numel) smallest |w|."""
    n_pruned = round(sparsity * w.numel())
    # YOUR CODE HERE
    raise NotImplementedError("Exercise magnitude_mask: write your code here (in place of this line), then run the check cell below.")'''


def _lab(folder, name="lab.ipynb"):
    """A small instructor notebook with one exercise, a check, a written answer, hidden tests and a later cell."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells = [
        new_markdown_cell("# A pruning lab\n\nNarrative that students keep."),
        new_code_cell("import torch\nfrom dclab import exercises"),
        new_markdown_cell("**Exercise 1.** Write `magnitude_mask(w, sparsity)`."),
        new_code_cell(SOLUTION_CELL, metadata=SOLUTION),
        new_code_cell("exercises.check_magnitude_mask(magnitude_mask)", metadata=GRADED_CHECK),
        new_markdown_cell("**Question.** Why prune by magnitude?\n\n### BEGIN SOLUTION\nSmall weights matter least.\n### END SOLUTION"),
        new_code_cell("x = 1\n### BEGIN HIDDEN TESTS\nassert magnitude_mask(torch.ones(4), 0.5).sum() == 2\n### END HIDDEN TESTS\nx + 1"),
        new_code_cell("mask_fn = exercises.use(magnitude_mask)\nmask = mask_fn(torch.arange(10.0) - 4.5, 0.3)\n"
                      "print(f'{int(mask.sum())} of 10 weights kept')"),
    ]
    nb.cells[4].outputs = [new_output("execute_result", {"text/plain": "✓ magnitude_mask is correct"}, execution_count=4)]
    nb.cells[4].execution_count = 4
    nb.cells[7].metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00"}
    path = folder / name
    nbformat.write(nb, path)
    return path


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _source(cell):
    return "".join(cell["source"])


# ---------------------------------------------------------------- the conversion


def test_solution_becomes_an_indented_stub(tmp_path):
    (copy,) = write_student_copies(tmp_path / "out", [_lab(tmp_path)])
    assert copy.exercises == ["magnitude_mask"] and copy.warnings == []
    cells = _cells(copy.path)
    assert _source(cells[3]) == STUDENT_CELL
    assert "topk" not in copy.path.read_text()


def test_outputs_cleared_narrative_checks_and_metadata_kept(tmp_path):
    (copy,) = write_student_copies(tmp_path / "out", [_lab(tmp_path)])
    nb = json.loads(copy.path.read_text())
    assert nbformat.validate(nbformat.reads(copy.path.read_text(), as_version=4)) is None
    assert "widgets" not in nb["metadata"]
    assert nb["metadata"]["dclab"] == {"student_copy": True, "source": "lab.ipynb"}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
        assert "execution" not in cell["metadata"]
    cells = nb["cells"]
    assert _source(cells[0]) == "# A pruning lab\n\nNarrative that students keep."
    assert _source(cells[4]) == "exercises.check_magnitude_mask(magnitude_mask)"
    assert cells[3]["metadata"] == SOLUTION and cells[4]["metadata"] == GRADED_CHECK  # nbgrader metadata stays
    assert [c["cell_type"] for c in cells] == [c["cell_type"] for c in _cells(tmp_path / "lab.ipynb")]


def test_written_answers_and_hidden_tests(tmp_path):
    (copy,) = write_student_copies(tmp_path / "out", [_lab(tmp_path)])
    cells = _cells(copy.path)
    assert _source(cells[5]) == "**Question.** Why prune by magnitude?\n\nYOUR ANSWER HERE"
    assert _source(cells[6]) == "x = 1\nx + 1"


def test_solution_name_comes_from_the_function_or_the_grade_id():
    nested = {"cell_type": "code", "metadata": {}, "source": (
        "class Pruner:\n    def apply(self):\n        if True:\n            ### BEGIN SOLUTION\n            pass\n"
        "            ### END SOLUTION\n        return 1\n")}
    source, names, warnings = student_source(nested, "cell")
    assert names == ["apply"] and not warnings
    assert source.splitlines()[3:5] == [
        "            # YOUR CODE HERE",
        '            raise NotImplementedError("Exercise apply: write your code here (in place of this line), '
        'then run the check cell below.")',
    ]
    assert source.endswith("        return 1\n")
    top = {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "fire"}}, "source": [
        "### BEGIN SOLUTION\n", "n = 3\n", "### END SOLUTION\n"]}
    source, names, warnings = student_source(top, "lab.ipynb, cell 9")
    assert names == ["fire"]
    assert warnings == ["lab.ipynb, cell 9: the solution of fire is not inside a function, so the student copy "
                        "stops at this cell when run top to bottom"]


@pytest.mark.parametrize("source, words", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "'### BEGIN SOLUTION' on line 2 has no matching '### END SOLUTION'"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "'### END SOLUTION' on line 3 comes before any '### BEGIN SOLUTION'"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "has no matching"),
    ("x = 1\n### BEGIN HIDDEN TESTS\nassert x\n", "'### BEGIN HIDDEN TESTS' on line 2 has no matching"),
])
def test_unbalanced_markers_are_refused_naming_the_cell(source, words):
    with pytest.raises(DclabError, match="lab.ipynb, cell 4") as err:
        student_notebook({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
            *[{"cell_type": "markdown", "metadata": {}, "source": "text"}] * 3,
            {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}]},
            "lab.ipynb")
    assert words in str(err.value)


def test_not_a_notebook(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(DclabError, match="not a readable notebook"):
        write_student_copies(tmp_path / "out", [bad])
    old = tmp_path / "old.ipynb"
    old.write_text(json.dumps({"nbformat": 3, "worksheets": []}))
    with pytest.raises(DclabError, match="not a Jupyter notebook in format 4"):
        write_student_copies(tmp_path / "out", [old])
    assert not (tmp_path / "out").exists()  # nothing written when any notebook fails


# ---------------------------------------------------------------- the command line


def test_cli_writes_the_copies(tmp_path, capsys):
    lab = _lab(tmp_path)
    assert main(["student-copies", str(tmp_path / "student"), str(lab)]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'student' / 'lab.ipynb'}: 1 exercise (magnitude_mask)" in out
    assert "wrote 1 student notebook (1 exercises in all)" in out
    # writing again over earlier student copies is fine
    assert main(["student-copies", str(tmp_path / "student"), str(lab)]) == 0


def test_cli_default_notebooks_from_a_source_folder(tmp_path, capsys):
    source = tmp_path / "notebooks"
    source.mkdir()
    _lab(source, "07_lab.ipynb")
    _lab(source, "02_pruning.ipynb")
    nbformat.write(new_notebook(cells=[new_markdown_cell("# start")]), source / "00_start_here.ipynb")
    nbformat.write(new_notebook(cells=[new_markdown_cell("# no exercises yet")]), source / "03_weight_sharing.ipynb")
    assert main(["student-copies", str(tmp_path / "out"), "--source", str(source)]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["02_pruning.ipynb", "03_weight_sharing.ipynb", "07_lab.ipynb"]
    assert "03_weight_sharing.ipynb: 0 exercises (no exercises)" in capsys.readouterr().out


def test_cli_refuses_the_notebooks_folder_itself(tmp_path, capsys):
    lab = _lab(tmp_path)
    assert main(["student-copies", str(tmp_path), str(lab)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "would overwrite the solutions; choose another folder" in err
    assert has_solutions(json.loads(lab.read_text()))  # untouched
    assert main(["student-copies", str(tmp_path), "--source", str(tmp_path)]) == 2


def test_cli_refuses_to_overwrite_a_notebook_with_solutions(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    _lab(out)  # an instructor notebook already sits there under the same name
    source = tmp_path / "src"
    source.mkdir()
    assert main(["student-copies", str(out), str(_lab(source))]) == 2
    assert "holds solutions; refusing to overwrite it" in capsys.readouterr().err
    assert has_solutions(json.loads((out / "lab.ipynb").read_text()))


def test_cli_clear_errors(tmp_path, capsys):
    assert main(["student-copies", str(tmp_path / "out"), str(tmp_path / "missing.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("x")
    assert main(["student-copies", str(tmp_path / "out"), str(tmp_path / "notes.txt")]) == 2
    assert "is not a notebook (.ipynb)" in capsys.readouterr().err
    assert main(["student-copies", str(tmp_path / "notes.txt"), str(_lab(tmp_path))]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert main(["student-copies", str(tmp_path / "out"), "--source", str(tmp_path / "nowhere")]) == 2
    assert "no notebooks folder at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["student-copies"])
    assert exit_.value.code == 2
    assert "OUT_DIR" in capsys.readouterr().err


# ---------------------------------------------------------------- running them


def test_instructor_solution_passes_its_check(tmp_path, monkeypatch):
    monkeypatch.setenv(exercises.GRADING_ENV, "1")  # a failing check would raise
    namespace = {}
    for cell in nbformat.read(_lab(tmp_path), as_version=4).cells:
        if cell.cell_type == "code":
            exec(cell.source, namespace)
    assert int(namespace["mask"].sum()) == 7


def test_student_copy_runs_top_to_bottom_with_the_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv(exercises.GRADING_ENV, raising=False)
    (copy,) = write_student_copies(tmp_path / "out", [_lab(tmp_path)])
    nb = nbformat.read(copy.path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = {i: c.outputs for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    assert not [o for outs in outputs.values() for o in outs if o.output_type == "error"]
    check = outputs[4][0]["data"]
    assert check["text/plain"].startswith("… magnitude_mask is not written yet")
    assert "dclab-check-not-done" in check["text/html"]
    later = "".join(o.get("text", "") for o in outputs[7])
    assert later == ("Your magnitude_mask is not written yet, so the cells below use dclab.algorithms.prune.magnitude_mask "
                     "instead.\n7 of 10 weights kept\n")


# ---------------------------------------------------------------- the lecture notebooks' own exercises

LECTURES = [p for p in sorted(NOTEBOOKS.glob("0[1-5]_*.ipynb")) if has_solutions(json.loads(p.read_text()))]


@pytest.mark.parametrize("path", LECTURES, ids=[p.name for p in LECTURES])
def test_lecture_exercises_are_complete_and_their_solutions_pass(path, monkeypatch):
    monkeypatch.setenv(exercises.GRADING_ENV, "1")
    cells = nbformat.read(path, as_version=4).cells
    _, names, warnings = student_notebook(json.loads(path.read_text()), path.name)
    assert names and not warnings
    for index, cell in enumerate(cells):
        if "### BEGIN SOLUTION" not in cell.source or cell.cell_type != "code":
            continue
        assert cell.metadata.get("nbgrader", {}).get("solution") is True, f"cell {index}: nbgrader needs solution metadata"
        namespace = {"math": math, "heapq": heapq, "np": np, "torch": torch, "exercises": exercises}
        exec(cell.source, namespace)  # solution cells are self-contained
        for name in [n for n in names if n in namespace]:
            assert name in exercises.REGISTRY, f"{name} has no check in dclab.exercises"
            assert any(f"check_{name}({name})" in c.source for c in cells[index + 1:]), f"no check cell for {name}"
            assert exercises.REGISTRY[name].run(namespace[name]).passed, exercises.REGISTRY[name].run(namespace[name])


@pytest.mark.notebook
@pytest.mark.parametrize("path", LECTURES, ids=[p.name for p in LECTURES])
def test_lecture_student_copy_runs_with_every_exercise_unfinished(path, tmp_path, monkeypatch):
    monkeypatch.delenv(exercises.GRADING_ENV, raising=False)
    (copy,) = write_student_copies(tmp_path, [path])
    nb = nbformat.read(copy.path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    texts = [o.get("data", {}).get("text/plain", "") + o.get("text", "") for c in nb.cells if c.cell_type == "code"
             for o in c.outputs]
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    for name in copy.exercises:
        assert any(t.startswith(f"… {name} is not written yet") for t in texts), f"no 'not written yet' for {name}"
