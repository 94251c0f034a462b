"""Soundness of ``nnlemma.verify`` on networks with planted counterexamples.

The verifier decides VNN-LIB properties for the float32 kernel (SEMANTICS.md). Two things must
never happen:

* ``unsat`` on a property that some float32 input violates on the kernel — here the violation is
  *planted* (and re-checked on the kernel before the verifier runs), often at a single isolated
  float32 point, right at the decision boundary, or only because of float32 rounding;
* ``sat`` with an ``x`` that does not replay: every ``sat`` answer is re-run on the kernel at
  batch size 1 and the unsafe set is decided exactly in rationals (:func:`check_result`).

Categories (the ``category`` strings feed :data:`planted_nets.TALLY`, printed at the end of the
module with ``-s``, or appended to ``$NNLEMMA_PLANTED_TALLY``):

1. ``real_*``: violations of the real-arithmetic function planted at an interior point, a corner or
   an isolated float32 point, with thresholds at the maximum, 1 ulp below, or a tiny rational below.
2. ``f32only_*``: the exact real function is safe (proved with exact rational interval arithmetic),
   the float32 kernel is not (cancellation, sums rounding across the threshold, subnormal
   quantization, leaky slopes rounding).
3. ``holds_*``: properties that hold on every float32 point (exhaustive enumeration of tiny boxes,
   or monotonicity of the kernel for wide boxes); ``sat`` is impossible, ``unsat`` is counted.
4. ``disj_*``: several input boxes / or-of-and output sets, the violation planted in one case.
5. ``edge_*``: non-float32 and strict bounds, one-point boxes, ±0, subnormals, huge magnitudes.
6. ``hyp_*``: hypothesis-generated nets and planted points (seeded, ``derandomize``).
7. ``relu_path_*``: the same constructions with more than 16 free input dimensions, where the search
   splits ReLU activations instead of the input box.

Every planted case is verified twice (:func:`planted_nets.verify_and_check`): as a user would, and
with random sampling and PGD switched off (suffix ``_nofalsify``), so that the branch and bound
itself, not the falsifier, has to keep the planted point's box or domain open. Only soundness is
asserted; which of sat / unknown / timeout comes back is recorded, not required.

Bugs found are pinned by ``xfail(strict=True)`` reproducers at the end of this file, next to a
regression test for a bug that the concurrent (uncommitted) bounds rewrite already fixes.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnlemma as nl
from nnlemma.verify.api import verify

from planted_nets import (F32, F32_MAX, TINY, Net, climb, dec, down, enumerate_box, exhaustive_max, f32,
                          f32_values, fr, ge, gt, le, lin, lt, make_prop, max_corner, monotone_mlp,
                          random_mlp, report_tally, simple_prop, tent_layers, up, verify_and_check)

TIMEOUT = 3.0  # per verify call; most answers come back in well under 0.5 s


@pytest.fixture(scope="module", autouse=True)
def _print_tally():
    yield
    print("\n-- verifier answers per category --\n" + report_tally())


def _real_max(net: Net, dims) -> Fraction:
    return net.real_box([d[0] for d in dims], [d[1] for d in dims])[1][0]


def _real_min(net: Net, dims) -> Fraction:
    return net.real_box([d[0] for d in dims], [d[1] for d in dims])[0][0]


# -- the oracle itself ---------------------------------------------------------------------------

def test_oracle_agrees_with_kernel_and_semantics():
    """The helpers are right: the hand-written float32 emulation of SEMANTICS.md matches the kernel
    bit for bit, batched and single evaluation agree, decimals are exact, enumeration is complete."""
    rng = np.random.default_rng(7)
    for act in (("relu",), ("leaky", 0.1), ("leaky", 0.5)):
        net = random_mlp(rng, 3, [5, 4], 2, act)
        X = rng.normal(size=(40, 3)).astype(F32)
        X[0] = 0.0
        X[1] = [-0.0, 1e-45, -3e-45]
        Yb = net.kernel_many(X)
        for x, yb in zip(X, Yb):
            y = net.kernel(x)
            assert np.array_equal(y.view(np.uint32), yb.view(np.uint32))
            assert np.array_equal(y.view(np.uint32), net.emulate(x).view(np.uint32)), (x, y, net.emulate(x))
    assert [dict(e.attrs) for e in Net(1, [("linear", [[1]], None), ("leaky", 0.1)]).graph.equations][1] == \
        {"alpha": float(F32(0.1))}
    for q in (Fraction(1), fr(F32(0.1)), fr(TINY), -fr(F32_MAX), Fraction(-5, 2 ** 1074)):
        assert Fraction(dec(q)) == q
    vals = f32_values(-2 * TINY, F32(0.0))
    expect = np.array([-2 * TINY, -TINY, F32(-0.0), F32(0.0)], F32)
    assert np.array_equal(vals.view(np.uint32), expect.view(np.uint32))
    assert len(enumerate_box([F32(1), F32(0)], [up(1, 2), F32(0)])) == 3 * 2


# -- 1. real-arithmetic counterexamples planted near the boundary ---------------------------------

PEAK = (F32(0.3), F32(-0.7))
C_PEAK = f32(0.5)
THRESHOLDS = {
    "at_max": lambda c: [ge(0, c)],
    "one_ulp_below": lambda c: [ge(0, down(c))],
    "strict_one_ulp_below": lambda c: [gt(0, down(c))],
    "dyadic_2^-40_below": lambda c: [ge(0, fr(c) - Fraction(1, 2 ** 40))],
    "decimal_1e-21_below": lambda c: [ge(0, dec(fr(c) - Fraction(1, 10 ** 21)))],
}


@pytest.mark.parametrize("act", [None, F32(0.125), F32(0.1)], ids=["relu", "leaky0.125", "leaky0.1"])
@pytest.mark.parametrize("thr", sorted(THRESHOLDS))
def test_real_isolated_interior_peak(act, thr):
    """c − 4·(|x0 − 0.3| + |x1 + 0.7|) over [−1, 1]²: the value c is reached at exactly one float32
    point (4·|dx| is at least 2^-23 elsewhere, more than half an ulp of c), so random sampling and
    gradient steps cannot find it; branch and bound must keep the box around it open."""
    net = Net(2, tent_layers(PEAK, 4, C_PEAK, leaky=act))
    assert net.kernel(PEAK)[0] == C_PEAK and net.real(PEAK)[0] == fr(C_PEAK)
    assert net.kernel([up(PEAK[0]), PEAK[1]])[0] < C_PEAK and net.kernel([PEAK[0], down(PEAK[1])])[0] < C_PEAK
    prop = simple_prop(2, 1, [(-1, 1), (-1, 1)], [THRESHOLDS[thr](C_PEAK)])
    verify_and_check(net, prop, category="real_isolated_interior", witness=PEAK)


def test_real_isolated_peak_3d_leaky():
    p = (F32(0.123), F32(-0.456), F32(0.789))
    c = F32(-1.25)
    net = Net(3, tent_layers(p, 8, c, leaky=F32(0.25)))
    prop = simple_prop(3, 1, [(-1, 1)] * 3, [[ge(0, c)]])
    verify_and_check(net, prop, category="real_isolated_interior", witness=p)


@pytest.mark.parametrize("seed", range(4))
def test_real_corner_max(seed):
    """A monotone LeakyReLU net reaches its maximum at a (mixed) corner, on the kernel as well;
    threshold = the kernel's maximum itself and 1 ulp below it."""
    rng = np.random.default_rng(100 + seed)
    net, signs = monotone_mlp(rng, 3, [4, 3], ("leaky", 0.05))
    lo = rng.uniform(-2, 0, size=3).astype(F32)
    hi = (lo + rng.uniform(0.1, 2, size=3)).astype(F32)
    corner = max_corner(lo, hi, signs)
    m = net.kernel(corner)[0]
    dims = list(zip(lo, hi))
    samples = np.clip(rng.uniform(lo, hi, (500, 3)).astype(F32), lo, hi)
    assert (net.kernel_many(samples)[:, 0] <= m).all()  # the corner really is the maximum
    for unsafe in ([ge(0, m)], [ge(0, down(m))], [gt(0, down(m))]):
        for falsify in (True, False):
            verify_and_check(net, simple_prop(3, 1, dims, [unsafe]), category="real_corner", witness=corner,
                             falsify=falsify)


