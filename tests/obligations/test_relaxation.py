"""Relaxation obligations (:mod:`obligations.relaxation`): every linear bound CROWN / alpha-CROWN
substitutes for a relu / leaky_relu element (and every McCormick plane of a product) holds over the
element's input interval — proved by Z3 in QF_LRA — and wrong lines are refuted with models that
replay in exact rationals.

The exact oracle: ``f − line`` is convex piecewise linear with its kink at 0 (f = relu or
leaky_relu with slope s in [0, 1]), so an upper line holds on [l, u] iff it holds at l and u, and a
lower line iff it holds at l, u and (if inside) 0. Z3's verdict must agree with it both ways.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import nnlemma as nl
from nnlemma import nn
from nnlemma.bounds.crown import crown
from nnlemma.bounds.linrelax import relu_relaxation
from nnlemma.bounds.optimize import alpha_crown
from nnlemma.ir import Builder
from obligations.fp_transfer import Gap
from obligations.relaxation import (Line, McCormick, Plane, ReluRelax, crown_relaxation_run,
                                    crown_relaxations, mccormick_obligation, obligations_for,
                                    relaxation_obligations, relu_obligation, replay_relaxation)
from obligations.replay import replay
from solvers.z3_backend import Z3Solver

F32 = np.float32
Z3 = Z3Solver()
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- helpers ------------------------------------------------------------------------------------

def _f(x: Fraction, s: Fraction) -> Fraction:
    return x if x > 0 else s * x


def oracle(l, u, s, slope, icpt, side) -> bool:
    """Exactly: does the line hold on [l, u]?"""
    l, u, s, a, b = (Fraction(float(v)) for v in (l, u, s, slope, icpt))
    pts = [l, u] + ([Fraction(0)] if l < 0 < u else [])
    if side == "lower":
        return all(a * x + b <= _f(x, s) for x in pts)
    return all(a * x + b >= _f(x, s) for x in pts)


def solve(ob):
    out = Z3.check(ob.violation, 20)
    assert out.status in ("sat", "unsat"), (ob.id, out)
    if out.status == "sat":
        ok, why = replay(ob.replay, out.model)    # the dispatcher of obligations.replay
        assert ok, (ob.id, ob.statement, why, out.model)
        assert replay_relaxation(ob.replay, out.model)[0]
    return out.status


def rec(l, u, s=0.0, lower=None, upper=None, op=None):
    """The record for relu_relaxation's lines on [l, u] (or the given replacement lines)."""
    a_lo, b_lo, a_hi, b_hi = (float(v[0]) for v in relu_relaxation(np.array([l], np.float64),
                                                                   np.array([u], np.float64), None, s))
    assert b_lo == 0.0  # the backward pass ignores b_lo: the lower line it uses is a_lo·x
    return ReluRelax("n", op or ("relu" if s == 0 else "leaky_relu"), (0,), float(l), float(u), float(s),
                     lower or Line(a_lo, 0.0), upper or Line(a_hi, b_hi))


def check_line(r: ReluRelax, side: str) -> str:
    """Z3 on the side's obligation; must agree with the exact oracle."""
    ob = relu_obligation(r, side, f"t/{side}")
    assert ob.kind == "relaxation" and ob.logic == "QF_LRA"
    line = r.lower if side == "lower" else r.upper
    want = "unsat" if oracle(r.l, r.u, r.negative_slope, line.slope, line.intercept, side) else "sat"
    got = solve(ob)
    assert got == want, (r, side, got)
    return got


def _down(v):
    return float(np.nextafter(v, -np.inf))


def _up(v):
    return float(np.nextafter(v, np.inf))


def tight_upper_intercept(l, u, s, slope) -> Fraction:
    l, u, s, a = (Fraction(float(v)) for v in (l, u, s, slope))
    return max(_f(l, s) - a * l, _f(u, s) - a * u)


def float_below(q: Fraction) -> float:
    """The largest float64 strictly below the rational q."""
    v = float(q)
    while Fraction(v) >= q:
        v = _down(v)
    return v


# ---- intervals --------------------------------------------------------------------------------

_mag64 = st.floats(min_value=5e-324, max_value=1.7e308, allow_nan=False, allow_infinity=False)
_mag32 = st.floats(min_value=float(np.finfo(F32).smallest_subnormal), max_value=float(np.finfo(F32).max),
                   width=32, allow_subnormal=True)
_small = st.floats(min_value=1e-3, max_value=1e3)


