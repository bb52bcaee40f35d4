"""dclab.numformats: exact bit patterns, round-to-nearest-even, overflow, and torch as the reference."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dclab import numformats as nf
from dclab.errors import DclabError

FP8 = ["fp8_e4m3", "fp8_e5m2"]
SMALL = ["fp16", "bf16", *FP8]  # formats whose every bit pattern can be enumerated
SINT = {8: torch.int8, 16: torch.int16, 32: torch.int32}


def torch_codes(x: torch.Tensor, key: str) -> torch.Tensor:
    """torch's bit patterns for float32 ``x`` converted to the format ``key``, as int64."""
    fmt = nf.FLOAT_FORMATS[key]
    y = x.to(nf.TORCH_DTYPES[key])
    return y.view(SINT[fmt.bits] if fmt.bits > 8 else torch.uint8).to(torch.int64) & ((1 << fmt.bits) - 1)


def torch_decode(codes: torch.Tensor, key: str) -> torch.Tensor:
    """torch's values (float64) of bit patterns ``codes`` in the format ``key``."""
    fmt = nf.FLOAT_FORMATS[key]
    raw = codes.to(torch.int32 if fmt.bits == 32 else torch.int64)
    if fmt.bits == 8:
        raw = codes.to(torch.uint8)
    elif fmt.bits == 16:
        raw = torch.where(codes >= 1 << 15, codes - (1 << 16), codes).to(torch.int16)
    return raw.view(nf.TORCH_DTYPES[key]).to(torch.float64)


def assert_same_values(a: torch.Tensor, b: torch.Tensor) -> None:
    assert torch.equal(a.isnan(), b.isnan())
    keep = ~a.isnan()
    assert torch.equal(a[keep], b[keep])
    assert torch.equal(torch.signbit(a[keep]), torch.signbit(b[keep]))  # -0.0 is not 0.0


def assert_encodes_like_torch(x: torch.Tensor, key: str) -> None:
    """Our codes equal torch's for every non-NaN input; NaN inputs give NaN in both."""
    ours, ref = nf.FLOAT_FORMATS[key].encode(x), torch_codes(x, key)
    nan = x.isnan()
    bad = (ours != ref) & ~nan
    assert not bad.any(), f"{key}: x={x[bad][:5].tolist()} ours={ours[bad][:5].tolist()} torch={ref[bad][:5].tolist()}"
    assert nf.FLOAT_FORMATS[key].decode(ours[nan]).isnan().all()


# ------------------------------------------------------------ exact patterns worked by hand


@pytest.mark.parametrize(
    "key, value, code",
    [
        ("fp32", 1.0, 0x3F800000),
        ("fp32", -2.0, 0xC0000000),
        ("fp32", 0.1, 0x3DCCCCCD),  # 0.1 rounds up in its last bit
        ("fp16", 1.0, 0x3C00),
        ("fp16", -2.0, 0xC000),
        ("fp16", 65504.0, 0x7BFF),
        ("fp16", 2.0**-24, 0x0001),  # smallest subnormal
        ("fp16", 2.0**-14, 0x0400),  # smallest normal
        ("fp16", 0.0, 0x0000),
        ("fp16", -0.0, 0x8000),
        ("fp16", math.inf, 0x7C00),
        ("fp16", -math.inf, 0xFC00),
        ("bf16", 1.0, 0x3F80),
        ("bf16", -2.0, 0xC000),
        ("fp8_e4m3", 1.0, 0x38),
        ("fp8_e4m3", 448.0, 0x7E),
        ("fp8_e4m3", 2.0**-9, 0x01),
        ("fp8_e5m2", 1.0, 0x3C),
        ("fp8_e5m2", 57344.0, 0x7B),
        ("fp8_e5m2", math.inf, 0x7C),
    ],
)
def test_known_bit_patterns(key, value, code):
    fmt = nf.FLOAT_FORMATS[key]
    assert int(fmt.encode(value)) == code
    stored = float(fmt.decode(code))
    assert stored == float(torch.tensor(value).to(nf.TORCH_DTYPES[key]))
    assert math.copysign(1, stored) == math.copysign(1, value)