# -- 2. float32-only counterexamples --------------------------------------------------------------

def test_f32only_cancellation_through_bias():
    """y = fl(fl(x + 1e8) − 1e8): the real function is x (in [3, 5], below 6), the kernel rounds
    x + 1e8 to a multiple of 8, so every x > 4 gives y = 8."""
    net = Net(1, [("linear", [[1]], [1e8]), ("linear", [[1]], [-1e8])])
    for hi in (F32(5), up(4)):  # many violating points, then only the top vertex
        dims = [(3, hi)]
        assert _real_max(net, dims) < 6
        verify_and_check(net, simple_prop(1, 1, dims, [[ge(0, 6)]]), category="f32only_cancellation",
                         witness=[hi])
    # and the other side: x in [3, 4] rounds to 0 on the kernel, the real x is >= 3
    dims = [(3, 4)]
    assert _real_min(net, dims) > 0
    verify_and_check(net, simple_prop(1, 1, dims, [[le(0, 0)]]), category="f32only_cancellation", witness=[F32(3.5)])


def test_f32only_cancellation_inside_one_fold():
    """One dot product 1e8·x0 + x1 − 1e8·x2 with x0 = x2 = 1: real value x1 <= 4.0000005, the
    fold's partial sum 1e8 + x1 rounds up to 1e8 + 8 at the single point x1 = next_up(4)."""
    net = Net(3, [("linear", [[1e8, 1, -1e8]], None)])
    dims = [(1, 1), (3, up(4)), (1, 1)]
    assert _real_max(net, dims) < 6
    verify_and_check(net, simple_prop(3, 1, dims, [[ge(0, 6)]]), category="f32only_cancellation",
                     witness=[1, up(4), 1])


@pytest.mark.parametrize("k", [2 ** 20, 2 ** 18])
def test_f32only_isolated_interior_point(k):
    """A tent with real maximum 1 + 2^-10 at one interior point p, then fl(fl(t + 2^24) − 2^24):
    the kernel rounds t > 1 up to 2, so Y_0 >= 1.5 holds at p only (k·ulp > 2^-10 elsewhere) while
    the real function never exceeds 1 + 2^-10."""
    c = f32(1 + 2 ** -10)
    net = Net(2, tent_layers(PEAK, k, c) + [("linear", [[1]], [2 ** 24]), ("linear", [[1]], [-2 ** 24])])
    dims = [(-1, 1), (-1, 1)]
    assert _real_max(net, dims) == fr(c) < Fraction(3, 2)
    assert net.kernel(PEAK)[0] == 2 and np.array_equal(net.emulate(PEAK), net.kernel(PEAK))
    neighbours = [[up(PEAK[0]), PEAK[1]], [down(PEAK[0]), PEAK[1]], [PEAK[0], up(PEAK[1])], [PEAK[0], down(PEAK[1])]]
    assert all(net.kernel(q)[0] == 0 for q in neighbours)
    verify_and_check(net, simple_prop(2, 1, dims, [[ge(0, 1.5)]]), category="f32only_isolated", witness=PEAK,
                     timeout=5.0)


def test_f32only_subnormal_quantization():
    """x·2^-140 is subnormal, so the kernel keeps only ~9 bits of x: y = fl(fl(fl(x·2^-140)·2^70)·2^70)
    rounds 1.5015 up to 1.501953125, above 1.5016, which the real function (y = x <= 1.5015) never
    reaches."""
    net = Net(1, [("linear", [[2.0 ** -140]], None), ("linear", [[2.0 ** 70]], None), ("linear", [[2.0 ** 70]], None)])
    dims = [(1, "1.5015")]
    assert net.real_box([1], [Fraction("1.5015")])[1][0] == Fraction("1.5015")
    w = [F32(1.5015) if fr(F32(1.5015)) <= Fraction("1.5015") else down(F32(1.5015))]  # top of the region
    verify_and_check(net, simple_prop(1, 1, dims, [[ge(0, "1.5016")]]), category="f32only_subnormal", witness=w)


def _rounding_up_vertex(rng, n_in, hidden, act, tries=200):
    """A monotone net and box whose max corner rounds *up* on the kernel (float > real there)."""
    for _ in range(tries):
        net, signs = monotone_mlp(rng, n_in, hidden, act)
        lo = rng.uniform(-1, 1, size=n_in).astype(F32)
        hi = (lo + rng.uniform(0.01, 1, size=n_in)).astype(F32)
        corner = max_corner(lo, hi, signs)
        y, r = fr(net.kernel(corner)[0]), net.real(corner)[0]
        if y > r and _real_max(net, list(zip(lo, hi))) == r:
            return net, lo, hi, corner, y, r
    raise AssertionError("no rounding-up corner found")


@pytest.mark.parametrize("seed,hidden,act", [(0, [], None), (1, [], None), (2, [6], ("relu",)),
                                             (3, [5], ("leaky", 0.1)), (4, [4, 4], ("leaky", 0.01))])
def test_f32only_sum_rounds_across_threshold(seed, hidden, act):
    """Monotone nets: the real maximum is at the max corner (exact interval arithmetic proves it),
    and so is the kernel's; where the kernel's folds round up, any threshold in (real max, kernel
    max] is violated only in float32."""
    rng = np.random.default_rng(seed)
    net, lo, hi, corner, y, r = _rounding_up_vertex(rng, 6, hidden, act)
    dims = list(zip(lo, hi))
    for t in (y, (y + r) / 2):  # both dyadic
        verify_and_check(net, simple_prop(6, 1, dims, [[ge(0, t)]]), category="f32only_sum_rounding",
                         witness=corner)


