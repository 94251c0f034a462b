"""The float32 kernel rule table: op name -> ``rule(*arrays, **attrs) -> float32 array``.

Every rule's result passes through :func:`canon`, so every NaN the kernel produces is the
canonical quiet NaN 0x7FC00000 whatever the CPU would have produced (x86 makes 0xFFC00000 for
inf − inf). The exact semantics of each op are in SEMANTICS.md.

``linear``, ``matmul`` and ``conv2d`` use the compiled folds of :mod:`nnlemma.kernels.fast`, which
give the same bits as the numpy folds in :mod:`nnlemma.kernels.fold` (and are those folds when
the C extension is not built).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir.shapes import resolve_reshape
from . import elementwise as ew
from . import fast, fold, transcendental as tr
from .float32 import canon

F32 = np.float32


def _reshape(x, *, shape):
    x = np.asarray(x, F32)
    return x.reshape(resolve_reshape(x.shape, shape)).copy()


def _concat(*xs, axis):
    return np.concatenate([np.asarray(x, F32) for x in xs], axis=axis)


_RAW: dict[str, Callable[..., np.ndarray]] = {
    "identity": lambda x: np.array(x, dtype=F32, copy=True),
    "neg": ew.neg,
    "abs": ew.abs_,
    "relu": ew.relu,
    "step": ew.step,
    "leaky_relu": ew.leaky_relu,
    "clamp": ew.clamp,
    "tanh": tr.tanh,
    "sigmoid": tr.sigmoid,
    "exp": tr.exp,
    "sin": tr.sin,
    "cos": tr.cos,
    "sqrt": ew.sqrt,
    "square": ew.square,
    "add": ew.add,
    "sub": ew.sub,
    "mul": ew.mul,
    "div": ew.div,
    "maximum": ew.maximum,
    "minimum": ew.minimum,
    "linear": fast.linear,
    "matmul": fast.matmul,
    "conv2d": fast.conv2d,
    "batch_norm": fold.batch_norm,
    "avg_pool2d": fold.avg_pool2d,
    "max_pool2d": fold.max_pool2d,
    "sum": fold.sum_,
    "mean": fold.mean,
    "concat": _concat,
    "reshape": _reshape,
    "transpose": lambda x, *, perm: np.array(np.transpose(np.asarray(x, F32), perm), order="C"),
    "slice": fold.slice_,
}


def _canonical(rule: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def run(*args, **attrs):
        with np.errstate(all="ignore"):
            return canon(np.asarray(rule(*args, **attrs), dtype=F32))

    run.__doc__ = rule.__doc__
    run.__wrapped__ = rule
    return run


KERNEL_RULES: dict[str, Callable[..., np.ndarray]] = {op: _canonical(r) for op, r in _RAW.items()}