@st.composite
def interval(draw):
    """[l, u]: crossing zero (from tiny to huge magnitudes), degenerate, with l or u (±)0, or
    one-signed."""
    kind = draw(st.sampled_from(["cross", "cross", "cross32", "point", "l0", "u0", "pos", "neg"]))
    mag = _mag32 if kind == "cross32" else st.one_of(_small, _mag64, _mag32)
    a, b = draw(mag), draw(mag)
    if kind in ("cross", "cross32"):
        return -a, b
    if kind == "point":
        v = draw(st.sampled_from([a, -a, 0.0, -0.0]))
        return v, v
    if kind == "l0":
        return draw(st.sampled_from([0.0, -0.0])), b
    if kind == "u0":
        return -a, draw(st.sampled_from([0.0, -0.0]))
    lo, hi = sorted((a, b))
    return (lo, hi) if kind == "pos" else (-hi, -lo)


SLOPES = st.sampled_from([0.0, 0.0, float(F32(0.01)), float(F32(0.1)), 0.5, 1.0])


# ---- the lines relu_relaxation returns are proved ------------------------------------------------

@SETTINGS
@given(interval(), SLOPES, st.one_of(st.none(), st.floats(-0.5, 1.5), st.sampled_from([0.0, 1.0, 1e-130])))
def test_relu_relaxation_lines_are_proved(lu, s, alpha):
    l, u = lu
    a_lo, b_lo, a_hi, b_hi = (float(np.asarray(v).reshape(-1)[0]) for v in relu_relaxation(
        np.array([l]), np.array([u]), None if alpha is None else np.array([alpha]), s))
    r = ReluRelax("n", "relu" if s == 0 else "leaky_relu", (0,), l, u, s, Line(a_lo, b_lo), Line(a_hi, b_hi))
    assert b_lo == 0.0
    if not np.isfinite([a_lo, a_hi, b_hi]).all():
        # a NaN chord (u − l and u − s·l overflow) or an intercept rounded up past the float64
        # maximum: only for float64 endpoints near the overflow threshold (real semantics); the
        # generator reports a gap instead of a formula
        assert max(abs(l), abs(u)) > 2.0 ** 1020, (l, u, s, a_lo, a_hi, b_hi)
        assert np.isfinite(a_lo)
        items = list(obligations_for([r]))
        assert any(isinstance(i, Gap) for i in items)
        assert check_line(r, "lower") == "unsat"
        return
    assert check_line(r, "lower") == "unsat"
    assert check_line(r, "upper") == "unsat"


def _step_oracle(l, u, slope, icpt, side) -> bool:
    """Exactly: does the line hold against step on [l, u]? (step is 0 on [l, min(u, 0)] and 1 on
    (0, u]; a line's extremes on each piece are at its ends, the open end 0⁺ as a limit.)"""
    l, u, a, b = (Fraction(float(v)) for v in (l, u, slope, icpt))
    ok = True
    if l <= 0:  # piece where step = 0: ends l and min(u, 0)
        for x in (l, min(u, Fraction(0))):
            ok &= (a * x + b <= 0) if side == "lower" else (a * x + b >= 0)
    if u > 0:   # piece where step = 1: ends max(l, 0) (approached from above) and u
        for x in (max(l, Fraction(0)), u):
            ok &= (a * x + b <= 1) if side == "lower" else (a * x + b >= 1)
    return ok


@SETTINGS
@given(interval())
def test_step_relaxation_lines_are_proved_and_agree_with_the_oracle(lu):
    from nnlemma.bounds.linrelax import step_relaxation
    l, u = lu
    a_lo, b_lo, a_hi, b_hi = (float(np.asarray(v).reshape(-1)[0]) for v in step_relaxation(np.array([l]), np.array([u])))
    assert 0 <= a_lo and 0 <= a_hi and np.isfinite([a_lo, a_hi]).all()
    r = ReluRelax("n", "step", (0,), l, u, 0.0, Line(a_lo, b_lo), Line(a_hi, b_hi))
    for side in ("lower", "upper"):
        ln = r.lower if side == "lower" else r.upper
        assert _step_oracle(l, u, ln.slope, ln.intercept, side)
        assert solve(relu_obligation(r, side, "t")) == "unsat"
    if l < 0 < u and 0 < a_lo < 1e300:  # the first float64 slope above 1/u: the line passes 1 at u
        q = 1 / Fraction(float(u))
        over = -float_below(-q)
        steep = ReluRelax("n", "step", (0,), l, u, 0.0, Line(over, 0.0), Line(a_hi, b_hi))
        assert not _step_oracle(l, u, steep.lower.slope, 0.0, "lower")
        assert solve(relu_obligation(steep, "lower", "t")) == "sat"