def test_f32only_leaky_slope_rounding():
    """fl(0.1f·x) on the negative branch: a box where every pre-activation is negative, and the
    output -10·leaky(...) rounds above the real maximum at the max corner."""
    rng = np.random.default_rng(11)
    found = 0
    for _ in range(400):
        w = F32(rng.uniform(0.5, 2))
        net = Net(1, [("linear", [[w]], [F32(-4)]), ("leaky", 0.1), ("linear", [[-10.0]], None)])
        # increasing in x? pre = w·x − 4 < 0, leaky slope 0.1 > 0, then ·(−10): decreasing in x
        lo = F32(rng.uniform(-1, 1))
        hi = up(lo, int(rng.integers(1000, 100000)))
        y, r = fr(net.kernel([lo])[0]), net.real([lo])[0]
        if y > r and _real_max(net, [(lo, hi)]) == r:
            found += 1
            verify_and_check(net, simple_prop(1, 1, [(lo, hi)], [[ge(0, y)]]), category="f32only_leaky_rounding",
                             witness=[lo])
            if found == 3:
                break
    assert found == 3


# -- 3. properties that hold on every float32 point -------------------------------------------------

MAGNITUDES = {"unit": 1.0, "subnormal": 2.0 ** -146, "small": 2.0 ** -120, "large": 1e30, "huge": 2.0 ** 120}


@pytest.mark.parametrize("mag", sorted(MAGNITUDES))
@pytest.mark.parametrize("seed", range(3))
def test_holds_exhaustive_tiny_box(mag, seed):
    """Boxes of a few hundred float32 points (more than the verifier's enumeration limit), decided
    here by running the kernel on every point: ``Y_0 > max`` holds (sat impossible), ``Y_0 >= max``
    is violated at the argmax (unsat impossible)."""
    rng = np.random.default_rng(1000 * seed + len(mag))
    net = random_mlp(rng, 2, [5], 1, ("relu",) if seed % 2 else ("leaky", 0.1),
                     scale=1.0 if MAGNITUDES[mag] >= 1e-30 else 2.0 ** 100)
    centre = (rng.uniform(-1, 1, size=2) * MAGNITUDES[mag]).astype(F32)
    lo = np.array([down(centre[0], 9), down(centre[1], 7)], F32)
    hi = np.array([up(centre[0], 12), up(centre[1], 8)], F32)
    m, arg, n = exhaustive_max(net, lo, hi)
    assert n >= 300 and m is not None
    dims = list(zip(lo, hi))
    verify_and_check(net, simple_prop(2, 1, dims, [[gt(0, m)]]), category="holds_exhaustive", holds=True)
    verify_and_check(net, simple_prop(2, 1, dims, [[ge(0, m)]]), category="real_exhaustive_argmax", witness=arg)


def test_holds_exhaustive_box_around_zero_with_subnormals():
    """A box of subnormals around ±0 (both zeros are points of it): first-layer weights 2^120 make
    the subnormal inputs matter."""
    rng = np.random.default_rng(5)
    net = random_mlp(rng, 2, [4], 2, ("leaky", 0.5), bias=False, scale=2.0 ** 120)
    lo, hi = [-9 * TINY, -7 * TINY], [11 * TINY, 8 * TINY]
    for row in ({0: 1}, {0: 1, 1: -2}):
        m, arg, n = exhaustive_max(net, lo, hi, row)
        assert n == 22 * 17  # -9..-1 ulps, -0, +0, 1..11 ulps (and 17 for X_1)
        dims = list(zip(lo, hi))
        verify_and_check(net, simple_prop(2, 2, dims, [[lin(row, ">", m)]]), category="holds_exhaustive", holds=True)
        verify_and_check(net, simple_prop(2, 2, dims, [[lin(row, ">=", m)]]), category="real_exhaustive_argmax",
                         witness=arg)


@pytest.mark.parametrize("seed", range(4))
def test_holds_monotone_wide_box(seed):
    """Wide boxes (about 2^25 float32 points per axis) on monotone nets: the kernel's maximum is at
    the max corner, so ``Y_0 > kernel(corner)`` holds on every float32 point. ``sat`` would be a
    bug; how often ``unsat`` is proved is recorded (completeness is not required)."""
    rng = np.random.default_rng(200 + seed)
    net, signs = monotone_mlp(rng, 2, [6], ("relu",) if seed % 2 else ("leaky", 0.1))
    lo = rng.uniform(-1, 0, size=2).astype(F32)
    hi = (lo + rng.uniform(0.5, 1, size=2)).astype(F32)
    m = net.kernel(max_corner(lo, hi, signs))[0]
    dims = list(zip(lo, hi))
    verify_and_check(net, simple_prop(2, 1, dims, [[gt(0, m)]]), category="holds_monotone_wide", holds=True,
                     timeout=2.0)
    verify_and_check(net, simple_prop(2, 1, dims, [[ge(0, m)]]), category="real_corner",
                     witness=max_corner(lo, hi, signs), timeout=2.0)


def test_holds_peak_just_above_max():
    """The tent of case 1 with threshold c + 2^-40: on the kernel y = fl(S + c) with S <= 0 (a fold
    of non-positive products), so y <= c everywhere — the property holds."""
    net = Net(2, tent_layers(PEAK, 4, C_PEAK))
    for unsafe in ([ge(0, fr(C_PEAK) + Fraction(1, 2 ** 40))], [gt(0, C_PEAK)]):
        verify_and_check(net, simple_prop(2, 1, [(-1, 1), (-1, 1)], [unsafe]), category="holds_peak", holds=True)


def test_holds_in_float32_but_not_in_reals():
    """fl(fl(x + 2^24) − 2^24) is 0 for every float32 x in [0.25, 0.75] (monotone; the top corner
    gives 0), while the real function is x >= 0.25: ``Y_0 >= 0.1`` is violated in real arithmetic
    only. A verifier reasoning about the reals (without the float32 semantics) would say sat here
    — with a counterexample that does not replay."""
    net = Net(1, [("linear", [[1]], [2 ** 24]), ("linear", [[1]], [-2 ** 24])])
    assert net.kernel([0.75])[0] == 0 and net.kernel([0.25])[0] == 0 and _real_min(net, [(0.25, 0.75)]) == Fraction(1, 4)
    verify_and_check(net, simple_prop(1, 1, [(0.25, 0.75)], [[ge(0, 0.1)]]), category="holds_f32_not_real",
                     holds=True, timeout=1.0)
    dims = [(0.5, up(0.5, 300))]  # small enough to check every point here
    assert all(v == 0 for v in net.kernel_many(f32_values(*dims[0]))[:, 0])
    verify_and_check(net, simple_prop(1, 1, dims, [[ge(0, 0.1)]]), category="holds_f32_not_real", holds=True)


