"""The kernel's dot-product fold on float32 intervals with constant weights, plus a rounding-error
bound — the workhorse of float32-sound IBP and CROWN for linear/matmul layers.

For each output j and every float32 input x in the box ``[xl, xh]`` the kernel computes
``s_0 = +0; s_k = fl(s_{k-1} + fl(x_k w_kj))``. With ``w_kj`` constant, ``fl(x_k w_kj)`` is
monotone in x_k (increasing if w >= 0, decreasing if w < 0), and ``fl(a + b)`` is monotone in
both arguments, so replaying the fold on interval endpoints with the same float32 operations
gives ``[lo_k, hi_k]`` that contains every s_k — the exact float32 range for a first layer, where
every x_k is an independent box coordinate.

Error bound (used by CROWN, which reasons about the real-valued affine map): for every input in
the box, ``|s_K − Σ_k x_k w_kj| <= err_j`` where ``err_j = Σ_k h(P_k) + Σ_k h(M_k)``,
``P_k = max |[p_lo_k, p_hi_k]|`` bounds the k-th product, ``M_k = max(|lo_k|, |hi_k|)`` bounds
the k-th partial sum, and ``h(M)`` is half an ulp of the binade of M (2^(⌊log2 M⌋−24), at least
2^−150): RNE errs by at most half an ulp of the binade of its result, and the result's magnitude
is at most M (monotone rounding cannot leave the enclosing binade). The bound is accumulated in
float64 and inflated by a factor (1 + 2^−40) to cover its own rounding.

Products that underflow to zero: if ``fl(x·w)`` is 0 at both interval endpoints (P_k = 0), every
product in the box rounds to 0, but its exact value x·w need not be 0 (e.g. 2^−149·0.4); RNE then
errs by up to 2^−150 (half the smallest subnormal), so the k-th term contributes 2^−150 unless
the product is exactly 0 for every x (w = 0 or xl = xh = 0). A zero partial sum needs no term:
a sum of two float32 values that rounds to 0 is exact.

Only finite inputs and weights take the compiled path; anything non-finite is left to the generic
interval rules (which track NaN).
"""

from __future__ import annotations


import numpy as np

F32 = np.float32

from ..native import lib


def _fold_py(xl, xh, wt, with_err):
    nb, nk = xl.shape
    nn = wt.shape[1]
    lo = np.zeros((nb, nn), F32)
    hi = np.zeros((nb, nn), F32)
    err = np.zeros((nb, nn), np.float64)
    for k in range(nk):
        w = wt[k][None, :]
        a = xl[:, k:k + 1] * w
        b = xh[:, k:k + 1] * w
        plo = np.where(w >= 0, a, b).astype(F32)
        phi = np.where(w >= 0, b, a).astype(F32)
        lo = (lo + plo).astype(F32)
        hi = (hi + phi).astype(F32)
        if with_err:
            P = np.maximum(np.abs(plo), np.abs(phi)).astype(np.float64)
            M = np.maximum(np.abs(lo), np.abs(hi)).astype(np.float64)
            exact0 = (w == 0) | ((xl[:, k:k + 1] == 0) & (xh[:, k:k + 1] == 0))
            err += np.where((P == 0) & ~exact0, 2.0 ** -150, _half_ulp_vec(P)) + _half_ulp_vec(M)
    return lo, hi, err


def _half_ulp_vec(m: np.ndarray) -> np.ndarray:
    _, e = np.frexp(m)
    return np.where(m == 0, 0.0, np.where(np.isfinite(m), np.ldexp(1.0, np.maximum(e - 25, -150)), np.inf))


# half an ulp of the binade of a float32 value, by its biased exponent field: 2^(e − 127 − 24) for
# normal numbers, 2^−150 for subnormals, +inf for inf/NaN (an overflowed partial sum has an
# unbounded error; the interval fold is then infinite as well)
_HALF_ULP_BY_EXP = np.array([2.0 ** (max(e, 1) - 151) for e in range(255)] + [np.inf])


def fold_interval(xl: np.ndarray, xh: np.ndarray, wt: np.ndarray, with_err: bool = False):
    """``[B, K] x [K, N]`` interval fold. Returns float32 ``lo``, ``hi`` and (if ``with_err``) the
    float64 error bound ``err`` of the fold against the exact real dot product, else zeros."""
    xl = np.ascontiguousarray(xl, F32)
    xh = np.ascontiguousarray(xh, F32)
    wt = np.ascontiguousarray(wt, F32)
    if lib is None:  # pragma: no cover
        lo, hi, err = _fold_py(xl, xh, wt, with_err)
    else:
        (nb, nk), nn = xl.shape, wt.shape[1]
        if xh.shape != xl.shape or wt.shape[0] != nk:
            raise ValueError(f"fold_interval: shapes {xl.shape}, {xh.shape} and {wt.shape} do not chain")
        lo, hi, err = np.zeros((nb, nn), F32), np.zeros((nb, nn), F32), np.zeros((nb, nn))
        lib.fold_interval(xl, xh, wt, bool(with_err), _HALF_ULP_BY_EXP, lo, hi, err, nb, nk, nn)
    return lo, hi, err * (1 + 2.0 ** -40)


def half_ulp_bound(m: np.ndarray) -> np.ndarray:
    """Elementwise bound on the RNE error of a float32 result of magnitude at most ``m``."""
    m = np.abs(np.asarray(m, np.float64))
    return np.where(np.isfinite(m), _half_ulp_vec(np.where(np.isfinite(m), m, 0.0)), np.inf)
