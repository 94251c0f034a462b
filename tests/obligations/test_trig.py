"""sin/cos transcendental-transfer: the spanning points are checked exhaustively against the
kernel on every float32 of small intervals (around critical points, at large arguments), the
generated lemmas are proved, and a claim narrowed by one ulp at an attained end is refuted with a
ground model that replays."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings, strategies as st

from nnlemma.bounds import ibp
from nnlemma.ir import Builder
from nnlemma.kernels import KERNEL_RULES
from nnlemma.verify.boxes import from_ordinal, ordinal
from obligations.fp_transfer import Dom, Gap, generate, transcendental_transfer
from obligations.replay import replay
from obligations.trig import MAX_CRITICAL, critical_points, spanning_points
from solvers.z3_backend import Z3Solver

F32 = np.float32


def every_float(lo: F32, hi: F32) -> np.ndarray:
    return from_ordinal(np.arange(int(ordinal(lo)), int(ordinal(hi)) + 1))


def hull(op, lo, hi):
    points, constants = spanning_points(op, F32(lo), F32(hi))
    vals = [KERNEL_RULES[op](np.array(p)).reshape(()) for p in points] + [F32(c) for c in constants]
    return points, constants, min(vals), max(vals)


def check_exhaustive(op, lo, hi):
    lo, hi = F32(lo), F32(hi)
    xs = every_float(lo, hi)
    assert len(xs) <= 300_000
    ys = KERNEL_RULES[op](xs)
    points, constants, vmin, vmax = hull(op, lo, hi)
    assert all(lo <= p <= hi for p in points)
    if constants:  # the full range: sound, not tight
        assert vmin <= ys.min() and ys.max() <= vmax
    else:  # the points are floats of the interval, so the hull is exactly the kernel's range
        assert vmin == ys.min() and vmax == ys.max(), (op, lo, hi)


def test_around_critical_points_every_float():
    for op, n in (("sin", 1), ("sin", -1), ("sin", 3), ("cos", 2), ("cos", -2), ("cos", 0)):
        c = n * math.pi / 2
        # floats are dense near 0: cos's critical point there gets an interval of ~30 floats
        for half in ((1e-6, 1e-3, 1e-2) if n else (2e-44,)):
            check_exhaustive(op, c - half, c + half)
            check_exhaustive(op, c, c + half)   # one side only: no critical point inside
            check_exhaustive(op, c - half, c)


def test_large_arguments_every_float():
    """Near 1e5 floats are 2^-7 apart: a width-12 interval holds ~1500 of them and ~4 critical
    points, each decided by the 256-bit enclosure."""
    for op in ("sin", "cos"):
        for c in (1e5, -1e5, 3.1e5):
            check_exhaustive(op, c, c + 12)
            assert len(critical_points(op, F32(c), F32(c + 12))) >= 3


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["sin", "cos"]), st.floats(0.05, 40), st.sampled_from([-1, 1]), st.floats(0, 0.015))
def test_random_small_intervals_every_float(op, centre, sign, frac):
    """Widths relative to the centre keep the float count under 2^24·0.015 ≈ 252k (floats below a
    power of two, e.g. just under 1 when sign = -1 and centre = 1, are twice as dense)."""
    check_exhaustive(op, sign * centre, sign * centre + frac * centre)


def test_wide_and_infinite_intervals_use_the_full_range():
    for op in ("sin", "cos"):
        pts, consts = spanning_points(op, F32(-1e30), F32(1e30))
        assert pts == [] and consts == [-1.0, 1.0]
        wide = F32((MAX_CRITICAL + 2) * math.pi)
        assert spanning_points(op, F32(0), wide)[1] == [-1.0, 1.0]
        pts, consts = spanning_points(op, F32(0), F32(np.inf))
        assert [float(p) for p in pts] == [math.inf] and consts == [-1.0, 1.0]  # sin(inf) = NaN


def _graph(op, n):
    b = Builder()
    x = b.input((1, n), "x")
    return b.build([b.eqn(op, [x], name=op)])


def test_generated_lemmas_are_proved():
    lo = np.array([[0, -4, 1.5, -1e5, 0, 7, -1e30]], F32)
    hi = np.array([[2, 4, 1.6, -99990, np.inf, 7, 1e30]], F32)
    for op in ("sin", "cos"):
        g = _graph(op, lo.shape[1])
        items = list(generate(g, ibp(g, lo, hi), "t"))
        assert not [i for i in items if isinstance(i, Gap)]
        assert all(o.kind == "transcendental-transfer" for o in items) and len(items) == lo.shape[1]
        s = Z3Solver()
        for o in items:
            assert s.check(o.violation, 10).status == "unsat", o.id


def test_attained_maximum_narrowed_one_ulp_is_refuted_and_replays():
    """On [1.5, 1.6] sin's kernel maximum is reached next to π/2, not at an end: a claim one ulp
    below it is refuted, while a claim built from the two ends alone would have missed it."""
    lo, hi = F32(1.5), F32(1.6)
    top = KERNEL_RULES["sin"](every_float(lo, hi)).max()
    ends = max(KERNEL_RULES["sin"](np.array([lo, hi])))
    assert ends < top
    below = np.nextafter(top, F32(-np.inf))
    for claim, bad in ((Dom.interval(F32(0), top), False), (Dom.interval(F32(0), below), True)):
        o = transcendental_transfer("sin", Dom.interval(lo, hi), claim, "m", {},
                                    *spanning_points("sin", lo, hi))
        out = Z3Solver().check(o.violation, 10)
        assert out.status == ("sat" if bad else "unsat")
        if bad:
            assert replay(o.replay, out.model)[0]
    nan_in = transcendental_transfer("cos", Dom.interval(lo, hi, True), Dom.interval(F32(-1), F32(1)), "n", {},
                                     *spanning_points("cos", lo, hi))
    assert Z3Solver().check(nan_in.violation, 10).status == "sat"  # NaN propagates
