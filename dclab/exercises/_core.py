"""The machinery of the course-lab checks: cases, plain-words feedback, the fallback.

A check runs the student's function on a list of ``Case``s (simple ones first, edge
cases after), compares each answer with dclab's own implementation, and stops at
the first case that goes wrong, saying what the input was, what was expected, what
came back and a hint. It never lets a traceback through: ``NotImplementedError``
means "not done yet", any other exception is summarised with the failing input and
the line of the student's function that raised it.
"""
from __future__ import annotations

import copy
import html
import math
import os
import sys
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

GRADING_ENV = "DCLAB_GRADING"
"""Set to 1 while autograding (e.g. ``DCLAB_GRADING=1 nbgrader autograde lab02``): a check
that does not pass then raises ``ExerciseFailed``, so nbgrader scores its cell 0, and one that
passes prints its confirmation instead of returning it as the cell's result (see ``GradedResult``)."""

PASSED, FAILED, NOT_DONE, ERROR = "passed", "failed", "not done", "error"


class ExerciseFailed(AssertionError):
    """Raised by ``CheckResult.assert_passed()`` (and by checks while grading) with the feedback as message."""


class Mismatch(Exception):
    """Raised by a comparer: the answer is wrong. ``expected`` and ``got`` are shown as text."""

    def __init__(self, expected: str, got: str, hint: str = "") -> None:
        super().__init__(hint)
        self.expected, self.got, self.hint = expected, got, hint


