"""Number formats, bit by bit: fp32, fp16, bf16, fp8 (E4M3, E5M2), int8 with a scale, fixed point.

Lecture: "Hardware 101 / Number representation"; notebook 01, section "Number formats".

We encode a real number into a format's bit pattern ourselves, with integer bit
manipulation and round-to-nearest-even, so that each step can be read; the tests
check every float format against torch's own dtypes (``torch.float16``,
``torch.bfloat16``, ``torch.float8_e4m3fn``, ``torch.float8_e5m2``).

Every format is an object with the same four methods:

- ``encode(x) -> codes``: the bit patterns, as non-negative int64 (the unsigned
  reading of the bits; two's complement for int8 and fixed point);
- ``decode(codes) -> values``: float64;
- ``cast(x) -> values``: ``decode(encode(x))``, the value the format actually stores;
- ``fields(code) -> [(part, bits), ...]``: the bit string split into sign,
  exponent and mantissa (or sign and integer/fraction), for display.

Overflow and NaN follow torch's conversions (checked in ``tests/test_numformats.py``):

- fp32, fp16, bf16, fp8 E5M2 are IEEE-like: a value that rounds past the largest
  finite number becomes +-inf; NaN stays NaN (sign kept).
- fp8 E4M3 ("fn" = finite, no infinities) spends the all-ones exponent on normal
  numbers, so its largest value is 448 and only ``S.1111.111`` is NaN. torch's
  conversion *saturates*: anything beyond 448, including +-inf, becomes +-448; NaN
  stays NaN.
- int8 and fixed point saturate at their extreme codes (as a quantized tensor's
  clamp does); NaN cannot be stored and raises ``DclabError``.

NaN bit patterns: we write sign + all-ones exponent + quiet bit (fp32 ``0x7FC00000``,
fp16 ``0x7E00``, bf16 ``0x7FC0``) and all-ones mantissa for fp8 (``0x7F``), as torch
does; torch's bf16 conversion happens to write ``0xFFFF`` for every NaN, so tests
compare NaN-ness, not NaN payloads.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence, Union

import torch
from torch import nn

from dclab.errors import DclabError

ArrayLike = Union[float, int, Sequence[float], torch.Tensor]

# float64 layout, the common starting point of every encoder
_F64_MAN = 52
_F64_BIAS = 1023


def _as_f64(x: ArrayLike) -> torch.Tensor:
    """Any number, list or tensor as a float64 tensor (a copy)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64).clone()
    return torch.as_tensor(x, dtype=torch.float64).clone()


