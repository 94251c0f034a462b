"""Branch and bound over ReLU activation splits, for high-dimensional input boxes.

Input splitting scales with the input dimension; for image-sized inputs the search instead splits
unstable ReLUs (see :mod:`nnlemma.bounds.domains`: a split node z gives the children ``z >= 0``
and ``z <= 0``, which cover the parent). One root CROWN pass bounds every node over the box; each
domain then reuses the root's intervals and rounding bounds, clamps its split nodes, re-bounds
their successors by IBP, and runs the CROWN backward pass for the property rows only, batched
over many domains.

* A domain is closed when its certified lower bounds refute every unsafe conjunction (exactly, in
  rationals) or when its clamps are contradictory (it holds no point).
* Open domains offer candidate points (the box vertex minimising each row's linear lower bound),
  judged on the float32 kernel: ``sat`` only with a point that violates the property there.
* Branching picks the unsplit unstable element whose upper-line intercept costs the most in the
  rows not yet refuted. Elements whose interval may hold NaN are never split (NaN satisfies
  neither child), nor are elements with an infinite bound.
* A domain with nothing left to split and not refuted is left open: the case ends ``unknown``.

With ``Options.record_tree`` the splits (node, element), the closed domains (bounds or empty) and
the batches are recorded for a certificate; :func:`root_context` and :func:`bound_domains` are
shared with the checker, so a recomputed batch has the same bits.
"""

from __future__ import annotations

import time

import numpy as np

from ..bounds.backward import backward
from ..bounds.crown import prepare, tighten
from ..bounds.domains import domain_ctx, relu_inputs
from ..bounds.common import RELAX
from ..bounds.optimize import optimized_rows
from ..vnnlib import Case
from .bab import CaseResult, Options, check_points
from .certificate import CaseRecord
from .problem import Problem, pow2
from .spec import SpecRows

F32 = np.float32


class Layout:
    """Flat indexing of the splittable elements: node z occupies ``[offset[z], offset[z] + n_z)``."""

    def __init__(self, ctx, graph):
        self.nodes = relu_inputs(graph)
        self.out_of = {e.inputs[0]: e.out.id for e in graph.equations if e.op in RELAX}
        self.size = {z: int(np.prod(ctx.lshape(z)[1:])) for z in self.nodes}
        self.offset, n = {}, 0
        for z in self.nodes:
            self.offset[z] = n
            n += self.size[z]
        self.total = n
        splittable = []
        for z in self.nodes:
            lo, hi = (a.reshape(-1) for a in ctx.bounds64(z))
            nan = np.broadcast_to(ctx.bounds[z].nan, ctx.lshape(z)).reshape(-1)
            splittable.append((lo < 0) & (hi > 0) & ~nan & np.isfinite(lo) & np.isfinite(hi))
        self.splittable = np.concatenate(splittable) if splittable else np.zeros(0, bool)

    def signs(self, flat: np.ndarray) -> dict[int, np.ndarray]:
        return {z: flat[:, self.offset[z]:self.offset[z] + self.size[z]] for z in self.nodes}

    def node_of(self, j: int) -> int:
        """The node whose block holds flat index j."""
        return next(z for z in self.nodes if self.offset[z] <= j < self.offset[z] + self.size[z])


def root_context(problem: Problem, lo: np.ndarray, hi: np.ndarray):
    """The root CROWN pass over the flat float32 box (batch 1): (ctx, Layout) or (None, reason)."""
    g1 = problem.batched(1)
    shape1 = (1,) + tuple(problem.in_shape[1:])
    root, why = prepare(g1, lo.reshape(shape1), hi.reshape(shape1), problem.semantics)
    if root is None:
        return None, why
    tighten(root)
    return root, Layout(root, g1)


