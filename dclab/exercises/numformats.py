"""Exercises of notebook 01 (hardware and number formats): fp16 bits, fp16 values, int8 with a scale."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from dclab import numformats
from dclab.exercises._core import (
    Case,
    CheckResult,
    Exercise,
    Mismatch,
    as_tensor,
    register,
    show,
)
from dclab.numformats import FP16

NOTEBOOK = "01_hardware_and_number_formats.ipynb"


# ---------------------------------------------------------------- fp16_bits(x) -> str


def _split(bits: str) -> str:
    return f"{bits[0]} {bits[1:6]} {bits[6:]}"


def _fields(bits: str) -> tuple[int, int, int]:
    return int(bits[0]), int(bits[1:6], 2), int(bits[6:], 2)


def _fp16_bits_reference(x: float) -> str:
    return format(int(FP16.encode(x)), "016b")


def _fp16_bits_cases() -> list[Case]:
    values = [
        (1.0, "1.0: exponent equal to the bias, mantissa 0"),
        (-2.0, "-2.0: a negative power of two"),
        (0.1, "0.1, which fp16 cannot hold exactly: it must be rounded"),
        (3.140625, "3.140625, exactly representable"),
        (1 + 3 * 2.0**-11, "1 + 3/2048, halfway between two fp16 numbers: ties round to the even mantissa (up)"),
        (1 + 2.0**-11, "1 + 1/2048, halfway between two fp16 numbers: ties round to the even mantissa (down)"),
        (2 - 2.0**-12, "2 - 1/4096: the mantissa rounds up to 1024 and carries into the exponent"),
        (65504.0, "65504, the largest fp16 number"),
        (65520.0, "65520, which rounds past 65504: infinity"),
        (1e6, "1e6, far beyond fp16's range"),
        (2.0**-14, "2**-14, the smallest normal fp16 number"),
        (1e-6, "1e-6, below 2**-14: a subnormal number"),
        (2.0**-24, "2**-24, the smallest subnormal number"),
        (2.0**-25, "2**-25, exactly half the smallest subnormal: ties to even give 0"),
        (0.0, "0.0"),
        (-0.0, "-0.0, which has its sign bit set"),
        (-math.inf, "minus infinity"),
        (math.nan, "NaN (any NaN pattern is accepted)"),
    ]
    special = {
        -math.inf: "infinity has no exponent to compute: test math.isinf(x) first and return exponent 11111, mantissa 0",
    }
    return [
        Case((x,), label, error_hint=special.get(x, "test math.isnan(x) first: NaN is exponent 11111, mantissa not 0"
                                                 if x != x else ""))
        for x, label in values
    ]


def _fp16_bits_compare(case: Case, got: Any) -> None:
    x = case.args[0]
    expected = _fp16_bits_reference(x)
    shown = f"'{expected}' = {_split(expected)} (sign, exponent, mantissa)"
    if math.isnan(x):
        shown = f"'{expected}' or any other NaN: exponent 11111, mantissa not 0"
    if not isinstance(got, str):
        hint = "return the bits as a string of 16 characters '0' and '1', such as format(code, '016b')"
        if isinstance(got, int) and 0 <= got < 2**16:
            hint += f" (your {got} written that way is '{got:016b}')"
        raise Mismatch(shown, f"{show(got)} ({type(got).__name__})", hint)
    bits = got.replace(" ", "").replace("_", "")
    if len(bits) != 16 or set(bits) - {"0", "1"}:
        hint = ("fp16 has exactly 16 bits, 1 sign, 5 exponent and 10 mantissa bits, each field padded with "
                "zeros on the left: format(e, '05b'), format(m, '010b')")
        if len(bits) == 17 and expected[6:] == "0" * 10 and x != 0:
            hint = ("the mantissa rounded up to 1024, which needs 11 bits: carry it into the exponent "
                    "(exponent + 1, mantissa 0)")
        raise Mismatch(shown, repr(got), hint)
    if math.isnan(x):
        if bits[1:6] == "11111" and int(bits[6:], 2) != 0:
            return
        raise Mismatch(shown, f"'{bits}' = {_split(bits)}", "NaN is stored as exponent 11111 with a mantissa that is not 0")
    if bits == expected:
        return
    raise Mismatch(shown, f"'{bits}' = {_split(bits)}", _fp16_bits_hint(x, expected, bits))


def _fp16_bits_hint(x: float, expected: str, bits: str) -> str:
    s0, e0, m0 = _fields(expected)
    s1, e1, m1 = _fields(bits)
    if s0 != s1:
        if x == 0:
            return "-0.0 has the sign bit 1, yet -0.0 < 0 is False: test the sign with math.copysign(1.0, x) < 0"
        return "the sign bit is 1 for a negative number and 0 for a positive one"
    if e0 == 31 and m0 == 0:
        return ("|x| rounds past 65504, the largest fp16 number, so it is stored as infinity: "
                "exponent 11111, mantissa 0")
    if e0 == 0 and x != 0:
        if m0 == 0:
            return ("|x| is at most half of 2**-24, the smallest subnormal: it rounds to 0 "
                    "(a tie goes to the even mantissa, 0)")
        return ("|x| is below 2**-14, the smallest normal number: it is subnormal, exponent field 00000 and "
                "mantissa round(|x| / 2**-24), without the hidden 1")
    if m0 == m1 and abs(e1 - e0) == 1:
        return "the exponent field is off by one: fp16 stores the exponent plus 15 (its bias is 15)"
    if e0 == e1 and abs(m1 - m0) == 1:
        return ("the last mantissa bit is off: round to the nearest fp16 number, and a tie to the even mantissa "
                "(Python's round() does both), rather than cutting the extra bits off")
    if e0 == e1 + 1 and m0 == 0:
        return ("the mantissa rounds up to 1024 here: carry into the exponent (exponent + 1, mantissa 0)")
    return ("compare field by field: with |x| = f * 2**e and 1 <= f < 2 (math.frexp gives e + 1), the exponent "
            "field is e + 15 and the mantissa round((f - 1) * 1024)")


FP16_BITS = register(Exercise(
    name="fp16_bits",
    notebook=NOTEBOOK,
    params=("x",),
    cases=_fp16_bits_cases,
    compare=_fp16_bits_compare,
    fallback=_fp16_bits_reference,
    fallback_name="dclab.numformats.FP16.encode",
))


def check_fp16_bits(fp16_bits: Callable[[float], str]) -> CheckResult:
    """Check ``fp16_bits(x) -> '0011110000000000'``: the 16 bits of x in fp16 (notebook 01, section 4)."""
    return FP16_BITS.check(fp16_bits)


# ---------------------------------------------------------------- fp16_value(bits) -> float


def _fp16_value_reference(bits: str) -> float:
    return float(FP16.decode(int(bits, 2)))


def _fp16_value_cases() -> list[Case]:
    patterns = [
        ("0011110000000000", "1.0"),
        ("1100000000000000", "-2.0: sign 1, exponent 16"),
        ("0011010101010101", "about 1/3: exponent 13, mantissa 0101010101"),
        ("0111101111111111", "65504, the largest fp16 number"),
        ("0000010000000000", "2**-14, the smallest normal number"),
        ("0000001111111111", "the largest subnormal number: exponent field 0"),
        ("0000000000000001", "2**-24, the smallest subnormal number"),
        ("1000000000000000", "-0.0"),
        ("0111110000000000", "infinity"),
        ("1111110000000000", "minus infinity"),
        ("0111111000000000", "NaN"),
        ("1111110000000001", "another NaN"),
    ]
    return [Case((bits,), label) for bits, label in patterns]


def _fp16_value_compare(case: Case, got: Any) -> None:
    bits = case.args[0]
    expected = _fp16_value_reference(bits)
    s, e, m = _fields(bits)
    if math.isnan(expected):
        shown = "nan (float('nan'))"
    elif math.isinf(expected):
        shown = f"{expected} (math.inf)"
    elif e == 0:
        shown = f"{expected!r} = {'-' if s else ''}{m}/1024 * 2**-14 (subnormal)"
    else:
        shown = f"{expected!r} = {'-' if s else ''}(1 + {m}/1024) * 2**({e} - 15)"
    try:
        value = float(got)
    except (TypeError, ValueError):
        raise Mismatch(shown, f"{show(got)} ({type(got).__name__})", "return the value as a float") from None
    if math.isnan(expected):
        if math.isnan(value):
            return
        raise Mismatch(shown, show(value), "exponent 11111 with a mantissa that is not 0 is NaN: return float('nan')")
    if value == expected and math.copysign(1, value) == math.copysign(1, expected):
        return
    raise Mismatch(shown, show(value), _fp16_value_hint(s, e, m, expected, value))


def _fp16_value_hint(s: int, e: int, m: int, expected: float, value: float) -> str:
    if value == -expected:
        return "the sign bit 1 means negative (also for -0.0): multiply by (-1)**sign"
    if math.isinf(expected):
        return "exponent 11111 with mantissa 0 is infinity: return math.inf (or -math.inf), not a number"
    if e == 0:
        return ("exponent field 00000 means subnormal: value = (-1)**sign * mantissa / 1024 * 2**-14, with no "
                "hidden 1 and the exponent fixed at -14 (not 0 - 15)")
    if value in (2 * expected, expected / 2):
        return "off by a factor of 2: the exponent is the field minus the bias, 15"
    if math.isclose(value, expected - (-1) ** s * 2.0 ** (e - 15), abs_tol=1e-12):
        return "normal numbers have a hidden leading 1: value = (-1)**sign * (1 + mantissa / 1024) * 2**(exponent - 15)"
    return "value = (-1)**sign * (1 + mantissa / 1024) * 2**(exponent - 15), with fields read as unsigned integers"


FP16_VALUE = register(Exercise(
    name="fp16_value",
    notebook=NOTEBOOK,
    params=("bits",),
    cases=_fp16_value_cases,
    compare=_fp16_value_compare,
    fallback=_fp16_value_reference,
    fallback_name="dclab.numformats.FP16.decode",
))


def check_fp16_value(fp16_value: Callable[[str], float]) -> CheckResult:
    """Check ``fp16_value('0011110000000000') -> 1.0``: the number an fp16 bit pattern holds (notebook 01, section 4)."""
    return FP16_VALUE.check(fp16_value)


# ---------------------------------------------------------------- int8_quantize(w) -> (codes, scale)


def _int8_reference(w: torch.Tensor) -> tuple[torch.Tensor, float]:
    fmt = numformats.int8_for(w)
    return torch.round(w.double() / fmt.scale).clamp(-127, 127).to(torch.int64), fmt.scale


def _int8_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)
    return [
        Case((torch.tensor([0.5, -1.27, 0.0, 1.0]),), "a small vector"),
        Case((torch.tensor([-2.54, 1.0, 0.3, 0.77]),), "the largest magnitude belongs to a negative weight"),
        Case((torch.randn(3, 4, generator=g) * 0.1,), "a random 3x4 weight matrix"),
        Case((torch.tensor([3.0]),), "a single weight"),
        Case((torch.zeros(2, 3),), "all weights 0", error_hint="when max|w| is 0 any positive scale works; 1.0 is usual"),
        Case((torch.randn(64, 32, generator=g) * 0.05,), "a random 64x32 weight matrix",
             shown="w = a random 64x32 weight matrix (normal, std 0.05)"),
    ]


def _int8_compare(case: Case, got: Any) -> None:
    w = case.args[0]
    codes0, scale0 = _int8_reference(w)
    peak = float(w.abs().max())
    shown = f"codes = {show(codes0)}, scale = max|w| / 127 = {show(scale0)}"
    if peak == 0:
        shown = "codes all 0, any scale > 0 (1.0 is usual)"
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise Mismatch(shown, show(got), "return two things, the integer codes and the scale: return codes, scale")
    codes, scale = got
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise Mismatch(shown, f"scale = {show(scale)}", "the scale is one number: max|w| / 127") from None
    codes = as_tensor(codes, shown, "the codes as a tensor shaped like w")
    came_back = f"codes = {show(codes)}, scale = {show(scale)}"
    if tuple(codes.shape) != tuple(w.shape):
        raise Mismatch(shown, came_back, f"the codes must be shaped like w, {tuple(w.shape)}, one per weight")
    if codes.is_floating_point() and not bool((codes == codes.round()).all()):
        raise Mismatch(shown, came_back, "codes are whole numbers: round(w / scale) (torch.round)")
    codes = codes.double()
    if peak == 0:
        if not (math.isfinite(scale) and scale > 0):
            raise Mismatch(shown, came_back, "a scale of 0 cannot be divided by; when max|w| is 0 use 1.0")
        if bool((codes != 0).any()):
            raise Mismatch(shown, came_back, "zero weights have code 0")
        return
    if not math.isclose(scale, scale0, rel_tol=1e-5):
        raise Mismatch(shown, came_back, _int8_scale_hint(w, scale, scale0, peak))
    ratio = w.double() / scale0
    if bool((codes.abs() > 127).any()):
        raise Mismatch(shown, came_back, "codes must lie in -127..127: with scale = max|w| / 127 they do")
    if bool(((codes - ratio).abs() > 0.5 + 1e-4).any()):
        # (with a tolerance: the student may divide in float32, where -127.0 can come out as -126.99999)
        toward_zero = (codes * ratio >= 0) & (codes.abs() <= ratio.abs() + 1e-4) & (ratio.abs() - codes.abs() < 1 + 1e-4)
        down = (codes <= ratio + 1e-4) & (ratio - codes < 1 + 1e-4)
        hint = "each code is the integer nearest to w / scale: torch.round(w / scale)"
        if bool(toward_zero.all()):
            hint = "round to the nearest integer (torch.round): .int(), int() and .long() cut towards zero"
        elif bool(down.all()):
            hint = "round to the nearest integer (torch.round), not down (floor)"
        raise Mismatch(shown, came_back, hint)


def _int8_scale_hint(w: torch.Tensor, scale: float, scale0: float, peak: float) -> str:
    if math.isclose(scale, peak / 128, rel_tol=1e-5):
        return "divide by 127, not 128: the codes are symmetric, -127..127, so +max|w| and -max|w| both fit"
    if math.isclose(scale, float(w.max()) / 127, rel_tol=1e-5):
        return "the scale must cover the largest magnitude max|w| (w.abs().max()), which here is a negative weight"
    if math.isclose(scale, 1 / scale0, rel_tol=1e-5):
        return "the scale is max|w| / 127 (value = code * scale), not its inverse"
    return "scale = max|w| / 127, so that the largest weight maps to code 127"


INT8_QUANTIZE = register(Exercise(
    name="int8_quantize",
    notebook=NOTEBOOK,
    params=("w",),
    cases=_int8_cases,
    compare=_int8_compare,
    fallback=_int8_reference,
    fallback_name="dclab.numformats.int8_for",
))


def check_int8_quantize(int8_quantize: Callable[[torch.Tensor], tuple]) -> CheckResult:
    """Check ``int8_quantize(w) -> (codes, scale)``: symmetric int8 with scale max|w| / 127 (notebook 01, section 4)."""
    return INT8_QUANTIZE.check(int8_quantize)
