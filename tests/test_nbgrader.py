"""nbgrader end to end: the lecture notebooks as a course's source, autograded with DCLAB_GRADING=1.

The course is built the way README ("For instructors: course labs") says: ``source/labNN/`` holds
lecture NN, then ``nbgrader generate_assignment``, ``DCLAB_GRADING=1 nbgrader autograde`` and
``nbgrader generate_feedback``, each for every lab at once. Submissions: the reference solutions (the
source notebook itself) for every lab; for ``EVERY_SUBMISSION`` also the untouched release version
and the release version completed with the reference solutions but one typical mistake.

Autograding runs each submitted notebook top to bottom (15-40 s each on 2 busy cores with the
experiments cached; minutes for a lab's first run), so the two extra submissions are graded for two
labs, not five: the pruning lab, whose masks feed its later cells, and the coding lab, with three
exercises. The other labs' student copies run top to bottom in tests/test_student_copies.py, and
every check's typical wrong answers are in tests/test_exercises.py.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import NOTEBOOKS, notebook_solutions

from dclab import exercises

LABS = {f"lab{p.name[:2]}": p for p in sorted(NOTEBOOKS.glob("0[1-5]_*.ipynb"))}
EVERY_LAB = "lab*"  # nbgrader takes a glob for the assignment
CONFIG = """\
c = get_config()
c.CourseDirectory.course_id = "dclab"
c.Execute.timeout = 1800  # seconds per cell (nbgrader's default is 30): a first run computes the experiments
"""
# a typical mistake, as an edit of the exercise's reference solution: lab -> (exercise, text, replaced by)
MISTAKES = {
    "lab02": ("threshold_mask", "return w.abs() >=", "return w.abs() >"),
    "lab04": ("encode_gaps", "prev = [], [], -1", "prev = [], [], 0"),
}
EVERY_SUBMISSION = list(MISTAKES)
REFERENCE, UNTOUCHED, ONE_MISTAKE = "reference", "untouched", "one_mistake"
BIN = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from PATH; the tests run without an activated venv


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _without_markers(source: str) -> str:
    """A solution cell as a student who wrote the reference solution hands it in."""
    return "".join(line for line in source.splitlines(keepends=True)
                   if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def _check_cells(nb: dict) -> dict[str, str]:
    """``{grade_id: exercise}`` of the notebook's check cells (``exercises.check_NAME(NAME)``)."""
    found = {}
    for cell in nb["cells"]:
        if _nbgrader(cell).get("grade"):
            match = re.fullmatch(r"exercises\.check_(\w+)\((\w+)\)\s*", _source(cell))
            assert match and match[1] == match[2], f"grade cell {_nbgrader(cell)['grade_id']}: not a check cell"
            found[_nbgrader(cell)["grade_id"]] = match[1]
    return found


def _with_one_mistake(release: dict, source: dict, exercise: str, text: str, wrong: str) -> dict:
    """The release version with every solution cell completed from the source, one of them wrong."""
    solutions = {_nbgrader(c)["grade_id"]: _without_markers(_source(c)) for c in source["cells"]
                 if _nbgrader(c).get("solution")}
    nb = json.loads(json.dumps(release))
    for cell in nb["cells"]:
        grade_id = _nbgrader(cell).get("grade_id")
        if _nbgrader(cell).get("solution"):
            answer = solutions[grade_id]
            if grade_id == exercise:
                assert answer.count(text) == 1, f"the mistake for {exercise} no longer fits its solution: {text!r}"
                answer = answer.replace(text, wrong)
            cell["source"] = answer.splitlines(keepends=True)
    return nb


def _mistake_message(lab: str) -> str:
    """What the check says about the lab's typical mistake, computed here, outside nbgrader."""
    exercise, text, wrong = MISTAKES[lab]
    cell = next(c for c in json.loads(LABS[lab].read_text())["cells"] if _nbgrader(c).get("grade_id") == exercise)
    namespace: dict = {}
    exec(_without_markers(_source(cell)).replace(text, wrong), namespace)
    result = exercises.REGISTRY[exercise].run(namespace[exercise])
    assert not result.passed, f"the check of {exercise} accepts the mistake {wrong!r}"
    return result.message


