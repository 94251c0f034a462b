"""Functional tensor API (``nl.relu(x)``, ``nl.concat([...], axis)`` ...), all through ``bind``."""

from __future__ import annotations

from typing import Any, Sequence

from .tensor import Tensor, _axes, bind


def relu(x): return bind("relu", x)
def step(x): return bind("step", x)
def leaky_relu(x, alpha=0.01): return bind("leaky_relu", x, alpha=alpha)
def tanh(x): return bind("tanh", x)
def sigmoid(x): return bind("sigmoid", x)
def exp(x): return bind("exp", x)
def sin(x): return bind("sin", x)
def cos(x): return bind("cos", x)
def sqrt(x): return bind("sqrt", x)
def square(x): return bind("square", x)
def abs(x): return bind("abs", x)  # noqa: A001 - mirrors torch.abs
def neg(x): return bind("neg", x)
def maximum(a, b): return bind("maximum", a, b)
def minimum(a, b): return bind("minimum", a, b)


def clamp(x, lo=None, hi=None):
    return bind("clamp", x, lo=float("-inf") if lo is None else lo, hi=float("inf") if hi is None else hi)


def hardtanh(x, min_val=-1.0, max_val=1.0):
    return clamp(x, min_val, max_val)


def sum(x, axis, keepdims=False):  # noqa: A001
    return bind("sum", x, axes=_axes(axis), keepdims=int(keepdims))


def mean(x, axis, keepdims=False):
    return bind("mean", x, axes=_axes(axis), keepdims=int(keepdims))


def concat(xs: Sequence[Any], axis: int = 0) -> Tensor:
    return bind("concat", *xs, axis=axis)


def stack(xs: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Stack equal-shaped tensors along a new axis (a reshape of each, then concat)."""
    shape = tuple(xs[0].shape)
    ax = axis % (len(shape) + 1)
    new = shape[:ax] + (1,) + shape[ax:]
    if shape:  # leave the leading (batch) size free, so the graph can be rebuilt for other batches
        new = tuple(-1 if i == (1 if ax == 0 else 0) else n for i, n in enumerate(new))
    return concat([bind("reshape", x, shape=new) for x in xs], axis=ax)


def reshape(x, shape): return bind("reshape", x, shape=tuple(shape))
def transpose(x, perm): return bind("transpose", x, perm=tuple(perm))
def linear(x, weight, bias=None):
    return bind("linear", x, weight) if bias is None else bind("linear", x, weight, bias)