def _round_shift(sig: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``sig >> shift`` rounded to nearest, ties to even (sig >= 0, shift >= 1)."""
    shift = shift.clamp(1, 62)  # sig < 2**53, so any shift >= 54 gives 0 anyway
    one = torch.ones_like(sig)
    kept = sig >> shift
    rest = sig & ((one << shift) - 1)
    half = one << (shift - 1)
    up = (rest > half) | ((rest == half) & ((kept & 1) == 1))
    return kept + up.to(torch.int64)


class FormatInfo(NamedTuple):
    """Range and precision of one format (notebook 01, the format table)."""

    name: str
    bits: int
    max: float  # largest finite value
    min_normal: float  # smallest positive normal value (int/fixed: the step)
    min_subnormal: float  # smallest positive value
    epsilon: float  # gap between 1.0 and the next value (int/fixed: the step)


class Representation(NamedTuple):
    """One value in one format: what the explorer widget shows (notebook 01)."""

    format: str
    value: float  # the number asked for
    code: int  # the bit pattern, unsigned
    bits: str  # the pattern as a string of 0s and 1s
    fields: list  # [(part, bits)] with part in sign/exponent/mantissa/integer/fraction
    stored: float  # the value the format actually holds
    error: float  # stored - value (nan when either is not finite)
    rel_error: float  # |error| / |value| (nan for 0, inf and nan)
    note: str  # "", "overflow -> inf", "saturated", "underflow -> 0", "nan"


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: 1 sign bit, ``exp_bits``, ``man_bits`` (notebook 01).

    ``finite=True`` is the fp8 "fn" convention (E4M3fn): no infinities, the
    all-ones exponent holds normal numbers and only an all-ones mantissa there is
    NaN; overflow saturates to the largest value, as torch converts.
    """

    name: str
    exp_bits: int
    man_bits: int
    finite: bool = False

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def _exp_all_ones(self) -> int:
        return (1 << self.exp_bits) - 1

    @property
    def max_code(self) -> int:
        """The bit pattern of the largest finite positive value."""
        if self.finite:  # S.1111.110 for E4M3fn
            return (self._exp_all_ones << self.man_bits) | ((1 << self.man_bits) - 2)
        return ((self._exp_all_ones - 1) << self.man_bits) | ((1 << self.man_bits) - 1)

    @property
    def inf_code(self) -> int | None:
        return None if self.finite else self._exp_all_ones << self.man_bits

    @property
    def nan_code(self) -> int:
        if self.finite or self.bits == 8:
            return (self._exp_all_ones << self.man_bits) | ((1 << self.man_bits) - 1)
        return (self._exp_all_ones << self.man_bits) | (1 << (self.man_bits - 1))

    def encode(self, x: ArrayLike) -> torch.Tensor:
        """Bit patterns of ``x`` (round to nearest, ties to even), as int64 (notebook 01)."""
        x = _as_f64(x)
        raw = x.view(torch.int64)
        sign = (raw >> 63) & 1
        e64 = (raw >> _F64_MAN) & 0x7FF
        m64 = raw & ((1 << _F64_MAN) - 1)
        is_nan = (e64 == 0x7FF) & (m64 != 0)
        is_inf = (e64 == 0x7FF) & (m64 == 0)

        # significand with its hidden bit, and the unbiased exponent of its leading bit
        normal64 = e64 > 0
        sig = torch.where(normal64, m64 | (1 << _F64_MAN), m64)
        exp = torch.where(normal64, e64 - _F64_BIAS, torch.full_like(e64, 1 - _F64_BIAS))

        # Keep man_bits after the leading bit; below the smallest normal exponent the
        # number becomes subnormal and loses one more bit per step down.
        emin = 1 - self.bias
        shift = (_F64_MAN - self.man_bits) + (emin - exp).clamp(min=0)
        rounded = _round_shift(sig, shift)  # includes the hidden bit when normal
        # Exponent field: the hidden bit, if present, adds 1 to it through the sum, and
        # a mantissa that rounds up to 2.0 carries into the exponent the same way.
        field = (exp - emin).clamp(min=0)
        code = (field << self.man_bits) + rounded
        code = torch.where(sig == 0, torch.zeros_like(code), code)

        over = code > self.max_code
        if self.finite:
            code = torch.where(over | is_inf, torch.full_like(code, self.max_code), code)
        else:
            code = torch.where(over | is_inf, torch.full_like(code, self.inf_code), code)
        code = torch.where(is_nan, torch.full_like(code, self.nan_code), code)
        return code | (sign << (self.bits - 1))

    def decode(self, codes: ArrayLike) -> torch.Tensor:
        """Values (float64) of bit patterns ``codes`` (notebook 01)."""
        codes = torch.as_tensor(codes, dtype=torch.int64)
        if ((codes < 0) | (codes >= (1 << self.bits))).any():
            raise DclabError(f"{self.name} codes are unsigned {self.bits}-bit integers; got one outside [0, {1 << self.bits}).")
        sign = (codes >> (self.bits - 1)) & 1
        field = (codes >> self.man_bits) & self._exp_all_ones
        man = codes & ((1 << self.man_bits) - 1)
        emin = 1 - self.bias
        frac = man.to(torch.float64) / (1 << self.man_bits)
        subnormal = torch.ldexp(frac, torch.full_like(field, emin))
        normal = torch.ldexp(1.0 + frac, field - self.bias)
        value = torch.where(field == 0, subnormal, normal)
        if self.finite:
            value = torch.where((codes & ~(1 << (self.bits - 1))) == self.nan_code, torch.nan, value)
        else:
            top = field == self._exp_all_ones
            value = torch.where(top & (man == 0), torch.inf, value)
            value = torch.where(top & (man != 0), torch.nan, value)
        return torch.where(sign == 1, -value, value)

    def cast(self, x: ArrayLike) -> torch.Tensor:
        """The values ``x`` becomes when stored in this format (float64; notebook 01)."""
        return self.decode(self.encode(x))

    def fields(self, code: int) -> list[tuple[str, str]]:
        """The bit string of ``code`` split into sign, exponent and mantissa (notebook 01)."""
        b = format(int(code), f"0{self.bits}b")
        return [("sign", b[0]), ("exponent", b[1 : 1 + self.exp_bits]), ("mantissa", b[1 + self.exp_bits :])]

    def info(self) -> FormatInfo:
        """Largest value, smallest normal and subnormal, and machine epsilon (notebook 01)."""
        emin = 1 - self.bias
        return FormatInfo(
            self.name,
            self.bits,
            float(self.decode(self.max_code)),
            math.ldexp(1.0, emin),
            math.ldexp(1.0, emin - self.man_bits),
            math.ldexp(1.0, -self.man_bits),
        )

    def describe(self) -> str:
        """One line on the layout and the overflow rule (notebook 01)."""
        rule = "overflow saturates to +-max, no inf" if self.finite else "overflow -> +-inf"
        return f"{self.name}: 1 sign, {self.exp_bits} exponent (bias {self.bias}), {self.man_bits} mantissa bits; {rule}"


@dataclass(frozen=True)
class IntFormat:
    """Signed integers of ``bits`` bits times a ``scale``: value = code * scale (notebook 01).

    Rounds to nearest, ties to even, and saturates to [-2**(bits-1), 2**(bits-1) - 1],
    like ``torch.fake_quantize_per_tensor_affine`` with zero point 0.
    """

    scale: float
    bits: int = 8

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "scale", float(self.scale))
        except (TypeError, ValueError):
            raise DclabError(f"int{self.bits} needs a number as scale; got {self.scale!r}.") from None
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise DclabError(f"int{self.bits} needs a finite scale > 0; got {self.scale!r}. Try int_for(w) to pick max|w| / 127.")
        if not 2 <= self.bits <= 32:
            raise DclabError(f"int bits must be between 2 and 32; got {self.bits}.")

    @property
    def name(self) -> str:
        return f"int{self.bits}"

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def encode(self, x: ArrayLike) -> torch.Tensor:
        """Two's complement codes of ``round(x / scale)``, saturated (notebook 01)."""
        x = _as_f64(x)
        if torch.isnan(x).any():
            raise DclabError(f"{self.name} cannot store NaN; remove NaNs before casting.")
        q = torch.round(x / self.scale).clamp(self.qmin, self.qmax).to(torch.int64)
        return q & ((1 << self.bits) - 1)

    def decode(self, codes: ArrayLike) -> torch.Tensor:
        """Values (float64) of two's complement ``codes`` (notebook 01)."""
        codes = torch.as_tensor(codes, dtype=torch.int64)
        q = torch.where(codes > self.qmax, codes - (1 << self.bits), codes)
        return q.to(torch.float64) * self.scale

    def cast(self, x: ArrayLike) -> torch.Tensor:
        """The values ``x`` becomes when stored in this format (notebook 01)."""
        return self.decode(self.encode(x))

    def fields(self, code: int) -> list[tuple[str, str]]:
        """The bit string of ``code``: sign bit, then the rest of the two's complement (notebook 01)."""
        b = format(int(code), f"0{self.bits}b")
        return [("sign", b[0]), ("integer", b[1:])]

    def info(self) -> FormatInfo:
        """Range and step of this integer grid (notebook 01)."""
        return FormatInfo(f"{self.name} (scale {self.scale:.3g})", self.bits, self.qmax * self.scale, self.scale, self.scale, self.scale)

    def describe(self) -> str:
        """One line on the layout and the overflow rule (notebook 01)."""
        return f"{self.name}: value = code x {self.scale:.4g}, codes {self.qmin}..{self.qmax}; overflow saturates"


