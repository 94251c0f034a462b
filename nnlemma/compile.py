"""Compiled mode: ``nl.compile(model_or_function, example_inputs)`` traces to the IR.

The result runs the graph with the same float32 kernel rules eager mode uses, so its outputs are
bit-identical to calling the model eagerly on the same inputs.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .interpret import run
from .ir.graph import Graph
from .tensor import Tensor, trace_function


class CompiledGraph:
    """A traced graph plus the calling convention of the function it came from."""

    def __init__(self, graph: Graph, single_output: bool):
        self.graph = graph
        self.single_output = single_output

    def __call__(self, *inputs: Any):
        outs = run(self.graph, *(x.numpy() if isinstance(x, Tensor) else x for x in inputs))
        tensors = [Tensor(np.asarray(o)) for o in outs]
        return tensors[0] if self.single_output else tuple(tensors)

    def __str__(self) -> str:
        return str(self.graph)


def compile(fn, example_inputs: Sequence[Any] | Any) -> CompiledGraph:  # noqa: A001
    """Trace ``fn`` (a function of tensors, or an ``nl.nn.Module``) on inputs with the shapes of
    ``example_inputs`` (one array/tensor, or a sequence of them)."""
    from .nn.module import Module

    if isinstance(example_inputs, (Tensor, np.ndarray)):
        example_inputs = [example_inputs]
    names = {}
    if isinstance(fn, Module):
        names = {id(t): name for name, t in fn.named_tensors()}
    graph, single = trace_function(fn, list(example_inputs), names)
    return CompiledGraph(graph, single)
