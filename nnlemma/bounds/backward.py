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
from .common import RELAX, SMOOTH, STEP, U64, Ctx, gamma, relaxation
from .fused import abs_dots, relax_terms, tiny_rows

TINY = 2.0 ** -600

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
        self.tiny = np.zeros((S, B), bool)

    def add_bias(self, t: np.ndarray, n_terms: int, abs_terms: np.ndarray | None = None):
        """t is a sum of n_terms products computed in float64 (any order): it errs by at most
        γ_{n+1}·Σ|products| — the magnitudes of the terms, which ``abs_terms`` gives; only when
        every term has one sign is that |t| (the default). With cancellation |t| can be ~0 while
        the error is not (fl(0.1 + 0.2 − 0.3) = 5.55e-17, exact 2.78e-17). Each product may also
        underflow, erring by up to 2^−1075 absolutely: (n + 1)·2^−1074 covers that."""
        with np.errstate(invalid="ignore"):
            self.bias = self.bias + t
            self.mag = self.mag + np.abs(t)
        self.slack = self.slack + gamma(n_terms + 1) * (np.abs(t) if abs_terms is None else abs_terms) \
            + (n_terms + 1) * 2.0 ** -1074
        self.terms += 1

    def check_tiny(self, lam: np.ndarray, small: np.ndarray | None = None) -> None:
        """Rows whose coefficients get so small (nonzero below 2^−600) that later float64
        products could underflow, where the relative error model above fails, give no bound.
        Every Λ is checked once, when its step consumes it (the fused steps report ``small``)."""
        if small is None:
            small = tiny_rows(lam, TINY)
        if small.any():
            self.tiny = self.tiny | small

    def add_slack(self, s: np.ndarray):
        self.slack = self.slack + s

    def lower(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            # 2^−1000 covers products inside the slack sums themselves that underflow
            total = self.slack + gamma(self.terms + 1) * self.mag + 2.0 ** -1000
            out = _down(_down(self.bias) - _up(total * (1 + 2.0 ** -30)))
        return np.where(self.tiny, -np.inf, out)


def _lin_bound(lam: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Σ_rest min over the interval of lam·x = lam⁺·lo + lam⁻·hi."""
    return _dot_terms(np.maximum(lam, 0), lo) + _dot_terms(np.minimum(lam, 0), hi)


def _lin_bound_abs(lam: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Σ of the magnitudes of the terms of :func:`_lin_bound` (for its rounding bound)."""
    return _dot_terms(np.maximum(lam, 0), np.abs(lo)) + _dot_terms(-np.minimum(lam, 0), np.abs(hi))


def _const_terms(lam: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σ lam·c for a constant c, and Σ |lam|·|c| (its rounding bound's magnitude)."""
    c = np.asarray(c, np.float64)
    return _dot_terms(lam, c), _dot_terms(np.abs(lam), np.abs(c))


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
    acc.add_bias(_lin_bound(lam, lo, hi), int(np.prod(lam.shape[2:])), _lin_bound_abs(lam, lo, hi))


def _add_lam(lams: dict, acc: _Acc, ctx: Ctx, vid: int, contrib: np.ndarray):
    """Accumulate Λ for an operand; summing two float64 coefficient arrays costs u·|sum|·|x|."""
    if vid in ctx.params:  # a constant broadcasts against Λ: its term is a bias
        t, t_abs = _const_terms(contrib, ctx.params[vid])
        acc.add_bias(t, int(np.prod(contrib.shape[2:])), t_abs)
        return
    n_summed = _broadcast_count(contrib, ctx._shapes[vid])
    if n_summed > 1:  # summing n float64 coefficients errs by γ_n·Σ|Λ| (times |x| in the bound)
        acc.add_slack(gamma(n_summed) * _dot_terms(np.abs(contrib), ctx.xmax(vid)))
    contrib = _unbroadcast(contrib, ctx._shapes[vid])
    if vid in lams:
        new = lams[vid] + contrib
        acc.add_slack(2 * U64 * _dot_terms(np.abs(new), ctx.xmax(vid)))
        lams[vid] = new
    else:
        lams[vid] = contrib


def _broadcast_count(lam: np.ndarray, shape: tuple[int, ...]) -> int:
    """How many coefficients :func:`_unbroadcast` sums into one."""
    n = 1
    for ax in range(1, len(shape)):
        if shape[ax] == 1 and lam.shape[ax + 1] != 1:
            n *= lam.shape[ax + 1]
    return n


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
    """z = op(operands) + δ with |δ| <= E (float32 rounding): Λ·δ >= −Σ|Λ|·E. Where z's interval
    admits NaN (float32) or an undefined value (real: x/0), z is not op(operands) + δ for any
    finite δ — an operand reached through a zero coefficient would be lost (fl(0·NaN) = NaN) — so
    E is +inf there, in both semantics."""
    err = _node_err(ctx, z)
    if err is not None:
        acc.add_bias(-_dot_terms(np.abs(lam), err), int(np.prod(lam.shape[2:])))


def _node_err(ctx: Ctx, z: int):
    err = ctx.err.get(z)
    iv = ctx.bounds[z]
    if iv.nan.any():
        err = np.where(np.broadcast_to(iv.nan, iv.lo.shape), np.inf, 0.0 if err is None else err)
    return err


def _step(ctx: Ctx, e: Equation, lam: np.ndarray, lams: dict, acc: _Acc) -> None:
    """Replace ``Λ·z`` for node z = e.out by terms in e's operands (or cut it); every branch that
    substitutes the op's exact formula also accounts for the node's rounding."""
    op, ins, attrs = e.op, e.inputs, dict(e.attrs)
    z = e.out.id
    S = lam.shape[0]
    out_ndim = len(e.out.shape)
    if op in ("linear", "matmul"):
        x, w = ins[0], ins[1]
        if w not in ctx.params or x in ctx.params or len(ctx._shapes[x]) < 2 or \
                (len(ins) == 3 and ins[2] not in ctx.params):
            # a rank-1 operand's only axis is the one the layer contracts, not a batch axis; a
            # computed (non-constant) bias is cut too
            return _cut(ctx, acc, z, lam)
        W = ctx.params[w].astype(np.float64)
        M = W if op == "linear" else W.T  # z = x @ M.T
        new = lam @ M
        _add_lam(lams, acc, ctx, x, new)
        xm = ctx.xmax(x)
        with np.errstate(invalid="ignore", over="ignore"):
            v = np.where(np.isinf(xm), np.inf, xm) @ np.abs(M).T
        # Λ·δ >= −Σ|Λ|·E for the node's float32 rounding; Λ@M errs by γ_k·Σ|Λ|·(|x|@|M|ᵀ)
        # (each coefficient of Λ@M is a sum over M.shape[0] terms)
        err = _node_err(ctx, z)
        rnd, mag, small = abs_dots(lam, 0.0 if err is None else err, v, TINY)
        acc.check_tiny(lam, small)
        if err is not None:
            acc.add_bias(-rnd, int(np.prod(lam.shape[2:])))
        acc.add_slack(gamma(M.shape[0]) * mag)
        if op == "linear" and len(ins) == 3:
            t, t_abs = _const_terms(lam, ctx.params[ins[2]])
            acc.add_bias(t, int(np.prod(lam.shape[2:])), t_abs)
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
    if op == "mul" and ins[0] not in ctx.params and ins[1] not in ctx.params:
        return _mccormick(ctx, e, lam, lams, acc)
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
        acc.check_tiny(lam)
        _scale_slack(ctx, acc, var, np.abs(new), 2)   # per product/quotient, before any summing
        return _add_lam(lams, acc, ctx, var, new)     # sums broadcast axes, with its own slack
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
            acc.check_tiny(lam)
            n = float(np.float32(np.prod([xs[a] for a in axes])))
            new = new / n
            _scale_slack(ctx, acc, x, np.abs(new), 1)
        return _add_lam(lams, acc, ctx, x, new)
    if op in ("identity", "reshape", "transpose", "slice", "concat"):
        return _movement(ctx, e, lam, lams, acc)
    if op in RELAX or op in SMOOTH or op in STEP:
        return _relax(ctx, e, lam, lams, acc)
    if op in ("conv2d", "avg_pool2d", "max_pool2d"):
        from .conv import avg_pool_step, conv2d_step, max_pool_step

        step = {"conv2d": conv2d_step, "avg_pool2d": avg_pool_step, "max_pool2d": max_pool_step}[op]
        return step(ctx, e, lam, lams, acc, (_cut, _add_lam, _sub_rounding, _const_terms, abs_dots, TINY))
    if op == "batch_norm":
        from .batchnorm import batch_norm_step

        return batch_norm_step(ctx, e, lam, lams, acc, (_cut, _add_lam, _sub_rounding, _const_terms, _dot_terms))
    return _cut(ctx, acc, z, lam)


def _mccormick_planes(ctx, a, b, z):
    """``(la, lb, ub, c_lo, c_hi)`` of :func:`_mccormick`, or None when z must be cut; cached in
    ``ctx.relax_cache`` (the operands' bounds are final once a backward pass reaches z)."""
    key = ("mccormick", z)
    hit = ctx.relax_cache.get(key)
    if hit is None:
        shape = ctx.lshape(z)
        ia, ib = ctx.bounds[a], ctx.bounds[b]
        hit = ()
        if ctx.lshape(a) == shape and ctx.lshape(b) == shape and ia.finite() and ib.finite():
            la = np.broadcast_to(ia.lo, shape).astype(np.float64)
            lb, ub = (np.broadcast_to(v, shape).astype(np.float64) for v in (ib.lo, ib.hi))
            with np.errstate(over="ignore"):
                c_lo = _down(-(la * lb))
                c_hi = _up(-(la * ub))
            if np.isfinite(c_lo).all() and np.isfinite(c_hi).all():
                hit = (la, lb, ub, c_lo, c_hi)
        ctx.relax_cache[key] = hit
    return hit or None


def _mccormick(ctx, e, lam, lams, acc):
    """z = a·b of two variables, a ∈ [la, ua], b ∈ [lb, ub] (McCormick): (a − la)(b − lb) >= 0 and
    (a − la)(b − ub) <= 0 give ``lb·a + la·b − la·lb <= a·b <= ub·a + la·b − la·ub`` for every a, b
    in the box. The slopes are the interval endpoints themselves (exact); the intercepts are
    rounded down / up, which keeps each plane on its side. Λ⁺ takes the lower plane, Λ⁻ the upper.
    Operands must have z's shape (no broadcasting) and finite, NaN-free intervals; else z is cut."""
    a, b = e.inputs
    z = e.out.id
    planes = _mccormick_planes(ctx, a, b, z)
    if planes is None:
        return _cut(ctx, acc, z, lam)
    la, lb, ub, c_lo, c_hi = planes
    _sub_rounding(ctx, acc, z, lam)
    acc.check_tiny(lam)
    pos, neg = np.maximum(lam, 0), np.minimum(lam, 0)
    n = int(np.prod(lam.shape[2:]))
    t = pos * c_lo + neg * c_hi
    acc.add_bias(_rest_sum(t), n, _rest_sum(np.abs(t)))
    new_a = pos * lb + neg * ub        # one of the two products is 0: one rounding each
    new_b = lam * la
    _scale_slack(ctx, acc, a, np.abs(new_a), 2)
    _scale_slack(ctx, acc, b, np.abs(new_b), 2)
    _add_lam(lams, acc, ctx, a, new_a)
    _add_lam(lams, acc, ctx, b, new_b)


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
    # Λ' = Λ⁺·a_lo + Λ⁻·a_hi, bias Σ Λ⁺·b_lo + Λ⁻·b_hi; the coefficients take 2 float64
    # operations each (slack γ_2·Σ|Λ'|·max|x|)
    new, bias, bias_abs, mag, small = relax_terms(lam, a_lo, b_lo, a_hi, b_hi, ctx.xmax(x), TINY)
    acc.check_tiny(lam, small)
    acc.add_bias(bias, int(np.prod(lam.shape[2:])), bias_abs)
    if ctx.intercept_cost is not None:
        ctx.intercept_cost[e.out.id] = -np.minimum(lam, 0) * b_hi
    if x not in ctx.params:
        acc.add_slack(gamma(2) * mag)
    _add_lam(lams, acc, ctx, x, new)


def _split_multiplier(ctx: Ctx, z: int, c: np.ndarray, S: int) -> np.ndarray:
    """beta-CROWN: adding c·z to the objective is sound when c·z <= 0 at every point considered,
    since then Λ·y >= Λ·y + c·z. That holds where the node's interval proves the sign (c < 0 with
    lo >= 0, c > 0 with hi <= 0, as on a split domain); elsewhere the multiplier is dropped."""
    iv = ctx.bounds[z]
    shape = ctx.lshape(z)
    lo = np.broadcast_to(iv.lo, shape)
    hi = np.broadcast_to(iv.hi, shape)
    nan = np.broadcast_to(iv.nan, shape)
    c = np.broadcast_to(np.asarray(c, np.float64), (S,) + shape)
    ok = ((c < 0) & (lo >= 0) | (c > 0) & (hi <= 0)) & ~nan
    return np.where(ok, c, 0.0)


def backward(ctx: Ctx, target: int, lam: np.ndarray, input_coeffs: dict | None = None) -> np.ndarray:
    """Certified lower bound of ``Λ·z_target`` per (row, batch element): ``[S, B]``. If
    ``input_coeffs`` is a dict, the final coefficient arrays of the graph inputs are stored in it
    (the linear lower bound is ``Σ coeffs·x + const`` with const = bound − min over the box)."""
    S, B = lam.shape[:2]
    acc = _Acc(S, B)
    acc.check_tiny(lam)
    lams = {target: lam}
    input_ids = {v.id for v in ctx.graph.inputs}
    for e in reversed(ctx.graph.equations):
        z = e.out.id
        if z in ctx.beta:
            _add_lam(lams, acc, ctx, z, _split_multiplier(ctx, z, ctx.beta[z], S))
        if z not in lams:
            continue
        _step(ctx, e, lams.pop(z), lams, acc)
    for vid, lam_v in lams.items():
        if vid in input_ids:
            if input_coeffs is not None:
                input_coeffs[vid] = lam_v
            _cut(ctx, acc, vid, lam_v)
        elif vid in ctx.params:
            t, t_abs = _const_terms(lam_v, ctx.params[vid])
            acc.add_bias(t, int(np.prod(lam_v.shape[2:])), t_abs)
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


