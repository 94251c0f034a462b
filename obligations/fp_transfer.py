"""fp-transfer obligations: every node's float32 output stays inside its claimed bounds.

The claim being proved is a bounds table (``nnlemma.bounds.ibp`` float32 intervals by default):
for every float32 input in the box, every value of the graph lies in its interval. It follows by
induction over the equations from one lemma per node output element:

    ∀ operands in their claimed domains:  op(operands) ∈ claimed domain of the output

where a domain is ``{v : lo ≤ v ≤ hi}`` (``fp.leq``, so NaN is outside) plus NaN when the
bounds flag NaN as possible. Graph inputs range over the float32 values of the box; parameters
are their exact bit patterns. Each lemma uses the op's encoding from ``encoders.fp32``, which the
encoder-agreement tests pin to the kernel bit for bit.

Folds (linear, matmul, conv2d) are not encoded whole — a fan-in-50 dot product is far beyond any FP
solver. They are decomposed per multiply-add in the kernel's order with *interval-abstracted
partial sums*: with ``P_0 = {+0}`` and

    P_k = [fl(lo(P_{k-1}) + min_x fl(x·w_k)),  fl(hi(P_{k-1}) + max_x fl(x·w_k))]

(the kernel's own step on the interval endpoints), the lemmas are
``∀ acc ∈ P_{k-1}, x ∈ X_k: fl(acc + fl(x·w_k)) ∈ P_k`` for each k, and
``∀ acc ∈ P_K: fl(acc + b) ∈ claimed output`` (or ``acc ∈ claimed output`` without bias).
Chaining them gives the node's lemma, because the kernel's fold is exactly that chain of steps.
If the endpoint formula for ``P_k`` were wrong, its lemma would be refuted, not assumed: nothing
about ``P_k`` is trusted, it is only the lemma's claim.

An op this module cannot decompose yields a :class:`Gap` naming the node and op; a claim with a
gap can only be ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from encoders import fp32
from encoders import terms as T
from nnlemma.bounds.ibp import BoundsResult
from nnlemma.ir.graph import Graph

from .model import Obligation

F32 = np.float32
ELEMENTWISE = fp32.ELEMENTWISE
FOLDS = {"linear", "matmul", "conv2d"}
MOVES = {"reshape", "transpose", "slice", "concat"}
# correctly rounded, hence monotone non-decreasing, transcendentals (SEMANTICS.md)
MONOTONE_TRANSCENDENTAL = {"exp", "tanh", "sigmoid"}
# correctly rounded, monotone between critical points (obligations.trig)
PERIODIC = {"sin", "cos"}


@dataclass(frozen=True)
class Gap:
    """A node no obligation covers: the claim about it stays unproved."""
    node: str
    op: str
    reason: str


def _bits(x) -> int:
    return int(np.asarray(x, F32).view(np.uint32))


@dataclass(frozen=True)
class Dom:
    """One scalar's domain: a constant (``const`` bit pattern) or ``[lo, hi]`` (+ NaN if ``nan``)."""
    lo: int
    hi: int
    nan: bool = False
    const: int | None = None

    @staticmethod
    def interval(lo, hi, nan=False) -> "Dom":
        if np.isnan(lo) or np.isnan(hi):  # no information: everything, NaN included
            return Dom(_bits(-np.inf), _bits(np.inf), True)
        return Dom(_bits(lo), _bits(hi), bool(nan))

    @staticmethod
    def point(x) -> "Dom":
        return Dom(_bits(x), _bits(x), bool(np.isnan(x)), _bits(x))

    def member(self, t: T.Term) -> T.Term:
        inside = T.and_(T.fp_leq(T.fp_bits(self.lo), t), T.fp_leq(t, T.fp_bits(self.hi)))
        return T.or_(inside, T.is_nan(t)) if self.nan else inside

    def contains(self, v: np.float32) -> bool:
        """The same membership on a concrete float32 (for replay)."""
        if np.isnan(v):
            return self.nan
        lo, hi = (np.array(b, np.uint32).view(F32) for b in (self.lo, self.hi))
        return bool(lo <= v <= hi)

    def to_json(self) -> dict:
        return {"const": self.const} if self.const is not None else \
            {"lo": self.lo, "hi": self.hi, "nan": self.nan}

    @staticmethod
    def from_json(d: dict) -> "Dom":
        if "const" in d:
            return Dom(d["const"], d["const"], T.is_nan_bits(d["const"], T.F32), d["const"])
        return Dom(d["lo"], d["hi"], d["nan"])


