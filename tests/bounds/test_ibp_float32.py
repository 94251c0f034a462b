"""Soundness of ``ibp(graph, lo, hi, "float32")`` against the float32 kernel, at every node.

For every float32 input x in the box, ``interpret(graph, KERNEL_RULES, [x])`` gives each node's
kernel value v; the node's interval I must satisfy ``I.lo <= v <= I.hi`` (IEEE comparison, so
both zeros are inside an interval containing 0) or v is NaN and ``I.nan`` is set there. Every
comparison is exact.

Sampling (per box): all corners (input dim <= 8, else random corners), edge midpoints, the centre,
one-ulp-inward neighbours of the endpoints (``np.nextafter`` toward the interior) mixed with the
endpoints, both signed zeros wherever 0 is in the box, uniform interior points and points uniform
in the float32 *bit order* (which spreads over all magnitudes of wide boxes).

The sampler, the box families and the network catalog live in :mod:`f32_support` (shared with
the CROWN suite).

Harness: every graph here has a leading batch axis of size 1 that no op mixes, so the samples are
evaluated in one kernel run of the same graph rebuilt with batch size S (``ir.rebuild`` keeps the
value ids); ``test_batched_kernel_matches_single_runs`` checks that this equals per-sample runs
bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnlemma as nl
from nnlemma import nn
from nnlemma.bounds import IBP_RULES, ibp
from nnlemma.errors import InputError
from nnlemma.interpret import interpret
from nnlemma.ir import Builder
from nnlemma.kernels import KERNEL_RULES
from nnlemma.ops import OPS

from f32_support import (  # the shared sampler, box families and network catalog
    BOX_KINDS, MAX, NETS, PWL_NETS, TINY, _as_list, _boxes_for, _compile, _sorted, containment_failures,
    get_net, joint_samples, kernel_env, make_box, net_two_inputs, net_unbatched, random_box, random_conv_net,
    random_net,
)

F32 = np.float32


# ---------------------------------------------------------------------------------------------
# the check


def check_f32(graph, lo, hi, *, seed: int = 0, extra: list[np.ndarray] | None = None, rules=None, batched=True,
              **kw):
    """IBP over [lo, hi], then containment of the kernel value of every node for the samples."""
    res = ibp(graph, lo, hi, "float32", rules=rules)
    assert res.status == "ok", res.reason
    for vid, iv in res.env.items():
        assert iv.lo.dtype == F32 and iv.hi.dtype == F32, f"%{vid}: endpoints are {iv.lo.dtype}/{iv.hi.dtype}"
        assert np.shape(iv.hi) == np.shape(iv.lo) and np.broadcast_to(iv.nan, iv.lo.shape).dtype == np.bool_
    los, his = _as_list(lo), _as_list(hi)
    samples = joint_samples(los, his, np.random.default_rng(seed), batched=batched, **kw)
    if extra is not None:
        samples = [np.concatenate([s, np.asarray(e, F32).reshape((-1,) + s.shape[1:])]) for s, e in zip(samples, extra)]
    if batched:
        env = kernel_env(graph, samples)
        fails = containment_failures(graph, res, env, samples)
    else:  # graphs without a free batch axis: one kernel run per sample, stacked
        runs = [interpret(graph, KERNEL_RULES, [s[i].reshape(v.shape) for s, v in zip(samples, graph.inputs)])
                for i in range(samples[0].shape[0])]
        env = {vid: np.stack([r[vid] for r in runs]) for vid in runs[0]}
        params = {p.value.id for p in graph.params}
        fails = containment_failures(graph, _Stacked(res, params), env, samples)
    assert not fails, "UNSOUND float32 IBP:\n" + "\n".join(fails)
    return res, env


class _Stacked:
    """View of a BoundsResult whose intervals get a leading axis of 1 (to match stacked runs)."""

    def __init__(self, res, params):
        from nnlemma.bounds import Interval
        self.env = {vid: Interval(iv.lo[None], iv.hi[None], np.broadcast_to(iv.nan, iv.lo.shape)[None])
                    for vid, iv in res.env.items()}


# ---------------------------------------------------------------------------------------------
# tests: coverage of the op table


def test_catalog_covers_every_op_with_an_ibp_rule():
    used = set()
    for name in NETS:
        used |= set(get_net(name).ops_used())
    used |= set(_compile(lambda x: nl.bind("matmul", x, np.ones((2, 2), F32)), (1, 2)).ops_used())
    ruled = set(IBP_RULES["float32"]) & set(OPS)
    missing = ruled - used
    assert not missing, f"ops with an IBP rule not exercised by the float32 catalog: {sorted(missing)}"
    assert set(IBP_RULES["float32"]) == set(IBP_RULES["real"])


def test_batched_kernel_matches_single_runs():
    """The harness evaluates S samples in one batched run; per-sample runs give the same bits."""
    for name in ("mlp_relu", "conv", "movement", "zoo", "binary"):
        g = get_net(name)
        lo, hi = _boxes_for(g, "straddle0", 1)
        samples = joint_samples(_as_list(lo), _as_list(hi), np.random.default_rng(0), n_random=4)
        env = kernel_env(g, samples)
        for row in (0, 3, samples[0].shape[0] - 1):
            single = interpret(g, KERNEL_RULES, [s[row:row + 1] for s in samples])
            for vid, v in single.items():
                want = v if vid in {p.value.id for p in g.params} else env[vid][row:row + 1]
                want = np.asarray(want, F32)
                assert v.shape == want.shape and np.array_equal(v.view(np.uint32), want.view(np.uint32)), (name, vid)


# ---------------------------------------------------------------------------------------------
# tests: soundness on the catalog, every box family


@pytest.mark.parametrize("kind", BOX_KINDS)
@pytest.mark.parametrize("name", sorted(NETS))
def test_sound_on_catalog(name, kind):
    g = get_net(name)
    lo, hi = _boxes_for(g, kind, seed=hash((name, kind)) % 2**32)
    check_f32(g, lo, hi, seed=7, n_random=64)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", ["mlp_relu", "mlp_smooth", "binary", "trig", "zoo", "two_in"])
def test_sound_random_boxes(name, seed):
    g = net_two_inputs() if name == "two_in" else get_net(name)
    rng = np.random.default_rng(1000 + seed)
    scale = [1e-3, 0.1, 1.0, 10.0, 100.0, 1e4][seed]
    lo, hi = [], []
    for v in g.inputs:
        c = rng.normal(size=v.shape) * scale
        w = rng.exponential(scale, size=v.shape)
        l, h = _sorted(c - w, c + w)
        lo.append(l)
        hi.append(h)
    if len(lo) == 1:
        lo, hi = lo[0], hi[0]
    check_f32(g, lo, hi, seed=seed, n_random=96)


def test_two_input_graph_with_zero_crossing_divisor():
    g = net_two_inputs()
    lo = [np.array([[-1, 2, 0.5]], F32), np.array([[-2, 0.25, -0.0]], F32)]
    hi = [np.array([[1, 3, 0.5]], F32), np.array([[3, 0.5, 0.0]], F32)]
    res, _ = check_f32(g, lo, hi)
    out = res.outputs[1]  # x / y: y straddles / touches 0 -> unbounded, NaN possible
    assert out.nan[0, 0] and out.lo[0, 0] == -np.inf and out.hi[0, 0] == np.inf


# ---------------------------------------------------------------------------------------------
# degenerate boxes: for piecewise-linear nets the bounds are attained, bit for bit


def _zero_canon(a):
    a = np.array(a, F32, copy=True)
    a[a == 0] = F32(0.0)
    return a.view(np.uint32)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", PWL_NETS)
def test_degenerate_box_is_attained_bitwise(name, seed):
    """lo == hi: every node's interval is the single kernel value, bit for bit (zeros compared as
    values: an interval endpoint -0 and a kernel +0 denote the same IEEE interval)."""
    g = get_net(name)
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=g.inputs[0].shape) * [1.0, 1e-30, 1e30][seed]).astype(F32)
    res = ibp(g, x, x, "float32")
    env = interpret(g, KERNEL_RULES, [x])
    for vid, v in env.items():
        iv = res.env[vid]
        nan = np.isnan(v)
        assert np.array_equal(np.broadcast_to(iv.nan, v.shape) | nan, np.broadcast_to(iv.nan, v.shape)), vid
        fin = ~nan
        assert np.array_equal(_zero_canon(iv.lo[fin]), _zero_canon(v[fin])), (vid, iv.lo, v)
        assert np.array_equal(_zero_canon(iv.hi[fin]), _zero_canon(v[fin])), (vid, iv.hi, v)


def test_degenerate_box_report_for_non_pwl_nets():
    """Report (do not assert): on degenerate boxes at random points, how many node elements of the
    non-piecewise-linear nets get the single kernel value as their interval."""
    rows = []
    for name in ("mlp_smooth", "zoo", "trig", "binary", "conv", "matmul_bn1d"):
        g = get_net(name)
        rng = np.random.default_rng(0)
        tot = exact = 0
        for _ in range(5):
            xs = [rng.normal(size=v.shape).astype(F32) for v in g.inputs]
            res = ibp(g, xs[0] if len(xs) == 1 else xs, xs[0] if len(xs) == 1 else xs, "float32")
            env = interpret(g, KERNEL_RULES, xs)
            for e in g.equations:
                iv, v = res.env[e.out.id], env[e.out.id]
                fin = ~np.isnan(v)
                tot += int(fin.sum())
                exact += int(((iv.lo == v) & (iv.hi == v))[fin].sum())
        rows.append(f"{name:12s} {exact}/{tot} node elements are the point interval of the kernel value")
    print("\ndegenerate boxes, non-PWL nets:\n  " + "\n  ".join(rows))


def test_degenerate_box_zero_signs_report():
    """Report (do not assert) where a degenerate interval's endpoint carries the other zero sign
    than the kernel value -- harmless for the IEEE-comparison semantics, but not bit-identical."""
    g = get_net("zoo")
    rows = []
    for z in (F32(-0.0), F32(0.0)):
        x = np.full(g.inputs[0].shape, z, F32)
        res = ibp(g, x, x, "float32")
        env = interpret(g, KERNEL_RULES, [x])
        for e in g.equations:
            v, iv = env[e.out.id], res.env[e.out.id]
            diff = (v == 0) & ((np.signbit(v) != np.signbit(iv.lo)) | (np.signbit(v) != np.signbit(iv.hi)))
            if diff.any():
                i = tuple(int(k) for k in np.argwhere(diff)[0])
                rows.append(f"%{e.out.id} = {e.op}(...) at x = {float(z)!r}, element {i}: kernel {float(v[i])!r}, "
                            f"interval [{float(iv.lo[i])!r}, {float(iv.hi[i])!r}]")
    print("\nzero-sign differences on degenerate boxes:\n  " + "\n  ".join(rows or ["none"]))


@pytest.mark.parametrize("name", sorted(NETS))
def test_degenerate_box_smooth_nets_contain_point(name):
    """Every net (also the non-PWL ones) on a few degenerate boxes, including both zeros."""
    g = get_net(name)
    rng = np.random.default_rng(5)
    for scale in (0.5, 3.0, 1e-38, 1e38):
        x = (rng.normal(size=g.inputs[0].shape) * scale).astype(F32)
        xs = [x] if len(g.inputs) == 1 else [x for _ in g.inputs]
        check_f32(g, xs[0] if len(xs) == 1 else xs, xs[0] if len(xs) == 1 else xs, n_random=2)


# ---------------------------------------------------------------------------------------------
# targeted edge cases


EDGE_UNARY = ["step", "exp", "sin", "cos", "sqrt", "square", "abs", "neg", "relu", "tanh", "sigmoid", "identity"]


def _unary_graph(op, n, **attrs):
    b = Builder()
    x = b.input((1, n), "x")
    return b.build([b.eqn(op, [x], attrs)])


EDGE_POINTS = np.array([
    0.0, -0.0, TINY, -TINY, 1e-38, -1e-38, 1e-20, 0.5, -0.5, 1.0, -1.0, 1.5707963, 1.5707964, -1.5707964,
    3.1415925, 3.1415927, 6.2831855, 10.0, -10.0, 88.72283, 88.72284, -87.33654, -103.97208, -103.97209,
    -104.0, 1e5, -1e5, 131071.99, 131072.0, 131072.02, 1e30, -1e30, MAX, -MAX, np.inf, -np.inf,
], F32)


@pytest.mark.parametrize("op", EDGE_UNARY + ["leaky_relu", "clamp", "clamp_neg0"])
def test_unary_edge_intervals(op):
    """Every unary op on intervals between all pairs of special points (corners, ulp neighbours,
    both zeros, overflow/underflow thresholds, the trig fast-path limit 2^17, ±inf)."""
    attrs = {"leaky_relu": {"alpha": 0.3}, "clamp": {"lo": -1.0, "hi": 2.0}, "clamp_neg0": {"lo": -0.0, "hi": 0.0}}
    name = "clamp" if op.startswith("clamp") else op
    p = np.unique(EDGE_POINTS)
    lo, hi = np.meshgrid(p, p, indexing="ij")
    keep = lo <= hi
    lo, hi = lo[keep].astype(F32), hi[keep].astype(F32)
    g = _unary_graph(name, lo.size, **attrs.get(op, {}))
    extra = [np.concatenate([EDGE_POINTS, np.nextafter(EDGE_POINTS, F32(0))])[:, None] * np.ones((1, lo.size), F32)]
    extra = [np.where((extra[0] >= lo) & (extra[0] <= hi), extra[0], lo)]
    check_f32(g, lo[None], hi[None], extra=extra, n_random=64)


def test_trig_near_critical_points():
    """sin/cos on narrow intervals around (and one ulp beside) their maxima/minima kπ/2, for |k|
    up to the 2^17 limit, and wide intervals spanning several periods."""
    ks = np.array([0, 1, -1, 2, 3, -5, 7, 100, 1001, -4097, 41721, 83443], np.float64)
    c = (ks * np.pi / 2).astype(F32)
    cols_lo, cols_hi = [], []
    for d in (0, 1, 2, 8, 1000):
        for side in (-1, 0, 1):
            l, h = c.copy(), c.copy()
            for _ in range(d):
                l = np.nextafter(l, F32(-np.inf))
                h = np.nextafter(h, F32(np.inf))
            if side < 0:
                h = c
            elif side > 0:
                l = c
            cols_lo.append(l)
            cols_hi.append(h)
    lo = np.concatenate(cols_lo)[None].astype(F32)
    hi = np.concatenate(cols_hi)[None].astype(F32)
    for op in ("sin", "cos"):
        g = _unary_graph(op, lo.shape[1])
        check_f32(g, lo, hi, n_random=64)
    wide_lo = np.array([[-10, 0, 1, 3, -1e3, 1e5, 131000, -7]], F32)
    wide_hi = np.array([[10, 3.2, 1.6, 3.3, 1e3, 1e5 + 7, 132000, -1.5]], F32)
    for op in ("sin", "cos"):
        check_f32(_unary_graph(op, wide_lo.shape[1]), wide_lo, wide_hi, n_random=256)


def test_overflow_in_fold_is_sound():
    """Products and partial sums that overflow to ±inf inside a fold, and inf - inf = NaN."""
    w = np.array([[MAX, MAX, -MAX, 1.0], [2.0, -2.0, 1.0, 1e-45]], F32)
    b = np.array([MAX, -MAX], F32)
    g = _compile(lambda x: nl.linear(x, w, b), (1, 4))
    for lo, hi in [([1, 1, 1, 1], [2, 2, 2, 2]), ([-1, 0.5, 1, -MAX], [1, 1, 1, MAX]),
                   ([MAX, MAX, 0, 0], [MAX, MAX, 0, 0]), ([-1e-45, 0, 1e-45, 1], [1e-45, 0, 1e-45, 1])]:
        check_f32(g, np.array([lo], F32), np.array([hi], F32))


def test_subnormal_gradual_underflow():
    g = _compile(lambda x: nl.linear(x, np.array([[0.5, 0.5, 1e-7], [3.0, -1.0, 1.0]], F32)) * 0.5, (1, 3))
    lo = np.array([[TINY, -3 * TINY, 1e-45]], F32)
    hi = np.array([[5 * TINY, 3 * TINY, 1e-38]], F32)
    check_f32(g, lo, hi, n_random=200)


def test_pooling_with_infinite_inputs():
    def f(x):
        return (nn.MaxPool2d(2, stride=1, padding=1)(x), nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False)(x),
                nl.mean(x, axis=(2, 3)), nl.sum(x, axis=(1,)))
    g = _compile(f, (1, 1, 3, 3))
    lo = np.full((1, 1, 3, 3), -np.inf, F32)
    hi = np.full((1, 1, 3, 3), np.inf, F32)
    lo[0, 0, 1, 1] = hi[0, 0, 1, 1] = 1.0
    check_f32(g, lo, hi)
    check_f32(g, np.full((1, 1, 3, 3), MAX / 2, F32), np.full((1, 1, 3, 3), MAX, F32))


# ---------------------------------------------------------------------------------------------
# hypothesis: random small nets and boxes


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_hypothesis_random_nets(data):
    g, d = data.draw(random_net())
    lo, hi = data.draw(random_box(d))
    check_f32(g, lo, hi, seed=data.draw(st.integers(0, 1000)), n_random=24)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_random_nets_slow(data):
    g, d = data.draw(random_net())
    lo, hi = data.draw(random_box(d))
    check_f32(g, lo, hi, seed=data.draw(st.integers(0, 1000)), n_random=64)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("name", sorted(NETS))
def test_sound_on_catalog_many_seeds(name, seed):
    g = get_net(name)
    kind = BOX_KINDS[seed % len(BOX_KINDS)]
    lo, hi = _boxes_for(g, kind, seed=seed)
    check_f32(g, lo, hi, seed=seed, n_random=256)


# ---------------------------------------------------------------------------------------------
# unknown ops and bad boxes


def test_missing_rule_gives_unknown_naming_the_op():
    g = get_net("mlp_smooth")
    rules = {k: v for k, v in IBP_RULES["float32"].items() if k != "tanh"}
    res = ibp(g, np.zeros((1, 3), F32), np.ones((1, 3), F32), "float32", rules=rules)
    assert res.status == "unknown"
    assert "tanh" in res.reason and "float32" in res.reason
    assert res.env == {}
    rules_r = {k: v for k, v in IBP_RULES["real"].items() if k not in ("sigmoid", "linear")}
    res = ibp(g, np.zeros((1, 3)), np.ones((1, 3)), "real", rules=rules_r)
    assert res.status == "unknown" and "sigmoid" in res.reason and "linear" in res.reason


@pytest.mark.parametrize("semantics", ["float32", "real"])
def test_bad_boxes_raise_input_error(semantics):
    g = get_net("mlp_relu")
    lo, hi = np.zeros((1, 4), F32), np.ones((1, 4), F32)
    bad = [
        (np.array([[0, np.nan, 0, 0]], F32), hi),
        (lo, np.array([[1, 1, np.nan, 1]], F32)),
        (np.array([[0, 2, 0, 0]], F32), hi),          # lo > hi
        (np.zeros((1, 5), F32), np.ones((1, 5), F32)),  # wrong shape
        (np.zeros((4,), F32), np.ones((4,), F32)),      # wrong rank
        (lo, np.ones((2, 4), F32)),
        ([lo, lo], [hi, hi]),                           # wrong number of inputs
    ]
    for l, h in bad:
        with pytest.raises(InputError):
            ibp(g, l, h, semantics)
    with pytest.raises(InputError):
        ibp(g, lo, hi, "float64")


def _f32_points_of(q: float, up: bool):
    """The float32 value nearest to q inside [q, inf] (up) or [-inf, q] (down), exactly."""
    from fractions import Fraction
    if abs(q) > float(MAX):
        return F32(np.inf if q > 0 else -np.inf) if up == (q > 0) else F32(MAX if q > 0 else -MAX)
    f = np.float32(q)
    if not np.isfinite(f):
        f = F32(MAX if q > 0 else -MAX)
    if up and Fraction(float(f)) < Fraction(q):
        f = np.nextafter(f, F32(np.inf))
    if not up and Fraction(float(f)) > Fraction(q):
        f = np.nextafter(f, F32(-np.inf))
    return f


@pytest.mark.parametrize("lo_v, hi_v", [(0.1, 1.0), (0.0, 1 - 1e-12), (-1e39, 1.0), (0.0, 1e300), (-1 / 3, 1 / 3),
                                        (0.1, 0.1 + 1e-17)])
def test_non_float32_bounds_for_float32(lo_v, hi_v):
    """float64 bounds that are not float32 values: either rejected (InputError), or the box used
    must still hold every float32 point of the requested box (rounding inward is fine, since no
    float32 value lies between a bound and its inward float32 neighbour)."""
    g = get_net("mlp_relu")
    lo, hi = np.full((1, 4), lo_v, np.float64), np.full((1, 4), hi_v, np.float64)
    try:
        res = ibp(g, lo, hi, "float32")
    except InputError:
        return
    first, last = _f32_points_of(lo_v, up=True), _f32_points_of(hi_v, up=False)
    box = res.env[g.inputs[0].id]
    assert np.all(box.lo <= first) and np.all(box.hi >= last), (box.lo, box.hi, first, last)
    if first <= last:  # sample the float32 points of the requested box (incl. its extreme ones)
        check_f32(g, np.full((1, 4), first, F32), np.full((1, 4), last, F32))
        for vid in res.env:  # the same intervals as for the float32 box it denotes
            ref = ibp(g, np.full((1, 4), first, F32), np.full((1, 4), last, F32), "float32").env[vid]
            assert np.all(res.env[vid].lo <= ref.lo) and np.all(res.env[vid].hi >= ref.hi)


def test_float64_bounds_that_are_float32_values_are_accepted():
    g = get_net("mlp_relu")
    lo, hi = np.full((1, 4), 0.5), np.ones((1, 4))
    a = ibp(g, lo, hi, "float32")
    b = ibp(g, lo.astype(F32), hi.astype(F32), "float32")
    assert a.status == b.status == "ok"
    for vid in a.env:
        assert np.array_equal(a.env[vid].lo, b.env[vid].lo) and np.array_equal(a.env[vid].hi, b.env[vid].hi)
    # the same non-float32 box is fine for the real semantics
    assert ibp(g, lo + 0.1, hi, "real").status == "ok"


def test_float64_infinite_bounds_accepted_for_float32():
    g = get_net("mlp_relu")
    res = ibp(g, np.full((1, 4), -np.inf), np.full((1, 4), np.inf), "float32")
    assert res.status == "ok"


# ---------------------------------------------------------------------------------------------
# tightness report (printed, never asserted)


def test_tightness_report():
    rows = []
    cases = [("mlp_relu", "narrow"), ("mlp_relu", "random"), ("mlp_smooth", "random"), ("conv", "narrow"),
             ("conv", "random"), ("residual", "random"), ("binary", "straddle0"), ("matmul_bn1d", "random")]
    for name, kind in cases:
        g = get_net(name)
        lo, hi = _boxes_for(g, kind, seed=3)
        res, env = check_f32(g, lo, hi, seed=3, n_random=512)
        for vid in g.outputs:
            v, iv = env[vid], res.env[vid]
            fin = np.isfinite(v).all(axis=0)
            with np.errstate(all="ignore"):
                ibp_w = (iv.hi.astype(np.float64) - iv.lo.astype(np.float64))[0]
                smp_w = (np.nanmax(v, axis=0).astype(np.float64) - np.nanmin(v, axis=0).astype(np.float64))
                ratio = np.where(fin & (smp_w > 0), ibp_w / np.where(smp_w > 0, smp_w, 1), np.nan)
            rows.append(f"{name:12s} {kind:10s} %{vid:<4d} ibp width median {np.median(ibp_w):10.4g} "
                        f"sample width median {np.median(smp_w):10.4g}  ratio median {np.nanmedian(ratio) if np.isfinite(ratio).any() else float('nan'):8.3g} "
                        f"max {np.nanmax(ratio) if np.isfinite(ratio).any() else float('nan'):8.3g}")
    print("\nfloat32 IBP width vs kernel sample range (>= 1 by soundness; sampled range is only a lower "
          "bound of the true range):\n  " + "\n  ".join(rows))


# ---------------------------------------------------------------------------------------------
# the premise of the transcendental rules: the kernel is monotone (correctly rounded) -- checked on
# runs of consecutive float32 values at the delicate places


_RUN_STARTS = {
    "exp": [88.72276, 88.7228, -87.3365, -103.2789, -103.97, -104.0, -0.0001, 1e-8, 15.9424, 0.6931],
    "tanh": [-1e-5, 4e-4, 0.5493, 9.0109, 8.6643, -9.0109, 1e-38, 0.0, 17.3287, 0.7],
    "sigmoid": [-88.7228, -103.2789, -87.3365, -16.6355, 16.6355, 17.3287, -1e-5, 0.0, 5.0, -104.0],
    "sin": [1.5707950, 3.1415911, 4.7123871, 0.0, 102943.7, 131071.98, -131071.99, 3.1415911e4, 0.5, 6.2831835],
    "cos": [1.5707950, 3.1415911, -1e-5, 0.0, 102943.7, 131071.98, 6.2831835, 2.0, 355.0, 1e5],
}


@pytest.mark.parametrize("op", sorted(_RUN_STARTS))
def test_transcendental_runs_of_consecutive_floats(op):
    """Each element's box spans 256 consecutive float32 values; every one of them is sampled."""
    starts = np.array(_RUN_STARTS[op], F32)
    steps = 256
    run = [starts]
    for _ in range(steps):
        run.append(np.nextafter(run[-1], F32(np.inf)))
    run = np.stack(run)                        # [steps + 1, m]
    g = _unary_graph(op, starts.size)
    check_f32(g, run[0][None], run[-1][None], extra=[run[:, None, :]], n_random=8)


