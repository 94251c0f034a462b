"""Graph-to-graph transforms that keep value ids (so provenance and printed ids stay stable).

* :func:`prune` drops the equations and parameters no output depends on (derivative graphs carry
  the primal outputs and unused cotangents along; pruning removes them). Inputs are kept: they
  are the calling convention.
* :func:`dedupe` merges parameters with equal data and equations computing the same op of the
  same operands (common subexpressions). The kernel is deterministic, so a merged node has
  exactly the values of every node it replaces: the graph's function is unchanged, bit for bit.
  Nested derivative graphs repeat the forward pass once per derivative (and their weights once
  per trace); merging shrinks what bounding has to walk.
* :func:`params_as_inputs` turns named parameters into graph inputs (appended after the existing
  inputs, in the order given), so one traced graph serves every value of them — training
  evaluates the same gradient graph at each step's weights.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import IRError
from .builder import Builder
from .graph import Graph


def _rebuild(graph: Graph, keep_eqns, keep_params, extra_inputs) -> Graph:
    b = Builder()
    for v in graph.inputs:
        b.input(v.shape, v.name, vid=v.id)
    for p in extra_inputs:
        b.input(p.value.shape, p.value.name, vid=p.value.id)
    for p in graph.params:
        if p.value.id in keep_params:
            b.param(p.data, p.value.name, vid=p.value.id)
    for e in graph.equations:
        if e.out.id in keep_eqns:
            b.eqn(e.op, e.inputs, dict(e.attrs), name=e.name, source=e.source, vid=e.out.id, out_name=e.out.name)
    return b.build(graph.outputs)


def prune(graph: Graph) -> Graph:
    """The graph without equations and parameters that no output depends on."""
    need = set(graph.outputs)
    keep = set()
    for e in reversed(graph.equations):
        if e.out.id in need:
            keep.add(e.out.id)
            need.update(e.inputs)
    params = {p.value.id for p in graph.params if p.value.id in need}
    if len(keep) == len(graph.equations) and len(params) == len(graph.params):
        return graph
    return _rebuild(graph, keep, params, [])


def params_as_inputs(graph: Graph, names: Sequence[str]) -> Graph:
    """The graph with the parameters named ``names`` as extra inputs, in that order."""
    by_name = {p.value.name: p for p in graph.params if p.value.name is not None}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise IRError(f"no parameter named {missing[0]!r} in the graph (named: {sorted(by_name)})")
    lifted = [by_name[n] for n in names]
    lifted_ids = {p.value.id for p in lifted}
    return _rebuild(graph, {e.out.id for e in graph.equations},
                    {p.value.id for p in graph.params if p.value.id not in lifted_ids}, lifted)


def dedupe(graph: Graph) -> Graph:
    """Common-subexpression elimination (see the module docstring); keeps the first id of each."""
    alias: dict[int, int] = {}
    seen_params: dict[tuple, int] = {}
    keep_params = set()
    for p in graph.params:
        data = np.ascontiguousarray(p.data)
        key = (str(data.dtype), data.shape, data.tobytes())
        if key in seen_params:
            alias[p.value.id] = seen_params[key]
        else:
            seen_params[key] = p.value.id
            keep_params.add(p.value.id)
    seen: dict[tuple, int] = {}
    b = Builder()
    for v in graph.inputs:
        b.input(v.shape, v.name, vid=v.id)
    for p in graph.params:
        if p.value.id in keep_params:
            b.param(p.data, p.value.name, vid=p.value.id)
    for e in graph.equations:
        inputs = tuple(alias.get(i, i) for i in e.inputs)
        key = (e.op, inputs, repr(e.attrs))
        if key in seen:
            alias[e.out.id] = seen[key]
            continue
        seen[key] = e.out.id
        b.eqn(e.op, inputs, dict(e.attrs), name=e.name, source=e.source, vid=e.out.id, out_name=e.out.name)
    if not alias:
        return graph
    return b.build(tuple(alias.get(o, o) for o in graph.outputs))
