"""Exact real-arithmetic evaluation of an nnlemma Graph: the ``real`` semantics itself.

Used to replay real-semantics counterexamples (``nnlemma verify --semantics real``) and, in the
tests, as the oracle that real-semantics bounds must enclose.

This is the *real* semantics that ``nnlemma.bounds.ibp(..., semantics="real")`` must enclose:
every parameter is the exact rational of its float32 value, inputs are arbitrary rationals
(``fractions.Fraction``, so points such as 1/3 that are not float32 or float64 numbers are fine),
and every op is the exact mathematical function (no rounding, no fixed summation order).

Representation: every value is a numpy ``object`` array whose elements are one of (the
scalar operations are in :mod:`nnlemma.exact_scalar`)

* ``Fraction`` -- the exact value. All piecewise-linear and rational ops (neg, abs, relu,
  leaky_relu, clamp, maximum, minimum, add, sub, mul, div, square, linear, matmul, conv2d,
  avg_pool2d, max_pool2d, sum, mean, data movement) on exact operands stay exact, and so do the
  transcendentals at points where the value is rational (exp(0) = 1, sin(0) = 0, cos(0) = 1,
  tanh(0) = 0, sigmoid(0) = 1/2, sqrt of a square of a rational).
* an mpmath interval (``mpmath.iv`` with ``iv.prec = 300`` bits) -- a rigorous enclosure of an
  irrational value. tanh, sigmoid, exp, sin, cos and sqrt are evaluated with mpmath at 300 bits of
  precision in its interval context, which rounds every endpoint outward, so the exact real value
  is guaranteed to lie inside. tanh(x) is t/(t + 2) with t = expm1(2x) for |x| <= 1/2 and
  ±(1 - 2/(exp(2|x|) + 1)) otherwise; sigmoid(x) is 1/(1 + exp(-x)). These formulas have no
  cancellation, so even tiny values get enclosures that are tight in *relative* terms. Anything
  computed from such a value stays an interval (outward rounded, 300 bits); the enclosures are
  ~2^-290 wide relative, far below the float64 ulps of the bounds being checked.
* :data:`UNDEF` -- the real value does not exist (division by zero, sqrt of a negative number);
  a sound real-semantics interval must then carry its ``nan`` flag.
* :data:`UNSURE` -- the 300-bit enclosure cannot decide a case split (a divisor or sqrt argument
  whose enclosure straddles 0); the tests' ``check_real`` skips such elements and counts them.

The tests' ``check_real`` (tests/bounds/exact_eval.py) compares with the float64 interval endpoints converted *exactly* (a float
compares exactly with a ``Fraction`` in Python, and ``mpf(float)`` is exact), so no tolerance is
involved anywhere.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import numpy as np
from mpmath import iv

from .errors import InputError
from .exact_scalar import (PREC, UNDEF, UNSURE, _ends, s_abs, s_add, s_clamp, s_cos, s_div, s_exp,
                           s_leaky, s_max, s_min, s_mul, s_neg, s_relu, s_sigmoid, s_step, s_sin, s_sqrt, s_square,
                           s_sub, s_sum, s_tanh)
from .ir.graph import Graph
from .ir.shapes import index_tuple, normalize_axes, resolve_reshape


# -- array helpers -----------------------------------------------------------------------------

def obj(a) -> np.ndarray:
    """An object array of Fractions from numbers (floats are taken exactly)."""
    arr = np.asarray(a, dtype=object)
    out = np.empty(arr.shape, dtype=object)
    for i, v in enumerate(arr.reshape(-1)):
        out.reshape(-1)[i] = v if isinstance(v, Fraction) else Fraction(float(v)) \
            if not isinstance(v, (int, np.integer)) else Fraction(int(v))
    return out


def _ew1(f, a: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape, dtype=object)
    fo, fa = out.reshape(-1), a.reshape(-1)
    for i in range(fa.size):
        fo[i] = f(fa[i])
    return out


def _ew2(f, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.broadcast_arrays(a, b)
    out = np.empty(a.shape, dtype=object)
    fo, fa, fb = out.reshape(-1), a.reshape(-1), b.reshape(-1)
    for i in range(fo.size):
        fo[i] = f(fa[i], fb[i])
    return out


def _dot(x: np.ndarray, wt: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """x [..., K] · wt [K, N] (+ b[N]), exactly."""
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    out = np.empty((x2.shape[0], wt.shape[1]), dtype=object)
    for r in range(x2.shape[0]):
        for j in range(wt.shape[1]):
            acc = s_sum(s_mul(x2[r, k], wt[k, j]) for k in range(x2.shape[1]))
            out[r, j] = acc if b is None else s_add(acc, b[j])
    return out.reshape(lead + (wt.shape[1],))


def _pad(x: np.ndarray, pads, value) -> np.ndarray:
    top, left, bottom, right = pads
    n, c, h, w = x.shape
    out = np.empty((n, c, h + top + bottom, w + left + right), dtype=object)
    out.fill(value)
    out[:, :, top:top + h, left:left + w] = x
    return out


def _conv2d(x, w, b=None, *, stride, pads, dilation):
    xp = _pad(x, pads, Fraction(0))
    cout, cin, kh, kw = w.shape
    oh = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.empty((x.shape[0], cout, oh, ow), dtype=object)
    for n in range(x.shape[0]):
        for co in range(cout):
            for p in range(oh):
                for q in range(ow):
                    terms = (s_mul(xp[n, ci, p * stride[0] + i * dilation[0], q * stride[1] + j * dilation[1]],
                                   w[co, ci, i, j])
                             for ci in range(cin) for i in range(kh) for j in range(kw))
                    acc = s_sum(terms)
                    out[n, co, p, q] = acc if b is None else s_add(acc, b[co])
    return out


def _windows(x, kernel, stride, pads):
    """Yield (n, c, p, q, [in-bounds elements], padded count) for NCHW pooling."""
    stride = stride or kernel
    n_, c_, h, w = x.shape
    oh = (h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1
    ow = (w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1
    for n in range(n_):
        for c in range(c_):
            for p in range(oh):
                for q in range(ow):
                    elems = []
                    for i in range(kernel[0]):
                        for j in range(kernel[1]):
                            r, s = p * stride[0] + i - pads[0], q * stride[1] + j - pads[1]
                            if 0 <= r < h and 0 <= s < w:
                                elems.append(x[n, c, r, s])
                    yield n, c, p, q, elems, (oh, ow)


def _avg_pool(x, *, kernel, stride, pads, count_include_pad):
    out = None
    for n, c, p, q, elems, (oh, ow) in _windows(x, kernel, stride, pads):
        if out is None:
            out = np.empty((x.shape[0], x.shape[1], oh, ow), dtype=object)
        count = kernel[0] * kernel[1] if (count_include_pad or not any(pads)) else len(elems)
        out[n, c, p, q] = s_div(s_sum(elems), Fraction(count))
    return out


def _max_pool(x, *, kernel, stride, pads):
    out = None
    for n, c, p, q, elems, (oh, ow) in _windows(x, kernel, stride, pads):
        if out is None:
            out = np.empty((x.shape[0], x.shape[1], oh, ow), dtype=object)
        acc = elems[0]
        for e in elems[1:]:
            acc = s_max(acc, e)
        out[n, c, p, q] = acc
    return out


def _reduce(x, axes, keepdims, mean: bool):
    ax = normalize_axes(axes, x.ndim)
    keep = [i for i in range(x.ndim) if i not in ax]
    moved = np.transpose(x, keep + list(ax))
    flat = moved.reshape(moved.shape[:len(keep)] + (-1,))
    out = np.empty(flat.shape[:-1], dtype=object)
    n = flat.shape[-1]
    for idx in np.ndindex(*flat.shape[:-1]):
        s = s_sum(flat[idx + (k,)] for k in range(n))
        out[idx] = s_div(s, Fraction(n)) if mean else s
    if keepdims:
        out = out.reshape(tuple(1 if i in ax else d for i, d in enumerate(x.shape)))
    return out


def _batch_norm(x, m, v, g, b, *, eps):
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    m, v, g, b = (t.reshape(shape) for t in (m, v, g, b))
    s = _ew1(s_sqrt, _ew2(s_add, v, np.array(Fraction(eps), dtype=object)))
    return _ew2(s_add, _ew2(s_mul, _ew2(s_div, _ew2(s_sub, x, m), s), g), b)


def _const(x: float) -> np.ndarray:
    return np.array(Fraction(x), dtype=object)


RULES: dict[str, Any] = {
    "identity": lambda a: a.copy(),
    "neg": lambda a: _ew1(s_neg, a),
    "abs": lambda a: _ew1(s_abs, a),
    "relu": lambda a: _ew1(s_relu, a),
    "step": lambda a: _ew1(s_step, a),
    "leaky_relu": lambda a, *, alpha: _ew1(lambda v: s_leaky(v, Fraction(alpha)), a),
    "clamp": lambda a, *, lo, hi: _ew1(lambda v: s_clamp(v, lo, hi), a),
    "tanh": lambda a: _ew1(s_tanh, a),
    "sigmoid": lambda a: _ew1(s_sigmoid, a),
    "exp": lambda a: _ew1(s_exp, a),
    "sin": lambda a: _ew1(s_sin, a),
    "cos": lambda a: _ew1(s_cos, a),
    "sqrt": lambda a: _ew1(s_sqrt, a),
    "square": lambda a: _ew1(s_square, a),
    "add": lambda a, b: _ew2(s_add, a, b),
    "sub": lambda a, b: _ew2(s_sub, a, b),
    "mul": lambda a, b: _ew2(s_mul, a, b),
    "div": lambda a, b: _ew2(s_div, a, b),
    "maximum": lambda a, b: _ew2(s_max, a, b),
    "minimum": lambda a, b: _ew2(s_min, a, b),
    "linear": lambda x, w, b=None: _dot(x, w.T, b),
    "matmul": lambda a, b: _dot(a, b, None),
    "conv2d": _conv2d,
    "batch_norm": _batch_norm,
    "avg_pool2d": _avg_pool,
    "max_pool2d": _max_pool,
    "sum": lambda x, *, axes, keepdims: _reduce(x, axes, keepdims, mean=False),
    "mean": lambda x, *, axes, keepdims: _reduce(x, axes, keepdims, mean=True),
    "concat": lambda *xs, axis: np.concatenate(xs, axis=axis),
    "reshape": lambda x, *, shape: x.reshape(resolve_reshape(x.shape, shape)),
    "transpose": lambda x, *, perm: np.transpose(x, perm),
    "slice": lambda x, *, index: np.asarray(x[index_tuple(index)], dtype=object).reshape(
        np.broadcast_to(np.zeros((), bool), x.shape)[index_tuple(index)].shape),
}


def exact_eval(graph: Graph, inputs: Sequence[Any]) -> dict[int, np.ndarray]:
    """The exact real value of every node (env: value id -> object array); mpmath's interval
    context works at :data:`PREC` bits meanwhile (restored afterwards)."""
    if len(inputs) != len(graph.inputs):
        raise InputError(f"the graph takes {len(graph.inputs)} inputs, got {len(inputs)}")
    env: dict[int, np.ndarray] = {}
    for v, x in zip(graph.inputs, inputs):
        arr = obj(x)
        if arr.shape != v.shape:
            raise InputError(f"input {v.name or v}: shape {list(arr.shape)}, expected {list(v.shape)}")
        env[v.id] = arr
    for p in graph.params:
        env[p.value.id] = obj(p.data.astype(np.float64))
    saved, iv.prec = iv.prec, PREC  # mpmath's interval context is process-wide: set, then restored
    try:
        for e in graph.equations:
            if e.op not in RULES:
                raise InputError(f"{e.describe()}: no exact real semantics for op {e.op!r}")
            env[e.out.id] = np.asarray(RULES[e.op](*(env[i] for i in e.inputs), **dict(e.attrs)), dtype=object)
    finally:
        iv.prec = saved
    return env


__all__ = ["PREC", "UNDEF", "UNSURE", "_ends", "exact_eval", "obj", "s_add", "s_mul"]