def bound_domains(problem: Problem, root, layout: Layout, flat: np.ndarray, C: np.ndarray, refine: bool,
                  costs: bool = False, alpha_iters: int = 0, target: np.ndarray | None = None,
                  groups: tuple | None = None):
    """Certified lower bounds ``[S, B]`` of ``C·y`` on the B domains ``flat`` (int8 sign rows) and
    the ``[B]`` mask of empty domains, in one batch padded to a power of two by repeating the last
    domain (the search and the certificate checker share this, so their bits agree). Also returns
    the intercept costs per relaxed node (``costs``), the input coefficients and the padded batch
    size. With ``alpha_iters`` > 0 and a plain ReLU MLP, the slopes and split multipliers are first
    optimised (:mod:`nnlemma.bounds.optimize`, deterministic) and each row certified with its own;
    ``target`` (``[S]``, :meth:`SpecRows.targets`) and ``groups`` (the conjunctions) stop
    optimising rows the property no longer needs."""
    B = len(flat)
    S = C.shape[0]
    m = pow2(B)  # graphs are built for powers of two; padding domains repeat the last one
    g = problem.batched(m)
    flat_m = np.concatenate([flat, np.repeat(flat[-1:], m - B, axis=0)]) if m > B else flat
    signs = layout.signs(flat_m)
    ctx, empty = domain_ctx(root, g, signs, refine=refine)
    lam = np.broadcast_to(C.reshape((S, 1) + tuple(problem.out_shape[1:])),
                          (S, m) + tuple(problem.out_shape[1:])).copy()
    mlp = problem.mlp(m) if alpha_iters > 0 else None
    if mlp is None:
        if costs:
            ctx.intercept_cost = {}
        coeffs: dict = {}
        lb = backward(ctx, g.outputs[0], lam, coeffs)
        return lb[:, :B], empty[:B], ctx.intercept_cost, coeffs.get(g.inputs[0].id), m
    # alpha/beta-CROWN: parameters proposed by the unrounded model, each row certified by backward()
    sg = [np.asarray(signs.get(z, np.zeros((m, 1))), np.float64) for z in mlp.z_ids[:-1]]
    lb, A, cost = optimized_rows(ctx, mlp, lam, C, sg, alpha_iters, costs, target, groups)
    return lb[:, :B], empty[:B], cost, A, m


def solve_case_relu(problem: Problem, case: Case, rows: SpecRows, lo: np.ndarray, hi: np.ndarray,
                    opts: Options, deadline: float | None) -> CaseResult:
    """Decide one case over the float32 box [lo, hi] (flat) by ReLU splitting."""
    root, layout = root_context(problem, lo, hi)
    if root is None:
        return CaseResult("unknown", reason=layout)
    res = CaseResult("unsat")
    stack = [np.zeros(layout.total, np.int8)]
    tree = CaseRecord("relu", lo, hi) if opts.record_tree else None
    ids = [0]  # tree node per stack entry (parallel to the stack)
    S = rows.C.shape[0]
    exhausted = 0
    while stack:
        if deadline is not None and time.monotonic() > deadline:
            return CaseResult("timeout", reason="time limit reached", boxes=res.boxes)
        batch = stack[-opts.batch:]
        del stack[-opts.batch:]
        bids = ids[-opts.batch:]
        del ids[-opts.batch:]
        B = len(batch)
        flat = np.stack(batch)
        lb, empty, costs, A, m = bound_domains(problem, root, layout, flat, rows.C, opts.relu_refine, costs=True,
                                               alpha_iters=opts.alpha_iters, target=rows.targets(),
                                               groups=rows.conjunctions)
        res.boxes += B
        refuted = rows.refuted(lb)
        safe = rows.safe(lb) | empty
        res.leaves += int(safe.sum())
        if tree:
            tree.batch(bids)
            for i in np.flatnonzero(safe):
                if empty[i]:
                    tree.empty(bids[i])
                else:
                    tree.bound(bids[i], lb[:, i])
        open_idx = np.flatnonzero(~safe)
        if not len(open_idx):
            continue
        if A is not None:
            A = A.reshape(S, m, -1)[:, open_idx]
            cands = np.where(A >= 0, lo[None, None], hi[None, None]).reshape(-1, lo.size).astype(F32)
            hit = check_points(problem, case, cands)
            if hit:
                return CaseResult("sat", *hit, boxes=res.boxes)
        score = np.zeros((B, layout.total))
        for z in layout.nodes:
            cost = costs.get(layout.out_of.get(z))
            if cost is None:
                continue
            live = (~refuted).astype(np.float64)  # [S, B]: rows still open
            part = np.einsum("sb,sbn->bn", live, np.broadcast_to(cost, (S, m) + cost.shape[2:]).reshape(S, m, -1)[:, :B])
            score[:, layout.offset[z]:layout.offset[z] + layout.size[z]] = part
        for i in open_idx:
            cand = np.where(layout.splittable & (flat[i] == 0), score[i], -1.0)
            j = int(np.argmax(cand)) if cand.size else -1
            if j < 0 or cand[j] < 0:
                exhausted += 1
                continue
            if tree:
                z = layout.node_of(j)
                kids = tree.relu_split(bids[i], z, j - layout.offset[z])
            for c, sgn in enumerate((-1, 1)):
                child = flat[i].copy()
                child[j] = sgn
                stack.append(child)
                ids.append(kids[c] if tree else -1)
    if exhausted:
        return CaseResult("unknown", reason=f"{exhausted} activation domain(s) not refuted with nothing left to "
                          "split", boxes=res.boxes, leaves=res.leaves)
    res.tree = tree
    return res
