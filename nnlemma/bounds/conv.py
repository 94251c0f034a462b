"""CROWN steps for conv2d and avg_pool2d: exact substitution of the affine map, its float32
rounding bound, and the float64 slack of the substituted coefficients. Also max_pool2d, by the
linear bounds of a maximum over its window (:func:`max_pool_step`).

**Substitution.** ``z = conv(x, W) + b`` is affine in x: ``Λ·z = Σ_x (Wᵀ ⋆ Λ)_x·x + Σ Λ·b``,
where ``Wᵀ ⋆ Λ`` is the transposed convolution (each input element collects, over the output
positions and taps that read it, ``Λ_z·W``); padded positions read the constant 0 and are
dropped. ``avg_pool2d`` is the same with weight ``1/count`` per window (``count`` as the kernel
computes it).

**Rounding (float32).** The kernel folds n = c_in·kh·kw products (padded zeros included) and
then adds the bias. Whatever the order, a dot product of n terms evaluated by rounded products
and sums errs by at most ``γ_n·Σ|x_k·w_k|`` (Higham, *Accuracy and Stability*, §3.1: each term
picks up at most n relative roundings of size u = 2^−24), plus ``2^−150`` per product for
gradual underflow (additions with subnormal results are exact); the bias add is one more term.
So ``|z_kernel − z_exact| <= γ_{n+1}·(Σ|x|·|W| + |b|) + (n + 1)·2^−149``, with ``Σ|x|·|W|`` from
the input's interval (``max|x|``) by a float64 convolution rounded up. The kernel stays finite
(no overflow) wherever z's interval is finite; elsewhere the error is infinite. avg_pool2d: the
window sum of m terms errs by ``γ_{m−1}·Σ|x|``, divided by the count, plus the division's own
half ulp (at least 2^−150).

**Slack (both semantics).** Each coefficient of ``Wᵀ ⋆ Λ`` is a float64 sum of at most
``c_out·kh·kw`` products, so it errs by ``γ_{c_out·kh·kw}·Σ|Λ|·|W|``; times the operand's range
that is ``γ·Σ_z |Λ_z|·(|W| ⋆ max|x|)_z``, the same magnitude as the rounding bound.
"""

from __future__ import annotations

import numpy as np

from .common import MIN_SUB_ERR, gamma
from .fold_f32 import half_ulp_bound

U32 = 2.0 ** -24


def gamma32(n: int) -> float:
    """γ_n = n·u/(1 − n·u) for float32 (u = 2^−24), rounded up generously."""
    return n * U32 / (1 - n * U32) * (1 + 2.0 ** -40)


