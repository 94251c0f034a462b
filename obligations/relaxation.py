"""Relaxation obligations: every linear bound CROWN / alpha-CROWN substitutes for a neuron holds.

What CROWN relaxes (everything else is affine, substituted exactly, or *cut* at its interval):

* ``step`` through :func:`nnlemma.bounds.linrelax.step_relaxation`, recorded like relu's with
  both intercepts (a stable-on element's lower line is ``y = 1``), ``step(x) = 1 if x > 0 else 0``.
* ``relu`` and ``leaky_relu`` (:data:`nnlemma.bounds.common.RELAX`) through
  :func:`nnlemma.bounds.linrelax.relu_relaxation`, called by :func:`nnlemma.bounds.common.relaxation`
  with the float64 endpoints of the input's final interval and ``negative_slope`` = the op's
  float32 ``alpha`` attribute (0 for relu). Per element, with ``s`` that slope:

  - stable ``l >= 0``: both lines are ``y = x``; stable ``u <= 0``: both are ``y = s·x``;
  - unstable: lower ``y = α·x`` with ``α = clip(alpha_lo, s, 1)`` (alpha-CROWN's free slope, by
    default 1 if ``u > −l`` else ``s``), flushed to ``s`` below 2^−400; upper the float64 chord
    slope ``c = clip((u − s·l)/(u − l), s, 1)`` with the intercept
    ``b = max(up(up(s·l) − down(c·l)), up(u − down(c·u)))`` (``up``/``down`` = one float64 ulp
    outward), or the flat line ``y = u`` when ``c < 2^−400``.

  The backward pass (:func:`nnlemma.bounds.backward._relax` → :func:`nnlemma.bounds.fused.relax_terms`)
  uses all four coefficients; ``relu_relaxation`` returns ``b_lo = 0`` (the tests pin that), so
  the lower line stated here is ``a_lo·x + b_lo`` with the recorded ``b_lo``.
* ``mul`` of two non-constant operands of the result's shape with finite, NaN-free intervals
  (:func:`nnlemma.bounds.backward._mccormick`): McCormick planes ``lb·a + la·b + c_lo <= a·b <=
  ub·a + la·b + c_hi`` with ``c_lo = down(−fl(la·lb))`` and ``c_hi = up(−fl(la·ub))``; Λ⁺ takes the
  lower plane and Λ⁻ the upper one.
* ``tanh`` and ``sigmoid`` (:data:`nnlemma.bounds.common.SMOOTH`, :mod:`nnlemma.bounds.smooth`):
  lines whose intercepts are bounded by interval arithmetic on float64 enclosures of f and f'.
  SMT-LIB cannot state these functions: their lemma is reduced by convexity to linear facts about
  MPFR enclosures of f and f' at a few points, which are the obligation's evidence
  (:mod:`obligations.smooth_relax`).
* Nothing else: ``clamp``, ``maximum``, ``minimum``, ``abs`` and every other op are cut at their
  sound interval (no linear bound to prove; the interval is the IBP / fp-transfer claim).

The lemma, per relaxed element and side, over **real** ``x`` in ``[l, u]`` (the endpoints and every
coefficient as the exact rational of the float64 value actually used):

    relu / leaky_relu:  a_lo·x <= f(x)  and  f(x) <= a_hi·x + b_hi,   f(x) = x if x > 0 else s·x
    mul:                each McCormick plane is on its side of a·b on the operand box

Each formula is the lemma's negation in QF_LRA (``x``, ``r`` with ``r = ite(x > 0, x, s·x)``);
``unsat`` proves it. A McCormick plane is bilinear in (a, b), but ``a·b − plane`` is
``(a − la)(b − lb) + (−la·lb − c_lo)`` (lower) or ``−(a − la)(b − ub) + (c_hi + la·ub)`` (upper):
the product term has one sign on the box and vanishes on the edge ``a = la``, so the plane holds
on the box iff it holds on that edge, where ``a·b = la·b`` is linear — the formula states the
edge's violation exactly, and a model of it is a genuine counterexample (``a = la``).

Why real ``x`` is what CROWN's soundness needs. The backward pass bounds ``Λ·z`` for a relaxed
node ``z`` whose operand ``x`` is the kernel's value (a float32 in float32 semantics, a real in
real semantics) and is known to lie in ``[l, u]``, the input's interval when the relaxation was
computed (a sound enclosure; later passes only intersect it with other enclosures). It writes the kernel's value as
``z = f(x) + δ`` with ``f`` the exact real function and ``δ`` the kernel's rounding, and replaces
``Λ⁺·f(x)`` by ``Λ⁺·a_lo·x`` and ``Λ⁻·f(x)`` by ``Λ⁻·(a_hi·x + b_hi)``. That replacement is valid
for every operand value iff the lines hold at every value ``x`` can take; every float32 in
``[l, u]`` is a real in ``[l, u]``, so the real lemma covers both semantics (and is exactly the
lemma in real semantics). ``f`` is stated with the float32 ``alpha`` the kernel multiplies by
(IR float attributes are stored as that float32 value), so ``fl(alpha·x) − alpha·x`` is exactly
the ``δ`` below.

What these obligations do *not* cover — the rest of CROWN's float32 argument
(:mod:`nnlemma.bounds.crown`), each a separate lemma:

* that ``[l, u]`` encloses the operand (IBP/CROWN bounds of earlier nodes: fp-transfer claims and
  the same argument one layer down);
* the node's own rounding ``|δ| <= E`` (:mod:`nnlemma.bounds.rounding`): 0 for relu (exact),
  ``max(h(max|z|), 2^−150)`` for leaky_relu's ``fl(alpha·x)`` and for ``fl(a·b)``; and the affine
  nodes' fold errors against the exact dot product (:mod:`nnlemma.bounds.fold_f32`:
  ``Σ h(P_k) + Σ h(M_k)``), all subtracted as ``Σ|Λ|·E``;
* the float64 arithmetic of the backward pass itself: ``Λ⁺·a_lo``, ``Λ⁻·a_hi``, ``Σ Λ⁻·b_hi`` are
  computed with rounding and covered by the γ-slack terms and the final outward rounding, not
  here — these lemmas are about the exact float64 coefficients *before* they are multiplied by Λ;
* beta-CROWN split multipliers (sound by a sign argument) and the choice of alpha (any slope in
  ``[s, 1]`` is valid, so the optimiser is untrusted; the obligation is about the slope after
  ``relu_relaxation``'s clip and flush, i.e. the one used).

Recording. :func:`crown_relaxations` re-runs :func:`nnlemma.bounds.crown.crown_context` step by
step (``prepare``, ``tighten``, then one backward pass per output, as that function does) and reads
each relaxation from the context's ``relax_cache`` — the very arrays the backward pass used — with
the interval the node's input had when it was cached; it recomputes ``relu_relaxation`` on that
interval and refuses to go on if the result differs (the mirror would be out of date).
McCormick planes are not cached: they are re-derived from the operands' intervals at each phase
with ``_mccormick``'s formulas. With ``alpha=True`` the alpha-CROWN phase of
:func:`nnlemma.bounds.optimize.alpha_crown` is replayed the same way (same optimiser call, one
backward pass per output row with that row's slopes). :func:`crown_relaxation_run` also returns the
output bounds of the mirrored run so tests can check they equal ``crown``'s / ``alpha_crown``'s bit
for bit. A line with a non-finite coefficient (possible for float64 endpoints near the overflow
threshold, i.e. in real semantics) is not a line: it is reported as a :class:`Gap`, not a formula.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator

import numpy as np

from encoders import terms as T
from nnlemma.bounds.backward import backward, node_bounds
from nnlemma.bounds.common import RELAX, SMOOTH, STEP, outward
from nnlemma.bounds.crown import prepare, tighten
from nnlemma.bounds.interval import SEMANTICS, Interval
from nnlemma.bounds.linrelax import relu_relaxation, step_relaxation
from nnlemma.ir.graph import Graph

from .fp_transfer import Gap
from .model import Obligation


@dataclass(frozen=True)
class Line:
    """``y = slope·x + intercept`` with float64 coefficients."""
    slope: float
    intercept: float


@dataclass(frozen=True)
class ReluRelax:
    """One element's relaxation of ``relu`` / ``leaky_relu`` as the backward pass used it."""
    node: str
    op: str
    index: tuple[int, ...]      # element of the node's batched shape [B, ...]
    l: float
    u: float
    negative_slope: float       # s (0 for relu): f(x) = x if x > 0 else s·x
    lower: Line
    upper: Line
    phase: str = "crown"


