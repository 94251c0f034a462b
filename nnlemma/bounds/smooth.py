"""Sound linear relaxations of tanh and sigmoid over an input interval, in exact arithmetic.

Both functions are increasing, convex on x <= 0 and concave on x >= 0 (sigmoid − 1/2 is odd, like
tanh). For ``x in [l, u]`` a relaxation is two lines ``a_lo·x + b_lo <= f(x) <= a_hi·x + b_hi``
that hold for every *real* x in the interval. The slopes are heuristics computed in float64 (any
finite slope is allowed); soundness rests only on the intercepts, which bound ``g(x) = f(x) − a·x``:

    b_hi >= max over [l, u] of g,     b_lo <= min over [l, u] of g.

The interval is cut at 0 into a convex and a concave part, and on each part:

* where g is convex (x <= 0), its maximum is at an end of the part; where g is concave (x >= 0),
  its minimum is at an end;
* where g is concave, every tangent lies above it: ``g(x) <= g(c) + g'(c)·(x − c)`` for any c in
  the part (c is put near the maximiser, where ``f'(c) = a``, so the tangent is nearly flat); the
  right side is linear in x, so its maximum over the part is at an end. Where g is convex the
  tangent lies below, giving the minimum the same way.

Every value of f is enclosed rigorously: the float64 library value, widened by twice the relative
accuracy assumed of numpy's float64 tanh/exp (:data:`nnlemma.bounds.ibp._F64_FN_REL`, the same
trust assumption the kernel's correctly rounded transcendentals rest on; see TRUST.md — twice,
because sigmoid is computed as exp, then an add and a division, each rounded once more), and every
operation on the enclosures is rounded outward with ``nextafter``. ``f'`` is enclosed from the
enclosure of f (``tanh' = 1 − tanh²``, ``sigmoid' = s·(1 − s)``). So the intercepts hold for the
float64 slopes actually used. Arrays are float64 with ``l <= u``, both finite (callers cut others).
Near the float64 limits an intercept can come out infinite (never NaN: an undetermined value is
replaced by the infinity on the safe side); :func:`nnlemma.bounds.common.relaxation` then cuts the
node instead of relaxing it.
"""

from __future__ import annotations

import numpy as np

from .ibp import _F64, _F64_FN_REL

SMOOTH = ("tanh", "sigmoid")
_RANGE = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
_MAX_SLOPE = {"tanh": 1.0, "sigmoid": 0.25}


def _up(v):
    return np.nextafter(v, np.inf)


def _down(v):
    return np.nextafter(v, -np.inf)


