"""Derivative rules of the windowed ops (conv2d, avg_pool2d, max_pool2d), built from conv2d,
concat, reshape, slice and masks.

* conv2d's data cotangent is the transposed convolution: the cotangent dilated by the stride
  (zeros inserted by reshape + concat), correlated with the flipped, channel-transposed kernel
  over a full padding, then cropped to the input; the weight cotangent correlates the padded input
  with the cotangent (batch as channels); the bias cotangent sums it.
* avg_pool2d spreads each window's cotangent, divided by the window's count, over the window (a
  transposed convolution with a ones kernel, channels folded into the batch).
* max_pool2d routes the derivative through the window's FIRST maximising element in (kh, kw)
  order (masks ``1 − step(max − x)``, made exclusive left to right): one Clarke element at ties.
"""

from __future__ import annotations

import numpy as np

from ..errors import DerivativeError
from ..tensor import bind
from .common import F32, _add, _one_minus, _shape, _step


def _dilate(g, axis: int, s: int):
    """Insert s − 1 zeros between consecutive entries along ``axis`` (reshape + concat + slice)."""
    if s == 1:
        return g
    shape = _shape(g)
    n = shape[axis]
    a = bind("reshape", g, shape=shape[:axis + 1] + (1,) + shape[axis + 1:])
    zeros = np.zeros(shape[:axis + 1] + (s - 1,) + shape[axis + 1:], F32)
    a = bind("concat", a, zeros, axis=axis + 1)
    a = bind("reshape", a, shape=shape[:axis] + (n * s,) + shape[axis + 1:])
    index = tuple((None, None, None) if i != axis else (0, (n - 1) * s + 1, None) for i in range(len(shape)))
    return bind("slice", a, index=index)


def _fit(g, axis: int, start: int, size: int):
    """Entries [start, start + size) of ``axis``, zero-extended at the end where g is shorter."""
    have = _shape(g)[axis]
    if have < start + size:
        shape = list(_shape(g))
        shape[axis] = start + size - have
        g = bind("concat", g, np.zeros(shape, F32), axis=axis)
    if start == 0 and _shape(g)[axis] == size:
        return g
    index = tuple((None, None, None) if i != axis else (start, start + size, None) for i in range(len(_shape(g))))
    return bind("slice", g, index=index)


def conv_transpose(ct, w: np.ndarray, x_shape, stride, pads, dilation):
    """The cotangent of conv2d's data operand: the cotangent dilated by the stride, correlated
    with the flipped, channel-transposed kernel over a full padding, then cropped to the input
    (zero rows the forward pass never read stay zero)."""
    kh, kw = w.shape[2], w.shape[3]
    g = _dilate(_dilate(ct, 2, stride[0]), 3, stride[1])
    wf = np.ascontiguousarray(np.transpose(w[:, :, ::-1, ::-1], (1, 0, 2, 3)))
    ph, pw = (kh - 1) * dilation[0], (kw - 1) * dilation[1]
    g = bind("conv2d", g, wf, stride=(1, 1), pads=(ph, pw, ph, pw), dilation=tuple(dilation))
    top, left, bottom, right = pads
    g = _fit(g, 2, top, x_shape[2])
    return _fit(g, 3, left, x_shape[3])


def _const(t) -> np.ndarray | None:
    """The value of a concrete (untraced) tensor, else None."""
    return None if t.is_traced else t.numpy()


def _vjp_conv2d(ct, out, x, w, b=None, *, stride, pads, dilation):
    wv = _const(w)
    if wv is None:
        raise DerivativeError("vjp of conv2d needs a constant weight for the data cotangent")
    ct_x = conv_transpose(ct, wv, _shape(x), stride, pads, dilation)
    # weight cotangent: correlate the (padded) input with the cotangent, batch as channels
    xt = bind("transpose", x, perm=(1, 0, 2, 3))
    ctt = bind("transpose", ct, perm=(1, 0, 2, 3))
    cw = bind("conv2d", xt, ctt, stride=tuple(dilation), pads=tuple(pads), dilation=tuple(stride))
    cw = _fit(_fit(cw, 2, 0, wv.shape[2]), 3, 0, wv.shape[3])
    ct_w = bind("transpose", cw, perm=(1, 0, 2, 3))
    if b is None:
        return ct_x, ct_w
    return ct_x, ct_w, bind("sum", ct, axes=(0, 2, 3), keepdims=0)


