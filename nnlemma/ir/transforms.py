"""Graph-to-graph transforms that keep value ids (so provenance and printed ids stay stable).

* :func:`prune` drops the equations and parameters no output depends on (derivative graphs carry
  the primal outputs and unused cotangents along; pruning removes them). Inputs are kept: they
  are the calling convention.
* :func:`params_as_inputs` turns named parameters into graph inputs (appended after the existing
  inputs, in the order given), so one traced graph serves every value of them — training
  evaluates the same gradient graph at each step's weights.
"""

from __future__ import annotations

from typing import Sequence

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