def transfer(op: str, attrs: dict, operands: list[Dom], claim: Dom, oid: str,
             provenance: dict, step: str = "op") -> Obligation:
    """The lemma ``∀ operands ∈ domains: f(operands) ∈ claim`` as an obligation.

    ``step`` is ``op`` (the op's own encoding), ``mac`` (``fl(acc + fl(x·w))``, operands
    acc, x, w) or ``add`` (``fl(acc + b)``); operand variables are named by position so equal
    lemmas get equal formulas (and share a cache entry)."""
    args, hyps = [], []
    for i, d in enumerate(operands):
        if d.const is not None:
            args.append(T.fp_bits(d.const))
        else:
            v = T.var(f"x{i}", T.F32)
            args.append(v)
            hyps.append(d.member(v))
    if step == "mac":
        y = fp32.mac(*args)
    elif step == "add":
        y = T.fp_add(*args)
    elif step == "id":
        y = args[0]
    else:
        y = fp32.FP_RULES[op](attrs, *args)
    violation = T.and_(*hyps, T.not_(claim.member(y)))
    replay = {"step": step, "op": op, "attrs": attrs,
              "operands": [d.to_json() for d in operands], "claim": claim.to_json()}
    statement = f"{step if step != 'op' else op} maps its operand domains into {_show(claim)}"
    return Obligation(oid, "fp-transfer", op, "QF_FP", violation, statement, provenance, replay)


def _show(d: Dom) -> str:
    f = lambda b: repr(float(np.array(b, np.uint32).view(F32)))  # noqa: E731
    return f"[{f(d.lo)}, {f(d.hi)}]" + (" or NaN" if d.nan else "")


def _domains(v, env_interval, param) -> tuple[np.ndarray, ...]:
    """(lo, hi, nan, const_or_None) arrays for one operand value."""
    if param is not None:
        data = np.asarray(param.data, F32)
        return data, data, np.isnan(data), data
    iv = env_interval
    return iv.lo, iv.hi, np.broadcast_to(iv.nan, iv.lo.shape), None


def _dom_at(src, idx) -> Dom:
    lo, hi, nan, const = src
    if const is not None:
        return Dom.point(const[idx])
    return Dom.interval(lo[idx], hi[idx], nan[idx])


def _node_name(e) -> str:
    return e.name or f"%{e.out.id}"


def generate(graph: Graph, bounds: BoundsResult, model: str = "model") -> Iterator[Obligation | Gap]:
    """Every fp-transfer obligation (and every gap) for ``bounds`` on ``graph``, streamed."""
    if bounds.status != "ok" or bounds.semantics != "float32":
        yield Gap("*", "*", f"no float32 bounds to prove ({bounds.reason or bounds.semantics})")
        return
    params = {p.value.id: p for p in graph.params}
    for e in graph.equations:
        node = _node_name(e)
        out = bounds[e.out.id]
        srcs = [_domains(i, bounds.env.get(i), params.get(i)) for i in e.inputs]
        prov = {"model": model, "node": node, "op": e.op, "equation": e.describe()}
        if e.op in ELEMENTWISE:
            yield from _elementwise(e, srcs, out, model, node, prov)
        elif e.op in FOLDS:
            yield from _fold(e, srcs, out, model, node, prov, params)
        elif e.op in MOVES:
            yield from _move(e, srcs, out, model, node, prov, graph)
        elif e.op in ("sum", "mean"):
            yield from _reduce(e, srcs[0], out, model, node, prov)
        elif e.op == "batch_norm":
            yield from _batch_norm(e, srcs, out, model, node, prov)
        elif e.op in ("avg_pool2d", "max_pool2d"):
            from .pooling import avg_pool, max_pool
            yield from (avg_pool if e.op == "avg_pool2d" else max_pool)(e, srcs[0], out, model, node, prov)
        elif e.op in MONOTONE_TRANSCENDENTAL | PERIODIC and e.inputs[0] not in params:
            yield from _transcendental(e, srcs, out, model, node, prov)
        else:
            yield Gap(node, e.op, f"no fp-transfer obligation generator for {e.op!r} yet")


def _claim(out, idx) -> Dom:
    return Dom.interval(out.lo[idx], out.hi[idx], np.broadcast_to(out.nan, out.lo.shape)[idx])


