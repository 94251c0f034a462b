"""Reference implementations of the unary float32 ops, written independently of the kernel.

The kernel (:mod:`nnlemma.kernels`) computes with numpy float32 ufuncs and comparisons; these
references compute from the IEEE definitions by other means, so the audit compares two
independent routes:

* sign and piecewise-linear ops (identity, neg, abs, relu, step, leaky_relu, clamp) by integer
  logic on the bit patterns (sign bit, exponent and fraction fields), with products formed exactly
  in float64 and rounded once to float32 (a 24x24-bit product is exact in 53 bits);
* ``square`` and ``sqrt`` in float64 then one rounding to float32 — exact for the product, and
  correct for sqrt because double rounding is innocuous for √ when 53 >= 2·24 + 2 (Figueroa);
* the transcendentals (exp, tanh, sigmoid, sin, cos) by float64 numpy, trusted only away from a
  float32 rounding boundary: results within ``BAND`` (2^-38, relative, 64 times the kernel's own
  band) of a midpoint between float32 neighbours, or past the overflow threshold's band, are
  recomputed by **mpmath** at 120 bits (full range reduction for large sin/cos arguments) and
  rounded to nearest-even by exact comparison with the midpoint — mpmath, not the MPFR the kernel
  uses for its own slow path.

A reference maps a float32 array to a float32 array; NaN outputs are compared as "NaN" (the
payload is not part of the semantics).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..verify.boxes import ordinal

F32 = np.float32
U32 = np.uint32
SIGN = U32(0x80000000)
EXP = U32(0x7F800000)
FRAC = U32(0x007FFFFF)
BAND = 2.0 ** -38


def _bits(x):
    return np.asarray(x, F32).view(U32)


def _is_nan(b):
    return ((b & EXP) == EXP) & ((b & FRAC) != 0)


def _is_neg(b):
    return (b & SIGN) != 0


def _is_zero(b):
    return (b & ~SIGN) == 0


def _positive(b):
    """x > 0: sign clear, not zero, not NaN."""
    return ~_is_neg(b) & ~_is_zero(b) & ~_is_nan(b)


def _f(b):
    return np.asarray(b, U32).view(F32)


def _round64(v: np.ndarray) -> np.ndarray:
    """float64 -> float32, nearest even (numpy's astype is IEEE RNE with overflow to inf)."""
    with np.errstate(over="ignore"):
        return v.astype(F32)


def identity(x):
    return np.array(x, F32)


def neg(x):
    return _f(_bits(x) ^ SIGN)


def abs_(x):
    return _f(_bits(x) & ~SIGN)


def relu(x):
    b = _bits(x)
    return np.where(_is_nan(b), x, np.where(_positive(b), x, F32(0.0))).astype(F32)


def step(x):
    b = _bits(x)
    return np.where(_is_nan(b), F32(np.nan), np.where(_positive(b), F32(1.0), F32(0.0))).astype(F32)


def leaky_relu(x, alpha):
    b = _bits(x)
    prod = _round64(np.float64(F32(alpha)) * np.asarray(x, np.float64))  # exact product, one rounding
    return np.where(_positive(b), x, prod).astype(F32)


def clamp(x, lo, hi):
    """IEEE-2019 minimum(maximum(x, lo), hi), by the integer order of bit patterns."""
    b = _bits(x)
    kl, kh = ordinal(np.array(lo, F32)), ordinal(np.array(hi, F32))
    k = ordinal(x)
    out = np.where(k < kl, F32(lo), x)
    out = np.where(k > kh, F32(hi), out)
    return np.where(_is_nan(b), x, out).astype(F32)


def square(x):
    return _round64(np.asarray(x, np.float64) ** 2)


def sqrt(x):
    with np.errstate(invalid="ignore"):
        return _round64(np.sqrt(np.asarray(x, np.float64)))


_F64 = {"exp": np.exp, "tanh": np.tanh, "sin": np.sin, "cos": np.cos,
        "sigmoid": lambda v: np.where(v >= 0, 1 / (1 + np.exp(-np.abs(v))), np.exp(-np.abs(v)) / (1 + np.exp(-np.abs(v))))}
_OVER = 2.0 ** 128 * (1 - 2.0 ** -25)   # the float32 overflow threshold (2 − 2^-24)·2^127


def _mp_value(name: str, x: float):
    import mpmath
    with mpmath.workprec(120):
        v = mpmath.mpf(x)
        if name == "sigmoid":
            return 1 / (1 + mpmath.exp(-v))
        return {"exp": mpmath.exp, "tanh": mpmath.tanh, "sin": mpmath.sin, "cos": mpmath.cos}[name](v)


def _round_exact(y) -> np.float32:
    """Nearest-even float32 of the mpmath value y (decided by exact comparison with midpoints;
    120 bits leave no transcendental value of a float32 argument on a midpoint)."""
    import mpmath
    # y is used as it is: mpmath.mpf(y) would re-round it to the default 53 bits (a value just
    # below a float32 midpoint would become the midpoint)
    if abs(y) >= _OVER:  # decided before any exact conversion (an exponent of 10^38 is no Fraction)
        return F32(np.inf) if y > 0 else F32(-np.inf)
    if abs(y) <= mpmath.ldexp(1, -150):  # at most half the smallest subnormal: rounds to ±0 (ties to even)
        return F32(-0.0) if y < 0 else F32(0.0)
    sign, man, exp, _ = y._mpf_
    q = (-1) ** sign * Fraction(int(man)) * Fraction(2) ** int(exp)
    r = F32(float(q))  # within a float32 ulp; fix up by midpoint comparisons
    for _ in range(4):
        up, dn = np.nextafter(r, F32(np.inf)), np.nextafter(r, F32(-np.inf))
        mid_up = (Fraction(float(r)) + Fraction(float(up))) / 2 if np.isfinite(up) else Fraction(_OVER)
        mid_dn = (Fraction(float(r)) + Fraction(float(dn))) / 2 if np.isfinite(dn) else -Fraction(_OVER)
        if q > mid_up or (q == mid_up and int(_bits(r)) & 1):
            r = up
        elif q < mid_dn or (q == mid_dn and int(_bits(r)) & 1):
            r = dn
        else:
            return r
    return r


def transcendental(name: str):
    def ref(x):
        x = np.asarray(x, F32)
        x64 = x.astype(np.float64)
        with np.errstate(all="ignore"):
            v = _F64[name](x64)
            r = _round64(v)
            r64 = r.astype(np.float64)
            up = np.nextafter(r, F32(np.inf)).astype(np.float64)
            dn = np.nextafter(r, F32(-np.inf)).astype(np.float64)
            dist = np.minimum(np.abs(v - (r64 + up) / 2), np.abs(v - (r64 + dn) / 2))
            near = np.isfinite(v) & ~(dist > np.abs(v) * BAND + 2.0 ** -1000)
            near |= np.isfinite(v) & (np.abs(v) > _OVER * (1 - BAND))
        if name in ("sin", "cos"):
            near |= np.isfinite(x64) & (np.abs(x64) > 2.0 ** 17)
        near &= np.isfinite(x64)
        r = np.array(r, copy=True)
        for i in np.flatnonzero(near.reshape(-1)):
            r.reshape(-1)[i] = _round_exact(_mp_value(name, float(x.reshape(-1)[i])))
        special = ~np.isfinite(x64)
        if special.any():  # ±inf and NaN by the definitions (SEMANTICS.md)
            table = {"exp": (np.inf, 0.0), "tanh": (1.0, -1.0), "sigmoid": (1.0, 0.0),
                     "sin": (np.nan, np.nan), "cos": (np.nan, np.nan)}[name]
            r = np.where(np.isnan(x64), F32(np.nan),
                         np.where(special & (x64 > 0), F32(table[0]),
                                  np.where(special & (x64 < 0), F32(table[1]), r))).astype(F32)
        return r.astype(F32)
    ref.__name__ = name
    return ref


REFERENCES = {
    "identity": identity, "neg": neg, "abs": abs_, "relu": relu, "step": step,
    "leaky_relu": leaky_relu, "clamp": clamp, "square": square, "sqrt": sqrt,
    **{n: transcendental(n) for n in ("exp", "tanh", "sigmoid", "sin", "cos")},
}
# attribute values audited for the ops that take them
ATTRS = {"leaky_relu": [{"alpha": 0.01}, {"alpha": 0.2}, {"alpha": 1.0}],
         "clamp": [{"lo": -1.0, "hi": 1.0}, {"lo": 0.0, "hi": 6.0}, {"lo": -0.0, "hi": 0.0}]}
