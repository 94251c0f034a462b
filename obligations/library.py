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

Sorts used: ``Float64`` (11, 53) and ``Float128`` (15, 113) — Bitwuzla accepts only the IEEE
interchange formats. Widening a float32 to either is exact; scaling by a power of two is exact
whenever the result stays in the normal range (every scaled value below lies within
``2^-300 .. 2^155``, far inside both).

Where a case proves a *stronger* statement than the lemma (e.g. no ``2^-150`` term in the normal
range, or ``x = a`` plus an inequality in the "far" cases of add), the docstring of the lemma
gives the short derivation of the lemma from it. Each proved case is therefore: ``precondition ∧
case condition ⇒ case goal`` and ``case goal ⇒ lemma`` (by the stated argument), and the coverage
obligation gives ``precondition ⇒ some case condition``. A :class:`Derived` case is not queried
as one formula: it follows from other library queries by a stated argument (the monotonicity of
mul for finite operands: exact Float64 products, the monotone Float64 → float32 rounding, and
``fl32(a·b) = fl32(fl64(a·b))``).

What is not proved (the benchmark records it as ``unknown``): the relative error of ``div``
(normal and tiny cases) and ``sqrt``, and the monotonicity of ``div`` for dividends within a
factor ``1 + 2^-7`` of each other. Each of these asks a bit-blasting solver to verify a 24-bit
division or square-root circuit against multiplication (or two division circuits against each
other), which neither Bitwuzla nor Z3 (nor cvc5) does within a minute; the measurements are in
the lemma docstrings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

from encoders import terms as T
from encoders.smtlib import term_text
from encoders.terms import F32, F64, Sort, Term, digest

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
class Derived:
    """A case not queried as one formula: ``pre ∧ cond ⇒ lemma`` follows from the obligations and
    exactness checks named in ``deps`` by the short ``argument`` (too hard as one query)."""
    name: str
    cond: Term
    deps: tuple[str, ...]
    argument: str


@dataclass(frozen=True)
class Lemma:
    op: str
    name: str
    statement: str
    pre: Term
    cases: tuple[Case, ...]
    replay: dict = field(default_factory=dict)
    derived: tuple[Derived, ...] = ()

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
        conds = [c.cond for c in self.cases] + [d.cond for d in self.derived]
        if len(conds) > 1 or conds[0] != T.TRUE:
            out.append(Obligation(
                id=f"{self.prefix}/coverage", kind="library", op=self.op, logic="QF_FP",
                violation=T.and_(self.pre, T.not_(T.or_(*conds))),
                statement=f"the cases of {self.prefix} cover its precondition",
                provenance={"lemma": self.name, "case": "coverage", "op": self.op},
                replay={}))
        return out


A = T.var("a", F32)
B = T.var("b", F32)
_BINOP = {"add": T.fp_add, "sub": T.fp_sub, "mul": T.fp_mul, "div": T.fp_div}
_SYM = {"add": "+", "sub": "−", "mul": "·", "div": "/"}


def _relerr_replay(op: str, u_exp: int, eta_exp: int | None) -> dict:
    return {"lemma": "relative-error", "op": op, "u_exp": u_exp, "eta_exp": eta_exp}


# ---- relative error: add, sub --------------------------------------------------------------------

