"""Complete verification of one property case by falsification and branch and bound.

Float32 semantics (the default): the region is the set of float32 vectors of the float32 box.
1. Falsify: random points, the box centre and projected-gradient points (descending the largest
   atom of each unsafe conjunction), all judged on the kernel.
2. High-dimensional regions go to ReLU splitting (:mod:`relu_bab`). Otherwise branch and bound over
   input boxes, batched: certified CROWN lower bounds of every atom's linear form refute
   conjunctions (exactly, in rationals); an unrefuted box offers candidate points (the vertices
   minimising each atom's linear lower bound, random points, and now and then a local gradient
   search), then is split in two: near the root along the coordinate whose worse child bounds
   closest to safe (every coordinate is tried), deeper along the largest |coefficient| x width.
   Children partition the parent's float32 points exactly. Without a certificate, children inherit
   the parent's certified bounds of the ReLU inputs (valid on the smaller box), intersected with
   their own IBP bounds before their CROWN passes: fewer unstable neurons, tighter relaxations.
3. Boxes with at most ``enum_limit`` float32 points are decided exactly by running the kernel on
   every point; a point with inf/NaN outputs (the property is undefined there) makes the case
   ``unknown``.
``unsat`` is returned only when every leaf was refuted by a certified bound or by enumeration;
``sat`` only with a point whose kernel output satisfies the unsafe condition exactly.
With ``Options.record_tree`` the split tree, the leaves' bounds and the bounding batches are
recorded (:class:`certificate.CaseRecord`) for a certificate that :mod:`checker` re-checks.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import numpy as np

from ..vnnlib import Case
from . import boxes as bx
from .attack import pgd_conjunction, supports_gradient
from .certificate import CaseRecord
from .problem import Problem
from .spec import SpecRows, clamped_float

F32 = np.float32


@dataclass
class Options:
    timeout: float | None = None
    seed: int = 0
    batch: int = 256
    enum_limit: int = 64
    samples: int = 4096              # random points tried first (input splitting)
    samples_high_dim: int = 256      # ... when the region is split by ReLUs (points cost more)
    box_samples: int = 8             # input splitting: random points tried in every open box
    pgd: bool = True
    record_tree: bool = False        # record the split tree and batches (for a certificate)
    pgd_every: int = 4               # input splitting: local gradient search every N batches
    lookahead_depth: int = 8         # input splitting: try every dimension above this depth
    threads: int | None = 1          # BLAS threads during the search (None: library default)
    alpha_iters: int = 20            # ReLU splitting: gradient steps choosing alpha/beta (0: plain CROWN)
    relu_refine: bool = False        # ReLU splitting: re-bound later split nodes by CROWN per domain
    input_split_max_dims: int = 16   # above this many free input dimensions, split ReLUs instead
    input_alpha_iters: int = 20      # input splitting: boxes CROWN leaves open at least ...
    input_alpha_depth: int = 20      # ... this deep (at even depths) are bounded again with that many alpha-CROWN steps
    inherit: bool = True             # input splitting without a certificate: children reuse the parent's bounds


@dataclass
class CaseResult:
    status: str                      # unsat / sat / unknown / timeout
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    reason: str = ""
    boxes: int = 0
    leaves: int = 0
    enumerated_points: int = 0
    tree: CaseRecord | None = None   # with Options.record_tree, when the case is unsat


def check_points(problem: Problem, case: Case, X: np.ndarray):
    """Run the kernel on candidate points; return the first exact counterexample, if any."""
    if len(X) == 0:
        return None
    Y = problem.evaluate(X)
    for i in np.flatnonzero(SpecRows.from_case(case, problem.n_out).possibly_unsafe(Y)):
        if case.unsafe_at(Y[i]) is True:
            return X[i].copy(), Y[i].copy()
    return None


def _falsify(problem: Problem, case: Case, rows: SpecRows, lo, hi, opts: Options, rng) -> tuple | None:
    n = opts.samples if int(np.sum(bx.splittable(lo, hi))) <= opts.input_split_max_dims else opts.samples_high_dim
    X = lo + rng.random((n, lo.size)) * (hi.astype(np.float64) - lo)
    X = np.clip(X.astype(F32), lo, hi)
    X = np.concatenate([X, ((lo.astype(np.float64) + hi) / 2).astype(F32)[None]])
    hit = check_points(problem, case, X)
    if hit or not opts.pgd or not supports_gradient(problem.graph):
        return hit
    return _pgd(problem, case, rows, lo, hi, rng, restarts=4)


def _pgd(problem: Problem, case: Case, rows: SpecRows, lo, hi, rng, restarts: int, start=None) -> tuple | None:
    """Gradient-guided candidates in the box [lo, hi] for every unsafe conjunction, judged on the
    kernel (the gradient is a float64 heuristic; only the kernel decides)."""
    shape = problem.in_shape
    d = np.array([clamped_float(x) for x in rows.d])
    for conj in rows.conjunctions:
        idx = list(conj)
        cands = pgd_conjunction(problem.graph, lo.reshape(shape), hi.reshape(shape), rows.C[idx], d[idx], rng,
                                restarts=restarts, start=None if start is None else start.reshape(shape))
        hit = check_points(problem, case, cands.reshape(len(cands), -1))
        if hit:
            return hit
    return None


def undefined_points(problem: Problem, case: Case, X: np.ndarray) -> bool:
    """Whether some point's kernel output leaves the property undecided (inf or NaN outputs)."""
    Y = problem.evaluate(X)
    return any(case.unsafe_at(Y[i]) is None for i in range(len(X)) if not np.isfinite(Y[i]).all())