def _feedback_text(path: Path) -> str:
    """The words of a feedback page: tags (also the traceback's colour spans) removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


@dataclass
class Graded:
    """One lab's submission after autograde and generate_feedback."""

    checks: dict[str, str]  # grade_id -> exercise, from the source notebook
    scores: dict[str, tuple[float, float]]  # grade_id -> (score, max_score), from the gradebook
    notebook: dict  # the autograded (executed) notebook
    feedback: str  # the words of the feedback page

    def outputs(self, grade_id: str) -> list[dict]:
        return next(c["outputs"] for c in self.notebook["cells"] if _nbgrader(c).get("grade_id") == grade_id)

    def errors(self) -> dict[str | None, dict]:
        """``{grade_id (None outside nbgrader cells): error output}`` of the executed notebook."""
        return {_nbgrader(c).get("grade_id"): o for c in self.notebook["cells"] if c["cell_type"] == "code"
                for o in c["outputs"] if o["output_type"] == "error"}


@dataclass
class Course:
    root: Path
    log: str  # autograde's output
    graded: dict[tuple[str, str], Graded]  # (lab, student) -> Graded


def _nbgrader_run(root: Path, *args: str, grading: bool = False) -> str:
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    env.pop(exercises.GRADING_ENV, None)
    if grading:
        env[exercises.GRADING_ENV] = "1"
    run = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env,
                         capture_output=True, text=True, timeout=3600)
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "| ERROR]" not in output, f"nbgrader {' '.join(args)} failed:\n{output[-5000:]}"
    return output


def _submit(root: Path, student: str, lab: str, nb: dict) -> None:
    folder = root / "submitted" / student / lab
    folder.mkdir(parents=True)
    (folder / LABS[lab].name).write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")


def _read(root: Path, submitted: list[tuple[str, str]]) -> dict[tuple[str, str], Graded]:
    from nbgrader.api import Gradebook

    graded = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", BIN + os.pathsep + os.environ.get("PATH", ""))
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            for lab, student in submitted:
                path = LABS[lab]
                checks = _check_cells(json.loads(path.read_text()))
                grades = {g: gb.find_grade(g, path.stem, lab, student) for g in checks}
                graded[lab, student] = Graded(
                    checks, {g: (grade.score, grade.max_score) for g, grade in grades.items()},
                    json.loads((root / "autograded" / student / lab / path.name).read_text()),
                    _feedback_text(root / "feedback" / student / lab / f"{path.stem}.html"))
    return graded


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Course:
    """A course folder built and graded as README says: every lab generated, submitted, autograded, fed back."""
    root = tmp_path_factory.mktemp("course")
    (root / "nbgrader_config.py").write_text(CONFIG)
    for lab, path in LABS.items():
        (root / "source" / lab).mkdir(parents=True)
        shutil.copy(path, root / "source" / lab / path.name)
    _nbgrader_run(root, "generate_assignment", EVERY_LAB)
    submitted = []
    for lab, path in LABS.items():
        source = json.loads((root / "source" / lab / path.name).read_text())
        release = json.loads((root / "release" / lab / path.name).read_text())
        submissions = {REFERENCE: source}
        if lab in EVERY_SUBMISSION:
            submissions[UNTOUCHED] = release
            submissions[ONE_MISTAKE] = _with_one_mistake(release, source, *MISTAKES[lab])
        for student, nb in submissions.items():
            _submit(root, student, lab, nb)
            submitted.append((lab, student))
    log = _nbgrader_run(root, "autograde", EVERY_LAB, grading=True)
    _nbgrader_run(root, "generate_feedback", EVERY_LAB)
    return Course(root, log, _read(root, submitted))


# ---------------------------------------------------------------- how a check shows itself while grading


