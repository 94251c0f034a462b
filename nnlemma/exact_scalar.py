"""Exact real values of single operations (:mod:`nnlemma.exact` applies them to whole graphs).

A value is a ``Fraction`` (exact), an mpmath interval at :data:`PREC` bits (a rigorous enclosure
of an irrational value, rounded outward), :data:`UNDEF` (no real value: x/0, sqrt of a negative)
or :data:`UNSURE` (the enclosure cannot decide a case split). ``s_op`` computes ``op`` on such
values; see :mod:`nnlemma.exact` for the formulas' accuracy.
"""

from __future__ import annotations

import math
from fractions import Fraction

from mpmath import iv, mp, mpf

PREC = 300

IV = type(iv.mpf(1))


class _Tag:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


UNDEF = _Tag("UNDEF")
UNSURE = _Tag("UNSURE")


# -- scalar helpers ----------------------------------------------------------------------------

def to_iv(v):
    """A rigorous 300-bit interval around a Fraction (or the interval itself)."""
    if isinstance(v, IV):
        return v
    if isinstance(v, mpf):  # an endpoint of a 300-bit interval: representable, converted exactly
        return iv.mpf((v, v))
    return iv.mpf(v.numerator) / iv.mpf(v.denominator)


def _ends(v: IV) -> tuple[mpf, mpf]:
    """The exact endpoints of an interval, as mpf (raw values, no rounding)."""
    a, b = v._mpi_
    return mp.make_mpf(a), mp.make_mpf(b)


def _mk(lo: mpf, hi: mpf) -> IV:
    return iv.mpf((lo, hi))


def _special(*xs):
    for x in xs:
        if x is UNDEF:
            return UNDEF
    for x in xs:
        if x is UNSURE:
            return UNSURE
    return None


def s_add(a, b):
    sp = _special(a, b)
    if sp is not None:
        return sp
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a + b
    return to_iv(a) + to_iv(b)


def s_neg(a):
    if a is UNDEF or a is UNSURE:
        return a
    return -a


def s_sub(a, b):
    return s_add(a, s_neg(b))


def s_mul(a, b):
    sp = _special(a, b)
    if sp is not None:
        return sp
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a * b
    if (isinstance(a, Fraction) and a == 0) or (isinstance(b, Fraction) and b == 0):
        return Fraction(0)
    return to_iv(a) * to_iv(b)


def _straddles_zero(v: IV) -> bool:
    lo, hi = _ends(v)
    return lo <= 0 <= hi


def s_div(a, b):
    sp = _special(a, b)
    if sp is not None:
        return sp
    if isinstance(b, Fraction):
        if b == 0:
            return UNDEF
        if isinstance(a, Fraction):
            return a / b
    elif _straddles_zero(b):
        return UNSURE
    if isinstance(a, Fraction) and a == 0:
        return Fraction(0)
    return to_iv(a) / to_iv(b)


def s_max(a, b):
    sp = _special(a, b)
    if sp is not None:
        return sp
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return max(a, b)
    (alo, ahi), (blo, bhi) = _ends(to_iv(a)), _ends(to_iv(b))
    return _mk(max(alo, blo), max(ahi, bhi))


def s_min(a, b):
    sp = _special(a, b)
    if sp is not None:
        return sp
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return min(a, b)
    (alo, ahi), (blo, bhi) = _ends(to_iv(a)), _ends(to_iv(b))
    return _mk(min(alo, blo), min(ahi, bhi))


def s_abs(a):
    if a is UNDEF or a is UNSURE:
        return a
    if isinstance(a, Fraction):
        return abs(a)
    lo, hi = _ends(a)
    if lo >= 0:
        return a
    if hi <= 0:
        return -a
    return _mk(mpf(0), max(-lo, hi))


def s_relu(a):
    return s_max(a, Fraction(0))


