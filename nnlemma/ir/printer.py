"""Stable text form of a graph (used by ``nnlemma inspect`` and as test goldens).

Format::

    graph(%0:f32[1,5] "input") {
      param %1:f32[5,50] "W1"
      %3:f32[1,50] = matmul(%0, %1)
      %4:f32[1,50] = relu(%3)  # node 'relu_1'
      return %4
    }

Attributes print in sorted key order with ``repr`` of their (float32-exact) values, so the text is
a deterministic function of the graph. Parameters with at most 4 elements show their values.
"""

from __future__ import annotations

from .graph import Graph, Value


def _val(v: Value) -> str:
    return f"{v}" + (f" {v.name!r}" if v.name else "")


def format_attrs(attrs) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in attrs)


def format_graph(graph: Graph) -> str:
    lines = [f"graph({', '.join(_val(v) for v in graph.inputs)}) {{"]
    for p in graph.params:
        line = f"  param {_val(p.value)}"
        if p.data.size <= 4:  # show small constants (literals, scalars) inline
            line += " = " + repr([float(v) for v in p.data.reshape(-1)])
        lines.append(line)
    for e in graph.equations:
        args = ", ".join(f"%{i}" for i in e.inputs)
        attrs = format_attrs(e.attrs)
        line = f"  {e.out} = {e.op}({args}{'; ' + attrs if attrs else ''})"
        if e.name:
            line += f"  # node {e.name!r}"
        lines.append(line)
    lines.append(f"  return {', '.join(f'%{i}' for i in graph.outputs)}")
    lines.append("}")
    return "\n".join(lines)
