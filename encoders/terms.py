"""An immutable, solver-neutral term language for the obligations (FloatingPoint, Real, Bool).

A :class:`Term` is a frozen node ``(op, args, sort, payload)``; equal terms compare and hash equal,
so shared subterms are detected structurally and a formula has a stable hash (:func:`digest`) that
keys the proof cache. Only the operations the encoders need exist, each with the SMT-LIB meaning of
the operator of the same name. Every rounded FP operation is round-to-nearest-even (the kernel's
only mode), printed explicitly as ``RNE``.

The builders refuse the cases SMT-LIB leaves unspecified so that ``unsat`` means the same to every
solver: there is no ``fp.min``/``fp.max`` (encoders write explicit comparisons), and ``fp.to_real``
is only available through :func:`fp_to_real_guarded`, which states the result only for finite
arguments.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable


@dataclass(frozen=True)
class Sort:
    """``Bool``, ``Real`` or ``FloatingPoint eb sb`` (``sb`` counts the hidden bit, as SMT-LIB)."""
    kind: str
    eb: int = 0
    sb: int = 0

    @property
    def is_fp(self) -> bool:
        return self.kind == "FP"

    @property
    def width(self) -> int:
        return self.eb + self.sb

    def smtlib(self) -> str:
        return f"(_ FloatingPoint {self.eb} {self.sb})" if self.is_fp else self.kind


BOOL = Sort("Bool")
REAL = Sort("Real")
F32 = Sort("FP", 8, 24)
F64 = Sort("FP", 11, 53)


@dataclass(frozen=True, eq=True)
class Term:
    op: str
    args: tuple["Term", ...]
    sort: Sort
    payload: Any = None
    _hash: int = field(default=0, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_hash", hash((self.op, self.args, self.sort, self.payload)))

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        from .smtlib import term_text
        return term_text(self)


class EncodingError(ValueError):
    """A term was built with operands of the wrong sort (a bug in an encoder)."""


def _need(sort: Sort, *ts: Term) -> None:
    for t in ts:
        if t.sort != sort:
            raise EncodingError(f"expected a {sort.smtlib()} term, got {t.sort.smtlib()}: {t!r}")


def _same_fp(*ts: Term) -> Sort:
    s = ts[0].sort
    if not s.is_fp:
        raise EncodingError(f"expected a FloatingPoint term, got {s.smtlib()}")
    _need(s, *ts)
    return s


# ---- leaves -------------------------------------------------------------------------------------

def var(name: str, sort: Sort) -> Term:
    return Term("var", (), sort, name)


def fp_bits(pattern: int, sort: Sort = F32) -> Term:
    """The FP constant with this IEEE bit pattern. Every NaN pattern denotes SMT-LIB's one NaN."""
    if not sort.is_fp or not 0 <= pattern < (1 << sort.width):
        raise EncodingError(f"bit pattern {pattern:#x} does not fit {sort.smtlib()}")
    if is_nan_bits(pattern, sort):
        pattern = nan_bits(sort)
    return Term("fp.const", (), sort, int(pattern))


def nan_bits(sort: Sort) -> int:
    """The canonical quiet NaN pattern (float32: 0x7FC00000)."""
    return ((1 << sort.eb) - 1) << (sort.sb - 1) | 1 << (sort.sb - 2)


def is_nan_bits(pattern: int, sort: Sort) -> bool:
    exp = (pattern >> (sort.sb - 1)) & ((1 << sort.eb) - 1)
    return exp == (1 << sort.eb) - 1 and pattern & ((1 << (sort.sb - 1)) - 1) != 0


def real(value) -> Term:
    return Term("real.const", (), REAL, Fraction(value))


TRUE = Term("bool.const", (), BOOL, True)
FALSE = Term("bool.const", (), BOOL, False)


# ---- FloatingPoint ------------------------------------------------------------------------------

def _fp_op(op: str, *ts: Term) -> Term:
    return Term(op, ts, _same_fp(*ts))


def fp_add(a: Term, b: Term) -> Term:
    return _fp_op("fp.add", a, b)


def fp_sub(a: Term, b: Term) -> Term:
    return _fp_op("fp.sub", a, b)


def fp_mul(a: Term, b: Term) -> Term:
    return _fp_op("fp.mul", a, b)


def fp_div(a: Term, b: Term) -> Term:
    return _fp_op("fp.div", a, b)


def fp_sqrt(a: Term) -> Term:
    return _fp_op("fp.sqrt", a)


def fp_neg(a: Term) -> Term:
    return _fp_op("fp.neg", a)


def fp_abs(a: Term) -> Term:
    return _fp_op("fp.abs", a)


