"""Exercises of notebook 05 (SqueezeNet): a Fire module's parameters, Fire filters from the metaparameters."""
from __future__ import annotations

from typing import Any, Callable

from dclab.exercises._core import Case, CheckResult, Exercise, Mismatch, register, show
from dclab.models import squeezenet as sqn

NOTEBOOK = "05_squeezenet.ipynb"


# ---------------------------------------------------------------- fire_parameters(in_channels, s1x1, e1x1, e3x3)


def _fire_cases() -> list[Case]:
    return [
        Case((96, 16, 64, 64), "fire2 of SqueezeNet 1.0"),
        Case((1, 1, 1, 1), "the smallest Fire module: one filter of each kind"),
        Case((128, 32, 100, 28), "more 1x1 than 3x3 expand filters"),
        Case((512, 64, 256, 256), "fire9 of SqueezeNet 1.0"),
    ]


def _fire_compare(case: Case, got: Any) -> None:
    c, s, e1, e3 = case.args
    expected = sqn.fire_parameters(c, s, e1, e3)
    shown = (f"{expected:,} = squeeze {c}*{s} + {s} + expand1x1 {s}*{e1} + {e1} + expand3x3 9*{s}*{e3} + {e3}")
    if isinstance(got, bool) or not isinstance(got, (int, float)) or got != int(got):
        raise Mismatch(shown, f"{show(got)} ({type(got).__name__})", "return the count as a whole number")
    got = int(got)
    if got == expected:
        return
    biases = s + e1 + e3
    wrong = [
        (expected - biases, "count the biases too: every filter has one (s1x1 + e1x1 + e3x3 of them)"),
        (expected - 6 * s * e3, "a 3x3 filter has 3*3 = 9 weights per input channel, not 3"),
        (expected - 8 * s * e3, "a 3x3 filter has 9 weights per input channel, not 1"),
        (c * s + s + c * e1 + e1 + 9 * c * e3 + e3,
         "the expand filters read the squeeze layer's s1x1 channels, not the module's input channels"),
        (c * s + s + s * e3 + e3 + 9 * s * e1 + e1, "e1x1 filters are 1x1 and e3x3 filters are 3x3: you swapped them"),
    ]
    hint = next((h for v, h in wrong if got == v), "squeeze: in_channels*s1x1 + s1x1; expand: s1x1*e1x1 + e1x1 + 9*s1x1*e3x3 + e3x3")
    raise Mismatch(shown, f"{got:,}", hint)


FIRE_PARAMETERS = register(Exercise(
    name="fire_parameters",
    notebook=NOTEBOOK,
    params=("in_channels", "s1x1", "e1x1", "e3x3"),
    cases=_fire_cases,
    compare=_fire_compare,
    fallback=sqn.fire_parameters,
    fallback_name="dclab.models.squeezenet.fire_parameters",
))


def check_fire_parameters(fire_parameters: Callable[[int, int, int, int], int]) -> CheckResult:
    """Check ``fire_parameters(in_channels, s1x1, e1x1, e3x3)``, biases included (notebook 05, section 1)."""
    return FIRE_PARAMETERS.check(fire_parameters)


# ---------------------------------------------------------------- fire_filters(i, base_e, incr_e, freq, pct3x3, sr)


def _fire_filters_reference(i: int, base_e: int = 128, incr_e: int = 128, freq: int = 2,
                            pct3x3: float = 0.5, sr: float = 0.125) -> tuple[int, int, int]:
    spec = sqn.design_space(sr, pct3x3, base_e, incr_e, freq, n_fire=i + 1)[i]
    return spec.s1x1, spec.e1x1, spec.e3x3


def _filters_cases() -> list[Case]:
    default = (128, 128, 2, 0.5, 0.125)
    return [
        Case((0, *default), "fire2 of SqueezeNet 1.0 (i = 0)"),
        Case((1, *default), "fire3 (i = 1): still base_e, since floor(1 / 2) = 0"),
        Case((4, *default), "fire6 (i = 4)"),
        Case((7, *default), "fire9 (i = 7)"),
        Case((3, 128, 128, 2, 0.25, 0.125), "a quarter of the expand filters 3x3"),
        Case((5, 128, 128, 2, 0.5, 0.75), "squeeze ratio 0.75"),
        Case((3, 64, 32, 1, 0.75, 0.25), "a new increment every module (freq = 1)"),
    ]


def _filters_compare(case: Case, got: Any) -> None:
    i, base_e, incr_e, freq, pct3x3, sr = case.args
    expected = _fire_filters_reference(*case.args)
    e = base_e + incr_e * (i // freq)
    shown = f"{expected}: e_i = {base_e} + {incr_e}*floor({i}/{freq}) = {e}, s1x1 = {sr}*{e}, e3x3 = {pct3x3}*{e}"
    try:
        values = tuple(got)
    except TypeError:
        raise Mismatch(shown, show(got), "return three numbers: s1x1, e1x1, e3x3") from None
    if len(values) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise Mismatch(shown, show(got), "return three numbers: s1x1, e1x1, e3x3")
    if any(v != int(v) for v in values):
        raise Mismatch(shown, show(values), "filter counts are whole numbers: int(...) or round(...) them")
    values = tuple(int(v) for v in values)
    if values == expected:
        return
    s, e1, e3 = expected
    wrong_e = base_e + incr_e * i // freq
    if values == (s, e3, e1):
        hint = "pct3x3 is the fraction of the expand filters that are 3x3: e3x3 = pct3x3 * e_i, e1x1 = e_i - e3x3"
    elif wrong_e != e and sum(values[1:]) == wrong_e:
        hint = "e_i = base_e + incr_e * floor(i / freq): take the floor of i / freq (i // freq) before multiplying"
    elif sum(values[1:]) == base_e + incr_e * i and i // freq != i:
        hint = "the filters grow every freq modules, not every module: incr_e * (i // freq)"
    elif values[1:] == expected[1:]:
        hint = "the squeeze layer has s1x1 = SR * e_i filters, SR times the expand filters of the same module"
    else:
        hint = "e_i = base_e + incr_e * (i // freq); s1x1 = SR * e_i; e3x3 = pct3x3 * e_i; e1x1 = e_i - e3x3"
    raise Mismatch(shown, show(values), hint)


FIRE_FILTERS = register(Exercise(
    name="fire_filters",
    notebook=NOTEBOOK,
    params=("i", "base_e", "incr_e", "freq", "pct3x3", "sr"),
    cases=_filters_cases,
    compare=_filters_compare,
    fallback=_fire_filters_reference,
    fallback_name="dclab.models.squeezenet.design_space",
))


def check_fire_filters(fire_filters: Callable[..., tuple]) -> CheckResult:
    """Check ``fire_filters(i, base_e, incr_e, freq, pct3x3, sr) -> (s1x1, e1x1, e3x3)`` (notebook 05, section 3)."""
    return FIRE_FILTERS.check(fire_filters)