def _lookahead(problem: Problem, rows: SpecRows, LO: np.ndarray, HI: np.ndarray, idx: list[int],
               opts: Options) -> dict[int, int]:
    """Split dimension per box by trying them all: bound both children of every splittable
    coordinate and keep the one whose worse child is closest to safe. Near the root, where the
    relaxations are loose, this finds the splits that make neurons stable far better than the
    linear-coefficient score; deeper down the score is good and much cheaper. (A heuristic only:
    the chosen children are bounded again as tree nodes. They are bounded from scratch, without
    the parent's bounds: on ACAS Xu 2_8 prop_1 inheriting them here made the chosen splits worse,
    3.9 s -> 8.1 s.)"""
    n = LO.shape[1]
    kids_lo, kids_hi = [], []
    for i in idx:
        ok = bx.splittable(LO[i], HI[i])
        for d in range(n):
            (l1, h1), (l2, h2), _ = bx.split(LO[i], HI[i], d) if ok[d] else ((LO[i], HI[i]), (LO[i], HI[i]), 0)
            kids_lo += [l1, l2]
            kids_hi += [h1, h2]
    KL, KH = np.stack(kids_lo), np.stack(kids_hi)
    margins = []
    for s in range(0, len(KL), opts.batch):
        out, _ = problem.bound_rows(KL[s:s + opts.batch], KH[s:s + opts.batch], rows.C)
        if out is None:
            return {}
        margins.append(rows.margin(out[0]))
    worse = np.concatenate(margins).reshape(len(idx), n, 2).min(axis=2)
    best = {}
    for j, i in enumerate(idx):
        worse[j][~bx.splittable(LO[i], HI[i])] = -np.inf
        if worse[j].max() > -np.inf:
            best[i] = int(np.argmax(worse[j]))
    return best