@dataclass(frozen=True)
class FixedFormat:
    """Signed fixed point: 1 sign, ``int_bits`` integer and ``frac_bits`` fraction bits (notebook 01).

    Two's complement; value = code / 2**frac_bits; rounds to nearest, ties to even,
    and saturates.
    """

    int_bits: int
    frac_bits: int

    def __post_init__(self) -> None:
        for what, n in (("int_bits", self.int_bits), ("frac_bits", self.frac_bits)):
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise DclabError(f"fixed point {what} must be an integer >= 0; got {n!r}.")
        if not 1 <= self.int_bits + self.frac_bits <= 31:
            raise DclabError(
                f"fixed point needs 1..31 integer + fraction bits (plus the sign bit); got {self.int_bits} + {self.frac_bits}."
            )

    @property
    def bits(self) -> int:
        return 1 + self.int_bits + self.frac_bits

    @property
    def name(self) -> str:
        return f"fixed Q{self.int_bits}.{self.frac_bits}"

    @property
    def _as_int(self) -> IntFormat:
        return IntFormat(math.ldexp(1.0, -self.frac_bits), self.bits)

    def encode(self, x: ArrayLike) -> torch.Tensor:
        """Two's complement codes of ``round(x * 2**frac_bits)``, saturated (notebook 01)."""
        return self._as_int.encode(x)

    def decode(self, codes: ArrayLike) -> torch.Tensor:
        """Values (float64) of two's complement ``codes`` (notebook 01)."""
        return self._as_int.decode(codes)

    def cast(self, x: ArrayLike) -> torch.Tensor:
        """The values ``x`` becomes when stored in this format (notebook 01)."""
        return self.decode(self.encode(x))

    def fields(self, code: int) -> list[tuple[str, str]]:
        """The bit string of ``code``: sign, integer part, fraction part (notebook 01)."""
        b = format(int(code), f"0{self.bits}b")
        return [("sign", b[0]), ("integer", b[1 : 1 + self.int_bits]), ("fraction", b[1 + self.int_bits :])]

    def info(self) -> FormatInfo:
        """Range and step of this fixed-point grid (notebook 01)."""
        step = math.ldexp(1.0, -self.frac_bits)
        return FormatInfo(self.name, self.bits, self._as_int.qmax * step, step, step, step)

    def describe(self) -> str:
        """One line on the layout and the overflow rule (notebook 01)."""
        return f"{self.name}: 1 sign, {self.int_bits} integer, {self.frac_bits} fraction bits; overflow saturates"


