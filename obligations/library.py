"""Library lemmas: the rounding model of binary32 (RNE) the other obligations may rest on.

Four families of universal lemmas over all binary32 operands, each proved once (benchmarks/
library_lemmas.py stores the proof times):

* **relative error** of ``add``, ``sub``, ``mul``, ``div``: for finite operands with a finite
  result ``x = fl(a op b)``, ``|x − (a op b)| ≤ 2^-24·|a op b| + 2^-150`` (``b ≠ 0`` for div);
* **relative error of sqrt**: for finite ``a ≥ 0``, ``|fl(√a) − √a| ≤ 2^-24·√a`` (no absolute
  term is needed: the square root of a nonzero float32 is at least ``2^-74.5``, far above the
  subnormal range);
* **monotonicity** of the rounded ``add`` and ``sub`` in each argument, of ``mul`` in its first
  argument when the second has a known sign (and symmetrically), and of ``div`` in the dividend
  for a divisor of known sign — always for operands and results that are not NaN
  (``fl(−inf + inf)``, ``0·inf``, ``inf/inf`` are NaN and excluded).

Every lemma becomes obligations of kind ``library``; the formula stored is the lemma's
*negation* (``unsat`` = proved). A lemma that is too hard as one query is split into **cases**
(conditions on the operands); each case is one obligation ``library/<op>/<lemma>/<case>``, and a
``library/<op>/<lemma>/coverage`` obligation proves the case conditions exhaustive (its negation
is "the precondition holds and no case condition does").

How the exact value is stated (no Real arithmetic)
--------------------------------------------------
The exact real value of ``a op b`` is never formed with ``fp.to_real``: Z3 cannot decide the
mixed FP/Real formulas in reasonable time (the unsplit add lemma with ``fp.to_real`` timed out at
60 s) and Bitwuzla has no Real arithmetic. Instead every exact quantity is computed by an RNE
operation in a **wider FloatingPoint sort in which it is representable**, so the rounding is the
identity and the FP value *is* the real value. Each such claim rests on a bit count written in the
docstring of the lemma (a value that is an integer multiple of ``2^t`` with magnitude below
``2^(t+p)`` is representable with ``p`` significand bits, provided its exponent is in range), and
is *also machine-checked*: :func:`exactness_checks` gives, for every RNE operation claimed exact,
an SMT-LIB script asserting that under the case's conditions rounding up (``RTP``) and rounding
down (``RTN``) give different results — ``unsat`` means the operation is exact there. (These are
SMT-LIB text, not :class:`Obligation` terms, because the term language only builds RNE
operations.)

Sorts used: ``Float64`` (11, 53) and ``F128`` = (11, 80). Widening a float32 to either is exact;
scaling by a power of two is exact whenever the result stays in the normal range (the exponent
range of both covers ``2^-1022 .. 2^1023``, and every scaled value below is within
``2^-330 .. 2^300``).

Where a case proves a *stronger* statement than the lemma (e.g. no ``2^-150`` term in the normal
range, or ``x = a`` plus an inequality in the "far" cases of add), the docstring of the lemma
gives the short derivation of the lemma from it. Each proved case is therefore: ``precondition ∧
case condition ⇒ case goal`` and ``case goal ⇒ lemma`` (by the stated argument), and the coverage
obligation gives ``precondition ⇒ some case condition``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterable

from encoders import terms as T
from encoders.smtlib import term_text
from encoders.terms import F32, F64, Sort, Term

from .model import Obligation

F128 = Sort("FP", 15, 113)
U_EXP = 24       # u = 2^-24, the unit roundoff of binary32 (RNE)
ETA_EXP = 150    # eta = 2^-150, half the smallest subnormal
FAR_EXP = 26     # add/sub: "close" means the magnitudes are within a factor 2^26 of each other


# ---- exact constants ----------------------------------------------------------------------------

def exact_const(value, sort: Sort) -> Term:
    """The FP constant of ``sort`` equal to ``value`` exactly (normal or zero); raises otherwise."""
    v = Fraction(value)
    if v == 0:
        return T.fp_bits(0, sort)
    sign = 1 if v < 0 else 0
    m = abs(v)
    e = m.numerator.bit_length() - m.denominator.bit_length()
    if Fraction(2) ** e > m:
        e -= 1
    bias = (1 << (sort.eb - 1)) - 1
    if not 1 - bias <= e <= bias:
        raise ValueError(f"{value} is outside the normal range of {sort.smtlib()}")
    frac = (m / Fraction(2) ** e - 1) * (1 << (sort.sb - 1))
    if frac.denominator != 1:
        raise ValueError(f"{value} is not representable in {sort.smtlib()}")
    return T.fp_bits(sign << (sort.width - 1) | (e + bias) << (sort.sb - 1) | int(frac), sort)


def pow2(e: int, sort: Sort) -> Term:
    return exact_const(Fraction(2) ** e, sort)


def widen(x: Term, sort: Sort) -> Term:
    """``x`` in a wider sort (exact)."""
    return T.fp_to_fp(x, sort)


def scaled(x: Term, e: int) -> Term:
    """``x · 2^e`` in ``x``'s sort (exact while the result stays normal or zero)."""
    return T.fp_mul(x, pow2(e, x.sort))


