"""A derived networkx view of a graph, for ordering, slicing and drawing (not the storage).

Nodes are value ids with attributes ``kind`` (input/param/eqn), ``op``, ``shape``, ``name``; a
``MultiDiGraph`` edge ``src -> dst`` with key/attribute ``operand=i`` per operand position, so
``x * x`` keeps both edges and operand order.
"""

from __future__ import annotations

from .graph import Graph


def to_networkx(graph: Graph):
    import networkx as nx

    g = nx.MultiDiGraph()
    for v in graph.inputs:
        g.add_node(v.id, kind="input", op=None, shape=v.shape, name=v.name)
    for p in graph.params:
        g.add_node(p.value.id, kind="param", op=None, shape=p.value.shape, name=p.value.name)
    for e in graph.equations:
        g.add_node(e.out.id, kind="eqn", op=e.op, shape=e.out.shape, name=e.name)
        for pos, src in enumerate(e.inputs):
            g.add_edge(src, e.out.id, key=pos, operand=pos)
    for i in graph.outputs:
        g.nodes[i]["output"] = True
    return g
