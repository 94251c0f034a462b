"""tanh/sigmoid relaxation obligations (:mod:`obligations.smooth_relax`): the lines CROWN used on
networks are proved from MPFR enclosures; a line moved across the function is refuted at a point
that the exact check confirms; an undecidable line stays unknown (never refuted, never an
encoder disagreement)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnlemma as nl
from nnlemma import nn
from nnlemma.bounds import crown
from nnlemma.bounds.smooth import smooth_relaxation
from obligations.fp_transfer import Gap
from obligations.relaxation import crown_relaxation_run, relaxation_obligations
from obligations.replay import replay
from obligations.smooth_relax import SmoothRelax, enclose_f, smooth_obligation
from solvers.discharge import _status
from solvers.outcome import Outcome
from solvers.z3_backend import Z3Solver

F32 = np.float32
Z3 = Z3Solver()


def record(op, l, u, lower=None, upper=None) -> SmoothRelax:
    a_lo, b_lo, a_hi, b_hi = (float(np.asarray(v).reshape(-1)[0]) for v in
                              smooth_relaxation(op, np.array([l]), np.array([u])))
    return SmoothRelax("n", op, (0, 0), float(l), float(u), lower or (a_lo, b_lo), upper or (a_hi, b_hi))


INTERVALS = [(-2.0, -0.5), (0.25, 3.0), (-1.5, 2.0), (-0.3, 0.3), (1.0, 1.0), (0.0, 0.0), (-0.0, 4.0),
             (-40.0, -3.0), (5.0, 30.0), (-1e-9, 2e-9), (-700.0, 700.0)]


@pytest.mark.parametrize("op", ["tanh", "sigmoid"])
@pytest.mark.parametrize("l,u", INTERVALS)
def test_smooth_relaxation_lines_are_proved(op, l, u):
    r = record(op, l, u)
    for side in ("lower", "upper"):
        ob = smooth_obligation(r, side, f"t/{side}")
        assert ob.kind == "relaxation" and ob.logic == "QF_LRA"
        assert Z3.check(ob.violation, 20).status == "unsat", (op, l, u, side, ob.statement)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["tanh", "sigmoid"]), st.floats(-20, 20), st.floats(0, 10))
def test_random_intervals_are_proved(op, c, w):
    r = record(op, c, c + w)
    for side in ("lower", "upper"):
        assert Z3.check(smooth_obligation(r, side, "t").violation, 20).status == "unsat"


@pytest.mark.parametrize("op", ["tanh", "sigmoid"])
def test_line_moved_across_the_function_is_refuted_at_a_point(op):
    """Raise the lower line's intercept so it passes above f at the concave part's end u: the
    solver's model fails the argument, and the replay confirms a genuine violation at one of the
    argument's points (an end of the chord, which the raised line now passes above) from the
    enclosure of f there alone."""
    l, u = 0.5, 2.0
    r = record(op, l, u)
    a, _ = r.lower
    f_lo, f_hi = enclose_f(op, u)
    b = float(f_hi - Fraction(a) * Fraction(u)) + 1e-9   # a·u + b > f(u)
    bad = smooth_obligation(record(op, l, u, lower=(a, b)), "lower", "bad")
    out = Z3.check(bad.violation, 20)
    assert out.status == "sat"
    ok, why = replay(bad.replay, out.model)
    assert ok is True and ("x = 2," in why or "x = 1/2," in why)
    assert _status(out, {"replay": bad.replay})[0] == "refuted"
    # the upper line pushed below f at the convex part's end l < 0
    l, u = -2.0, -0.5
    r = record(op, l, u)
    a, _ = r.upper
    f_lo, _ = enclose_f(op, l)
    b = float(f_lo - Fraction(a) * Fraction(l)) - 1e-9
    bad = smooth_obligation(record(op, l, u, upper=(a, b)), "upper", "bad")
    out = Z3.check(bad.violation, 20)
    assert out.status == "sat" and replay(bad.replay, out.model)[0] is True


def test_undecided_line_is_unknown_not_refuted():
    """With enclosures at 40 bits (instead of 128; the point 2 is exact), an intercept strictly inside the enclosure of
    g at an end: the argument cannot decide it, and no point of it violates the line provably, so
    the status is unknown — not refuted, not an encoder disagreement."""
    op, l, u, prec = "tanh", 2.0, 2.0, 40  # one point: the only fact is g(2) >= b
    a, _ = record(op, l, u).lower
    f_lo, f_hi = enclose_f(op, u, prec)
    au = Fraction(a) * Fraction(u)
    b = float((f_lo + f_hi) / 2 - au)
    assert f_lo - au < Fraction(b) < f_hi - au
    ob = smooth_obligation(record(op, l, u, lower=(a, b)), "lower", "undecided", prec=prec)
    out = Z3.check(ob.violation, 20)
    assert out.status == "sat"
    ok, why = replay(ob.replay, out.model)
    assert ok is None and "inconclusive" in why
    assert _status(out, {"replay": ob.replay}) == ("unknown", why)
    assert _status(Outcome("unsat", 0.0, "z3"), {"replay": ob.replay})[0] == "proved"


def _net(act, seed):
    layers = [nn.Linear(3, 6, seed=seed), act(), nn.Linear(6, 6, seed=seed + 1), act(), nn.Linear(6, 2, seed=seed + 2)]
    return nl.compile(nn.Sequential(*layers), nl.tensor(np.zeros((1, 3), F32))).graph


@pytest.mark.parametrize("act", [nn.Tanh, nn.Sigmoid])
@pytest.mark.parametrize("semantics", ["float32", "real"])
def test_crown_lines_on_networks_are_recorded_and_proved(act, semantics):
    g = _net(act, 4)
    lo, hi = np.full((1, 3), -0.8, F32), np.full((1, 3), 0.6, F32)
    run = crown_relaxation_run(g, lo, hi, semantics)
    ref = crown(g, lo, hi, semantics)
    for o in g.outputs:  # the mirrored run is CROWN's, bit for bit
        assert np.array_equal(run.outputs[o].lo, ref.bounds[o].lo)
        assert np.array_equal(run.outputs[o].hi, ref.bounds[o].hi)
    assert {r.op for r in run.relaxations} == {"tanh" if act is nn.Tanh else "sigmoid"}
    obs = list(relaxation_obligations(g, lo, hi, semantics=semantics))
    assert obs and not [o for o in obs if isinstance(o, Gap)]
    for ob in obs:
        assert Z3.check(ob.violation, 20).status == "unsat", ob.statement