@dataclass(frozen=True)
class Plane:
    """``y = ca·a + cb·b + c0``."""
    ca: float
    cb: float
    c0: float


@dataclass(frozen=True)
class McCormick:
    """One element's McCormick planes for ``z = a·b`` over the operands' box."""
    node: str
    index: tuple[int, ...]
    a: tuple[float, float]
    b: tuple[float, float]
    lower: Plane
    upper: Plane
    phase: str = "crown"
    op: str = "mul"


@dataclass
class RelaxationRun:
    """The relaxations of one mirrored CROWN (or alpha-CROWN) run, and its output bounds."""
    status: str
    reason: str = ""
    relaxations: list = field(default_factory=list)       # ReluRelax | McCormick
    outputs: dict[int, Interval] = field(default_factory=dict)
    optimized: bool = False


def _node_name(e) -> str:
    return e.name or f"%{e.out.id}"


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    return bool(np.array_equal(a.view(np.uint64), b.view(np.uint64)))


def _interval64(ctx, snap: dict[int, Interval], vid: int) -> tuple[np.ndarray, np.ndarray]:
    iv = snap[vid]
    shape = ctx.lshape(vid)
    return (np.broadcast_to(iv.lo.astype(np.float64), shape), np.broadcast_to(iv.hi.astype(np.float64), shape))


