"""Adaptive partition of one part's box: certified bounds per leaf, the sampled maximum, refinement.

**Boxes.** A part's box is first made a float32 box: in ``float32`` semantics its float32 points
(bounds rounded inward), in ``real`` semantics a float32 box containing it (rounded outward). A
leaf is bisected along one dimension at the float32 midpoint ``m`` (``a < m < b``) into the closed
boxes ``[a, m]`` and ``[m, b]``: their union is the parent, for real points and float32 points
alike (the shared face is bounded twice, which only matters for speed). A leaf's path records its
bisections as ``<dim><side>`` pairs from the root, so the partition can be rebuilt and re-checked
(:mod:`nnlemma.pinn.certificate`).

**Bounds.** Every leaf's outputs (u, its partials, the residual) are bounded by CROWN
(:func:`nnlemma.bounds.crown`) in the chosen semantics, many leaves per batch, with CROWN bounds
also for the operands of every product of two variables (``products``: the tangent × tanh′ and
u × u_x products of derivative graphs get McCormick planes over tight intervals — 67x narrower
residual bounds than plain CROWN on 0.004-wide Burgers boxes, for 7x the time per box); a leaf whose bounds
are not finite (bounding failed, or a possible overflow) counts as unbounded (+inf).

**Sampling.** The residual graph is run on the float32 kernel on a grid and at every new leaf's
centre, and a pattern search (coordinate steps, halved when no step improves) climbs |residual|
from the best points: the largest |residual| found is a value the kernel computes at a reported
float32 point — a lower bound on the true maximum, next to the certified upper bound.

**Refinement.** While the certified maximum ``C = max over leaves of max(|lo_r|, |hi_r|)`` exceeds
``target_ratio × sampled maximum``, the leaves above that line, worst first, are bisected until
the target, the time budget, the box budget or the depth limit stops it. The split dimension is
chosen greedily: the children of every splittable dimension are bounded and the split whose worse
child is smaller kept (twice the bounding work of a fixed rule, but a kernel-variation rule was
more than 10x worse at equal time on the Burgers PINN).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..ir.graph import Graph
from ..verify.problem import Problem, pow2

F32 = np.float32


@dataclass
class Options:
    semantics: str = "float32"
    target_ratio: float = 1.5          # stop when certified <= ratio * sampled
    timeout: float = 1800.0            # seconds for this part
    max_leaves: int = 2_000_000
    max_depth: int = 60                # most bisections of a leaf (--split-depth)
    batch: int = 512                   # leaves bounded per CROWN call
    grid: int = 65536                  # sampling points
    local_starts: int = 16
    jobs: int = 1                      # worker processes for bounding
    products: bool = True              # CROWN bounds for product operands (False: plain CROWN, the baseline)
    progress: object = None            # callable(part, leaves, certified, sampled) or None


@dataclass
class PartResult:
    name: str
    outputs: list[str]
    lo: np.ndarray                     # [N, n] leaf boxes (float32 values)
    hi: np.ndarray
    ylo: np.ndarray                    # [N, k] output bounds (float64; -inf/+inf when unbounded)
    yhi: np.ndarray
    paths: list[str]
    sampled_max: float
    sampled_at: list[float]
    sampled_values: list[float]        # all outputs at the sampled maximum
    seconds: float
    stop: str
    bounded_boxes: int                 # every box bounded, parents included
    trace: list[dict] = field(default_factory=list)

    @property
    def abs_residual(self) -> np.ndarray:
        return np.maximum(np.abs(self.ylo[:, -1]), np.abs(self.yhi[:, -1]))

    @property
    def certified_max(self) -> float:
        return float(self.abs_residual.max()) if len(self.lo) else 0.0


def float32_box(lo, hi, semantics: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The part's box as float32 bounds (see the module docstring); None if it has no float32 points."""
    lo64, hi64 = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    l32, h32 = lo64.astype(F32), hi64.astype(F32)
    inward = semantics == "float32"
    fix_lo = (l32 < lo64) if inward else (l32 > lo64)
    fix_hi = (h32 > hi64) if inward else (h32 < hi64)
    l32[fix_lo] = np.nextafter(l32[fix_lo], F32(np.inf if inward else -np.inf))
    h32[fix_hi] = np.nextafter(h32[fix_hi], F32(-np.inf if inward else np.inf))
    return None if np.any(l32 > h32) else (l32, h32)