def enclose(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``lo <= f(x) <= hi`` for every float64 x (rigorous under the stated accuracy assumption)."""
    with np.errstate(all="ignore"):
        v = _F64[name](x)
        pad = np.abs(v) * (2 * _F64_FN_REL) + 2.0 ** -1000
        lo, hi = _down(v - pad), _up(v + pad)
    return np.clip(lo, *_RANGE[name]), np.clip(hi, *_RANGE[name])


def _derivative(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Enclosure ``[d_lo, d_hi]`` of f'(x)."""
    lo, hi = enclose(name, x)
    if name == "tanh":  # 1 − t², t in [lo, hi]: t² is in [min, max] of the endpoint squares (or 0)
        sq_max = _up(np.maximum(lo * lo, hi * hi))
        sq_min = np.where((lo <= 0) & (hi >= 0), 0.0, _down(np.minimum(lo * lo, hi * hi)))
        return np.maximum(_down(1.0 - sq_max), 0.0), np.minimum(_up(1.0 - sq_min), 1.0)
    # s·(1 − s) increases on s <= 1/2 and decreases after: the extremes are at the ends or 1/2
    p_lo, p_hi = _down(lo * _down(1.0 - lo)), _up(lo * _up(1.0 - lo))
    q_lo, q_hi = _down(hi * _down(1.0 - hi)), _up(hi * _up(1.0 - hi))
    top = np.where((lo <= 0.5) & (hi >= 0.5), 0.25, np.maximum(p_hi, q_hi))
    return np.maximum(np.minimum(p_lo, q_lo), 0.0), np.minimum(top, 0.25)


def _g_hi(name, a, x):
    """Upper bound of f(x) − a·x."""
    return _up(enclose(name, x)[1] - _down(a * x))


def _g_lo(name, a, x):
    """Lower bound of f(x) − a·x."""
    return _down(enclose(name, x)[0] - _up(a * x))


def _tangent_bound(name, a, c, p, q, upper: bool):
    """Bound of ``g(c) + g'(c)·(x − c)`` over x in {p, q}: its max (``upper``) or min."""
    d_lo, d_hi = _derivative(name, c)
    gd_lo, gd_hi = _down(d_lo - a), _up(d_hi - a)  # g'(c) = f'(c) − a
    vals = []
    for x in (p, q):
        e_lo, e_hi = _down(x - c), _up(x - c)
        prods = [gd_lo * e_lo, gd_lo * e_hi, gd_hi * e_lo, gd_hi * e_hi]
        vals.append(_up(np.maximum.reduce(prods)) if upper else _down(np.minimum.reduce(prods)))
    if upper:
        return _up(_g_hi(name, a, c) + _up(np.maximum(vals[0], vals[1])))
    return _down(_g_lo(name, a, c) + _down(np.minimum(vals[0], vals[1])))


def _critical(name: str, a: np.ndarray) -> np.ndarray:
    """The x >= 0 where f'(x) = a (float64 estimate; 0 for a at or above the peak slope, a large
    value for a <= 0). Only a tangent point: any value is sound."""
    with np.errstate(all="ignore"):
        if name == "tanh":
            x = np.arctanh(np.sqrt(np.clip(1.0 - a, 0.0, 1.0)))
        else:
            s = (1.0 + np.sqrt(np.clip(1.0 - 4.0 * a, 0.0, 1.0))) / 2.0
            x = np.log(s / (1.0 - s))
    return np.where(np.isfinite(x), np.maximum(x, 0.0), 50.0)


def intercepts(name: str, l: np.ndarray, u: np.ndarray, a: np.ndarray, upper: bool) -> np.ndarray:
    """``b`` with ``a·x + b >= f(x)`` (``upper``) or ``<= f(x)`` on [l, u], for the float64 slopes a
    (overflow near the float64 limits gives infinities on the safe side, silently)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _intercepts(name, l, u, a, upper)


def _intercepts(name, l, u, a, upper: bool) -> np.ndarray:
    xs = _critical(name, a)
    l_neg, u_neg = np.minimum(l, 0.0), np.minimum(u, 0.0)   # convex part [l_neg, u_neg] (if l < 0)
    l_pos, u_pos = np.maximum(l, 0.0), np.maximum(u, 0.0)   # concave part [l_pos, u_pos] (if u > 0)
    has_neg, has_pos = l < 0, u > 0
    if upper:
        # convex part: ends; concave part: tangent at the maximiser xs, clipped into the part
        vex = np.maximum(_g_hi(name, a, l_neg), _g_hi(name, a, u_neg))
        cave = _tangent_bound(name, a, np.clip(xs, l_pos, u_pos), l_pos, u_pos, upper=True)
        cand = np.where(has_neg, vex, -np.inf)
        cand = np.maximum(cand, np.where(has_pos | ~has_neg, cave, -np.inf))
        return np.where(np.isnan(cand), np.inf, cand)
    # concave part: ends; convex part: tangent at the minimiser −xs, clipped into the part
    cave = np.minimum(_g_lo(name, a, l_pos), _g_lo(name, a, u_pos))
    vex = _tangent_bound(name, a, np.clip(-xs, l_neg, u_neg), l_neg, u_neg, upper=False)
    cand = np.where(has_pos | ~has_neg, cave, np.inf)
    cand = np.minimum(cand, np.where(has_neg, vex, np.inf))
    return np.where(np.isnan(cand), -np.inf, cand)


def smooth_relaxation(name: str, l: np.ndarray, u: np.ndarray):
    """(a_lo, b_lo, a_hi, b_hi) for tanh or sigmoid on [l, u]. Slopes: on the convex side the chord
    above and the tangent at the midpoint below, on the concave side the reverse, and the chord
    for both lines when the interval holds 0 (a slope at most the peak slope, so both lines stay
    close to f); intercepts by :func:`intercepts`."""
    l = np.asarray(l, np.float64)
    u = np.asarray(u, np.float64)
    f = _F64[name]
    mid = l / 2 + u / 2
    with np.errstate(all="ignore"):
        width = u - l
        chord = np.where(width > 0, (f(u) - f(l)) / np.where(width > 0, width, 1.0), 0.0)
        s_mid = f(mid)
        tangent = 1.0 - s_mid * s_mid if name == "tanh" else s_mid * (1.0 - s_mid)
    chord = np.where(width > 0, chord, tangent)
    chord = np.clip(np.where(np.isfinite(chord), chord, 0.0), 0.0, _MAX_SLOPE[name])
    tangent = np.clip(np.where(np.isfinite(tangent), tangent, 0.0), 0.0, _MAX_SLOPE[name])
    convex, concave = u <= 0, l >= 0
    a_hi = np.where(concave, tangent, chord)
    a_lo = np.where(convex, tangent, chord)
    b_hi = intercepts(name, l, u, a_hi, upper=True)
    b_lo = intercepts(name, l, u, a_lo, upper=False)
    return a_lo, b_lo, a_hi, b_hi


__all__ = ["SMOOTH", "enclose", "intercepts", "smooth_relaxation"]