def test_format_maxima_and_precision():
    table = {row.name: row for row in nf.format_table(list(nf.FLOAT_FORMATS.values()))}
    assert table["fp8 E4M3"].max == 448.0
    assert table["fp8 E5M2"].max == 57344.0
    assert table["fp16"].max == 65504.0
    assert table["bf16"].max == pytest.approx(3.3895e38, rel=1e-4)
    assert table["fp32"].max == torch.finfo(torch.float32).max
    for key, fmt in nf.FLOAT_FORMATS.items():
        info, ref = fmt.info(), torch.finfo(nf.TORCH_DTYPES[key])
        assert (info.max, info.min_normal, info.min_subnormal, info.epsilon) == (
            ref.max,
            ref.smallest_normal,
            ref.smallest_normal * ref.eps,
            ref.eps,
        )
        assert info.bits == ref.bits


@pytest.mark.parametrize(
    "key, value, code",
    [
        ("fp16", 1 + 2.0**-11, 0x3C00),  # halfway between 1 and 1+2^-10: to the even mantissa (down)
        ("fp16", 1 + 3 * 2.0**-11, 0x3C02),  # halfway between odd and even: up to the even one
        ("fp16", 1 + 2.0**-11 + 2.0**-30, 0x3C01),  # a hair above halfway: up
        ("bf16", 1 + 2.0**-8, 0x3F80),
        ("bf16", 1 + 3 * 2.0**-8, 0x3F82),
        ("fp8_e4m3", 2.0**-10, 0x00),  # half the smallest subnormal: ties to zero (even)
        ("fp8_e4m3", 3 * 2.0**-10, 0x02),
        ("fp8_e5m2", 1.125, 0x3C),  # 1.125 is halfway between 1.0 and 1.25
        ("fp8_e5m2", 1.375, 0x3E),  # halfway between 1.25 and 1.5: to 1.5 (even)
        ("fp16", 2047 * 2.0**-25, 0x0400),  # the largest subnormal rounds up into the smallest normal
    ],
)
def test_round_to_nearest_even(key, value, code):
    assert int(nf.FLOAT_FORMATS[key].encode(value)) == code


def test_overflow_inf_or_saturate_and_nan():
    e4m3, e5m2, fp16 = nf.FP8_E4M3, nf.FP8_E5M2, nf.FP16
    # E4M3fn has no inf: torch saturates everything beyond 448, infinities included
    assert e4m3.encode([1000.0, -1000.0, math.inf, -math.inf, 464.0, 479.0]).tolist() == [0x7E, 0xFE, 0x7E, 0xFE, 0x7E, 0x7E]
    assert e4m3.decode([0x7F, 0xFF]).isnan().all()
    assert not e4m3.decode([0x78, 0x7E]).isnan().any()  # exponent 1111 holds normal numbers: 256, 448
    # E5M2 and fp16 are IEEE-like: past the largest finite value (with ties to even) -> inf
    assert e5m2.encode([61439.0, 61440.0, -1e6]).tolist() == [0x7B, 0x7C, 0xFC]
    assert fp16.encode([65519.0, 65520.0]).tolist() == [0x7BFF, 0x7C00]
    for fmt in nf.FLOAT_FORMATS.values():
        nan_codes = fmt.encode([math.nan, -math.nan])
        assert fmt.decode(nan_codes).isnan().all()
    assert nf.FP16.encode(math.nan).item() == 0x7E00
    assert nf.FP8_E4M3.encode(math.nan).item() == 0x7F


