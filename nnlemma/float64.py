"""A float64 reference interpreter: numpy float64 per op, in numpy's own summation order.

It is NOT nnlemma's semantics (that is the float32 kernel, SEMANTICS.md) and nothing is verified
with it. It serves float64 training (:mod:`nnlemma.train`, ``dtype="float64"``) and tests that
compare derivative formulas with finite differences without float32 rounding in the way. Every op
of the table has an entry."""

from __future__ import annotations

import numpy as np

from nnlemma.interpret import interpret
from nnlemma.ir.shapes import index_tuple, resolve_reshape


def _sum(x, *, axes, keepdims):
    return np.sum(x, axis=tuple(axes), keepdims=bool(keepdims))


def _windows(xp, kh, kw, stride, dil, oh, ow):
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, :, i * dil[0]:i * dil[0] + stride[0] * (oh - 1) + 1:stride[0],
                           j * dil[1]:j * dil[1] + stride[1] * (ow - 1) + 1:stride[1]]


def _geometry(shape, kh, kw, stride, pads, dil):
    top, left, bottom, right = pads
    oh = (shape[2] + top + bottom - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (shape[3] + left + right - dil[1] * (kw - 1) - 1) // stride[1] + 1
    return oh, ow


def _pad(x, pads, value=0.0):
    top, left, bottom, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _conv2d(x, w, b=None, *, stride, pads, dilation):
    kh, kw = w.shape[2:]
    oh, ow = _geometry(x.shape, kh, kw, stride, pads, dilation)
    y = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for i, j, patch in _windows(_pad(x, pads), kh, kw, stride, dilation, oh, ow):
        y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return y if b is None else y + b[None, :, None, None]


def _avg_pool(x, *, kernel, stride, pads, count_include_pad):
    stride = stride or kernel
    oh, ow = _geometry(x.shape, *kernel, stride, pads, (1, 1))
    total = sum(p for _, _, p in _windows(_pad(x, pads), *kernel, stride, (1, 1), oh, ow))
    ones = _pad(np.ones((1, 1) + x.shape[2:]), pads, 1.0 if count_include_pad else 0.0)
    count = sum(p for _, _, p in _windows(ones, *kernel, stride, (1, 1), oh, ow))
    return total / count


def _max_pool(x, *, kernel, stride, pads):
    stride = stride or kernel
    oh, ow = _geometry(x.shape, *kernel, stride, pads, (1, 1))
    return np.maximum.reduce([p for _, _, p in _windows(_pad(x, pads, -np.inf), *kernel, stride, (1, 1), oh, ow)])


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
    "conv2d": _conv2d, "avg_pool2d": _avg_pool, "max_pool2d": _max_pool,
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