# ---- mutations are refuted, and the models replay --------------------------------------------------

def test_chord_slope_one_ulp_down_is_refuted():
    """The chord slope one float64 ulp lower with the same intercept: where ulp(slope)·u exceeds
    the intercept's outward-rounding slack the line cuts below f at u (found by an exact search;
    the oracle check inside check_line confirms each case)."""
    for l, u, s in ((-8.901896217139438e-05, 1.6066840887069702, 0.0),
                    (-1.152312779595377e-05, 0.011181997135281563, 0.0),
                    (-1.5253737728926353e-05, 3.605900526046753, float(F32(0.1))),
                    (-1.6002897609723732e-05, 0.0072060804814100266, float(F32(0.01)))):
        r = rec(l, u, s)
        assert check_line(r, "upper") == "unsat"
        bad = rec(l, u, s, upper=Line(_down(r.upper.slope), r.upper.intercept))
        assert check_line(bad, "upper") == "sat"
    # where the slack covers one ulp of the slope, the mutated line still holds (and is proved)
    r = rec(-2.0 ** -40, 1.0)
    assert check_line(rec(-2.0 ** -40, 1.0, upper=Line(_down(r.upper.slope), r.upper.intercept)), "upper") == "unsat"


def test_lower_slope_outside_unit_interval_is_refuted():
    for l, u, s in ((-1.0, 2.0, 0.0), (-3.0, 0.25, float(F32(0.1))), (0.5, 2.0, 0.0), (-2.0, -1.0, 0.0)):
        r = rec(l, u, s)
        assert check_line(r, "lower") == "unsat"
        if u > 0:  # slope above 1 is above relu(u) = u
            for a in (_up(1.0), 1.5):
                assert check_line(rec(l, u, s, lower=Line(a, 0.0)), "lower") == "sat"
        if l < 0:  # slope below s is above s·l at l (for relu: any negative slope)
            for a in (_down(s) if s else -5e-324, s - 0.25):
                assert check_line(rec(l, u, s, lower=Line(a, 0.0)), "lower") == "sat"


def test_intercepts_nudged_the_wrong_way_are_refuted():
    for l, u, s in ((-1.0, 1.0, 0.0), (-6.81992769241333, 3.655687805803609e-06, 0.0),
                    (-1.4573465989542456e-08, 1.1594024726946373e-06, float(F32(0.1))), (0.0, 3.0, 0.0),
                    (-3.0, 0.0, float(F32(0.01))), (-2.0, -2.0, 0.5)):
        r = rec(l, u, s)
        # the lower line goes through the origin: one ulp up (the smallest subnormal) breaks it
        # at 0 when 0 is in [l, u], and everywhere for stable elements (slope 1 or s exactly)
        assert check_line(rec(l, u, s, lower=Line(r.lower.slope, 5e-324)), "lower") == "sat"
        # the upper intercept one ulp below the tight (exact) value
        b = float_below(tight_upper_intercept(l, u, s, r.upper.slope))
        assert r.upper.intercept > b
        assert check_line(rec(l, u, s, upper=Line(r.upper.slope, b)), "upper") == "sat"
        # the code's own intercept one ulp down: refuted exactly when the oracle says so
        check_line(rec(l, u, s, upper=Line(r.upper.slope, _down(r.upper.intercept))), "upper")
    # and one case where that is a genuine one-ulp failure (b_hi is tight to the ulp there)
    l, u = -6.81992769241333, 3.655687805803609e-06
    r = rec(l, u)
    assert check_line(rec(l, u, upper=Line(r.upper.slope, _down(r.upper.intercept))), "upper") == "sat"


@SETTINGS
@given(interval(), SLOPES, st.sampled_from(["slope-", "slope+", "icpt-", "icpt+", "nearest", "alpha",
                                            "lo-icpt"]), st.floats(-0.5, 1.5))