# ---------------------------------------------------------------------------------------------
# the harness itself: deliberately unsound rule tables must be caught


def _mutant(name, make):
    rules = dict(IBP_RULES["float32"])
    rules[name] = make(rules[name])
    return rules


def _shrink_lo(rule):
    def r(*a, **k):
        iv = rule(*a, **k)
        return type(iv)(np.nextafter(iv.lo, F32(np.inf)), iv.hi, iv.nan)
    return r


def _f64_linear(rule):
    """Linear with the exact real range rounded to nearest (not the kernel's fold): off by ulps."""
    def r(x, w, b=None):
        from nnlemma.bounds import Interval
        W = w.lo.astype(np.float64)
        lo64, hi64 = x.lo.astype(np.float64), x.hi.astype(np.float64)
        lo = np.where(W >= 0, lo64[..., None, :], hi64[..., None, :]) * W
        hi = np.where(W >= 0, hi64[..., None, :], lo64[..., None, :]) * W
        lo, hi = lo.sum(-1), hi.sum(-1)
        if b is not None:
            lo, hi = lo + b.lo, hi + b.hi
        return Interval.make(lo.astype(F32), hi.astype(F32), False)
    return r


def _no_critical_points(rule):
    def r(a):
        from nnlemma.bounds import Interval
        k = KERNEL_RULES["sin"]
        lo, hi = k(a.lo), k(a.hi)
        return Interval.make(np.minimum(lo, hi), np.maximum(lo, hi), a.nan)
    return r