# -- 4. disjunctive input regions and multi-row output sets -----------------------------------------

def test_disj_boxes_planted_in_one():
    """Three input boxes; only the middle one holds the isolated peak of case 1."""
    net = Net(2, tent_layers(PEAK, 4, C_PEAK))
    boxes = [[(-1, 0), (-1, 1)], [(0.25, 0.5), (-1, -0.5)], [(0.5, 1), (-1, 1)]]
    prop = make_prop(2, 1, [(b, [[ge(0, C_PEAK)]]) for b in boxes])
    res = verify_and_check(net, prop, category="disj_boxes", witness=PEAK)
    if res.status == "sat":
        assert 0.25 <= res.x[0] <= 0.5
    # without the middle box the property holds (|x0 − 0.3| >= 0.2 there, so y <= fl(c − 0.8) < c)
    prop = make_prop(2, 1, [(b, [[ge(0, C_PEAK)]]) for b in (boxes[0], boxes[2])])
    verify_and_check(net, prop, category="holds_disj", holds=True)


def test_disj_many_cases_only_last_planted():
    net = Net(2, tent_layers(PEAK, 4, C_PEAK))
    boxes = [[(-1 + 0.25 * i, -0.75 + 0.25 * i), (-1, 1)] for i in range(5)] + [[(0.25, 0.375), (-0.75, -0.625)]]
    prop = make_prop(2, 1, [(b, [[ge(0, C_PEAK)]]) for b in boxes])
    verify_and_check(net, prop, category="disj_boxes", witness=PEAK)


def test_disj_or_of_ands_planted_in_one_conjunction():
    """Y = (x0 + x1, x0 − x1) on [−1, 1]²; the first conjunction is impossible (Y_0 >= 2.5), the
    second holds only at the corner (1, 1) (Y_0 >= 2, Y_1 >= 0, Y_1 <= 0)."""
    net = Net(2, [("linear", [[1, 1], [1, -1]], [0, 0])])
    dnf = [[ge(0, 2.5), le(1, 0)], [ge(0, 2), ge(1, 0), le(1, 0)]]
    prop = simple_prop(2, 2, [(-1, 1), (-1, 1)], dnf)
    verify_and_check(net, prop, category="disj_or_of_ands", witness=[1, 1])
    # a one-ulp-narrower box makes the second conjunction impossible too (monotone: Y_0 < 2)
    prop = simple_prop(2, 2, [(-1, down(1)), (-1, 1)], dnf)
    verify_and_check(net, prop, category="holds_disj", holds=True)


def test_disj_or_of_ands_isolated_peak_with_two_outputs():
    """Two tents with peaks at different points; the unsafe set asks for both outputs high
    (impossible: the peaks are far apart) or for Y_1 at its own peak while Y_0 is low."""
    q = (F32(-0.55), F32(0.35))
    l0, l1 = tent_layers(PEAK, 4, C_PEAK), tent_layers(q, 4, C_PEAK)
    W1 = np.concatenate([l0[0][1], l1[0][1]])
    b1 = np.concatenate([l0[0][2], l1[0][2]])
    W2 = np.zeros((2, 8))
    W2[0, :4], W2[1, 4:] = -4, -4
    net = Net(2, [("linear", W1, b1), ("relu",), ("linear", W2, [C_PEAK, C_PEAK])])
    dnf = [[ge(0, C_PEAK), ge(1, C_PEAK)], [ge(1, C_PEAK), le(0, -1)]]
    prop = simple_prop(2, 2, [(-1, 1), (-1, 1)], dnf)
    verify_and_check(net, prop, category="disj_or_of_ands", witness=q)


def test_disj_cases_keep_their_own_unsafe_sets():
    """(x0 in [0,1] and Y_0 >= 2) or (x0 in [2,3] and Y_0 <= 1) with Y_0 = x0: each case is safe,
    although each box holds points in the *other* case's unsafe set. A verifier mixing cases would
    answer sat; moving the second threshold to 2 plants exactly one counterexample, x0 = 2."""
    net = Net(1, [("linear", [[1]], None)])
    prop = make_prop(1, 1, [([(0, 1)], [[ge(0, 2)]]), ([(2, 3)], [[le(0, 1)]])])
    verify_and_check(net, prop, category="holds_disj", holds=True)
    prop = make_prop(1, 1, [([(0, 1)], [[ge(0, 2)]]), ([(2, 3)], [[le(0, 2)]])])
    res = verify_and_check(net, prop, category="disj_boxes", witness=[2])
    if res.status == "sat":
        assert res.x[0] == 2


# -- 5. edge inputs ---------------------------------------------------------------------------------

IDENTITY = Net(1, [("linear", [[1]], None)])


def test_edge_bounds_not_float32_values():
    """[0.05, 0.1] (decimals): float32(0.1) = 0.100000001... is outside, so the largest point of the
    region is the float32 just below it; the smallest is float32(0.05) (above 0.05)."""
    top = down(F32(0.1)) if Fraction(float(F32(0.1))) > Fraction("0.1") else F32(0.1)
    assert Fraction(float(F32(0.1))) > Fraction("0.1")
    dims = [("0.05", "0.1")]
    verify_and_check(IDENTITY, simple_prop(1, 1, dims, [[ge(0, top)]]), category="edge_nonf32_bounds", witness=[top])
    verify_and_check(IDENTITY, simple_prop(1, 1, dims, [[ge(0, F32(0.1))]]), category="edge_nonf32_bounds", holds=True)
    bottom = F32(0.05)
    assert Fraction(float(bottom)) >= Fraction("0.05") and Fraction(float(down(bottom))) < Fraction("0.05")
    verify_and_check(IDENTITY, simple_prop(1, 1, dims, [[le(0, bottom)]]), category="edge_nonf32_bounds",
                     witness=[bottom])
    verify_and_check(IDENTITY, simple_prop(1, 1, dims, [[lt(0, bottom)]]), category="edge_nonf32_bounds", holds=True)


def test_edge_strict_input_bounds():
    dims_strict = [(0.25, 0.5, ">", "<")]
    verify_and_check(IDENTITY, simple_prop(1, 1, dims_strict, [[ge(0, 0.5)]]), category="edge_strict", holds=True)
    verify_and_check(IDENTITY, simple_prop(1, 1, dims_strict, [[le(0, 0.25)]]), category="edge_strict", holds=True)
    verify_and_check(IDENTITY, simple_prop(1, 1, dims_strict, [[ge(0, down(0.5))]]), category="edge_strict",
                     witness=[down(0.5)])
    verify_and_check(IDENTITY, simple_prop(1, 1, [(0.25, 0.5)], [[ge(0, 0.5)]]), category="edge_strict", witness=[0.5])


