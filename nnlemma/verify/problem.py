"""A model with one input and one output, seen as a map from flat float32 vectors to flat float32
vectors (VNN-LIB's ``X_i``/``Y_j`` index the row-major flattening of the batch-1 tensors), with
batched kernel evaluation and batched certified bounds of linear forms of the output."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..interpret import run
from ..ir.builder import rebuild
from ..ir.graph import Graph
from ..bounds.backward import backward
from ..bounds.common import RELAX, Ctx
from ..bounds.interval import Interval
from ..bounds.crown import prepare, tighten
from ..bounds.optimize import MLP, as_mlp, optimized_rows

F32 = np.float32


def pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _pad_rows(a: np.ndarray, m: int) -> np.ndarray:
    """Pad the leading axis to m by repeating the last row (as the boxes are padded)."""
    return np.concatenate([a, np.repeat(a[-1:], m - len(a), axis=0)]) if len(a) < m else a


class Problem:
    def __init__(self, graph: Graph, semantics: str = "float32"):
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise InputError("verification needs a model with exactly one input and one output")
        self.graph = graph
        self.semantics = semantics
        self.in_shape = graph.inputs[0].shape
        self.out_shape = graph.output_values[0].shape
        if not self.in_shape or self.in_shape[0] != 1 or not self.out_shape or self.out_shape[0] != 1:
            raise InputError(f"model input {list(self.in_shape)} and output {list(self.out_shape)} must have "
                             "batch size 1 as leading axis")
        self.n_in = int(np.prod(self.in_shape))
        self.n_out = int(np.prod(self.out_shape))
        self._graphs: dict[int, Graph] = {1: graph}
        self.bound_calls = 0
        self.has_relu = any(e.op in RELAX for e in graph.equations)
        self.relu_inputs = sorted({e.inputs[0] for e in graph.equations if e.op in RELAX})
        # values that depend on the input (batch axis first); ids are the same at every batch size
        self._varying = {v.id for v in graph.inputs}
        for e in graph.equations:
            if any(i in self._varying for i in e.inputs):
                self._varying.add(e.out.id)
        self._mlps: dict[int, MLP | None] = {}

    def batched(self, n: int) -> Graph:
        g = self._graphs.get(n)
        if g is None:
            g = self._graphs[n] = rebuild(self.graph, [(n,) + tuple(self.in_shape[1:])])
        return g

    def mlp(self, n: int) -> MLP | None:
        """The batch-n graph as a plain ReLU MLP (float64 weights), or None; built once per n."""
        if n not in self._mlps:
            self._mlps[n] = as_mlp(self.batched(n))
        return self._mlps[n]

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        """Kernel outputs ``[N, n_out]`` for float32 points ``[N, n_in]``."""
        X = np.asarray(X, F32)
        n = X.shape[0]
        m = pow2(n)
        Xp = np.concatenate([X, np.repeat(X[-1:], m - n, axis=0)]) if m > n else X
        Y = run(self.batched(m), Xp.reshape((m,) + tuple(self.in_shape[1:])))[0]
        return Y.reshape(m, -1)[:n]

    def bound_rows(self, lo: np.ndarray, hi: np.ndarray, C: np.ndarray, alpha_iters: int = 0,
                   target: np.ndarray | None = None, groups: tuple | None = None):
        """Certified lower bounds ``[S, B]`` of ``C·y`` over each box ``[B, n_in]`` and the input
        coefficients ``[S, B, n_in]`` of the linear lower bounds; None if bounding is impossible
        (the reason is returned instead). With ``alpha_iters`` > 0 and a ReLU MLP, each (row, box)
        pair gets its own optimised ReLU slopes first (alpha-CROWN, deterministic, so the
        certificate checker recomputes the same bits; ``target``: see
        :func:`nnlemma.bounds.optimize.optimize`, like ``groups``); the bounds are certified all
        the same."""
        boxes, reason = self.bound_boxes(lo, hi)
        if boxes is None:
            return None, reason
        return self.rows_on(boxes, C, alpha_iters, target, groups), ""

    def bound_boxes(self, lo: np.ndarray, hi: np.ndarray, known: dict | None = None):
        """Every node bounded over each box (IBP, and CROWN for the ReLU inputs): (:class:`Boxes`,
        "") or (None, reason). ``known`` (node id -> (lo, hi), ``[B, ...]``) holds bounds of ReLU
        inputs proved on boxes containing these (a parent box), see
        :func:`nnlemma.bounds.crown.tighten`."""
        n = lo.shape[0]
        m = pow2(n)
        lo, hi = _pad_rows(lo, m), _pad_rows(hi, m)
        shape = (m,) + tuple(self.in_shape[1:])
        ctx, reason = prepare(self.batched(m), lo.reshape(shape), hi.reshape(shape), self.semantics)
        if ctx is None:
            return None, reason
        if known:
            known = {z: tuple(_pad_rows(v, m) for v in lh) for z, lh in known.items()}
        tighten(ctx, known)
        return Boxes(ctx, n), ""

    def subset(self, boxes: "Boxes", idx) -> "Boxes":
        """The context of the boxes ``idx`` alone, with the node bounds already computed for them
        (each box's bounds hold for that box whatever batch computed them)."""
        idx = np.asarray(idx)
        n = len(idx)
        m = pow2(n)
        take = _pad_rows(idx, m)
        old = boxes.ctx
        M = old.B
        g = self.batched(m)

        def cut(v, a):
            a = np.asarray(a)
            return a[take] if v in self._varying and a.ndim and a.shape[0] == M else a

        bounds = {v: Interval(cut(v, iv.lo), cut(v, iv.hi), cut(v, iv.nan)) for v, iv in old.bounds.items()}
        ctx = Ctx(g, old.semantics, m, bounds, err={v: cut(v, e) for v, e in old.err.items()}, params=old.params,
                  eqn_of={e.out.id: e for e in g.equations})
        return Boxes(ctx, n)

    def rows_on(self, boxes: "Boxes", C: np.ndarray, alpha_iters: int = 0, target: np.ndarray | None = None,
                groups: tuple | None = None):
        """(lb ``[S, n]``, A ``[S, n, n_in]``) of :meth:`bound_rows` on an already bounded batch."""
        ctx, n = boxes.ctx, boxes.n
        m = ctx.B
        g = ctx.graph
        S = C.shape[0]
        lam = np.broadcast_to(C.reshape((S, 1) + tuple(self.out_shape[1:])), (S, m) + tuple(self.out_shape[1:])).copy()
        mlp = self.mlp(m) if alpha_iters > 0 else None
        if mlp is not None:
            zeros = [np.zeros(ctx.lshape(z)) for z in mlp.z_ids[:-1]]
            lb, A, _ = optimized_rows(ctx, mlp, lam, C, zeros, alpha_iters, target=target, groups=groups)
        else:
            coeffs: dict = {}
            lb = backward(ctx, g.outputs[0], lam, coeffs)
            A = coeffs.get(g.inputs[0].id)
        A = np.zeros((S, m, self.n_in)) if A is None else A.reshape(S, m, -1)
        self.bound_calls += 1
        return lb[:, :n], A[:, :n]


class Boxes:
    """A batch of boxes with every node bounded (a CROWN context whose batch may be padded to a
    power of two) and the number ``n`` of real boxes in it."""

    def __init__(self, ctx: Ctx, n: int):
        self.ctx, self.n = ctx, n

    def relu_bounds(self, nodes) -> dict:
        """Float32 bounds ``(lo, hi)`` ``[n, ...]`` of the given nodes, for the boxes' children."""
        return {z: (self.ctx.bounds[z].lo[:self.n], self.ctx.bounds[z].hi[:self.n]) for z in nodes}
