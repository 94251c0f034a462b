"""Relaxation obligations for tanh and sigmoid lines: an enclosure argument, stated in QF_LRA.

The lemma for a line ``a·x + b`` of ``f`` (tanh or sigmoid) over the input interval ``[l, u]``:

    lower:  a·x + b <= f(x)   for every real x in [l, u]
    upper:  f(x) <= a·x + b   for every real x in [l, u]

SMT-LIB cannot state f, so the lemma is reduced to finitely many linear facts about values of f
and f' at chosen points, and those values are enclosed rigorously. With ``g(x) = f(x) − a·x``
(the lemma is ``b <= min g`` or ``b >= max g``), and f convex on ``x <= 0`` and concave on
``x >= 0`` (so is g: ``a·x`` is linear):

* on a part of ``[l, u]`` where g is concave (x >= 0) its minimum is at an end of the part; where
  g is convex (x <= 0) its maximum is at an end;
* where g is convex every tangent lies below it, ``g(x) >= g(c) + g'(c)·(x − c)`` for c in the part,
  and the right side is linear in x, so its minimum over the part is at an end — that bounds
  ``min g`` from below; where g is concave the tangent lies above and bounds ``max g``.

So ``b <= min g`` follows from ``b <= f(p) − a·p`` at the concave part's ends p and
``b <= f(c) − a·c + (f'(c) − a)·(p − c)`` at the convex part's ends (the upper side symmetrically).
The formula's variables are ``f(p)``, ``f(c)`` and ``f'(c)`` as reals, each constrained to an
**enclosure** computed here by MPFR (gmpy2) at 128 bits with directed rounding: MPFR's tanh and exp
are correctly rounded in the requested direction, so ``RoundDown``/``RoundUp`` results bracket the
exact value; sigmoid is ``1/(1 + exp(−x))`` with each step rounded outward; ``f'`` comes from f's
enclosure exactly (``tanh' = 1 − tanh²``, ``sigmoid' = s·(1 − s)``, monotone pieces handled as in
:mod:`nnlemma.bounds.smooth`). The enclosures are the obligation's evidence (recorded in its
replay data and as the formula's hypotheses); the formula asserts that some values inside them
break one of the linear facts, so ``unsat`` proves the lemma. This check shares nothing with how
CROWN computed the intercept (float64 library values widened by an assumed accuracy) but the
convexity argument and the choice of tangent point (any c in the part is valid).

A ``sat`` model only says the argument failed with these enclosures. It is reported as
``refuted`` only when the lemma genuinely fails at a point — an end p or the tangent point c whose
enclosure of f lies strictly on the wrong side of the line (exact rationals); otherwise the
obligation stays ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import gmpy2
import numpy as np

from encoders import terms as T
from nnlemma.bounds.smooth import _critical, smooth_relaxation

from .model import Obligation

PREC = 128


@dataclass(frozen=True)
class SmoothRelax:
    """One element's tanh/sigmoid lines as the backward pass used them (float64 coefficients)."""
    node: str
    op: str
    index: tuple[int, ...]
    l: float
    u: float
    lower: tuple[float, float]      # (slope, intercept)
    upper: tuple[float, float]
    phase: str = "crown"


def collect_smooth(ctx, e, snap, phase: str, done: set[int]) -> list[SmoothRelax]:
    """The cached tanh/sigmoid lines of node e, recomputed from the recorded interval to check that
    :mod:`obligations.relaxation` still mirrors CROWN (as its relu collector does)."""
    from .relaxation import _interval64, _node_name, _same
    z = e.out.id
    if z in done or not ctx.relax_cache.get(z):
        return []
    done.add(z)
    cached = ctx.relax_cache[z]
    l, u = _interval64(ctx, snap, e.inputs[0])
    if not all(_same(p, q) for p, q in zip(smooth_relaxation(e.op, l, u), cached)):
        raise RuntimeError(f"relaxation of {_node_name(e)} was not computed from the recorded interval: "
                           "obligations.relaxation no longer mirrors nnlemma.bounds.crown")
    a_lo, b_lo, a_hi, b_hi = (np.broadcast_to(np.asarray(v, np.float64), l.shape) for v in cached)
    return [SmoothRelax(_node_name(e), e.op, tuple(int(i) for i in idx), float(l[idx]), float(u[idx]),
                        (float(a_lo[idx]), float(b_lo[idx])), (float(a_hi[idx]), float(b_hi[idx])), phase)
            for idx in np.ndindex(l.shape)]