def not_nan(x: Term) -> Term:
    return T.not_(T.is_nan(x))


def within(lo: Term, x: Term, hi: Term) -> Term:
    return T.and_(T.fp_leq(lo, x), T.fp_leq(x, hi))


# ---- lemma structure ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One sub-query: ``pre ∧ cond ⇒ goal``. ``exact`` lists the RNE operations (terms) whose
    exactness under ``pre ∧ cond`` the formulation relies on (checked by :func:`exactness_checks`)."""
    name: str
    cond: Term
    goal: Term
    exact: tuple[Term, ...] = ()


@dataclass(frozen=True)
class Lemma:
    op: str
    name: str
    statement: str
    pre: Term
    cases: tuple[Case, ...]
    replay: dict = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"library/{self.op}/{self.name}"

    def obligations(self) -> list[Obligation]:
        out = []
        for c in self.cases:
            out.append(Obligation(
                id=f"{self.prefix}/{c.name}", kind="library", op=self.op, logic="QF_FP",
                violation=T.and_(self.pre, c.cond, T.not_(c.goal)),
                statement=f"{self.statement} [case {c.name}: {term_text(c.cond)}]",
                provenance={"lemma": self.name, "case": c.name, "op": self.op},
                replay=dict(self.replay)))
        if len(self.cases) > 1 or self.cases[0].cond != T.TRUE:
            out.append(Obligation(
                id=f"{self.prefix}/coverage", kind="library", op=self.op, logic="QF_FP",
                violation=T.and_(self.pre, T.not_(T.or_(*(c.cond for c in self.cases)))),
                statement=f"the cases of {self.prefix} cover its precondition",
                provenance={"lemma": self.name, "case": "coverage", "op": self.op},
                replay={}))
        return out


def refine(cases: Iterable[Case], parts: list[tuple[str, Term]]) -> list[Case]:
    """Split every case by a partition ``parts`` (whose union must cover the precondition; the
    coverage obligation checks it)."""
    return [Case(f"{c.name}.{n}" if c.name else n, T.and_(c.cond, p), c.goal, c.exact)
            for c in cases for n, p in parts]


def sign_parts(x: Term, name: str) -> list[tuple[str, Term]]:
    """``x`` positive (incl. +0) / negative (incl. −0); together every non-NaN value."""
    return [(f"{name}+", T.not_(T.is_negative(x))), (f"{name}-", T.is_negative(x))]


def magnitude_parts(x: Term, name: str, cuts: list[int]) -> list[tuple[str, Term]]:
    """``|x| < 2^c0``, ``2^c0 ≤ |x| < 2^c1``, …, ``|x| ≥ 2^c_last`` (every non-NaN value)."""
    ax = T.fp_abs(x)
    bounds = [pow2(c, x.sort) for c in cuts]
    parts = [(f"{name}<2^{cuts[0]}", T.fp_lt(ax, bounds[0]))]
    for (c0, b0), (c1, b1) in zip(zip(cuts, bounds), zip(cuts[1:], bounds[1:])):
        parts.append((f"{name}in[2^{c0},2^{c1})", T.and_(T.fp_leq(b0, ax), T.fp_lt(ax, b1))))
    parts.append((f"{name}>=2^{cuts[-1]}", T.fp_leq(bounds[-1], ax)))
    return parts


A = T.var("a", F32)
B = T.var("b", F32)
_BINOP = {"add": T.fp_add, "sub": T.fp_sub, "mul": T.fp_mul, "div": T.fp_div}


# ---- relative error: add, sub --------------------------------------------------------------------

def relative_error_addsub(op: str, u_exp: int = U_EXP, far_exp: int = FAR_EXP,
                          splits: int = 0) -> Lemma:
    """``|fl(a ± b) − (a ± b)| ≤ 2^-24·|a ± b| + 2^-150`` for finite a, b and finite result.

    Proved in the stronger form without the ``2^-150`` term (sums are exact in the subnormal
    range). Write ``a = M_a·2^(q_a)``, ``b = M_b·2^(q_b)`` with integers ``|M| < 2^24`` and
    quanta ``q ≥ −149``, ``x = fl(a ± b)``, ``K = 2^26``. Three cases (``|a|, |b|`` compared in
    Float64, where ``K·|b|`` is exact):

    * **close** (``|a| ≤ K|b|`` and ``|b| ≤ K|a|``): then ``d = |q_a − q_b| ≤ 26`` (if, say,
      ``q_a > q_b`` then ``a`` is normal, ``|a| ≥ 2^(q_a+23)``, and ``2^(q_b+24) > |b| ≥ |a|/K``).
      ``S = a ± b`` is a multiple of ``2^qmin`` below ``2^(qmin+25+d)``, and ``S ± 2^-24|S|`` a
      multiple of ``2^(qmin−24)`` below ``2^(qmin+26+d)``: at most ``50+d ≤ 76`` bits, so ``S``,
      ``T = 2^-24|S|`` and ``S ± T`` are exact in F128. Goal: ``S − T ≤ x ≤ S + T`` (i.e.
      ``|x − S| ≤ 2^-24|S|``), ``x`` widened exactly.
    * **far-a** (``|a| > K|b|``): goal ``x = a`` (fp.eq) and ``|b|·(2^24+1) ≤ |a|`` (Float64:
      24 × 25 significand bits, exact). Then ``|x − (a ± b)| = |b|`` and
      ``2^-24|a ± b| ≥ 2^-24(|a| − |b|) ≥ |b|``.
    * **far-b** (``|b| > K|a|``): symmetric, goal ``x = ±b``.

    The three conditions cover every pair of finite values (no comparison involves NaN).
    ``splits`` ≥ 1 further splits the close case by the signs of a and b, ≥ 2 also by ``|a|``
    ranges.
    """
    fl = _BINOP[op]
    x = fl(A, B)
    pre = T.and_(T.is_finite(A), T.is_finite(B), T.is_finite(x))
    a64, b64 = widen(A, F64), widen(B, F64)
    aa, ab = T.fp_abs(a64), T.fp_abs(b64)
    close = T.and_(T.fp_leq(aa, scaled(ab, far_exp)), T.fp_leq(ab, scaled(aa, far_exp)))
    # close: exact S = a ± b in F128
    aw, bw = widen(A, F128), widen(B, F128)
    s = fl(aw, bw)
    t = scaled(T.fp_abs(s), -u_exp)
    lo, hi = T.fp_sub(s, t), T.fp_add(s, t)
    close_goal = within(lo, widen(x, F128), hi)
    c = exact_const(2 ** u_exp + 1, F64)
    far_a = Case("far-a", T.fp_lt(scaled(ab, far_exp), aa),
                 T.and_(T.fp_eq(x, A), T.fp_leq(T.fp_mul(ab, c), aa)), (T.fp_mul(ab, c),))
    other = B if op == "add" else T.fp_neg(B)
    far_b = Case("far-b", T.fp_lt(scaled(aa, far_exp), ab),
                 T.and_(T.fp_eq(x, other), T.fp_leq(T.fp_mul(aa, c), ab)), (T.fp_mul(aa, c),))
    closes = [Case("close", close, close_goal, (s, lo, hi))]
    if splits >= 1:
        closes = refine(refine(closes, sign_parts(A, "a")), sign_parts(B, "b"))
    if splits >= 2:
        closes = refine(closes, magnitude_parts(A, "|a|", [-100, -40, 0, 40, 100]))
    sym = "+" if op == "add" else "−"
    return Lemma(op, "relative-error",
                 f"finite a, b, finite x = fl(a {sym} b) ⇒ |x − (a {sym} b)| ≤ 2^-{u_exp}·|a {sym} b|"
                 f" + 2^-{ETA_EXP}", pre, tuple(closes) + (far_a, far_b),
                 replay={"lemma": "relative-error", "op": op, "u_exp": u_exp, "eta_exp": ETA_EXP})


# ---- relative error: mul -------------------------------------------------------------------------

def relative_error_mul(u_exp: int = U_EXP, splits: int = 0) -> Lemma:
    """``|fl(a·b) − a·b| ≤ 2^-24·|a·b| + 2^-150`` for finite a, b with finite ``x = fl(a·b)``.

    The exact product ``P = a·b`` is computed in Float64: it is ``M_a·M_b·2^(q_a+q_b)`` with
    ``M_a·M_b < 2^48 ≤ 2^53`` and ``2^-298 ≤ |P| < 2^256`` (or 0), inside Float64's normal range.
    Cases on ``|P|``:

    * **normal** (``|P| ≥ 2^-126``): stronger goal ``|x − P| ≤ 2^-24|P|`` (in the normal range
      the rounding error is at most half an ulp, ``≤ 2^-24|P|``). With ``E = ⌊log2|P|⌋``,
      ``P`` is a multiple of ``2^(E−47)`` and ``T = 2^-24|P|`` of ``2^(E−71)``; ``P ± T`` is below
      ``2^(E+2)``: 73 bits, exact in F128. Goal ``P − T ≤ x ≤ P + T``.
    * **tiny-zero** (``|P| ≤ 2^-150``): goal ``x = ±0``, so ``|x − P| = |P| ≤ 2^-150``.
    * **tiny** (``2^-150 < |P| < 2^-126``): stronger goal ``|x − P| ≤ 2^-150``. ``P`` is a
      multiple of ``2^(E−47) ≥ 2^-198`` and ``P ± 2^-150`` is below ``2^-125``: at most 73 bits,
      exact in F128.

    The three conditions on the (non-NaN) ``|P|`` cover everything.
    ``splits`` ≥ 1 splits the normal case by the signs of a and b.
    """
    x = T.fp_mul(A, B)
    pre = T.and_(T.is_finite(A), T.is_finite(B), T.is_finite(x))
    p = T.fp_mul(widen(A, F64), widen(B, F64))
    ap = T.fp_abs(p)
    pw, xw = widen(p, F128), widen(x, F128)
    t = scaled(T.fp_abs(pw), -u_exp)
    lo, hi = T.fp_sub(pw, t), T.fp_add(pw, t)
    eta = pow2(-ETA_EXP, F128)
    tlo, thi = T.fp_sub(pw, eta), T.fp_add(pw, eta)
    normal = [Case("normal", T.fp_leq(pow2(-126, F64), ap), within(lo, xw, hi), (p, lo, hi))]
    if splits >= 1:
        normal = refine(refine(normal, sign_parts(A, "a")), sign_parts(B, "b"))
    cases = normal + [
        Case("tiny-zero", T.fp_leq(ap, pow2(-ETA_EXP, F64)), T.is_zero(x), (p,)),
        Case("tiny", T.and_(T.fp_lt(pow2(-ETA_EXP, F64), ap), T.fp_lt(ap, pow2(-126, F64))),
             within(tlo, xw, thi), (p, tlo, thi)),
    ]
    return Lemma("mul", "relative-error",
                 f"finite a, b, finite x = fl(a·b) ⇒ |x − a·b| ≤ 2^-{u_exp}·|a·b| + 2^-{ETA_EXP}",
                 pre, tuple(cases),
                 replay={"lemma": "relative-error", "op": "mul", "u_exp": u_exp, "eta_exp": ETA_EXP})


# ---- relative error: div -------------------------------------------------------------------------

def relative_error_div(u_exp: int = U_EXP, splits: int = 0) -> Lemma:
    """``|fl(a/b) − a/b| ≤ 2^-24·|a/b| + 2^-150`` for finite a, b, ``b ≠ 0``, finite ``q = fl(a/b)``.

    No quotient of reals is formed: multiplying by ``|b| > 0``, ``|q − a/b| ≤ r`` is
    ``|q·b − a| ≤ r·|b|``. ``Q = q·b`` is exact in Float64 (a product of two float32, see mul).
    Cases compare ``|a/b|`` with powers of two as ``|a|`` against ``2^k·|b|`` (exact scaling in
    Float64):

    * **normal** (``|a| ≥ 2^-126·|b|``): stronger goal ``|q − a/b| ≤ 2^-24|a/b|``, i.e.
      ``a − T ≤ Q ≤ a + T`` with ``T = 2^-24|a|``. ``a ± T`` is a multiple of ``2^(q_a−24)`` below
      ``2^(q_a+25)``: 49 bits, exact in Float64.
    * **tiny-zero** (``|a| ≤ 2^-150·|b|``): goal ``q = ±0``; then ``|q − a/b| = |a/b| ≤ 2^-150``.
    * **tiny** (``2^-150·|b| < |a| < 2^-126·|b|``): stronger goal ``|q − a/b| ≤ 2^-150``, i.e.
      ``a − N ≤ Q ≤ a + N`` with ``N = 2^-150·|b|``. Here ``|a| > 2^(q_b−150)``, so ``a`` is a
      multiple of ``2^(q_b−173)`` (24 significant bits), ``N`` a multiple of ``2^(q_b−150)``, and
      ``|a ± N| < 2^(q_b+24−126+1)``: at most 72 bits, exact in F128.

    ``splits`` ≥ 1 splits the normal case by the signs of a and b.
    """
    q = T.fp_div(A, B)
    pre = T.and_(T.is_finite(A), T.is_finite(B), T.not_(T.is_zero(B)), T.is_finite(q))
    a64, b64 = widen(A, F64), widen(B, F64)
    aa, ab = T.fp_abs(a64), T.fp_abs(b64)
    qb = T.fp_mul(widen(q, F64), b64)
    t = scaled(aa, -u_exp)
    lo, hi = T.fp_sub(a64, t), T.fp_add(a64, t)
    aw = widen(A, F128)
    n = scaled(T.fp_abs(widen(B, F128)), -ETA_EXP)
    tlo, thi = T.fp_sub(aw, n), T.fp_add(aw, n)
    normal = [Case("normal", T.fp_leq(scaled(ab, -126), aa), within(lo, qb, hi), (qb, lo, hi))]
    if splits >= 1:
        normal = refine(refine(normal, sign_parts(A, "a")), sign_parts(B, "b"))
    cases = normal + [
        Case("tiny-zero", T.fp_leq(aa, scaled(ab, -ETA_EXP)), T.is_zero(q)),
        Case("tiny", T.and_(T.fp_lt(scaled(ab, -ETA_EXP), aa), T.fp_lt(aa, scaled(ab, -126))),
             within(tlo, widen(qb, F128), thi), (qb, tlo, thi)),
    ]
    return Lemma("div", "relative-error",
                 f"finite a, b, b ≠ 0, finite q = fl(a/b) ⇒ |q − a/b| ≤ 2^-{u_exp}·|a/b| + "
                 f"2^-{ETA_EXP}", pre, tuple(cases),
                 replay={"lemma": "relative-error", "op": "div", "u_exp": u_exp, "eta_exp": ETA_EXP})


# ---- relative error: sqrt ------------------------------------------------------------------------

def relative_error_sqrt(u_exp: int = U_EXP, cuts: list[int] | None = None) -> Lemma:
    """``|fl(√a) − √a| ≤ 2^-24·√a`` for finite ``a ≥ 0`` (including −0).

    No square root of reals is formed. With ``s = fl(√a)``: for ``s ≥ 0`` (part of the goal),
    ``√a ≥ 0`` and ``1 ± u ≥ 0``, squaring is monotone on ``[0, ∞)``, so
    ``(1−u)√a ≤ s ≤ (1+u)√a  ⇔  (1−u)²·a ≤ s² ≤ (1+u)²·a``. Exactness: ``s²`` is a product of
    two float32, exact in Float64 (``2^-150 ≤ s² < 2^128``); ``(1 ± u)²·a = a ± 2^-23·a + 2^-48·a``
    is computed as ``(a ± 2^-23·a) + 2^-48·a`` in F128: each partial result is a multiple of
    ``2^(q_a−48)`` below ``2^(q_a+26)``, at most 74 bits, exact.

    ``cuts`` splits by ranges of ``a`` (``magnitude_parts``); the ranges cover every ``a``.
    """
    s = T.fp_sqrt(A)
    zero = T.fp_bits(0, F32)
    pre = T.and_(T.is_finite(A), T.fp_geq(A, zero))
    s64 = widen(s, F64)
    s2 = widen(T.fp_mul(s64, s64), F128)
    aw = widen(A, F128)
    a1 = scaled(aw, -(u_exp - 1))   # 2u·a
    a2 = scaled(aw, -2 * u_exp)     # u²·a
    lo1, hi1 = T.fp_sub(aw, a1), T.fp_add(aw, a1)
    lo, hi = T.fp_add(lo1, a2), T.fp_add(hi1, a2)
    goal = T.and_(T.fp_geq(s, zero), within(lo, s2, hi))
    cases = [Case("all" if not cuts else "", T.TRUE, goal, (T.fp_mul(s64, s64), lo1, hi1, lo, hi))]
    if cuts:
        cases = refine(cases, magnitude_parts(A, "a", cuts))
    return Lemma("sqrt", "relative-error",
                 f"finite a ≥ 0, s = fl(√a) ⇒ |s − √a| ≤ 2^-{u_exp}·√a", pre, tuple(cases),
                 replay={"lemma": "relative-error", "op": "sqrt", "u_exp": u_exp, "eta_exp": None})


# ---- monotonicity ---------------------------------------------------------------------------------

def monotone(op: str, arg: int, direction: str, sign: str | None = None, guard_nan: bool = True,
             cases: list[tuple[str, Term]] | None = None) -> Lemma:
    """``x1 ≤ x2 ⇒ fl(x1 op y) ≤ fl(x2 op y)`` (``direction='increasing'``, else ``≥``) in argument
    ``arg`` (0: first, 1: second), ``y`` the other argument, with ``fp.leq`` throughout (so both
    ``x_i`` are not NaN), ``y`` not NaN and neither result NaN (this excludes ``inf − inf``,
    ``0·inf``, ``0/0``, ``inf/inf``). ``sign`` restricts ``y``: ``'nonneg'`` (``y ≥ 0``, i.e.
    +0, −0 or positive), ``'nonpos'``, ``'pos'`` (``y > 0``), ``'neg'``. ``±0`` compare equal
    under ``fp.leq``, so results ``+0`` and ``−0`` are in order either way.

    ``guard_nan=False`` drops the NaN exclusions (a deliberately false lemma, for tests).
    ``cases`` optionally splits the query (the coverage obligation checks the partition).
    """
    fl = _BINOP[op]
    x1, x2, y = T.var("x1", F32), T.var("x2", F32), T.var("y", F32)
    r1, r2 = (fl(x1, y), fl(x2, y)) if arg == 0 else (fl(y, x1), fl(y, x2))
    zero = T.fp_bits(0, F32)
    sign_cond = {None: T.TRUE, "nonneg": T.fp_geq(y, zero), "nonpos": T.fp_leq(y, zero),
                 "pos": T.fp_gt(y, zero), "neg": T.fp_lt(y, zero)}[sign]
    guards = T.and_(not_nan(y), not_nan(r1), not_nan(r2)) if guard_nan else T.TRUE
    pre = T.and_(T.fp_leq(x1, x2), sign_cond, guards)
    goal = T.fp_leq(r1, r2) if direction == "increasing" else T.fp_geq(r1, r2)
    parts = cases or [("all", T.TRUE)]
    sym = {"add": "+", "sub": "−", "mul": "·", "div": "/"}[op]
    expr = (lambda v: f"fl({v} {sym} y)") if arg == 0 else (lambda v: f"fl(y {sym} {v})")
    rel = "≤" if direction == "increasing" else "≥"
    cond = {None: "", "nonneg": ", y ≥ 0", "nonpos": ", y ≤ 0", "pos": ", y > 0", "neg": ", y < 0"}
    guard_text = ", y and both results not NaN" if guard_nan else ""
    name = f"monotone-{'ab'[arg]}" + (f"-{sign}" if sign else "") + ("" if guard_nan else "-unguarded")
    return Lemma(op, name,
                 f"x1 ≤ x2{cond[sign]}{guard_text} ⇒ {expr('x1')} {rel} {expr('x2')}", pre,
                 tuple(Case(n, p, goal) for n, p in parts),
                 replay={"lemma": "monotone", "op": op, "arg": arg, "direction": direction,
                         "sign": sign, "guard_nan": guard_nan})


# ---- the library ----------------------------------------------------------------------------------

def lemmas() -> list[Lemma]:
    """The library, with the case splits used for the stored proofs."""
    out = [relative_error_addsub("add"), relative_error_addsub("sub"), relative_error_mul(),
           relative_error_div(), relative_error_sqrt()]
    out += [monotone("add", 0, "increasing"), monotone("add", 1, "increasing"),
            monotone("sub", 0, "increasing"), monotone("sub", 1, "decreasing"),
            monotone("mul", 0, "increasing", "nonneg"), monotone("mul", 0, "decreasing", "nonpos"),
            monotone("mul", 1, "increasing", "nonneg"), monotone("mul", 1, "decreasing", "nonpos"),
            monotone("div", 0, "increasing", "pos"), monotone("div", 0, "decreasing", "neg")]
    return out


def library_lemmas() -> list[Obligation]:
    """Every library obligation (cases and coverage), ids unique."""
    return [ob for lem in lemmas() for ob in lem.obligations()]


# ---- exactness checks (SMT-LIB text: RTP vs RTN) -------------------------------------------------

@dataclass(frozen=True)
class ExactnessCheck:
    id: str
    statement: str
    smt2: str


_ROUNDED2 = {"fp.add", "fp.sub", "fp.mul"}


def _exactness_script(check_id: str, hyp: Term, t: Term) -> str:
    if t.op not in _ROUNDED2:
        raise ValueError(f"no exactness check for {t.op}")
    x, y = t.args
    srt = t.sort.smtlib()
    lines = [f"; nnlemma exactness check {check_id}",
             f"; under the hypothesis, {t.op} of these operands is exact: RTP and RTN agree",
             "; unsat means exact", "(set-logic QF_FP)"]
    for v in sorted(T.free_vars(hyp, t), key=lambda v: v.payload):
        lines.append(f"(declare-fun {v.payload} () {v.sort.smtlib()})")
    for mode in ("RTP", "RTN"):
        lines.append(f"(define-fun {mode.lower()} () {srt} ({t.op} {mode} {term_text(x)} {term_text(y)}))")
    lines.append(f"(assert {term_text(hyp)})")
    lines.append("(assert (not (fp.eq rtp rtn)))")
    lines += ["(check-sat)", "(exit)"]
    return "\n".join(lines) + "\n"


def exactness_checks(lemma_list: list[Lemma] | None = None) -> list[ExactnessCheck]:
    """For every case and every RNE operation it claims exact: the RTP/RTN script."""
    out = []
    for lem in lemma_list if lemma_list is not None else lemmas():
        for c in lem.cases:
            for k, t in enumerate(c.exact):
                cid = f"{lem.prefix}/{c.name}/exact-{k}"
                out.append(ExactnessCheck(cid, f"{t.op} on {t.sort.smtlib()} is exact in case "
                                               f"{c.name} of {lem.prefix}",
                                          _exactness_script(cid, T.and_(lem.pre, c.cond), t)))
    return out


# ---- exact replay of a model (numpy float32 + fractions) ------------------------------------------

def _f32(bits: int):
    import numpy as np
    return np.array(bits, np.uint32).view(np.float32)[()]


def lemma_holds(replay: dict, model: dict[str, int]) -> bool | None:
    """Evaluate the *lemma* (not a case goal) at a model's point, with numpy float32 for the
    rounded operation and exact rationals for the bound. ``None`` if the point is outside the
    lemma's precondition, else whether the lemma holds there."""
    import numpy as np
    from nnlemma.kernels import KERNEL_RULES
    if not replay:
        return None
    op = replay["op"]
    with np.errstate(all="ignore"):
        if replay["lemma"] == "relative-error":
            a = _f32(model["a"])
            u = Fraction(1, 2 ** replay["u_exp"])
            if op == "sqrt":
                if not (np.isfinite(a) and a >= 0):
                    return None
                s = np.float32(KERNEL_RULES["sqrt"](np.asarray(a, np.float32)))
                fa, fs = Fraction(float(a)), Fraction(float(s))
                return bool(fs >= 0 and (1 - u) ** 2 * fa <= fs * fs <= (1 + u) ** 2 * fa)
            b = _f32(model["b"])
            x = np.float32(KERNEL_RULES[op](np.asarray(a, np.float32), np.asarray(b, np.float32)))
            if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(x)) or (op == "div" and b == 0):
                return None
            fa, fb = Fraction(float(a)), Fraction(float(b))
            v = {"add": fa + fb, "sub": fa - fb, "mul": fa * fb,
                 "div": fa / fb if fb else None}[op]
            eta = Fraction(1, 2 ** replay["eta_exp"])
            return bool(abs(Fraction(float(x)) - v) <= u * abs(v) + eta)
        if replay["lemma"] == "monotone":
            x1, x2, y = (_f32(model[k]) for k in ("x1", "x2", "y"))
            f = KERNEL_RULES[op]
            args = (lambda v: (v, y)) if replay["arg"] == 0 else (lambda v: (y, v))
            r1, r2 = (np.float32(f(*(np.asarray(t, np.float32) for t in args(v)))) for v in (x1, x2))
            sign = replay["sign"]
            ok_sign = {None: True, "nonneg": y >= 0, "nonpos": y <= 0, "pos": y > 0, "neg": y < 0}[sign]
            guards = not (np.isnan(y) or np.isnan(r1) or np.isnan(r2)) if replay["guard_nan"] else True
            if not (x1 <= x2 and ok_sign and guards):
                return None
            return bool(r1 <= r2) if replay["direction"] == "increasing" else bool(r1 >= r2)
    raise ValueError(f"no replay for {replay}")


