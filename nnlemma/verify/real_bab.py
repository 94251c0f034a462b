"""Verification in ``real`` semantics: the exact real-arithmetic graph over the real input box.

The region is the set of *real* points of the VNN-LIB box (exact rationals, strict bounds
included), not its float32 points; outputs are the exact real values of the graph (every weight
the exact rational of its float32 value, every op exact: :mod:`nnlemma.exact`).

* ``unsat``: branch and bound over float64 boxes that together cover the region (the root is the
  outward float64 enclosure of the rational box; a box ``[lo, hi]`` splits at a float64 ``m`` into
  ``[lo, m]`` and ``[m, hi]``, which cover it — they share the face ``x_d = m``, harmless for a
  cover). Every leaf is refuted by certified real-semantics CROWN lower bounds, decided exactly in
  rationals. A box that cannot be split further (no float64 strictly inside any coordinate) and is
  not refuted leaves the case ``unknown``.
* ``sat``: only with a float64 point inside the rational box whose exact outputs (Fractions, or
  rigorous 300-bit enclosures for transcendental ops) satisfy an unsafe conjunction exactly.
  Candidates come from random points, the box centre, gradient search and the vertices minimising
  each row's linear lower bound; float64 evaluation only ranks them (:func:`attack.forward64`).

No certificate is written in this semantics (the checker re-checks float32 proofs only).
"""

from __future__ import annotations

import heapq
import time
from fractions import Fraction

import numpy as np

from ..exact import exact_eval
from ..vnnlib import Case
from .attack import forward64, pgd_conjunction, supports_gradient
from .bab import CaseResult, Options
from .problem import Problem, pow2
from .spec import SpecRows, clamped_float

EXACT_PER_CHECK = 8  # candidates replayed exactly per check (the most violating by float64 ranking)
RANK_SLACK = 1e-6    # ... among those the float64 pass puts within this relative distance of unsafe


def _exact_hit(problem: Problem, case: Case, rows: SpecRows, X: np.ndarray, inside) -> tuple | None:
    """The first candidate (float64 ``[N, n_in]``, already inside the region) whose exact outputs
    violate the property; candidates are tried in order of their float64 violation."""
    X = X[np.isfinite(X).all(axis=1)] if len(X) else X
    if inside is None or len(X) == 0:
        return None
    X = np.clip(X, *inside)
    for i in _ranking(problem, rows, X)[:EXACT_PER_CHECK]:
        x = X[i]
        env = exact_eval(problem.graph, [np.array([Fraction(float(v)) for v in x], dtype=object)
                                         .reshape(problem.in_shape)])
        y = env[problem.graph.outputs[0]].reshape(-1)
        if case.unsafe_at_exact(list(y)) is True:
            return x.copy(), y
    return None


def _ranking(problem: Problem, rows: SpecRows, X: np.ndarray) -> np.ndarray:
    """Candidate indices, most violating first by the float64 forward pass, dropping those it
    puts clearly on the safe side (a heuristic: it only decides which points to replay exactly)."""
    if not supports_gradient(problem.graph):
        return np.arange(len(X))
    m = pow2(len(X))  # graphs are built for powers of two: pad by repeating the last point
    Xp = np.concatenate([X, np.repeat(X[-1:], m - len(X), axis=0)])
    g = problem.batched(m)
    Y = forward64(g, Xp.reshape((m,) + tuple(problem.in_shape[1:])))[g.outputs[0]].reshape(m, -1)[:len(X)]
    worst = rows.margin((Y @ rows.C.T).T)      # per point: <= 0 where some conjunction holds
    worst = np.where(np.isnan(worst), -np.inf, worst)  # NaN in float64: let the exact replay judge
    order = np.argsort(worst, kind="stable")
    scale = np.max(np.where(np.isfinite(Y), np.abs(Y), 0.0), axis=1)
    return order[worst[order] <= RANK_SLACK * (1 + scale[order])]


def solve_case_real(problem: Problem, case: Case, opts: Options, deadline: float | None) -> CaseResult:
    rows = SpecRows.from_case(case, problem.n_out)
    if not rows.exact:
        return CaseResult("unknown", reason="an output constraint has a coefficient that is not a float64 value")
    if case.box.real_empty():
        return CaseResult("unsat", reason="the input region holds no real point")
    lo, hi = case.box.float64_enclosure()
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return CaseResult("unknown", reason="the input region is unbounded in float64")
    inside = case.box.float64_inside()
    rng = np.random.default_rng(opts.seed)
    n = lo.size
    if inside is not None:
        ilo, ihi = inside
        X = ilo + rng.random((opts.samples, n)) * (ihi - ilo)
        X = np.concatenate([X, (ilo / 2 + ihi / 2)[None]])
        hit = _exact_hit(problem, case, rows, X, inside)
        if hit is None and opts.pgd and supports_gradient(problem.graph):
            d = np.array([clamped_float(q) for q in rows.d])
            for conj in rows.conjunctions:
                idx = list(conj)
                cands = pgd_conjunction(problem.graph, ilo.reshape(problem.in_shape), ihi.reshape(problem.in_shape),
                                        rows.C[idx], d[idx], rng, restarts=4, dtype=np.float64)
                hit = hit or _exact_hit(problem, case, rows, cands.reshape(len(cands), -1), inside)
        if hit:
            return CaseResult("sat", *hit)
    heap = [(0.0, 0, lo, hi)]
    tie = 1
    res = CaseResult("unsat")
    stuck = 0
    while heap:
        if deadline is not None and time.monotonic() > deadline:
            return CaseResult("timeout", reason="time limit reached", boxes=res.boxes)
        batch = [heapq.heappop(heap)[2:] for _ in range(min(opts.batch, len(heap)))]
        LO, HI = np.stack([b[0] for b in batch]), np.stack([b[1] for b in batch])
        out, why = problem.bound_rows(LO, HI, rows.C)
        if out is None:
            return CaseResult("unknown", reason=why)
        lb, A = out
        res.boxes += len(batch)
        safe = rows.safe(lb)
        margin = rows.margin(lb)
        res.leaves += int(safe.sum())
        open_idx = np.flatnonzero(~safe)
        if not len(open_idx):
            continue
        cands = [np.where(A[:, i] >= 0, LO[i][None], HI[i][None]) for i in open_idx]
        cands += [LO[i] + rng.random((opts.box_samples, n)) * (HI[i] - LO[i]) for i in open_idx]
        hit = _exact_hit(problem, case, rows, np.concatenate(cands), inside)
        if hit:
            return CaseResult("sat", *hit, boxes=res.boxes)
        for i in open_idx:
            l, h = LO[i], HI[i]
            mid = l / 2 + h / 2
            can = (mid > l) & (mid < h)
            if not can.any():
                stuck += 1
                continue
            score = np.where(can, np.abs(A[:, i]).sum(axis=0) * (h - l), -1.0)
            if score.max() <= 0:
                score = np.where(can, h - l, -1.0)
            dim = int(np.argmax(score))
            h1, l2 = h.copy(), l.copy()
            h1[dim] = l2[dim] = mid[dim]
            heapq.heappush(heap, (float(margin[i]), tie, l, h1))
            heapq.heappush(heap, (float(margin[i]), tie + 1, l2, h))
            tie += 2
    if stuck:
        return CaseResult("unknown", reason=f"{stuck} box(es) too small to split in float64 and not refuted",
                          boxes=res.boxes, leaves=res.leaves)
    return res


__all__ = ["solve_case_real"]
