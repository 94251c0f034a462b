"""vjp / jvp / grad over IR graphs, with a JAX-like API.

Every function here takes a *function of tensors* (or an :class:`~nnlemma.ir.graph.Graph`) and
first traces it to a graph; the derivative is then built by running the graph's equations and
the rules of :mod:`nnlemma.autodiff.rules` through :func:`nnlemma.bind`. On concrete tensors that
computes eagerly with the float32 kernel; inside ``nl.compile`` (or inside another derivative,
which traces its argument) it records a new graph of ordinary ops. So derivatives compose:
``jvp(grad(f), (x,), (v,))`` is a Hessian-vector product, ``jvp`` of ``jvp`` a second directional
derivative, and ``nl.compile(nl.grad(f), x)`` the gradient's graph.

Parameters (a graph's constants) are held fixed unless :func:`vjp` is given ``params`` (a dict
of named tensors, e.g. ``dict(model.named_tensors())``), when it also returns their cotangents by
name (training).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InputError, DerivativeError
from ..ir.graph import Graph
from ..tensor import Tensor, bind, tensor, trace_function
from .rules import JVP_RULES, NO_JVP, NO_VJP, VJP_RULES

F32 = np.float32


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else tensor(x)


def _graph_of(fn, primals: Sequence[Tensor], names: dict[int, str] | None = None
              ) -> tuple[Graph, bool, dict[int, Tensor]]:
    """``fn``'s graph, its output structure, and the tensors its parameters were lifted from."""
    if isinstance(fn, Graph):
        return fn, len(fn.outputs) == 1, {}
    from ..compile import CompiledGraph
    if isinstance(fn, CompiledGraph):
        return fn.graph, fn.single_output, {}
    from ..nn.module import Module
    if isinstance(fn, Module):
        names = {**{id(t): name for name, t in fn.named_tensors()}, **(names or {})}
    lifted: dict[int, Tensor] = {}
    graph, single = trace_function(fn, list(primals), names, lifted)
    return graph, single, lifted


def _forward(graph: Graph, primals: Sequence[Tensor], lifted: dict[int, Tensor] | None = None
             ) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
    """Run the graph through ``bind``: (value id -> tensor, param id -> its constant tensor).
    Parameters lifted from tensors (``lifted``) are run on those very tensors, so an enclosing
    trace sees the same objects — a model's weights stay one named parameter however deeply the
    derivatives nest (and can be trained through them)."""
    if len(primals) != len(graph.inputs):
        raise InputError(f"the function takes {len(graph.inputs)} input(s), got {len(primals)}")
    env: dict[int, Tensor] = {}
    for v, x in zip(graph.inputs, primals):
        if tuple(x.shape) != tuple(v.shape):
            raise InputError(f"input {v.name or v.id}: expected shape {list(v.shape)}, got {list(x.shape)}")
        env[v.id] = x
    lifted = lifted or {}
    consts = {p.value.id: lifted[p.value.id] if p.value.id in lifted else Tensor(p.data) for p in graph.params}
    env.update(consts)
    for e in graph.equations:
        env[e.out.id] = bind(e.op, *(env[i] for i in e.inputs), **dict(e.attrs))
    return env, consts


def _active(graph: Graph, seeds: set[int]) -> set[int]:
    """Values that depend on ``seeds``."""
    act = set(seeds)
    for e in graph.equations:
        if any(i in act for i in e.inputs):
            act.add(e.out.id)
    return act


def backward(graph: Graph, env: dict[int, Tensor], cts: dict[int, Tensor], wrt: set[int]) -> dict[int, Tensor]:
    """Reverse pass: cotangents of the values ``wrt`` given output cotangents ``cts``."""
    active = _active(graph, wrt)
    acc: dict[int, Tensor] = {k: v for k, v in cts.items() if k in active}
    for e in reversed(graph.equations):
        ct = acc.pop(e.out.id, None)
        if ct is None or not any(i in active for i in e.inputs):
            continue
        rule = VJP_RULES.get(e.op)
        if rule is None:
            raise DerivativeError(f"no vjp rule for {e.describe()}: {NO_VJP.get(e.op, 'unknown op')}")
        outs = rule(ct, env[e.out.id], *(env[i] for i in e.inputs), **dict(e.attrs))
        for i, g in zip(e.inputs, outs):
            if i not in active:
                continue
            if g is None:
                if e.op == "batch_norm":
                    raise DerivativeError(f"vjp of {e.describe()}: only the data operand may vary")
                continue
            acc[i] = g if i not in acc else bind("add", acc[i], g)
    return acc


