"""Sound linear relaxations of activations over an input interval, in exact arithmetic.

For ``y = f(x)`` with ``x in [l, u]`` a relaxation is two lines ``a_lo·x + b_lo <= f(x) <=
a_hi·x + b_hi`` that hold for every *real* x in the interval. Slopes are chosen by the usual
CROWN heuristics (in float64, so only approximately), then the intercepts are computed with
directed rounding so that the inequalities hold *exactly for the float64 slopes actually used*:

* ReLU and LeakyReLU(alpha <= 1) are convex, so a line lies above them on [l, u] iff it lies above
  at both endpoints: ``b_hi = max(f(l) − a·l, f(u) − a·u)`` rounded up. A line through the origin
  with slope in [alpha, 1] lies below them everywhere, so ``b_lo = 0`` is exact.

* step (1 for x > 0, else 0): stable elements are the constants 0 (u <= 0) or 1 (l > 0); for
  l <= 0 < u the lower line ``a·x`` with ``0 <= a <= 1/u`` lies below (``a·x <= 0`` for x <= 0,
  ``a·x <= x/u <= 1`` on (0, u]), and the upper line ``1 + c·x`` with ``0 <= c <= 1/|l|`` lies
  above (``>= 1`` for x > 0; ``>= 1 + x/|l| >= 0`` on [l, 0]); the slopes are ``1/u`` and
  ``1/|l|`` rounded down (0 when that overflows, or when l = 0: the flat line ``y = 1``). step
  is exact (0 or 1), so there is no rounding term.

Arrays are float64; l <= u elementwise and finite (callers cut non-finite intervals first).
"""

from __future__ import annotations

import numpy as np

MIN_SLOPE = 2.0 ** -400
_DOWN = -np.inf
_UP = np.inf


def _up(v):
    return np.nextafter(v, _UP)


def _down(v):
    return np.nextafter(v, _DOWN)


def step_relaxation(l: np.ndarray, u: np.ndarray):
    """(a_lo, b_lo, a_hi, b_hi) of step on [l, u] (see the module docstring)."""
    l, u = np.asarray(l, np.float64), np.asarray(u, np.float64)
    off, on = (u <= 0), (l > 0)     # stable: step is 0 / 1 on the whole interval
    with np.errstate(all="ignore"):
        a_lo = _down(1.0 / u)
        a_hi = np.where(l < 0, _down(1.0 / -l), 0.0)
    a_lo = np.where(np.isfinite(a_lo) & (a_lo > 0), a_lo, 0.0)
    a_hi = np.where(np.isfinite(a_hi) & (a_hi > 0), a_hi, 0.0)
    a_lo = np.where(off | on, 0.0, a_lo)
    a_hi = np.where(off | on, 0.0, a_hi)
    b_lo = np.where(on, 1.0, 0.0)
    b_hi = np.where(off, 0.0, 1.0)
    return a_lo, b_lo, a_hi, b_hi


def upper_line_convex(l: np.ndarray, u: np.ndarray, fl: np.ndarray, fu: np.ndarray, slope: np.ndarray):
    """Intercept b such that slope·x + b >= f(x) on [l, u] for a convex f with f(l) = fl and
    f(u) = fu exactly (float64 values): b >= f(e) − slope·e at both endpoints, rounded up."""
    with np.errstate(all="ignore"):
        # _down(slope * e) <= the exact product, so fe minus it is >= fe − slope·e; rounding the
        # difference up keeps the inequality.
        b1 = _up(fl - _down(slope * l))
        b2 = _up(fu - _down(slope * u))
    return np.maximum(b1, b2)


def relu_relaxation(l: np.ndarray, u: np.ndarray, alpha_lo: np.ndarray | None = None, negative_slope: float = 0.0):
    """(a_lo, b_lo, a_hi, b_hi) for ``max(x, negative_slope·x)`` on [l, u] (0 <= slope < 1).

    Stable intervals get the exact function (identity or the negative-branch line); unstable ones
    the chord above and a line through the origin with slope ``alpha_lo`` in [negative_slope, 1]
    below (default: 1 if u > −l else negative_slope, CROWN's adaptive choice)."""
    s = float(negative_slope)
    l = np.asarray(l, np.float64)
    u = np.asarray(u, np.float64)
    pos = l >= 0
    neg = u <= 0
    unstable = ~pos & ~neg
    if alpha_lo is None:
        alpha_lo = np.where(u > -l, 1.0, s)
    alpha_lo = np.clip(np.where(np.isnan(alpha_lo), s, alpha_lo), s, 1.0)
    # a nonzero slope below 2^-400 could make later float64 products underflow (outside the
    # relative error model of the backward pass): use 0 instead, a valid lower slope when s = 0
    alpha_lo = np.where(alpha_lo < MIN_SLOPE, s, alpha_lo)
    with np.errstate(all="ignore"):
        chord = np.where(unstable, (u - s * l) / np.where(unstable, u - l, 1.0), 0.0)
    # u − l or u − s·l can overflow for huge real-semantics intervals: a NaN chord becomes the
    # flat line at u below (always valid), never a NaN coefficient
    chord = np.where(np.isnan(chord), 0.0, chord)
    chord = np.clip(chord, s, 1.0)  # the exact chord slope lies in [s, 1]; keep the float one there
    # likewise a tiny chord slope: the flat line at u is above the function on [l, u] (max(u, s·u))
    flat = chord < MIN_SLOPE
    chord = np.where(flat, 0.0, chord)
    # the intercepts only matter where unstable: computed there alone (deep in a search most
    # elements are stable, and the directed roundings are the costly part)
    b_hi_unstable = np.zeros_like(l)
    if unstable.any():
        lu, uu, cu = l[unstable], u[unstable], chord[unstable]
        fl_up = np.zeros_like(lu) if s == 0 else _up(s * lu)  # >= f(l) = s·l (l < 0 when unstable)
        b_hi_unstable[unstable] = np.where(flat[unstable], uu, upper_line_convex(lu, uu, fl_up, uu, cu))
    a_lo = np.where(pos, 1.0, np.where(neg, s, alpha_lo))
    b_lo = np.zeros_like(l)
    a_hi = np.where(pos, 1.0, np.where(neg, s, chord))
    b_hi = np.where(unstable, b_hi_unstable, 0.0)
    return a_lo, b_lo, a_hi, b_hi