def test_z3_agrees_with_the_exact_oracle_on_mutated_lines(lu, s, how, alpha):
    """Z3's verdict equals the exact endpoint/kink check for perturbed lines, both ways; every sat
    model replays."""
    l, u = lu
    r = rec(l, u, s)
    assume(np.isfinite([r.upper.slope, r.upper.intercept]).all())  # else a gap (tested above)
    lo, up = r.lower, r.upper
    if how == "slope-":
        up = Line(_down(up.slope), up.intercept)
    elif how == "slope+":
        lo = Line(_up(lo.slope), 0.0)
    elif how == "icpt-":
        up = Line(up.slope, _down(up.intercept))
    elif how == "icpt+":
        lo = Line(lo.slope, _up(0.0))
    elif how == "nearest":  # the upper intercept without directed rounding
        with np.errstate(all="ignore"):
            b = max(s * l - up.slope * l, u - up.slope * u) if l < 0 < u else up.intercept
        if np.isfinite(b):
            up = Line(up.slope, float(b))
    else:
        lo = Line(alpha, 0.0) if how == "alpha" else Line(lo.slope, -1e-300)
    m = rec(l, u, s, lower=lo, upper=up)
    assume(np.isfinite([lo.slope, lo.intercept, up.slope, up.intercept]).all())
    check_line(m, "lower")
    check_line(m, "upper")


def test_round_to_nearest_intercept_is_refuted():
    """Dropping the directed rounding of b_hi is a real bug: refuted on an example."""
    l, u, s = -1.4573465989542456e-08, 1.1594024726946373e-06, float(F32(0.1))
    r = rec(l, u, s)
    b = max(s * l - r.upper.slope * l, u - r.upper.slope * u)
    assert check_line(rec(l, u, s, upper=Line(r.upper.slope, b)), "upper") == "sat"


# ---- CROWN on networks: every relaxation used is proved -------------------------------------------

def _mlp(widths, seed, act=None):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1], seed=seed + i))
        if i < len(widths) - 2:
            layers.append(act() if act else nn.ReLU())
    return nl.compile(nn.Sequential(*layers), nl.tensor(np.zeros((1, widths[0]), F32))).graph


def _all_proved(graph, lo, hi, alpha=False, semantics="float32"):
    run = crown_relaxation_run(graph, lo, hi, semantics, alpha=alpha)
    ref = alpha_crown(graph, lo, hi, semantics) if alpha else crown(graph, lo, hi, semantics)
    assert run.status == ref.status == "ok"
    assert run.optimized == (alpha and ref.optimized)
    for o in graph.outputs:  # the mirrored run is CROWN's run, bit for bit
        assert np.array_equal(run.outputs[o].lo, ref.bounds[o].lo)
        assert np.array_equal(run.outputs[o].hi, ref.bounds[o].hi)
    obs = list(relaxation_obligations(graph, lo, hi, alpha=alpha, semantics=semantics))
    assert len({ob.formula_hash for ob in obs}) == len(obs) == len({ob.id for ob in obs})
    assert all(solve(ob) == "unsat" for ob in obs)
    return run, obs


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 1000), st.sampled_from(["relu", "leaky"]), st.floats(0.01, 2.0), st.booleans())
def test_random_mlp_relaxations_are_proved(seed, act, width, alpha):
    g = _mlp([4, 8, 8, 3], seed, (lambda: nn.LeakyReLU(0.1)) if act == "leaky" else None)
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(1, 4)).astype(F32)
    lo, hi = (c - F32(width)).astype(F32), (c + F32(width)).astype(F32)
    run, obs = _all_proved(g, lo, hi, alpha=alpha)
    ops = {r.op for r in run.relaxations}
    assert ops == {"relu" if act == "relu" else "leaky_relu"}
    assert obs


def test_alpha_crown_slopes_are_recorded_and_proved():
    g = _mlp([3, 12, 12, 12, 3], 51)
    lo, hi = np.full((1, 3), -1, F32), np.full((1, 3), 1, F32)
    run, obs = _all_proved(g, lo, hi, alpha=True)
    assert run.optimized
    phases = {r.phase for r in run.relaxations}
    assert "crown" in phases and "alpha row 0" in phases
    # the optimiser moved some unstable slope away from CROWN's 0/1 choice
    assert any(r.l < 0 < r.u and 0 < r.lower.slope < 1 for r in run.relaxations if r.phase != "crown")


def test_real_semantics_and_huge_boxes():
    g = _mlp([3, 6, 6, 2], 9)
    _all_proved(g, np.full((1, 3), -1e30), np.full((1, 3), 1e30), semantics="real")
    _all_proved(g, np.full((1, 3), -1e-30, F32), np.full((1, 3), 2e-30, F32))


