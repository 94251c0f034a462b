"""CROWN: backward linear bound propagation, sound for the float32 kernel or for real arithmetic.

For a target node z and a coefficient matrix Λ (``[S, B, ...]``: S bound rows per batch element
b), :func:`backward` computes a certified lower bound of ``Λ·z`` over the input box by walking the
graph backwards and replacing each node by linear functions of its operands:

* affine ops (linear, matmul, add, sub, neg, mul/div by a constant, sum, mean, data movement) are
  substituted exactly;
* relu / leaky_relu use sound linear relaxations over their input interval
  (:mod:`nnlemma.bounds.linrelax`);
* every other op is *cut*: the node is treated as a free variable in its (sound) interval.

Float32 soundness: the kernel computes ``z = op(inputs) + δ`` where δ is the rounding of that
node; every rounding node carries a bound ``|δ| <= E`` computed from the intervals of its operands
and result (:mod:`nnlemma.bounds.fold_f32` for folds; half an ulp of the result's binade for single
operations), and the backward pass subtracts ``Σ|Λ|·E``. In ``real`` semantics E = 0.

Soundness of the bound arithmetic itself: all coefficients are float64 and inexact; each
substitution step adds a *slack* ``γ_n·Σ |Λ|·|M|·max|x|`` covering the difference between the
computed and the exact coefficients times the operand's range, and the sum of bias terms carries
a γ-bound on its own rounding. The result is rounded outward.

Batch: all input-dependent nodes have a leading batch axis of size B (or 1 for nodes computed from
constants only), and ops act independently per batch element, so one pass bounds B boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..ir.graph import Equation, Graph
from ..ir.shapes import index_tuple, normalize_axes
from .ibp import IBP_RULES, move_reduced_last
from .ibp import ibp as ibp_bounds
from .fold_f32 import fold_interval, half_ulp_bound
from .interval import FLOAT32, SEMANTICS, Interval
from .linrelax import relu_relaxation

U64 = 2.0 ** -53
MIN_SUB_ERR = 2.0 ** -150


def gamma(n: int) -> float:
    """γ_n = n·u/(1 − n·u) for float64, doubled as a margin for the bound's own rounding."""
    return 2.0 * n * U64 / (1 - n * U64)


def _up(v):
    return np.nextafter(v, np.inf)


def _down(v):
    return np.nextafter(v, -np.inf)


AFFINE = {"linear", "matmul", "add", "sub", "neg", "mul", "div", "sum", "mean", "identity", "reshape",
          "transpose", "slice", "concat"}
RELAX = {"relu", "leaky_relu"}


@dataclass
class Ctx:
    graph: Graph
    semantics: str
    B: int
    bounds: dict[int, Interval]                 # best interval per value id
    err: dict[int, np.ndarray] = field(default_factory=dict)   # float32 rounding bound per node
    params: dict[int, np.ndarray] = field(default_factory=dict)
    eqn_of: dict[int, Equation] = field(default_factory=dict)
    alpha: dict[int, np.ndarray] = field(default_factory=dict)  # relu lower slopes by node id
    cut_nodes: set[int] = field(default_factory=set)

    def lshape(self, vid: int) -> tuple[int, ...]:
        return (self.B,) + tuple(self._shapes[vid][1:])

    def __post_init__(self):
        self._shapes = {v.id: v.shape for v in self.graph.values().values()}

    def xmax(self, vid: int) -> np.ndarray:
        """max |x| over the node's interval, float64 (inf where unbounded)."""
        iv = self.bounds[vid]
        return np.maximum(np.abs(iv.lo.astype(np.float64)), np.abs(iv.hi.astype(np.float64)))


def _rest_sum(a: np.ndarray) -> np.ndarray:
    """Sum over all axes after (S, B)."""
    return a.reshape(a.shape[0], a.shape[1], -1).sum(axis=2)