def _div_ignoring_zero(rule):
    def r(a, b):
        from nnlemma.bounds import Interval
        with np.errstate(all="ignore"):
            c = [a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi]
        return Interval.make(np.minimum.reduce(c), np.maximum.reduce(c), a.nan | b.nan)
    return r


def _mul_two_corners(rule):
    def r(a, b):
        from nnlemma.bounds import Interval
        c = [a.lo * b.lo, a.hi * b.hi]
        return Interval.make(np.minimum(*c), np.maximum(*c), a.nan | b.nan)
    return r


def _nan_blind_add(rule):
    def r(a, b):
        iv = rule(a, b)
        return type(iv)(iv.lo, iv.hi, np.zeros(iv.lo.shape, bool))
    return r


@pytest.mark.parametrize("op, make, net, kinds", [
    ("relu", _shrink_lo, "mlp_relu", ["random", "degenerate"]),
    ("linear", _f64_linear, "mlp_relu", ["random", "narrow", "straddle0", "huge_mixed"]),
    ("sin", _no_critical_points, "trig", ["random", "straddle0"]),
    ("div", _div_ignoring_zero, "binary", ["straddle0"]),
    ("mul", _mul_two_corners, "binary", ["straddle0", "random"]),
    ("add", _nan_blind_add, "binary", ["everything", "with_inf"]),
])
def test_harness_catches_unsound_rules(op, make, net, kinds):
    g = get_net(net)
    rules = _mutant(op, make)
    caught = False
    for kind in kinds:
        lo, hi = _boxes_for(g, kind, seed=11)
        try:
            check_f32(g, lo, hi, seed=1, rules=rules, n_random=32)
        except AssertionError as exc:
            assert "UNSOUND" in str(exc)
            caught = True
            break
    assert caught, f"the harness did not notice the unsound {op} rule"