def relative_error_addsub(op: str, u_exp: int = U_EXP, far_exp: int = FAR_EXP) -> Lemma:
    """``|fl(a ± b) − (a ± b)| ≤ 2^-24·|a ± b| + 2^-150`` for finite a, b and finite result.

    Proved in the stronger form without the ``2^-150`` term (sums are exact in the subnormal
    range). Write ``a = M_a·2^(q_a)``, ``b = M_b·2^(q_b)`` with integers ``|M| < 2^24`` and
    quanta ``q ≥ −149``, ``x = fl(a ± b)``, ``K = 2^26``. Three cases (``|a|, |b|`` compared in
    Float64, where ``K·|a|``, ``K·|b|`` are exact):

    * **close** (``|a| ≤ K|b|`` and ``|b| ≤ K|a|``): then ``d = |q_a − q_b| ≤ 26`` (if, say,
      ``q_a > q_b`` then ``a`` is normal, ``|a| ≥ 2^(q_a+23)``, and ``2^(q_b+24) > |b| ≥ |a|/K``).
      ``S = a ± b`` is a multiple of ``2^qmin`` below ``2^(qmin+25+d)``, and ``S ± 2^-24|S|`` a
      multiple of ``2^(qmin−24)`` below ``2^(qmin+26+d)``: at most ``50+d ≤ 76`` bits, so ``S``,
      ``T = 2^-24|S|`` and ``S ± T`` are exact in Float128 (113 bits). Goal: ``S − T ≤ x ≤ S + T``
      (i.e. ``|x − S| ≤ 2^-24|S|``), ``x`` widened exactly.
    * **far-a** (``|a| > K|b|``): goal ``x = a`` (fp.eq) and ``|b|·(2^24+1) ≤ |a|`` (Float64:
      24 × 25 significand bits, exact). Then ``|x − (a ± b)| = |b|`` and
      ``2^-24|a ± b| ≥ 2^-24(|a| − |b|) ≥ |b|``.
    * **far-b** (``|b| > K|a|``): symmetric, goal ``x = b`` (add) or ``x = −b`` (sub).

    The three conditions cover every pair of finite values (no comparison involves NaN).
    """
    fl = _BINOP[op]
    x = fl(A, B)
    pre = T.and_(T.is_finite(A), T.is_finite(B), T.is_finite(x))
    a64, b64 = widen(A, F64), widen(B, F64)
    aa, ab = T.fp_abs(a64), T.fp_abs(b64)
    close = T.and_(T.fp_leq(aa, scaled(ab, far_exp)), T.fp_leq(ab, scaled(aa, far_exp)))
    s = fl(widen(A, F128), widen(B, F128))     # exact a ± b
    t = scaled(T.fp_abs(s), -u_exp)
    lo, hi = T.fp_sub(s, t), T.fp_add(s, t)
    c = exact_const(2 ** u_exp + 1, F64)
    other = B if op == "add" else T.fp_neg(B)
    cases = (
        Case("close", close, within(lo, widen(x, F128), hi), (s, t, lo, hi)),
        Case("far-a", T.fp_lt(scaled(ab, far_exp), aa),
             T.and_(T.fp_eq(x, A), T.fp_leq(T.fp_mul(ab, c), aa)), (T.fp_mul(ab, c),)),
        Case("far-b", T.fp_lt(scaled(aa, far_exp), ab),
             T.and_(T.fp_eq(x, other), T.fp_leq(T.fp_mul(aa, c), ab)), (T.fp_mul(aa, c),)),
    )
    sym = _SYM[op]
    return Lemma(op, "relative-error",
                 f"finite a, b, finite x = fl(a {sym} b) ⇒ |x − (a {sym} b)| ≤ 2^-{u_exp}·|a {sym} b|"
                 f" + 2^-{ETA_EXP}", pre, cases, _relerr_replay(op, u_exp, ETA_EXP))


# ---- relative error: mul -------------------------------------------------------------------------