# ---- proving --------------------------------------------------------------------------------------

def prove_library(solver_factory: Callable[[], object], timeout_s: float = 60.0,
                  progress: Callable[[dict], None] | None = None,
                  obligations: list[Obligation] | None = None,
                  checks: list[ExactnessCheck] | None = None) -> list[dict]:
    """Run every library obligation (and exactness check) with a fresh solver from
    ``solver_factory`` each. Rows: ``id``, ``kind`` (``case``/``coverage``/``exactness``),
    ``status`` (``proved`` = unsat; ``refuted`` = sat and the lemma fails at the model in exact
    arithmetic; ``sat-not-replayed`` = sat but the lemma holds at the model, i.e. a case goal is
    stronger than the lemma there; ``unknown`` = timeout/unknown/crash, never proved),
    ``seconds``, ``timeout_s``, ``solver``, ``reason``, ``model`` (on sat)."""
    obs = library_lemmas() if obligations is None else obligations
    chk = exactness_checks() if checks is None else checks
    rows = []
    jobs = [(ob.id, "coverage" if ob.id.endswith("/coverage") else "case", ob) for ob in obs]
    jobs += [(c.id, "exactness", c) for c in chk]
    for ident, kind, item in jobs:
        solver = solver_factory()
        version = getattr(solver, "version", getattr(solver, "name", "?"))
        try:
            if isinstance(item, Obligation):
                out = solver.check(item.violation, timeout_s)
            else:
                out = solver.check_text(item.smt2, timeout_s)
            status, reason = out.status, out.reason
            secs, model = out.seconds, dict(out.model)
        except Exception as exc:  # a crash is never a proof
            status, reason, secs, model = "unknown", f"{type(exc).__name__}: {exc}", 0.0, {}
        row = {"id": ident, "kind": kind, "seconds": round(secs, 3), "timeout_s": timeout_s,
               "solver": version}
        if status == "unsat":
            row["status"] = "proved"
        elif status == "sat":
            if kind == "case":
                holds = lemma_holds(item.replay, model)
                row["status"] = "refuted" if holds is False else "sat-not-replayed"
            else:
                row["status"] = "refuted"
            row["model"] = {k: (str(v) if isinstance(v, Fraction) else v) for k, v in model.items()}
        else:
            row["status"] = "unknown"
        if reason:
            row["reason"] = reason
        rows.append(row)
        if progress:
            progress(row)
    return rows