# ---------------------------------------------------------------------------------------------
# graphs without a batch axis: interval right operands of matmul, rank-0/1 values, broadcasting


@pytest.mark.parametrize("kind", ["random", "straddle0", "degenerate", "huge_mixed", "zeros", "with_inf"])
def test_unbatched_graph(kind):
    g = net_unbatched()
    lo, hi = make_box(kind, (6,), np.random.default_rng(4))
    check_f32(g, lo, hi, batched=False, n_random=24)


# ---------------------------------------------------------------------------------------------
# hypothesis: random conv / pooling geometry


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_hypothesis_random_conv_pool(data):
    g, shape = data.draw(random_conv_net())
    kind = data.draw(st.sampled_from(["random", "straddle0", "degenerate", "huge_mixed", "tiny", "with_inf",
                                      "zeros", "narrow"]))
    lo, hi = make_box(kind, shape, np.random.default_rng(data.draw(st.integers(0, 99))))
    check_f32(g, lo, hi, n_random=24)


@pytest.mark.slow
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_random_conv_pool_slow(data):
    g, shape = data.draw(random_conv_net())
    kind = data.draw(st.sampled_from(BOX_KINDS))
    lo, hi = make_box(kind, shape, np.random.default_rng(data.draw(st.integers(0, 99))))
    check_f32(g, lo, hi, n_random=64)


