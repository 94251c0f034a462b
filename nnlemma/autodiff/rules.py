"""Derivative rules per op: reverse mode (``VJP_RULES``) and forward mode (``JVP_RULES``).

A rule builds its result from ordinary ops through :func:`nnlemma.bind`, so applied to concrete
tensors it computes eagerly with the float32 kernel, and applied to traced tensors it records
equations: a derivative is a NEW graph of ordinary ops that runs, prints, serialises and is
bounded like any other.

What a derivative graph means: it is the derivative of the **real-valued** network (each op's
exact derivative, composed by the chain rule), evaluated by the float32 kernel when run (each
derivative op rounds like any op) and bounded in real semantics when bounded. It is not the
derivative of the float32 kernel, which is a step function.

Conventions at kinks (an element of the Clarke generalized gradient is chosen; ``step(x)`` is 1
for x > 0 and 0 otherwise, so every choice below is the element at the kink's "inactive" side):

* ``relu'(0) = 0`` (as PyTorch); ``leaky_relu'(0) = alpha``; ``abs'(0) = 0`` (``sign(0) = 0``);
* ``clamp'`` is 1 strictly inside ``(lo, hi)`` and 0 at and beyond the bounds;
* ``maximum(a, b)`` passes the derivative to ``a`` where ``a > b`` and to ``b`` otherwise (ties
  go to the second operand, so ``maximum(x, 0)`` agrees with relu); ``minimum`` likewise to ``a``
  where ``a < b``;
* ``step' = 0`` everywhere (the jump at 0 has no Clarke gradient; 0 is the derivative off it);
* ``max_pool2d`` passes the derivative to the window's first maximising element in (kh, kw) order.
Masks are built as ``step(a − b)``; for finite a, b the rounded difference is > 0 exactly when
``a > b`` (gradual underflow: a nonzero exact difference never rounds to 0).

A VJP rule is ``rule(ct, out, *operands, **attrs) -> tuple`` of operand cotangents (None: zero, or
the operand is not differentiated). A JVP rule is ``rule(out, operands, tangents, **attrs)`` ->
the output tangent, where a None tangent is a symbolic zero. ``NO_VJP``/``NO_JVP`` give the reason
for each op without a rule (the coverage table lists both).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import DerivativeError
from ..tensor import bind
from .common import F32, _add, _c, _mask_maximum, _one_minus, _scale, _shape, _sign, _step, expand, unbroadcast
from .windowed import _jvp_max_pool, _vjp_avg_pool, _vjp_conv2d, _vjp_max_pool


# ---- reverse mode ------------------------------------------------------------------------------

def _vjp_linear(ct, out, x, w, b=None):
    ct_x = bind("matmul", ct, w)                           # [.., out] @ [out, in]
    lead = int(np.prod(_shape(ct)[:-1]))
    ct2 = bind("reshape", ct, shape=(lead, _shape(ct)[-1]))
    x2 = bind("reshape", x, shape=(lead, _shape(x)[-1]))
    ct_w = bind("matmul", bind("transpose", ct2, perm=(1, 0)), x2)   # [out, in]
    if b is None:
        return ct_x, ct_w
    return ct_x, ct_w, bind("sum", ct2, axes=(0,), keepdims=0)


def _vjp_matmul(ct, out, a, b):
    ct_a = bind("matmul", ct, bind("transpose", b, perm=(1, 0)))
    lead = int(np.prod(_shape(ct)[:-1]))
    a2 = bind("reshape", a, shape=(lead, _shape(a)[-1]))
    ct2 = bind("reshape", ct, shape=(lead, _shape(ct)[-1]))
    return ct_a, bind("matmul", bind("transpose", a2, perm=(1, 0)), ct2)


def _vjp_reduce(mean: bool):
    def rule(ct, out, x, *, axes, keepdims):
        xs = _shape(x)
        ax = tuple(a % len(xs) for a in axes)
        kept = tuple(1 if i in ax else d for i, d in enumerate(xs))
        g = ct if keepdims else bind("reshape", ct, shape=kept)
        g = expand(g, xs)
        if mean:
            g = bind("div", g, _c(float(np.prod([xs[a] for a in ax]))))
        return (g,)
    return rule


def _vjp_slice(ct, out, x, *, index):
    """Zero-pad the cotangent back: concatenate zero blocks before/after each sliced axis (unit
    steps only) and reshape dropped axes back."""
    xs = _shape(x)
    g = ct
    # restore axes dropped by integer indices first, as size-1 axes
    full = []
    for ax, e in enumerate(index):
        if len(e) == 1:
            full.append((e[0] % xs[ax], e[0] % xs[ax] + 1, 1))
        else:
            start, stop, step = e
            if step not in (None, 1):
                raise DerivativeError("vjp of slice: only unit steps")
            start, stop, _ = slice(start, stop).indices(xs[ax])
            full.append((start, stop, 1))
    kept = tuple(stop - start for start, stop, _ in full) + xs[len(full):]
    g = bind("reshape", g, shape=kept)
    for ax, (start, stop, _) in enumerate(full):
        parts = []
        shape = list(_shape(g))
        if start > 0:
            shape[ax] = start
            parts.append(np.zeros(shape, F32))
        parts.append(g)
        if stop < xs[ax]:
            shape[ax] = xs[ax] - stop
            parts.append(np.zeros(shape, F32))
        if len(parts) > 1:
            g = bind("concat", *parts, axis=ax)
    return (g,)


def _vjp_concat(ct, out, *xs, axis):
    ax = axis % len(_shape(ct))
    outs, start = [], 0
    for x in xs:
        n = _shape(x)[ax]
        index = tuple((None, None, None) if i != ax else (start, start + n, None) for i in range(len(_shape(ct))))
        outs.append(bind("slice", ct, index=index))
        start += n
    return tuple(outs)


def _vjp_batch_norm(ct, out, x, mean, var, gamma, beta, *, eps):
    C = _shape(x)[1]
    lay = (1, C) + (1,) * (len(_shape(x)) - 2)
    scale = bind("div", gamma, bind("sqrt", bind("add", var, _c(eps))))
    return bind("mul", ct, bind("reshape", scale, shape=lay)), None, None, None, None


VJP_RULES: dict[str, Callable[..., tuple]] = {
    "identity": lambda ct, out, x: (ct,),
    "neg": lambda ct, out, x: (bind("neg", ct),),
    "abs": lambda ct, out, x: (bind("mul", ct, _sign(x)),),
    "relu": lambda ct, out, x: (bind("mul", ct, _step(x)),),
    "step": lambda ct, out, x: (None,),
    "leaky_relu": lambda ct, out, x, *, alpha: (bind("mul", ct, bind(
        "add", _step(x), bind("mul", _c(alpha), _one_minus(_step(x))))),),
    "clamp": lambda ct, out, x, *, lo, hi: (bind("mul", ct, bind(
        "mul", _step(bind("sub", x, _c(lo))), _step(bind("sub", _c(hi), x)))),),
    "tanh": lambda ct, out, x: (bind("mul", ct, _one_minus(bind("mul", out, out))),),
    "sigmoid": lambda ct, out, x: (bind("mul", ct, bind("mul", out, _one_minus(out))),),
    "exp": lambda ct, out, x: (bind("mul", ct, out),),
    "sin": lambda ct, out, x: (bind("mul", ct, bind("cos", x)),),
    "cos": lambda ct, out, x: (bind("neg", bind("mul", ct, bind("sin", x))),),
    "sqrt": lambda ct, out, x: (bind("div", ct, bind("mul", _c(2.0), out)),),
    "square": lambda ct, out, x: (bind("mul", ct, bind("mul", _c(2.0), x)),),
    "add": lambda ct, out, a, b: (unbroadcast(ct, _shape(a)), unbroadcast(ct, _shape(b))),
    "sub": lambda ct, out, a, b: (unbroadcast(ct, _shape(a)), unbroadcast(bind("neg", ct), _shape(b))),
    "mul": lambda ct, out, a, b: (unbroadcast(bind("mul", ct, b), _shape(a)),
                                  unbroadcast(bind("mul", ct, a), _shape(b))),
    "div": lambda ct, out, a, b: (unbroadcast(bind("div", ct, b), _shape(a)),
                                  unbroadcast(bind("neg", bind("div", bind("mul", ct, out), b)), _shape(b))),
    "maximum": lambda ct, out, a, b: (unbroadcast(bind("mul", ct, _mask_maximum(a, b)), _shape(a)),
                                      unbroadcast(bind("mul", ct, _one_minus(_mask_maximum(a, b))), _shape(b))),
    "minimum": lambda ct, out, a, b: (unbroadcast(bind("mul", ct, _mask_maximum(b, a)), _shape(a)),
                                      unbroadcast(bind("mul", ct, _one_minus(_mask_maximum(b, a))), _shape(b))),
    "linear": _vjp_linear,
    "matmul": _vjp_matmul,
    "sum": _vjp_reduce(False),
    "mean": _vjp_reduce(True),
    "reshape": lambda ct, out, x, *, shape: (bind("reshape", ct, shape=_shape(x)),),
    "transpose": lambda ct, out, x, *, perm: (bind("transpose", ct, perm=tuple(int(i) for i in np.argsort(perm))),),
    "slice": _vjp_slice,
    "concat": _vjp_concat,
    "batch_norm": _vjp_batch_norm,
    "conv2d": _vjp_conv2d,
    "avg_pool2d": _vjp_avg_pool,
    "max_pool2d": _vjp_max_pool,
}

NO_VJP: dict[str, str] = {}


# ---- forward mode ------------------------------------------------------------------------------

def _jvp_binary(op):
    def rule(out, xs, ts, **attrs):
        (a, b), (ta, tb) = xs, ts
        if op == "add":
            return _add(ta, tb)
        if op == "sub":
            return _add(ta, None if tb is None else bind("neg", tb))
        if op == "mul":
            return _add(_scale(ta, b), _scale(tb, a))
        if op == "div":  # (ta − out·tb) / b
            num = _add(ta, None if tb is None else bind("neg", bind("mul", out, tb)))
            return None if num is None else bind("div", num, b)
        m = _mask_maximum(a, b) if op == "maximum" else _mask_maximum(b, a)
        return _add(_scale(ta, m), _scale(tb, _one_minus(m)))
    return rule


def _jvp_linear_op(op):
    """linear/matmul/conv2d are bilinear in (data, weight): t = op(tx, w) + op(x, tw) (+ tb)."""
    def rule(out, xs, ts, **attrs):
        x, w, *b = xs
        tx, tw, *tb = ts
        t = None if tx is None else bind(op, tx, w, **attrs)
        if tw is not None:
            t = _add(t, bind(op, x, tw, **attrs))
        if tb and tb[0] is not None:
            if op == "conv2d":
                C = _shape(tb[0])[0]
                t = _add(t, expand(bind("reshape", tb[0], shape=(1, C, 1, 1)), _shape(out)))
            else:
                t = _add(t, expand(tb[0], _shape(out)))
        return t
    return rule


def _jvp_unary(deriv):
    def rule(out, xs, ts, **attrs):
        return _scale(ts[0], deriv(out, xs[0], **attrs))
    return rule


def _jvp_linear_same(op):
    """Ops linear in their single operand: the tangent goes through the op itself."""
    def rule(out, xs, ts, **attrs):
        return None if ts[0] is None else bind(op, ts[0], **attrs)
    return rule


def _jvp_concat(out, xs, ts, *, axis):
    if all(t is None for t in ts):
        return None
    return bind("concat", *(np.zeros(_shape(x), F32) if t is None else t for x, t in zip(xs, ts)), axis=axis)


def _jvp_batch_norm(out, xs, ts, *, eps):
    if any(t is not None for t in ts[1:]):
        raise DerivativeError("jvp of batch_norm: only the data operand may vary")
    (x, mean, var, gamma, beta), tx = xs, ts[0]
    return None if tx is None else _vjp_batch_norm(tx, out, x, mean, var, gamma, beta, eps=eps)[0]


_D = {
    "abs": lambda out, x: _sign(x),
    "relu": lambda out, x: _step(x),
    "leaky_relu": lambda out, x, *, alpha: bind("add", _step(x), bind("mul", _c(alpha), _one_minus(_step(x)))),
    "clamp": lambda out, x, *, lo, hi: bind("mul", _step(bind("sub", x, _c(lo))), _step(bind("sub", _c(hi), x))),
    "tanh": lambda out, x: _one_minus(bind("mul", out, out)),
    "sigmoid": lambda out, x: bind("mul", out, _one_minus(out)),
    "exp": lambda out, x: out,
    "sin": lambda out, x: bind("cos", x),
    "cos": lambda out, x: bind("neg", bind("sin", x)),
    "sqrt": lambda out, x: bind("div", _c(0.5), out),
    "square": lambda out, x: bind("mul", _c(2.0), x),
}

JVP_RULES: dict[str, Callable[..., Any]] = {
    **{op: _jvp_unary(d) for op, d in _D.items()},
    "step": lambda out, xs, ts: None,
    **{op: _jvp_linear_same(op) for op in ("identity", "neg", "sum", "mean", "reshape", "transpose", "slice",
                                           "avg_pool2d")},
    **{op: _jvp_binary(op) for op in ("add", "sub", "mul", "div", "maximum", "minimum")},
    **{op: _jvp_linear_op(op) for op in ("linear", "matmul", "conv2d")},
    "concat": _jvp_concat,
    "batch_norm": _jvp_batch_norm,
    "max_pool2d": _jvp_max_pool,
}

NO_JVP: dict[str, str] = {}
