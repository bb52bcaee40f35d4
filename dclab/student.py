"""Student copies of the lecture notebooks: solutions replaced by stubs, outputs cleared (course labs).

The lecture notebooks hold each exercise's reference solution between nbgrader's
markers::

    def magnitude_mask(w, sparsity):
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

``write_student_copies`` replaces every such region by a stub, indented like the
markers, that raises ``NotImplementedError`` with a message naming the exercise
(nbgrader's own stub is ``# YOUR CODE HERE`` + ``raise NotImplementedError()``);
markdown answers become ``YOUR ANSWER HERE``, and ``### BEGIN HIDDEN TESTS`` regions
are removed. Outputs, execution counts and widget state are cleared; narrative,
checks and nbgrader metadata are kept. Notebooks are read and written as plain
JSON (nbformat 4), so this needs neither nbformat nor nbgrader.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from dclab.errors import DclabError

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN_TESTS = "### BEGIN HIDDEN TESTS"
END_HIDDEN_TESTS = "### END HIDDEN TESTS"
TEXT_STUB = "YOUR ANSWER HERE"
LECTURE_NOTEBOOKS = ("01_", "02_", "03_", "04_", "05_")
"""Name prefixes of the lecture notebooks that always get a student copy."""

_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(")


@dataclass
class StudentCopy:
    """One student notebook written: where, how many exercises it holds, anything to warn about."""

    source: Path
    path: Path
    exercises: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"StudentCopy({self.path.name}: {len(self.exercises)} exercises {', '.join(self.exercises)})"


def default_source() -> Path:
    """The repository's ``notebooks/`` folder (beside the ``dclab`` package)."""
    return Path(__file__).resolve().parents[1] / "notebooks"


def _source_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def has_solutions(nb: dict) -> bool:
    """True if any cell of the notebook (a parsed .ipynb dict) holds a solution region."""
    return any(BEGIN_SOLUTION in _source_text(cell) for cell in nb.get("cells", []))


def _exercise_name(lines: list[str], marker_index: int, marker_indent: str, cell: dict) -> str:
    """The function the solution region belongs to, else the cell's nbgrader grade_id, else a plain word."""
    for line in reversed(lines[:marker_index]):
        match = _DEF.match(line)
        if match and len(match.group(1)) < len(marker_indent):
            return match.group(2)
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return str(grade_id) if grade_id else "this exercise"


def student_source(cell: dict, where: str) -> tuple[str, list[str], list[str]]:
    """A cell's student source: (new source, exercise names, warnings). ``where`` names the cell in messages."""
    lines = _source_text(cell).splitlines(keepends=True)
    code = cell.get("cell_type") == "code"
    out: list[str] = []
    names: list[str] = []
    warnings: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        for begin, end in ((BEGIN_SOLUTION, END_SOLUTION), (BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS)):
            if begin in line:
                stop = next((j for j in range(i + 1, len(lines)) if end in lines[j]), None)
                nested = next((j for j in range(i + 1, stop or len(lines)) if begin in lines[j]), None)
                if stop is None or nested is not None:
                    raise DclabError(f"{where}: '{begin}' on line {i + 1} has no matching '{end}'; "
                                     "close every region before the next one starts")
                indent = line[: len(line) - len(line.lstrip())]
                if begin == BEGIN_SOLUTION:
                    if code:
                        name = _exercise_name(lines, i, indent, cell)
                        names.append(name)
                        if not indent:
                            warnings.append(f"{where}: the solution of {name} is not inside a function, so the "
                                            "student copy stops at this cell when run top to bottom")
                        out.append(f"{indent}# YOUR CODE HERE\n")
                        out.append(f'{indent}raise NotImplementedError("Exercise {name}: write your code here '
                                   f'(in place of this line), then run the check cell below.")\n')
                    else:
                        out.append(f"{TEXT_STUB}\n")
                i = stop + 1
                break
            if end in line:
                raise DclabError(f"{where}: '{end}' on line {i + 1} comes before any '{begin}'")
        else:
            out.append(line)
            i += 1
    text = "".join(out)
    return (text[:-1] if text.endswith("\n") and not _source_text(cell).endswith("\n") else text), names, warnings


