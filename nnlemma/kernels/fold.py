"""Fixed-order float32 folds: linear, matmul, conv2d, pooling, sum/mean, batch norm.

The one summation order (see SEMANTICS.md): ``acc = +0.0; for k in index order: acc = fl(acc +
fl(x_k * w_k))``, bias added last with one more rounded addition. Products and sums are rounded
separately (never fused), and nothing is reassociated. These numpy implementations vectorise over
the *independent* outputs only: each step is one float32 ufunc call over all outputs, so every
output element sees exactly the scalar fold above. ``nnlemma.kernels.fast`` provides compiled
versions of the hottest folds that tests check bit for bit against these.
"""

from __future__ import annotations

import numpy as np

from ..ir.shapes import index_tuple, normalize_axes
from .elementwise import add, div, maximum, mul, sqrt, sub

F32 = np.float32


def matmul_fold(x2: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """``x2 [B, K] @ wt [K, N]`` with the fixed fold over K (no bias)."""
    acc = np.zeros((x2.shape[0], wt.shape[1]), dtype=F32)
    for k in range(x2.shape[1]):
        prod = np.multiply(x2[:, k:k + 1], wt[k:k + 1, :], dtype=F32)
        np.add(acc, prod, out=acc, dtype=F32)
    return acc


def _dot_last(x: np.ndarray, wt: np.ndarray, b: np.ndarray | None, fold=matmul_fold) -> np.ndarray:
    lead = x.shape[:-1]
    x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]), dtype=F32)
    with np.errstate(all="ignore"):
        acc = fold(x2, np.ascontiguousarray(wt, dtype=F32))
        if b is not None:
            acc = np.add(acc, b[None, :], dtype=F32)
    return acc.reshape(lead + (wt.shape[1],))


def linear(x, w, b=None, *, fold=matmul_fold):
    return _dot_last(np.asarray(x, F32), np.asarray(w, F32).T, None if b is None else np.asarray(b, F32), fold)


def matmul(a, b, *, fold=matmul_fold):
    return _dot_last(np.asarray(a, F32), np.asarray(b, F32), None, fold)


def _pad(x: np.ndarray, pads, value: float) -> np.ndarray:
    top, left, bottom, right = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=F32(value))


def _window(xp: np.ndarray, i: int, j: int, oh: int, ow: int, stride) -> np.ndarray:
    return xp[:, :, i:i + stride[0] * (oh - 1) + 1:stride[0], j:j + stride[1] * (ow - 1) + 1:stride[1]]


def conv_fold(xp: np.ndarray, w: np.ndarray, stride, dilation, oh: int, ow: int) -> np.ndarray:
    """conv2d's fold (no bias) on the already zero-padded input ``xp [N, C, Hp, Wp]`` with
    ``w [C_out, C, kh, kw]``: one float32 multiply and one add per (c_in, kh, kw), in index order,
    vectorised over the independent outputs ``[N, C_out, oh, ow]``."""
    n, cout, kh, kw = xp.shape[0], w.shape[0], w.shape[2], w.shape[3]
    acc = np.zeros((n, cout, oh, ow), dtype=F32)
    with np.errstate(all="ignore"):
        for ci in range(w.shape[1]):
            for i in range(kh):
                for j in range(kw):
                    win = _window(xp[:, ci:ci + 1], i * dilation[0], j * dilation[1], oh, ow, stride)
                    np.add(acc, np.multiply(win, w[None, :, ci, i, j, None, None], dtype=F32), out=acc, dtype=F32)
    return acc


def conv2d(x, w, b=None, *, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), fold=conv_fold):
    """Fold over (c_in, kh, kw) in index order on the zero-padded input; padded zeros are
    multiplied like any other input element; bias last. ``fold`` is :func:`conv_fold` or a
    compiled version with the same bits (``nnlemma.kernels.fast.conv_fold``)."""
    x = np.asarray(x, F32)
    w = np.asarray(w, F32)
    xp = _pad(x, pads, 0.0)
    kh, kw = w.shape[2], w.shape[3]
    oh = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    with np.errstate(all="ignore"):
        acc = fold(xp, w, stride, dilation, oh, ow)
        if b is not None:
            acc = np.add(acc, np.asarray(b, F32)[None, :, None, None], dtype=F32)
    return acc