@pytest.mark.parametrize("grading", ["", "1"])
def test_a_passed_check_shows_no_result_for_nbgrader_to_read_as_a_score(grading, monkeypatch, capsys):
    from IPython.core.formatters import DisplayFormatter

    monkeypatch.setenv(exercises.GRADING_ENV, grading)
    result = exercises.check_sharing_ratio(notebook_solutions()["sharing_ratio"])
    assert result.passed and result.assert_passed() is result
    data, _ = DisplayFormatter().format(result)  # what IPython would send as the cell's execute_result
    if grading:
        assert data == {} and capsys.readouterr().out == result.message + "\n"
    else:
        assert data["text/plain"] == result.message and "dclab-check-passed" in data["text/html"]
        assert capsys.readouterr().out == ""


def test_readme_shows_the_config_and_commands_these_tests_run():
    readme = (NOTEBOOKS.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## For instructors: course labs"):]
    for line in CONFIG.splitlines():
        assert line.split("  #")[0] in section, f"README's nbgrader_config.py lacks: {line}"
    for command in ("generate_assignment", f"{exercises.GRADING_ENV}=1 nbgrader autograde", "generate_feedback"):
        assert f'{command} "{EVERY_LAB}"' in section, f"README's nbgrader commands lack: {command}"


# ---------------------------------------------------------------- the course, autograded

def graded_course(test):
    """A test of the graded course: it executes notebooks, and the first one builds and grades the course."""
    return pytest.mark.notebook(pytest.mark.timeout(3600)(test))



@graded_course
def test_nbgrader_autograde_reads_no_check_output_as_a_score(course):
    assert {lab for lab, _ in course.graded} == set(LABS)
    assert "cannot be converted to a float" not in course.log
    assert "[AutogradeApp | WARNING]" not in course.log, course.log[-5000:]


@graded_course
@pytest.mark.parametrize("lab", list(LABS))
def test_nbgrader_reference_solutions_get_full_marks(course, lab):
    graded = course.graded[lab, REFERENCE]
    assert graded.checks and all(score == top > 0 for score, top in graded.scores.values()), graded.scores
    assert not graded.errors()
    for grade_id, exercise in graded.checks.items():
        outputs = graded.outputs(grade_id)  # printed, not the cell's result (which nbgrader reads as a score)
        assert {(o["output_type"], o.get("name")) for o in outputs} == {("stream", "stdout")}, outputs
        printed = "".join("".join(o["text"]) for o in outputs)  # a kernel may flush one print in pieces
        assert printed.startswith(f"✓ {exercise} is correct") and printed.count("✓") == 1, printed
        assert f"✓ {exercise} is correct" in graded.feedback


@graded_course
@pytest.mark.parametrize("lab", EVERY_SUBMISSION)
def test_nbgrader_untouched_release_scores_zero_and_runs_to_the_end(course, lab):
    graded = course.graded[lab, UNTOUCHED]
    assert all(score == 0 for score, _ in graded.scores.values()), graded.scores
    code = [c for c in graded.notebook["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] is not None for c in code), "autograde stopped before the last cell"
    errors = graded.errors()
    assert set(errors) == set(graded.checks), f"errors outside the check cells: {set(errors) - set(graded.checks)}"
    for grade_id, exercise in graded.checks.items():
        assert errors[grade_id]["ename"] == "ExerciseFailed"
        assert errors[grade_id]["evalue"].startswith(f"… {exercise} is not written yet"), errors[grade_id]["evalue"]
        assert f"… {exercise} is not written yet" in graded.feedback


@graded_course
@pytest.mark.parametrize("lab", EVERY_SUBMISSION)
def test_nbgrader_one_mistake_loses_that_exercise_only_and_the_feedback_says_why(course, lab):
    graded = course.graded[lab, ONE_MISTAKE]
    exercise, message = MISTAKES[lab][0], _mistake_message(lab)
    lost = {g for g, (score, top) in graded.scores.items() if score != top}
    assert lost == {g for g, e in graded.checks.items() if e == exercise}, graded.scores
    (grade_id,) = lost
    assert graded.scores[grade_id][0] == 0
    errors = graded.errors()
    assert set(errors) == {grade_id}
    assert (errors[grade_id]["ename"], errors[grade_id]["evalue"]) == ("ExerciseFailed", message)
    assert message in graded.feedback
