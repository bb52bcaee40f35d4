"""Course labs: checks that give plain-words feedback on the functions students write (notebooks 01-05).

In each lecture notebook a few exercises sit at the heart of the lecture. The
reference solution is in the notebook between nbgrader's markers
(``### BEGIN SOLUTION`` / ``### END SOLUTION``); ``python -m dclab student-copies
OUT_DIR`` writes the versions to hand out. Each exercise has a check::

    from dclab import exercises
    exercises.check_magnitude_mask(magnitude_mask)

which runs the student's function on cases (edge cases included) against dclab's
own implementation and answers in words: the input that failed, what was expected,
what came back, a hint; a short confirmation when everything passes, "not written
yet" while the function still raises ``NotImplementedError``. Later cells call
``exercises.use(magnitude_mask)``, which returns the student's function once it
passes and dclab's otherwise, so one unfinished exercise does not stop a notebook.

While autograding, set ``DCLAB_GRADING=1``: a check that does not pass then raises
``ExerciseFailed`` (an ``AssertionError``), which nbgrader scores as 0, and one that passes
prints its confirmation instead of returning it (nbgrader would read the cell's result as a score).
"""
from dclab.exercises._core import (
    GRADING_ENV,
    REGISTRY,
    CheckResult,
    Exercise,
    ExerciseFailed,
    use,
)
from dclab.exercises.coding import (
    check_canonical_code,
    check_encode_gaps,
    check_huffman_code,
)
from dclab.exercises.numformats import (
    check_fp16_bits,
    check_fp16_value,
    check_int8_quantize,
)
from dclab.exercises.pruning import (
    check_global_magnitude_masks,
    check_magnitude_mask,
    check_masked_sgd_step,
    check_threshold_mask,
)
from dclab.exercises.sharing import (
    check_centroid_gradient,
    check_kmeans_step,
    check_sharing_ratio,
)
from dclab.exercises.squeezenet import check_fire_filters, check_fire_parameters

__all__ = [
    "GRADING_ENV",
    "REGISTRY",
    "CheckResult",
    "Exercise",
    "ExerciseFailed",
    "use",
    "check",
    "check_fp16_bits",
    "check_fp16_value",
    "check_int8_quantize",
    "check_magnitude_mask",
    "check_threshold_mask",
    "check_global_magnitude_masks",
    "check_masked_sgd_step",
    "check_kmeans_step",
    "check_centroid_gradient",
    "check_sharing_ratio",
    "check_huffman_code",
    "check_canonical_code",
    "check_encode_gaps",
    "check_fire_parameters",
    "check_fire_filters",
]


def check(student_fn, name: str | None = None) -> CheckResult:
    """Check any exercise by its function: ``check(magnitude_mask)`` (name= if the function was renamed)."""
    key = name or getattr(student_fn, "__name__", None)
    if key not in REGISTRY:
        raise KeyError(f"no exercise named {key!r}; exercises: {', '.join(REGISTRY)}")
    return REGISTRY[key].check(student_fn)
