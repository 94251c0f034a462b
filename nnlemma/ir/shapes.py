"""Shape rules: one function per op, ``rule(input_shapes, **attrs) -> output shape``.

A rule raises :class:`ShapeError` (a plain message; the builder adds the equation) when the
operand shapes or attributes do not fit. Every op of :data:`nnlemma.ops.OPS` has exactly one rule
here (checked by the coverage test).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import ShapeError

Shape = tuple[int, ...]


def broadcast(*shapes: Shape) -> Shape:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"shapes {' and '.join(map(str, shapes))} do not broadcast") from None


def _same(shapes, **_):
    return shapes[0]


def _binary(shapes, **_):
    return broadcast(*shapes)


def _linear(shapes, **_):
    x, w = shapes[0], shapes[1]
    if len(w) != 2:
        raise ShapeError(f"linear weight must be 2-D [out, in], got {w}")
    if len(x) < 1 or x[-1] != w[1]:
        raise ShapeError(f"linear input {x} does not end in in_features={w[1]}")
    if len(shapes) == 3 and shapes[2] != (w[0],):
        raise ShapeError(f"linear bias must be [{w[0]}], got {shapes[2]}")
    return x[:-1] + (w[0],)


def _matmul(shapes, **_):
    a, b = shapes
    if len(b) != 2:
        raise ShapeError(f"matmul right operand must be 2-D [k, m], got {b}")
    if len(a) < 1 or a[-1] != b[0]:
        raise ShapeError(f"matmul shapes {a} @ {b}: inner dimensions differ")
    return a[:-1] + (b[1],)


def _window_out(size: int, k: int, stride: int, lo: int, hi: int, dil: int = 1) -> int:
    span = dil * (k - 1) + 1
    n = (size + lo + hi - span) // stride + 1
    if n < 1:
        raise ShapeError(f"window {k} (dilation {dil}) does not fit input extent {size} with pads ({lo}, {hi})")
    return n


def _conv2d(shapes, stride, pads, dilation):
    x, w = shapes[0], shapes[1]
    if len(x) != 4 or len(w) != 4:
        raise ShapeError(f"conv2d needs NCHW input and [out, in, kh, kw] weight, got {x} and {w}")
    if x[1] != w[1]:
        raise ShapeError(f"conv2d input has {x[1]} channels, weight expects {w[1]}")
    if len(shapes) == 3 and shapes[2] != (w[0],):
        raise ShapeError(f"conv2d bias must be [{w[0]}], got {shapes[2]}")
    oh = _window_out(x[2], w[2], stride[0], pads[0], pads[2], dilation[0])
    ow = _window_out(x[3], w[3], stride[1], pads[1], pads[3], dilation[1])
    return (x[0], w[0], oh, ow)


def _batch_norm(shapes, eps):
    x = shapes[0]
    if len(x) < 2:
        raise ShapeError(f"batch_norm input must have a channel axis 1, got {x}")
    for s in shapes[1:]:
        if s != (x[1],):
            raise ShapeError(f"batch_norm statistics must be [{x[1]}], got {s}")
    return x


def _pool(shapes, kernel, stride, pads, **_):
    x = shapes[0]
    if len(x) != 4:
        raise ShapeError(f"pooling needs an NCHW input, got {x}")
    stride = stride or kernel
    if pads[0] >= kernel[0] or pads[1] >= kernel[1] or pads[2] >= kernel[0] or pads[3] >= kernel[1]:
        raise ShapeError(f"pooling pads {pads} must be smaller than the kernel {kernel}")
    oh = _window_out(x[2], kernel[0], stride[0], pads[0], pads[2])
    ow = _window_out(x[3], kernel[1], stride[1], pads[1], pads[3])
    return (x[0], x[1], oh, ow)


def normalize_axes(axes, ndim: int) -> tuple[int, ...]:
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} out of range for rank {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {tuple(axes)}")
    return tuple(sorted(out))


def _reduce(shapes, axes, keepdims):
    x = shapes[0]
    ax = normalize_axes(axes, len(x))
    if not ax:
        raise ShapeError("reduction needs at least one axis")
    if keepdims:
        return tuple(1 if i in ax else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in ax)


def _concat(shapes, axis):
    first = shapes[0]
    (ax,) = normalize_axes((axis,), len(first))
    for s in shapes[1:]:
        if len(s) != len(first) or any(a != b for i, (a, b) in enumerate(zip(s, first)) if i != ax):
            raise ShapeError(f"concat along axis {axis}: shapes {first} and {s} differ off the axis")
    return first[:ax] + (sum(s[ax] for s in shapes),) + first[ax + 1:]


def resolve_reshape(x: Shape, shape: Shape) -> Shape:
    out = []
    for i, d in enumerate(shape):
        if d == 0:
            if i >= len(x):
                raise ShapeError(f"reshape entry 0 at position {i} has no input dimension to copy")
            out.append(x[i])
        elif d >= -1:
            out.append(d)
        else:
            raise ShapeError(f"reshape entry {d} is invalid")
    size = math.prod(x)  # exact Python integers: no int64 wrap-around
    if out.count(-1) > 1:
        raise ShapeError(f"reshape {shape} has more than one -1")
    if -1 in out:
        rest = math.prod(d for d in out if d != -1)
        if rest == 0 or size % rest:
            raise ShapeError(f"cannot reshape {x} to {shape}")
        out[out.index(-1)] = size // rest
    if math.prod(out) != size:
        raise ShapeError(f"cannot reshape {x} ({size} elements) to {tuple(out)}")
    return tuple(out)


def _reshape(shapes, shape):
    return resolve_reshape(shapes[0], shape)


def _transpose(shapes, perm):
    x = shapes[0]
    if sorted(perm) != list(range(len(x))):
        raise ShapeError(f"transpose perm {perm} is not a permutation of rank {len(x)}")
    return tuple(x[p] for p in perm)


def index_tuple(index) -> tuple:
    """The numpy index for a ``slice`` op's ``index`` attribute."""
    return tuple(e[0] if len(e) == 1 else slice(*e) for e in index)


def _slice(shapes, index):
    x = shapes[0]
    if len(index) > len(x):
        raise ShapeError(f"index with {len(index)} entries on a rank-{len(x)} value")
    for axis, e in enumerate(index):
        if len(e) == 1 and not -x[axis] <= e[0] < x[axis]:
            raise ShapeError(f"index {e[0]} out of range for axis {axis} of size {x[axis]}")
    shape = np.broadcast_to(np.zeros((), np.bool_), x)[index_tuple(index)].shape
    if 0 in shape:
        raise ShapeError(f"slice {index} of {x} is empty")
    return tuple(int(d) for d in shape)


SHAPE_RULES: dict[str, Callable[..., Shape]] = {
    **{op: _same for op in ("identity", "neg", "abs", "relu", "step", "leaky_relu", "clamp", "tanh", "sigmoid",
                            "exp", "sin", "cos", "sqrt", "square")},
    **{op: _binary for op in ("add", "sub", "mul", "div", "maximum", "minimum")},
    "linear": _linear,
    "matmul": _matmul,
    "conv2d": _conv2d,
    "batch_norm": _batch_norm,
    "avg_pool2d": _pool,
    "max_pool2d": _pool,
    "sum": _reduce,
    "mean": _reduce,
    "concat": _concat,
    "reshape": _reshape,
    "transpose": _transpose,
    "slice": _slice,
}
