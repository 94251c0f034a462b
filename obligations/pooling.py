"""fp-transfer obligations of the pooling ops, decomposed per step of the kernel's window loop.

* ``avg_pool2d``: the kernel folds each window from +0 in (kh, kw) order over the zero-padded
  input (padded positions are the constant +0), then divides once by the count. The lemmas are
  those of a sum (:func:`obligations.fp_transfer.sum_chain`): one per addition with
  interval-abstracted partial sums, then the rounded division into the claim.
* ``max_pool2d``: the kernel takes IEEE-2019 ``maximum`` over the window in (kh, kw) order;
  padding is −inf, which ``maximum`` ignores, and every window holds an input element, so the
  result is the chain of ``maximum`` over the in-bounds elements in that order. With
  ``M_1 = D(x_1)`` and ``M_k = [max(lo M_{k−1}, lo x_k), max(hi M_{k−1}, hi x_k)]`` (+ NaN if
  either may be NaN: ``maximum`` propagates NaN), the lemmas are
  ``∀ m ∈ M_{k−1}, x ∈ D(x_k): maximum(m, x) ∈ M_k`` and ``M_K ⊆ claim``. Chained, they give
  the node's lemma because the kernel's loop is exactly that chain; the ``M_k`` are only claims,
  each proved, never assumed.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from nnlemma.kernels import elementwise as ew
from nnlemma.kernels.fold import _pool_geometry

from .fp_transfer import Dom, _claim, _dom_at, sum_chain, transfer
from .model import Obligation

F32 = np.float32


def _windows(shape, attrs):
    """Per output element ``(n, c, oi, oj)``: the flat input indices of its window in (kh, kw)
    order, with ``-1`` for a padded position."""
    kernel, pads = attrs["kernel"], attrs.get("pads", (0, 0, 0, 0))
    stride, oh, ow = _pool_geometry(np.empty(shape, F32), kernel, attrs.get("stride"), pads)
    top, left, bottom, right = pads
    grid = np.pad(np.arange(int(np.prod(shape))).reshape(shape), ((0, 0), (0, 0), (top, bottom), (left, right)),
                  constant_values=-1)
    for n, c, oi, oj in np.ndindex(shape[0], shape[1], oh, ow):
        yield (n, c, oi, oj), np.array([grid[n, c, oi * stride[0] + i, oj * stride[1] + j]
                                        for i in range(kernel[0]) for j in range(kernel[1])])


def avg_pool(e, src, out, model, node, prov) -> Iterator[Obligation]:
    x_lo, x_hi, x_nan, x_const = src
    shape = x_lo.shape
    size = int(np.prod(shape))
    ext = lambda v, z: np.append(np.asarray(v).reshape(-1), z)  # noqa: E731  (index size: a padded +0)
    flat = (ext(x_lo, F32(0)), ext(x_hi, F32(0)), ext(np.broadcast_to(x_nan, shape), False),
            None if x_const is None else ext(x_const, F32(0)))
    attrs = e.attr_dict
    every = attrs.get("count_include_pad", 0) or not any(attrs.get("pads", (0, 0, 0, 0)))
    for o, (idx, win) in enumerate(_windows(shape, attrs)):
        count = len(win) if every else int(np.sum(win >= 0))
        win = np.where(win < 0, size, win)
        yield from sum_chain(e.op, flat, win, _claim(out, idx), count, f"{model}/{node}/fp-transfer/{o}",
                             dict(prov, element=list(idx)))


def _max_step(a: Dom, b: Dom) -> Dom:
    f = lambda bits: np.array(bits, np.uint32).view(F32)[()]  # noqa: E731
    with np.errstate(all="ignore"):
        lo = ew.maximum(f(a.lo), f(b.lo))
        hi = ew.maximum(f(a.hi), f(b.hi))
    return Dom.interval(lo, hi, a.nan or b.nan)


def max_pool(e, src, out, model, node, prov) -> Iterator[Obligation]:
    x_lo, x_hi, x_nan, x_const = src
    shape = x_lo.shape
    flat = (np.asarray(x_lo).reshape(-1), np.asarray(x_hi).reshape(-1),
            np.broadcast_to(x_nan, shape).reshape(-1), None if x_const is None else np.asarray(x_const).reshape(-1))
    for o, (idx, win) in enumerate(_windows(shape, e.attr_dict)):
        base, p = f"{model}/{node}/fp-transfer/{o}", dict(prov, element=list(idx))
        win = win[win >= 0]
        acc = _dom_at(flat, (int(win[0]),))
        for k, t in enumerate(win[1:], start=1):
            x = _dom_at(flat, (int(t),))
            nxt = _max_step(acc, x)
            yield transfer("maximum", {}, [acc, x], nxt, f"{base}/max{k}", dict(p, max=k))
            acc = nxt
        yield transfer(e.op, {}, [acc], _claim(out, idx), f"{base}/result", dict(p, max="result"), step="id")