def _collect_relu(ctx, e, snap, phase: str, done: set[int]) -> list[ReluRelax]:
    """The cached relaxation of relaxed node e (if the backward pass computed one since the last
    phase), with the interval its input had when it was computed."""
    z = e.out.id
    if z in done or not ctx.relax_cache.get(z):
        return []
    done.add(z)
    a_lo, b_lo, a_hi, b_hi = ctx.relax_cache[z]
    x = e.inputs[0]
    l, u = _interval64(ctx, snap, x)
    s = dict(e.attrs).get("alpha", 0.0) if e.op == "leaky_relu" else 0.0
    again = step_relaxation(l, u) if e.op == "step" else relu_relaxation(l, u, ctx.alpha.get(z), s)
    if not all(_same(p, q) for p, q in zip(again, (a_lo, b_lo, a_hi, b_hi))):
        raise RuntimeError(f"relaxation of {_node_name(e)} was not computed from the recorded interval: "
                           "obligations.relaxation no longer mirrors nnlemma.bounds.crown")
    shape = l.shape
    a_lo, b_lo, a_hi, b_hi = (np.broadcast_to(np.asarray(v, np.float64), shape) for v in (a_lo, b_lo, a_hi, b_hi))
    out = []
    for idx in np.ndindex(shape):
        out.append(ReluRelax(_node_name(e), e.op, tuple(int(i) for i in idx), float(l[idx]), float(u[idx]),
                             float(s), Line(float(a_lo[idx]), float(b_lo[idx])),
                             Line(float(a_hi[idx]), float(b_hi[idx])),
                             phase))
    return out