def relative_error_mul(u_exp: int = U_EXP) -> Lemma:
    """``|fl(a·b) − a·b| ≤ 2^-24·|a·b| + 2^-150`` for finite a, b with finite ``x = fl(a·b)``.

    The exact product ``P = a·b`` is computed in Float64: it is ``M_a·M_b·2^(q_a+q_b)`` with
    ``|M_a·M_b| < 2^48 ≤ 2^53`` and ``2^-298 ≤ |P| < 2^256`` (or 0), inside Float64's normal range.
    Cases on ``|P|``:

    * **normal** (``|P| ≥ 2^-126``): stronger goal ``|x − P| ≤ 2^-24|P|`` (in the normal range
      the rounding error is at most half an ulp, ``≤ 2^-24|P|``). With ``E = ⌊log2|P|⌋``,
      ``P`` is a multiple of ``2^(E−47)`` and ``T = 2^-24|P|`` of ``2^(E−71)``; ``P ± T`` is below
      ``2^(E+2)``: 73 bits, exact in Float128. Goal ``P − T ≤ x ≤ P + T``.
    * **tiny-zero** (``|P| ≤ 2^-150``): goal ``x = ±0``, so ``|x − P| = |P| ≤ 2^-150``.
    * **tiny** (``2^-150 < |P| < 2^-126``): stronger goal ``|x − P| ≤ 2^-150``. ``P`` is a
      multiple of ``2^(E−47) ≥ 2^-198`` and ``P ± 2^-150`` is below ``2^-125``: at most 73 bits,
      exact in Float128.

    The three conditions on the (never NaN) ``|P|`` cover everything.
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
    cases = (
        Case("normal", T.fp_leq(pow2(-126, F64), ap), within(lo, xw, hi), (p, t, lo, hi)),
        Case("tiny-zero", T.fp_leq(ap, pow2(-ETA_EXP, F64)), T.is_zero(x), (p,)),
        Case("tiny", T.and_(T.fp_lt(pow2(-ETA_EXP, F64), ap), T.fp_lt(ap, pow2(-126, F64))),
             within(tlo, xw, thi), (p, tlo, thi)),
    )
    return Lemma("mul", "relative-error",
                 f"finite a, b, finite x = fl(a·b) ⇒ |x − a·b| ≤ 2^-{u_exp}·|a·b| + 2^-{ETA_EXP}",
                 pre, cases, _relerr_replay("mul", u_exp, ETA_EXP))


# ---- relative error: div -------------------------------------------------------------------------

def relative_error_div(u_exp: int = U_EXP) -> Lemma:
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
      ``|a ± N| < 2^(q_b+24−126+1)``: at most 72 bits, exact in Float128.

    Status: the *normal* and *tiny* cases are beyond today's bit-blasting FP solvers as universal
    queries: they amount to verifying the 24-bit division circuit against a multiplier. Measured
    with Bitwuzla: with ``b`` fixed the normal case takes 0.7 s, with 4 free significand bits of
    ``b`` it already exceeds 60 s (and Z3, cvc5 time out even on ``a, b ∈ [1, 2)``).
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
    cases = (
        Case("normal", T.fp_leq(scaled(ab, -126), aa), within(lo, qb, hi), (qb, t, lo, hi)),
        Case("tiny-zero", T.fp_leq(aa, scaled(ab, -ETA_EXP)), T.is_zero(q)),
        Case("tiny", T.and_(T.fp_lt(scaled(ab, -ETA_EXP), aa), T.fp_lt(aa, scaled(ab, -126))),
             within(tlo, widen(qb, F128), thi), (qb, n, tlo, thi)),
    )
    return Lemma("div", "relative-error",
                 f"finite a, b, b ≠ 0, finite q = fl(a/b) ⇒ |q − a/b| ≤ 2^-{u_exp}·|a/b| + "
                 f"2^-{ETA_EXP}", pre, cases, _relerr_replay("div", u_exp, ETA_EXP))


# ---- relative error: sqrt ------------------------------------------------------------------------

def relative_error_sqrt(u_exp: int = U_EXP) -> Lemma:
    """``|fl(√a) − √a| ≤ 2^-24·√a`` for finite ``a ≥ 0`` (including −0).

    No square root of reals is formed. With ``s = fl(√a)``: for ``s ≥ 0`` (part of the goal),
    ``√a ≥ 0`` and ``1 ± u ≥ 0``, squaring is monotone on ``[0, ∞)``, so
    ``(1−u)√a ≤ s ≤ (1+u)√a  ⇔  (1−u)²·a ≤ s² ≤ (1+u)²·a``. Exactness: ``s²`` is a product of
    two float32, exact in Float64 (``2^-150 ≤ s² < 2^128``, or 0); ``(1 ± u)²·a = a ± 2^-23·a +
    2^-48·a`` is computed as ``(a ± 2^-23·a) + 2^-48·a`` in Float128: each partial result is a
    multiple of ``2^(q_a−48)`` below ``2^(q_a+26)``, at most 74 bits, exact. (No ``2^-150`` term
    is needed: ``√a ≥ 2^-74.5`` for ``a ≠ 0``, far from the subnormal range.)

    Status: as for division, a universal query verifies the square-root circuit against a
    multiplier; Bitwuzla proves it for ``a`` in one binade with ≤ 12 free significand bits in
    ~5 s, 16 free bits take ~60 s, the full lemma times out.
    """
    s = T.fp_sqrt(A)
    zero = T.fp_bits(0, F32)
    pre = T.and_(T.is_finite(A), T.fp_geq(A, zero))
    s64 = widen(s, F64)
    s2 = T.fp_mul(s64, s64)
    aw = widen(A, F128)
    a1 = scaled(aw, -(u_exp - 1))   # 2u·a
    a2 = scaled(aw, -2 * u_exp)     # u²·a
    lo1, hi1 = T.fp_sub(aw, a1), T.fp_add(aw, a1)
    lo, hi = T.fp_add(lo1, a2), T.fp_add(hi1, a2)
    goal = T.and_(T.fp_geq(s, zero), within(lo, widen(s2, F128), hi))
    return Lemma("sqrt", "relative-error",
                 f"finite a ≥ 0, s = fl(√a) ⇒ |s − √a| ≤ 2^-{u_exp}·√a", pre,
                 (Case("all", T.TRUE, goal, (s2, a1, a2, lo1, hi1, lo, hi)),),
                 _relerr_replay("sqrt", u_exp, None))


# ---- helper lemmas: rounding through Float64 ------------------------------------------------------

def mul_via_float64() -> Lemma:
    """``fl32(a·b) = fl32(fl64(a·b))`` for finite a, b: the float32 product is the float32
    rounding of the Float64 product, which is exact (see :func:`relative_error_mul`; checked by
    the exactness check of this case). Used by the monotonicity of mul."""
    p = T.fp_mul(widen(A, F64), widen(B, F64))
    pre = T.and_(T.is_finite(A), T.is_finite(B))
    return Lemma("mul", "via-float64", "finite a, b ⇒ fl32(a·b) = fl32(fl64(a·b)), fl64(a·b) exact",
                 pre, (Case("all", T.TRUE, T.eq(T.fp_mul(A, B), T.fp_to_fp(p, F32)), (p,)),))


def convert_monotone() -> Lemma:
    """Rounding Float64 to float32 (RNE) is monotone: ``w1 ≤ w2 ⇒ fl32(w1) ≤ fl32(w2)``."""
    w1, w2 = T.var("w1", F64), T.var("w2", F64)
    return Lemma("to_fp", "monotone-float64-to-float32",
                 "w1 ≤ w2 (Float64) ⇒ fl32(w1) ≤ fl32(w2)", T.fp_leq(w1, w2),
                 (Case("all", T.TRUE, T.fp_leq(T.fp_to_fp(w1, F32), T.fp_to_fp(w2, F32))),))


# ---- monotonicity ---------------------------------------------------------------------------------

X1, X2, Y = T.var("x1", F32), T.var("x2", F32), T.var("y", F32)
ZERO = T.fp_bits(0, F32)
_SIGN_COND = {None: T.TRUE, "nonneg": T.fp_geq(Y, ZERO), "nonpos": T.fp_leq(Y, ZERO),
              "pos": T.fp_gt(Y, ZERO), "neg": T.fp_lt(Y, ZERO)}
_SIGN_TEXT = {None: "", "nonneg": ", y ≥ 0", "nonpos": ", y ≤ 0", "pos": ", y > 0", "neg": ", y < 0"}


def _signs(*named: tuple[str, Term]) -> list[tuple[str, Term]]:
    """Every sign pattern of the named values (``+``: sign bit clear, ``-``: set)."""
    out = [("", T.TRUE)]
    for name, v in named:
        out = [(f"{n}{name}{s}", T.and_(c, T.is_negative(v) if s == "-" else T.not_(T.is_negative(v))))
               for n, c in out for s in "+-"]
    return out


def addsub_monotone_parts(op: str) -> list[tuple[str, Term]]:
    """The case split for add/sub monotonicity: the signs of x1, x2, y; where the operation is an
    effective subtraction and x1, x2 have one sign, the position of ``|y|`` relative to ``|x1|``,
    ``|x2|`` (below both / above both / between), and for below/above whether all three are
    within a factor 2 of each other (the cancellation-prone "near" part) or not."""
    two = exact_const(2, F32)
    a1, a2, ay = T.fp_abs(X1), T.fp_abs(X2), T.fp_abs(Y)
    small = T.and_(T.fp_leq(ay, a1), T.fp_leq(ay, a2))
    large = T.and_(T.fp_leq(a1, ay), T.fp_leq(a2, ay))
    near = T.and_(*(T.fp_leq(u, T.fp_mul(two, v)) for u, v in ((a1, ay), (ay, a1), (a2, ay), (ay, a2))))
    out = []
    for name, c in _signs(("x1", X1), ("x2", X2), ("y", Y)):
        s1, s2, sy = name[2], name[5], name[7]
        eff_sub = (s1 != sy) if op == "add" else (s1 == sy)
        if s1 != s2 or not eff_sub:
            out.append((name, c))
            continue
        out.append((f"{name}.between", T.and_(c, T.not_(small), T.not_(large))))
        for rel, rc in (("small", small), ("large", large)):
            out.append((f"{name}.{rel}.near", T.and_(c, rc, near)))
            out.append((f"{name}.{rel}.far", T.and_(c, rc, T.not_(near))))
    return out


def div_monotone_parts(bands: int) -> list[tuple[str, Term]]:
    """The case split for div monotonicity in the dividend: the signs of x1, x2; for one sign, with
    ``lo ≤ hi`` the two magnitudes, ``far``: ``hi > 2·lo``; ``band-j`` (j < bands):
    ``lo·(1+2^-(j+1)) < hi ≤ lo·(1+2^-j)``; ``close``: ``hi ≤ lo·(1+2^-bands)`` (Float64, exact:
    ``lo·(1+2^-j)`` has at most 24+j ≤ 53 bits)."""
    out = []
    for name, c in _signs(("x1", X1), ("x2", X2)):
        if name[2] != name[5]:
            out.append((name, c))
            continue
        lo, hi = (X1, X2) if name[2] == "+" else (X2, X1)
        lo, hi = T.fp_abs(widen(lo, F64)), T.fp_abs(widen(hi, F64))
        up = lambda j: T.fp_add(lo, scaled(lo, -j))  # noqa: E731  lo·(1+2^-j), j ≥ 1
        out.append((f"{name}.far", T.and_(c, T.fp_lt(scaled(lo, 1), hi))))
        for j in range(bands):
            top = scaled(lo, 1) if j == 0 else up(j)
            out.append((f"{name}.band-{j}", T.and_(c, T.fp_lt(up(j + 1), hi), T.fp_leq(hi, top))))
        out.append((f"{name}.close", T.and_(c, T.fp_leq(hi, up(bands)))))
    return out


def monotone(op: str, arg: int, direction: str, sign: str | None = None, guard_nan: bool = True,
             parts: list[tuple[str, Term]] | None = None, derive_finite_mul: bool = False) -> Lemma:
    """``x1 ≤ x2 ⇒ fl(x1 op y) ≤ fl(x2 op y)`` (``direction='increasing'``, else ``≥``) in argument
    ``arg`` (0: first, 1: second; ``y`` is the other), with ``fp.leq`` throughout (so x1, x2 are
    not NaN), ``y`` not NaN and neither result NaN (this excludes ``inf − inf``, ``0·inf``,
    ``0/0``, ``inf/inf``). ``sign`` restricts ``y``: ``'nonneg'`` (``y ≥ 0``: +0, −0 or
    positive), ``'nonpos'``, ``'pos'`` (``y > 0``), ``'neg'``. ``±0`` compare equal under
    ``fp.leq``, so results ``+0`` and ``−0`` are in order either way.

    ``parts`` splits the query (the coverage obligation checks the partition). ``guard_nan=False``
    drops the NaN exclusions (a deliberately false lemma, for tests).

    ``derive_finite_mul`` (mul only): the case "x1, x2, y all finite" is not queried as one formula
    (two different 24-bit multipliers compared: beyond bit-blasting); it is derived. With
    ``P_i = fl64(x_i·y)`` (in the operand order of ``op``): ``P_i`` is exact
    (``library/mul/via-float64/all/exact-0``), so ``P_i = x_i·y`` as reals and, ``y ≥ 0``
    (resp. ``≤ 0``), ``P1 ≤ P2`` (resp. ``≥``) by the monotonicity of real multiplication;
    ``fl32`` of Float64 is monotone (``library/to_fp/monotone-float64-to-float32/all``); and
    ``fl32(x_i·y) = fl32(P_i)`` (``library/mul/via-float64/all``). So
    ``fl(x1·y) = fl32(P1) ≤ fl32(P2) = fl(x2·y)`` (resp. ``≥``); the results of finite operands
    are never NaN. The remaining case (some operand infinite) is queried.
    """
    fl = _BINOP[op]
    r1, r2 = (fl(X1, Y), fl(X2, Y)) if arg == 0 else (fl(Y, X1), fl(Y, X2))
    guards = T.and_(not_nan(Y), not_nan(r1), not_nan(r2)) if guard_nan else T.TRUE
    pre = T.and_(T.fp_leq(X1, X2), _SIGN_COND[sign], guards)
    goal = T.fp_leq(r1, r2) if direction == "increasing" else T.fp_geq(r1, r2)
    sym = _SYM[op]
    expr = (lambda v: f"fl({v} {sym} y)") if arg == 0 else (lambda v: f"fl(y {sym} {v})")
    rel = "≤" if direction == "increasing" else "≥"
    guard_text = ", y and both results not NaN" if guard_nan else ""
    name = f"monotone-{'ab'[arg]}" + (f"-{sign}" if sign else "") + ("" if guard_nan else "-unguarded")
    derived: tuple[Derived, ...] = ()
    if derive_finite_mul:
        finite = T.and_(T.is_finite(X1), T.is_finite(X2), T.is_finite(Y))
        parts = [("infinite", T.not_(finite))]
        derived = (Derived("finite", finite,
                           ("library/mul/via-float64/all", "library/mul/via-float64/all/exact-0",
                            "library/to_fp/monotone-float64-to-float32/all"),
                           "P_i = fl64(x_i·y) is exact, so P1 ≤ P2 (resp. ≥) by real arithmetic; "
                           "fl32 of Float64 is monotone; fl32(x_i·y) = fl32(P_i)"),)
    parts = parts or [("all", T.TRUE)]
    return Lemma(op, name, f"x1 ≤ x2{_SIGN_TEXT[sign]}{guard_text} ⇒ {expr('x1')} {rel} {expr('x2')}",
                 pre, tuple(Case(n, p, goal) for n, p in parts),
                 {"lemma": "monotone", "op": op, "arg": arg, "direction": direction, "sign": sign,
                  "guard_nan": guard_nan}, derived)


# ---- the library ----------------------------------------------------------------------------------

DIV_BANDS = 7  # div monotonicity: ratio bands (1+2^-(j+1), 1+2^-j], j < 7, proved; ≤ 1+2^-7 open


def lemmas() -> list[Lemma]:
    """The library, with the case splits used for the stored proofs."""
    out = [relative_error_addsub("add"), relative_error_addsub("sub"), relative_error_mul(),
           relative_error_div(), relative_error_sqrt(), mul_via_float64(), convert_monotone()]
    out += [monotone("add", 0, "increasing", parts=addsub_monotone_parts("add")),
            monotone("add", 1, "increasing", parts=addsub_monotone_parts("add")),
            monotone("sub", 0, "increasing", parts=addsub_monotone_parts("sub")),
            monotone("sub", 1, "decreasing", parts=addsub_monotone_parts("sub"))]
    out += [monotone("mul", arg, d, sign, derive_finite_mul=True)
            for arg in (0, 1) for d, sign in (("increasing", "nonneg"), ("decreasing", "nonpos"))]
    out += [monotone("div", 0, "increasing", "pos", parts=div_monotone_parts(DIV_BANDS))]
    return out


def library_lemmas() -> list[Obligation]:
    """Every library obligation (cases and coverage), ids unique."""
    return [ob for lem in lemmas() for ob in lem.obligations()]


def required_queries(prefix: str, lemma_list: list[Lemma] | None = None) -> dict[str, str]:
    """``id -> formula hash`` of every query the lemma ``prefix`` (``library/<op>/<name>``) rests
    on: its case and coverage obligations, the exactness checks of its cases, and the obligations
    and exactness checks its derived cases cite. A proof store proves the lemma only if all of
    these are recorded as proved with these hashes."""
    lems = lemma_list if lemma_list is not None else lemmas()
    obs = {o.id: o.formula_hash for lem in lems for o in lem.obligations()}
    chk = {c.id: c.formula_hash for c in exactness_checks(lems)}
    (lem,) = [x for x in lems if x.prefix == prefix] or [None]
    if lem is None:
        raise KeyError(f"no library lemma {prefix!r}")
    out = {o.id: o.formula_hash for o in lem.obligations()}
    out.update({c.id: c.formula_hash for c in exactness_checks([lem])})
    for d in lem.derived:
        for dep in d.deps:
            out[dep] = obs[dep] if dep in obs else chk[dep]
    return out


def derived_cases(lemma_list: list[Lemma] | None = None) -> list[tuple[str, Derived]]:
    """``(id, derived case)`` for the cases proved by composition rather than one query."""
    return [(f"{lem.prefix}/{d.name}", d)
            for lem in (lemma_list if lemma_list is not None else lemmas()) for d in lem.derived]


# ---- exactness checks (SMT-LIB text: RTP vs RTN) -------------------------------------------------

@dataclass(frozen=True)
class ExactnessCheck:
    id: str
    statement: str
    smt2: str

    @property
    def formula_hash(self) -> str:
        """Hash of the script without its comment lines (as ``Obligation.formula_hash``)."""
        return digest("\n".join(ln for ln in self.smt2.splitlines() if not ln.startswith(";")) + "\n")


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

Job = tuple[str, str, "Obligation | ExactnessCheck"]


def library_jobs(obligations: list[Obligation] | None = None,
                 checks: list[ExactnessCheck] | None = None) -> list[Job]:
    """``(id, kind, item)`` for every query: kind ``case``, ``coverage`` or ``exactness``."""
    obs = library_lemmas() if obligations is None else obligations
    chk = exactness_checks() if checks is None else checks
    return ([(ob.id, "coverage" if ob.id.endswith("/coverage") else "case", ob) for ob in obs]
            + [(c.id, "exactness", c) for c in chk])


def run_job(solver, job: Job, timeout_s: float) -> dict:
    """One query. ``status``: ``proved`` (unsat); ``refuted`` (sat: for a case, the lemma fails at
    the model in exact arithmetic; for coverage/exactness, the claim is false); ``sat-not-replayed``
    (a case's sat model at which the lemma holds: the case goal is stronger than the lemma there,
    a formulation problem, not a counterexample); ``unknown`` (timeout, solver unknown, crash —
    never proved)."""
    ident, kind, item = job
    version = getattr(solver, "version", getattr(solver, "name", "?"))
    try:
        if isinstance(item, Obligation):
            out = solver.check(item.violation, timeout_s)
        else:
            out = solver.check_text(item.smt2, timeout_s)
        status, reason, secs, model = out.status, out.reason, out.seconds, dict(out.model)
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
    return row


def derive(rows: list[dict], derived: list[tuple[str, Derived]] | None = None) -> list[dict]:
    """Rows for the derived cases whose dependencies were all run: ``proved`` iff every
    dependency is proved in ``rows``."""
    by_id = {r["id"]: r for r in rows}
    out = []
    for ident, d in derived_cases() if derived is None else derived:
        if not all(dep in by_id for dep in d.deps):
            continue  # not part of this run
        missing = [dep for dep in d.deps if by_id.get(dep, {}).get("status") != "proved"]
        row = {"id": ident, "kind": "derived", "status": "unknown" if missing else "proved",
               "seconds": round(sum(by_id[dep]["seconds"] for dep in d.deps if dep in by_id), 3),
               "deps": list(d.deps), "argument": d.argument}
        if missing:
            row["reason"] = "not proved: " + ", ".join(missing)
        out.append(row)
    return out


def prove_library(solver_factory: Callable[[], object], timeout_s: float = 60.0,
                  progress: Callable[[dict], None] | None = None,
                  obligations: list[Obligation] | None = None,
                  checks: list[ExactnessCheck] | None = None) -> list[dict]:
    """Run every library query with a fresh solver from ``solver_factory`` each (one at a time),
    then add the derived cases. Rows: ``id``, ``kind`` (``case``/``coverage``/``exactness``/
    ``derived``), ``status`` (see :func:`run_job`), ``seconds``, ``timeout_s``, ``solver`` (name
    and version), ``reason`` (if any), ``model`` (on sat)."""
    rows = []
    for job in library_jobs(obligations, checks):
        row = run_job(solver_factory(), job, timeout_s)
        rows.append(row)
        if progress:
            progress(row)
    return rows + derive(rows)
