"""The one forward interpreter loop, shared by every rule table (kernel now; bounds later).

``interpret(graph, rules, inputs, param_value)`` walks the equations in order and returns the
``env`` dict mapping every value id to its result; nothing is stored on the graph. A failure inside
a rule is re-raised as :class:`KernelError` naming the equation and its source line.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import InputError, KernelError, NnlemmaError
from .ir.graph import Graph, Param


def interpret(graph: Graph, rules: Mapping[str, Callable[..., Any]], inputs: Sequence[Any],
              param_value: Callable[[Param], Any] = lambda p: p.data) -> dict[int, Any]:
    if len(inputs) != len(graph.inputs):
        raise InputError(f"graph takes {len(graph.inputs)} input(s), got {len(inputs)}")
    env: dict[int, Any] = {v.id: x for v, x in zip(graph.inputs, inputs)}
    for p in graph.params:
        env[p.value.id] = param_value(p)
    for e in graph.equations:
        rule = rules.get(e.op)
        if rule is None:
            raise KernelError(f"no rule for op {e.op!r} at {e.describe()}")
        try:
            env[e.out.id] = rule(*(env[i] for i in e.inputs), **dict(e.attrs))
        except NnlemmaError:
            raise
        except Exception as exc:  # a rule bug or resource failure: name the equation
            raise KernelError(f"{e.describe()}: {type(exc).__name__}: {exc}") from exc
    return env


def as_input(x: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Check and convert one kernel input: shape must match; values are rounded to float32."""
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"input {name}: dtype {arr.dtype} is not numeric")
    if arr.shape != tuple(shape):
        raise InputError(f"input {name}: expected shape {list(shape)}, got {list(arr.shape)}")
    with np.errstate(over="ignore"):
        return np.array(arr, dtype=np.float32, order="C")  # keeps rank 0 (ascontiguousarray would not)


def run(graph: Graph, *inputs: Any) -> list[np.ndarray]:
    """Run the float32 kernel on ``graph``; returns the output arrays."""
    from .kernels import KERNEL_RULES

    if len(inputs) != len(graph.inputs):
        raise InputError(f"graph takes {len(graph.inputs)} input(s), got {len(inputs)}")
    xs = [as_input(x, v.shape, v.name or f"%{v.id}") for x, v in zip(inputs, graph.inputs)]
    env = interpret(graph, KERNEL_RULES, xs)
    return [env[i] for i in graph.outputs]