def forward_tangents(graph: Graph, env: dict[int, Tensor], tangents: dict[int, Tensor]) -> dict[int, Tensor | None]:
    """Forward pass of tangents (None = zero) through every equation."""
    tan: dict[int, Tensor | None] = dict(tangents)
    for e in graph.equations:
        ts = [tan.get(i) for i in e.inputs]
        if all(t is None for t in ts):
            continue
        rule = JVP_RULES.get(e.op)
        if rule is None:
            raise DerivativeError(f"no jvp rule for {e.describe()}: {NO_JVP.get(e.op, 'unknown op')}")
        tan[e.out.id] = rule(env[e.out.id], [env[i] for i in e.inputs], ts, **dict(e.attrs))
    return tan


def _zeros_like(t: Tensor) -> Tensor:
    """A constant zero of t's shape (not t·0, which is NaN where t is infinite)."""
    return tensor(np.zeros(t.shape, F32))


def _pack(outs: list, single: bool):
    return outs[0] if single else tuple(outs)


def vjp(fn, *primals, params: dict[str, Tensor] | None = None):
    """``(outputs, vjp_fn)``: ``vjp_fn(*cotangents)`` returns the cotangent of every primal
    (zeros where an input does not influence the outputs). With ``params`` (name -> tensor, the
    tensors ``fn`` uses as constants) it returns ``(input cotangents, {name: cotangent})``."""
    primals = [_as_tensor(x) for x in primals]
    graph, single, lifted = _graph_of(fn, primals, {id(t): name for name, t in (params or {}).items()})
    env, consts = _forward(graph, primals, lifted)
    outs = [env[o] for o in graph.outputs]
    input_ids = [v.id for v in graph.inputs]
    by_name = {p.value.name: p.value.id for p in graph.params if params and p.value.name in params}
    wrt = set(input_ids) | set(by_name.values())

    def vjp_fn(*cotangents):
        if len(cotangents) != len(outs):
            raise InputError(f"vjp needs {len(outs)} cotangent(s), got {len(cotangents)}")
        cts = {}
        for o, c in zip(graph.outputs, cotangents):
            c = _as_tensor(c)
            if tuple(c.shape) != tuple(env[o].shape):
                raise InputError(f"cotangent shape {list(c.shape)} != output shape {list(env[o].shape)}")
            cts[o] = c if o not in cts else bind("add", cts[o], c)
        acc = backward(graph, env, cts, wrt)
        grads = tuple(acc.get(i, _zeros_like(env[i])) for i in input_ids)
        if params is None:
            return grads
        # a named tensor fn never used has a zero cotangent
        return grads, {name: acc[by_name[name]] if by_name.get(name) in acc else _zeros_like(_as_tensor(t))
                       for name, t in params.items()}

    return _pack(outs, single), vjp_fn


def grad(fn, argnums: int = 0) -> Callable:
    """The gradient of a function with one single-element output w.r.t. argument ``argnums``."""
    def g(*args):
        out, pullback = vjp(fn, *args)
        if not isinstance(out, Tensor) or int(np.prod(out.shape)) != 1:
            raise InputError("grad needs a function with one single-element output; use vjp otherwise")
        return pullback(np.ones(out.shape, F32))[argnums]
    return g


def call(fn, *inputs):
    """``fn`` (a graph, compiled graph, module or function of tensors) applied to ``inputs`` through
    ``bind``: eagerly it computes with the kernel, traced it records ``fn``'s equations into the
    enclosing graph (a loaded ONNX graph used inside a residual, say)."""
    primals = [_as_tensor(x) for x in inputs]
    graph, single, lifted = _graph_of(fn, primals)
    env, _ = _forward(graph, primals, lifted)
    return _pack([env[o] for o in graph.outputs], single)


def jvp(fn, primals: Sequence[Any], tangents: Sequence[Any]):
    """``(outputs, output tangents)`` of ``fn`` at ``primals`` in the direction ``tangents``."""
    primals = [_as_tensor(x) for x in primals]
    tangents = [_as_tensor(t) for t in tangents]
    if len(tangents) != len(primals):
        raise InputError(f"jvp needs one tangent per primal ({len(primals)}), got {len(tangents)}")
    for p, t in zip(primals, tangents):
        if tuple(p.shape) != tuple(t.shape):
            raise InputError(f"tangent shape {list(t.shape)} != primal shape {list(p.shape)}")
    graph, single, lifted = _graph_of(fn, primals)
    env, _ = _forward(graph, primals, lifted)
    tan = forward_tangents(graph, env, {v.id: t for v, t in zip(graph.inputs, tangents)})
    outs = [env[o] for o in graph.outputs]
    touts = [tan.get(o) if tan.get(o) is not None else _zeros_like(env[o]) for o in graph.outputs]
    return _pack(outs, single), _pack(touts, single)