def _collect_mccormick(ctx, e, snap, phase: str, done: set) -> list[McCormick]:
    """The McCormick planes ``_mccormick`` builds for mul node e from the operand intervals in
    ``snap`` (same conditions and formulas; nothing if it would cut the node)."""
    a, b = e.inputs
    if a in ctx.params or b in ctx.params:
        return []
    z = e.out.id
    shape = ctx.lshape(z)
    ia, ib = snap[a], snap[b]
    if ctx.lshape(a) != shape or ctx.lshape(b) != shape or not (ia.finite() and ib.finite()):
        return []
    la, ua = (np.broadcast_to(v, shape).astype(np.float64) for v in (ia.lo, ia.hi))
    lb, ub = (np.broadcast_to(v, shape).astype(np.float64) for v in (ib.lo, ib.hi))
    key = (z, la.tobytes(), ua.tobytes(), lb.tobytes(), ub.tobytes())
    if key in done:
        return []
    done.add(key)
    with np.errstate(over="ignore"):
        c_lo = np.nextafter(-(la * lb), -np.inf)
        c_hi = np.nextafter(-(la * ub), np.inf)
    if not (np.isfinite(c_lo).all() and np.isfinite(c_hi).all()):
        return []
    out = []
    for idx in np.ndindex(shape):
        out.append(McCormick(_node_name(e), tuple(int(i) for i in idx), (float(la[idx]), float(ua[idx])),
                             (float(lb[idx]), float(ub[idx])),
                             Plane(float(lb[idx]), float(la[idx]), float(c_lo[idx])),
                             Plane(float(ub[idx]), float(la[idx]), float(c_hi[idx])), phase))
    return out


def crown_relaxation_run(graph: Graph, lo, hi, semantics: str = "float32", alpha: bool = False,
                         iters: int = 20) -> RelaxationRun:
    """Mirror ``crown_context`` (and with ``alpha`` the rest of ``alpha_crown``) and record every
    relaxation the backward passes used, with the interval each was computed on."""
    ctx, reason = prepare(graph, lo, hi, semantics)
    if ctx is None:
        return RelaxationRun("unknown", reason)
    relaxed = [e for e in graph.equations if e.op in RELAX | STEP]
    from .smooth_relax import collect_smooth
    smooth = [e for e in graph.equations if e.op in SMOOTH]
    muls = [e for e in graph.equations if e.op == "mul"]
    run = RelaxationRun("ok")
    done: set = set()
    mc_done: set = set()

    def collect(snap, phase):
        for e in relaxed:
            run.relaxations.extend(_collect_relu(ctx, e, snap, phase, done))
        for e in smooth:
            run.relaxations.extend(collect_smooth(ctx, e, snap, phase, done))
        for e in muls:
            run.relaxations.extend(_collect_mccormick(ctx, e, snap, phase, mc_done))

    # crown_context: tighten (relaxed inputs' bounds are final before any pass relaxes them),
    # then one pass per output; an output's new bound is seen by later passes only
    tighten(ctx)
    collect(dict(ctx.bounds), "crown")
    r = SEMANTICS[semantics]
    for out in graph.outputs:
        iv = ctx.bounds[out]
        if out in ctx.eqn_of and ctx._shapes[out] and ctx._shapes[out][0] == ctx.B:
            snap = dict(ctx.bounds)
            clo, chi = outward(*node_bounds(ctx, out), semantics)
            collect(snap, "crown")
            ctx.bounds[out] = iv.intersect(Interval.make(clo, chi, iv.nan, r.dtype))
    run.outputs = {o: ctx.bounds[o] for o in graph.outputs}
    if alpha:
        _alpha_phase(ctx, graph, semantics, iters, run)
    return run


