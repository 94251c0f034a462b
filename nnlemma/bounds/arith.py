"""Sound interval arithmetic for one rounding model (see :mod:`nnlemma.bounds.interval`).

Every function takes and returns :class:`Interval` s. The soundness argument of each is in its
docstring; the common one is *monotonicity*: for the float32 model the kernel's operation is
applied to the extreme endpoints (IEEE RNE operations are monotone in each argument, per sign for
``*`` and ``/``), for the real model the float64 result on the endpoints is rounded outward.
NaN masks are propagated conservatively: an element is flagged whenever some input in the
intervals could make the IEEE operation produce NaN (inf − inf, 0 · inf, 0/0, inf/inf).
"""

from __future__ import annotations

import numpy as np

from .interval import Interval, Rounding


def _nan(*xs: Interval) -> np.ndarray:
    out = False
    for x in xs:
        out = out | x.nan
    return out


def _has_pos_inf(x: Interval) -> np.ndarray:
    return x.hi == np.inf


def _has_neg_inf(x: Interval) -> np.ndarray:
    return x.lo == -np.inf


def _has_zero(x: Interval) -> np.ndarray:
    return (x.lo <= 0) & (x.hi >= 0)


def _has_inf(x: Interval) -> np.ndarray:
    return _has_pos_inf(x) | _has_neg_inf(x)


def add(r: Rounding, a: Interval, b: Interval) -> Interval:
    """fl(a + b) is monotone in a and b: [fl(a.lo + b.lo), fl(a.hi + b.hi)]."""
    with np.errstate(all="ignore"):
        lo = r.down(a.lo + b.lo)
        hi = r.up(a.hi + b.hi)
    nan = _nan(a, b) | (_has_pos_inf(a) & _has_neg_inf(b)) | (_has_neg_inf(a) & _has_pos_inf(b))
    return Interval.make(lo, hi, nan, r.dtype)


def neg(r: Rounding, a: Interval) -> Interval:
    """Negation is exact: [-hi, -lo]."""
    return Interval(-a.hi, -a.lo, a.nan)


def sub(r: Rounding, a: Interval, b: Interval) -> Interval:
    """fl(a − b) = fl(a + (−b)) exactly (IEEE), so the add rule applies to (a, −b)."""
    return add(r, a, neg(r, b))


def mul(r: Rounding, a: Interval, b: Interval) -> Interval:
    """The real product of two intervals ranges between its smallest and largest corner product;
    fl is monotone, so [fl(min corner), fl(max corner)] holds every fl(x·y). NaN iff a zero meets
    an infinity."""
    with np.errstate(all="ignore"):
        c = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
        lo = r.down(np.minimum(np.minimum(c[0], c[1]), np.minimum(c[2], c[3])))
        hi = r.up(np.maximum(np.maximum(c[0], c[1]), np.maximum(c[2], c[3])))
    nan = _nan(a, b) | (_has_zero(a) & _has_inf(b)) | (_has_zero(b) & _has_inf(a))
    return Interval.make(lo, hi, nan, r.dtype)


def div(r: Rounding, a: Interval, b: Interval) -> Interval:
    """If the divisor interval excludes 0, x/y is monotone in x and in y on it, so the extremes are
    corner quotients; otherwise the result is unbounded (and may be NaN from 0/0)."""
    with np.errstate(all="ignore"):
        c = [a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi]
        lo = r.down(np.minimum(np.minimum(c[0], c[1]), np.minimum(c[2], c[3])))
        hi = r.up(np.maximum(np.maximum(c[0], c[1]), np.maximum(c[2], c[3])))
    zero = _has_zero(b)
    lo = np.where(zero, r.dtype(-np.inf), lo)
    hi = np.where(zero, r.dtype(np.inf), hi)
    nan = _nan(a, b) | zero | (_has_inf(a) & _has_inf(b))
    return Interval.make(lo, hi, nan, r.dtype)


def increasing(r: Rounding, a: Interval, f, exact: bool) -> Interval:
    """A monotone non-decreasing function: [f(lo), f(hi)]. ``exact`` says f's endpoint values are
    exact (or, for float32, are the kernel's own results); otherwise they are widened outward."""
    lo, hi = f(a.lo), f(a.hi)
    if not exact:
        lo, hi = r.down(lo), r.up(hi)
    return Interval.make(lo, hi, a.nan, r.dtype)


def abs_(r: Rounding, a: Interval) -> Interval:
    """|x| is exact; it decreases on the negative part and increases on the positive part."""
    lo = np.where(a.lo >= 0, a.lo, np.where(a.hi <= 0, -a.hi, r.dtype(0)))
    hi = np.maximum(np.abs(a.lo), np.abs(a.hi))
    return Interval.make(lo, hi, a.nan, r.dtype)


def square(r: Rounding, a: Interval) -> Interval:
    """x·x: the abs interval squared (monotone on x >= 0); fl is monotone."""
    m = abs_(r, a)
    with np.errstate(all="ignore"):
        return Interval.make(r.down(m.lo * m.lo), r.up(m.hi * m.hi), a.nan, r.dtype)


def maximum(r: Rounding, a: Interval, b: Interval) -> Interval:
    """maximum is monotone in both arguments (and exact)."""
    return Interval.make(np.maximum(a.lo, b.lo), np.maximum(a.hi, b.hi), _nan(a, b), r.dtype)


def minimum(r: Rounding, a: Interval, b: Interval) -> Interval:
    """minimum is monotone in both arguments (and exact)."""
    return Interval.make(np.minimum(a.lo, b.lo), np.minimum(a.hi, b.hi), _nan(a, b), r.dtype)


def hull(r: Rounding, parts: list[Interval]) -> Interval:
    lo = parts[0].lo
    hi = parts[0].hi
    nan = parts[0].nan
    for p in parts[1:]:
        lo, hi, nan = np.minimum(lo, p.lo), np.maximum(hi, p.hi), nan | p.nan
    return Interval.make(lo, hi, nan, r.dtype)
