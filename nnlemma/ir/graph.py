"""The IR data structures: typed SSA values, equations and graphs (immutable).

A :class:`Graph` is ``(inputs, params, equations, outputs)`` in the style of a jaxpr. Every value
is float32 and has a static shape; each equation applies one op from :mod:`nnlemma.ops` to value
ids and defines exactly one new value. Graphs are only made by :class:`nnlemma.ir.Builder`, which
checks single assignment, definition before use, arity, attributes and shapes, so a ``Graph`` in
hand is always well formed. Results of running a graph live in an ``env`` dict returned by an
interpreter, never on these objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Value:
    """An SSA value: ``%id:f32[shape]``, optionally carrying a source name (ONNX tensor name,
    parameter path)."""

    id: int
    shape: tuple[int, ...]
    name: str | None = None

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __str__(self) -> str:
        return f"%{self.id}:f32[{','.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True, eq=False)
class Param:
    """A named float32 constant (weight, bias, literal). ``data`` is a read-only array."""

    value: Value
    data: np.ndarray


@dataclass(frozen=True)
class Equation:
    """``out = op(inputs...; attrs)``. ``name`` is the source node name (e.g. the ONNX node),
    ``source`` the user's source line recorded while tracing; both only serve error messages."""

    op: str
    inputs: tuple[int, ...]
    attrs: tuple[tuple[str, object], ...]
    out: Value
    name: str | None = None
    source: str | None = None

    @property
    def attr_dict(self) -> dict[str, object]:
        return dict(self.attrs)

    def describe(self) -> str:
        """A short description for error messages: ``%5 = relu(%4) [node 'relu_1']``."""
        args = ", ".join(f"%{i}" for i in self.inputs)
        tail = f" [node {self.name!r}]" if self.name else ""
        if self.source:
            tail += f" (from {self.source})"
        return f"%{self.out.id} = {self.op}({args}){tail}"


@dataclass(frozen=True, eq=False)
class Graph:
    inputs: tuple[Value, ...]
    params: tuple[Param, ...]
    equations: tuple[Equation, ...]
    outputs: tuple[int, ...]

    def values(self) -> dict[int, Value]:
        """Every value of the graph by id."""
        vals = {v.id: v for v in self.inputs}
        vals.update((p.value.id, p.value) for p in self.params)
        vals.update((e.out.id, e.out) for e in self.equations)
        return vals

    @property
    def output_values(self) -> tuple[Value, ...]:
        vals = self.values()
        return tuple(vals[i] for i in self.outputs)

    def param_count(self) -> int:
        return sum(p.value.size for p in self.params)

    def ops_used(self) -> list[str]:
        """The distinct ops of the graph, in first-use order."""
        return list(dict.fromkeys(e.op for e in self.equations))

    def __str__(self) -> str:
        from .printer import format_graph

        return format_graph(self)
