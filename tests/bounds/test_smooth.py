"""tanh / sigmoid relaxations (:mod:`nnlemma.bounds.smooth`): every line holds on its interval.

The oracle is mpmath interval arithmetic at 1200 bits (``tanh(x) = 1 − 2/(exp(2x) + 1)``,
``sigmoid(x) = 1/(1 + exp(−x))``), and each line is evaluated exactly at float64 points: a check
passes only if the enclosure of f lies strictly on the line's side, so no tolerance is involved.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import iv

from nnlemma.bounds.smooth import intercepts, smooth_relaxation

PREC = 1200  # absolute error far below the 2^-1000 the intercepts keep as a margin


def _f_iv(name: str, x: float):
    """f(x) enclosed at PREC bits (mpmath's precision is process-wide: other test modules set
    their own, so it is set here for each evaluation and restored)."""
    saved, iv.prec = iv.prec, PREC
    try:
        X = iv.mpf(float(x))
        if name == "tanh":
            return 1 - 2 / (iv.exp(2 * X) + 1)
        return 1 / (1 + iv.exp(-X))
    finally:
        iv.prec = saved


def _points(l: float, u: float, rng) -> list[float]:
    pts = [l, u, l / 2 + u / 2, float(np.nextafter(l, u)), float(np.nextafter(u, l))]
    pts += [0.0] if l <= 0 <= u else []
    for c in (0.3, 0.88, 1.3, 2.0):  # near the tangent points of typical slopes
        pts += [v for v in (c, -c) if l <= v <= u]
    pts += list(l + rng.random(24) * (u - l))
    return [min(max(p, l), u) for p in pts]


def _violations(name, l, u, a_lo, b_lo, a_hi, b_hi, rng) -> list[str]:
    bad = []
    for x in _points(l, u, rng):
        f = _f_iv(name, x)
        saved, iv.prec = iv.prec, PREC   # the lines at the oracle's precision too: a 53-bit sum can
        try:                             # round a line a hair above f onto f and fake a violation
            X = iv.mpf(x)
            upper = iv.mpf(float(a_hi)) * X + iv.mpf(float(b_hi))
            lower = iv.mpf(float(a_lo)) * X + iv.mpf(float(b_lo))
        finally:
            iv.prec = saved
        if not f.b < upper.a:
            bad.append(f"{name} on [{l!r}, {u!r}] at {x!r}: upper line {a_hi!r}·x + {b_hi!r} not above f")
        if not lower.b < f.a:
            bad.append(f"{name} on [{l!r}, {u!r}] at {x!r}: lower line {a_lo!r}·x + {b_lo!r} not below f")
    return bad


_centre = st.one_of(st.floats(-8, 8), st.floats(-60, 60), st.sampled_from([0.0, -0.0, 1e-30, -1e-30, 3e4]))
_width = st.one_of(st.sampled_from([0.0, 1e-300, 1e-12, 1e-6]), st.floats(1e-9, 1e-3), st.floats(1e-3, 100.0))


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(["tanh", "sigmoid"]), _centre, _width, st.integers(0, 2**32 - 1))
def test_relaxation_lines_hold_on_the_interval(name, c, w, seed):
    l, u = float(c - w / 2), float(c + w / 2)
    if l > u:
        l, u = u, l
    a_lo, b_lo, a_hi, b_hi = (float(v[0]) for v in smooth_relaxation(name, np.array([l]), np.array([u])))
    assert all(np.isfinite([a_lo, b_lo, a_hi, b_hi]))
    assert _violations(name, l, u, a_lo, b_lo, a_hi, b_hi, np.random.default_rng(seed)) == []


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["tanh", "sigmoid"]), st.floats(-10, 10), st.floats(0, 20), st.floats(-0.5, 1.5),
       st.integers(0, 2**32 - 1))
def test_intercepts_hold_for_any_slope(name, l, w, a, seed):
    """Slopes are heuristics: the intercepts must make *any* slope sound (negative and steep too)."""
    u = l + w
    b_hi = float(intercepts(name, np.array([l]), np.array([u]), np.array([a]), upper=True)[0])
    b_lo = float(intercepts(name, np.array([l]), np.array([u]), np.array([a]), upper=False)[0])
    assert _violations(name, l, u, a, b_lo, a, b_hi, np.random.default_rng(seed)) == []


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_the_oracle_catches_a_line_one_step_too_tight(name):
    """The check can fail: moving each intercept toward f until it touches is caught."""
    l, u = np.array([-0.7]), np.array([1.9])
    a_lo, b_lo, a_hi, b_hi = (float(v[0]) for v in smooth_relaxation(name, l, u))
    rng = np.random.default_rng(0)
    assert _violations(name, -0.7, 1.9, a_lo, b_lo, a_hi, b_hi, rng) == []
    assert _violations(name, -0.7, 1.9, a_lo, b_lo, a_hi, b_hi - 1e-3, rng)
    assert _violations(name, -0.7, 1.9, a_lo, b_lo + 1e-3, a_hi, b_hi, rng)


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_narrow_intervals_give_nearly_exact_lines(name):
    """Tightness (not soundness): on a width-1e-4 interval both lines lie within 1e-8 of f."""
    l, u = np.array([0.4]), np.array([0.4001])
    a_lo, b_lo, a_hi, b_hi = (float(v[0]) for v in smooth_relaxation(name, l, u))
    for x in (0.4, 0.40005, 0.4001):
        gap = (a_hi * x + b_hi) - (a_lo * x + b_lo)
        assert 0 <= gap < 1e-8


@pytest.mark.parametrize("act", ["Tanh", "Sigmoid"])
def test_crown_relaxes_tanh_and_sigmoid_instead_of_cutting(act):
    """The rule is used (no node cut) and pays: the output is over 4x tighter than IBP's, while
    every node's kernel value at the sampled points stays inside (exact comparisons)."""
    import nnlemma as nl
    from nnlemma import nn
    from test_crown_float32 import check_crown_f32

    F32 = np.float32
    m = nn.Sequential(nn.Linear(2, 16, seed=1), getattr(nn, act)(), nn.Linear(16, 16, seed=2), getattr(nn, act)(),
                      nn.Linear(16, 1, seed=3))
    g = nl.compile(m, nl.tensor(np.zeros((1, 2), F32))).graph
    lo, hi = np.full((1, 2), 0.2, F32), np.full((1, 2), 0.4, F32)
    out = g.outputs[0]
    res = nl.bounds.crown(g, lo, hi)
    ibp = nl.bounds.ibp(g, lo, hi).env[out]
    assert res.cut_nodes == []
    assert float(res.bounds[out].hi[0, 0] - res.bounds[out].lo[0, 0]) < float(ibp.hi[0, 0] - ibp.lo[0, 0]) / 4
    check_crown_f32(g, lo, hi, res=res, n_random=200)


_EXTREME = [0.0, 5e-324, 1e-310, 1e-300, 1e-8, 0.5, 20.0, 745.0, 1e5, 1e300, float(np.finfo(np.float64).max)]


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_extreme_endpoints_give_sound_lines_or_infinities_never_nan(name):
    """Endpoints from subnormal to the float64 maximum (both signs, in every pair): every finite
    line holds; a non-finite intercept is an infinity, never NaN (the caller then cuts)."""
    ends = sorted({s * v for v in _EXTREME for s in (1.0, -1.0)})
    pairs = [(a, b) for a in ends for b in ends if a <= b]
    l, u = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    rels = smooth_relaxation(name, l, u)
    assert not any(np.isnan(c).any() for c in rels)
    for a in (-5e-324, 0.0, 5e-324, 0.25, 1.0, -3.0):
        for upper in (True, False):
            assert not np.isnan(intercepts(name, l, u, np.full(l.shape, a), upper)).any()
    rng = np.random.default_rng(1)
    for k, (lo, hi) in enumerate(pairs):
        coeffs = [float(c[k]) for c in rels]
        if all(np.isfinite(coeffs)) and hi - lo < 1e6:
            assert _violations(name, lo, hi, *coeffs, rng) == []
