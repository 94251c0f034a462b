"""Soundness of ``ibp(graph, lo, hi, "real")`` against exact real arithmetic, at every node.

The oracle is :mod:`exact_eval` (Fractions for every rational op, mpmath interval arithmetic at
300 bits for tanh/sigmoid/exp/sin/cos/sqrt). For sampled real inputs x in the box -- corners,
rational interior points that are neither float32 nor float64 numbers (1/3, 2/7, ...), zero,
random rationals -- the exact value of every node must lie in the node's float64 interval
(compared exactly), and a node whose real value does not exist (division by 0, sqrt of a negative
number) must carry the NaN flag.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnlemma as nl
from nnlemma.bounds import ibp
from nnlemma.errors import InputError
from nnlemma.ir import Builder

from exact_eval import check_real
from nnlemma.exact import UNDEF, exact_eval
from real_support import BOX_KINDS, NETS, _compile, get_net, make_box, real_points  # shared with CROWN

F32 = np.float32


# ---------------------------------------------------------------------------------------------
# the check (points from real_support.real_points)


def check_real_box(graph, lo, hi, *, seed=0, n_random=6, max_corners=16, points=None, rules=None):
    los = lo if isinstance(lo, list) else [lo]
    his = hi if isinstance(hi, list) else [hi]
    res = ibp(graph, lo, hi, "real", rules=rules)
    assert res.status == "ok", res.reason
    for vid, iv in res.env.items():
        assert iv.lo.dtype == np.float64 and iv.hi.dtype == np.float64
    rng = np.random.default_rng(seed)
    shapes = [v.shape for v in graph.inputs]
    flat_lo = np.concatenate([np.asarray(l, np.float64).reshape(-1) for l in los])
    flat_hi = np.concatenate([np.asarray(h, np.float64).reshape(-1) for h in his])
    pts = points if points is not None else real_points(flat_lo, flat_hi, rng, n_random, max_corners)
    all_fails, unsure = [], 0
    for p in pts:
        xs, off = [], 0
        for shp in shapes:
            n = int(np.prod(shp))
            arr = np.empty(n, dtype=object)
            arr[:] = p[off:off + n]
            xs.append(arr.reshape(shp))
            off += n
        fails, u = check_real(graph, res, xs)
        unsure += u
        all_fails += [f"{f}; input {[str(v) for v in p]}" for f in fails[:4]]
    assert not all_fails, "UNSOUND real IBP:\n" + "\n".join(all_fails[:12])
    return res, unsure


@pytest.mark.parametrize("kind", BOX_KINDS)
@pytest.mark.parametrize("name", sorted(NETS))
def test_real_sound_on_catalog(name, kind):
    g = get_net(name)
    lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(abs(hash((name, kind))) % 2**32))
    small = name == "conv"
    check_real_box(g, lo, hi, seed=1, n_random=2 if small else 5, max_corners=4 if small else 16)


def test_real_nan_flag_where_undefined():
    """Division by an exact 0 and sqrt of a negative number have no real value: NaN flagged."""
    g = get_net("binary")
    lo, hi = np.array([[-1.0, 0.5, -2.0, -1.0]]), np.array([[1.0, 0.5, 1.0, 0.0]])
    pts = [[Fraction(1, 3), Fraction(1, 2), Fraction(0), Fraction(0)]]
    res, _ = check_real_box(g, lo, hi, points=pts)
    env = exact_eval(g, [np.array([pts[0]], dtype=object)])
    (div_eq,) = [e for e in g.equations if e.op == "div" and e.out.shape == (1, 2)][:1]
    assert env[div_eq.out.id][0, 0] is UNDEF and res.env[div_eq.out.id].nan[0, 0]
    gs = get_net("smooth")
    check_real_box(gs, np.array([[-2.0, -1.0]]), np.array([[-0.5, 0.25]]), points=[[Fraction(-1), Fraction(-1, 7)]])


def test_real_linear_cancellation_and_error_bound():
    """The float64 BLAS-with-error-bound dot product on degenerate non-float32 points, with heavy
    cancellation and mixed magnitudes (the exact value must lie in a very narrow interval)."""
    rng = np.random.default_rng(5)
    k = 48
    w = rng.normal(size=(4, k)) * np.exp(rng.uniform(-20, 20, size=(4, k)))
    w[0, : k // 2] = 1e8
    w[0, k // 2:] = -1e8
    w[1] = rng.normal(size=k) * 1e-30
    b = np.array([0.1, -1e-30, 1e20, 0.0])
    g = _compile(lambda x: nl.linear(x, w.astype(F32), b.astype(F32)), (1, k))
    for trial in range(4):
        x = np.full((1, k), 0.1) + rng.normal(size=(1, k)) * [1e-12, 1e-3, 1.0, 1e10][trial]
        if trial == 0:
            x[0, k // 2:] = x[0, : k // 2]
        pts = [[Fraction(float(v)) for v in x.reshape(-1)]]
        res, _ = check_real_box(g, x, x, points=pts)
        hi, lo = res.outputs[0].hi, res.outputs[0].lo
        assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))
    # a box: interior rational points
    lo = np.full((1, k), -1.0) / 3
    hi = lo + np.linspace(0, 1, k)[None]
    check_real_box(g, lo, hi, max_corners=4, n_random=4)


def test_real_transcendentals_degenerate_points():
    """Degenerate boxes at points where the exact value must sit in a few-ulp float64 interval:
    sin/cos at float64 multiples of pi/2 (values near 0 or ±1), sigmoid/exp far in the tails
    (float64 subnormal results), tanh near 0 and saturated."""
    ks = np.array([1, 2, 3, 4, 7, 100, 1001, 20001, 41721, 83443], np.float64)
    xs = np.concatenate([ks * np.pi / 2, -ks * np.pi / 2, [1e-300, 5e-324, -745.0, -740.0, -708.5, 709.5, 709.78,
                                                           20.0, 40.0, -40.0, 0.5, 1e-8, 1e5]])
    xs = np.concatenate([xs, np.nextafter(xs, np.inf), np.nextafter(xs, -np.inf)])
    for op in ("sin", "cos", "exp", "tanh", "sigmoid"):
        b = Builder()
        x = b.input((1, xs.size))
        g = b.build([b.eqn(op, [x])])
        pts = [[Fraction(float(v)) for v in xs]]
        check_real_box(g, xs[None], xs[None], points=pts)


def test_real_bounds_beyond_float32_range():
    """Real boxes may have float64 endpoints far outside the float32 range; exp/sigmoid/tanh
    and products of huge values (exact rationals/mpmath intervals) stay enclosed."""
    g = get_net("pwl")
    check_real_box(g, np.full((1, 3), 1e300), np.full((1, 3), 1.5e300), n_random=2)
    check_real_box(g, np.full((1, 3), -1e308), np.full((1, 3), 1e308), n_random=2)
    gs = get_net("smooth")
    check_real_box(gs, np.array([[-1e6, 1e4]]), np.array([[-1e5, 2e4]]), n_random=2)


def _identity_minus(c):
    b = Builder()
    x = b.input((1,))
    z = b.eqn("sub", [b.eqn("identity", [x]), b.param(np.float32(c))])
    return b.build([z]), x


def _real_box_sound_or_rejected(g, lo, hi, points):
    try:
        res = ibp(g, lo, hi, "real")
    except InputError:
        return None
    fails = []
    for p in points:
        fails += check_real(g, res, [np.array([p], dtype=object)])[0]
    assert not fails, "UNSOUND real IBP:\n" + "\n".join(fails)
    return res


def test_real_box_int64_bounds_not_float64_values():
    """Regression (found by this suite): the real box [2^53+1, 2^53+1] given as int64 was rounded
    to nearest float64, giving x - 2^53 the interval ~[-5e-324, 5e-324] although its value is 1."""
    g, _ = _identity_minus(2.0 ** 53)
    v = np.array([2**53 + 1], dtype=np.int64)
    _real_box_sound_or_rejected(g, v, v, [Fraction(2**53 + 1)])
    big = np.array([2**62 + 2**9 + 1], dtype=np.int64)
    _real_box_sound_or_rejected(g, big - 3, big, [Fraction(int(big[0])), Fraction(int(big[0]) - 3)])


@pytest.mark.skipif(np.finfo(np.longdouble).nmant <= 52, reason="longdouble is float64 here")
def test_real_box_longdouble_bounds():
    """Regression (found by this suite): lo = 1 - 2^-60 as longdouble was rounded up to 1.0."""
    g, _ = _identity_minus(1.0)
    lo = np.array([np.longdouble(1) - np.longdouble(2) ** -60])
    hi = np.array([np.longdouble(1) + np.longdouble(2) ** -60])
    _real_box_sound_or_rejected(g, lo, hi, [Fraction(1) - Fraction(1, 2**60), Fraction(1) + Fraction(1, 2**60)])


def test_real_box_fraction_bounds():
    """Object arrays of Fractions: rejected with InputError, or enclosed outward."""
    g, _ = _identity_minus(0.0)
    lo = np.array([Fraction(1, 3)], dtype=object)
    hi = np.array([Fraction(1, 3)], dtype=object)
    _real_box_sound_or_rejected(g, lo, hi, [Fraction(1, 3)])
    lo = np.array([Fraction(-1, 10**400)], dtype=object)
    hi = np.array([Fraction(3, 10**330)], dtype=object)
    _real_box_sound_or_rejected(g, lo, hi, [Fraction(-1, 10**400), Fraction(0), Fraction(3, 10**330)])


def test_real_box_fraction_bounds_beyond_float64():
    g, _ = _identity_minus(0.0)
    lo = np.array([Fraction(-10**400, 3)], dtype=object)
    hi = np.array([Fraction(10**400, 7)], dtype=object)
    _real_box_sound_or_rejected(g, lo, hi, [Fraction(-10**400, 3), Fraction(10**400, 7)])


@pytest.mark.parametrize("semantics", ["real", "float32"])
def test_object_bounds_bad_values_raise_input_error(semantics):
    """Object-dtype bounds that are not numbers at all, or NaN, must be an InputError."""
    b = Builder()
    x = b.input((1,))
    g = b.build([b.eqn("identity", [x])])
    for lo, hi in [([float("nan")], [1.0]), ([Fraction(1, 2)], [Fraction(1, 3)])]:
        with pytest.raises(InputError):
            ibp(g, np.array(lo, dtype=object), np.array(hi, dtype=object), semantics)


# ---------------------------------------------------------------------------------------------
# hypothesis: random small nets, rational points


_UNARY = ["relu", "step", "leaky_relu", "tanh", "sigmoid", "exp", "sin", "cos", "sqrt", "square", "abs", "neg", "clamp"]
_BINARY = ["add", "sub", "mul", "div", "maximum", "minimum"]


@st.composite
def random_real_net(draw):
    d = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b = Builder()
    cur = x = b.input((1, d))
    width = d
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["linear", "unary", "binary", "const"]))
        if kind == "linear":
            out = draw(st.integers(1, 3))
            scale = draw(st.sampled_from([1.0, 1e-3, 1e3]))
            cur = b.eqn("linear", [cur, b.param(rng.normal(size=(out, width)) * scale), b.param(rng.normal(size=out))])
            width = out
        elif kind == "unary":
            op = draw(st.sampled_from(_UNARY))
            attrs = {"leaky_relu": {"alpha": 0.25}, "clamp": {"lo": -0.5, "hi": 0.5}}.get(op, {})
            cur = b.eqn(op, [cur], attrs)
        elif kind == "binary" and width >= 2:
            h = width // 2
            lhs = b.eqn("slice", [cur], {"index": ((None, None, None), (0, h, None))})
            rhs = b.eqn("slice", [cur], {"index": ((None, None, None), (width - h, width, None))})
            cur = b.eqn(draw(st.sampled_from(_BINARY)), [lhs, rhs])
            width = h
        else:
            c = b.param(draw(st.sampled_from([2.0, -0.5, 0.1, 3.0])))
            op = draw(st.sampled_from(_BINARY))
            cur = b.eqn(op, [cur, c] if draw(st.booleans()) else [c, cur])
    cur = b.eqn("identity", [cur]) if cur is x else cur
    return b.build([cur]), d


_f64 = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_hypothesis_real_random_nets(data):
    g, d = data.draw(random_real_net())
    a = np.array(data.draw(st.lists(_f64, min_size=d, max_size=d)))
    w = np.array(data.draw(st.lists(st.sampled_from([0.0, 1e-9, 0.3, 1.0, 3.0]), min_size=d, max_size=d)))
    lo, hi = (a - w)[None], (a + w)[None]
    check_real_box(g, lo, hi, seed=data.draw(st.integers(0, 100)), n_random=2, max_corners=8)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_real_random_nets_slow(data):
    g, d = data.draw(random_real_net())
    a = np.array(data.draw(st.lists(_f64, min_size=d, max_size=d)))
    w = np.array(data.draw(st.lists(st.sampled_from([0.0, 1e-9, 0.3, 1.0, 3.0, 100.0]), min_size=d, max_size=d)))
    check_real_box(g, (a - w)[None], (a + w)[None], seed=data.draw(st.integers(0, 100)), n_random=6)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("name", sorted(NETS))
def test_real_sound_on_catalog_many_seeds(name, seed):
    g = get_net(name)
    kind = BOX_KINDS[seed % len(BOX_KINDS)]
    lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(seed))
    check_real_box(g, lo, hi, seed=seed, n_random=10)


def test_real_tightness_report():
    """Printed only: real interval width vs float32 interval width on the same (float32) box."""
    rows = []
    for name in ("pwl", "smooth", "matmul_bn"):
        g = get_net(name)
        rng = np.random.default_rng(3)
        c = rng.normal(size=g.inputs[0].shape)
        lo, hi = (c - 0.05).astype(F32), (c + 0.05).astype(F32)
        r, f = ibp(g, lo, hi, "real"), ibp(g, lo, hi, "float32")
        for vid in g.outputs:
            wr = r.env[vid].hi - r.env[vid].lo
            wf = f.env[vid].hi.astype(np.float64) - f.env[vid].lo.astype(np.float64)
            rows.append(f"{name:10s} real width median {np.median(wr):.6g}  float32 width median {np.median(wf):.6g}")
    print("\n  " + "\n  ".join(rows))


# ---------------------------------------------------------------------------------------------
# unbatched shapes, random conv/pool geometry, infinite box endpoints


def test_real_unbatched_graph():
    from f32_support import net_unbatched
    g = net_unbatched()
    rng = np.random.default_rng(9)
    for kind in ("random", "straddle0", "non_f32", "degenerate"):
        lo, hi = make_box(kind, (6,), rng)
        check_real_box(g, lo, hi, n_random=3, max_corners=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_hypothesis_real_random_conv_pool(data):
    from f32_support import random_conv_net
    g, shape = data.draw(random_conv_net())
    kind = data.draw(st.sampled_from(["random", "straddle0", "non_f32", "degenerate", "tiny"]))
    lo, hi = make_box(kind, shape, np.random.default_rng(data.draw(st.integers(0, 99))))
    check_real_box(g, lo, hi, n_random=1, max_corners=3)


def test_real_infinite_box_endpoints():
    """A real box may be unbounded; every real point in it is still enclosed."""
    for name in ("pwl", "smooth", "binary"):
        g = get_net(name)
        d = g.inputs[0].shape[1]
        lo = np.full((1, d), -np.inf)
        hi = np.full((1, d), np.inf)
        hi[0, 0] = -2.0
        pts = [[Fraction(-3)] + [Fraction(1, 3)] * (d - 1), [Fraction(-10**300)] + [Fraction(10**300)] * (d - 1),
               [Fraction(-2)] + [Fraction(0)] * (d - 1)]
        check_real_box(g, lo, hi, points=pts)


# ---------------------------------------------------------------------------------------------
# the harness itself: deliberately unsound real rules must be caught


def _real_mutant(name, make):
    from nnlemma.bounds import IBP_RULES
    rules = dict(IBP_RULES["real"])
    rules[name] = make(rules[name])
    return rules


def _add_no_outward(rule):
    def r(a, b):
        from nnlemma.bounds import Interval
        return Interval.make(a.lo + b.lo, a.hi + b.hi, a.nan | b.nan, np.float64)
    return r


def _tanh_no_widen(rule):
    def r(a):
        from nnlemma.bounds import Interval
        return Interval.make(np.tanh(a.lo), np.tanh(a.hi), a.nan, np.float64)
    return r


def _linear_no_error_term(rule):
    def r(x, w, b=None):
        from nnlemma.bounds import Interval
        W = w.lo.T.astype(np.float64)
        c, rad = (x.lo + x.hi) / 2, (x.hi - x.lo) / 2
        yc, yr = c @ W, rad @ np.abs(W)
        lo, hi = yc - yr, yc + yr
        if b is not None:
            lo, hi = lo + b.lo, hi + b.hi
        return Interval.make(lo, hi, False, np.float64)
    return r


@pytest.mark.parametrize("op, make, net, kinds", [
    ("add", _add_no_outward, "binary", ["non_f32", "random", "degenerate"]),
    ("tanh", _tanh_no_widen, "smooth", ["degenerate", "non_f32", "random"]),
    ("linear", _linear_no_error_term, "pwl", ["degenerate", "non_f32", "random"]),
])
def test_real_harness_catches_unsound_rules(op, make, net, kinds):
    g = get_net(net)
    rules = _real_mutant(op, make)
    for kind in kinds:
        lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(2))
        try:
            check_real_box(g, lo, hi, rules=rules, n_random=4)
        except AssertionError as exc:
            assert "UNSOUND" in str(exc)
            return
    pytest.fail(f"the harness did not notice the unsound real {op} rule")
