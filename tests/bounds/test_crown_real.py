"""Soundness of CROWN in the real semantics (``crown(..., "real")`` and ``backward`` after
``prepare(..., "real")`` + ``tighten``) against exact real arithmetic. No tolerance anywhere.

The oracle is :mod:`exact_eval`: Fractions for every rational op (weights are the exact rationals
of their float32 values), mpmath interval arithmetic at 300 bits for tanh/sigmoid/exp/sin/cos/sqrt.
Inputs are rational points of the real box (:func:`real_support.real_points`: corners, points
such as lo + (hi − lo)/3 that are neither float32 nor float64 numbers, 0 and ±1/3 where they
lie in the box, random rationals with odd denominators).

Claims:

1. every node's exact value lies in its float64 interval (exact comparison), or the value does not
   exist (division by 0, sqrt of a negative number) and the NaN flag is set;
2. for random coefficient rows Λ (dense, one-hot, differences of one-hots, sparse, small integers,
   scaled, cancelling), ``Σ Λ·z`` computed exactly is >= the ``backward`` lower bound. Real
   semantics has no float32 rounding terms, so on degenerate boxes the bound is tight up to the
   float64 slack alone: these checks test the float64 error accounting of the backward pass.

Batches: the graph rebuilt with batch B, box b in row b, row b of the input at a point of box b.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import f32_support as f32s
from nnlemma.bounds import backward as backward_mod
from nnlemma.bounds import common as common_mod
from nnlemma.bounds import ibp
from nnlemma.bounds.backward import backward
from nnlemma.bounds.crown import crown, prepare, tighten
from nnlemma.bounds.linrelax import relu_relaxation
from nnlemma.ir import Builder, rebuild

from exact_eval import check_real
from nnlemma.exact import UNDEF, UNSURE, _ends, exact_eval, s_add, s_mul
from real_support import BOX_KINDS, get_net as get_real_net, make_box, real_points

F32 = np.float32
REAL_NETS = ["pwl", "smooth", "binary", "conv", "matmul_bn"]     # real_support catalog
CROWN_NETS = ["deep_relu", "deep_leaky", "cut_chain", "product", "crown_conv", "crown_movement", "broadcast",
              "crown_misc"]


def net(name):
    return get_real_net(name) if name in REAL_NETS else f32s.get_net(name)


class _Env:
    """A CrownResult seen as a BoundsResult (``check_real`` reads ``.env``)."""

    def __init__(self, bounds):
        self.env = bounds


# ---------------------------------------------------------------------------------------------
# points of a batch of boxes


def batch_points(graph, los, his, rng, n_random=4, max_corners=16, points=None):
    """Input lists (one object array ``[B, ...]`` per graph input) at rational points: point i of
    box b in row b (boxes with fewer points repeat theirs). ``points`` (per box, flat lists) may
    be given instead of sampled."""
    B = graph.inputs[0].shape[0]
    per_b = []
    for b in range(B):
        flo = np.concatenate([np.asarray(l[b], np.float64).reshape(-1) for l in los])
        fhi = np.concatenate([np.asarray(h[b], np.float64).reshape(-1) for h in his])
        per_b.append(points[b] if points is not None else real_points(flo, fhi, rng, n_random, max_corners))
    n = max(len(p) for p in per_b)
    out = []
    for i in range(n):
        xs, off = [], 0
        for v in graph.inputs:
            k = int(np.prod(v.shape[1:]))
            arr = np.empty((B, k), dtype=object)
            for b in range(B):
                p = per_b[b][i % len(per_b[b])]
                arr[b] = p[off:off + k]
            xs.append(arr.reshape(v.shape))
            off += k
        out.append(xs)
    return out


def _lists(lo, hi):
    return (lo if isinstance(lo, list) else [lo]), (hi if isinstance(hi, list) else [hi])


def _one(xs):
    return xs[0] if len(xs) == 1 else list(xs)


# ---------------------------------------------------------------------------------------------
# claim 1: crown(..., "real") intervals hold the exact values


def check_crown_real(graph, lo, hi, *, seed=0, n_random=4, max_corners=16, points=None):
    los, his = _lists(lo, hi)
    res = crown(graph, _one(los), _one(his), "real")
    assert res.status == "ok", res.reason
    for vid, iv in res.bounds.items():
        assert iv.lo.dtype == np.float64 and iv.hi.dtype == np.float64, vid
    fails, unsure = [], 0
    for xs in batch_points(graph, los, his, np.random.default_rng(seed), n_random, max_corners, points):
        f, u = check_real(graph, _Env(res.bounds), xs)
        unsure += u
        fails += [f"{m}; input {[[str(v) for v in x.reshape(-1)] for x in xs]}" for m in f[:4]]
    assert not fails, "UNSOUND real CROWN:\n" + "\n".join(fails[:12])
    return res, unsure


# ---------------------------------------------------------------------------------------------
# claim 2: backward() lower bounds, exactly


def _exact_dot(lam_row, z_row):
    """Σ lam·z exactly: a Fraction, an mpmath interval, or UNDEF/UNSURE."""
    acc = Fraction(0)
    for c, v in zip(lam_row.tolist(), z_row.tolist()):
        if c == 0:
            continue
        if v is UNDEF or v is UNSURE:
            return v
        acc = s_add(acc, s_mul(Fraction(c), v))
    return acc


def backward_real_failures(descr, lam, lb, z, limit=8):
    """``lam`` [R, B, ...], ``lb`` [R, B], exact values ``z`` (object ``[B, ...]``)."""
    R, B = lam.shape[:2]
    lam2 = lam.reshape(R, B, -1)
    z2 = np.broadcast_to(z, lam.shape[1:]).reshape(B, -1)
    fails, unsure = [], 0
    for r in range(R):
        for b in range(B):
            bound = float(lb[r, b])
            if bound == -np.inf:
                continue
            val = _exact_dot(lam2[r, b], z2[b])
            if np.isnan(bound):
                if val is UNDEF:
                    continue
                fails.append(f"{descr}: row {r}, batch {b}: the lower bound is NaN (exact Λ·z {val})")
            elif val is UNSURE:
                unsure += 1
            elif val is UNDEF:
                fails.append(f"{descr}: row {r}, batch {b}: finite lower bound {bound!r} where Λ·z is undefined")
            elif isinstance(val, Fraction):
                if not Fraction(bound) <= val:
                    fails.append(f"{descr}: row {r}, batch {b}: lower bound {bound!r} > exact Λ·z {float(val)!r}")
            else:
                a, c = _ends(val)
                if bound > c:
                    fails.append(f"{descr}: row {r}, batch {b}: lower bound {bound!r} > exact Λ·z in [{a}, {c}]")
                elif bound > a:
                    unsure += 1
            if len(fails) >= limit:
                return fails, unsure
    return fails, unsure


def check_backward_real(graph, lo, hi, *, seed=0, n_random=2, max_corners=4, targets=None, max_targets=3,
                        kinds=None, points=None):
    los, his = _lists(lo, hi)
    ctx, reason = prepare(graph, _one(los), _one(his), "real")
    assert ctx is not None, reason
    tighten(ctx)
    rng = np.random.default_rng(seed)
    descr = {e.out.id: e.describe() for e in graph.equations}
    tg = targets or f32s.default_targets(graph, ctx, max_targets)
    rows = {t: f32s.lam_rows(rng, ctx.B, ctx.lshape(t)[1:], **({} if kinds is None else {"kinds": kinds})) for t in tg}
    lbs = {t: backward(ctx, t, rows[t].copy()) for t in tg}
    fails, unsure = [], 0
    for xs in batch_points(graph, los, his, rng, n_random, max_corners, points):
        env = exact_eval(graph, xs)
        for t in tg:
            f, u = backward_real_failures(descr.get(t, f"%{t}"), rows[t], lbs[t], env[t])
            fails += f
            unsure += u
    assert not fails, "UNSOUND real CROWN backward:\n" + "\n".join(fails[:12])
    return ctx, unsure


# ---------------------------------------------------------------------------------------------
# the catalogs


DEFAULT_KINDS = ["non_f32", "degenerate", "straddle0"]


@pytest.mark.parametrize("kind", DEFAULT_KINDS)
@pytest.mark.parametrize("name", CROWN_NETS)
def test_real_crown_sound_on_crown_catalog(name, kind):
    g = net(name)
    lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(abs(hash((name, kind))) % 2**32))
    small = name in ("crown_conv", "cut_chain")
    check_crown_real(g, lo, hi, seed=1, n_random=1 if small else 3, max_corners=4 if small else 8)


@pytest.mark.parametrize("kind", ["random", "huge_mixed", "huge", "tiny", "zeros"])
def test_real_crown_sound_other_boxes(kind):
    g = net("deep_relu")
    lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(3))
    check_crown_real(g, lo, hi, seed=1, n_random=2, max_corners=8)


@pytest.mark.parametrize("kind", ["random", "degenerate", "straddle0"])
@pytest.mark.parametrize("name", REAL_NETS)
def test_real_crown_sound_on_real_catalog(name, kind):
    g = net(name)
    lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(abs(hash((name, kind, 2))) % 2**32))
    small = name == "conv"
    check_crown_real(g, lo, hi, seed=2, n_random=1 if small else 3, max_corners=4 if small else 8)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", BOX_KINDS)
@pytest.mark.parametrize("name", CROWN_NETS + REAL_NETS)
def test_real_crown_all_kinds_slow(name, kind, seed):
    g = net(name)
    lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(seed))
    check_crown_real(g, lo, hi, seed=seed, n_random=6, max_corners=16)
    check_backward_real(g, lo, hi, seed=seed, n_random=2, max_targets=4)


@pytest.mark.parametrize("name", ["deep_relu", "deep_leaky", "product", "crown_movement", "broadcast", "pwl",
                                  "matmul_bn"])
def test_real_backward_exact(name):
    """backward() rows on degenerate boxes at non-float32 points (1/3-ish), where only the float64
    slack separates the bound from the exact value, and on ordinary boxes."""
    g = net(name)
    rng = np.random.default_rng(31)
    for kind in ("non_f32", "degenerate", "random"):
        lo, hi = make_box(kind, g.inputs[0].shape, rng)
        check_backward_real(g, lo, hi, seed=3)
    third = np.full(g.inputs[0].shape, 1 / 3)
    check_backward_real(g, third, third, points=[[[Fraction(1, 3)] * int(np.prod(g.inputs[0].shape))]])


def test_real_degenerate_box_at_non_float_points():
    """A box that is one non-float64 rational point, given by outward-rounded float64 endpoints:
    the exact value at the rational itself must be inside."""
    g = net("deep_relu")
    q = [Fraction(1, 3), Fraction(-2, 7), Fraction(5, 11)]
    lo = np.array([[np.nextafter(float(v), -np.inf) for v in q]])
    hi = np.array([[np.nextafter(float(v), np.inf) for v in q]])
    check_crown_real(g, lo, hi, points=[[q]])
    check_backward_real(g, lo, hi, points=[[q]], kinds=("dense", "cancel", "onehot", "diff"))


# ---------------------------------------------------------------------------------------------
# batches


@pytest.mark.parametrize("name", ["deep_relu", "product", "broadcast", "crown_movement", "pwl"])
def test_real_batched_boxes(name):
    g1 = net(name)
    B = 3
    g = rebuild(g1, [(B,) + tuple(v.shape[1:]) for v in g1.inputs])
    rng = np.random.default_rng(41)
    kinds = ["random", "degenerate", "straddle0"]
    parts = [make_box(kinds[b], (1,) + tuple(g1.inputs[0].shape[1:]), rng) for b in range(B)]
    lo = np.concatenate([p[0] for p in parts])
    hi = np.concatenate([p[1] for p in parts])
    check_crown_real(g, lo, hi, n_random=2, max_corners=4)
    check_backward_real(g, lo, hi, n_random=1, max_corners=2, max_targets=2)


# ---------------------------------------------------------------------------------------------
# float64 error accounting of the backward pass (found by this suite)


# Regression (fixed) (backward._Acc.add_bias and its callers): the float64 error of a bias sum Σ
# t_i is bounded by γ·|Σ t_i| instead of γ·Σ|t_i|; a linear layer at x = 0 with bias [1, 1, 1] and
# Λ = [0.1, 0.2, -0.3] gives the real lower bound 5.55e-17 > 2.78e-17 = exact Λ·z
# Regression (fixed) (backward._unbroadcast): summing Λ over an operand's broadcast axes (x[1,1,1]
# + c[1,3,1], also x * c) adds no float64 slack; with Λ = [0.1, 0.2, -0.3] the real lower bound is
# 5.55e-17 > 2.78e-17
# Regression (fixed) (backward._step, linear/matmul): CROWN takes axis 0 as the batch axis, but
# linear of a rank-1 operand contracts it; the real bounds miss most exact values. Fix: cut when
# the operand has rank < 2
# Regression (fixed) (backward._step, linear): the slack of Λ@M uses gamma(M.shape[1]) (the input
# width) but each coefficient is a sum over M.shape[0] (the output width) terms; 1 input, 2048+
# outputs, terms that round up: real lower bound above the exact value by 64 * 2^-53


def test_real_bias_cancellation():
    b = Builder()
    x = b.input((1, 1), "x")
    y = b.eqn("linear", [x, b.param(np.zeros((3, 1), F32)), b.param(np.ones(3, F32))])
    g = b.build([y])
    z = np.zeros((1, 1))
    check_backward_real(g, z, z, targets=[y.id], kinds=("cancel",), points=[[[Fraction(0)]]])


@pytest.mark.parametrize("op", ["add", "mul"])
def test_real_unbroadcast_slack(op):
    b = Builder()
    x = b.input((1, 1, 1), "x")
    c = np.zeros((1, 3, 1), F32) if op == "add" else np.ones((1, 3, 1), F32)
    y = b.eqn(op, [x, b.param(c)])
    g = b.build([y])
    one = np.ones((1, 1, 1))
    check_backward_real(g, one, one, targets=[y.id], kinds=("cancel",), points=[[[Fraction(1)]]])


def test_real_linear_slack_uses_output_width():
    """1 input, many outputs, coefficients whose float64 sum rounds up at every step in any order
    that first puts a 1 into each accumulator (several leading ones, then 0.75-ulp terms). Whether
    numpy's BLAS sums that way is checked first: the test needs a configuration where Λ@W errs
    by more than 8·u·Σ|Λ||W| (four times what the input-width slack covers), else it is skipped."""
    u = Fraction(1, 2**53)
    fails, exposed = [], 0
    for nbig, k in [(4, 2048), (8, 4096), (16, 4096)]:
        n = nbig + k
        lam = np.concatenate([np.ones(nbig), np.full(k, 3 * 2.0 ** -54)]).reshape(1, 1, n)
        exact = nbig + k * 3 * Fraction(2) ** -54
        computed = Fraction(float((lam @ np.ones((n, 1)))[0, 0, 0]))
        exposed += computed - exact > 8 * u * exact
        b = Builder()
        x = b.input((1, 1), "x")
        y = b.eqn("linear", [x, b.param(np.ones((n, 1), F32))])
        g = b.build([y])
        one = np.ones((1, 1))
        ctx, _ = prepare(g, one, one, "real")
        tighten(ctx)
        lb = backward(ctx, y.id, lam.copy())
        if Fraction(float(lb[0, 0])) > exact:
            fails.append(f"{nbig} ones + {k} terms: lower bound exceeds the exact value by "
                         f"{float((Fraction(float(lb[0, 0])) - exact) / u)} * 2^-53")
    if not exposed:
        pytest.skip("this BLAS sums the coefficients in an order that does not expose the float64 error")
    assert not fails, "UNSOUND real CROWN backward:\n" + "\n".join(fails)


def test_real_rank1_linear():
    g = f32s.crown_rank1()
    rng = np.random.default_rng(5)
    lo, hi = make_box("straddle0", (6,), rng)
    res = crown(g, lo, hi, "real")
    fails = []
    for p in real_points(lo, hi, rng, n_random=4, max_corners=8):
        fails += check_real(g, _Env(res.bounds), [np.array(p, dtype=object)])[0]
    assert not fails, "UNSOUND real CROWN:\n" + "\n".join(fails[:8])


# Regression (fixed) (crown.tighten / backward, real semantics): an operand whose value may not
# exist (x/0: the interval's NaN flag) reaches the output through a zero coefficient (a zero
# weight), so its cut contributes 0; backward() returns the finite bound -1.5e-323 for an
# undefined output. The float32 path is fixed by an infinite rounding term where the node may be
# NaN (rounding.py); the real path has no rounding terms (ctx.err is float32-only), so it needs
# the same +inf term, e.g. computed in tighten for real too


def test_real_undefined_operand_with_zero_coefficient():
    b = Builder()
    x = b.input((1, 2), "x")
    q = b.eqn("div", [b.eqn("slice", [x], {"index": ((None, None, None), (0, 1, None))}),
                      b.eqn("slice", [x], {"index": ((None, None, None), (1, 2, None))})])
    y = b.eqn("linear", [b.eqn("tanh", [q]), b.param(np.array([[0.0], [1.0]], F32))])
    g = b.build([y])
    lo, hi = np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])
    check_crown_real(g, lo, hi, points=[[[Fraction(1), Fraction(0)], [Fraction(1), Fraction(1, 3)]]])
    ctx, _ = prepare(g, lo, hi, "real")
    tighten(ctx)
    lam = np.array([[[1.0, 0.0]], [[-1.0, 0.0]], [[0.5, 1.0]]])   # rows on the zero-weight output
    lb = backward(ctx, y.id, lam.copy())
    z = exact_eval(g, [np.array([[Fraction(1), Fraction(0)]], dtype=object)])[y.id]
    fails, _ = backward_real_failures(f"%{y.id}", lam, lb, z)
    assert not fails, "UNSOUND real CROWN backward:\n" + "\n".join(fails)


# ---------------------------------------------------------------------------------------------
# hypothesis


@st.composite
def real_box(draw, d):
    a = np.array(draw(st.lists(st.floats(-4.0, 4.0), min_size=d, max_size=d)))
    w = np.array(draw(st.lists(st.sampled_from([0.0, 1e-9, 1 / 3, 1.0, 3.0]), min_size=d, max_size=d)))
    return (a - w)[None], (a + w)[None]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_hypothesis_real_crown_nets(data):
    g, d = data.draw(f32s.crown_net())
    lo, hi = data.draw(real_box(d))
    seed = data.draw(st.integers(0, 100))
    check_crown_real(g, lo, hi, seed=seed, n_random=2, max_corners=8)
    check_backward_real(g, lo, hi, seed=seed, n_random=1, max_corners=2, max_targets=2)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_real_crown_nets_slow(data):
    g, d = data.draw(f32s.crown_net())
    B = data.draw(st.integers(1, 3))
    boxes = [data.draw(real_box(d)) for _ in range(B)]
    if B > 1:
        g = rebuild(g, [(B, d)])
    lo = np.concatenate([bx[0] for bx in boxes])
    hi = np.concatenate([bx[1] for bx in boxes])
    seed = data.draw(st.integers(0, 100))
    check_crown_real(g, lo, hi, seed=seed, n_random=4, max_corners=8)
    check_backward_real(g, lo, hi, seed=seed, n_random=2, max_corners=4, max_targets=3)


# ---------------------------------------------------------------------------------------------
# the harness itself: deliberately unsound real CROWN must be caught


def _halved_upper_intercept(l, u, alpha_lo=None, negative_slope=0.0):
    a_lo, b_lo, a_hi, b_hi = relu_relaxation(l, u, alpha_lo, negative_slope)
    return a_lo, b_lo, a_hi, b_hi * 0.5


def _fails(check, *args, **kw):
    try:
        check(*args, **kw)
    except AssertionError as exc:
        assert "UNSOUND" in str(exc), exc
        return True
    return False


def test_real_harness_catches_unsound_relaxation(monkeypatch):
    monkeypatch.setattr(common_mod, "relu_relaxation", _halved_upper_intercept)
    g = net("deep_relu")
    caught = [False, False]
    for seed in range(6):
        lo, hi = make_box("random", (1, 3), np.random.default_rng(seed))
        caught[0] = caught[0] or _fails(check_crown_real, g, lo, hi, n_random=6, max_corners=8)
        caught[1] = caught[1] or _fails(check_backward_real, g, lo, hi, n_random=3, max_corners=8)
        if all(caught):
            break
    assert all(caught), f"the real harness did not notice the unsound relaxation (crown, backward): {caught}"


def test_real_harness_catches_missing_float64_slack(monkeypatch):
    """With every γ slack and the outward rounding of the result removed, the exact check on
    degenerate boxes at rational points notices the float64 rounding of the bound."""
    monkeypatch.setattr(backward_mod, "gamma", lambda n: 0.0)
    monkeypatch.setattr(backward_mod._Acc, "lower", lambda self: self.bias)
    g = net("deep_relu")
    rng = np.random.default_rng(9)
    caught = False
    for _ in range(6):
        q = [Fraction(int(rng.integers(1, 100)), int(rng.choice([3, 7, 11, 13]))) for _ in range(3)]
        lo = hi = np.array([[float(v) for v in q]])   # a degenerate box at float64 points
        pts = [[[Fraction(float(v)) for v in q]]]
        if _fails(check_backward_real, g, lo, hi, points=pts, kinds=("dense", "cancel", "scaled", "ints")):
            caught = True
            break
    assert caught, "the real backward check did not notice the missing float64 slack"


# ---------------------------------------------------------------------------------------------
# report (printed, never asserted)


def test_real_looser_than_ibp_report():
    rows = []
    for name in CROWN_NETS + ["pwl", "matmul_bn"]:
        g = net(name)
        for kind in ("random", "straddle0"):
            lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(1))
            res, ib = crown(g, lo, hi, "real"), ibp(g, lo, hi, "real")
            looser = ", ".join(f"%{v}:{n}/{2 * res.bounds[v].lo.size}" for v, n in sorted(res.looser_than_ibp.items()))
            out = g.outputs[0]
            wc = res.bounds[out].hi - res.bounds[out].lo
            wi = ib.env[out].hi - ib.env[out].lo
            ratio = float(np.median(wc / np.where(wi > 0, wi, 1)))
            rows.append(f"{name:15s} {kind:10s} looser than IBP {looser or '-'}; output width CROWN/IBP median {ratio:.3g}")
    print("\nCROWN looser than IBP (node: endpoints looser / endpoints), real:\n  " + "\n  ".join(rows))