def test_edge_one_point_boxes():
    net = Net(2, tent_layers(PEAK, 4, C_PEAK))
    dims = [(PEAK[0], PEAK[0]), (PEAK[1], PEAK[1])]
    verify_and_check(net, simple_prop(2, 1, dims, [[ge(0, C_PEAK)]]), category="edge_one_point", witness=PEAK)
    verify_and_check(net, simple_prop(2, 1, dims, [[gt(0, C_PEAK)]]), category="edge_one_point", holds=True)
    # a one-point rational box that holds no float32 point: the region is empty, nothing can be sat
    dims = [("0.1", "0.1"), (-1, 1)]
    verify_and_check(net, simple_prop(2, 1, dims, [[le(0, 100)]]), category="edge_empty_region", holds=True)


def _recip(x):
    return nl.clamp(1.0 / x, -1.0, 1.0)


def _zero_sign(x):
    """+1 at +0, −1 at −0, 0 at every other float32 (clamp(x·2^149) is ±1 off zero)."""
    return nl.clamp(1.0 / x, -1.0, 1.0) - nl.clamp(x * 2.0 ** 100 * 2.0 ** 49, -1.0, 1.0)


def test_edge_signed_zero():
    """Boxes containing 0 contain both zeros; 1/x tells them apart (−inf vs +inf)."""
    net = Net(1, fn=_recip)
    verify_and_check(net, simple_prop(1, 1, [(0, 0)], [[le(0, -0.5)]]), category="edge_zero", witness=[F32(-0.0)])
    verify_and_check(net, simple_prop(1, 1, [(0, 0)], [[ge(0, 0.5)]]), category="edge_zero", witness=[F32(0.0)])
    net = Net(1, fn=_zero_sign)
    assert [net.kernel([v])[0] for v in (F32(-0.0), F32(0.0), TINY, -TINY)] == [-1, 1, 0, 0]
    # asymmetric boxes (the centre is not 0) with about a thousand subnormals
    a, b = 2 ** -140, 2 ** -141
    verify_and_check(net, simple_prop(1, 1, [(-a, b)], [[ge(0, 0.5)]]), category="edge_zero", witness=[F32(0.0)])
    verify_and_check(net, simple_prop(1, 1, [(-b, a)], [[le(0, -0.5)]]), category="edge_zero", witness=[F32(-0.0)])
    # strict bounds at 0 exclude both zeros, and _zero_sign is 0 at every other float32
    verify_and_check(net, simple_prop(1, 1, [(-a, 0, ">=", "<")], [[ge(0, 0.5)]]), category="edge_zero", holds=True)
    verify_and_check(net, simple_prop(1, 1, [(0, a, ">", "<=")], [[le(0, -0.5)]]), category="edge_zero", holds=True)


def test_edge_subnormal_peak():
    """An isolated peak at a subnormal point: the first layer scales by 2^120 (exact for subnormal
    inputs), so |x − p| of one subnormal ulp is 2^-29 after scaling."""
    p = 37 * TINY
    W1 = np.array([[2.0 ** 120], [-(2.0 ** 120)]])
    b1 = np.array([-float(p) * 2 ** 120, float(p) * 2 ** 120])
    net = Net(1, [("linear", W1, b1), ("relu",), ("linear", [[-(2.0 ** 10), -(2.0 ** 10)]], [0.25])])
    assert net.kernel([p])[0] == 0.25 and net.kernel([up(p)])[0] < 0.25 and net.kernel([down(p)])[0] < 0.25
    dims = [(-(2.0 ** -130), 2.0 ** -131)]
    verify_and_check(net, simple_prop(1, 1, dims, [[ge(0, 0.25)]]), category="edge_subnormal", witness=[p])
    verify_and_check(net, simple_prop(1, 1, dims, [[gt(0, 0.25)]]), category="edge_subnormal", holds=True)


def test_edge_subnormal_ties_to_even():
    """fl(0.5·x) for a subnormal x = (4k + 3)·2^-149 is a tie that rounds *up* to (2k + 2)·2^-149;
    after exact scaling by 2^120 the kernel exceeds the real maximum at the top of the box."""
    k = 1000
    hi = F32((4 * k + 3) * 2.0 ** -149)
    net = Net(1, [("linear", [[-1]], None), ("leaky", 0.5), ("linear", [[-(2.0 ** 60)]], None),
                  ("linear", [[2.0 ** 60]], None)])
    y, r = net.kernel([hi])[0], net.real([hi])[0]
    assert fr(y) == (2 * k + 2) * Fraction(1, 2 ** 29) and r == (2 * k + Fraction(3, 2)) * Fraction(1, 2 ** 29)
    t = (fr(y) + r) / 2
    dims = [(TINY, hi)]
    assert _real_max(net, dims) == r < t
    verify_and_check(net, simple_prop(1, 1, dims, [[ge(0, t)]]), category="f32only_subnormal", witness=[hi])


def test_edge_large_magnitude_peak():
    """An isolated peak near 1e30 (ulp 2^76), scaled down by 2^-100 before the tent."""
    p = F32(1.2345e30)
    W1 = np.array([[2.0 ** -100], [-(2.0 ** -100)]])
    pp = float(F32(float(p) * 2.0 ** -100))
    assert pp == float(p) * 2.0 ** -100
    net = Net(1, [("linear", W1, [-pp, pp]), ("relu",), ("linear", [[-(2.0 ** 30), -(2.0 ** 30)]], [1])])
    assert net.kernel([p])[0] == 1 and net.kernel([up(p)])[0] < 1 and net.kernel([down(p)])[0] < 1
    dims = [(1e30, 2e30)]
    verify_and_check(net, simple_prop(1, 1, dims, [[ge(0, 1)]]), category="edge_large", witness=[p])


def test_edge_box_beyond_float32_range():
    """X_0 in [0, 1e39]: the region is every finite float32 >= 0 (up to the largest float32)."""
    net = Net(1, [("linear", [[0.5]], None)])
    verify_and_check(net, simple_prop(1, 1, [(0, "1e39")], [[ge(0, F32_MAX / 2)]]), category="edge_large",
                     witness=[F32_MAX])
    verify_and_check(net, simple_prop(1, 1, [("-1e39", 0)], [[le(0, -F32_MAX / 2)]]), category="edge_large",
                     witness=[-F32_MAX])


# the overflow construction of test_regression_overflowing_fold_interval_rounding_bound (at the end), here
# with a bias: the bias's half-ulp term is inf there, so this was sound even before the fix
_X_TOP = down(F32_MAX, 10)
_A_HALF = up(F32(2.0 ** 103))  # just over half an ulp (2^104) of the top binade
_BIG = F32(2.0 ** 110)
_OVF_DIMS = [(_X_TOP, _X_TOP), (_A_HALF, _BIG), (_A_HALF, _BIG), (_A_HALF, _BIG)]
_OVF_T = fr(_X_TOP) + Fraction(5, 4) * 2 ** 104


