"""Intervals of float32 (or real) values, and the rounding models that make them sound.

An :class:`Interval` ``[lo, hi]`` (elementwise arrays) denotes every value ``v`` with
``lo <= v <= hi`` in IEEE comparison — so both zeros when 0 lies in it — plus NaN wherever the
``nan`` mask is set. ``lo``/``hi`` may be ±inf.

Two semantics share the rule code through a :class:`Rounding` model:

* :data:`FLOAT32` — the values are outputs of the float32 kernel. Every kernel operation is an IEEE
  round-to-nearest-even operation, which is *monotone*: ``a <= a'`` implies ``fl(a + b) <=
  fl(a' + b)``, and likewise for ``-``, ``*`` (per sign), ``/`` (per sign), sqrt. So the exact
  float32 range of ``fl(a op b)`` over intervals is reached at endpoints, and the bound is computed
  *by the kernel's own operations* — no widening is needed, and bounds can be attained.
* :data:`REAL` — the values are exact real numbers. Endpoints are float64 and every computed
  endpoint is rounded outward by one float64 ulp (``nextafter``), which encloses the exact real
  result of the operation on the endpoints (RNE error is at most half an ulp).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rounding:
    """How interval endpoints are computed: ``dtype`` and outward rounding (``widen``)."""

    name: str
    dtype: type
    widen: bool

    def down(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, self.dtype)
        return np.nextafter(v, self.dtype(-np.inf)) if self.widen else v

    def up(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, self.dtype)
        return np.nextafter(v, self.dtype(np.inf)) if self.widen else v


FLOAT32 = Rounding("float32", np.float32, widen=False)
REAL = Rounding("real", np.float64, widen=True)
SEMANTICS = {"float32": FLOAT32, "real": REAL}


@dataclass(frozen=True, eq=False)
class Interval:
    lo: np.ndarray
    hi: np.ndarray
    nan: np.ndarray  # bool, broadcast to lo's shape: NaN is possible here

    @staticmethod
    def make(lo, hi, nan=False, dtype=np.float32) -> "Interval":
        lo = np.asarray(lo, dtype)
        hi = np.asarray(hi, dtype)
        nan = np.broadcast_to(np.asarray(nan, np.bool_), lo.shape)
        # a NaN endpoint means "no information": widen to everything and flag NaN
        bad = np.isnan(lo) | np.isnan(hi)
        if bad.any():
            lo = np.where(bad, dtype(-np.inf), lo)
            hi = np.where(bad, dtype(np.inf), hi)
            nan = nan | bad
        return Interval(lo, hi, nan)

    @staticmethod
    def point(x, dtype=np.float32) -> "Interval":
        x = np.asarray(x, dtype)
        return Interval.make(x, x, np.isnan(x), dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.lo.shape

    def width(self) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            return self.hi.astype(np.float64) - self.lo.astype(np.float64)

    def finite(self) -> bool:
        """True iff every element is a finite, NaN-free interval."""
        return bool(np.all(np.isfinite(self.lo)) and np.all(np.isfinite(self.hi)) and not np.any(self.nan))

    def contains(self, x) -> np.ndarray:
        """Elementwise: ``x`` lies in the interval (exact comparison; NaN only where flagged)."""
        x = np.asarray(x)
        return np.where(np.isnan(x), self.nan, (self.lo <= x) & (x <= self.hi))

    def intersect(self, other: "Interval") -> "Interval":
        """Both are sound enclosures of the same values, so their intersection is too."""
        return Interval(np.maximum(self.lo, other.lo), np.minimum(self.hi, other.hi), self.nan & other.nan)

    def map(self, fn) -> "Interval":
        """Apply a data-movement function (reshape, slice, transpose) to every component."""
        return Interval(fn(self.lo), fn(self.hi), fn(np.broadcast_to(self.nan, self.lo.shape)))
