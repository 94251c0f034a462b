"""Correctly rounded transcendentals (exp, tanh, sigmoid, sin, cos) checked against mpmath.

mpmath (an implementation independent of MPFR and of libm) gives f(x) at 300 bits; the kernel
result r must be a nearest float32: |y - r| < |y - neighbour| for both ulp neighbours, where the
neighbour above the largest finite float32 is 2^128 (so r = inf iff y lies at or past the IEEE
overflow threshold (2 - 2^-24)·2^127), and r = ±0 needs |y| <= 2^-150 with the sign of y. Signed
zero inputs and ±inf/NaN use the pinned special values. Hard cases: inputs whose float64 value lies
near a float32 rounding boundary (found by a vectorised search with ``_boundary_distance``; they
must go through MPFR), huge sin/cos arguments, tiny arguments, exp near overflow/underflow and
sigmoid at large |x|. Finally the float64 fast path and pure MPFR agree on ~20k inputs per
function.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from kref32 import CANON, assert_same_bits, f32_bits
from nnlemma.kernels import KERNEL_RULES, transcendental as tr

F32 = np.float32
FUNCS = ["exp", "tanh", "sigmoid", "sin", "cos"]
MAXF = float(np.finfo(np.float32).max)
OVERFLOW = 2.0 ** 128
ODD = {"tanh", "sin"}
PREC = 300


def mp_value(name: str, x: float):
    with mpmath.workprec(PREC):
        X = mpmath.mpf(x)
        if name == "sigmoid":
            return 1 / (1 + mpmath.exp(-X))
        return getattr(mpmath, name)(X)


def _up(r: float) -> float:
    return OVERFLOW if r == MAXF else float(np.nextafter(F32(r), F32(np.inf)))


def _dn(r: float) -> float:
    return -OVERFLOW if r == -MAXF else float(np.nextafter(F32(r), F32(-np.inf)))


SPECIAL = {  # (name, x) -> exact float32 result, for the inputs mpmath cannot represent (±0, ±inf)
    ("exp", math.inf): math.inf, ("exp", -math.inf): 0.0, ("tanh", math.inf): 1.0,
    ("tanh", -math.inf): -1.0, ("sigmoid", math.inf): 1.0, ("sigmoid", -math.inf): 0.0,
    ("sin", math.inf): math.nan, ("sin", -math.inf): math.nan, ("cos", math.inf): math.nan,
    ("cos", -math.inf): math.nan,
}


def check_nearest(name: str, x: float, r: float) -> None:
    """Assert r is the correctly rounded float32 of name(x)."""
    where = f"{name}({x!r} = 0x{f32_bits(x):08x}) -> {r!r}"
    if math.isnan(x) or (name, x) in SPECIAL:
        want = math.nan if math.isnan(x) else SPECIAL[(name, x)]
        assert (math.isnan(r) and math.isnan(want)) or f32_bits(r) == f32_bits(want), where
        return
    if x == 0:  # signed zero input: odd functions keep the zero, the others are exact constants
        want = {"exp": 1.0, "cos": 1.0, "sigmoid": 0.5}.get(name, x)
        assert f32_bits(r) == f32_bits(want), where
        return
    assert not math.isnan(r), where
    y = mp_value(name, x)
    if math.isinf(r):
        thr = mpmath.mpf(2 - 2.0 ** -24) * mpmath.mpf(2) ** 127
        assert (y >= thr) if r > 0 else (y <= -thr), where
        return
    with mpmath.workprec(PREC):
        d = abs(y - r)
        assert d < abs(y - _up(r)), f"{where}: closer to the float32 above (y = {mpmath.nstr(y, 20)})"
        assert d < abs(y - _dn(r)), f"{where}: closer to the float32 below (y = {mpmath.nstr(y, 20)})"
    if r == 0:
        assert (math.copysign(1.0, r) > 0) == (y > 0), f"{where}: sign of the underflowed zero"


def run_kernel(name: str, x: np.ndarray) -> np.ndarray:
    y = KERNEL_RULES[name](np.asarray(x, F32))
    nan = np.isnan(y)
    assert np.all(y.view(np.uint32)[nan] == CANON)
    return y


def check_all(name: str, x: np.ndarray) -> None:
    x = np.asarray(x, F32).reshape(-1)
    r = run_kernel(name, x)
    for xi, ri in zip(x, r):
        check_nearest(name, float(xi), float(ri))


def log_uniform(rng, n, lo_exp, hi_exp, signed=True) -> np.ndarray:
    mag = np.exp2(rng.uniform(lo_exp, hi_exp, n))
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0) if signed else 1.0
    with np.errstate(over="ignore"):
        return (mag * sign).astype(F32)


def float32_range(lo: float, hi: float) -> np.ndarray:
    """Every float32 in [lo, hi] (lo, hi of the same sign, few values)."""
    a, b = F32(lo).view(np.int32), F32(hi).view(np.int32)
    a, b = min(a, b), max(a, b)
    return np.arange(a, b + 1, dtype=np.int32).view(np.float32)


# -- special values and general inputs ------------------------------------------------------

EDGE_INPUTS = F32([0.0, -0.0, np.inf, -np.inf, np.nan, 2.0 ** -149, -(2.0 ** -149), 2.0 ** -126,
                   -(2.0 ** -126), 1.0, -1.0, 0.5, MAXF, -MAXF, 2.0 ** 17, -(2.0 ** 17),
                   float(np.nextafter(F32(2.0 ** 17), F32(np.inf))), 1.0 + 2.0 ** -23, 3.1415927, 1.5707964])


@pytest.mark.parametrize("name", FUNCS)
def test_special_and_edge_inputs(name):
    check_all(name, EDGE_INPUTS)
    nan_inputs = np.array([0x7FC00001, 0xFFC00000, 0x7F800001], np.uint32).view(np.float32)
    assert np.all(run_kernel(name, nan_inputs).view(np.uint32) == CANON)


@pytest.mark.parametrize("name", FUNCS)
def test_random_inputs_against_mpmath(name):
    rng = np.random.default_rng(FUNCS.index(name))
    parts = [log_uniform(rng, 600, -30, 8),            # ordinary magnitudes
             log_uniform(rng, 150, -149, -30),         # tiny, down to subnormal
             rng.integers(0, 2 ** 32, 250, dtype=np.uint64).astype(np.uint32).view(np.float32)]
    if name in ("sin", "cos"):
        parts.append(log_uniform(rng, 150, 8, 17))
    check_all(name, np.concatenate(parts))


# -- hard cases ---------------------------------------------------------------------------------

SEARCH_RANGES = {"exp": (-104.0, 89.0), "tanh": (-10.0, 10.0), "sigmoid": (-105.0, 20.0),
                 "sin": (-(2.0 ** 17), 2.0 ** 17), "cos": (-(2.0 ** 17), 2.0 ** 17)}


@pytest.mark.parametrize("name", FUNCS)
def test_near_midpoint_inputs_go_through_mpfr(name, monkeypatch):
    """Among 300k random float32 inputs, take the 40 whose float64 value lies closest (relative)
    to a float32 rounding boundary; those inside the band must be evaluated by MPFR, and all of
    them must be correctly rounded."""
    rng = np.random.default_rng(100 + FUNCS.index(name))
    lo, hi = SEARCH_RANGES[name]
    x = np.concatenate([rng.uniform(lo, hi, 200_000).astype(F32),
                        log_uniform(rng, 100_000, -40, math.log2(max(abs(lo), hi)))])
    with np.errstate(all="ignore"):
        v = tr._FAST[name](x.astype(np.float64))
        r = v.astype(F32)
        rel = tr._boundary_distance(v, r) / np.abs(v)
    rel = np.where(np.isfinite(rel), rel, np.inf)
    hard = x[np.argsort(rel, kind="stable")[:40]]
    hard_rel = np.sort(rel)[:40]
    in_band = hard[hard_rel <= tr._REL_BAND * 1.0001]
    assert hard_rel[0] < 2.0 ** -30, "the search should find inputs near a rounding boundary"

    seen = []
    real = tr.mpfr_eval

    def spy(n, xv):
        seen.append(xv)
        return real(n, xv)

    monkeypatch.setattr(tr, "mpfr_eval", spy)
    check_all(name, hard)
    monkeypatch.undo()
    for xv in in_band:
        assert float(xv) in seen, f"{name}({xv!r}) lies in the band but did not go through MPFR"


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_large_trig_arguments(name):
    rng = np.random.default_rng(7)
    x = np.concatenate([log_uniform(rng, 300, math.log2(1e5), math.log2(3e38)),
                        F32([1e5, 2.0 ** 17 + 2.0 ** -6, 1e10, 1e22, 2.0 ** 64, 2.0 ** 100, 3e38, MAXF,
                             -MAXF, 16777215.0, 16777216.0, 1.0e38])])
    check_all(name, x)


@pytest.mark.parametrize("name", FUNCS)
def test_tiny_arguments(name):
    rng = np.random.default_rng(8)
    x = np.concatenate([log_uniform(rng, 200, -149, -10),
                        F32([2.0 ** -149, -(2.0 ** -149), 2.0 ** -126 - 2.0 ** -149, 2.0 ** -12, 2.0 ** -24,
                             2.0 ** -25, -(2.0 ** -25), 2.0 ** -26, 1e-7, -1e-7])])
    check_all(name, x)


def test_exp_near_overflow_and_underflow():
    ln_thr = math.log((2 - 2.0 ** -24) * 2.0 ** 127)   # 88.7228...: overflow threshold
    ln_min_sub_half = math.log(2.0 ** -150)               # -103.972...: below this exp rounds to +0
    ln_min_normal = math.log(2.0 ** -126)                 # -87.3365...
    x = np.concatenate([float32_range(ln_thr - 3e-4, ln_thr + 3e-4),
                        float32_range(ln_min_sub_half - 2e-4, ln_min_sub_half + 2e-4),
                        float32_range(ln_min_normal - 2e-4, ln_min_normal + 2e-4),
                        np.random.default_rng(9).uniform(-103.97, -87.0, 400).astype(F32),
                        np.random.default_rng(10).uniform(88.5, 88.8, 100).astype(F32)])
    r = run_kernel("exp", x)
    assert np.isinf(r).any() and np.isfinite(r).any() and (r == 0).any()
    assert ((r > 0) & (r < 2.0 ** -126)).any(), "subnormal results"
    check_all("exp", x)


def test_sigmoid_large_magnitudes():
    ln_half_min = math.log(2.0 ** -150)
    x = np.concatenate([float32_range(ln_half_min - 2e-4, ln_half_min + 2e-4),   # underflow to +0
                        np.random.default_rng(11).uniform(-110, -80, 300).astype(F32),
                        np.random.default_rng(12).uniform(15, 20, 300).astype(F32),  # rounding to 1
                        float32_range(17.328, 17.3295),
                        F32([88.0, 89.0, 104.0, 1e4, 1e30, MAXF, -1e4, -1e30, -MAXF, -88.0, -89.0])])
    r = run_kernel("sigmoid", x)
    assert (r == 1.0).any() and (r == 0.0).any()
    assert np.all(r.view(np.uint32)[r == 0] == 0), "sigmoid underflows to +0"
    check_all("sigmoid", x)


def test_tanh_near_one_and_minus_one():
    x = np.concatenate([np.random.default_rng(13).uniform(7, 10, 300).astype(F32), float32_range(9.0, 9.0005)])
    check_all("tanh", np.concatenate([x, -x]))


# -- fast path == MPFR ---------------------------------------------------------------------------

def _agreement_inputs(name: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = SEARCH_RANGES[name]
    parts = [rng.uniform(lo, hi, n // 2).astype(F32),
             log_uniform(rng, n // 4, -40, math.log2(max(abs(lo), hi)))]
    raw = rng.integers(0, 2 ** 32, n - n // 2 - n // 4, dtype=np.uint64).astype(np.uint32).view(np.float32)
    if name in ("sin", "cos"):  # huge arguments go to MPFR on both sides; test the fast path
        with np.errstate(all="ignore"):
            raw = np.where(np.abs(raw) <= 2.0 ** 17, raw, raw * F32(2.0 ** -120))
    parts.append(raw)
    return np.concatenate(parts)


def _assert_fast_equals_mpfr(name: str, x: np.ndarray) -> None:
    with np.errstate(invalid="ignore"):  # float32 -> float64 of a signalling NaN raises 'invalid'
        got = tr.correctly_rounded(name, x)
    want = np.array([tr.mpfr_eval(name, float(v)) for v in x], dtype=np.float64).astype(F32)
    g = np.where(np.isnan(got), F32(np.nan), got).view(np.uint32)
    w = np.where(np.isnan(want), F32(np.nan), want).view(np.uint32)
    bad = np.flatnonzero(g != w)
    assert bad.size == 0, [(float(x[i]), float(got[i]), float(want[i])) for i in bad[:5]]


@pytest.mark.parametrize("name", FUNCS)
def test_fast_path_agrees_with_mpfr(name):
    _assert_fast_equals_mpfr(name, _agreement_inputs(name, 20_000, 200 + FUNCS.index(name)))


@pytest.mark.slow
@pytest.mark.parametrize("name", FUNCS)
def test_fast_path_agrees_with_mpfr_many(name):
    for seed in range(10):
        _assert_fast_equals_mpfr(name, _agreement_inputs(name, 100_000, 1000 * seed + FUNCS.index(name)))


@pytest.mark.slow
@pytest.mark.parametrize("name", FUNCS)
def test_random_inputs_against_mpmath_many(name):
    rng = np.random.default_rng(5000 + FUNCS.index(name))
    check_all(name, _agreement_inputs(name, 20_000, int(rng.integers(1 << 30))))


# -- memory layout ---------------------------------------------------------------------------------

def test_mpfr_results_are_used_for_non_c_contiguous_inputs(monkeypatch):
    """sin of |x| > 2^17 always goes through MPFR; a spy returning a sentinel shows whether the
    MPFR value reaches the output, for C-ordered and Fortran-ordered inputs alike (a regression
    test: non-C-contiguous inputs once had their MPFR results written into a copy)."""
    x = np.array([[3e5, 1e30], [2.5e38, 1.0]], F32)
    monkeypatch.setattr(tr, "mpfr_eval", lambda name, v: 0.25)
    c = KERNEL_RULES["sin"](x)
    assert c[0, 0] == c[0, 1] == c[1, 0] == F32(0.25)  # the C-ordered case uses MPFR's value
    assert_same_bits(KERNEL_RULES["sin"](np.asfortranarray(x)), c, "Fortran-ordered input")
    assert_same_bits(KERNEL_RULES["sin"](x.T), c.T, "transposed view")