def _overflow_net(bias):
    return Net(4, [("linear", [[1, 1, 1, 1], [0, 1, 1, 1]], bias)])


def _overflow_check(net):
    w = [_X_TOP, _A_HALF, _A_HALF, _A_HALF]
    y = net.kernel(w)
    assert np.isfinite(y).all() and np.array_equal(y, net.emulate(w))
    # real: Y_0 − Y_1 = x0 = _X_TOP on the whole box (the weight rows differ by e_0), below _OVF_T
    W = net.layers[0][1]
    assert list(W[0] - W[1]) == [1, 0, 0, 0] and fr(_X_TOP) < _OVF_T
    assert fr(y[0]) == fr(_X_TOP) + 3 * 2 ** 104  # each partial sum rounded up by a full ulp
    assert fr(y[0]) - fr(y[1]) >= _OVF_T
    return w


def test_edge_near_overflow_with_bias():
    net = _overflow_net([0.0, 0.0])
    w = _overflow_check(net)
    verify_and_check(net, simple_prop(4, 2, _OVF_DIMS, [[lin({0: 1, 1: -1}, ">=", _OVF_T)]]),
                     category="f32only_overflow", witness=w)


def test_edge_infinite_outputs_are_not_counterexamples():
    """Y_0 = 2^100·x overflows to +inf on the whole box. Atom.holds is None for non-finite outputs,
    so no point is a counterexample of Y_0 >= 1 (nor NaN outputs of anything); the verifier must not
    report sat with such a point. (Today the answer is unsat, "the property holds"; whether an
    infinite output should rather count as violating Y_0 >= 1 is a policy question.)"""
    net = Net(1, [("linear", [[2.0 ** 100]], [0.0])])
    dims = [(2 ** 28, up(F32(2 ** 28), 30))]
    assert np.isposinf(net.kernel_many(f32_values(*dims[0]))).all()
    verify_and_check(net, simple_prop(1, 1, dims, [[ge(0, 1)]]), category="edge_inf_outputs", holds=True)


# -- the ReLU-splitting search (more than 16 free input dimensions) -----------------------------------
# bab.solve_case switches from input splitting to ReLU-activation splitting when a case has more
# than Options.input_split_max_dims (16) free input dimensions and the net has ReLUs; these tests
# run the planted constructions through that path.

N_EXTRA = 15  # free dimensions that feed nothing (weight 0), to reach 17 free dimensions


def _pad_inputs(layers, n_extra=N_EXTRA):
    _, W, b = layers[0]
    W = np.concatenate([W, np.zeros((W.shape[0], n_extra), F32)], axis=1)
    return [("linear", W, b)] + layers[1:]


def test_relu_path_isolated_peak():
    """Case 1's isolated peak, with 15 extra free inputs: the ReLU search cannot find the interior
    point (its candidates are box vertices) nor refute the domains holding it: unsat is the bug."""
    w = np.array(list(PEAK) + [0.25] * N_EXTRA, F32)
    net = Net(17, _pad_inputs(tent_layers(PEAK, 4, C_PEAK)))
    dims = [(-1, 1)] * 17
    for unsafe in ([ge(0, C_PEAK)], [ge(0, fr(C_PEAK) - Fraction(1, 2 ** 20))], [gt(0, down(C_PEAK))]):
        verify_and_check(net, simple_prop(17, 1, dims, [unsafe]), category="relu_path_planted", witness=w)
    verify_and_check(net, simple_prop(17, 1, dims, [[gt(0, C_PEAK)]]), category="relu_path_holds", holds=True)


def test_relu_path_f32only_isolated_point():
    w = np.array(list(PEAK) + [-0.5] * N_EXTRA, F32)
    c = f32(1 + 2 ** -10)
    net = Net(17, _pad_inputs(tent_layers(PEAK, 2 ** 20, c)) + [("linear", [[1]], [2 ** 24]), ("linear", [[1]], [-2 ** 24])])
    dims = [(-1, 1)] * 17
    assert _real_max(net, dims) == fr(c)
    verify_and_check(net, simple_prop(17, 1, dims, [[ge(0, 1.5)]]), category="relu_path_f32only", witness=w)


@pytest.mark.parametrize("seed", range(3))
def test_relu_path_monotone_corner_and_margins(seed):
    """20 inputs, monotone ReLU/LeakyReLU nets: the max corner is planted (sat required, also for
    thresholds 1 ulp below and a float32-only rounding-up threshold when there is one); thresholds
    above the kernel's maximum hold (sat impossible; unsat counted)."""
    rng = np.random.default_rng(300 + seed)
    net, signs = monotone_mlp(rng, 20, [16, 8], ("relu",) if seed % 2 else ("leaky", 0.1))
    lo = rng.uniform(-1, 0, 20).astype(F32)
    hi = (lo + rng.uniform(0.05, 1, 20)).astype(F32)
    dims = list(zip(lo, hi))
    corner = max_corner(lo, hi, signs)
    m = net.kernel(corner)[0]
    r = net.real(corner)[0]
    assert _real_max(net, dims) == r
    thresholds = [m, down(m)] + ([(fr(m) + r) / 2] if fr(m) > r else [])
    for t in thresholds:
        for falsify in (True, False):
            verify_and_check(net, simple_prop(20, 1, dims, [[ge(0, t)]]), category="relu_path_planted",
                             witness=corner, falsify=falsify, timeout=1.0)
    for rel in (Fraction(0), Fraction(1, 2 ** 20), Fraction(1, 2 ** 10), Fraction(1, 2 ** 4)):
        verify_and_check(net, simple_prop(20, 1, dims, [[gt(0, fr(m) + abs(fr(m)) * rel)]]),
                         category="relu_path_holds", holds=True)


def _relu_path_exhaustive(seed):
    """17 free dimensions of 2 float32 points each: 2^17 points, every one run on the kernel."""
    rng = np.random.default_rng(400 + seed)
    net = random_mlp(rng, 17, [8, 6], 1, ("relu",) if seed % 2 else ("leaky", 0.1))
    lo = rng.uniform(-1, 1, 17).astype(F32)
    hi = np.array([up(v) for v in lo], F32)
    m, arg, n = exhaustive_max(net, lo, hi)
    assert n == 2 ** 17
    dims = list(zip(lo, hi))
    verify_and_check(net, simple_prop(17, 1, dims, [[gt(0, m)]]), category="relu_path_exhaustive_holds", holds=True)
    verify_and_check(net, simple_prop(17, 1, dims, [[ge(0, m)]]), category="relu_path_exhaustive_argmax", witness=arg)


def test_relu_path_exhaustive_2_pow_17_points():
    _relu_path_exhaustive(0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 9))
def test_relu_path_exhaustive_2_pow_17_points_slow(seed):
    _relu_path_exhaustive(seed)


# -- 6. hypothesis: random nets, random planted points ----------------------------------------------

FAST = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

