"""Small building blocks of the derivative rules (all through :func:`nnlemma.bind`)."""

from __future__ import annotations

import numpy as np

from ..tensor import bind

F32 = np.float32


def _c(v) -> np.ndarray:
    return np.asarray(v, F32)


def _shape(t) -> tuple[int, ...]:
    return tuple(t.shape)


def _step(x):
    return bind("step", x)


def _sign(x):
    """sign(x) with sign(0) = 0 (exact: the difference of two 0/1 masks)."""
    return bind("sub", _step(x), _step(bind("neg", x)))


def unbroadcast(ct, shape: tuple[int, ...]):
    """Sum ``ct`` over the axes numpy broadcasting added or stretched, back to ``shape``."""
    if ct is None or _shape(ct) == tuple(shape):
        return ct
    lead = len(_shape(ct)) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape) if d == 1 and _shape(ct)[lead + i] != 1)
    out = bind("sum", ct, axes=axes, keepdims=1) if axes else ct
    return bind("reshape", out, shape=tuple(shape))


def expand(ct, shape: tuple[int, ...]):
    """Broadcast ``ct`` to ``shape`` (multiplication by ones: exact, NaN stays NaN)."""
    if _shape(ct) == tuple(shape):
        return ct
    return bind("mul", ct, np.ones(shape, F32))


def _mask_maximum(a, b):
    return _step(bind("sub", a, b))


def _one_minus(m):
    return bind("sub", _c(1.0), m)


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return bind("add", a, b)


def _scale(t, m):
    return None if t is None else bind("mul", t, m)