# ---------------------------------------------------------------------------------------------
# odd attributes and parameters


def net_odd_attributes():
    bn = nn.BatchNorm2d(5, eps=0.0)
    bn.load_state_dict({"weight": np.array([1.0, np.inf, 0.0, -2.0, 1.0]), "bias": np.array([0.0, 1.0, np.inf, -1.0, 0.0]),
                        "running_mean": np.array([0.0, 1.0, -1.0, 1e38, 0.0]),
                        "running_var": np.array([0.0, 1e-45, -1.0, 1.0, -0.0])})

    def f(x):  # x: [1, 5, 1, 2]
        return nl.concat([bn(x), nl.clamp(x, 1.0, -1.0), nl.clamp(x, -np.inf, np.inf), nl.clamp(x, np.inf, np.inf),
                          nl.leaky_relu(x, 1e-45), nl.clamp(x, -0.0, -0.0)], axis=1)
    return _compile(f, (1, 5, 1, 2))


@pytest.mark.parametrize("kind", ["random", "straddle0", "zeros", "degenerate", "huge_mixed", "with_inf", "everything",
                                  "tiny"])
def test_odd_attributes_and_statistics(kind):
    """batch norm with var + eps = 0, subnormal and negative variance, inf gamma/beta, eps = 0; clamp
    with lo > hi and infinite bounds; leaky_relu with a subnormal slope."""
    g = net_odd_attributes()
    lo, hi = make_box(kind, (1, 5, 1, 2), np.random.default_rng(8))
    check_f32(g, lo, hi, n_random=32)