def student_notebook(nb: dict, name: str = "notebook") -> tuple[dict, list[str], list[str]]:
    """The student version of a parsed notebook: (notebook, exercise names, warnings)."""
    if nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        raise DclabError(f"{name} is not a Jupyter notebook in format 4 (nbformat {nb.get('nbformat')!r})")
    out = json.loads(json.dumps(nb))  # a deep copy
    metadata = out.setdefault("metadata", {})
    metadata.pop("widgets", None)
    metadata["dclab"] = {"student_copy": True, "source": name}
    names: list[str] = []
    warnings: list[str] = []
    for index, cell in enumerate(out["cells"], start=1):
        source, found, warned = student_source(cell, f"{name}, cell {index}")
        cell["source"] = source.splitlines(keepends=True)
        names += found
        warnings += warned
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
        cell.get("metadata", {}).pop("execution", None)  # nbclient's timings
    return out, names, warnings


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DclabError(f"no such notebook: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DclabError(f"{path} is not a readable notebook (invalid JSON: {exc})") from None


def _choose(source: Path) -> list[Path]:
    if not source.is_dir():
        raise DclabError(f"no notebooks folder at {source}; pass --source DIR or notebook files")
    chosen = [p for p in sorted(source.glob("*.ipynb"))
              if p.name.startswith(LECTURE_NOTEBOOKS) or has_solutions(_read(p))]
    if not chosen:
        raise DclabError(f"{source} holds no lecture notebook (01_ to 05_) and no notebook with solutions")
    return chosen


def write_student_copies(
    out_dir: str | Path,
    notebooks: Iterable[str | Path] | None = None,
    source: str | Path | None = None,
) -> list[StudentCopy]:
    """Write the student version of each notebook into ``out_dir`` (course labs, ``python -m dclab student-copies``).

    ``notebooks`` defaults to the lecture notebooks 01-05 of ``source`` (the repository's
    ``notebooks/``) plus any other notebook there with solution regions. Refuses to write
    into a folder holding the notebooks it copies, or over a notebook that holds solutions.
    """
    out = Path(out_dir)
    paths = [Path(p) for p in notebooks] if notebooks else _choose(Path(source) if source else default_source())
    if not paths:
        raise DclabError("no notebooks to copy")
    if out.exists() and not out.is_dir():
        raise DclabError(f"{out} exists and is not a folder; choose a folder for the student copies")
    for path in paths:
        if not path.is_file():
            raise DclabError(f"no such notebook: {path}")
        if path.suffix != ".ipynb":
            raise DclabError(f"{path} is not a notebook (.ipynb)")
        if out.exists() and path.resolve().parent == out.resolve():
            raise DclabError(f"{out} is the folder of the notebooks themselves: writing the student copies there "
                             "would overwrite the solutions; choose another folder, e.g. student/")
    names = [p.name for p in paths]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DclabError(f"two notebooks are named {duplicates[0]}; student copies keep the names, so copy them separately")
    converted = []
    for path in paths:  # convert everything before writing anything
        nb, exercises, warnings = student_notebook(_read(path), path.name)
        converted.append((path, nb, exercises, warnings))
    for path, *_ in converted:
        target = out / path.name
        if target.exists():
            existing = _read(target)
            if has_solutions(existing) and not existing.get("metadata", {}).get("dclab", {}).get("student_copy"):
                raise DclabError(f"{target} already exists and holds solutions; refusing to overwrite it. "
                                 "Choose another folder, or delete that file first")
    out.mkdir(parents=True, exist_ok=True)
    copies = []
    for path, nb, exercises, warnings in converted:
        target = out / path.name
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        copies.append(StudentCopy(path, target, exercises, warnings))
    return copies
