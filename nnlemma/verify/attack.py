"""Falsification: random sampling and projected gradient descent, always judged on the kernel.

The gradient is only a search heuristic: a float64 forward/backward pass through the graph
(``vjp`` rules below, for the common ops). Every candidate point is a float32 vector inside the
float32 box and is decided by running the float32 kernel and evaluating the property exactly, so
a reported counterexample never depends on the float64 approximation.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir.graph import Graph
from ..ir.shapes import index_tuple, resolve_reshape


def _sig(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


# forward float64 rules and their vjps: fwd(*xs, **attrs) -> y ; bwd(g, y, *xs, **attrs) -> grads
_F64: dict[str, tuple[Callable, Callable]] = {
    "identity": (lambda x: x, lambda g, y, x: [g]),
    "neg": (lambda x: -x, lambda g, y, x: [-g]),
    "relu": (lambda x: np.maximum(x, 0), lambda g, y, x: [g * (x > 0)]),
    "leaky_relu": (lambda x, alpha: np.where(x > 0, x, alpha * x),
                   lambda g, y, x, alpha: [g * np.where(x > 0, 1.0, alpha)]),
    "tanh": (np.tanh, lambda g, y, x: [g * (1 - y * y)]),
    "sigmoid": (_sig, lambda g, y, x: [g * y * (1 - y)]),
    "exp": (np.exp, lambda g, y, x: [g * y]),
    "sin": (np.sin, lambda g, y, x: [g * np.cos(x)]),
    "cos": (np.cos, lambda g, y, x: [-g * np.sin(x)]),
    "abs": (np.abs, lambda g, y, x: [g * np.sign(x)]),
    "square": (lambda x: x * x, lambda g, y, x: [2 * g * x]),
    "clamp": (lambda x, lo, hi: np.clip(x, lo, hi), lambda g, y, x, lo, hi: [g * ((x >= lo) & (x <= hi))]),
    "add": (lambda a, b: a + b, lambda g, y, a, b: [g, g]),
    "sub": (lambda a, b: a - b, lambda g, y, a, b: [g, -g]),
    "mul": (lambda a, b: a * b, lambda g, y, a, b: [g * b, g * a]),
    "div": (lambda a, b: a / b, lambda g, y, a, b: [g / b, -g * a / (b * b)]),
    "linear": (lambda x, w, b=None: x @ w.T + (0 if b is None else b),
               lambda g, y, x, w, b=None: [g @ w, None, None]),
    "matmul": (lambda a, b: a @ b, lambda g, y, a, b: [g @ b.T, None]),
    "reshape": (lambda x, shape: x.reshape(resolve_reshape(x.shape, shape)), lambda g, y, x, shape: [g.reshape(x.shape)]),
    "transpose": (lambda x, perm: np.transpose(x, perm), lambda g, y, x, perm: [np.transpose(g, np.argsort(perm))]),
    "slice": (lambda x, index: x[index_tuple(index)], None),
    "sum": (lambda x, axes, keepdims: x.sum(axis=tuple(axes), keepdims=bool(keepdims)), None),
}


def _unbroadcast(g: np.ndarray, shape) -> np.ndarray:
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, d in enumerate(shape):
        if d == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


def _slice_vjp(g, y, x, index):
    out = np.zeros_like(x)
    out[index_tuple(index)] = g
    return [out]


def _sum_vjp(g, y, x, axes, keepdims):
    ax = tuple(a % x.ndim for a in axes)
    if not keepdims:
        g = np.expand_dims(g, ax)
    return [np.broadcast_to(g, x.shape)]


_F64["slice"] = (_F64["slice"][0], _slice_vjp)
_F64["sum"] = (_F64["sum"][0], _sum_vjp)


def supports_gradient(graph: Graph) -> bool:
    return all(e.op in _F64 for e in graph.equations)


def forward64(graph: Graph, x: np.ndarray) -> dict[int, np.ndarray]:
    """Every value of a single-input graph in float64 arithmetic (a search heuristic only)."""
    env = {graph.inputs[0].id: x.astype(np.float64)}
    for p in graph.params:
        env[p.value.id] = p.data.astype(np.float64)
    with np.errstate(all="ignore"):
        for e in graph.equations:
            env[e.out.id] = _F64[e.op][0](*(env[i] for i in e.inputs), **dict(e.attrs))
    return env


def gradient(graph: Graph, x: np.ndarray, out_weights, with_output: bool = False):
    """d(Σ out_weights · output)/dx in float64 for a single-input, single-output graph.
    ``out_weights`` may be a function of the float64 output (chosen after the forward pass);
    with ``with_output`` the output is returned too."""
    env = forward64(graph, x)
    with np.errstate(all="ignore"):
        params = {p.value.id for p in graph.params}
        y = env[graph.outputs[0]]
        w = out_weights(y) if callable(out_weights) else out_weights
        grads = {graph.outputs[0]: np.broadcast_to(w, y.shape).astype(np.float64)}
        for e in reversed(graph.equations):
            g = grads.pop(e.out.id, None)
            if g is None:
                continue
            ins = [env[i] for i in e.inputs]
            for vid, gi, xi in zip(e.inputs, _F64[e.op][1](g, env[e.out.id], *ins, **dict(e.attrs)), ins):
                if gi is None or vid in params:
                    continue
                gi = _unbroadcast(np.asarray(gi), xi.shape)
                grads[vid] = grads[vid] + gi if vid in grads else gi
    g = grads.get(graph.inputs[0].id, np.zeros_like(x, dtype=np.float64))
    return (g, y) if with_output else g


def pgd_conjunction(graph: Graph, lo: np.ndarray, hi: np.ndarray, C: np.ndarray, d: np.ndarray,
                    rng: np.random.Generator, steps: int = 30, restarts: int = 4, start: np.ndarray | None = None,
                    dtype=np.float32) -> np.ndarray:
    """Candidates for a conjunction of atoms ``C_j·y + d_j <= 0``: signed-gradient descent on the
    currently largest atom (the max of the atoms is what must become <= 0). The first restart
    starts at ``start`` when given. Returns ``[restarts * steps, *shape]`` points of ``dtype``."""
    out = []
    width = hi.astype(np.float64) - lo.astype(np.float64)
    def worst_row(y):
        vals = C @ y.reshape(-1) + d
        return C[int(np.argmax(vals))].reshape(y.shape)

    for r in range(restarts):
        x = start.astype(np.float64) if (r == 0 and start is not None) else lo + rng.random(lo.shape) * width
        step = width / 4
        for _ in range(steps):
            g = gradient(graph, x, worst_row)
            x = np.clip(x - step * np.sign(g), lo, hi)
            step = step * 0.85
            out.append(np.clip(x.astype(dtype), lo, hi))
    return np.stack(out)