def midpoint(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The float32 split point of ``[a, b]`` (float32 arrays); equal to a or b when none lies strictly inside."""
    return ((a.astype(np.float64) + b.astype(np.float64)) / 2).astype(F32)


_WORKER: "Bounder | None" = None


def _worker_init(graph_text: str, semantics: str, batch: int, products: bool) -> None:
    global _WORKER
    from ..ir.serialize import loads
    _WORKER = Bounder(loads(graph_text), semantics, batch, products=products)


def _worker_bound(lo: np.ndarray, hi: np.ndarray):
    return _WORKER.bound(lo, hi)


class Bounder:
    """Batched CROWN bounds and kernel evaluation of one part graph; with ``jobs`` > 1, large
    requests are split over that many spawned worker processes (each box's bounds do not depend on
    which batch or process computed them). Use as a context manager to stop the workers."""

    def __init__(self, graph: Graph, semantics: str, batch: int, jobs: int = 1, products: bool = True):
        from ..bounds.crown import crown
        self._crown = crown
        self.problem = Problem(graph, semantics)
        self.semantics, self.batch, self.products = semantics, batch, products
        self._pool = None
        if jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            from ..ir.serialize import dumps
            self._pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_init, initargs=(dumps(graph), semantics, batch, products))
            self._jobs = jobs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(X), 8192):
            out.append(self.problem.evaluate(X[i:i + 8192]).astype(np.float64))
        return np.concatenate(out) if out else np.zeros((0, self.problem.n_out))

    def bound(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Output bounds ``[N, k]`` per box; rows of a batch that cannot be bounded are ±inf."""
        if self._pool is not None and len(lo) >= 2 * 32:
            cuts = np.linspace(0, len(lo), self._jobs + 1).astype(int)
            futs = [self._pool.submit(_worker_bound, lo[a:b], hi[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
            parts = [f.result() for f in futs]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        k = self.problem.n_out
        ylo, yhi = np.full((len(lo), k), -np.inf), np.full((len(lo), k), np.inf)
        for i in range(0, len(lo), self.batch):
            l, h = lo[i:i + self.batch], hi[i:i + self.batch]
            n = len(l)
            m = pow2(n)
            if m > n:
                l, h = np.concatenate([l, np.repeat(l[-1:], m - n, 0)]), np.concatenate([h, np.repeat(h[-1:], m - n, 0)])
            res = self._crown(self.problem.batched(m), l, h, self.semantics, products=self.products)
            if res.status != "ok":
                continue
            b = res.outputs[0]
            blo, bhi = np.asarray(b.lo, np.float64)[:n], np.asarray(b.hi, np.float64)[:n]
            if b.nan is not None:
                bad = np.asarray(b.nan).reshape(m, -1)[:n].any(axis=1)
                blo[bad], bhi[bad] = -np.inf, np.inf
            ylo[i:i + n], yhi[i:i + n] = blo, bhi
        bad = ~(np.isfinite(ylo).all(axis=1) & np.isfinite(yhi).all(axis=1))
        ylo[bad], yhi[bad] = -np.inf, np.inf
        return ylo, yhi


def _grid(lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """About ``n`` float32 points on a regular grid over the box (flat dimensions: one value)."""
    live = hi > lo
    per = max(2, int(round(n ** (1.0 / max(1, live.sum())))))
    axes = [np.linspace(lo[i], hi[i], per if live[i] else 1) for i in range(len(lo))]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(lo))
    return np.clip(mesh.astype(F32), lo, hi)


class Sampler:
    """The largest |residual| the kernel gives (grid, leaf centres, pattern search)."""

    def __init__(self, bounder: Bounder, lo: np.ndarray, hi: np.ndarray):
        self.b, self.lo, self.hi = bounder, lo, hi
        self.best, self.at, self.values = -1.0, None, None

    def offer(self, X: np.ndarray) -> np.ndarray:
        """Kernel outputs at ``X``; keeps the best |residual| (NaN counts as +inf: never hidden)."""
        Y = self.b.evaluate(X)
        r = np.abs(Y[:, -1])
        r = np.where(np.isnan(r), np.inf, r)
        k = int(np.argmax(r))
        if r[k] > self.best:
            self.best, self.at, self.values = float(r[k]), X[k].astype(np.float64), Y[k]
        return Y

    def local_search(self, starts: np.ndarray, iters: int = 60) -> None:
        if not len(starts):
            return
        P = starts.astype(F32)
        live = self.hi > self.lo
        step = np.tile(np.where(live, (self.hi - self.lo) / 64, 0).astype(np.float64), (len(P), 1))
        cur = np.abs(self.b.evaluate(P)[:, -1])
        n = P.shape[1]
        for _ in range(iters):
            cands = []
            for j in range(n):
                for s in (1, -1):
                    Q = P.astype(np.float64).copy()
                    Q[:, j] += s * step[:, j]
                    cands.append(np.clip(Q, self.lo, self.hi).astype(F32))
            C = np.concatenate(cands)
            vals = np.abs(self.offer(C)[:, -1]).reshape(2 * n, len(P))
            k = np.argmax(vals, axis=0)
            better = vals[k, np.arange(len(P))] > cur
            P[better] = C.reshape(2 * n, len(P), n)[k[better], np.arange(len(P))[better]]
            cur[better] = vals[k[better], np.arange(len(P))[better]]
            step[~better] /= 2
            if np.all(step < 1e-7 * np.maximum(1, np.abs(self.hi - self.lo))):
                break


def _children(pl, ph, dims):
    """``[left children; right children]`` of leaves split along ``dims`` at the float32 midpoint."""
    rows = np.arange(len(pl))
    m = midpoint(pl[rows, dims], ph[rows, dims])
    left_hi, right_lo = ph.copy(), pl.copy()
    left_hi[rows, dims] = m
    right_lo[rows, dims] = m
    return np.concatenate([pl, right_lo]), np.concatenate([left_hi, ph])


def _greedy_split(bounder, pl, ph, idx):
    """Bound the children of every splittable dimension (one request); keep, per leaf, the split
    whose worse child has the smaller |residual| bound. Returns the split leaves' indices, their
    dimensions, the children ``[left; right]``, the children's bounds and how many boxes were bounded."""
    n = pl.shape[1]
    m = midpoint(pl, ph)
    ok = (m > pl) & (m < ph)
    cands = [(j, np.flatnonzero(ok[:, j])) for j in range(n) if ok[:, j].any()]
    if not cands:
        return idx[:0], idx[:0], (pl[:0], ph[:0]), (np.zeros((0, 0)), np.zeros((0, 0))), 0
    kids = [_children(pl[rows], ph[rows], np.full(len(rows), j)) for j, rows in cands]
    ylo, yhi = bounder.bound(np.concatenate([k[0] for k in kids]), np.concatenate([k[1] for k in kids]))
    absr = np.maximum(np.abs(ylo[:, -1]), np.abs(yhi[:, -1]))
    best, pick = np.full(len(pl), np.inf), np.full(len(pl), -1)
    where = np.zeros((len(pl), 2), int)              # rows of the chosen left and right child
    off = 0
    for c, (j, rows) in enumerate(cands):
        r = len(rows)
        worse = np.maximum(absr[off:off + r], absr[off + r:off + 2 * r])
        win = (worse < best[rows]) | (pick[rows] < 0)   # an unbounded (inf) split still beats none
        best[rows[win]], pick[rows[win]] = worse[win], j
        where[rows[win]] = np.stack([off + np.flatnonzero(win), off + r + np.flatnonzero(win)], axis=1)
        off += 2 * r
    sel = np.flatnonzero(pick >= 0)
    order = np.concatenate([where[sel, 0], where[sel, 1]])
    allo, alhi = np.concatenate([k[0] for k in kids]), np.concatenate([k[1] for k in kids])
    return idx[sel], pick[sel], (allo[order], alhi[order]), (ylo[order], yhi[order]), len(allo)


def refine(name: str, graph: Graph, outputs: list[str], lo, hi, opts: Options) -> PartResult:
    """Certified bounds over an adaptive partition of ``[lo, hi]`` (see the module docstring)."""
    t0 = time.monotonic()
    box = float32_box(lo, hi, opts.semantics)
    k = len(outputs)
    if box is None:
        return PartResult(name, outputs, np.zeros((0, len(lo)), F32), np.zeros((0, len(lo)), F32),
                          np.zeros((0, k)), np.zeros((0, k)), [], 0.0, [], [], 0.0, "no float32 points", 0)
    blo, bhi = box
    with Bounder(graph, opts.semantics, opts.batch, opts.jobs, opts.products) as bounder:
        return _refine(name, graph, outputs, blo, bhi, opts, bounder, t0)


def _refine(name, graph, outputs, blo, bhi, opts, bounder, t0) -> PartResult:
    sampler = Sampler(bounder, blo, bhi)
    G = _grid(blo, bhi, opts.grid)
    Yg = sampler.offer(G)
    order = np.argsort(-np.nan_to_num(np.abs(Yg[:, -1]), nan=np.inf))[:opts.local_starts]
    sampler.local_search(G[order])

    L, H = blo[None].copy(), bhi[None].copy()
    paths, depth = [""], np.zeros(1, int)
    ylo, yhi = bounder.bound(L, H)
    total, trace, stop = 1, [], "target reached"
    while True:
        absr = np.maximum(np.abs(ylo[:, -1]), np.abs(yhi[:, -1]))
        cert, line = float(absr.max()), opts.target_ratio * sampler.best
        trace.append({"seconds": round(time.monotonic() - t0, 2), "leaves": len(L), "certified": cert,
                      "sampled": sampler.best})
        if opts.progress:
            opts.progress(name, len(L), cert, sampler.best)
        if not np.isfinite(sampler.best):
            stop = "the kernel's residual is not finite at a sampled point"
            break
        if cert <= line:
            break
        if time.monotonic() - t0 > opts.timeout:
            stop = "time budget"
            break
        worst = np.flatnonzero(absr > line)
        worst = worst[np.argsort(-absr[worst], kind="stable")][:max(1, opts.batch // (2 * L.shape[1]))]
        worst = worst[depth[worst] < opts.max_depth]
        worst, dims, (cl, ch), cy, bounded = _greedy_split(bounder, L[worst], H[worst], worst)
        total += bounded
        if len(worst) == 0:
            stop = "leaves above the target cannot be split (depth limit or single float32 value)"
            break
        if len(L) + len(worst) > opts.max_leaves:
            stop = "leaf budget"
            break
        sampler.offer(midpoint(cl, ch))
        keep = np.ones(len(L), bool)
        keep[worst] = False
        new_paths = [paths[i] + f"{d}0" for i, d in zip(worst, dims)] + \
                    [paths[i] + f"{d}1" for i, d in zip(worst, dims)]
        paths = [p for p, kp in zip(paths, keep) if kp] + new_paths
        depth = np.concatenate([depth[keep], depth[worst] + 1, depth[worst] + 1])
        L, H = np.concatenate([L[keep], cl]), np.concatenate([H[keep], ch])
        ylo, yhi = np.concatenate([ylo[keep], cy[0]]), np.concatenate([yhi[keep], cy[1]])
    # a last climb from the worst leaves' centres: the sampled maximum only grows
    absr = np.maximum(np.abs(ylo[:, -1]), np.abs(yhi[:, -1]))
    sampler.local_search(midpoint(L, H)[np.argsort(-absr)[:opts.local_starts]])
    return PartResult(name, outputs, L, H, ylo, yhi, paths, sampler.best,
                      [float(v) for v in sampler.at], [float(v) for v in sampler.values],
                      time.monotonic() - t0, stop, total, trace)