def _frac(v: gmpy2.mpfr) -> Fraction:
    """The exact value of an MPFR number (no re-rounding: ``gmpy2.mpfr(v)`` would round to the
    default context's 53 bits)."""
    return Fraction(*v.as_integer_ratio())


def _sigmoid(x, lower: bool, prec: int) -> gmpy2.mpfr:
    """1/(1 + exp(−x)) rounded down (``lower``) or up: exp rounded the other way first."""
    inner = gmpy2.RoundUp if lower else gmpy2.RoundDown
    outer = gmpy2.RoundDown if lower else gmpy2.RoundUp
    with gmpy2.context(precision=prec, round=inner):
        d = 1 + gmpy2.exp(-gmpy2.mpfr(x))
    with gmpy2.context(precision=prec, round=outer):
        return 1 / d


def enclose_f(op: str, x: float, prec: int = PREC) -> tuple[Fraction, Fraction]:
    """Exact rationals ``lo <= f(x) <= hi`` (f = tanh or sigmoid at the float64 x), MPFR at
    ``prec`` bits (>= 53, so x itself is exact)."""
    if op == "tanh":
        with gmpy2.context(precision=prec, round=gmpy2.RoundDown):
            lo = gmpy2.tanh(gmpy2.mpfr(x))
        with gmpy2.context(precision=prec, round=gmpy2.RoundUp):
            hi = gmpy2.tanh(gmpy2.mpfr(x))
    else:
        lo, hi = _sigmoid(x, True, prec), _sigmoid(x, False, prec)
    return _frac(lo), _frac(hi)


def enclose_df(op: str, f_lo: Fraction, f_hi: Fraction) -> tuple[Fraction, Fraction]:
    """Enclosure of f' from f's enclosure, exactly: ``1 − t²`` over t in [f_lo, f_hi] (tanh), or
    ``s·(1 − s)`` over s in [f_lo, f_hi], which peaks at s = 1/2 (sigmoid)."""
    if op == "tanh":
        sq = [f_lo * f_lo, f_hi * f_hi]
        lo_sq = Fraction(0) if f_lo <= 0 <= f_hi else min(sq)
        return 1 - max(sq), 1 - lo_sq
    ends = [f_lo * (1 - f_lo), f_hi * (1 - f_hi)]
    top = Fraction(1, 4) if f_lo <= Fraction(1, 2) <= f_hi else max(ends)
    return min(ends), top


def _parts(l: float, u: float) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """(convex part x <= 0, concave part x >= 0) of [l, u]; a point interval at or above 0 counts as
    concave (either argument covers a single point)."""
    vex = (l, min(u, 0.0)) if l < 0 else None
    cave = (max(l, 0.0), u) if (u > 0 or vex is None) else None
    return vex, cave


def facts(op: str, l: float, u: float, slope: float, side: str, prec: int = PREC) -> list[dict]:
    """The argument's linear facts for one side: each ``{"kind": "end", "p"}`` (g at an end p) or
    ``{"kind": "tangent", "c", "p"}`` (the tangent at c, evaluated at an end p), with the
    enclosures they use. All points are float64 values, stored as exact rationals."""
    vex, cave = _parts(l, u)
    ends_part = cave if side == "lower" else vex      # extreme of g at the part's ends
    tangent_part = vex if side == "lower" else cave   # bounded through a tangent
    out = []
    if ends_part is not None:
        for p in sorted(set(ends_part)):
            out.append({"kind": "end", "p": p, "f": enclose_f(op, p, prec)})
    if tangent_part is not None:
        lo, hi = tangent_part
        xs = float(_critical(op, np.array(slope, np.float64)))
        c = float(np.clip(-xs if side == "lower" else xs, lo, hi))
        fc = enclose_f(op, c, prec)
        dfc = enclose_df(op, *fc)
        for p in sorted({lo, hi}):
            out.append({"kind": "tangent", "c": c, "p": p, "f": fc, "df": dfc})
    return out