def _vjp_avg_pool(ct, out, x, *, kernel, stride, pads, count_include_pad):
    """Each window's cotangent divided by its count (as the kernel counts: the whole window, or
    its in-bounds part), spread over the window: a transposed convolution with a ones kernel, one
    channel at a time (channels folded into the batch)."""
    n, c, h, wd = _shape(x)
    oh, ow = _shape(ct)[2], _shape(ct)[3]
    stride = stride or kernel
    inside = np.pad(np.ones((h, wd), F32), ((pads[0], pads[2]), (pads[1], pads[3])),
                    constant_values=1.0 if count_include_pad else 0.0)
    count = np.array([[inside[i * stride[0]:i * stride[0] + kernel[0], j * stride[1]:j * stride[1] + kernel[1]].sum()
                       for j in range(ow)] for i in range(oh)], F32)
    g = bind("reshape", bind("div", ct, count), shape=(n * c, 1, oh, ow))
    g = conv_transpose(g, np.ones((1, 1) + tuple(kernel), F32), (n * c, 1, h, wd), stride, pads, (1, 1))
    return (bind("reshape", g, shape=(n, c, h, wd)),)


def _pad_with(x, pads, value: float):
    """x [N, C, H, W] padded by constant blocks (concat), pads = (top, left, bottom, right)."""
    top, left, bottom, right = pads
    for axis, before, after in ((2, top, bottom), (3, left, right)):
        shape = list(_shape(x))
        parts = []
        for n in (before, after):
            shape[axis] = n
            parts.append(np.full(shape, value, F32) if n else None)
        if parts[0] is not None or parts[1] is not None:
            x = bind("concat", *[p for p in (parts[0], x, parts[1]) if p is not None], axis=axis)
    return x


def _max_pool_masks(out, x, kernel, stride, pads):
    """Per window offset (i, j): the strided slice of the −inf-padded input and the 0/1 mask of the
    window's FIRST maximising element in (kh, kw) order (the Clarke element chosen at ties)."""
    stride = stride or kernel
    xp = _pad_with(x, pads, -np.inf)
    oh, ow = _shape(out)[2], _shape(out)[3]
    prev, found = None, []
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            win = bind("slice", xp, index=((None, None, None), (None, None, None),
                                           (i, i + stride[0] * (oh - 1) + 1, stride[0]),
                                           (j, j + stride[1] * (ow - 1) + 1, stride[1])))
            eq = _one_minus(_step(bind("sub", out, win)))          # win == max (win <= max)
            mask = eq if prev is None else bind("mul", eq, prev)
            prev = _one_minus(eq) if prev is None else bind("mul", prev, _one_minus(eq))
            found.append((i, j, mask))
    return found, stride


def _vjp_max_pool(ct, out, x, *, kernel, stride, pads):
    masks, stride = _max_pool_masks(out, x, kernel, stride, pads)
    _, _, h, wd = _shape(x)
    hp, wp = h + pads[0] + pads[2], wd + pads[1] + pads[3]
    total = None
    for i, j, mask in masks:
        g = _dilate(_dilate(bind("mul", ct, mask), 2, stride[0]), 3, stride[1])
        g = _fit(_pad_with(g, (i, j, 0, 0), 0.0), 2, 0, hp)
        g = _fit(g, 3, 0, wp)
        total = g if total is None else bind("add", total, g)
    return (_fit(_fit(total, 2, pads[0], h), 3, pads[1], wd),)


def _jvp_max_pool(out, xs, ts, *, kernel, stride, pads):
    if ts[0] is None:
        return None
    masks, stride = _max_pool_masks(out, xs[0], kernel, stride, pads)
    tp = _pad_with(ts[0], pads, 0.0)
    oh, ow = _shape(out)[2], _shape(out)[3]
    total = None
    for i, j, mask in masks:
        win = bind("slice", tp, index=((None, None, None), (None, None, None),
                                       (i, i + stride[0] * (oh - 1) + 1, stride[0]),
                                       (j, j + stride[1] * (ow - 1) + 1, stride[1])))
        total = _add(total, bind("mul", win, mask))
    return total