Format = Union[FloatFormat, IntFormat, FixedFormat]

FP32 = FloatFormat("fp32", 8, 23)
FP16 = FloatFormat("fp16", 5, 10)
BF16 = FloatFormat("bf16", 8, 7)
FP8_E4M3 = FloatFormat("fp8 E4M3", 4, 3, finite=True)
FP8_E5M2 = FloatFormat("fp8 E5M2", 5, 2)

FLOAT_FORMATS: dict[str, FloatFormat] = {
    "fp32": FP32,
    "fp16": FP16,
    "bf16": BF16,
    "fp8_e4m3": FP8_E4M3,
    "fp8_e5m2": FP8_E5M2,
}

# torch's dtype for each float format, the reference the tests compare against
TORCH_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "fp8_e4m3": torch.float8_e4m3fn,
    "fp8_e5m2": torch.float8_e5m2,
}


def int8(scale: float) -> IntFormat:
    """int8 with the given scale (value = code * scale); notebook 01."""
    return IntFormat(scale, 8)


def int_for(w: torch.Tensor, bits: int = 8) -> IntFormat:
    """Signed ``bits``-bit integers whose scale maps max|w| to the largest code (symmetric, per tensor); notebook 01."""
    w = _as_f64(w)
    if w.numel() == 0 or not torch.isfinite(w).all():
        raise DclabError("int_for needs a non-empty tensor of finite values.")
    peak = float(w.abs().max())
    qmax = (1 << (bits - 1)) - 1 if isinstance(bits, int) and bits >= 2 else 1
    return IntFormat(peak / qmax if peak > 0 else 1.0, bits)


