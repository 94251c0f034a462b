"""CROWN step for batch_norm with constant statistics: an affine map per channel.

The kernel computes ``z = fl(fl(fl(fl(x − m) / s) · g) + b)`` with the float32 constant
``s = fl(sqrt(fl(v + eps)))``; the real semantics is ``z = (x − m)/sqrt(v + eps)·g + b`` exactly.
Both are ``z = k·(x − m) + b + δ`` per channel with ``k = g/σ`` (σ = s in float32, the real
square root in real semantics; δ = 0 in real semantics).

**Substitution.** ``Λ·z = Σ Λ·k·x − Σ Λ·k·m + Σ Λ·b + Λ·δ``. The coefficient ``Λ·k`` is computed in
float64 from an enclosure ``1/σ ∈ [r_lo, r_hi]``: with ``k̃ = g·r_mid`` and the real k both in
``g·[r_lo, r_hi]``, the difference ``|Λ·k − fl(Λ·k̃)|`` is at most ``|Λ|·|g|·(r_hi − r_lo) +
γ_2·|Λ·k̃|``, and it multiplies ``t = x − m``, so the slack is that times ``max|x − m|``. The
substituted terms ``Σ fl(Λ·k̃)·x − Σ fl(Λ·k̃)·m`` are exact rewrites of ``Σ fl(Λ·k̃)·(x − m)``.

**Rounding (float32).** With ``t1 = x − m + δ1``, ``t2 = t1/s + δ2``, ``t3 = t2·g + δ3``,
``z = t3 + b + δ4``: ``z − (k·(x − m) + b) = δ1·g/s + δ2·g + δ3 + δ4``, each δ at most half an
ulp of its result's binade (subtraction/addition results below the normal range are exact; the
product and quotient get at least 2^−150), with every intermediate interval from float32
interval arithmetic on x's interval.
"""

from __future__ import annotations

import numpy as np

from ..kernels.elementwise import add as add32
from ..kernels.elementwise import sqrt as sqrt32
from . import arith as A
from .common import MIN_SUB_ERR, gamma
from .fold_f32 import half_ulp_bound
from .interval import FLOAT32, Interval


def _up(v):
    return np.nextafter(v, np.inf)


def _down(v):
    return np.nextafter(v, -np.inf)


def _channel(ctx, vid: int, ndim: int) -> np.ndarray:
    """A per-channel constant as float32 ``[1, C, 1, ...]``."""
    c = np.asarray(ctx.params[vid], np.float32).reshape(-1)
    return c.reshape((1, -1) + (1,) * (ndim - 2))


def _constants(ctx, e):
    """(m, g, b, s32) per channel as float32 arrays shaped like x; s32 is the kernel's σ."""
    x, m, v, g, b = e.inputs
    nd = len(ctx._shapes[x])
    m, v, g, b = (_channel(ctx, i, nd) for i in (m, v, g, b))
    with np.errstate(all="ignore"):
        s = sqrt32(add32(v, np.float32(dict(e.attrs)["eps"])))
    return m, v, g, b, s


def _inverse_sigma(ctx, e, v, s32) -> tuple[np.ndarray, np.ndarray]:
    """Enclosure ``[r_lo, r_hi]`` of 1/σ in the context's semantics (float64)."""
    if ctx.semantics == "float32":
        s_lo = s_hi = s32.astype(np.float64)
    else:
        eps = float(np.float32(dict(e.attrs)["eps"]))
        v64 = v.astype(np.float64)
        with np.errstate(invalid="ignore"):
            s_lo = _down(np.sqrt(np.maximum(_down(v64 + eps), 0.0)))
            s_hi = _up(np.sqrt(_up(v64 + eps)))
    with np.errstate(divide="ignore"):
        return _down(1.0 / s_hi), _up(1.0 / s_lo)


def applicable(ctx, e) -> bool:
    x = e.inputs[0]
    return x not in ctx.params and len(ctx._shapes[x]) >= 2 and all(i in ctx.params for i in e.inputs[1:])


def batch_norm_error(ctx, e) -> np.ndarray:
    """Float32 rounding bound of a batch_norm node (module docstring)."""
    m, v, g, b, s = _constants(ctx, e)
    xi = ctx.bounds[e.inputs[0]]
    pt = [Interval.point(c, np.float32) for c in (m, s, g)]
    t1 = A.sub(FLOAT32, xi, pt[0])
    t2 = A.div(FLOAT32, t1, pt[1])
    t3 = A.mul(FLOAT32, t2, pt[2])

    def mx(iv):
        return np.maximum(np.abs(iv.lo.astype(np.float64)), np.abs(iv.hi.astype(np.float64)))

    out = ctx.bounds[e.out.id]
    g64, s64 = np.abs(g.astype(np.float64)), s.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e1 = half_ulp_bound(mx(t1)) * _up(g64 / s64)
        e2 = np.maximum(half_ulp_bound(mx(t2)), MIN_SUB_ERR) * g64
        e3 = np.maximum(half_ulp_bound(mx(t3)), MIN_SUB_ERR)
        e4 = half_ulp_bound(mx(out))
        err = (e1 + e2 + e3 + e4) * (1 + 2.0 ** -40)
    bad = t1.nan | t2.nan | t3.nan | ~np.isfinite(s64) | (s64 == 0)
    return np.where(np.broadcast_to(bad, err.shape), np.inf, np.where(np.isnan(err), np.inf, err))


def batch_norm_step(ctx, e, lam, lams, acc, helpers) -> None:
    """Backward substitution through batch_norm (module docstring), else a cut."""
    _cut, _add_lam, _sub_rounding, _const_terms, _dot_terms = helpers
    z = e.out.id
    if not applicable(ctx, e):
        return _cut(ctx, acc, z, lam)
    x = e.inputs[0]
    m, v, g, b, s = _constants(ctx, e)
    r_lo, r_hi = _inverse_sigma(ctx, e, v, s)
    g64 = g.astype(np.float64)
    k = g64 * (r_lo / 2 + r_hi / 2)
    iv = ctx.bounds[x]
    m64 = m.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        new = lam * k
        tm = _up(np.maximum(np.abs(iv.lo.astype(np.float64) - m64), np.abs(iv.hi.astype(np.float64) - m64)))
        rad = np.abs(g64) * (r_hi - r_lo)
    if not (np.isfinite(new).all() and np.isfinite(rad).all()):
        return _cut(ctx, acc, z, lam)
    _sub_rounding(ctx, acc, z, lam)
    acc.check_tiny(lam)
    acc.add_slack(_dot_terms(np.abs(lam), rad * tm) * (1 + 2.0 ** -40) + gamma(2) * _dot_terms(np.abs(new), tm))
    n = int(np.prod(lam.shape[2:]))
    t, t_abs = _const_terms(lam, b[0])
    acc.add_bias(t, n, t_abs)
    t, t_abs = _const_terms(-new, m[0])
    acc.add_bias(t, n, t_abs)
    _add_lam(lams, acc, ctx, x, new)


__all__ = ["applicable", "batch_norm_error", "batch_norm_step"]
