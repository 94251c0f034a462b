"""A float64 reference interpreter: numpy float64 per op, in numpy's own summation order.

It is NOT nnlemma's semantics (that is the float32 kernel, SEMANTICS.md) and nothing is verified
with it. It serves float64 training (:mod:`nnlemma.train`, ``dtype="float64"``) and tests that
compare derivative formulas with finite differences without float32 rounding in the way. Ops
without an entry (convolution, pooling) raise :class:`~nnlemma.errors.KernelError`."""

from __future__ import annotations

import numpy as np

from nnlemma.interpret import interpret
from nnlemma.ir.shapes import index_tuple, resolve_reshape


def _sum(x, *, axes, keepdims):
    return np.sum(x, axis=tuple(axes), keepdims=bool(keepdims))


F64_RULES = {
    "identity": lambda x: x, "neg": np.negative, "abs": np.abs,
    "relu": lambda x: np.where(x > 0, x, 0.0), "step": lambda x: np.where(x > 0, 1.0, 0.0),
    "leaky_relu": lambda x, *, alpha: np.where(x > 0, x, np.float64(np.float32(alpha)) * x),
    "clamp": lambda x, *, lo, hi: np.minimum(np.maximum(x, lo), hi),
    "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "exp": np.exp, "sin": np.sin, "cos": np.cos,
    "sqrt": np.sqrt, "square": lambda x: x * x,
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "maximum": np.maximum, "minimum": np.minimum,
    "linear": lambda x, w, b=None: x @ w.T + (0 if b is None else b),
    "matmul": lambda a, b: a @ b,
    "sum": _sum,
    "mean": lambda x, *, axes, keepdims: np.mean(x, axis=tuple(axes), keepdims=bool(keepdims)),
    "reshape": lambda x, *, shape: x.reshape(resolve_reshape(x.shape, shape)),
    "transpose": lambda x, *, perm: np.transpose(x, perm),
    "slice": lambda x, *, index: x[index_tuple(index)],
    "concat": lambda *xs, axis: np.concatenate(xs, axis),
    "batch_norm": lambda x, m, v, g, b, *, eps: ((x - m.reshape(1, -1, *[1] * (x.ndim - 2)))
                                                 / np.sqrt(v + np.float64(np.float32(eps))).reshape(1, -1, *[1] * (x.ndim - 2))
                                                 * g.reshape(1, -1, *[1] * (x.ndim - 2))
                                                 + b.reshape(1, -1, *[1] * (x.ndim - 2))),
}


def run64(graph, *inputs, params: dict | None = None) -> list[np.ndarray]:
    """The graph in float64; ``params`` replaces the parameters with these names."""
    params = params or {}
    env = interpret(graph, F64_RULES, [np.asarray(x, np.float64) for x in inputs],
                    param_value=lambda p: np.asarray(params.get(p.value.name, p.data), np.float64))
    return [env[o] for o in graph.outputs]
