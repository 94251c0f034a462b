"""Float32 boxes: the discrete sets ``{x float32 : lo <= x <= hi}`` (IEEE comparison, so a box
holding 0 holds both −0 and +0), exact splitting, counting and enumeration.

Splitting ``[lo, hi]`` at a float32 ``m`` with ``lo <= m < hi`` gives ``[lo, m]`` and
``[next_up(m), hi]``: every float32 x of the parent satisfies exactly one of ``x <= m`` and
``x >= next_up(m)`` (there is no float32 strictly between m and next_up(m); the two zeros compare
equal and stay together), so the children partition the parent's points exactly.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def ordinal(x: np.ndarray) -> np.ndarray:
    """A strictly increasing int64 map of float32 values (−0 maps just below +0)."""
    b = np.asarray(x, F32).view(np.uint32).astype(np.int64)
    return np.where(b & 0x80000000, -(b & 0x7FFFFFFF) - 1, b)


def from_ordinal(o: np.ndarray) -> np.ndarray:
    o = np.asarray(o, np.int64)
    bits = np.where(o < 0, (-(o + 1)) | 0x80000000, o).astype(np.uint32)
    return bits.view(F32)


def canonical(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make zero endpoints explicit: a lower bound 0 becomes −0, an upper bound 0 becomes +0, so
    ordinal ranges include both zeros exactly when the box does."""
    lo = np.where(lo == 0, F32(-0.0), lo).astype(F32)
    hi = np.where(hi == 0, F32(0.0), hi).astype(F32)
    return lo, hi


def point_counts(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Number of float32 values per coordinate (``[..., n]`` -> ``[..., n]`` as float64)."""
    lo, hi = canonical(lo, hi)
    return (ordinal(hi) - ordinal(lo) + 1).astype(np.float64)


def enumerate_points(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """All float32 points of one box ``[n]`` as ``[count, n]`` (caller bounds the count)."""
    lo, hi = canonical(lo, hi)
    axes = [from_ordinal(np.arange(a, b + 1)) for a, b in zip(ordinal(lo), ordinal(hi))]
    grids = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1).astype(F32)


def split_point(lo: F32, hi: F32) -> F32:
    """A float32 m with lo <= m < hi near the real midpoint (requires lo < hi)."""
    m = F32((float(lo) + float(hi)) / 2)
    if m >= hi:
        m = np.nextafter(hi, F32(-np.inf))
    if m < lo:
        m = lo
    return F32(m)


def split(lo: np.ndarray, hi: np.ndarray, dim: int) -> tuple[tuple, tuple, F32]:
    """Children ``(lo1, hi1), (lo2, hi2)`` of box ``[n]`` along ``dim`` and the split value."""
    m = split_point(lo[dim], hi[dim])
    hi1 = hi.copy()
    hi1[dim] = m
    lo2 = lo.copy()
    lo2[dim] = np.nextafter(m, F32(np.inf))  # m = ±0: both zeros stay left (they compare equal)
    return (lo.copy(), hi1), (lo2, hi.copy()), m


def splittable(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Coordinates with at least two distinct values (zeros count as one value)."""
    return hi > lo
