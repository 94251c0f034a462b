"""The only way to make a :class:`Graph`: a builder that checks every equation as it is added.

Checks: the op exists, arity, attribute names/types/values (normalised by the op table),
operands are values already defined in this builder (definition before use), every value is
defined once (single assignment; also enforced for explicit ids when loading JSON), and the shape
rule accepts the operand shapes. Errors are :class:`IRError` and name the equation.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import ops as op_table
from ..errors import IRError, ShapeError
from .graph import Equation, Graph, Param, Value
from .shapes import SHAPE_RULES


def as_f32_array(data: Any, what: str) -> np.ndarray:
    """A read-only float32 copy of ``data``; non-float32 input is rounded to nearest even."""
    arr = np.asarray(data)
    if arr.dtype != np.float32:
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
                or arr.dtype == np.bool_):
            raise IRError(f"{what}: cannot convert dtype {arr.dtype} to float32")
        with np.errstate(over="ignore"):
            arr = arr.astype(np.float32)
    arr = np.array(arr, dtype=np.float32, copy=True)
    arr.setflags(write=False)
    return arr


class Builder:
    def __init__(self) -> None:
        self._values: dict[int, Value] = {}
        self._inputs: list[Value] = []
        self._params: list[Param] = []
        self._eqns: list[Equation] = []
        self._next = 0

    # -- definitions -------------------------------------------------------------------------
    def _fresh(self, shape: Sequence[int], name: str | None, vid: int | None) -> Value:
        if vid is None:
            vid = self._next
        if vid in self._values:
            raise IRError(f"value %{vid} ({name or 'unnamed'}) is defined twice (single assignment)")
        shape = tuple(int(d) for d in shape)
        if any(d < 1 for d in shape):
            raise IRError(f"value %{vid} ({name or 'unnamed'}): shape {shape} has a non-positive dimension")
        v = Value(vid, shape, name)
        self._values[vid] = v
        self._next = max(self._next, vid + 1)
        return v

    def input(self, shape: Sequence[int], name: str | None = None, *, vid: int | None = None) -> Value:
        v = self._fresh(shape, name, vid)
        self._inputs.append(v)
        return v

    def param(self, data: Any, name: str | None = None, *, vid: int | None = None) -> Value:
        arr = as_f32_array(data, f"parameter {name or ''}")
        v = self._fresh(arr.shape, name, vid)
        self._params.append(Param(v, arr))
        return v

    def eqn(self, op: str, inputs: Sequence[Value | int], attrs: dict[str, Any] | None = None, *,
            name: str | None = None, source: str | None = None, vid: int | None = None,
            out_name: str | None = None) -> Value:
        ids = tuple(i.id if isinstance(i, Value) else int(i) for i in inputs)
        where = f"equation %{self._next if vid is None else vid} = {op}({', '.join(f'%{i}' for i in ids)})"
        if name:
            where += f" [node {name!r}]"
        if source:
            where += f" (from {source})"
        where += ": "
        spec = op_table.get(op, where)
        spec.check_arity(len(ids), where)
        for i in ids:
            if i not in self._values:
                raise IRError(f"{where}operand %{i} is used before it is defined")
        norm = spec.normalize_attrs(dict(attrs or {}), where)
        shapes = [self._values[i].shape for i in ids]
        try:
            shape = SHAPE_RULES[op](shapes, **dict(norm))
        except ShapeError as exc:
            raise ShapeError(f"{where}{exc}") from None
        out = self._fresh(shape, out_name, vid)
        self._eqns.append(Equation(op, ids, norm, out, name, source))
        return out

    def value(self, vid: int) -> Value:
        return self._values[vid]

    def build(self, outputs: Sequence[Value | int]) -> Graph:
        ids = tuple(o.id if isinstance(o, Value) else int(o) for o in outputs)
        if not ids:
            raise IRError("a graph needs at least one output")
        for i in ids:
            if i not in self._values:
                raise IRError(f"output %{i} is not defined")
        return Graph(tuple(self._inputs), tuple(self._params), tuple(self._eqns), ids)


def rebuild(graph: Graph, input_shapes: Sequence[Sequence[int]]) -> Graph:
    """The same graph with new input shapes (e.g. another batch size), re-checked by the builder."""
    if len(input_shapes) != len(graph.inputs):
        raise IRError(f"graph has {len(graph.inputs)} inputs, got {len(input_shapes)} shapes")
    b = Builder()
    for v, s in zip(graph.inputs, input_shapes):
        b.input(s, v.name, vid=v.id)
    for p in graph.params:
        b.param(p.data, p.value.name, vid=p.value.id)
    for e in graph.equations:
        b.eqn(e.op, e.inputs, dict(e.attrs), name=e.name, source=e.source, vid=e.out.id, out_name=e.out.name)
    return b.build(graph.outputs)