def int8_for(w: torch.Tensor) -> IntFormat:
    """int8 whose scale maps max|w| to 127: ``int_for(w, 8)`` (notebook 01)."""
    return int_for(w, 8)


def fixed_point(int_bits: int, frac_bits: int) -> FixedFormat:
    """Signed fixed point Q``int_bits``.``frac_bits`` (1 + int_bits + frac_bits bits); notebook 01."""
    return FixedFormat(int_bits, frac_bits)


def represent(value: float, fmt: Format) -> Representation:
    """``value`` stored in ``fmt``: bits, fields, stored value, error (the explorer of notebook 01)."""
    value = float(value)
    if math.isnan(value) and not isinstance(fmt, FloatFormat):
        code, stored, note = 0, math.nan, "nan: not representable"
    else:
        code = int(fmt.encode(value))
        stored = float(fmt.decode(code))
        note = ""
        if math.isnan(stored):
            note = "nan"
        elif math.isinf(stored) and math.isfinite(value):
            note = "overflow -> inf"
        elif math.isfinite(stored) and not math.isclose(abs(stored), abs(value)) and abs(stored) == fmt.info().max:
            note = "saturated"
        elif stored == 0 and value != 0:
            note = "underflow -> 0"
    if math.isfinite(value) and math.isfinite(stored):
        error = stored - value
        rel = abs(error) / abs(value) if value != 0 else (0.0 if error == 0 else math.inf)
    else:
        error, rel = math.nan, math.nan
    bits = format(code, f"0{fmt.bits}b")
    return Representation(fmt.name, value, code, bits, fmt.fields(code), stored, error, rel, note)


def format_table(formats: Sequence[Format]) -> list[FormatInfo]:
    """Range and precision of each format, one row each (notebook 01)."""
    return [f.info() for f in formats]


CAST_CHUNK = 1 << 16
"""Values ``cast_weight`` casts at a time (elementwise, so the result is the same; the temporaries stay ~10 MB)."""


def cast_weight(w: torch.Tensor, fmt: Format | str) -> torch.Tensor:
    """``w`` stored in ``fmt`` and read back, in ``w``'s dtype (notebook 01).

    ``fmt`` is a format object or a name: ``"fp32" "fp16" "bf16" "fp8_e4m3"
    "fp8_e5m2"``, or ``"int8"`` (``"int4"``, ``"int2"``...: 2 to 16 bits) for
    integers with this tensor's own scale, max|w| / (2**(bits-1) - 1).
    """
    if isinstance(fmt, str):
        if fmt in FLOAT_FORMATS:
            fmt = FLOAT_FORMATS[fmt]
        elif fmt.startswith("int") and fmt[3:].isdigit() and 2 <= int(fmt[3:]) <= 16:
            fmt = int_for(w, int(fmt[3:]))
        else:
            raise DclabError(f"unknown format {fmt!r}; use one of {sorted(FLOAT_FORMATS)}, 'int8' (or 'int2'..'int16') or a format object.")
    flat = w.reshape(-1)  # cast a slice at a time: a float format's encode makes ~20 int64 temporaries of its input
    parts = [fmt.cast(flat[i : i + CAST_CHUNK]).to(dtype=w.dtype, device=w.device) for i in range(0, flat.numel(), CAST_CHUNK)]
    return (torch.cat(parts) if parts else flat.clone()).reshape(w.shape)


def cast_model(model: nn.Module, fmt: Format | str) -> nn.Module:
    """A copy of ``model`` whose Linear/Conv weights are cast to ``fmt`` and back to fp32 (notebook 01).

    Biases stay fp32. ``fmt="int8"`` (or ``"int4"``...) gives each layer its own scale, max|w| / 127.
    """
    out = copy.deepcopy(model)
    with torch.no_grad():
        for module in out.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                module.weight.copy_(cast_weight(module.weight, fmt))
    return out
