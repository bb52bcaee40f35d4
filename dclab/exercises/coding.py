"""Exercises of notebook 04 (Huffman coding and sparse storage): a Huffman code, canonical codewords, gaps."""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from dclab.codec import huffman, sparse
from dclab.exercises._core import (
    Case,
    CheckResult,
    Exercise,
    Mismatch,
    as_int_list,
    register,
    show,
)

NOTEBOOK = "04_huffman_coding.ipynb"


def _codewords(got: Any, shown: str) -> dict:
    if not isinstance(got, Mapping):
        raise Mismatch(shown, f"{show(got)} ({type(got).__name__})", "return a dict {symbol: codeword}, e.g. {0: '0', 1: '10'}")
    return dict(got)


def _check_bit_strings(codes: dict, shown: str) -> None:
    for s, c in codes.items():
        if not isinstance(c, str) or set(c) - {"0", "1"}:
            raise Mismatch(shown, show(codes), f"codewords are strings of '0' and '1' such as '10'; symbol {s} has {c!r}")


def _prefix_clash(codes: dict) -> tuple | None:
    """(a, symbol of a, b, symbol of b) with codeword a a prefix of codeword b, if any."""
    ordered = sorted((c, s) for s, c in codes.items())
    for (a, sa), (b, sb) in zip(ordered, ordered[1:]):
        if b.startswith(a):
            return a, sa, b, sb
    return None


# ---------------------------------------------------------------- huffman_code(freqs) -> {symbol: codeword}


def _huffman_reference(freqs: Mapping[int, int]) -> dict[int, str]:
    occurring = {s: f for s, f in freqs.items() if f > 0}
    return huffman.canonical_codes(huffman.code_lengths(occurring)) if occurring else {}


def _huffman_cases() -> list[Case]:
    bell = {i: round(1000 * math.exp(-((i - 16) ** 2) / 40)) + 1 for i in range(32)}
    return [
        Case(({0: 5, 1: 2, 2: 1, 3: 1},), "the example of docs/dcz-format.md"),
        Case(({7: 3, 9: 1},), "two symbols: one bit each"),
        Case(({0: 1, 1: 1, 2: 1, 3: 1},), "four equally frequent symbols"),
        Case(({0: 1, 1: 1, 2: 2, 3: 3, 4: 5, 5: 8, 6: 13},), "Fibonacci frequencies: a deep, lopsided tree"),
        Case((bell,), "32 symbols with a bell-shaped histogram, like a layer's codebook indices",
             shown="freqs = 32 symbols, counts round(1000 * exp(-(s - 16)**2 / 40)) + 1"),
        Case(({4: 10},), "a single symbol: it still needs one bit",
             error_hint="with one symbol there is nothing to merge: give it the codeword '0'"),
        Case(({0: 3, 1: 0, 2: 1},), "a symbol with frequency 0 needs no codeword"),
        Case(({},), "no symbols at all: an empty code", error_hint="no symbols, nothing to code: return {}"),
    ]


def _huffman_compare(case: Case, got: Any) -> None:
    freqs = case.args[0]
    occurring = {s: f for s, f in freqs.items() if f > 0}
    ref = _huffman_reference(freqs)
    optimal = sum(f * len(ref[s]) for s, f in occurring.items())
    shown = f"a prefix code of {optimal} bits in all for these frequencies, such as {show(ref)}"
    if len(ref) > 8:
        shown = f"a prefix code of {optimal} bits in all for these frequencies (lengths {sorted(len(c) for c in ref.values())})"
    codes = _codewords(got, shown)
    missing = [s for s in occurring if s not in codes]
    if missing:
        raise Mismatch(shown, show(codes), f"symbol {missing[0]} (frequency {occurring[missing[0]]}) has no codeword; "
                                           "every symbol that occurs needs one")
    unknown = [s for s in codes if s not in freqs]
    if unknown:
        raise Mismatch(shown, show(codes), f"symbol {unknown[0]!r} is not among the frequencies' symbols")
    codes = {s: c for s, c in codes.items() if s in occurring}
    _check_bit_strings(codes, shown)
    empty = [s for s, c in codes.items() if c == ""]
    if empty:
        hint = ("a single symbol still spends one bit per occurrence: give it the codeword '0'" if len(codes) == 1
                else f"symbol {empty[0]} has an empty codeword: every codeword has at least one bit")
        raise Mismatch(shown, show(codes), hint)
    clash = _prefix_clash(codes)
    if clash:
        a, sa, b, sb = clash
        what = "the same codeword" if a == b else f"'{a}' (symbol {sa}) is a prefix of '{b}' (symbol {sb})"
        raise Mismatch(shown, show(codes) if len(codes) <= 8 else f"a code in which {what}",
                       f"not a prefix code: {what}, so a decoder that has read {a} cannot tell where symbol {sa} ends. "
                       "In a Huffman tree only the leaves get codewords")
    total = sum(f * len(codes[s]) for s, f in occurring.items())
    if total == optimal:
        return
    total_text = f"{show(codes) if len(codes) <= 8 else 'a prefix code'}: {total} bits in all"
    lengths = {len(c) for c in codes.values()}
    n = sum(occurring.values())
    shannon = {s: math.ceil(-math.log2(f / n)) for s, f in occurring.items()}
    if len(lengths) == 1:
        hint = ("all your codewords have the same length: a fixed-length code. Huffman gives frequent symbols "
                "shorter codewords by merging the two least frequent subtrees, again and again")
    elif all(len(codes[s]) == shannon[s] for s in occurring):
        hint = "those are Shannon's lengths ceil(log2(1/p)); Huffman's merging does better"
    else:
        hint = (f"a Huffman code spends {optimal} bits here: always merge the two *least* frequent subtrees "
                "(heapq.heappop twice), and a symbol's codeword length is its depth in the tree")
    raise Mismatch(shown, total_text, hint)