def _elementwise(e, srcs, out, model, node, prov) -> Iterator[Obligation]:
    shape = out.lo.shape
    bsrcs = [tuple(None if a is None else np.broadcast_to(a, shape) for a in s) for s in srcs]
    for flat, idx in enumerate(np.ndindex(*shape)):
        operands = [_dom_at(s, idx) for s in bsrcs]
        yield transfer(e.op, e.attr_dict, operands, _claim(out, idx),
                       f"{model}/{node}/fp-transfer/{flat}", dict(prov, element=list(idx)))


def _move(e, srcs, out, model, node, prov, graph) -> Iterator[Obligation]:
    """Data movement copies elements exactly, so each output element's lemma is ``x ∈ D_in ⇒
    x ∈ D_out`` for the input element it copies. Which one is found by running the kernel's own
    rule on the element indices (exact in float32 below 2^24)."""
    from nnlemma.kernels import KERNEL_RULES
    vals = graph.values()
    offsets = np.cumsum([0] + [vals[i].size for i in e.inputs])
    if offsets[-1] >= 2 ** 24:
        yield Gap(_node_name(e), e.op, "too many elements to track the data movement exactly")
        return
    ids = [np.arange(offsets[n], offsets[n + 1], dtype=F32).reshape(vals[i].shape)
           for n, i in enumerate(e.inputs)]
    where = np.asarray(KERNEL_RULES[e.op](*ids, **e.attr_dict)).astype(np.int64)
    for flat, idx in enumerate(np.ndindex(*out.lo.shape)):
        src = int(where[idx])
        n = int(np.searchsorted(offsets, src, side="right") - 1)
        lo, hi, nan, const = srcs[n]
        at = np.unravel_index(src - offsets[n], vals[e.inputs[n]].shape)
        operand = _dom_at((lo, hi, np.broadcast_to(nan, lo.shape), const), at)
        yield transfer(e.op, {}, [operand], _claim(out, idx), f"{model}/{node}/fp-transfer/{flat}",
                       dict(prov, element=list(idx), source=[n] + [int(a) for a in at]), step="id")


def transcendental_transfer(op: str, operand: Dom, claim: Dom, oid: str, provenance: dict,
                            points: list | None = None, constants: tuple = ()) -> Obligation:
    """The lemma ``∀x ∈ [lo, hi]: op(x) ∈ claim`` reduced to the kernel's values at a few points.

    For a monotone op (exp, tanh, sigmoid) the points are the interval's ends: the kernel is
    correctly rounded (the audit's subject, a trusted fact in TRUST.md), so it is monotone and its
    range over the interval is ``[op(lo), op(hi)]``. For sin and cos, :func:`obligations.trig.
    spanning_points` gives the ends of the monotone pieces (or the constants ±1 that hold the
    whole range). The formula states that the kernel's values at the points, the constants, and
    NaN when the operand may be NaN (NaN propagates), lie in the claim; it is ground, so any solver
    decides it, and a claim is an interval, so it then holds every value in between."""
    from nnlemma.kernels import KERNEL_RULES
    if points is None:
        points = [np.array(b, np.uint32).view(F32) for b in (operand.lo, operand.hi)]
    ends = [np.asarray(KERNEL_RULES[op](np.array(F32(p))), F32).reshape(()) for p in points]
    values = ends + [F32(c) for c in constants]
    parts = [claim.member(T.fp_bits(_bits(v))) for v in values]
    if operand.nan:
        parts.append(claim.member(fp32.NAN))
    replay = {"step": "transcendental", "op": op, "operands": [operand.to_json()], "claim": claim.to_json(),
              "points": [_bits(p) for p in points], "constants": [_bits(F32(c)) for c in constants],
              "ends": [_bits(v) for v in ends]}
    how = "correctly rounded, monotone" if op in MONOTONE_TRANSCENDENTAL else \
        "correctly rounded, monotone between critical points"
    return Obligation(oid, "transcendental-transfer", op, "QF_FP", T.not_(T.and_(*parts)),
                      f"{op} ({how}) maps {_show(operand)} into {_show(claim)}", provenance, replay)


def _transcendental(e, srcs, out, model, node, prov) -> Iterator[Obligation]:
    from .trig import spanning_points
    for flat, idx in enumerate(np.ndindex(*out.lo.shape)):
        operand = _dom_at(srcs[0], idx)
        points, constants = None, ()
        if e.op in PERIODIC:
            lo, hi = (np.array(b, np.uint32).view(F32) for b in (operand.lo, operand.hi))
            points, constants = spanning_points(e.op, lo, hi)
        yield transcendental_transfer(e.op, operand, _claim(out, idx),
                                      f"{model}/{node}/transcendental-transfer/{flat}",
                                      dict(prov, element=list(idx)), points, tuple(constants))