def test_relu_input_that_is_also_an_output():
    """A relaxed node's input that is a graph output is re-bounded by the output passes: the
    relaxations are recorded with the interval they were computed on."""
    b = Builder()
    x = b.input((1, 3), "x")
    rng = np.random.default_rng(3)
    z1 = b.eqn("linear", [x, b.param(rng.normal(size=(5, 3))), b.param(rng.normal(size=5))])
    h1 = b.eqn("relu", [z1])
    z2 = b.eqn("linear", [h1, b.param(rng.normal(size=(5, 5)))])
    h2 = b.eqn("relu", [z2])
    y = b.eqn("linear", [h2, b.param(rng.normal(size=(2, 5)))])
    g = b.build([z2, y])
    _all_proved(g, np.full((1, 3), -1, F32), np.full((1, 3), 1, F32))


def test_mccormick_planes_are_proved_and_a_wrong_intercept_refuted():
    b = Builder()
    x = b.input((1, 3), "x")
    rng = np.random.default_rng(5)
    z = b.eqn("linear", [x, b.param(rng.normal(size=(8, 3))), b.param(rng.normal(size=8))])
    h = b.eqn("relu", [z])
    left = b.eqn("slice", [h], {"index": ((None, None, None), (0, 4, None))})
    right = b.eqn("slice", [z], {"index": ((None, None, None), (4, 8, None))})
    p = b.eqn("mul", [right, left])
    y = b.eqn("linear", [p, b.param(rng.normal(size=(2, 4)))])
    g = b.build([y])
    run, obs = _all_proved(g, np.full((1, 3), -1, F32), np.full((1, 3), 0.5, F32))
    mc = [r for r in run.relaxations if isinstance(r, McCormick)]
    assert mc and any(ob.op == "mul" for ob in obs)
    r = next(m for m in mc if m.a[0] != 0)
    la, lb, ub = (Fraction(v) for v in (r.a[0], r.b[0], r.b[1]))
    # intercepts one float64 above / below the tight values −la·lb / −la·ub
    lo_bad = float(-la * lb)
    while Fraction(lo_bad) <= -la * lb:
        lo_bad = _up(lo_bad)
    hi_bad = float_below(-la * ub)
    for side, plane in (("lower", Plane(r.lower.ca, r.lower.cb, lo_bad)),
                        ("upper", Plane(r.upper.ca, r.upper.cb, hi_bad))):
        bad = McCormick(r.node, r.index, r.a, r.b, plane if side == "lower" else r.lower,
                        plane if side == "upper" else r.upper)
        assert solve(mccormick_obligation(bad, side, "t/mc")) == "sat"
        assert solve(mccormick_obligation(r, side, "t/mc")) == "unsat"


def test_no_relaxation_for_cut_ops():
    """clamp is cut at its interval: no relaxation to prove."""
    g = nl.compile(nn.Sequential(nn.Linear(3, 4, seed=1), nn.Hardtanh(-0.5, 0.5), nn.Linear(4, 2, seed=2)),
                   nl.tensor(np.zeros((1, 3), F32))).graph
    assert list(crown_relaxations(g, np.full((1, 3), -1, F32), np.full((1, 3), 1, F32))) == []


def test_replay_rejects_models_that_are_not_violations():
    r = rec(-1.0, 2.0)
    ob = relu_obligation(r, "upper", "t/u")
    assert not replay(ob.replay, {"x": Fraction(1, 2)})[0]          # the line holds there
    assert not replay(ob.replay, {"x": Fraction(3)})[0]             # outside [l, u]
    assert not replay(ob.replay, {})[0]


def test_acas_boxes(shared_benchmarks):
    """ACAS Xu 1_1 over prop_1's box and two random sub-boxes: every relaxation proved."""
    from nnlemma.model_io import load_model
    from nnlemma.vnnlib import load
    d = shared_benchmarks / "vnncomp2021" / "acasxu"
    g = load_model(d / "ACASXU_run2a_1_1_batch_2000.onnx")
    lo, hi = load(d / "prop_1.vnnlib").cases[0].box.float32_bounds()
    shape = g.inputs[0].shape
    rng = np.random.default_rng(0)
    boxes = [(lo, hi)]
    for _ in range(2):
        a, b = (lo + (hi - lo) * rng.random(lo.shape)).astype(F32), (lo + (hi - lo) * rng.random(lo.shape)).astype(F32)
        boxes.append((np.minimum(a, b), np.maximum(a, b)))
    for blo, bhi in boxes:
        run, obs = _all_proved(g, blo.reshape(shape), bhi.reshape(shape))
        assert len(run.relaxations) == 300 and len(obs) > 0