@dataclass
class Case:
    """One input to try: ``args`` for the student's function, ``label`` saying in words what it tests."""

    args: tuple
    label: str
    shown: str | None = None  # how the input is shown, when the values are too long to print
    error_hint: str = ""  # shown when the student's function raises on this case
    extra: dict = field(default_factory=dict)  # anything the comparer needs besides the args


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check, shown in a notebook as a coloured box (text in a terminal).

    ``status`` is ``"passed"``, ``"failed"``, ``"not done"`` or ``"error"``; ``bool(result)``
    is True when it passed. ``assert_passed()`` turns a failure into ``ExerciseFailed``
    (for an nbgrader test cell).
    """

    exercise: str
    status: str
    message: str
    case: str | None = None
    n_cases: int = 0

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message

    __str__ = __repr__

    def _repr_html_(self) -> str:
        colour, background = {
            PASSED: ("#2e7d32", "#edf7ee"),
            NOT_DONE: ("#8a6d00", "#fff8e1"),
        }.get(self.status, ("#c62828", "#fdecea"))
        title, _, rest = self.message.partition("\n")
        body = f"<div style='margin-top:4px'>{html.escape(rest)}</div>" if rest else ""
        return (
            f"<div class='dclab-check dclab-check-{self.status.replace(' ', '-')}' "
            f"style='border-left:5px solid {colour};background:{background};padding:6px 12px;"
            f"margin:4px 0;white-space:pre-wrap;font-family:var(--jp-code-font-family,monospace);"
            f"font-size:0.9em'><b style='color:{colour}'>{html.escape(title)}</b>{body}</div>"
        )

    def assert_passed(self) -> "CheckResult":
        """Raise ``ExerciseFailed`` with the feedback unless the check passed; else return self."""
        if not self.passed:
            raise ExerciseFailed(self.message)
        return self


class GradedResult(CheckResult):
    """A check that passed while grading: printed (stdout) rather than shown as the cell's result.

    nbgrader reads a test cell's result (its ``execute_result`` text) as a partial score and
    warns "Cell output is ✓ ... which cannot be converted to a float" on anything else; it
    ignores printed text and displays, so the confirmation still reaches the feedback.
    """

    def _ipython_display_(self) -> None:
        # One write, not print(): print writes the text and the newline separately, and a kernel
        # that flushes between them splits the confirmation into two outputs.
        sys.stdout.write(self.message + "\n")


@dataclass
class Exercise:
    """One exercise: the function students write, its cases, how answers are compared, the fallback."""

    name: str  # the student's function name, e.g. "magnitude_mask"
    notebook: str  # e.g. "02_pruning.ipynb"
    params: Sequence[str]  # parameter names, to show inputs as "w = ..., sparsity = 0.5"
    cases: Callable[[], list[Case]]
    compare: Callable[[Case, Any], None]  # raises Mismatch when the answer is wrong
    fallback: Callable  # the package's implementation, same signature as the student's
    fallback_name: str  # how the fallback is named to students, e.g. "dclab.algorithms.prune.magnitude_mask"

    def run(self, student_fn: Any) -> CheckResult:
        """Run every case; the first one that goes wrong decides the feedback."""
        name = self.name
        if not callable(student_fn):
            return CheckResult(
                name, FAILED,
                f"✗ check_{name} needs your function itself, not {_short(student_fn)}.\n"
                f"Pass the function without calling it: check_{name}({name}).",
            )
        cases = self.cases()
        for number, case in enumerate(cases, start=1):
            where = f"Case {number} of {len(cases)}: {case.label}.\n  input:     {self.show_input(case)}"
            given = copy.deepcopy(case.args)
            try:
                got = student_fn(*given)
            except NotImplementedError:
                return CheckResult(
                    name, NOT_DONE,
                    f"… {name} is not written yet: it still raises NotImplementedError.\n"
                    f"Write it in the cell above, in place of the `raise NotImplementedError(...)` line, "
                    f"run that cell, then run this check again.",
                    case.label, len(cases),
                )
            except Exception as exc:  # anything the student's code raises is feedback, not a crash
                hint = f"\nHint: {case.error_hint}" if case.error_hint else ""
                return CheckResult(
                    name, ERROR,
                    f"✗ {name} raised an error.\n{where}\n  error:     {_describe_exception(exc, student_fn)}{hint}",
                    case.label, len(cases),
                )
            changed = _changed_argument(case.args, given, self.params)
            if changed:
                return CheckResult(
                    name, FAILED,
                    f"✗ {name} changed its input.\n{where}\n"
                    f"Hint: your function modified its argument `{changed}` in place (an in-place operation "
                    f"such as abs_(), sort() or an assignment into it). Work on a copy, or use the "
                    f"out-of-place version (w.abs() instead of w.abs_()).",
                    case.label, len(cases),
                )
            try:
                self.compare(case, got)
            except Mismatch as bad:
                hint = f"\nHint: {bad.hint}" if bad.hint else ""
                return CheckResult(
                    name, FAILED,
                    f"✗ {name} is not right yet.\n{where}\n  expected:  {bad.expected}\n  came back: {bad.got}{hint}",
                    case.label, len(cases),
                )
        return CheckResult(
            name, PASSED,
            f"✓ {name} is correct: it passed all {len(cases)} cases, edge cases included.",
            None, len(cases),
        )

    def check(self, student_fn: Any) -> CheckResult:
        """``run``; while grading (``DCLAB_GRADING=1``) raise ``ExerciseFailed`` unless it passed, and
        return a passed result as a ``GradedResult``, which nbgrader does not read as a score."""
        result = self.run(student_fn)
        if os.environ.get(GRADING_ENV, "") in ("", "0"):
            return result
        if not result.passed:
            raise ExerciseFailed(result.message)
        return GradedResult(**asdict(result))

    def show_input(self, case: Case) -> str:
        if case.shown is not None:
            return case.shown
        return ", ".join(f"{p} = {show(a)}" for p, a in zip(self.params, case.args))


REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to ``REGISTRY`` (by its function name) and return it."""
    REGISTRY[exercise.name] = exercise
    return exercise


def use(student_fn: Callable, name: str | None = None, fallback: Callable | None = None) -> Callable:
    """The student's function if it passes its check, else dclab's own, saying which in one line.

    Later cells of a notebook call this, so that a student copy with an unfinished
    exercise still runs to the end (course labs; notebooks 01-05)::

        mask_fn = exercises.use(magnitude_mask)
    """
    key = name or getattr(student_fn, "__name__", None)
    if key not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"no exercise named {key!r}; pass name= one of: {known}")
    exercise = REGISTRY[key]
    result = exercise.run(student_fn)
    replacement = fallback or exercise.fallback
    replacement_name = getattr(fallback, "__qualname__", "the given fallback") if fallback else exercise.fallback_name
    if result.passed:
        print(f"Using your {key} (it passes its check).")
        return student_fn
    why = {
        NOT_DONE: "is not written yet",
        ERROR: "raises an error on one of its checks",
    }.get(result.status, "does not pass its check yet")
    print(f"Your {key} {why}, so the cells below use {replacement_name} instead.")
    return replacement


