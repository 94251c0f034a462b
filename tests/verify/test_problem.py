"""``Problem``'s batched bounds: a batch's node bounds reused for a subset of its boxes
(:meth:`Problem.subset`) and boxes started from their parent's ReLU-input bounds
(:meth:`Problem.bound_boxes` with ``known``) give certified bounds — every kernel output of a
sampled float32 point of a box satisfies ``C·y >= lb`` exactly — and the reuse is what it says.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import nnlemma as nl
from nnlemma import nn
from nnlemma.verify.problem import Problem

F32 = np.float32


def _mlp(seed: int, sizes=(4, 12, 12, 10, 3)):
    rng = np.random.default_rng(seed)
    mods, sd = [], {}
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods += [nn.Linear(i, o), nn.ReLU()]
        sd[f"{2 * k}.weight"] = rng.standard_normal((o, i)).astype(F32)
        sd[f"{2 * k}.bias"] = (0.3 * rng.standard_normal(o)).astype(F32)
    model = nn.Sequential(*mods[:-1])
    model.load_state_dict(sd)
    return nl.compile(model, np.zeros((1, sizes[0]), F32)).graph


def _boxes(rng, n, d):
    c = rng.uniform(-1, 1, (n, d))
    w = rng.uniform(0.01, 0.6, (n, d))
    return (c - w).astype(F32), (c + w).astype(F32)


def _assert_sound(problem, lo, hi, C, lb, rng, n_pts=200):
    """C·y >= lb at the corners' sample and random points of every box, in exact rationals."""
    for b in range(len(lo)):
        pts = lo[b] + rng.random((n_pts, lo.shape[1])) * (hi[b].astype(np.float64) - lo[b])
        pts = np.clip(pts.astype(F32), lo[b], hi[b])
        corners = np.where(rng.random((32, lo.shape[1])) < 0.5, lo[b], hi[b]).astype(F32)
        Y = problem.evaluate(np.concatenate([pts, corners, lo[b:b + 1], hi[b:b + 1]]))
        for y in Y:
            for s in range(C.shape[0]):
                val = sum((Fraction(float(c)) * Fraction(float(v)) for c, v in zip(C[s], y)), Fraction(0))
                assert val >= Fraction(float(lb[s, b])), (b, s, float(val), lb[s, b])


@pytest.mark.parametrize("alpha_iters", [0, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_subset_of_a_bounded_batch_gives_certified_bounds(seed, alpha_iters):
    rng = np.random.default_rng(seed)
    problem = Problem(_mlp(seed))
    lo, hi = _boxes(rng, 7, 4)
    C = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]])
    boxes, why = problem.bound_boxes(lo, hi)
    assert boxes is not None, why
    idx = np.array([5, 1, 2])
    sub = problem.subset(boxes, idx)
    assert sub.n == 3 and sub.ctx.B == 4
    for z in problem.relu_inputs:  # the subset carries exactly the batch's bounds of its boxes
        assert np.array_equal(sub.ctx.bounds[z].lo[:3], boxes.ctx.bounds[z].lo[idx])
        assert np.array_equal(sub.ctx.bounds[z].hi[:3], boxes.ctx.bounds[z].hi[idx])
    lb, A = problem.rows_on(sub, C, alpha_iters)
    assert lb.shape == (2, 3) and A.shape == (2, 3, 4)
    assert np.all(np.isfinite(lb))
    _assert_sound(problem, lo[idx], hi[idx], C, lb, rng)


def test_children_started_from_the_parents_bounds_are_certified_and_no_looser():
    rng = np.random.default_rng(3)
    problem = Problem(_mlp(3))
    C = np.array([[1.0, 0.0, -1.0]])
    lo, hi = _boxes(rng, 4, 4)
    parent, _ = problem.bound_boxes(lo, hi)
    known = parent.relu_bounds(problem.relu_inputs)
    mid = ((lo.astype(np.float64) + hi) / 2).astype(F32)
    clo, chi = lo.copy(), hi.copy()
    chi[:, 0] = np.maximum(mid[:, 0], clo[:, 0])  # the lower half along coordinate 0
    child, _ = problem.bound_boxes(clo, chi, known)
    for z in problem.relu_inputs:
        assert np.all(child.ctx.bounds[z].lo >= known[z][0]) and np.all(child.ctx.bounds[z].hi <= known[z][1])
    lb, _ = problem.rows_on(child, C)
    _assert_sound(problem, clo, chi, C, lb, rng)
