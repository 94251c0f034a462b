"""Backward linear bound propagation (the CROWN pass) for one target node.

For a target z and coefficients Λ (``[S, B, ...]``), :func:`backward` returns a certified lower
bound of ``Λ·z`` over the input box, per row and batch element, by replacing each node with
linear functions of its operands: affine ops exactly, relu/leaky_relu by sound relaxations,
anything else by its interval (a *cut*). See :mod:`nnlemma.bounds.crown` for the soundness
argument (float32 rounding terms and float64 slack).
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Equation
from ..ir.shapes import index_tuple, normalize_axes
from .common import RELAX, U64, Ctx, gamma, relaxation

def _up(v):
    return np.nextafter(v, np.inf)


def _down(v):
    return np.nextafter(v, -np.inf)


def _rest_sum(a: np.ndarray) -> np.ndarray:
    """Sum over all axes after (S, B)."""
    return a.reshape(a.shape[0], a.shape[1], -1).sum(axis=2)


def _dot_terms(lam: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Σ_rest lam·v per (row, batch) with 0·inf = 0 (a zero coefficient ignores an unbounded
    range). ``v`` has the node's shape (leading axis B or 1) or a lower rank (a constant)."""
    S, B = lam.shape[:2]
    rest = lam.shape[2:]
    R = int(np.prod(rest))
    v = np.asarray(v, np.float64)
    if not np.isfinite(v).all():
        with np.errstate(invalid="ignore", over="ignore"):
            prod = np.where(lam == 0, 0.0, lam * v)
        return _rest_sum(np.broadcast_to(prod, np.broadcast_shapes(lam.shape, prod.shape)))
    lam2 = lam.reshape(S, B, R)
    if v.ndim < lam.ndim - 1 or v.shape[0] == 1:  # same vector for every batch element
        vec = v.reshape(v.shape[1:]) if v.ndim == lam.ndim - 1 else v
        return lam2 @ np.broadcast_to(vec, rest).reshape(R)
    return np.einsum("sbr,br->sb", lam2, np.broadcast_to(v, lam.shape[1:]).reshape(B, R))