net_params = st.fixed_dictionaries({
    "seed": st.integers(0, 2 ** 32 - 1),
    "n_in": st.integers(1, 3),
    "n_out": st.integers(1, 2),
    "hidden": st.lists(st.integers(1, 5), min_size=1, max_size=2),
    "act": st.sampled_from([("relu",), ("leaky", 0.1), ("leaky", 0.5), ("leaky", 0.01)]),
    "bias": st.booleans(),
    "mag": st.sampled_from([1.0, 1.0, 1.0, 2.0 ** -135, 1e-20, 1e20]),
    "width": st.sampled_from([1.0, 1e-3, 1e-6, 0.0]),
})


def _planted_case(pr):
    rng = np.random.default_rng(pr["seed"])
    scale = 2.0 ** 100 if pr["mag"] < 1e-30 else 1.0
    net = random_mlp(rng, pr["n_in"], pr["hidden"], pr["n_out"], pr["act"], bias=pr["bias"], scale=scale)
    c = rng.uniform(-1, 1, size=pr["n_in"]) * pr["mag"]
    w = rng.uniform(0, 1, size=pr["n_in"]) * pr["mag"] * pr["width"]
    lo, hi = (c - w).astype(F32), (c + w).astype(F32)
    row = rng.integers(-2, 3, size=pr["n_out"])
    if not row.any():
        row[0] = 1
    return net, rng, lo, hi, {j: int(v) for j, v in enumerate(row) if v}


def _planted_prop(net, lo, hi, row, x, op=">="):
    y = net.kernel(x)
    if not all(np.isfinite(y[j]) for j in row):
        return None
    t = sum((c * fr(y[j]) for j, c in row.items()), Fraction(0))
    return simple_prop(len(lo), net.n_out, list(zip(lo, hi)), [[lin(row, op, t)]])


def _hyp_random_point(pr):
    net, rng, lo, hi, row = _planted_case(pr)
    x = np.clip((lo + rng.random(lo.size) * (hi.astype(np.float64) - lo)).astype(F32), lo, hi)
    prop = _planted_prop(net, lo, hi, row, x)
    if prop is not None:
        verify_and_check(net, prop, category="hyp_random_point", witness=x, timeout=2.0, seed=pr["seed"] % 7)


def _hyp_local_max(pr):
    """The planted point is a local maximum of row·y found by ulp-level hill climbing, so the
    threshold sits right at (or next to) the kernel's maximum: the hardest planted points."""
    net, rng, lo, hi, row = _planted_case(pr)
    vec = np.zeros(net.n_out)
    for j, c in row.items():
        vec[j] = c
    x = climb(net, lo, hi, vec, rng, samples=256)
    prop = _planted_prop(net, lo, hi, row, x)
    if prop is not None:
        verify_and_check(net, prop, category="hyp_local_max", witness=x, timeout=2.0)


def _hyp_tiny_box(pr):
    """Tiny boxes decided by enumeration: strict threshold at the max holds, non-strict is violated."""
    net, rng, lo, hi, row = _planted_case(pr)
    lo = np.array([down(v, int(rng.integers(0, 12))) for v in lo], F32)
    hi = np.array([up(v, int(rng.integers(0, 12))) for v in lo], F32)
    if np.prod([len(f32_values(a, b)) for a, b in zip(lo, hi)]) > 3000:
        return
    m, arg, _ = exhaustive_max(net, lo, hi, row)
    if m is None:
        return
    dims = list(zip(lo, hi))
    verify_and_check(net, simple_prop(len(lo), net.n_out, dims, [[lin(row, ">", m)]]), category="hyp_tiny_box_holds",
                     holds=True, timeout=2.0)
    verify_and_check(net, simple_prop(len(lo), net.n_out, dims, [[lin(row, ">=", m)]]),
                     category="hyp_tiny_box_argmax", witness=arg, timeout=2.0)


def _hyp_f32only(seed, n_in, hidden, act):
    rng = np.random.default_rng(seed)
    try:
        net, lo, hi, corner, y, r = _rounding_up_vertex(rng, n_in, hidden, act, tries=50)
    except AssertionError:
        return
    verify_and_check(net, simple_prop(n_in, 1, list(zip(lo, hi)), [[ge(0, y)]]), category="hyp_f32only_corner",
                     witness=corner, timeout=2.0)


relu_path_params = st.fixed_dictionaries({
    "seed": st.integers(0, 2 ** 32 - 1),
    "n_in": st.integers(17, 24),
    "hidden": st.lists(st.integers(4, 12), min_size=1, max_size=2),
    "act": st.sampled_from([("relu",), ("leaky", 0.1)]),
    "boundary": st.booleans(),
    "width": st.sampled_from([1.0, 0.1, 1e-4]),
})