def s_step(a):
    """Heaviside H(x) = 1 for x > 0, else 0 (H(0) = 0): exact, or UNSURE when the enclosure
    straddles 0."""
    if a is UNDEF or a is UNSURE:
        return a
    if isinstance(a, Fraction):
        return Fraction(1) if a > 0 else Fraction(0)
    lo, hi = _ends(a)
    if lo > 0:
        return Fraction(1)
    if hi <= 0:
        return Fraction(0)
    return UNSURE


def s_leaky(a, alpha: Fraction):
    if a is UNDEF or a is UNSURE:
        return a
    if isinstance(a, Fraction):
        return a if a > 0 else alpha * a
    lo, hi = _ends(a)
    # non-decreasing for alpha > 0
    nlo = to_iv(lo) if lo > 0 else to_iv(alpha) * to_iv(lo)
    nhi = to_iv(hi) if hi > 0 else to_iv(alpha) * to_iv(hi)
    return _mk(_ends(nlo)[0], _ends(nhi)[1])


def _bound(x: float):
    """A clamp attribute (a float32 value, maybe ±inf) as a Fraction, or None for ±inf."""
    return None if math.isinf(x) else Fraction(x)


def s_clamp(a, lo: float, hi: float):
    flo, fhi = _bound(lo), _bound(hi)
    if flo is None and lo > 0 or fhi is None and hi < 0:
        raise ValueError("clamp to an infinite constant has no real value")
    if flo is not None:
        a = s_max(a, flo)
    if fhi is not None:
        a = s_min(a, fhi)
    return a


def s_square(a):
    sp = _special(a)
    if sp is not None:
        return sp
    if isinstance(a, Fraction):
        return a * a
    m = s_abs(a)
    return m * m


def _rational_sqrt(q: Fraction):
    n, d = q.numerator, q.denominator
    rn, rd = math.isqrt(n), math.isqrt(d)
    if rn * rn == n and rd * rd == d:
        return Fraction(rn, rd)
    return None


def s_sqrt(a):
    sp = _special(a)
    if sp is not None:
        return sp
    if isinstance(a, Fraction):
        if a < 0:
            return UNDEF
        r = _rational_sqrt(a)
        return r if r is not None else iv.sqrt(to_iv(a))
    lo, hi = _ends(a)
    if hi < 0:
        return UNDEF
    if lo < 0:
        return UNSURE
    return iv.sqrt(a)


def _exp(x):
    return iv.exp(x)


def s_exp(a):
    sp = _special(a)
    if sp is not None:
        return sp
    if isinstance(a, Fraction) and a == 0:
        return Fraction(1)
    return _exp(to_iv(a))


def s_tanh(a):
    sp = _special(a)
    if sp is not None:
        return sp
    if isinstance(a, Fraction) and a == 0:
        return Fraction(0)
    x = to_iv(a)
    lo, hi = _ends(x)
    if hi < -0.5 or lo > 0.5:
        # |x| > 1/2: tanh(x) = ±(1 - 2/(exp(2|x|) + 1)), |x| occurs once (no dependency, value ~1)
        s = 1 if lo > 0 else -1
        return s * (1 - 2 / (_exp(2 * (s * x)) + 1))
    # |x| <= 1/2: t / (t + 2) with t = expm1(2x), free of cancellation for tiny |x| (t occurs twice,
    # but t is bounded here, so the dependency only costs ~2^-299 relative)
    t = iv.expm1(2 * x)
    return t / (t + 2)


def s_sigmoid(a):
    sp = _special(a)
    if sp is not None:
        return sp
    if isinstance(a, Fraction) and a == 0:
        return Fraction(1, 2)
    return 1 / (1 + _exp(-to_iv(a)))


def s_sin(a):
    sp = _special(a)
    if sp is not None:
        return sp
    if isinstance(a, Fraction) and a == 0:
        return Fraction(0)
    return iv.sin(to_iv(a))


def s_cos(a):
    sp = _special(a)
    if sp is not None:
        return sp
    if isinstance(a, Fraction) and a == 0:
        return Fraction(1)
    return iv.cos(to_iv(a))


def s_sum(vals):
    acc = Fraction(0)
    for v in vals:
        acc = s_add(acc, v)
    return acc
