"""Bit-level helpers for IEEE binary32: canonical NaN, bit views, ulp neighbours."""

from __future__ import annotations

import numpy as np

F32 = np.float32
CANONICAL_NAN_BITS = np.uint32(0x7FC00000)
CANONICAL_NAN = np.array(CANONICAL_NAN_BITS, dtype=np.uint32).view(np.float32)[()]
MAX_FINITE = np.finfo(np.float32).max


def bits(x: np.ndarray) -> np.ndarray:
    """The uint32 bit patterns of a float32 array (a view)."""
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def from_bits(b) -> np.ndarray:
    return np.asarray(b, dtype=np.uint32).view(np.float32)


def canon(x: np.ndarray) -> np.ndarray:
    """Replace every NaN by the canonical quiet NaN 0x7FC00000 (in place when possible)."""
    x = np.asarray(x, dtype=np.float32)
    nan = np.isnan(x)
    if nan.any():
        x = np.array(x, copy=True)
        x[nan] = CANONICAL_NAN
    return x


def next_up(x: np.ndarray) -> np.ndarray:
    return np.nextafter(np.asarray(x, np.float32), np.float32(np.inf))


def next_down(x: np.ndarray) -> np.ndarray:
    return np.nextafter(np.asarray(x, np.float32), np.float32(-np.inf))


def same_bits(a, b) -> bool:
    """True iff two float32 arrays have the same shape and identical bit patterns."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    return a.shape == b.shape and bool(np.array_equal(bits(a), bits(b)))