def _hyp_relu_path(pr):
    """High-dimensional planted points: a local maximum from hill climbing, optionally with the
    first layer's biases moved so that several pre-activations are *exactly* 0 at the planted point
    (it then lies on the boundary shared by both children of those ReLU splits)."""
    rng = np.random.default_rng(pr["seed"])
    n = pr["n_in"]
    net = random_mlp(rng, n, pr["hidden"], 1, pr["act"])
    lo = rng.uniform(-1, 1, n).astype(F32)
    hi = (lo + rng.uniform(0.01, 1, n) * pr["width"]).astype(F32)
    x = climb(net, lo, hi, np.array([1.0]), rng, samples=128)
    if pr["boundary"]:
        W1, b1 = net.layers[0][1], net.layers[0][2].copy()
        pre = Net(n, [("linear", W1, np.zeros_like(b1))]).kernel(x)  # the fold alone, +0 bias
        rows = rng.choice(len(b1), size=max(1, len(b1) // 2), replace=False)
        b1[rows] = -pre[rows]
        net = Net(n, [("linear", W1, b1)] + net.layers[1:])
        h = Net(n, [net.layers[0]]).kernel(x)
        assert (h[rows] == 0).all()
    y = net.kernel(x)[0]
    if not np.isfinite(y):
        return
    dims = list(zip(lo, hi))
    prop = simple_prop(n, 1, dims, [[ge(0, y)]])
    verify_and_check(net, prop, category="hyp_relu_path", witness=x, timeout=2.0)


@FAST
@given(relu_path_params)
def test_hyp_relu_path_planted(pr):
    _hyp_relu_path(pr)


@pytest.mark.slow
@SLOW
@given(relu_path_params)
def test_hyp_relu_path_planted_slow(pr):
    _hyp_relu_path(pr)


@FAST
@given(net_params)
def test_hyp_random_planted_point(pr):
    _hyp_random_point(pr)


@FAST
@given(net_params)
def test_hyp_planted_local_max(pr):
    _hyp_local_max(pr)


@FAST
@given(net_params)
def test_hyp_tiny_box_exhaustive(pr):
    _hyp_tiny_box(pr)


hyp_f32only_args = (st.integers(0, 2 ** 32 - 1), st.integers(2, 8), st.lists(st.integers(1, 4), max_size=2),
                    st.sampled_from([("relu",), ("leaky", 0.1)]))


@FAST
@given(*hyp_f32only_args)
def test_hyp_f32only_rounding_corner(seed, n_in, hidden, act):
    _hyp_f32only(seed, n_in, hidden, act)


@pytest.mark.slow
@SLOW
@given(net_params)
def test_hyp_random_planted_point_slow(pr):
    _hyp_random_point(pr)


@pytest.mark.slow
@SLOW
@given(net_params)
def test_hyp_planted_local_max_slow(pr):
    _hyp_local_max(pr)


@pytest.mark.slow
@SLOW
@given(net_params)
def test_hyp_tiny_box_exhaustive_slow(pr):
    _hyp_tiny_box(pr)


@pytest.mark.slow
@SLOW
@given(*hyp_f32only_args)
def test_hyp_f32only_rounding_corner_slow(seed, n_in, hidden, act):
    _hyp_f32only(seed, n_in, hidden, act)


@pytest.mark.slow
@pytest.mark.parametrize("k", [2 ** 16, 2 ** 14])
def test_f32only_isolated_interior_point_wide_band_slow(k):
    """Case 2's isolated float32-only point with a flatter tent: thousands of boxes where the
    rounding term (1 at 2^24) keeps the bound open must be enumerated."""
    c = f32(1 + 2 ** -10)
    net = Net(2, tent_layers(PEAK, k, c) + [("linear", [[1]], [2 ** 24]), ("linear", [[1]], [-2 ** 24])])
    verify_and_check(net, simple_prop(2, 1, [(-1, 1), (-1, 1)], [[ge(0, 1.5)]]), category="f32only_isolated",
                     witness=PEAK, timeout=60.0, nofalsify_timeout=60.0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_holds_monotone_wide_box_slow(seed):
    rng = np.random.default_rng(5000 + seed)
    net, signs = monotone_mlp(rng, 3, [8, 6], ("relu",) if seed % 2 else ("leaky", 0.1))
    lo = rng.uniform(-1, 0, size=3).astype(F32)
    hi = (lo + rng.uniform(0.01, 1, size=3)).astype(F32)
    m = net.kernel(max_corner(lo, hi, signs))[0]
    verify_and_check(net, simple_prop(3, 1, list(zip(lo, hi)), [[gt(0, m)]]), category="holds_monotone_wide",
                     holds=True, timeout=20.0)


# -- bugs found by this suite: minimal reproducers, now regression tests ---------------------------

def test_regression_overflowing_fold_interval_rounding_bound():
    """Y = (x0 + x1 + x2 + x3, x1 + x2 + x3), bias-free, x0 = 10 ulps below FLT_MAX, x1..x3 in
    [2^103 + 2^80, 2^110]. In real arithmetic Y_0 − Y_1 = x0 on the whole box, below the threshold
    x0 + 1.25·2^104. At x1 = x2 = x3 = 2^103 + 2^80 every partial sum rounds up by almost a full ulp
    (2^104), and the kernel gives Y_0 − Y_1 = x0 + 3·2^104 − ... > threshold (all outputs finite).
    The upper end of the box makes the fold's partial-sum interval overflow, and the CROWN rounding
    term of Y_0 becomes 2^104 + 3·2^86 + 3·2^-25 instead of covering the 1.5·2^104 actual error:
    the root box is refuted and the verifier answers unsat. With a bias (test above) it is sat.

    This was BUG 1 of the suite: at commit 10c7218 fold_f32's ``_half_ulp_jit(inf)`` returned 2^-25
    (``frexp(inf)`` has exponent 0) and this test failed (unsat); the uncommitted fold_f32 rewrite
    (``_HALF_ULP_BY_EXP`` with +inf for the inf/NaN exponent) fixes it."""
    net = _overflow_net(None)
    w = _overflow_check(net)
    prop = simple_prop(4, 2, _OVF_DIMS, [[lin({0: 1, 1: -1}, ">=", _OVF_T)]])
    verify_and_check(net, prop, category="f32only_overflow", witness=w)


@pytest.mark.parametrize("extra", [0, 16], ids=["input_split", "relu_split"])
def test_bug_subnormal_output_coefficient_underflows_bound(extra):
    """Y_0 = −2^20·|x − 0.3| + Σ_{8 hidden units} 0.5·relu(1) — 4 at x = 0.3 only. The property
    2^-1074·Y_0 >= 2^-1074·4 (equivalent to Y_0 >= 4, which the verifier answers sat, or unknown on
    the ReLU-splitting path) is answered unsat: the coefficients 2^-1074·0.5 of the constant units
    round to 0 in float64, so the bound loses 4 units of 2^-1074 against a margin of about 2 (two
    nextafter steps). ``extra`` free inputs with weight 0 send the case to the ReLU-splitting
    search (same bug there: it is in backward.py)."""
    p = F32(0.3)
    n_const = 8
    W1 = np.zeros((2 + n_const, 1 + extra))
    b1 = np.zeros(2 + n_const)
    W1[0, 0], b1[0] = 1, -float(p)
    W1[1, 0], b1[1] = -1, float(p)
    b1[2:] = 1
    W2 = np.array([[-(2.0 ** 20), -(2.0 ** 20)] + [0.5] * n_const])
    net = Net(1 + extra, [("linear", W1, b1), ("relu",), ("linear", W2, None)])
    w = [p] + [0.0] * extra
    assert net.kernel(w)[0] == 4 and net.kernel([up(p)] + w[1:])[0] < 4 and net.kernel([down(p)] + w[1:])[0] < 4
    dims = [(down(p, 3), up(p, 5000))] + [(-1, 1)] * extra
    plain = verify(net.graph, simple_prop(1 + extra, 1, dims, [[ge(0, 4)]]), timeout=TIMEOUT)
    assert plain.status in ("sat", "unknown")  # the unscaled property is answered soundly
    c = Fraction(1, 2 ** 1074)
    prop = simple_prop(1 + extra, 1, dims, [[lin({0: c}, ">=", 4 * c)]])
    verify_and_check(net, prop, category="bug_subnormal_coeff", witness=w)


def test_bug_constant_beyond_float64_range_crashes():
    """Y_0 = x0 on [0, 1]: ``Y_0 <= 1e400`` is violated everywhere, ``Y_0 >= 1e400`` nowhere. The
    VNN-LIB constants are exact rationals; nothing requires them to fit in a float64."""
    prop = simple_prop(1, 1, [(0, 1)], [[le(0, "1e400")]])
    verify_and_check(IDENTITY, prop, category="edge_huge_constant", witness=[0.5])
    prop = simple_prop(1, 1, [(0, 1)], [[ge(0, "1e400")]])
    verify_and_check(IDENTITY, prop, category="edge_huge_constant", holds=True)