def _pool_geometry(x, kernel, stride, pads):
    stride = stride or kernel
    oh = (x.shape[2] + pads[0] + pads[2] - kernel[0]) // stride[0] + 1
    ow = (x.shape[3] + pads[1] + pads[3] - kernel[1]) // stride[1] + 1
    return stride, oh, ow


def avg_pool2d(x, *, kernel, stride=None, pads=(0, 0, 0, 0), count_include_pad=0):
    """Window fold from +0.0 in (kh, kw) order over the zero-padded input, then one rounded
    division by the count. The fold never produces −0 (it starts at +0), so padded +0 terms do
    not change it."""
    x = np.asarray(x, F32)
    stride, oh, ow = _pool_geometry(x, kernel, stride, pads)
    xp = _pad(x, pads, 0.0)
    acc = np.zeros(x.shape[:2] + (oh, ow), dtype=F32)
    with np.errstate(all="ignore"):
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                np.add(acc, _window(xp, i, j, oh, ow, stride), out=acc, dtype=F32)
        if count_include_pad or not any(pads):
            count = np.full((oh, ow), kernel[0] * kernel[1], dtype=F32)
        else:
            ones = _pad(np.ones((1, 1) + x.shape[2:], F32), pads, 0.0)
            count = np.zeros((1, 1, oh, ow), F32)
            for i in range(kernel[0]):
                for j in range(kernel[1]):
                    count += _window(ones, i, j, oh, ow, stride)
            count = count[0, 0]
        return div(acc, count[None, None])


def max_pool2d(x, *, kernel, stride=None, pads=(0, 0, 0, 0)):
    """IEEE-2019 maximum over each window; padding is −inf, which ``maximum`` ignores (pads are
    smaller than the kernel, so every window holds an input element)."""
    x = np.asarray(x, F32)
    stride, oh, ow = _pool_geometry(x, kernel, stride, pads)
    xp = _pad(x, pads, -np.inf)
    acc = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            win = _window(xp, i, j, oh, ow, stride)
            acc = win.copy() if acc is None else maximum(acc, win)
    return acc


def _move_reduced_last(x: np.ndarray, axes) -> tuple[np.ndarray, tuple[int, ...]]:
    ax = normalize_axes(axes, x.ndim)
    keep = [i for i in range(x.ndim) if i not in ax]
    moved = np.transpose(x, keep + list(ax))
    return moved.reshape(moved.shape[:len(keep)] + (-1,)), ax


def sum_(x, *, axes, keepdims=0):
    """Left fold from +0.0 over the reduced axes in row-major index order."""
    x = np.asarray(x, F32)
    flat, ax = _move_reduced_last(x, axes)
    acc = np.zeros(flat.shape[:-1], dtype=F32)
    with np.errstate(all="ignore"):
        for k in range(flat.shape[-1]):
            np.add(acc, flat[..., k], out=acc, dtype=F32)
    if keepdims:
        acc = acc.reshape(tuple(1 if i in ax else d for i, d in enumerate(x.shape)))
    return acc


def mean(x, *, axes, keepdims=0):
    """``fl(sum / n)`` with n converted to float32."""
    x = np.asarray(x, F32)
    n = int(np.prod([x.shape[a] for a in normalize_axes(axes, x.ndim)]))
    with np.errstate(all="ignore"):
        return div(sum_(x, axes=axes, keepdims=keepdims), F32(n))


def batch_norm(x, m, v, g, b, *, eps):
    """``y = fl(fl(fl(x - mean) / fl(sqrt(fl(var + eps)))) * gamma) + beta`` per channel (axis 1)."""
    x = np.asarray(x, F32)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    m, v, g, b = (np.asarray(t, F32).reshape(shape) for t in (m, v, g, b))
    with np.errstate(all="ignore"):
        s = sqrt(add(v, F32(eps)))
        return add(mul(div(sub(x, m), s), g), b)


def slice_(x, *, index):
    return np.array(np.asarray(x, F32)[index_tuple(index)], dtype=F32)
