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

try:
    from numba import njit
except ImportError:  # pragma: no cover
    njit = None


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


if njit is not None:

    @njit(cache=True)
    def _fold_jit(xl, xh, wt, with_err, table):
        nb, nk = xl.shape
        nn = wt.shape[1]
        lo = np.zeros((nb, nn), dtype=np.float32)
        hi = np.zeros((nb, nn), dtype=np.float32)
        err = np.zeros((nb, nn), dtype=np.float64)
        for b in range(nb):
            for k in range(nk):
                a = xl[b, k]
                c = xh[b, k]
                for n in range(nn):
                    w = wt[k, n]
                    pa = a * w
                    pc = c * w
                    if w >= 0:
                        plo, phi = pa, pc
                    else:
                        plo, phi = pc, pa
                    l = lo[b, n] + plo
                    h = hi[b, n] + phi
                    lo[b, n] = l
                    hi[b, n] = h
                    if with_err:
                        P = max(abs(plo), abs(phi))
                        M = max(abs(l), abs(h))
                        if P != 0:
                            err[b, n] += table[(np.float32(P).view(np.uint32) >> 23) & 255]
                        elif w != 0 and not (a == 0 and c == 0):
                            err[b, n] += table[0]  # the exact product may be nonzero (underflow)
                        if M != 0:
                            err[b, n] += table[(np.float32(M).view(np.uint32) >> 23) & 255]
        return lo, hi, err


def fold_interval(xl: np.ndarray, xh: np.ndarray, wt: np.ndarray, with_err: bool = False):
    """``[B, K] x [K, N]`` interval fold. Returns float32 ``lo``, ``hi`` and (if ``with_err``) the
    float64 error bound ``err`` of the fold against the exact real dot product, else zeros."""
    xl = np.ascontiguousarray(xl, F32)
    xh = np.ascontiguousarray(xh, F32)
    wt = np.ascontiguousarray(wt, F32)
    if njit is not None:
        lo, hi, err = _fold_jit(xl, xh, wt, with_err, _HALF_ULP_BY_EXP)
    else:  # pragma: no cover
        lo, hi, err = _fold_py(xl, xh, wt, with_err)
    return lo, hi, err * (1 + 2.0 ** -40)


def half_ulp_bound(m: np.ndarray) -> np.ndarray:
    """Elementwise bound on the RNE error of a float32 result of magnitude at most ``m``."""
    m = np.abs(np.asarray(m, np.float64))
    return np.where(np.isfinite(m), _half_ulp_vec(np.where(np.isfinite(m), m, 0.0)), np.inf)