HUFFMAN_CODE = register(Exercise(
    name="huffman_code",
    notebook=NOTEBOOK,
    params=("freqs",),
    cases=_huffman_cases,
    compare=_huffman_compare,
    fallback=_huffman_reference,
    fallback_name="dclab.codec.huffman.code_lengths + canonical_codes",
))


def check_huffman_code(huffman_code: Callable[[dict], dict]) -> CheckResult:
    """Check ``huffman_code(freqs) -> {symbol: '0101'}``: prefix-free and optimal (notebook 04, Huffman coding)."""
    return HUFFMAN_CODE.check(huffman_code)


# ---------------------------------------------------------------- canonical_code(lengths) -> {symbol: codeword}


def _canonical_variant(lengths: Mapping[int, int], order: str = "length", shift: bool = True) -> dict[int, str]:
    """Canonical codewords, or a typical mistake: sorted by symbol only, or no left shift."""
    key = (lambda s: s) if order == "symbol" else (lambda s: (lengths[s], s))
    code, prev, out = -1, None, {}
    for s in sorted(lengths, key=key):
        n = lengths[s]
        code = 0 if prev is None else code + 1
        if shift and prev is not None:
            code <<= max(n - prev, 0)
        out[s] = format(code, f"0{n}b")[-n:] if n else ""
        prev = n
    return out


def _canonical_cases() -> list[Case]:
    return [
        Case(({0: 1, 1: 2, 2: 3, 3: 3},), "the example of docs/dcz-format.md"),
        Case(({0: 2, 1: 2, 2: 2, 3: 2},), "four codewords of 2 bits"),
        Case(({3: 2, 0: 3, 1: 3, 2: 2},), "sort by (length, symbol): symbols 2 and 3 come first"),
        Case(({0: 1, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4},), "the length jumps from 1 to 3: shift by 2"),
        Case(({0: 2, 1: 2, 2: 2, 3: 4, 4: 4, 5: 4, 6: 4},), "from 2 to 4 bits: shift by 2"),
        Case(({5: 1},), "a single symbol: the codeword '0'"),
        Case(({},), "no symbols: an empty code", error_hint="no lengths, no codewords: return {}"),
    ]


def _canonical_compare(case: Case, got: Any) -> None:
    lengths = case.args[0]
    ref = huffman.canonical_codes(lengths) if lengths else {}
    shown = show(ref)
    codes = _codewords(got, shown)
    if codes == ref:
        return
    if set(codes) != set(lengths):
        raise Mismatch(shown, show(codes), f"one codeword per symbol of lengths: {sorted(lengths)}")
    _check_bit_strings(codes, shown)
    wrong_length = [s for s in lengths if len(codes[s]) != lengths[s]]
    if wrong_length:
        s = wrong_length[0]
        hint = (f"symbol {s}'s codeword must have exactly lengths[{s}] = {lengths[s]} bits: "
                f"format(code, '0{lengths[s]}b') pads with zeros on the left")
    elif codes == _canonical_variant(lengths, order="symbol"):
        hint = "sort the symbols by (length, symbol), shorter codewords first, not by symbol alone"
    elif codes == _canonical_variant(lengths, shift=False):
        hint = ("when the length grows, shift the next code left by the growth: "
                "code = (previous + 1) << (new length - old length)")
    else:
        hint = ("sort by (length, symbol); the first codeword is all zeros; each next one is the previous plus 1, "
                "shifted left whenever the length grows (docs/dcz-format.md, 'Huffman codes')")
    raise Mismatch(shown, show(codes), hint)


CANONICAL_CODE = register(Exercise(
    name="canonical_code",
    notebook=NOTEBOOK,
    params=("lengths",),
    cases=_canonical_cases,
    compare=_canonical_compare,
    fallback=lambda lengths: huffman.canonical_codes(lengths) if lengths else {},
    fallback_name="dclab.codec.huffman.canonical_codes",
))


def check_canonical_code(canonical_code: Callable[[dict], dict]) -> CheckResult:
    """Check ``canonical_code(lengths) -> {symbol: '0101'}``, the .dcz format's canonical order (notebook 04)."""
    return CANONICAL_CODE.check(canonical_code)


# ---------------------------------------------------------------- encode_gaps(indices, gap_bits) -> (gaps, values)


