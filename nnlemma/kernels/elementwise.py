"""Elementwise float32 rules: exact sign ops, IEEE-2019 maximum/minimum, rounded arithmetic.

All arithmetic is numpy float32 ufuncs, which perform one IEEE binary32 round-to-nearest-even
operation per element (no contraction, gradual underflow). ``maximum``/``minimum`` are written out
with comparisons because numpy's versions do not pin the (+0, −0) case; they follow IEEE 754-2019
``maximum``/``minimum``: NaN propagates and −0 < +0.
"""

from __future__ import annotations

import numpy as np

from .float32 import bits, from_bits

F32 = np.float32
_SIGN = np.uint32(0x80000000)


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=F32)


def neg(x):
    return from_bits(bits(_f(x)) ^ _SIGN)


def abs_(x):
    return from_bits(bits(_f(x)) & ~_SIGN)


def maximum(a, b):
    a, b = np.broadcast_arrays(_f(a), _f(b))
    out = np.where(a > b, a, b)
    both_zero = (a == 0) & (b == 0)
    if both_zero.any():  # +0 unless both are -0: AND of the bit patterns
        out = np.where(both_zero, from_bits(bits(a) & bits(b)), out)
    return np.where(np.isnan(a) | np.isnan(b), F32(np.nan), out).astype(F32)


def minimum(a, b):
    a, b = np.broadcast_arrays(_f(a), _f(b))
    out = np.where(a < b, a, b)
    both_zero = (a == 0) & (b == 0)
    if both_zero.any():  # -0 if either is -0: OR of the bit patterns
        out = np.where(both_zero, from_bits(bits(a) | bits(b)), out)
    return np.where(np.isnan(a) | np.isnan(b), F32(np.nan), out).astype(F32)


def relu(x):
    x = _f(x)
    return np.where(x > 0, x, np.where(np.isnan(x), x, F32(0.0))).astype(F32)


def step(x):
    """Heaviside: 1 where x > 0, NaN where NaN, +0 elsewhere (both zeros and −inf give +0)."""
    x = _f(x)
    return np.where(x > 0, F32(1.0), np.where(np.isnan(x), x, F32(0.0))).astype(F32)


def leaky_relu(x, alpha):
    x = _f(x)
    return np.where(x > 0, x, np.multiply(F32(alpha), x, dtype=F32)).astype(F32)


def clamp(x, lo, hi):
    return minimum(maximum(x, F32(lo)), F32(hi))


def add(a, b):
    return np.add(_f(a), _f(b), dtype=F32)


def sub(a, b):
    return np.subtract(_f(a), _f(b), dtype=F32)


def mul(a, b):
    return np.multiply(_f(a), _f(b), dtype=F32)


def div(a, b):
    return np.divide(_f(a), _f(b), dtype=F32)


def square(x):
    x = _f(x)
    return np.multiply(x, x, dtype=F32)


def sqrt(x):
    return np.sqrt(_f(x), dtype=F32)