def partial_sums(x_lo, x_hi, x_nan, w_row) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The interval-abstracted partial sums ``P_1..P_K`` of one fold (kernel steps on endpoints).

    Returns (lo, hi, nan) arrays of length K; a NaN endpoint (inf − inf, 0·inf) widens that
    partial sum and every later one to everything-or-NaN."""
    with np.errstate(all="ignore"):
        p1 = np.multiply(x_lo, w_row, dtype=F32)
        p2 = np.multiply(x_hi, w_row, dtype=F32)
        K = len(w_row)
        lo, hi, nan = np.empty(K, F32), np.empty(K, F32), np.zeros(K, bool)
        acc_lo = acc_hi = F32(0.0)
        bad = False
        for k in range(K):
            bad = bad or bool(x_nan[k] or np.isnan(p1[k]) or np.isnan(p2[k]))
            acc_lo = np.add(acc_lo, np.minimum(p1[k], p2[k]), dtype=F32)
            acc_hi = np.add(acc_hi, np.maximum(p1[k], p2[k]), dtype=F32)
            bad = bad or bool(np.isnan(acc_lo) or np.isnan(acc_hi))
            if bad:
                lo[k:], hi[k:], nan[k:] = -np.inf, np.inf, True
                break
            lo[k], hi[k] = acc_lo, acc_hi
    return lo, hi, nan


def _chain(op, xl, xh, xn, xdom, wrow, bias, claim, base, p) -> Iterator[Obligation]:
    """The multiply-add lemmas of one output element's fold (``xdom[k]`` times ``wrow[k]`` in
    order, from +0), then its bias (or result) lemma against the element's claim."""
    lo, hi, nan = partial_sums(xl, xh, xn, wrow)
    acc = Dom.point(F32(0.0))
    for k in range(len(wrow)):
        nxt = Dom.interval(lo[k], hi[k], nan[k])
        yield transfer(op, {}, [acc, xdom[k], Dom.point(wrow[k])], nxt, f"{base}/mac{k}",
                       dict(p, mac=k), step="mac")
        acc = nxt
    if bias is None:
        yield transfer(op, {}, [acc], claim, f"{base}/result", dict(p, mac="result"), step="id")
    else:
        yield transfer(op, {}, [acc, Dom.point(bias)], claim, f"{base}/bias", dict(p, mac="bias"), step="add")


def _fold(e, srcs, out, model, node, prov, params) -> Iterator[Obligation | Gap]:
    w_id = e.inputs[1]
    b_id = e.inputs[2] if len(e.inputs) > 2 else None
    if w_id not in params or (b_id is not None and b_id not in params):
        yield Gap(node, e.op, "the weight (and bias) must be parameters to decompose the fold")
        return
    w = np.asarray(params[w_id].data, F32)
    bias = None if b_id is None else np.asarray(params[b_id].data, F32)
    if e.op == "conv2d":
        yield from _conv(e, srcs[0], w, bias, out, model, node, prov)
        return
    wt = w if e.op == "linear" else w.T  # [N, K]
    x_lo, x_hi, x_nan, x_const = srcs[0]
    K = wt.shape[1]
    for r in np.ndindex(*out.lo.shape[:-1]):
        xl, xh = x_lo[r], x_hi[r]
        xn = np.broadcast_to(x_nan, x_lo.shape)[r]
        xdom = [_dom_at((xl, xh, xn, None if x_const is None else x_const[r]), (k,)) for k in range(K)]
        for j in range(wt.shape[0]):
            flat = int(np.ravel_multi_index(r + (j,), out.lo.shape))
            yield from _chain(e.op, xl, xh, xn, xdom, wt[j], None if bias is None else bias[j],
                              _claim(out, r + (j,)), f"{model}/{node}/fp-transfer/{flat}",
                              dict(prov, element=list(r) + [j]))


