"""A whole graph's float32 semantics as FP terms (one term per output element).

Used where one formula for the whole network is wanted: the monolithic baseline of the
obligations benchmark and small exact decisions. Each element is built with the op's rule from
:mod:`encoders.fp32`, so it agrees with the kernel wherever the per-op encodings do. Which input
element a data-movement op copies is found by running the kernel's own rule on element indices.
Ops without an encoding (transcendentals, and ops this walker does not decompose) raise
:class:`~encoders.terms.EncodingError` naming the equation.
"""

from __future__ import annotations

import numpy as np

from nnlemma.ir.graph import Graph
from nnlemma.kernels import KERNEL_RULES

from . import fp32
from .terms import EncodingError, Term, fp_bits

F32 = np.float32
_MOVES = {"reshape", "transpose", "slice", "concat"}


def _consts(data: np.ndarray) -> np.ndarray:
    out = np.empty(data.shape, dtype=object)
    for idx in np.ndindex(*data.shape):
        out[idx] = fp_bits(int(np.asarray(data[idx], F32).view(np.uint32)))
    return out


def encode_graph(graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Object arrays of terms for each graph output, given object arrays of input terms."""
    env: dict[int, np.ndarray] = {v.id: np.asarray(x, dtype=object).reshape(v.shape)
                                  for v, x in zip(graph.inputs, inputs)}
    for p in graph.params:
        env[p.value.id] = _consts(np.asarray(p.data, F32))
    for e in graph.equations:
        args = [env[i] for i in e.inputs]
        attrs = e.attr_dict
        shape = e.out.shape
        if e.op in _MOVES:
            sizes = np.cumsum([0] + [a.size for a in args])
            ids = [np.arange(sizes[n], sizes[n + 1], dtype=F32).reshape(a.shape) for n, a in enumerate(args)]
            where = np.asarray(KERNEL_RULES[e.op](*ids, **attrs)).astype(np.int64)
            flat = np.concatenate([a.reshape(-1) for a in args])
            env[e.out.id] = flat[where]
        elif e.op in ("linear", "matmul"):
            x, w = args[0], args[1]
            wt = w if e.op == "linear" else w.T
            out = np.empty(shape, dtype=object)
            for idx in np.ndindex(*shape):
                r, j = idx[:-1], idx[-1]
                bias = args[2][j] if len(args) > 2 else None
                out[idx] = fp32.fold(list(x[r]), list(wt[j]), bias)
            env[e.out.id] = out
        elif e.op in fp32.ELEMENTWISE:
            bargs = np.broadcast_arrays(*args)
            out = np.empty(shape, dtype=object)
            for idx in np.ndindex(*shape):
                out[idx] = fp32.FP_RULES[e.op](attrs, *(a[idx] for a in bargs))
            env[e.out.id] = out
        else:
            raise EncodingError(f"no whole-graph FP encoding for {e.describe()}")
    return [env[i] for i in graph.outputs]


def output_terms(graph: Graph, names: str = "x") -> tuple[list[Term], list[Term]]:
    """(input variables, flat output terms) for a single-input graph."""
    from .terms import F32 as SORT, var
    (v,) = graph.inputs
    xs = [var(f"{names}{i}", SORT) for i in range(v.size)]
    (y,) = encode_graph(graph, [np.array(xs, dtype=object)])
    return xs, list(y.reshape(-1))