def _alpha_phase(ctx, graph, semantics, iters, run) -> None:
    """The alpha-CROWN part of ``alpha_crown``: same optimiser call, one pass per output row."""
    from nnlemma.bounds.optimize import as_mlp, optimize

    mlp = as_mlp(graph)
    if mlp is None or iters <= 0:
        return
    B = ctx.B
    out = graph.outputs[0]
    n = int(np.prod(ctx.lshape(out)[1:]))

    def f64(v):
        return tuple(a.reshape(B, -1) for a in ctx.bounds64(v))

    x_lo, x_hi = f64(mlp.input_id)
    zs = [f64(z) for z in mlp.z_ids[:-1]]
    if not all(np.isfinite(a).all() for z in zs for a in z) or \
            not (np.isfinite(x_lo).all() and np.isfinite(x_hi).all()):
        return
    C = np.concatenate([np.eye(n), -np.eye(n)])
    alpha, _, _ = optimize(mlp, x_lo, x_hi, [z[0] for z in zs], [z[1] for z in zs],
                           [np.zeros_like(z[0]) for z in zs], C, iters=iters)
    relu_ids = set(mlp.relu_ids)
    lb = np.empty((2 * n, B))
    snap = dict(ctx.bounds)
    for s in range(2 * n):
        ctx.relax_cache = {}
        ctx.alpha = {h: alpha[k][s] for k, h in enumerate(mlp.relu_ids)}
        lam = np.broadcast_to(C[s].reshape((1, 1) + tuple(ctx.lshape(out)[1:])), (1,) + ctx.lshape(out)).copy()
        lb[s] = backward(ctx, out, lam)[0]
        row: list = []
        done: set[int] = set()
        for e in graph.equations:
            if e.out.id in relu_ids:
                row.extend(_collect_relu(ctx, e, snap, f"alpha row {s}", done))
        run.relaxations.extend(row)
    clo, chi = outward(lb[:n].T.reshape(ctx.lshape(out)), (-lb[n:]).T.reshape(ctx.lshape(out)), semantics)
    iv = run.outputs[out]
    run.outputs[out] = iv.intersect(Interval.make(clo, chi, iv.nan, SEMANTICS[semantics].dtype))
    run.optimized = True


def crown_relaxations(graph: Graph, lo, hi, semantics: str = "float32", alpha: bool = False,
                      iters: int = 20) -> Iterator[ReluRelax | McCormick]:
    """Every per-element relaxation CROWN (``alpha``: and alpha-CROWN) used on ``graph`` over the
    box ``[lo, hi]``: the input interval and the float64 lines/planes, as the backward pass used
    them. Nothing when CROWN is unusable (no relaxation was used)."""
    yield from crown_relaxation_run(graph, lo, hi, semantics, alpha, iters).relaxations


# ---- obligations --------------------------------------------------------------------------------

def _q(v) -> Fraction:
    return Fraction(float(v))


def _qs(v) -> str:
    return str(_q(v))


def pwl_value(x: T.Term, s: Fraction, op: str = "relu") -> T.Term:
    """``relu`` (s = 0) / ``leaky_relu`` in QF_LRA: ``ite(0 < x, x, s·x)``; ``step``:
    ``ite(0 < x, 1, 0)``."""
    if op == "step":
        return T.ite(T.r_lt(T.real(0), x), T.real(1), T.real(0))
    neg = T.real(0) if s == 0 else T.r_mul(T.real(s), x)
    return T.ite(T.r_lt(T.real(0), x), x, neg)


def _affine(coeffs: list[tuple[Fraction, T.Term]], const: Fraction) -> T.Term:
    ts = [T.r_mul(T.real(c), v) for c, v in coeffs if c != 0]
    if const != 0 or not ts:
        ts.append(T.real(const))
    return ts[0] if len(ts) == 1 else T.r_add(*ts)


def line_violation(l, u, s, slope, intercept, side: str, op: str = "relu") -> T.Term:
    """``x ∈ [l, u] ∧ r = f(x) ∧ line on the wrong side of r`` (all exact rationals)."""
    x, r = T.var("x", T.REAL), T.var("r", T.REAL)
    line = _affine([(_q(slope), x)], _q(intercept))
    wrong = T.r_lt(r, line) if side == "lower" else T.r_lt(line, r)
    return T.and_(T.r_le(T.real(_q(l)), x), T.r_le(x, T.real(_q(u))), T.eq(r, pwl_value(x, _q(s), op)), wrong)


def plane_violation(a_box, b_box, plane: Plane, side: str) -> T.Term:
    """The edge ``a = la`` of the McCormick lemma (see the module docstring): ``a = la ∧ b ∈ [lb,
    ub] ∧ r = la·b ∧ plane on the wrong side of r``."""
    a, b, r = T.var("a", T.REAL), T.var("b", T.REAL), T.var("r", T.REAL)
    la = _q(a_box[0])
    p = _affine([(_q(plane.ca), a), (_q(plane.cb), b)], _q(plane.c0))
    wrong = T.r_lt(r, p) if side == "lower" else T.r_lt(p, r)
    return T.and_(T.eq(a, T.real(la)), T.r_le(T.real(_q(b_box[0])), b), T.r_le(b, T.real(_q(b_box[1]))),
                  T.eq(r, T.r_mul(T.real(la), b)), wrong)