def _gaps_reference(indices: list[int], gap_bits: int) -> tuple[list[int], list[int]]:
    layer = sparse.encode_gaps(np.asarray(indices, dtype=np.int64), gap_bits)
    return layer.gaps.astype(int).tolist(), layer.values.astype(int).tolist()


def _gaps_variant(indices: list[int], max_gap: int, first: int = -1, eager: bool = False) -> tuple[list, list]:
    """Gaps and values under a convention, right or typically wrong (first gap from 0, eager fillers)."""
    gaps, values, prev = [], [], first
    for pos, v in enumerate(indices):
        if v == 0:
            continue
        gap = pos - prev
        while gap > max_gap or (eager and gap >= max_gap):
            gaps.append(max_gap)
            values.append(0)
            gap -= max_gap
        gaps.append(gap)
        values.append(v)
        prev = pos
    return gaps, values


def _gaps_cases() -> list[Case]:
    rng = np.random.default_rng(7)
    layer = np.where(rng.random(200) < 0.1, rng.integers(1, 32, 200), 0).tolist()
    return [
        Case(([0, 3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 3),
             "Figure 2 of Deep Compression: non-zeros at positions 1, 4 and 15, 3-bit gaps"),
        Case(([5, 0, 2, 7], 2), "an entry at position 0: gaps count from position -1, so its gap is 1"),
        Case(([0, 0, 0, 5], 2), "a gap of exactly 2**gap_bits = 4 fits without a filler"),
        Case(([0, 0, 0, 0, 7], 2), "a gap of 5 with 2-bit gaps (at most 4): one filler"),
        Case(([0, 0, 0, 0, 0, 9], 1), "a gap of 6 with 1-bit gaps (at most 2): two fillers"),
        Case(([4, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2), "zeros after the last non-zero are not stored"),
        Case(([0, 0, 0, 0, 0, 0], 3), "no non-zeros at all: nothing is stored"),
        Case((layer, 3), "a 200-weight layer at about 90% sparsity, 3-bit gaps",
             shown="indices = 200 codebook indices, about 90% of them 0, gap_bits = 3"),
    ]


def _gaps_compare(case: Case, got: Any) -> None:
    indices, gap_bits = case.args
    gaps0, values0 = _gaps_reference(indices, gap_bits)
    shown = f"gaps = {show(gaps0)}, values = {show(values0)}"
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise Mismatch(shown, show(got), "return two lists: gaps, values")
    gaps = as_int_list(got[0], shown)
    values = as_int_list(got[1], shown)
    if (gaps, values) == (gaps0, values0):
        return
    came_back = f"gaps = {show(gaps)}, values = {show(values)}"
    max_gap = 2**gap_bits
    positions = [p for p, v in enumerate(indices) if v != 0]
    if len(gaps) != len(values):
        hint = "one value per gap: each stored entry is a (gap, value) pair, fillers included"
    elif gaps == positions or gaps == [p + 1 for p in positions]:
        hint = "store the distance to the previous stored entry, not the position itself"
    elif (gaps, values) == _gaps_variant(indices, max_gap, first=0):
        hint = ("the first gap counts from position -1, so an entry at position 0 has gap 1 (the paper's figure counts "
                "from 0; dclab's .dcz format from -1, see docs/dcz-format.md)")
    elif (gaps, values) == _gaps_variant(indices, max_gap, eager=True):
        hint = ("a gap of exactly 2**gap_bits still fits, since it is stored as gap - 1: "
                "insert a filler only when the gap is longer")
    elif (gaps, values) == _gaps_variant(indices, max_gap - 1):
        hint = (f"{gap_bits}-bit gaps reach up to 2**gap_bits = {max_gap}, not {max_gap - 1}: a gap is stored "
                f"as gap - 1, since gap 0 cannot occur")
    elif gaps[: len(gaps0)] == gaps0 and values[: len(values0)] == values0 and not any(values[len(values0):]):
        hint = "zeros after the last non-zero are not stored: the layer's length restores them"
    elif any(g > max_gap for g in gaps):
        g = next(g for g in gaps if g > max_gap)
        hint = (f"gap {g} does not fit in {gap_bits} bits (at most {max_gap}): bridge it with filler entries, "
                f"each with gap {max_gap} and value 0")
    elif gaps == gaps0:
        hint = "the gaps are right; the values are the codebook indices of the stored entries, 0 for a filler"
    else:
        hint = (f"each entry's gap is its distance to the previous entry (the first from position -1); a gap above "
                f"{max_gap} gets fillers (gap {max_gap}, value 0) before it")
    raise Mismatch(shown, came_back, hint)


ENCODE_GAPS = register(Exercise(
    name="encode_gaps",
    notebook=NOTEBOOK,
    params=("indices", "gap_bits"),
    cases=_gaps_cases,
    compare=_gaps_compare,
    fallback=_gaps_reference,
    fallback_name="dclab.codec.sparse.encode_gaps",
))


def check_encode_gaps(encode_gaps: Callable[[list, int], tuple]) -> CheckResult:
    """Check ``encode_gaps(indices, gap_bits) -> (gaps, values)`` with filler zeros (notebook 04, Figure 2)."""
    return ENCODE_GAPS.check(encode_gaps)