def geometry(x_shape, kh: int, kw: int, stride, pads, dilation):
    """(padded height, padded width, output height, output width)."""
    hp = x_shape[2] + pads[0] + pads[2]
    wp = x_shape[3] + pads[1] + pads[3]
    oh = (hp - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wp - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return hp, wp, oh, ow


def _tap(i: int, j: int, oh: int, ow: int, stride, dilation):
    r0, c0 = i * dilation[0], j * dilation[1]
    return (slice(r0, r0 + stride[0] * (oh - 1) + 1, stride[0]), slice(c0, c0 + stride[1] * (ow - 1) + 1, stride[1]))


def conv_abs(xm: np.ndarray, W_abs: np.ndarray, stride, pads, dilation) -> np.ndarray:
    """Upper bound of ``Σ_taps |W|·max|x|`` per output element (float64, inf-safe), from ``xm``
    ``[B, c_in, H, W]`` >= 0 and ``W_abs`` ``[c_out, c_in, kh, kw]`` >= 0."""
    co, ci, kh, kw = W_abs.shape
    hp, wp, oh, ow = geometry(xm.shape, kh, kw, stride, pads, dilation)
    xp = np.zeros(xm.shape[:2] + (hp, wp))
    xp[:, :, pads[0]:pads[0] + xm.shape[2], pads[1]:pads[1] + xm.shape[3]] = xm
    out = np.zeros((xm.shape[0], co, oh, ow))
    with np.errstate(invalid="ignore", over="ignore"):
        for i in range(kh):
            for j in range(kw):
                win = xp[(slice(None), slice(None)) + _tap(i, j, oh, ow, stride, dilation)]
                w = W_abs[:, :, i, j]
                part = np.einsum("bchw,oc->bohw", np.where(np.isinf(win), 0.0, win), w)
                # an unbounded input times a nonzero weight: unbounded (0·inf counts as 0)
                inf = np.einsum("bchw,oc->bohw", np.isinf(win).astype(np.float64), (w > 0).astype(np.float64))
                out = out + np.where(inf > 0, np.inf, part)
    return out * (1 + (ci * kh * kw + 2) * 2.0 ** -52)


def conv_transpose(lam: np.ndarray, W: np.ndarray, x_shape, stride, pads, dilation) -> np.ndarray:
    """``Wᵀ ⋆ Λ``: ``lam`` ``[S, B, c_out, oh, ow]`` to ``[S, B, c_in, H, W]`` (padding dropped)."""
    co, ci, kh, kw = W.shape
    hp, wp, oh, ow = geometry(x_shape, kh, kw, stride, pads, dilation)
    S, B = lam.shape[:2]
    new = np.zeros((S, B, ci, hp, wp))
    for i in range(kh):
        for j in range(kw):
            new[(slice(None),) * 3 + _tap(i, j, oh, ow, stride, dilation)] += \
                np.einsum("sbohw,oc->sbchw", lam, W[:, :, i, j])
    return new[:, :, :, pads[0]:pads[0] + x_shape[2], pads[1]:pads[1] + x_shape[3]]


def pool_weights(x_shape, kernel, stride, pads, count_include_pad) -> tuple[np.ndarray, tuple]:
    """avg_pool2d as a depthwise convolution: per-tap weight 1 and the per-output counts
    ``[oh, ow]`` the kernel divides by; also the stride actually used."""
    from .ibp import _window_counts

    stride = tuple(stride or kernel)
    counts = _window_counts(x_shape, kernel, stride, pads, count_include_pad)[0, 0]
    return counts, stride


def _depthwise(C: int, kernel) -> np.ndarray:
    """Identity taps ``[C, C, kh, kw]``: a per-channel window sum as a dense convolution."""
    eye = np.zeros((C, C) + tuple(kernel))
    eye[np.arange(C), np.arange(C)] = 1.0
    return eye


def conv_error(ctx, e) -> np.ndarray:
    """Float32 rounding bound of a conv2d node (module docstring)."""
    x, w = e.inputs[0], e.inputs[1]
    attrs = dict(e.attrs)
    W = np.abs(ctx.params[w].astype(np.float64))
    n = int(np.prod(W.shape[1:])) + 1
    mag = conv_abs(ctx.xmax(x), W, attrs["stride"], attrs["pads"], attrs["dilation"])
    if len(e.inputs) == 3:
        mag = mag + np.abs(ctx.params[e.inputs[2]].astype(np.float64)).reshape(1, -1, 1, 1)
    return gamma32(n) * mag + n * 2.0 ** -149


def avg_pool_error(ctx, e) -> np.ndarray:
    """Float32 rounding bound of an avg_pool2d node (module docstring)."""
    attrs = dict(e.attrs)
    kernel, pads = attrs["kernel"], attrs["pads"]
    x = e.inputs[0]
    counts, stride = pool_weights(ctx._shapes[x], kernel, attrs["stride"], pads, attrs["count_include_pad"])
    xm = ctx.xmax(x) * np.ones(ctx.lshape(x))
    m = kernel[0] * kernel[1]
    sums = conv_abs(xm, _depthwise(xm.shape[1], kernel), stride, pads, (1, 1))
    out = ctx.bounds[e.out.id]
    zmax = np.maximum(np.abs(out.lo.astype(np.float64)), np.abs(out.hi.astype(np.float64)))
    return gamma32(max(m - 1, 1)) * sums / counts + np.maximum(half_ulp_bound(zmax), MIN_SUB_ERR)


def conv2d_step(ctx, e, lam, lams, acc, helpers) -> None:
    """Backward substitution through conv2d (x a variable, W and b constants), else a cut."""
    _cut, _add_lam, _sub_rounding, _const_terms, abs_dots, TINY = helpers
    x, w = e.inputs[0], e.inputs[1]
    attrs = dict(e.attrs)
    if w not in ctx.params or x in ctx.params or len(ctx._shapes[x]) != 4 or \
            (len(e.inputs) == 3 and e.inputs[2] not in ctx.params):
        return _cut(ctx, acc, e.out.id, lam)
    W = ctx.params[w].astype(np.float64)
    stride, pads, dilation = attrs["stride"], attrs["pads"], attrs["dilation"]
    _sub_rounding(ctx, acc, e.out.id, lam)
    acc.check_tiny(lam)
    v = conv_abs(ctx.xmax(x) * np.ones(ctx.lshape(x)), np.abs(W), stride, pads, dilation)
    _, mag, _ = abs_dots(lam, 0.0, v, TINY)
    acc.add_slack(gamma(int(W.shape[0] * W.shape[2] * W.shape[3])) * mag)
    if len(e.inputs) == 3:
        t, t_abs = _const_terms(lam, ctx.params[e.inputs[2]].reshape(-1, 1, 1))
        acc.add_bias(t, int(np.prod(lam.shape[2:])), t_abs)
    _add_lam(lams, acc, ctx, x, conv_transpose(lam, W, ctx.lshape(x), stride, pads, dilation))


def avg_pool_step(ctx, e, lam, lams, acc, helpers) -> None:
    """Backward substitution through avg_pool2d: a depthwise convolution with weights 1/count."""
    _cut, _add_lam, _sub_rounding, _const_terms, abs_dots, TINY = helpers
    x = e.inputs[0]
    attrs = dict(e.attrs)
    if x in ctx.params or len(ctx._shapes[x]) != 4:
        return _cut(ctx, acc, e.out.id, lam)
    kernel, pads = attrs["kernel"], attrs["pads"]
    counts, stride = pool_weights(ctx._shapes[x], kernel, attrs["stride"], pads, attrs["count_include_pad"])
    _sub_rounding(ctx, acc, e.out.id, lam)
    acc.check_tiny(lam)
    scaled = lam / counts                     # one rounding per coefficient
    eye = _depthwise(ctx.lshape(x)[1], kernel)
    v = conv_abs(ctx.xmax(x) * np.ones(ctx.lshape(x)), eye, stride, pads, (1, 1))
    _, mag, _ = abs_dots(np.abs(scaled), 0.0, v, TINY)
    acc.add_slack(gamma(kernel[0] * kernel[1] + 1) * mag)
    _add_lam(lams, acc, ctx, x, conv_transpose(scaled, eye, ctx.lshape(x), stride, pads, (1, 1)))


def max_pool_step(ctx, e, lam, lams, acc, helpers) -> None:
    """max_pool2d (exact: no rounding) by two linear bounds per output, from the input intervals
    of its window: below, ``z >= x_j`` for the element j with the largest lower bound (true for
    any window element); above, ``z <= x_j`` when that element's lower bound is at least every
    other element's upper bound (then z = x_j), else the constant ``z <= max hi``. Padding is
    −inf, which the maximum ignores. Λ⁺ takes the lower bound and Λ⁻ the upper one; the
    coefficients are copied unchanged and summed where windows overlap (slack γ_{kh·kw})."""
    _cut, _add_lam, _sub_rounding, _const_terms, abs_dots, TINY = helpers
    x, z = e.inputs[0], e.out.id
    attrs = dict(e.attrs)
    iv = ctx.bounds[x]
    if x in ctx.params or len(ctx._shapes[x]) != 4 or iv.nan.any() or not (np.isfinite(iv.lo).all()
                                                                           and np.isfinite(iv.hi).all()):
        return _cut(ctx, acc, z, lam)
    kernel, pads = attrs["kernel"], attrs["pads"]
    stride = tuple(attrs["stride"] or kernel)
    shape = ctx.lshape(x)
    B, C, H, Wd = shape
    _, _, oh, ow = geometry(shape, kernel[0], kernel[1], stride, pads, (1, 1))
    lo = np.broadcast_to(iv.lo.astype(np.float64), shape)
    hi = np.broadcast_to(iv.hi.astype(np.float64), shape)
    flat = np.arange(C * H * Wd).reshape(1, C, H, Wd) * np.ones((B, 1, 1, 1), np.int64)
    pad = ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3]))
    lo_p, hi_p = np.pad(lo, pad, constant_values=-np.inf), np.pad(hi, pad, constant_values=-np.inf)
    idx_p = np.pad(flat, pad, constant_values=-1)
    taps = [_tap(i, j, oh, ow, stride, (1, 1)) for i in range(kernel[0]) for j in range(kernel[1])]
    win_lo = np.stack([lo_p[(slice(None), slice(None)) + t] for t in taps])     # [T, B, C, oh, ow]
    win_hi = np.stack([hi_p[(slice(None), slice(None)) + t] for t in taps])
    win_idx = np.stack([idx_p[(slice(None), slice(None)) + t] for t in taps])
    best = np.argmax(win_lo, axis=0)
    j_star = np.take_along_axis(win_idx, best[None], 0)[0]                     # flat x index per output
    lo_star = np.take_along_axis(win_lo, best[None], 0)[0]
    others_hi = np.where(np.arange(len(taps)).reshape(-1, 1, 1, 1, 1) == best[None], -np.inf, win_hi).max(axis=0)
    dominant = lo_star >= others_hi
    max_hi = win_hi.max(axis=0)
    S = lam.shape[0]
    pos, neg = np.maximum(lam, 0), np.minimum(lam, 0)
    coef = pos + np.where(dominant, neg, 0.0)                                   # onto x_{j*}
    const = np.where(dominant, 0.0, neg)                                        # times max hi
    t = const * max_hi
    n = int(np.prod(lam.shape[2:]))
    acc.add_bias(t.reshape(S, B, -1).sum(axis=2), n, np.abs(t).reshape(S, B, -1).sum(axis=2))
    new = np.zeros((S, B, C * H * Wd))
    rows = np.broadcast_to(np.arange(B).reshape(1, B, 1), (S, B, oh * ow * C))
    srows = np.broadcast_to(np.arange(S).reshape(S, 1, 1), (S, B, oh * ow * C))
    cols = np.broadcast_to(j_star.reshape(1, B, -1), (S, B, oh * ow * C))
    np.add.at(new, (srows, rows, cols), coef.reshape(S, B, -1))
    acc.check_tiny(lam)
    xm = np.broadcast_to(ctx.xmax(x), shape).reshape(B, -1)
    _, mag, _ = abs_dots(np.abs(new), 0.0, xm, TINY)
    acc.add_slack(gamma(kernel[0] * kernel[1]) * mag)
    _add_lam(lams, acc, ctx, x, new.reshape((S,) + shape))


__all__ = ["avg_pool_error", "avg_pool_step", "conv2d_step", "conv_error", "conv_abs", "conv_transpose",
           "max_pool_step"]