def _fmt(v: float) -> str:
    return repr(float(v))


def relu_obligation(rel: ReluRelax, side: str, oid: str, model: str = "model") -> Obligation:
    ln = rel.lower if side == "lower" else rel.upper
    f = {"relu": "relu(x)", "step": "step(x)"}.get(rel.op, f"leaky_relu(x) (slope {_fmt(rel.negative_slope)} below 0)")
    rel_txt = "<=" if side == "lower" else ">="
    statement = (f"{rel.op} {side} line {_fmt(ln.slope)}*x + {_fmt(ln.intercept)} {rel_txt} {f} for every "
                 f"real x in [{_fmt(rel.l)}, {_fmt(rel.u)}] (element {list(rel.index)}, {rel.phase})")
    replay = {"step": "relaxation", "op": rel.op, "side": side, "l": _qs(rel.l), "u": _qs(rel.u),
              "negative_slope": _qs(rel.negative_slope), "slope": _qs(ln.slope), "intercept": _qs(ln.intercept)}
    prov = {"model": model, "node": rel.node, "op": rel.op, "element": list(rel.index), "side": side,
            "phase": rel.phase, "l": float(rel.l), "u": float(rel.u)}
    return Obligation(oid, "relaxation", rel.op, "QF_LRA",
                      line_violation(rel.l, rel.u, rel.negative_slope, ln.slope, ln.intercept, side, rel.op),
                      statement, prov, replay)


def mccormick_obligation(rel: McCormick, side: str, oid: str, model: str = "model") -> Obligation:
    p = rel.lower if side == "lower" else rel.upper
    rel_txt = "<=" if side == "lower" else ">="
    statement = (f"McCormick {side} plane {_fmt(p.ca)}*a + {_fmt(p.cb)}*b + {_fmt(p.c0)} {rel_txt} a*b for "
                 f"every real a in [{_fmt(rel.a[0])}, {_fmt(rel.a[1])}], b in [{_fmt(rel.b[0])}, "
                 f"{_fmt(rel.b[1])}] (stated on the edge a = {_fmt(rel.a[0])}, where it is tight; "
                 f"element {list(rel.index)}, {rel.phase})")
    replay = {"step": "relaxation", "op": "mul", "side": side, "a": [_qs(v) for v in rel.a],
              "b": [_qs(v) for v in rel.b], "plane": [_qs(p.ca), _qs(p.cb), _qs(p.c0)]}
    prov = {"model": model, "node": rel.node, "op": "mul", "element": list(rel.index), "side": side,
            "phase": rel.phase}
    return Obligation(oid, "relaxation", "mul", "QF_LRA", plane_violation(rel.a, rel.b, p, side),
                      statement, prov, replay)


def _obligation_of(rel):
    from .smooth_relax import SmoothRelax, smooth_obligation
    if isinstance(rel, McCormick):
        return mccormick_obligation
    return smooth_obligation if isinstance(rel, SmoothRelax) else relu_obligation


def _coeffs(rel, side: str) -> tuple[float, ...]:
    if isinstance(rel, McCormick):
        p = rel.lower if side == "lower" else rel.upper
        return (p.ca, p.cb, p.c0)
    ln = rel.lower if side == "lower" else rel.upper
    return tuple(ln) if isinstance(ln, tuple) else (ln.slope, ln.intercept)