def violation(facts_: list[dict], slope: float, intercept: float, side: str) -> T.Term:
    """Values inside the enclosures that break one fact: ``∃ t_i ∈ F_i, d_j ∈ D_j: ∨ (fact i
    fails)``. One real per distinct point (``f_k`` for f, ``df_k`` for f')."""
    a, b = Fraction(slope), Fraction(intercept)
    names: dict[float, int] = {}
    hyps, wrong = [], []

    def var(point: float, what: str, enc) -> T.Term:
        k = names.setdefault(point, len(names))
        v = T.var(f"{what}{k}", T.REAL)
        h = T.and_(T.r_le(T.real(enc[0]), v), T.r_le(v, T.real(enc[1])))
        if h not in hyps:
            hyps.append(h)
        return v

    for fa in facts_:
        p = Fraction(fa["p"])
        if fa["kind"] == "end":
            g = T.r_add(var(fa["p"], "f", fa["f"]), T.real(-a * p))
        else:
            c = Fraction(fa["c"])
            t, d = var(fa["c"], "f", fa["f"]), var(fa["c"], "df", fa["df"])
            g = T.r_add(t, T.real(-a * c - a * (p - c)), T.r_mul(T.real(p - c), d)) if p != c else \
                T.r_add(t, T.real(-a * c))
        wrong.append(T.r_lt(g, T.real(b)) if side == "lower" else T.r_lt(T.real(b), g))
    return T.and_(*hyps, T.or_(*wrong))


def smooth_obligation(rel: SmoothRelax, side: str, oid: str, model: str = "model", prec: int = PREC) -> Obligation:
    from .relaxation import _fmt
    slope, intercept = rel.lower if side == "lower" else rel.upper
    fs = facts(rel.op, rel.l, rel.u, slope, side, prec)
    rel_txt = "<=" if side == "lower" else ">="
    points = sorted({_fmt(f["p"]) for f in fs} | {_fmt(f["c"]) for f in fs if "c" in f}, key=float)
    statement = (f"{rel.op} {side} line {_fmt(slope)}*x + {_fmt(intercept)} {rel_txt} {rel.op}(x) for every real x "
                 f"in [{_fmt(rel.l)}, {_fmt(rel.u)}] (element {list(rel.index)}, {rel.phase}), reduced by "
                 f"convexity to linear facts about MPFR enclosures of {rel.op} (and its derivative) at "
                 f"{', '.join(points)}")
    q = lambda v: str(Fraction(v))  # noqa: E731
    replay = {"step": "relaxation", "op": rel.op, "side": side, "l": q(rel.l), "u": q(rel.u),
              "slope": q(slope), "intercept": q(intercept),
              "facts": [{k: (q(v) if k in ("p", "c") else [str(e) for e in v]) if k != "kind" else v
                         for k, v in f.items()} for f in fs], "precision": prec}
    prov = {"model": model, "node": rel.node, "op": rel.op, "element": list(rel.index), "side": side,
            "phase": rel.phase, "l": float(rel.l), "u": float(rel.u)}
    return Obligation(oid, "relaxation", rel.op, "QF_LRA", violation(fs, slope, intercept, side), statement,
                      prov, replay)


def replay_smooth(data: dict) -> tuple[bool | None, str]:
    """Whether the line genuinely fails at one of the argument's points (an end or a tangent
    point), judged with the recorded enclosures of f in exact rationals: ``(True, where)`` if so,
    ``(None, why)`` when the enclosure argument is merely inconclusive (status ``unknown``)."""
    a, b = Fraction(data["slope"]), Fraction(data["intercept"])
    lower = data["side"] == "lower"
    for f in data["facts"]:
        x = Fraction(f["c"] if f["kind"] == "tangent" else f["p"])
        f_lo, f_hi = (Fraction(e) for e in f["f"])
        line = a * x + b
        if (lower and f_hi < line) or (not lower and f_lo > line):
            return True, (f"the {data['side']} line is {line} at x = {x}, where {data['op']}(x) lies in "
                          f"[{f_lo}, {f_hi}] (MPFR enclosure)")
    return None, ("the enclosure argument is inconclusive (no point of it violates the line): "
                  "neither proved nor refuted")