def fp_to_fp(a: Term, sort: Sort) -> Term:
    """Convert between FloatingPoint sorts with RNE (exact when widening)."""
    _same_fp(a)
    if not sort.is_fp:
        raise EncodingError("fp_to_fp needs a FloatingPoint target sort")
    return Term("to_fp", (a,), sort)


def _fp_pred(op: str, *ts: Term) -> Term:
    _same_fp(*ts)
    return Term(op, ts, BOOL)


def fp_lt(a, b): return _fp_pred("fp.lt", a, b)
def fp_leq(a, b): return _fp_pred("fp.leq", a, b)
def fp_gt(a, b): return _fp_pred("fp.gt", a, b)
def fp_geq(a, b): return _fp_pred("fp.geq", a, b)
def fp_eq(a, b): return _fp_pred("fp.eq", a, b)
def is_nan(a): return _fp_pred("fp.isNaN", a)
def is_inf(a): return _fp_pred("fp.isInfinite", a)
def is_zero(a): return _fp_pred("fp.isZero", a)
def is_negative(a): return _fp_pred("fp.isNegative", a)
def is_subnormal(a): return _fp_pred("fp.isSubnormal", a)


def is_finite(a: Term) -> Term:
    return not_(or_(is_nan(a), is_inf(a)))


def fp_to_real_guarded(a: Term, name: str) -> tuple[Term, Term]:
    """``(r, fact)``: a fresh real ``r`` and the fact ``finite(a) => r = fp.to_real(a)``.

    SMT-LIB leaves ``fp.to_real`` of ±inf and NaN unspecified, so the value is only ever stated
    under a finiteness guard; a lemma using ``r`` must assume ``finite(a)`` itself.
    """
    _same_fp(a)
    r = var(name, REAL)
    return r, implies(is_finite(a), eq(r, Term("fp.to_real", (a,), REAL)))


# ---- Real ---------------------------------------------------------------------------------------

def _real_op(op: str, *ts: Term) -> Term:
    _need(REAL, *ts)
    return Term(op, ts, REAL)


def r_add(*ts): return _real_op("+", *ts)
def r_sub(a, b): return _real_op("-", a, b)
def r_mul(*ts): return _real_op("*", *ts)
def r_neg(a): return _real_op("-", a)


def _real_pred(op: str, a: Term, b: Term) -> Term:
    _need(REAL, a, b)
    return Term(op, (a, b), BOOL)


def r_le(a, b): return _real_pred("<=", a, b)
def r_lt(a, b): return _real_pred("<", a, b)
def r_ge(a, b): return _real_pred(">=", a, b)


# ---- Bool and polymorphic -----------------------------------------------------------------------

def _flat(op: str, ts: Iterable[Term], unit: Term) -> Term:
    out = []
    for t in ts:
        _need(BOOL, t)
        if t == unit:
            continue
        out.extend(t.args if t.op == op else (t,))
    if not out:
        return unit
    return out[0] if len(out) == 1 else Term(op, tuple(out), BOOL)


def and_(*ts: Term) -> Term:
    return _flat("and", ts, TRUE)


def or_(*ts: Term) -> Term:
    return _flat("or", ts, FALSE)


def not_(a: Term) -> Term:
    _need(BOOL, a)
    return a.args[0] if a.op == "not" else Term("not", (a,), BOOL)


def implies(a: Term, b: Term) -> Term:
    _need(BOOL, a, b)
    return Term("=>", (a, b), BOOL)


def eq(a: Term, b: Term) -> Term:
    """SMT-LIB ``=``: for FP this is identity (NaN = NaN, +0 != -0), unlike ``fp.eq``."""
    _need(a.sort, b)
    return Term("=", (a, b), BOOL)


def ite(c: Term, a: Term, b: Term) -> Term:
    _need(BOOL, c)
    _need(a.sort, b)
    return Term("ite", (c, a, b), a.sort)


# ---- traversal ----------------------------------------------------------------------------------

def postorder(*roots: Term) -> list[Term]:
    """Every distinct subterm, children before parents (iterative; deep folds are fine)."""
    seen: set[Term] = set()
    out: list[Term] = []
    stack: list[tuple[Term, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        t, done = stack.pop()
        if done:
            out.append(t)
            continue
        if t in seen:
            continue
        seen.add(t)
        stack.append((t, True))
        stack.extend((a, False) for a in reversed(t.args) if a not in seen)
    return out


def free_vars(*roots: Term) -> list[Term]:
    """The variables of the terms, in first-occurrence order."""
    return [t for t in postorder(*roots) if t.op == "var"]


def digest(text: str) -> str:
    """The formula hash used by manifests and the cache: sha256 of the SMT-LIB text."""
    return hashlib.sha256(text.encode()).hexdigest()