def _bound_batch(problem: Problem, rows: SpecRows, LO: np.ndarray, HI: np.ndarray, known: list | None):
    """Certified bounds of the rows on a batch of boxes: ((lb, A), reason, the boxes' ReLU-input
    bounds for their children, the bounded batch) — the last two None when ``known`` is None (a
    certificate is recorded: every batch is then bounded from its boxes alone, as the checker
    does). ``known``: per box, the bounds its parent proved for the ReLU inputs (or None),
    intersected with the box's own before its CROWN passes; a parent's box contains the child's,
    so they hold there too. (A cheaper pass with the parent's bounds and no intermediate CROWN at
    all refuted under 3% of the ACAS Xu boxes it was tried on.)"""
    if known is None:
        out, why = problem.bound_rows(LO, HI, rows.C)
        return out, why, None, None
    K = None
    if all(k is not None for k in known):
        K = {z: (np.stack([k[z][0] for k in known]), np.stack([k[z][1] for k in known])) for z in known[0]}
    boxes, why = problem.bound_boxes(LO, HI, K)
    if boxes is None:
        return None, why, None, None
    return problem.rows_on(boxes, rows.C), "", boxes.relu_bounds(problem.relu_inputs), boxes


def solve_case(problem: Problem, case: Case, opts: Options, deadline: float | None) -> CaseResult:
    rows = SpecRows.from_case(case, problem.n_out)
    if not rows.exact:
        return CaseResult("unknown", reason="an output constraint has a coefficient that is not a float64 value")
    region = case.box.float32_bounds()
    if region is None:
        res = CaseResult("unsat", reason="the input region holds no float32 point")
        if opts.record_tree:
            res.tree = CaseRecord("empty-region", np.zeros(0, F32), np.zeros(0, F32))
        return res
    lo, hi = bx.canonical(*region)
    if any(len(c) == 0 for c in rows.conjunctions):
        hit = check_points(problem, case, lo[None])
        return CaseResult("sat", *hit) if hit else CaseResult("unknown", reason="unconditional unsafe set")
    rng = np.random.default_rng(opts.seed)
    hit = _falsify(problem, case, rows, lo, hi, opts, rng)
    if hit:
        return CaseResult("sat", *hit)
    free = int(np.sum(bx.splittable(lo, hi)))
    if free > opts.input_split_max_dims and problem.has_relu:
        from .relu_bab import solve_case_relu
        return solve_case_relu(problem, case, rows, lo, hi, opts, deadline)
    tree = CaseRecord("input", lo, hi) if opts.record_tree else None
    gradient_ok = supports_gradient(problem.graph)
    n_batches = 0
    # open boxes, most violated parent bound first: (priority, tie, box lo, box hi, tree node, depth)
    heap = [(0.0, 0, lo, hi, 0, 0)]
    tie = 1
    # without a certificate, children inherit their parent's bounds of the ReLU inputs (keyed by
    # the box's tie number); a certificate's checker recomputes each batch from its boxes alone
    inherit = tree is None and opts.inherit
    known_of: dict[int, dict] = {}
    undefined = 0
    res = CaseResult("unsat")
    while heap:
        if deadline is not None and time.monotonic() > deadline:
            return CaseResult("timeout", reason="time limit reached", boxes=res.boxes)
        batch = [heapq.heappop(heap)[2:] for _ in range(min(opts.batch, len(heap)))]
        LO = np.stack([b[0] for b in batch])
        HI = np.stack([b[1] for b in batch])
        out, why, kids_known, bounded = _bound_batch(problem, rows, LO, HI, [known_of.pop(b[2], None) for b in batch]
                                                     if inherit else None)
        if out is None:
            return CaseResult("unknown", reason=why)
        lb, A = out
        res.boxes += len(batch)
        safe = rows.safe(lb)
        if tree:
            tree.batch(b[2] for b in batch)
        # every second depth: a box alpha leaves open is split, and retrying both children at once
        # cost more than it proved (ACAS Xu 3_3 prop_2: 112 s at every depth, 105 s at even ones)
        depths = np.array([b[3] for b in batch])
        idx = np.flatnonzero(~safe & (depths >= opts.input_alpha_depth) & (depths % 2 == 0))
        if opts.input_alpha_iters > 0 and len(idx) and problem.mlp(1) is not None:
            # retry deep open boxes with optimised slopes; both bounds are certified, keep the larger
            if bounded is not None:  # the batch's node bounds serve again (no certificate)
                out = problem.rows_on(problem.subset(bounded, idx), rows.C, opts.input_alpha_iters, rows.targets(),
                                      rows.conjunctions)
            else:
                out, why = problem.bound_rows(LO[idx], HI[idx], rows.C, opts.input_alpha_iters, rows.targets(),
                                              rows.conjunctions)
                if out is None:
                    return CaseResult("unknown", reason=why)
            lb[:, idx] = np.maximum(lb[:, idx], out[0])
            safe = rows.safe(lb)
            if tree:
                tree.batch((batch[i][2] for i in idx), opts.input_alpha_iters)
        margin = rows.margin(lb)
        open_idx = [i for i in range(len(batch)) if not safe[i]]
        n_batches += 1
        if opts.pgd and gradient_ok and not all(safe) and n_batches % opts.pgd_every == 0:
            # local search in the open box closest to unsafe, from its centre
            i = int(np.argmin(np.where(safe, np.inf, margin)))
            hit = _pgd(problem, case, rows, LO[i], HI[i], rng, restarts=1,
                       start=((LO[i].astype(np.float64) + HI[i]) / 2).astype(F32))
            if hit:
                return CaseResult("sat", *hit, boxes=res.boxes)
        for i in range(len(batch)):
            if safe[i]:
                res.leaves += 1
                if tree:
                    tree.bound(batch[i][2], lb[:, i])
        if not open_idx:
            continue
        cands = []
        for i in open_idx:
            cands.append(np.where(A[:, i] >= 0, LO[i][None], HI[i][None]))
            # plus random points: open boxes shrink toward where violations may be
            w = HI[i].astype(np.float64) - LO[i]
            cands.append(np.clip((LO[i] + rng.random((opts.box_samples, lo.size)) * w).astype(F32), LO[i], HI[i]))
        hit = check_points(problem, case, np.concatenate(cands).astype(F32))
        if hit:
            return CaseResult("sat", *hit, boxes=res.boxes)
        shallow = [i for i in open_idx if batch[i][3] < opts.lookahead_depth]
        best = _lookahead(problem, rows, LO, HI, shallow, opts) if shallow else {}
        res.boxes += 2 * lo.size * len(shallow)
        for i in open_idx:
            l, h, node, depth = batch[i]
            count = float(np.prod(bx.point_counts(l, h)))
            if count <= opts.enum_limit:
                pts = bx.enumerate_points(l, h)
                hit = check_points(problem, case, pts)
                if hit:
                    return CaseResult("sat", *hit, boxes=res.boxes)
                if undefined_points(problem, case, pts):
                    # an inf/NaN output makes the property undefined there: neither sat nor unsat
                    undefined += 1
                    continue
                res.leaves += 1
                res.enumerated_points += len(pts)
                if tree:
                    tree.enumerated(node)
                continue
            dim = best.get(i)
            if dim is None:
                score = np.abs(A[:, i]).sum(axis=0) * (h.astype(np.float64) - l)
                score = np.where(bx.splittable(l, h), score, -1.0)
                if score.max() <= 0:  # no informative direction: split the widest coordinate
                    score = np.where(bx.splittable(l, h), h.astype(np.float64) - l, -1.0)
                dim = int(np.argmax(score))
            (l1, h1), (l2, h2), m = bx.split(l, h, dim)
            if tree:
                ids = tree.input_split(node, dim, m)
            else:
                ids = (tie, tie + 1)
                if inherit and kids_known is not None:
                    kb = {z: (v[0][i], v[1][i]) for z, v in kids_known.items()}
                    known_of[tie] = known_of[tie + 1] = kb
            heapq.heappush(heap, (float(margin[i]), tie, l1, h1, ids[0], depth + 1))
            heapq.heappush(heap, (float(margin[i]), tie + 1, l2, h2, ids[1], depth + 1))
            tie += 2
    if undefined:
        return CaseResult("unknown", reason=f"{undefined} enumerated box(es) hold points whose outputs are inf or NaN, "
                          "where the property is undefined", boxes=res.boxes, leaves=res.leaves)
    res.tree = tree
    return res
