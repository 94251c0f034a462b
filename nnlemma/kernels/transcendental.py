"""Correctly rounded float32 transcendentals: exp, tanh, sigmoid, sin, cos.

Definition: the result is the float32 nearest (ties to even) to the exact real value f(x) of the
float32 input x, with IEEE overflow to ±inf and gradual underflow. The special values are
exp(+inf)=+inf, exp(−inf)=+0, tanh(±inf)=±1, sigmoid(+inf)=1, sigmoid(−inf)=+0, sin/cos(±inf)=NaN,
and signs of zero follow the odd functions (tanh(−0)=sin(−0)=−0).

How it is computed (and why it is correct):

1. Fast path: v = f(x) in float64 by numpy, then r = float32(v) (one RNE conversion). If the exact
   value y and v lie on the same side of every float32 rounding boundary (a midpoint between two
   adjacent float32 values, or the overflow threshold (2 − 2^-24)·2^127), then r = round32(y).
   We assume numpy's float64 functions are accurate to 2^-44 relative (256 float64 ulps; real
   libraries are within a few ulps; the audit issue checks this exhaustively). So if the distance
   from v to the nearest boundary exceeds 2^-40·|v| + 2^-1000, r is correct.
2. Otherwise (about one input in 10^4), and always for sin/cos with |x| > 2^17 where float64 range
   reduction is not trusted, the value is computed by MPFR (gmpy2), whose functions are correctly
   rounded: exp, tanh, sin, cos directly in a binary32 context (precision 24, emin −148, emax 128,
   subnormalize); sigmoid by Ziv's method: rigorous lower/upper enclosures 1/(1+exp(−x)) with
   directed rounding at increasing precision until both round to the same float32. Sigmoid is
   irrational for every float32 x ≠ 0 (Lindemann), so the loop terminates; sigmoid(0) = 1/2
   exactly.
"""

from __future__ import annotations

import gmpy2
import numpy as np

F32 = np.float32
_BINARY32 = gmpy2.context(precision=24, emin=-148, emax=128, subnormalize=True,
                          round=gmpy2.RoundToNearest)
_REL_BAND = 2.0 ** -40
_ABS_BAND = 2.0 ** -1000
_TRIG_FAST_LIMIT = 2.0 ** 17
_OVERFLOW = 2.0 ** 128


def _sigmoid64(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    pos = 1.0 / (1.0 + e)
    return np.where(x >= 0, pos, e / (1.0 + e))


_FAST = {"exp": np.exp, "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "sigmoid": _sigmoid64}


def _mpfr_sigmoid(x: float) -> float:
    if x == 0.0:
        return 0.5
    prec = 64
    while True:
        with gmpy2.context(precision=prec, round=gmpy2.RoundUp):
            e_up = gmpy2.exp(-gmpy2.mpfr(x))
            d_up = 1 + e_up
        with gmpy2.context(precision=prec, round=gmpy2.RoundDown):
            lo = 1 / d_up
            e_dn = gmpy2.exp(-gmpy2.mpfr(x))
            d_dn = 1 + e_dn
        with gmpy2.context(precision=prec, round=gmpy2.RoundUp):
            hi = 1 / d_dn
        with gmpy2.context(_BINARY32) as ctx:
            a, b = float(ctx.plus(lo)), float(ctx.plus(hi))
        if a == b:
            return a
        prec *= 2


_MPFR_FN = {"exp": gmpy2.exp, "tanh": gmpy2.tanh, "sin": gmpy2.sin, "cos": gmpy2.cos}


def mpfr_eval(name: str, x: float) -> float:
    """Correctly rounded float32 value of ``name`` at the float32 ``x`` (returned as a Python float)."""
    if x != x:
        return float("nan")
    if name == "sigmoid":
        return _mpfr_sigmoid(x)
    with gmpy2.context(_BINARY32):
        return float(_MPFR_FN[name](gmpy2.mpfr(x)))


def _boundary_distance(v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Distance from v (float64) to the nearest float32 rounding boundary around r = round32(v)."""
    r64 = r.astype(np.float64)
    r64 = np.where(np.isinf(r64), np.copysign(_OVERFLOW, r64), r64)  # overflowed: compare at 2^128
    up = np.nextafter(r, F32(np.inf)).astype(np.float64)
    dn = np.nextafter(r, F32(-np.inf)).astype(np.float64)
    up = np.where(np.isinf(up), _OVERFLOW, up)
    dn = np.where(np.isinf(dn), -_OVERFLOW, dn)
    return np.minimum(np.abs(v - (r64 + up) / 2), np.abs(v - (r64 + dn) / 2))


def correctly_rounded(name: str, x: np.ndarray) -> np.ndarray:
    """Elementwise correctly rounded ``name`` (exp, tanh, sigmoid, sin, cos) of a float32 array."""
    x = np.ascontiguousarray(x, dtype=F32)  # C order: the flat views below must alias r
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        v = _FAST[name](x64)
        r = v.astype(F32)
        dist = _boundary_distance(v, r)
        slow = np.isfinite(v) & ~(dist > np.abs(v) * _REL_BAND + _ABS_BAND)
    if name in ("sin", "cos"):
        slow |= np.isfinite(x64) & (np.abs(x64) > _TRIG_FAST_LIMIT)
    if slow.any():
        r = np.array(r, copy=True)
        flat_x, flat_r, flat_slow = x.reshape(-1), r.reshape(-1), slow.reshape(-1)
        for i in np.flatnonzero(flat_slow):
            flat_r[i] = mpfr_eval(name, float(flat_x[i]))
    return r


def exp(x):
    return correctly_rounded("exp", x)


def tanh(x):
    return correctly_rounded("tanh", x)


def sigmoid(x):
    return correctly_rounded("sigmoid", x)


def sin(x):
    return correctly_rounded("sin", x)


def cos(x):
    return correctly_rounded("cos", x)
