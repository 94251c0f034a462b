"""The adaptive partition: float32 boxes and bisection cover exactly; every leaf's certified bounds
contain the kernel's outputs (float32 semantics) or the exact real outputs (real semantics) at
points of the leaf, compared exactly; the sampled maximum is a replayable kernel value below the
certified one; residuals that cannot be bounded never give a finite certified number."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlemma.exact import exact_eval
from nnlemma.pinn.problem import part_graph
from nnlemma.pinn.run import part_report
from nnlemma.pinn.search import Options, float32_box, midpoint, refine
from nnlemma.verify.problem import Problem

sys.path.insert(0, str(Path(__file__).parent))
import problems  # noqa: E402

F32 = np.float32


def test_float32_box_inward_and_outward():
    lo, hi = [0.1, -1.0], [0.3, 1.0]
    l32, h32 = float32_box(lo, hi, "float32")
    r32 = float32_box(lo, hi, "real")
    for v, a, b in zip(lo, l32, r32[0]):
        assert Fraction(float(a)) >= Fraction(v) > Fraction(float(np.nextafter(a, F32(-np.inf))))   # smallest f32 >= lo
        assert Fraction(float(b)) <= Fraction(v) < Fraction(float(np.nextafter(b, F32(np.inf))))    # largest f32 <= lo
    for v, a, b in zip(hi, h32, r32[1]):
        assert Fraction(float(a)) <= Fraction(v) and Fraction(float(b)) >= Fraction(v)
    assert float32_box([0.1], [0.1], "float32") is None          # no float32 point equals 0.1
    assert float32_box([0.1], [0.1], "real") is not None


@given(st.floats(-1e6, 1e6, width=32), st.floats(-1e6, 1e6, width=32))
@settings(max_examples=200, deadline=None)
def test_midpoint_splits_inside_or_reports_it_cannot(a, b):
    a, b = F32(min(a, b)), F32(max(a, b))
    m = midpoint(np.array([a]), np.array([b]))[0]
    assert a <= m <= b
    if np.nextafter(a, F32(np.inf)) < b:       # some float32 lies strictly inside: the split is proper
        assert a < m < b


def _leaf_points(res, rng, per_leaf=6):
    """Corners, centre and random float32 points of every leaf (with the leaf index)."""
    pts, owner = [], []
    for i, (l, h) in enumerate(zip(res.lo, res.hi)):
        cand = [l, h, np.array([l[0], h[1]], F32), np.array([h[0], l[1]], F32), midpoint(l, h)]
        cand += list(rng.uniform(l, h, (per_leaf, 2)).astype(F32))
        for c in cand:
            pts.append(np.clip(c, l, h))
            owner.append(i)
    return np.array(pts, F32), np.array(owner)


@pytest.mark.parametrize("seed", [0, 1])
def test_float32_leaf_bounds_contain_the_kernel_outputs(seed):
    p = problems.burgers_like(seed)
    graph, names = part_graph(p, p.residual)
    res = refine("pde", graph, names, p.lo, p.hi, Options(timeout=4, batch=64, grid=2048))
    assert len(res.lo) > 1 and np.isfinite(res.ylo).all()
    X, owner = _leaf_points(res, np.random.default_rng(seed))
    Y = Problem(graph).evaluate(X).astype(np.float64)
    assert np.all(res.ylo[owner] <= Y) and np.all(Y <= res.yhi[owner])
    # the sampled maximum replays on the kernel and lies below the certified maximum
    y = Problem(graph).evaluate(np.array([res.sampled_at], F32))[0]
    assert abs(float(y[-1])) == res.sampled_max <= res.certified_max
    rep = part_report(res)
    assert rep["certified_max_abs_residual"] == res.certified_max and rep["ratio"] >= 1


def test_real_leaf_bounds_contain_exact_values():
    p = problems.polynomial()
    graph, names = part_graph(p, p.residual)
    res = refine("pde", graph, names, p.lo, p.hi, Options(semantics="real", timeout=3, batch=64, grid=1024))
    rng = np.random.default_rng(0)
    for i in rng.choice(len(res.lo), size=min(25, len(res.lo)), replace=False):
        l, h = [Fraction(float(v)) for v in res.lo[i]], [Fraction(float(v)) for v in res.hi[i]]
        # real points, not float32 ones: the exact centre and a point a third of the way
        for z in ([(a + b) / 2 for a, b in zip(l, h)], [a + (b - a) / 3 for a, b in zip(l, h)]):
            env = exact_eval(graph, [np.array([z], dtype=object)])
            y = env[graph.outputs[0]].reshape(-1)
            for j in range(len(names)):
                assert Fraction(res.ylo[i, j]) <= y[j] <= Fraction(res.yhi[i, j]), (names[j], z)


def test_unboundable_residual_never_gives_a_finite_certificate():
    p = problems.burgers_like()
    # poles at x = ±sqrt(0.1) (irrational): finite on the sampled points, unbounded on boxes around them
    graph, names = part_graph(p, lambda u, X: u.value / (X.x * X.x - 0.1))
    res = refine("pde", graph, names, p.lo, p.hi, Options(timeout=2, batch=64, grid=1024, max_depth=6,
                                                          local_starts=0))
    rep = part_report(res)
    assert np.isfinite(res.sampled_max)
    assert rep["certified_max_abs_residual"] is None and rep["ratio"] is None
    assert res.stop != "target reached"
    # a pole the kernel hits (x = 0 is a grid point): the sampled residual is infinite, said so
    graph, names = part_graph(p, lambda u, X: u.value / X.x)
    res = refine("pde", graph, names, p.lo, p.hi, Options(timeout=2, batch=64, grid=1024))
    assert res.sampled_max == np.inf and "not finite" in res.stop and part_report(res)["certified_max_abs_residual"] is None