def test_representation_of_an_overflow_and_a_value():
    r = nf.represent(0.1, nf.FP16)
    assert r.bits == "0010111001100110"
    assert "".join(bits for _, bits in r.fields) == r.bits
    assert [part for part, _ in r.fields] == ["sign", "exponent", "mantissa"]
    assert r.stored == 0.0999755859375
    assert r.error == pytest.approx(r.stored - 0.1)
    assert r.rel_error == pytest.approx(abs(r.stored - 0.1) / 0.1)
    assert nf.represent(1e6, nf.FP16).note == "overflow -> inf"
    assert nf.represent(1e6, nf.FP8_E4M3).note == "saturated"
    assert nf.represent(1e-9, nf.FP16).note == "underflow -> 0"
    assert nf.represent(math.nan, nf.int8(0.1)).note.startswith("nan")


# ------------------------------------------------------------ torch as the reference


@pytest.mark.parametrize("key", SMALL)
def test_every_bit_pattern_decodes_like_torch_and_round_trips(key):
    fmt = nf.FLOAT_FORMATS[key]
    codes = torch.arange(1 << fmt.bits, dtype=torch.int64)
    ours = fmt.decode(codes)
    assert_same_values(ours, torch_decode(codes, key))
    finite_or_inf = ~ours.isnan()
    assert torch.equal(fmt.encode(ours[finite_or_inf]), codes[finite_or_inf])


@pytest.mark.parametrize("key", SMALL)
def test_every_midpoint_rounds_like_torch(key):
    """Halfway between every pair of neighbours (the ties) and just either side of them."""
    fmt = nf.FLOAT_FORMATS[key]
    positive = fmt.decode(torch.arange(1 << (fmt.bits - 1)))
    positive = positive[torch.isfinite(positive)]
    mid64 = (positive[1:] + positive[:-1]) / 2
    mid64 = torch.cat([mid64, -mid64])
    mid = mid64.to(torch.float32)
    assert torch.equal(mid.to(torch.float64), mid64)  # the ties are exact in float32
    for x in (mid, torch.nextafter(mid, torch.tensor(math.inf)), torch.nextafter(mid, torch.tensor(-math.inf))):
        assert_encodes_like_torch(x, key)


@pytest.mark.parametrize("key", list(nf.FLOAT_FORMATS))
def test_random_float32_bit_patterns_encode_like_torch(key):
    gen = torch.Generator().manual_seed(1)
    raw = torch.randint(0, 1 << 32, (200_000,), generator=gen)
    anything = torch.where(raw >= 1 << 31, raw - (1 << 32), raw).to(torch.int32).view(torch.float32)  # any 32 bits
    fmt = nf.FLOAT_FORMATS[key]
    # and values spread over the format's own range, where the interesting rounding happens
    exponents = torch.randint(-fmt.bias - fmt.man_bits - 2, fmt.bias + 3, (200_000,), generator=gen)
    in_range = torch.ldexp(torch.rand(200_000, generator=gen) + 1.0, exponents) * (torch.randint(0, 2, (200_000,), generator=gen) * 2 - 1)
    assert_encodes_like_torch(anything, key)
    assert_encodes_like_torch(in_range.to(torch.float32), key)


@settings(max_examples=300, deadline=None)
@given(st.floats(width=32, allow_nan=True, allow_infinity=True))
def test_hypothesis_float32_encodes_like_torch(x):
    t = torch.tensor([x], dtype=torch.float32)
    for key in nf.FLOAT_FORMATS:
        assert_encodes_like_torch(t, key)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=True))
def test_hypothesis_fp32_rounds_a_double_like_torch(x):
    ours = nf.FP32.encode(x)
    ref = torch.tensor([x], dtype=torch.float64).to(torch.float32).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    assert int(ours) == int(ref)


# ------------------------------------------------------------ int8 with a scale, fixed point


def test_int8_matches_torch_fake_quantize():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(10_000, generator=gen) * 3
    x = torch.cat([x, torch.tensor([0.5, 1.5, 2.5, -0.5, -2.5, 1e3, -1e3]) * 0.25])  # ties and saturation
    for scale in (0.25, 2.0**-6, 0.03125):
        ref = torch.fake_quantize_per_tensor_affine(x, scale, 0, -128, 127).to(torch.float64)
        assert torch.equal(nf.int8(scale).cast(x), ref)


