"""The compiled bound loops (``nnlemma._native`` behind ``bounds.fold_f32`` and ``bounds.fused``)
against their numpy versions and against exact rational arithmetic.

* ``fold_interval``: the float32 interval endpoints equal the numpy replay bit for bit (edge
  corpus included); the error bound equals the numpy one where its power-of-two terms add exactly,
  and is never below the exact sum of the terms.
* ``relax_terms`` / ``abs_dots`` / ``tiny_rows``: the new coefficients equal the elementwise
  products exactly; each float64 sum is within ``γ_{N−1}·Σ|t|`` of its exact rational value
  (the slack the backward pass adds), and the small-coefficient flags are exact.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnlemma import native
from nnlemma.bounds import fold_f32, fused

F32 = np.float32
HSET = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
U64 = 2.0 ** -53

pytestmark = pytest.mark.skipif(not native.AVAILABLE, reason="nnlemma._native not built "
                                "(tests/kernels/test_kernels_fast_wiring.py fails on that)")


EDGE = np.array([0.0, -0.0, 1.0, -1.0, 2.0 ** -149, -(2.0 ** -149), 2.0 ** -126, 1.1754942e-38,
                 3.4028235e38, -3.4028235e38, 1 + 2.0 ** -23, 1 - 2.0 ** -24, 0.1, -3.0], F32)


def mixed_array(rng, shape, finite=True):
    """Edge values, random finite bit patterns and ordinary values, mixed elementwise."""
    raw = rng.integers(0, 2 ** 32, size=shape, dtype=np.uint64).astype(np.uint32).view(F32)
    raw = np.where(np.isfinite(raw), raw, F32(1.0))
    pick = rng.integers(0, 3, size=shape)
    return np.choose(pick, [rng.choice(EDGE, shape), raw, rng.standard_normal(shape).astype(F32)]).astype(F32)


def assert_same_bits(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    utype = {4: np.uint32, 8: np.uint64}[got.dtype.itemsize]
    assert np.array_equal(got.view(utype), want.view(utype))


def _interval(rng, shape, finite=True):
    a, b = mixed_array(rng, shape, finite=finite), mixed_array(rng, shape, finite=finite)
    return np.minimum(a, b), np.maximum(a, b)


@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 9), st.integers(1, 40), st.integers(1, 11))
@HSET
def test_fold_interval_matches_numpy_replay(seed, nb, nk, nn):
    rng = np.random.default_rng(seed)
    xl, xh = _interval(rng, (nb, nk))
    wt = mixed_array(rng, (nk, nn), finite=True)
    with np.errstate(all="ignore"):
        lo, hi, err = fold_f32.fold_interval(xl, xh, wt, with_err=True)
        plo, phi, perr = fold_f32._fold_py(xl, xh, wt, True)
    assert_same_bits(lo, plo)
    assert_same_bits(hi, phi)
    both_inf = np.isinf(err) & np.isinf(perr)
    assert np.all(both_inf | (err >= perr * (1 - 2.0 ** -45)))  # same terms, other float64 grouping
    assert np.all(np.isinf(err) == np.isinf(perr))


def test_fold_interval_error_is_the_exact_sum_on_moderate_values():
    rng = np.random.default_rng(11)
    xl, xh = _interval(rng, (5, 30))
    xl, xh = (xl % F32(4)).astype(F32), (xh % F32(4)).astype(F32)
    xl, xh = np.minimum(xl, xh), np.maximum(xl, xh)
    wt = rng.standard_normal((30, 7)).astype(F32)
    lo, hi, err = fold_f32.fold_interval(xl, xh, wt, with_err=True)
    plo, phi, perr = fold_f32._fold_py(xl, xh, wt, True)
    assert_same_bits(lo, plo)
    assert_same_bits(hi, phi)
    assert np.array_equal(err, perr * (1 + 2.0 ** -40))  # powers of two in a narrow range add exactly
    assert np.all(err > 0)


def _gamma_ok(got, terms):
    """|got − Σ terms| <= γ_{N−1}·Σ|terms| in exact rationals (N the number of terms)."""
    exact = sum((Fraction(float(t)) for t in terms), Fraction(0))
    mag = sum((Fraction(abs(float(t))) for t in terms), Fraction(0))
    n = max(len(terms) - 1, 0)
    gamma = Fraction(n) * Fraction(U64) / (1 - Fraction(n) * Fraction(U64)) if n else Fraction(0)
    return abs(Fraction(float(got)) - exact) <= gamma * mag


@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 3), st.integers(1, 4), st.integers(1, 30))
@HSET
def test_relax_terms_sums_within_gamma_of_exact(seed, S, B, N):
    rng = np.random.default_rng(seed)
    lam = rng.standard_normal((S, B, N)) * rng.choice([0.0, 1e-300, 1.0, 1e30], (S, B, N))
    a_lo, a_hi = rng.standard_normal((B, N)), rng.standard_normal((B, N))
    b_lo, b_hi = rng.standard_normal((B, N)) * 1e3, rng.standard_normal((B, N))
    xm = np.abs(rng.standard_normal((B, N)))
    tiny = 1e-200
    new, bias, bias_abs, mag, small = fused.relax_terms(lam, a_lo, b_lo, a_hi, b_hi, xm, tiny)
    pos, neg = np.maximum(lam, 0), np.minimum(lam, 0)
    assert np.array_equal(new, pos * a_lo + neg * a_hi)  # exact values (a zero's sign is irrelevant)
    for s in range(S):
        for b in range(B):
            v = lam[s, b]
            t = np.where(v > 0, v * b_lo[b], np.where(v < 0, v * b_hi[b], 0.0))
            assert _gamma_ok(bias[s, b], t[v != 0])
            assert _gamma_ok(bias_abs[s, b], np.abs(t[v != 0]))
            m = np.abs(new[s, b]) * xm[b]
            assert _gamma_ok(mag[s, b], m[new[s, b] != 0])
            assert small[s, b] == bool(np.any((v != 0) & (np.abs(v) < tiny)))
    np_new, *np_rest = fused._relax_np(np.ascontiguousarray(lam), *(np.broadcast_to(v, (B, N)) for v in
                                       (a_lo, b_lo, a_hi, b_hi, xm)), tiny)
    assert np.array_equal(new, np_new)
    assert np.array_equal(small, np_rest[-1])


@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 3), st.integers(1, 4), st.integers(1, 30))
@HSET
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # 0*inf, masked out below
def test_abs_dots_and_tiny_rows(seed, S, B, N):
    rng = np.random.default_rng(seed)
    lam = rng.standard_normal((S, B, N)) * rng.choice([0.0, 1e-300, 1.0], (S, B, N))
    w1, w2 = np.abs(rng.standard_normal((B, N))), np.abs(rng.standard_normal((B, N))) * 1e5
    w2[0, 0] = np.inf  # a zero coefficient ignores an unbounded weight, a nonzero one does not
    tiny = 1e-200
    r1, r2, small = fused.abs_dots(lam, w1, w2, tiny)
    for s in range(S):
        for b in range(B):
            a = np.abs(lam[s, b])
            nz = a != 0
            assert _gamma_ok(r1[s, b], (a * w1[b])[nz])
            if b == 0 and nz[0]:
                assert r2[s, b] == np.inf
            else:
                assert _gamma_ok(r2[s, b], (a * w2[b])[nz])
            assert small[s, b] == bool(np.any(nz & (a < tiny)))
    assert np.array_equal(fused.tiny_rows(lam, tiny), small)


def test_loops_reject_wrong_buffer_sizes():
    x = np.zeros((2, 3), F32)
    with pytest.raises(ValueError, match="buffer"):
        native.lib.matmul_fold(x, np.zeros((3, 4), F32), np.zeros((2, 3), F32), 2, 3, 4)
    with pytest.raises(ValueError, match="chain"):
        fold_f32.fold_interval(x, x, np.zeros((4, 2), F32))
    with pytest.raises(ValueError, match="window"):
        native.lib.conv_fold(np.zeros((1, 1, 3, 3), F32), np.zeros((1, 1, 2, 2), F32),
                             np.zeros((1, 1, 3, 3), F32), 1, 1, 3, 3, 1, 2, 2, 3, 3, 1, 1, 1, 1)