def _dot_terms(lam: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Σ_rest lam·v with 0·inf = 0 (a zero coefficient ignores an unbounded range)."""
    with np.errstate(invalid="ignore", over="ignore"):
        prod = np.where(lam == 0, 0.0, lam * v)
    return _rest_sum(np.broadcast_to(prod, np.broadcast_shapes(lam.shape, prod.shape)))


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
    if vid in ctx.params:
        acc.add_bias(_dot_terms(contrib, ctx.params[vid].astype(np.float64)), int(np.prod(contrib.shape[2:])))
        return
    if vid in lams:
        new = lams[vid] + contrib
        acc.add_slack(_dot_terms(2 * U64 * np.abs(new), ctx.xmax(vid)))
        lams[vid] = new
    else:
        lams[vid] = contrib


def _unbroadcast(lam: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Reduce Λ of the output's lshape to an operand's shape (batch axis kept)."""
    S, B = lam.shape[:2]
    target = (B,) + tuple(shape[1:]) if len(shape) == lam.ndim - 1 else None
    if target is None:  # lower-rank operand: must be a constant (checked by caller)
        extra = lam.ndim - 1 - len(shape)
        lam = lam.sum(axis=tuple(range(2, 2 + extra))) if extra > 0 else lam
        out = lam
        for ax, d in enumerate(shape):
            if d == 1 and out.shape[2 + ax] != 1:
                out = out.sum(axis=2 + ax, keepdims=True)
        return out  # [S, B, *shape]; used only for constants
    for ax in range(1, len(shape)):
        if shape[ax] == 1 and lam.shape[ax + 1] != 1:
            lam = lam.sum(axis=ax + 1, keepdims=True)
    return lam


def _scale_slack(ctx: Ctx, acc: _Acc, vid: int, lam_new: np.ndarray, n_ops: int = 1):
    if vid not in ctx.params:
        acc.add_slack(_dot_terms(gamma(n_ops) * np.abs(lam_new), ctx.xmax(vid)))


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
        acc.add_slack(_dot_terms(gamma(M.shape[1]) * np.abs(lam), v))
        if op == "linear" and len(ins) == 3:
            acc.add_bias(_dot_terms(lam, ctx.params[ins[2]].astype(np.float64)), int(np.prod(lam.shape[2:])))
        return
    if op in ("add", "sub"):
        a, b = ins
        if not (_operand_ok(ctx, a, out_ndim) and _operand_ok(ctx, b, out_ndim)):
            return _cut(ctx, acc, z, lam)
        _sub_rounding(ctx, acc, z, lam)
        _add_lam(lams, acc, ctx, a, _unbroadcast(lam, ctx._shapes[a]))
        _add_lam(lams, acc, ctx, b, _unbroadcast(lam if op == "add" else -lam, ctx._shapes[b]))
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
        _scale_slack(ctx, acc, var, new, 2)
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
            _scale_slack(ctx, acc, x, new, 1)
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
    x = e.inputs[0]
    iv = ctx.bounds[x]
    l = np.broadcast_to(iv.lo.astype(np.float64), ctx.lshape(x))
    u = np.broadcast_to(iv.hi.astype(np.float64), ctx.lshape(x))
    if not (np.isfinite(l).all() and np.isfinite(u).all()) or iv.nan.any() or x in ctx.params:
        return _cut(ctx, acc, e.out.id, lam)
    s = dict(e.attrs).get("alpha", 0.0) if e.op == "leaky_relu" else 0.0
    _sub_rounding(ctx, acc, e.out.id, lam)
    a_lo, b_lo, a_hi, b_hi = relu_relaxation(l, u, ctx.alpha.get(e.out.id), s)
    pos, neg = np.maximum(lam, 0), np.minimum(lam, 0)
    new = pos * a_lo + neg * a_hi
    acc.add_bias(_dot_terms(neg, b_hi) + _dot_terms(pos, b_lo), int(np.prod(lam.shape[2:])))
    _scale_slack(ctx, acc, x, np.abs(pos * a_lo) + np.abs(neg * a_hi), 2)
    _add_lam(lams, acc, ctx, x, new)


def backward(ctx: Ctx, target: int, lam: np.ndarray) -> np.ndarray:
    """Certified lower bound of ``Λ·z_target`` per (row, batch element): ``[S, B]``."""
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
            _cut(ctx, acc, vid, lam_v)
        elif vid in ctx.params:
            acc.add_bias(_dot_terms(lam_v, ctx.params[vid].astype(np.float64)), int(np.prod(lam_v.shape[2:])))
        else:  # pragma: no cover - every non-input value is defined by an equation
            _cut(ctx, acc, vid, lam_v)
    return acc.lower()


def _node_bounds(ctx: Ctx, vid: int) -> tuple[np.ndarray, np.ndarray]:
    """CROWN lower and upper bounds of every element of a node: float64 ``[B, ...]``."""
    shape = ctx.lshape(vid)
    n = int(np.prod(shape[1:]))
    eye = np.eye(n).reshape((n, 1) + shape[1:])
    lam = np.broadcast_to(eye, (n,) + shape).copy()
    lo = backward(ctx, vid, lam)          # [n, B]
    hi = -backward(ctx, vid, -lam)
    return lo.T.reshape(shape), hi.T.reshape(shape)


def f64_to_f32_down(v: np.ndarray) -> np.ndarray:
    f = v.astype(np.float32)
    return np.where(f.astype(np.float64) > v, np.nextafter(f, np.float32(-np.inf)), f).astype(np.float32)


def f64_to_f32_up(v: np.ndarray) -> np.ndarray:
    f = v.astype(np.float32)
    return np.where(f.astype(np.float64) < v, np.nextafter(f, np.float32(np.inf)), f).astype(np.float32)


def _rounding_error(ctx: Ctx, e: Equation) -> np.ndarray | None:
    """Bound E on |kernel value − exact op on the kernel's operand values| for float32."""
    op = e.op
    if op in ("relu", "neg", "abs", "identity", "reshape", "transpose", "slice", "concat", "maximum",
              "minimum", "clamp"):
        return None
    out = ctx.bounds[e.out.id]
    zmax = np.maximum(np.abs(out.lo.astype(np.float64)), np.abs(out.hi.astype(np.float64)))
    if op in ("linear", "matmul") and e.inputs[1] in ctx.params and e.inputs[0] not in ctx.params:
        x = ctx.bounds[e.inputs[0]]
        W = ctx.params[e.inputs[1]]
        wt = W.T if op == "linear" else W
        lead = x.shape[:-1]
        xl = np.broadcast_to(x.lo, x.shape).reshape(-1, x.shape[-1])
        xh = np.broadcast_to(x.hi, x.shape).reshape(-1, x.shape[-1])
        if not (np.isfinite(xl).all() and np.isfinite(xh).all() and np.isfinite(wt).all()):
            return np.full(zmax.shape, np.inf)
        _, _, err = fold_interval(xl, xh, wt, with_err=True)
        err = err.reshape(lead + (wt.shape[1],))
        if op == "linear" and len(e.inputs) == 3:
            err = err + half_ulp_bound(zmax)
        return err
    if op in ("add", "sub"):
        return half_ulp_bound(zmax)
    if op in ("mul", "div", "leaky_relu"):
        return np.maximum(half_ulp_bound(zmax), MIN_SUB_ERR)
    if op in ("sum", "mean"):
        x = ctx.bounds[e.inputs[0]]
        flat, _ = move_reduced_last(x, dict(e.attrs)["axes"])
        xm = np.maximum(np.abs(flat.lo.astype(np.float64)), np.abs(flat.hi.astype(np.float64)))
        partial = np.cumsum(xm, axis=-1)
        err = half_ulp_bound(partial).sum(axis=-1)
        if dict(e.attrs)["keepdims"]:
            err = err.reshape(zmax.shape)
        if op == "mean":
            err = err + np.maximum(half_ulp_bound(zmax), MIN_SUB_ERR)
        return err * (1 + 2.0 ** -40)
    return None  # cut ops need no rounding term: their interval already bounds the kernel value


@dataclass
class CrownResult:
    graph: Graph
    semantics: str
    status: str
    reason: str = ""
    bounds: dict[int, Interval] = field(default_factory=dict)
    looser_than_ibp: dict[int, int] = field(default_factory=dict)  # node -> elements where CROWN was looser
    cut_nodes: list[int] = field(default_factory=list)

    @property
    def outputs(self) -> list[Interval]:
        return [self.bounds[i] for i in self.graph.outputs]


def _batch_of(graph: Graph) -> int:
    return graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape else 1


def _check_batchable(graph: Graph, B: int) -> str | None:
    for v in graph.inputs:
        if not v.shape or v.shape[0] != B:
            return f"input {v.name or v} must have the batch size {B} as leading axis"
    return None


def prepare(graph: Graph, lo, hi, semantics: str = "float32") -> tuple[Ctx | None, str]:
    """IBP pass and context for CROWN; returns (ctx, reason-if-unusable)."""
    if semantics not in SEMANTICS:
        raise InputError(f"unknown semantics {semantics!r}; use 'float32' or 'real'")
    res = ibp_bounds(graph, lo, hi, semantics)
    if res.status != "ok":
        return None, res.reason
    B = _batch_of(graph)
    why = _check_batchable(graph, B)
    if why:
        return None, why
    r = SEMANTICS[semantics]
    ctx = Ctx(graph, semantics, B, dict(res.env),
              params={p.value.id: p.data.astype(r.dtype) for p in graph.params},
              eqn_of={e.out.id: e for e in graph.equations})
    return ctx, ""


def crown(graph: Graph, lo, hi, semantics: str = "float32", *, alpha: dict[int, np.ndarray] | None = None,
          targets: str = "relax-inputs") -> CrownResult:
    """CROWN bounds: IBP everywhere, CROWN on the inputs of relaxed ops and on the outputs, each
    intersected with IBP; the float32 semantics includes every rounding of the kernel."""
    ctx, reason = prepare(graph, lo, hi, semantics)
    if ctx is None:
        return CrownResult(graph, semantics, "unknown", reason)
    if alpha:
        ctx.alpha.update(alpha)
    relax_inputs = {e.inputs[0] for e in graph.equations if e.op in RELAX}
    crown_targets = relax_inputs | set(graph.outputs)
    looser: dict[int, int] = {}
    table = IBP_RULES[semantics]
    r = SEMANTICS[semantics]
    for e in graph.equations:
        args = [ctx.bounds[i] for i in e.inputs]
        iv = table[e.op](*args, **dict(e.attrs))
        ctx.bounds[e.out.id] = iv
        if semantics == "float32":
            err = _rounding_error(ctx, e)
            if err is not None:
                ctx.err[e.out.id] = np.broadcast_to(err, ctx.lshape(e.out.id)) if err.ndim else err
        if e.out.id in crown_targets and e.out.shape and e.out.shape[0] in (ctx.B,) and len(e.out.shape) >= 1:
            lo64, hi64 = _node_bounds(ctx, e.out.id)
            if r is FLOAT32:
                clo, chi = f64_to_f32_down(lo64), f64_to_f32_up(hi64)
            else:
                clo, chi = lo64, hi64
            looser[e.out.id] = int(np.sum(clo < iv.lo) + np.sum(chi > iv.hi))
            ctx.bounds[e.out.id] = iv.intersect(Interval.make(clo, chi, iv.nan, r.dtype))
    return CrownResult(graph, semantics, "ok", "", dict(ctx.bounds), looser, sorted(ctx.cut_nodes))