def test_int8_codes_are_twos_complement_and_saturate():
    fmt = nf.int8(0.5)
    assert fmt.encode([1.0, -1.0, 0.25, 0.75, 1e9, -1e9]).tolist() == [2, 0xFE, 0, 2, 0x7F, 0x80]
    assert fmt.decode([0x80, 0x7F]).tolist() == [-64.0, 63.5]
    assert nf.represent(-1.0, fmt).bits == "11111110"
    assert nf.int_for(torch.tensor([-0.5, 0.25])).scale == pytest.approx(0.5 / 127)
    assert nf.int_for(torch.tensor([-0.5, 0.25]), bits=4).scale == pytest.approx(0.5 / 7)
    with pytest.raises(DclabError):
        fmt.encode(math.nan)


@pytest.mark.parametrize("scale", [0, -1.0, math.inf, math.nan, "x"])
def test_bad_int8_scale_raises(scale):
    with pytest.raises(DclabError):
        nf.int8(scale)


def test_fixed_point_q1_2():
    q = nf.fixed_point(1, 2)  # 4 bits: sign, 1 integer, 2 fraction; step 0.25
    assert q.bits == 4
    info = q.info()
    assert (info.max, info.epsilon) == (1.75, 0.25)
    assert q.cast([0.375, 0.625, -1.0, 5.0, -5.0]).tolist() == [0.5, 0.5, -1.0, 1.75, -2.0]  # ties to even, saturate
    assert q.encode(-1.0).item() == 0b1100
    assert q.fields(0b1101) == [("sign", "1"), ("integer", "1"), ("fraction", "01")]


@pytest.mark.parametrize("int_bits, frac_bits", [(-1, 3), (3, -1), (0, 0), (20, 20), (1.5, 2), (True, 2)])
def test_bad_fixed_point_raises(int_bits, frac_bits):
    with pytest.raises(DclabError, match="fixed point"):
        nf.fixed_point(int_bits, frac_bits)


# ------------------------------------------------------------ casting a model


def test_cast_model_casts_weights_only_and_copies():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for key in ["fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "int8"]:
        cast = nf.cast_model(model, key)
        for name, v in cast.state_dict().items():
            if name.endswith("bias"):
                assert torch.equal(v, before[name])
            elif key in nf.TORCH_DTYPES:
                assert torch.equal(v, before[name].to(nf.TORCH_DTYPES[key]).float())
            else:
                scale = before[name].abs().max() / 127
                assert (v / scale - (v / scale).round()).abs().max() < 1e-3
                assert (v - before[name]).abs().max() <= scale / 2 + 1e-7
    int2 = nf.cast_model(model, "int2")  # codes -1, 0, 1 times max|w|: three values per layer
    for name, v in int2.state_dict().items():
        if name.endswith("weight"):
            assert set((v / before[name].abs().max()).round().unique().tolist()) <= {-1.0, 0.0, 1.0}
            assert len(v.unique()) <= 3
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(DclabError, match="unknown format"):
        nf.cast_model(model, "fp4")


@pytest.mark.parametrize("fmt", ["fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "int8", "int2", nf.fixed_point(3, 4)])
def test_cast_weight_in_slices_equals_one_cast_of_the_whole_tensor(fmt):
    w = torch.randn(3, nf.CAST_CHUNK // 2 + 7, generator=torch.Generator().manual_seed(1)) * 3
    whole = (nf.int_for(w, int(fmt[3:])) if isinstance(fmt, str) and fmt.startswith("int")
             else nf.FLOAT_FORMATS.get(fmt, fmt)).cast(w).to(w.dtype)
    got = nf.cast_weight(w, fmt)
    assert got.shape == w.shape and got.dtype == w.dtype
    assert torch.equal(got, whole)