def sum_chain(op, flat, idx, claim: Dom, divisor: int | None, base: str, p: dict) -> Iterator[Obligation]:
    """The lemmas of ``acc = fl(acc + x_t)`` from +0 over the elements ``idx`` of the flat
    operand ``flat`` (lo, hi, nan, const arrays), in order: one per addition, with partial sums
    as for the dot products (weight 1, since ``fl(x·1) = x``); then the claim (``divisor`` None)
    or one rounded division by ``divisor`` into it."""
    lo_f, hi_f, nan_f, _ = flat
    lo, hi, nan = partial_sums(lo_f[idx], hi_f[idx], nan_f[idx], np.ones(len(idx), F32))
    acc = Dom.point(F32(0.0))
    for k, t in enumerate(idx):
        nxt = Dom.interval(lo[k], hi[k], nan[k])
        yield transfer(op, {}, [acc, _dom_at(flat, (int(t),))], nxt, f"{base}/add{k}", dict(p, add=k), step="add")
        acc = nxt
    if divisor is None:
        yield transfer(op, {}, [acc], claim, f"{base}/result", dict(p, add="result"), step="id")
    else:
        yield transfer("div", {}, [acc, Dom.point(F32(divisor))], claim, f"{base}/divide",
                       dict(p, add="divide"), step="op")


def _reduce(e, src, out, model, node, prov) -> Iterator[Obligation]:
    """sum and mean: the fold from +0 over the reduced axes in row-major order
    (:func:`sum_chain`); mean then divides once by the count."""
    from nnlemma.kernels.fold import _move_reduced_last
    x_lo, x_hi, x_nan, x_const = src
    shape = x_lo.shape
    order, ax = _move_reduced_last(np.arange(x_lo.size).reshape(shape), e.attr_dict["axes"])
    order = order.reshape(-1, order.shape[-1])
    flat = (np.asarray(x_lo).reshape(-1), np.asarray(x_hi).reshape(-1), np.broadcast_to(x_nan, shape).reshape(-1),
            None if x_const is None else np.asarray(x_const).reshape(-1))
    for o, idx in enumerate(order):
        claim = _claim(out, np.unravel_index(o, out.lo.shape))
        yield from sum_chain(e.op, flat, idx, claim, None if e.op == "sum" else order.shape[1],
                             f"{model}/{node}/fp-transfer/{o}", dict(prov, element=o))


def _batch_norm(e, srcs, out, model, node, prov) -> Iterator[Obligation]:
    """batch_norm is elementwise once its per-channel operands (mean, var, gamma, beta: vectors
    along axis 1) are laid out along axis 1: one lemma per element with the op's whole formula
    ``fl(fl(fl(fl(x − mean) / fl(sqrt(fl(var + eps)))) · gamma) + beta)``; with parameter
    operands x is its only variable."""
    lay = (1, -1) + (1,) * (out.lo.ndim - 2)
    srcs = [srcs[0]] + [tuple(None if a is None else np.reshape(a, lay) for a in s) for s in srcs[1:]]
    yield from _elementwise(e, srcs, out, model, node, prov)


def _conv(e, src, w, bias, out, model, node, prov) -> Iterator[Obligation]:
    """conv2d: each output element's fold reads the zero-padded input window in (c_in, kh, kw)
    order (SEMANTICS.md); padded positions are the constant +0, multiplied like any input."""
    x_lo, x_hi, x_nan, x_const = src
    a = e.attr_dict
    (s0, s1), (d0, d1), (top, left, bottom, right) = a["stride"], a["dilation"], a["pads"]
    shape = x_lo.shape
    pad = np.pad(np.arange(x_lo.size).reshape(shape), ((0, 0), (0, 0), (top, bottom), (left, right)),
                 constant_values=x_lo.size)  # index x_lo.size: a padded zero
    ext = lambda v, z: np.append(np.asarray(v).reshape(-1), z)  # noqa: E731
    lo_e, hi_e = ext(x_lo, F32(0)), ext(x_hi, F32(0))
    nan_e = ext(np.broadcast_to(x_nan, shape), False)
    const_e = None if x_const is None else ext(x_const, F32(0))
    C, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    for n, co, oi, oj in np.ndindex(*out.lo.shape):
        idx = np.array([pad[n, c, oi * s0 + i * d0, oj * s1 + j * d1]
                        for c in range(C) for i in range(kh) for j in range(kw)])
        xl, xh, xn = lo_e[idx], hi_e[idx], nan_e[idx]
        xdom = [Dom.point(F32(0)) if t == x_lo.size else
                _dom_at((lo_e, hi_e, nan_e, const_e), (t,)) for t in idx]
        flat = int(np.ravel_multi_index((n, co, oi, oj), out.lo.shape))
        yield from _chain(e.op, xl, xh, xn, xdom, w[co].reshape(-1), None if bias is None else bias[co],
                          _claim(out, (n, co, oi, oj)), f"{model}/{node}/fp-transfer/{flat}",
                          dict(prov, element=[n, co, oi, oj]))
