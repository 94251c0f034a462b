"""Compiled versions of the hottest folds, matmul/linear and conv2d (``nnlemma/_native.c``).

They compute exactly the fixed-order fold of SEMANTICS.md and return the same bits as the numpy
folds in :mod:`nnlemma.kernels.fold` (up to NaN payload/sign, which the kernel table canonicalises
to 0x7FC00000 anyway)::

    acc = +0.0; for k in index order: acc = fl(acc + fl(x_k * w_k))

Why the bits match: the C loops are plain float32 arithmetic built with ``FLT_EVAL_METHOD == 0``
(each operation rounded to binary32 once), ``-ffp-contract=off`` (no fused multiply-add) and
without ``-ffast-math`` (no reassociation, no flush-to-zero); each output element sees its own
terms in k order. ``tests/kernels`` checks the machine code has no FMA instruction and that inputs
where a fused multiply-add would differ give the unfused result.

If the extension was not built, the names below are the numpy folds (same bits, only slower).
"""

from __future__ import annotations

import numpy as np

from ..native import lib
from . import fold as _np_fold

F32 = np.float32


if lib is not None:

    def matmul_fold(x2: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """``x2 [B, K] @ wt [K, N]`` with the fixed fold over K (no bias); same contract and bits
        as :func:`nnlemma.kernels.fold.matmul_fold`."""
        x2 = np.ascontiguousarray(x2, dtype=F32)
        wt = np.ascontiguousarray(wt, dtype=F32)
        (nb, nk), nn = x2.shape, wt.shape[1]
        if wt.shape[0] != nk:
            raise ValueError(f"matmul_fold: shapes {x2.shape} and {wt.shape} do not chain")
        out = np.zeros((nb, nn), dtype=F32)
        lib.matmul_fold(x2, wt, out, nb, nk, nn)
        return out

    def conv_fold(xp: np.ndarray, w: np.ndarray, stride, dilation, oh: int, ow: int) -> np.ndarray:
        """conv2d's fold on the already zero-padded input ``xp``; same contract and bits as
        :func:`nnlemma.kernels.fold.conv_fold`."""
        xp = np.ascontiguousarray(xp, dtype=F32)
        w = np.ascontiguousarray(w, dtype=F32)
        if xp.shape[1] != w.shape[1]:
            raise ValueError(f"conv_fold: input channels {xp.shape[1]} != weight channels {w.shape[1]}")
        out = np.zeros((xp.shape[0], w.shape[0], int(oh), int(ow)), dtype=F32)
        lib.conv_fold(xp, w, out, *xp.shape, w.shape[0], w.shape[2], w.shape[3], int(oh), int(ow),
                      int(stride[0]), int(stride[1]), int(dilation[0]), int(dilation[1]))
        return out

else:  # pragma: no cover
    matmul_fold = _np_fold.matmul_fold
    conv_fold = _np_fold.conv_fold


def linear(x, w, b=None):
    """:func:`nnlemma.kernels.fold.linear` with the compiled fold."""
    return _np_fold.linear(x, w, b, fold=matmul_fold)


def matmul(a, b):
    """:func:`nnlemma.kernels.fold.matmul` with the compiled fold."""
    return _np_fold.matmul(a, b, fold=matmul_fold)


def conv2d(x, w, b=None, *, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)):
    """:func:`nnlemma.kernels.fold.conv2d` with the compiled fold."""
    return _np_fold.conv2d(x, w, b, stride=stride, pads=pads, dilation=dilation, fold=conv_fold)
