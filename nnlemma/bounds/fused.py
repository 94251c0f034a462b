"""Fused (compiled, ``nnlemma/_native.c``) loops for the two hottest steps of the CROWN backward pass.

They compute the same float64 quantities as the plain numpy expressions they replace, in one
pass over ``Λ`` instead of several temporaries. Their results may differ from numpy's in the last
bits (different summation order), which the soundness argument already allows for: every sum
``Σ t_i`` of n float64 terms computed in *any* order errs by at most ``γ_{n−1}·Σ|t_i|``, and the
callers add that slack (:class:`nnlemma.bounds.backward._Acc`). Products ``0·inf`` are taken as 0
(a zero coefficient ignores an unbounded range), as in ``backward._dot_terms``.

* :func:`relax_terms` — the relaxation substitution: ``Λ' = Λ⁺·a_lo + Λ⁻·a_hi``, the bias
  ``Σ Λ⁺·b_lo + Λ⁻·b_hi``, and ``Σ |Λ⁺·a_lo − Λ⁻·a_hi|·max|x|`` (the magnitude for the coefficient slack).
* :func:`abs_dots` — ``Σ|Λ|·w1`` and ``Σ|Λ|·w2`` (rounding term and slack of a linear step).
* :func:`tiny_rows` — rows holding a nonzero coefficient below the underflow guard.

Without the C extension the numpy versions below are used.
"""

from __future__ import annotations

import numpy as np

from ..native import lib


def _relax_np(lam, a_lo, b_lo, a_hi, b_hi, xm, tiny):
    pos, neg = np.maximum(lam, 0), np.minimum(lam, 0)
    t_lo, t_hi = pos * a_lo, neg * a_hi
    terms = np.where(neg == 0, 0.0, neg * b_hi) + np.where(pos == 0, 0.0, pos * b_lo)
    with np.errstate(invalid="ignore"):
        mag = np.where(t_lo == t_hi, 0.0, np.abs(t_lo - t_hi) * xm).sum(axis=2)
    return t_lo + t_hi, terms.sum(axis=2), np.abs(terms).sum(axis=2), mag, _tiny_np(lam, tiny)


def _abs_dots_np(lam, w1, w2, tiny):
    a = np.abs(lam)
    with np.errstate(invalid="ignore"):
        return (np.where(a == 0, 0.0, a * w1).sum(axis=2), np.where(a == 0, 0.0, a * w2).sum(axis=2),
                _tiny_np(lam, tiny))


def _tiny_np(lam, tiny):
    a = np.abs(lam)
    return ((a > 0) & (a < tiny)).any(axis=2)


def tiny_rows(lam: np.ndarray, tiny: float) -> np.ndarray:
    """``[S, B]``: the row holds a nonzero coefficient of magnitude below ``tiny``."""
    S, B = lam.shape[:2]
    lam3 = np.ascontiguousarray(lam, np.float64).reshape(S, B, -1)
    if lib is None:
        return _tiny_np(lam3, tiny)
    out = np.zeros((S, B), np.bool_)
    lib.tiny_rows(lam3, float(tiny), out, S * B, lam3.shape[2])
    return out


def _rows(v, B: int, N: int) -> np.ndarray:
    v = np.asarray(v, np.float64)
    v = np.full((1, N), v) if v.ndim == 0 else v.reshape(-1, N)
    return np.ascontiguousarray(np.broadcast_to(v, (B, N)))


def relax_terms(lam: np.ndarray, a_lo, b_lo, a_hi, b_hi, xm, tiny: float):
    """``lam`` is ``[S, B, ...]``; the others broadcast to ``[B, ...]``. Returns (Λ', bias, Σ of
    the bias terms' magnitudes, mag, rows of Λ with a nonzero coefficient below ``tiny``)."""
    S, B = lam.shape[:2]
    N = int(np.prod(lam.shape[2:]))
    args = (np.ascontiguousarray(lam, np.float64).reshape(S, B, N),) + tuple(_rows(v, B, N) for v in (a_lo, b_lo, a_hi, b_hi, xm))
    if lib is None:
        new, bias, bias_abs, mag, small = _relax_np(*args, tiny)
    else:
        new = np.empty((S, B, N))
        bias, bias_abs, mag = np.zeros((S, B)), np.zeros((S, B)), np.zeros((S, B))
        small = np.zeros((S, B), np.bool_)
        lib.relax(*args, float(tiny), new, bias, bias_abs, mag, small, S, B, N)
    return new.reshape(lam.shape), bias, bias_abs, mag, small


def abs_dots(lam: np.ndarray, w1, w2, tiny: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Σ|Λ|·w1`` and ``Σ|Λ|·w2`` per (row, batch element), ``w`` broadcasting to ``[B, ...]``,
    and the rows of Λ with a nonzero coefficient below ``tiny``."""
    S, B = lam.shape[:2]
    N = int(np.prod(lam.shape[2:]))
    args = (np.ascontiguousarray(lam, np.float64).reshape(S, B, N), _rows(w1, B, N), _rows(w2, B, N))
    if lib is None:
        return _abs_dots_np(*args, tiny)
    r1, r2, small = np.zeros((S, B)), np.zeros((S, B)), np.zeros((S, B), np.bool_)
    lib.abs_dots(*args, float(tiny), r1, r2, small, S, B, N)
    return r1, r2, small


__all__ = ["abs_dots", "relax_terms", "tiny_rows"]
