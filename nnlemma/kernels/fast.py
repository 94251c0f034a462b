"""Compiled (numba) versions of the hottest folds: matmul/linear and conv2d.

They compute exactly the fixed-order fold of SEMANTICS.md and return the same bits as the numpy
folds in :mod:`nnlemma.kernels.fold` (up to NaN payload/sign, which the kernel table canonicalises
to 0x7FC00000 anyway)::

    acc = +0.0; for k in index order: acc = fl(acc + fl(x_k * w_k))

Why the bits match:

* Everything is float32: inputs are float32 arrays, accumulators come from ``np.zeros(...,
  float32)`` (+0.0), and there is no Python float literal in the arithmetic, so numba never
  promotes a step to float64 (which would round twice or not at all).
* ``fastmath`` is off and no ``contract`` flag is set, so LLVM keeps every ``fmul`` and ``fadd`` as
  a separately rounded IEEE operation: no FMA contraction, no reassociation, no flush-to-zero
  (subnormals are kept). ``tests/kernels`` checks the generated assembly has no ``vfmadd`` and that
  inputs where a fused multiply-add would differ give the unfused result.
* Vectorisation is only across *independent outputs*: the innermost loop runs over the output
  index n (and the 4 rows of a row block), and each output element still sees its own terms in
  k order. LLVM may vectorise such a loop without any reassociation, because lanes never combine.

If numba cannot be imported, the names below are the numpy folds,
which give the same bits, only more slowly.
"""

from __future__ import annotations

import numpy as np

from . import fold as _np_fold

F32 = np.float32

try:
    from numba import njit
    HAVE_NUMBA = True
except Exception:  # pragma: no cover - ImportError, or a numba/numpy mismatch; subprocess-tested
    HAVE_NUMBA = False


if HAVE_NUMBA:

    @njit(cache=True)
    def _matmul_fold_jit(x2, wt):
        """[B, K] x [K, N] -> [B, N]; rows in blocks of 4 so each ``wt[k, n]`` load serves 4
        outputs; per output the terms are still added in k order."""
        nb, nk = x2.shape
        nn = wt.shape[1]
        out = np.zeros((nb, nn), dtype=np.float32)
        b = 0
        while b + 4 <= nb:
            a0 = out[b]
            a1 = out[b + 1]
            a2 = out[b + 2]
            a3 = out[b + 3]
            for k in range(nk):
                x0 = x2[b, k]
                x1 = x2[b + 1, k]
                y2 = x2[b + 2, k]
                x3 = x2[b + 3, k]
                w = wt[k]
                for n in range(nn):
                    wn = w[n]
                    a0[n] = a0[n] + x0 * wn
                    a1[n] = a1[n] + x1 * wn
                    a2[n] = a2[n] + y2 * wn
                    a3[n] = a3[n] + x3 * wn
            b += 4
        while b < nb:
            acc = out[b]
            for k in range(nk):
                xk = x2[b, k]
                w = wt[k]
                for n in range(nn):
                    acc[n] = acc[n] + xk * w[n]
            b += 1
        return out

    @njit(cache=True)
    def _conv_fold_jit(xp, w, s0, s1, d0, d1, oh, ow):
        """Per (n, c_out): acc[p, q] over (c_in, kh, kw) in index order; padded input given."""
        nbatch, cin = xp.shape[0], xp.shape[1]
        cout, kh, kw = w.shape[0], w.shape[2], w.shape[3]
        out = np.zeros((nbatch, cout, oh, ow), dtype=np.float32)
        for n in range(nbatch):
            for co in range(cout):
                acc = out[n, co]
                for ci in range(cin):
                    plane = xp[n, ci]
                    for i in range(kh):
                        for j in range(kw):
                            wv = w[co, ci, i, j]
                            for p in range(oh):
                                row = plane[p * s0 + i * d0]
                                arow = acc[p]
                                c0 = j * d1
                                for q in range(ow):
                                    arow[q] = arow[q] + row[c0 + q * s1] * wv
        return out

    def matmul_fold(x2: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """``x2 [B, K] @ wt [K, N]`` with the fixed fold over K (no bias); same contract and bits
        as :func:`nnlemma.kernels.fold.matmul_fold`."""
        return _matmul_fold_jit(np.ascontiguousarray(x2, dtype=F32), np.ascontiguousarray(wt, dtype=F32))

    def conv_fold(xp: np.ndarray, w: np.ndarray, stride, dilation, oh: int, ow: int) -> np.ndarray:
        """conv2d's fold on the already zero-padded input ``xp``; same contract and bits as
        :func:`nnlemma.kernels.fold.conv_fold`."""
        return _conv_fold_jit(np.ascontiguousarray(xp, dtype=F32), np.ascontiguousarray(w, dtype=F32),
                              int(stride[0]), int(stride[1]), int(dilation[0]), int(dilation[1]),
                              int(oh), int(ow))

    JIT_FUNCTIONS = (_matmul_fold_jit, _conv_fold_jit)

else:  # pragma: no cover
    matmul_fold = _np_fold.matmul_fold
    conv_fold = _np_fold.conv_fold
    JIT_FUNCTIONS = ()


def linear(x, w, b=None):
    """:func:`nnlemma.kernels.fold.linear` with the compiled fold."""
    return _np_fold.linear(x, w, b, fold=matmul_fold)


def matmul(a, b):
    """:func:`nnlemma.kernels.fold.matmul` with the compiled fold."""
    return _np_fold.matmul(a, b, fold=matmul_fold)


def conv2d(x, w, b=None, *, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)):
    """:func:`nnlemma.kernels.fold.conv2d` with the compiled fold."""
    return _np_fold.conv2d(x, w, b, stride=stride, pads=pads, dilation=dilation, fold=conv_fold)