class _Acc:
    """Accumulates bias terms (with magnitude for the rounding bound) and slack."""

    def __init__(self, S: int, B: int):
        self.bias = np.zeros((S, B))
        self.mag = np.zeros((S, B))
        self.terms = 0
        self.slack = np.zeros((S, B))

    def add_bias(self, t: np.ndarray, n_terms: int):
        """t is a sum of n_terms products computed in float64: its own error is <= γ_n·mag."""
        with np.errstate(invalid="ignore"):
            self.bias = self.bias + t
            self.mag = self.mag + np.abs(t)
        self.slack = self.slack + gamma(n_terms + 1) * np.abs(t)
        self.terms += 1

    def add_slack(self, s: np.ndarray):
        self.slack = self.slack + s

    def lower(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            total = self.slack + gamma(self.terms + 1) * self.mag
            return _down(_down(self.bias) - _up(total * (1 + 2.0 ** -30)))


def _lin_bound(lam: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Σ_rest min over the interval of lam·x = lam⁺·lo + lam⁻·hi."""
    return _dot_terms(np.maximum(lam, 0), lo) + _dot_terms(np.minimum(lam, 0), hi)


def _cut(ctx: Ctx, acc: _Acc, vid: int, lam: np.ndarray):
    """Treat the node as a free variable in its sound interval (no rounding term needed: the
    interval bounds the kernel's value itself)."""
    if vid in ctx.eqn_of:
        ctx.cut_nodes.add(vid)
    iv = ctx.bounds[vid]
    lo = iv.lo.astype(np.float64)
    hi = iv.hi.astype(np.float64)
    if iv.nan.any():
        lo = np.where(iv.nan, -np.inf, lo)
        hi = np.where(iv.nan, np.inf, hi)
    acc.add_bias(_lin_bound(lam, lo, hi), int(np.prod(lam.shape[2:])))


def _add_lam(lams: dict, acc: _Acc, ctx: Ctx, vid: int, contrib: np.ndarray):
    """Accumulate Λ for an operand; summing two float64 coefficient arrays costs u·|sum|·|x|."""
    if vid in ctx.params:  # a constant broadcasts against Λ: its term is a bias
        acc.add_bias(_dot_terms(contrib, ctx.params[vid].astype(np.float64)), int(np.prod(contrib.shape[2:])))
        return
    contrib = _unbroadcast(contrib, ctx._shapes[vid])
    if vid in lams:
        new = lams[vid] + contrib
        acc.add_slack(2 * U64 * _dot_terms(np.abs(new), ctx.xmax(vid)))
        lams[vid] = new
    else:
        lams[vid] = contrib


def _unbroadcast(lam: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Reduce Λ (``[S, B, *out_shape[1:]]``) to a same-rank operand broadcast along some axes;
    the batch axis is kept (per-batch rows stay separate even for batch-1 operands)."""
    for ax in range(1, len(shape)):
        if shape[ax] == 1 and lam.shape[ax + 1] != 1:
            lam = lam.sum(axis=ax + 1, keepdims=True)
    return lam


def _scale_slack(ctx: Ctx, acc: _Acc, vid: int, abs_lam_new: np.ndarray, n_ops: int = 1):
    """Coefficients computed with n_ops float64 operations each: slack γ·Σ|Λ_new|·max|x|."""
    if vid not in ctx.params:
        acc.add_slack(gamma(n_ops) * _dot_terms(abs_lam_new, ctx.xmax(vid)))


def _operand_ok(ctx: Ctx, vid: int, out_ndim: int) -> bool:
    return vid in ctx.params or len(ctx._shapes[vid]) == out_ndim


def _sub_rounding(ctx: Ctx, acc: _Acc, z: int, lam: np.ndarray) -> None:
    """z = op(operands) + δ with |δ| <= E (float32 rounding): Λ·δ >= −Σ|Λ|·E."""
    if z in ctx.err:
        acc.add_bias(-_dot_terms(np.abs(lam), ctx.err[z]), int(np.prod(lam.shape[2:])))


def _step(ctx: Ctx, e: Equation, lam: np.ndarray, lams: dict, acc: _Acc) -> None:
    """Replace ``Λ·z`` for node z = e.out by terms in e's operands (or cut it); every branch that
    substitutes the op's exact formula also accounts for the node's rounding."""
    op, ins, attrs = e.op, e.inputs, dict(e.attrs)
    z = e.out.id
    S = lam.shape[0]
    out_ndim = len(e.out.shape)
    if op in ("linear", "matmul"):
        x, w = ins[0], ins[1]
        if w not in ctx.params or x in ctx.params:
            return _cut(ctx, acc, z, lam)
        _sub_rounding(ctx, acc, z, lam)
        W = ctx.params[w].astype(np.float64)
        M = W if op == "linear" else W.T  # z = x @ M.T
        new = lam @ M
        _add_lam(lams, acc, ctx, x, new)
        xm = ctx.xmax(x)
        with np.errstate(invalid="ignore", over="ignore"):
            v = np.where(np.isinf(xm), np.inf, xm) @ np.abs(M).T
        acc.add_slack(gamma(M.shape[1]) * _dot_terms(np.abs(lam), v))
        if op == "linear" and len(ins) == 3:
            acc.add_bias(_dot_terms(lam, ctx.params[ins[2]].astype(np.float64)), int(np.prod(lam.shape[2:])))
        return
    if op in ("add", "sub"):
        a, b = ins
        if not (_operand_ok(ctx, a, out_ndim) and _operand_ok(ctx, b, out_ndim)):
            return _cut(ctx, acc, z, lam)
        _sub_rounding(ctx, acc, z, lam)
        _add_lam(lams, acc, ctx, a, lam)
        _add_lam(lams, acc, ctx, b, lam if op == "add" else -lam)
        return
    if op == "neg":
        return _add_lam(lams, acc, ctx, ins[0], -lam)
    if op in ("mul", "div"):
        a, b = ins
        const = b if b in ctx.params else (a if (a in ctx.params and op == "mul") else None)
        var = a if const == b else b
        if const is None or var in ctx.params or not _operand_ok(ctx, var, out_ndim):
            return _cut(ctx, acc, z, lam)
        c = ctx.params[const].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = lam * c if op == "mul" else lam / c
        if not np.isfinite(new).all():
            return _cut(ctx, acc, z, lam)
        _sub_rounding(ctx, acc, z, lam)
        new = _unbroadcast(new, ctx._shapes[var])
        _scale_slack(ctx, acc, var, np.abs(new), 2)
        return _add_lam(lams, acc, ctx, var, new)
    if op in ("sum", "mean"):
        x = ins[0]
        axes = normalize_axes(attrs["axes"], len(ctx._shapes[x]))
        if 0 in axes:
            return _cut(ctx, acc, z, lam)
        _sub_rounding(ctx, acc, z, lam)
        xs = ctx.lshape(x)
        lam_k = lam if attrs["keepdims"] else np.expand_dims(lam, tuple(a + 1 for a in axes))
        new = np.broadcast_to(lam_k, (S,) + xs).copy()
        if op == "mean":
            n = float(np.float32(np.prod([xs[a] for a in axes])))
            new = new / n
            _scale_slack(ctx, acc, x, np.abs(new), 1)
        return _add_lam(lams, acc, ctx, x, new)
    if op in ("identity", "reshape", "transpose", "slice", "concat"):
        return _movement(ctx, e, lam, lams, acc)
    if op in RELAX:
        return _relax(ctx, e, lam, lams, acc)
    return _cut(ctx, acc, z, lam)


def _movement(ctx, e, lam, lams, acc):
    op, ins, attrs = e.op, e.inputs, dict(e.attrs)
    S = lam.shape[0]
    x = ins[0]
    xs = ctx.lshape(x)
    if op == "identity":
        return _add_lam(lams, acc, ctx, x, lam)
    if op == "reshape":
        if ctx._shapes[x][0] != e.out.shape[0]:
            return _cut(ctx, acc, e.out.id, lam)
        return _add_lam(lams, acc, ctx, x, lam.reshape((S,) + xs))
    if op == "transpose":
        perm = attrs["perm"]
        if perm[0] != 0:
            return _cut(ctx, acc, e.out.id, lam)
        inv = np.argsort(perm)
        return _add_lam(lams, acc, ctx, x, np.transpose(lam, (0,) + tuple(int(p) + 1 for p in inv)))
    if op == "slice":
        index = attrs["index"]
        if index and (len(index[0]) == 1 or index[0] != (None, None, None)):
            return _cut(ctx, acc, e.out.id, lam)
        new = np.zeros((S,) + xs)
        new[(slice(None),) + index_tuple(index)] = lam
        return _add_lam(lams, acc, ctx, x, new)
    # concat
    axis = attrs["axis"] % len(e.out.shape)
    if axis == 0:
        return _cut(ctx, acc, e.out.id, lam)
    start = 0
    for vid in ins:
        size = ctx._shapes[vid][axis]
        part = np.take(lam, np.arange(start, start + size), axis=axis + 1)
        start += size
        if vid in ctx.params or len(ctx._shapes[vid]) == len(e.out.shape):
            _add_lam(lams, acc, ctx, vid, part)
    return None


def _relax(ctx, e, lam, lams, acc):
    rel = relaxation(ctx, e)
    if rel is None:
        return _cut(ctx, acc, e.out.id, lam)
    a_lo, b_lo, a_hi, b_hi = rel
    x = e.inputs[0]
    _sub_rounding(ctx, acc, e.out.id, lam)
    pos, neg = np.maximum(lam, 0), np.minimum(lam, 0)
    t_lo, t_hi = pos * a_lo, neg * a_hi   # slopes are >= 0, so |new| terms are t_lo - t_hi
    acc.add_bias(_dot_terms(neg, b_hi), int(np.prod(lam.shape[2:])))  # b_lo is 0
    _scale_slack(ctx, acc, x, t_lo - t_hi, 2)
    _add_lam(lams, acc, ctx, x, t_lo + t_hi)


def backward(ctx: Ctx, target: int, lam: np.ndarray, input_coeffs: dict | None = None) -> np.ndarray:
    """Certified lower bound of ``Λ·z_target`` per (row, batch element): ``[S, B]``. If
    ``input_coeffs`` is a dict, the final coefficient arrays of the graph inputs are stored in it
    (the linear lower bound is ``Σ coeffs·x + const`` with const = bound − min over the box)."""
    S, B = lam.shape[:2]
    acc = _Acc(S, B)
    lams = {target: lam}
    input_ids = {v.id for v in ctx.graph.inputs}
    for e in reversed(ctx.graph.equations):
        z = e.out.id
        if z not in lams:
            continue
        _step(ctx, e, lams.pop(z), lams, acc)
    for vid, lam_v in lams.items():
        if vid in input_ids:
            if input_coeffs is not None:
                input_coeffs[vid] = lam_v
            _cut(ctx, acc, vid, lam_v)
        elif vid in ctx.params:
            acc.add_bias(_dot_terms(lam_v, ctx.params[vid].astype(np.float64)), int(np.prod(lam_v.shape[2:])))
        else:  # pragma: no cover - every non-input value is defined by an equation
            _cut(ctx, acc, vid, lam_v)
    return acc.lower()


def node_bounds(ctx: Ctx, vid: int, only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CROWN lower and upper bounds of a node's elements: float64 ``[B, ...]``. With ``only`` (a
    bool mask over the flattened non-batch elements) just those rows are computed; the others
    are returned as (−inf, +inf), i.e. no information."""
    shape = ctx.lshape(vid)
    n = int(np.prod(shape[1:]))
    rows = np.arange(n) if only is None else np.flatnonzero(only)
    lo = np.full((ctx.B, n), -np.inf)
    hi = np.full((ctx.B, n), np.inf)
    if len(rows):
        eye = np.zeros((len(rows), n))
        eye[np.arange(len(rows)), rows] = 1.0
        lam = np.broadcast_to(eye.reshape((len(rows), 1) + shape[1:]), (len(rows),) + shape).copy()
        lo[:, rows] = backward(ctx, vid, lam).T
        hi[:, rows] = -backward(ctx, vid, -lam).T
    return lo.reshape(shape), hi.reshape(shape)


