"""Complete verification of one property case by falsification and branch and bound.

Float32 semantics (the default): the region is the set of float32 vectors of the float32 box.
1. Falsify: random points, the box centre and projected-gradient points, judged on the kernel.
2. Branch and bound over input boxes, batched: certified CROWN lower bounds of every atom's linear
   form refute conjunctions (exactly, in rationals); an unrefuted box offers candidate points (the
   vertices minimising each atom's linear lower bound), then is split in two along the coordinate
   with the largest |coefficient| x width. Children partition the parent's float32 points exactly.
3. Boxes with at most ``enum_limit`` float32 points are decided exactly by running the kernel on
   every point.
``unsat`` is returned only when every leaf was refuted by a certified bound or by enumeration;
``sat`` only with a point whose kernel output satisfies the unsafe condition exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..vnnlib import Case
from . import boxes as bx
from .attack import pgd_candidates, supports_gradient
from .problem import Problem
from .spec import SpecRows

F32 = np.float32


@dataclass
class Options:
    timeout: float | None = None
    seed: int = 0
    batch: int = 256
    enum_limit: int = 64
    samples: int = 256
    pgd: bool = True
    record_tree: bool = False


@dataclass
class CaseResult:
    status: str                      # unsat / sat / unknown / timeout
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    reason: str = ""
    boxes: int = 0
    leaves: int = 0
    enumerated_points: int = 0
    tree: dict | None = None


@dataclass
class _Tree:
    """The split tree for certificates: node ids in creation order."""

    boxes: list = field(default_factory=list)   # (lo, hi) per node
    splits: dict = field(default_factory=dict)  # node -> (dim, m, left, right)
    leaves: dict = field(default_factory=dict)  # node -> ("bound", lb list) | ("enumerated",)

    def add(self, lo, hi) -> int:
        self.boxes.append((lo.copy(), hi.copy()))
        return len(self.boxes) - 1


def _check_points(problem: Problem, case: Case, X: np.ndarray):
    """Run the kernel on candidate points; return the first exact counterexample, if any."""
    if len(X) == 0:
        return None
    Y = problem.evaluate(X)
    for i in range(len(X)):
        if case.unsafe_at(Y[i]) is True:
            return X[i].copy(), Y[i].copy()
    return None


def _falsify(problem: Problem, case: Case, rows: SpecRows, lo, hi, opts: Options, rng) -> tuple | None:
    n = opts.samples
    X = lo + rng.random((n, lo.size)) * (hi.astype(np.float64) - lo)
    X = np.clip(X.astype(F32), lo, hi)
    X = np.concatenate([X, ((lo.astype(np.float64) + hi) / 2).astype(F32)[None]])
    hit = _check_points(problem, case, X)
    if hit or not opts.pgd or not supports_gradient(problem.graph):
        return hit
    shape = problem.in_shape
    for s in range(rows.C.shape[0]):
        cands = pgd_candidates(problem.graph, lo.reshape(shape), hi.reshape(shape), rows.C[s].reshape(problem.out_shape),
                               rng, steps=15, restarts=2)
        hit = _check_points(problem, case, cands.reshape(len(cands), -1))
        if hit:
            return hit
    return None


def solve_case(problem: Problem, case: Case, opts: Options, deadline: float | None) -> CaseResult:
    rows = SpecRows.from_case(case, problem.n_out)
    if not rows.exact:
        return CaseResult("unknown", reason="an output constraint has a coefficient that is not a float64 value")
    region = case.box.float32_bounds()
    if region is None:
        return CaseResult("unsat", reason="the input region holds no float32 point")
    lo, hi = bx.canonical(*region)
    if any(len(c) == 0 for c in rows.conjunctions):
        hit = _check_points(problem, case, lo[None])
        return CaseResult("sat", *hit) if hit else CaseResult("unknown", reason="unconditional unsafe set")
    rng = np.random.default_rng(opts.seed)
    hit = _falsify(problem, case, rows, lo, hi, opts, rng)
    if hit:
        return CaseResult("sat", *hit)
    tree = _Tree() if opts.record_tree else None
    stack = [(lo, hi, tree.add(lo, hi) if tree else -1)]
    res = CaseResult("unsat")
    while stack:
        if deadline is not None and time.monotonic() > deadline:
            return CaseResult("timeout", reason="time limit reached", boxes=res.boxes)
        batch = stack[-opts.batch:]
        del stack[-opts.batch:]
        LO = np.stack([b[0] for b in batch])
        HI = np.stack([b[1] for b in batch])
        out, why = problem.bound_rows(LO, HI, rows.C)
        if out is None:
            return CaseResult("unknown", reason=why)
        lb, A = out
        res.boxes += len(batch)
        safe = rows.safe(lb)
        open_idx = [i for i in range(len(batch)) if not safe[i]]
        for i in range(len(batch)):
            if safe[i]:
                res.leaves += 1
                if tree:
                    tree.leaves[batch[i][2]] = ("bound", lb[:, i].tolist())
        if not open_idx:
            continue
        cands = []
        for i in open_idx:
            cands.append(np.where(A[:, i] >= 0, LO[i][None], HI[i][None]))
        hit = _check_points(problem, case, np.concatenate(cands).astype(F32))
        if hit:
            return CaseResult("sat", *hit, boxes=res.boxes)
        for i in open_idx:
            l, h, node = batch[i]
            count = float(np.prod(bx.point_counts(l, h)))
            if count <= opts.enum_limit:
                pts = bx.enumerate_points(l, h)
                hit = _check_points(problem, case, pts)
                if hit:
                    return CaseResult("sat", *hit, boxes=res.boxes)
                res.leaves += 1
                res.enumerated_points += len(pts)
                if tree:
                    tree.leaves[node] = ("enumerated",)
                continue
            score = np.abs(A[:, i]).sum(axis=0) * (h.astype(np.float64) - l)
            score = np.where(bx.splittable(l, h), score, -1.0)
            if score.max() <= 0:  # no informative direction: split the widest coordinate
                score = np.where(bx.splittable(l, h), h.astype(np.float64) - l, -1.0)
            dim = int(np.argmax(score))
            (l1, h1), (l2, h2), m = bx.split(l, h, dim)
            ids = (tree.add(l1, h1), tree.add(l2, h2)) if tree else (-1, -1)
            if tree:
                tree.splits[node] = (dim, float(m), ids[0], ids[1])
            stack.append((l1, h1, ids[0]))
            stack.append((l2, h2, ids[1]))
    if tree:
        res.tree = {"boxes": [(a.tolist(), b.tolist()) for a, b in tree.boxes],
                    "splits": tree.splits, "leaves": tree.leaves}
    return res