# ---------------------------------------------------------------- showing values


def show(x: Any, limit: int = 24) -> str:
    """A short readable form of a value: small tensors in full, large ones by shape."""
    if isinstance(x, torch.Tensor):
        if x.numel() <= limit:
            return f"tensor({_nested(x.tolist())})"
        return f"a {'x'.join(map(str, x.shape))} {str(x.dtype).replace('torch.', '')} tensor"
    if isinstance(x, np.ndarray):
        if x.size <= limit:
            return f"array({_nested(x.tolist())})"
        return f"a {'x'.join(map(str, x.shape))} {x.dtype} array"
    if isinstance(x, dict):
        if len(x) > limit:
            return f"a dict of {len(x)} entries"
        return "{" + ", ".join(f"{show(k)}: {show(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (list, tuple)):
        if len(x) > limit:
            return f"a {type(x).__name__} of {len(x)} items"
        inner = ", ".join(show(v) for v in x)
        return f"[{inner}]" if isinstance(x, list) else f"({inner}{',' if len(x) == 1 else ''})"
    if isinstance(x, float):
        return _float(x)
    return _short(x)


def _nested(values: Any) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    if isinstance(values, float):  # tensor entries: 4 significant digits are enough to read
        if not math.isfinite(values):
            return repr(values)
        text = f"{values:.4g}"
        return text if any(c in text for c in ".en") else text + ".0"  # 2.0, not 2: still a float
    return repr(values)


def _float(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        return repr(x)  # nan, inf, -inf
    if x == int(x) and abs(x) < 1e15:
        return f"{x:.1f}"  # keeps the sign of -0.0
    text = f"{x:.6g}"
    return text if float(text) == x else repr(x)  # repr: the shortest text that reads back exactly


def _short(x: Any, limit: int = 200) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_exception(exc: BaseException, student_fn: Callable) -> str:
    """``TypeError: ... (line 7 of your function: `code`)``, pointing into the student's own code."""
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    text = text if len(text) <= 300 else text[:297] + "..."
    code = getattr(student_fn, "__code__", None)
    if code is not None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == code.co_filename]
        if frames:
            frame = frames[-1]
            line = f": `{frame.line.strip()}`" if frame.line else ""
            text += f" (line {frame.lineno - code.co_firstlineno + 1} of {student_fn.__name__}{line})"
    return text


def _changed_argument(original: tuple, given: tuple, params: Sequence[str]) -> str | None:
    """The name of the first argument the student's function modified in place, if any."""
    for index, (before, after) in enumerate(zip(original, given)):
        if not _same(before, after):
            return params[index] if index < len(params) else f"argument {index + 1}"
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and bool(
            ((a == b) | (a.isnan() & b.isnan()) if a.is_floating_point() else (a == b)).all()
        )
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# ---------------------------------------------------------------- converting answers


def as_tensor(got: Any, what: str, example: str) -> torch.Tensor:
    """The answer as a torch tensor (numpy arrays and lists accepted), else a Mismatch explaining."""
    if isinstance(got, torch.Tensor):
        return got.detach().cpu()
    if isinstance(got, np.ndarray):
        return torch.from_numpy(got.copy())
    if isinstance(got, (list, tuple)):
        try:
            return torch.tensor(got)
        except (TypeError, ValueError):
            pass
    raise Mismatch(what, f"{_short(got)} ({type(got).__name__})", f"return {example}")


def as_int_list(got: Any, what: str) -> list[int]:
    """A sequence of whole numbers (list, tuple, tensor or array) as a list of ints, else a Mismatch."""
    if isinstance(got, (torch.Tensor, np.ndarray)):
        got = got.tolist()
    if not isinstance(got, (list, tuple)):
        raise Mismatch(what, f"{_short(got)} ({type(got).__name__})", "return a list of integers")
    out = []
    for v in got:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, float, np.floating)) or v != int(v):
            raise Mismatch(what, show(list(got)), f"every entry must be a whole number; {_short(v)} is not")
        out.append(int(v))
    return out