def obligations_for(rels, model: str = "model") -> Iterator[Obligation | Gap]:
    """Two obligations (lower, upper) per relaxation record, identical formulas only once (the
    first element that needs it names it). A side with a non-finite coefficient (``relu_relaxation``
    gives a NaN chord when ``u − l`` and ``u − s·l`` overflow float64, an infinite intercept when an
    outward rounding passes the float64 maximum — reachable in real semantics only) is no line: it
    yields one :class:`Gap` per node; the backward pass's bound is then NaN or infinite, which its
    callers read as no bound."""
    seen: set[T.Term] = set()
    gaps: set[tuple[str, str]] = set()
    count: dict[str, int] = {}
    for rel in rels:
        for side in ("lower", "upper"):
            if not all(np.isfinite(c) for c in _coeffs(rel, side)):
                if (rel.node, rel.phase) not in gaps:
                    gaps.add((rel.node, rel.phase))
                    yield Gap(rel.node, rel.op, f"element {list(rel.index)} ({rel.phase}): the {side} "
                                                f"{'plane' if isinstance(rel, McCormick) else 'line'} has a "
                                                f"non-finite coefficient {_coeffs(rel, side)}: not a linear "
                                                "bound (the backward pass's result is then not finite)")
                continue
            k = count.get(rel.node, 0)
            oid = f"{model}/{rel.node}/relaxation/{k}"
            ob = _obligation_of(rel)(rel, side, oid, model)
            if ob.violation in seen:
                continue
            seen.add(ob.violation)
            count[rel.node] = k + 1
            yield ob


def relaxation_obligations(graph: Graph, lo, hi, model: str = "model", alpha: bool = False,
                           semantics: str = "float32", iters: int = 20) -> Iterator[Obligation | Gap]:
    """The relaxation obligations of CROWN (and with ``alpha`` of alpha-CROWN) on ``graph`` over
    the box ``[lo, hi]`` (reshaped to the input's shape): QF_LRA, unsat = the line holds; a
    :class:`Gap` for a line with a non-finite coefficient (see :func:`obligations_for`)."""
    if len(graph.inputs) == 1:
        shape = graph.inputs[0].shape
        lo = np.asarray(lo, np.float32 if semantics == "float32" else np.float64).reshape(shape)
        hi = np.asarray(hi, lo.dtype).reshape(shape)
    yield from obligations_for(crown_relaxations(graph, lo, hi, semantics, alpha, iters), model)


# ---- replay -------------------------------------------------------------------------------------

def _pwl(x: Fraction, s: Fraction, op: str = "relu") -> Fraction:
    if op == "step":
        return Fraction(1 if x > 0 else 0)
    return x if x > 0 else s * x


def replay_relaxation(data: dict, model: dict) -> tuple[bool, str]:
    """Exact-rational check of a model: the point is in the interval (box) and the line (plane) is
    strictly on the wrong side of the function there."""
    if data["op"] in SMOOTH:
        from .smooth_relax import replay_smooth
        return replay_smooth(data)
    try:
        if data["op"] == "mul":
            (la, ua), (lb, ub) = ([Fraction(v) for v in data[k]] for k in ("a", "b"))
            ca, cb, c0 = (Fraction(v) for v in data["plane"])
            if "a" not in model or "b" not in model:
                return False, "the model has no value for a or b"
            a, b = Fraction(model["a"]), Fraction(model["b"])
            if not (la <= a <= ua and lb <= b <= ub):
                return False, f"(a, b) = ({a}, {b}) is outside [{la}, {ua}] x [{lb}, {ub}]"
            y, p = a * b, ca * a + cb * b + c0
            what = f"a = {a}, b = {b}: plane {p}, a*b = {y}"
        else:
            l, u, s = (Fraction(data[k]) for k in ("l", "u", "negative_slope"))
            slope, icpt = Fraction(data["slope"]), Fraction(data["intercept"])
            if "x" not in model:
                return False, "the model has no value for x"
            x = Fraction(model["x"])
            if not l <= x <= u:
                return False, f"x = {x} is outside [{l}, {u}]"
            y, p = _pwl(x, s, data["op"]), slope * x + icpt
            what = f"x = {x}: line {p}, {data['op']}(x) = {y}"
    except (KeyError, ValueError, TypeError, ZeroDivisionError) as exc:
        return False, f"malformed replay data or model: {exc!r}"
    bad = p > y if data["side"] == "lower" else p < y
    if not bad:
        return False, f"the {data['side']} bound holds at {what}"
    return True, f"the {data['side']} bound fails at {what}"
