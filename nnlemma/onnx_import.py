"""Import an ONNX model as an nnlemma IR :class:`Graph`, safely and exactly.

``load_onnx(path)`` does, in order:

1. read and parse the file under a size limit (:mod:`nnlemma.onnx.reader`; onnx never follows a
   path of the file's choosing);
2. check the graph's structure: every tensor defined once and before use, outputs defined
   (a truncated file that still parses fails here);
3. scan every node and raise one :class:`UnsupportedOpError` listing all unsupported ops and
   attribute values (:mod:`nnlemma.onnx.support`);
4. decode all initializers (float64/float16 rounded to float32 explicitly; NaN/inf refused unless
   ``allow_nonfinite``), declare the graph inputs (a symbolic or zero batch dimension becomes
   ``batch_size``), and convert node by node through the :class:`Builder`
   (:mod:`nnlemma.onnx.convert`), keeping ONNX node names on equations and tensor names on values.

Every error is a one-line :class:`ModelLoadError` naming the file and the node or tensor.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import TensorProto

from .errors import InputError, IRError, ModelLoadError
from .ir import Builder, Graph, Value
from .onnx.convert import CONVERTERS, MAX_DIM, Ctx
from .onnx.reader import ExternalData, quote, read_model
from .onnx.support import ONNX_DOMAINS, attributes, node_label, node_ref, scan
from .onnx.tensors import decode_constant, dtype_name

__all__ = ["load_onnx"]


def load_onnx(path: str | os.PathLike, *, batch_size: int = 1, max_bytes: int = 2 * 1024**3,
              allow_nonfinite: bool = False) -> Graph:
    """Load the ONNX model at ``path`` as an IR graph.

    ``batch_size`` replaces a symbolic (or zero) leading dimension of the graph inputs;
    ``max_bytes`` caps the model file plus all external tensor data; ``allow_nonfinite`` accepts
    NaN/inf in initializers and constants."""
    _check_options(batch_size, max_bytes)
    path = Path(path)
    where = str(path)
    model, size = read_model(path, max_bytes)
    opset = _default_opset(model, where)
    _check_structure(model.graph, where)
    scan(model.graph, opset, where)
    ctx = Ctx(Builder(), where, opset, ExternalData(path, max_bytes - size), allow_nonfinite)
    _load_initializers(ctx, model.graph)
    _add_inputs(ctx, model.graph, batch_size)
    _convert_nodes(ctx, model.graph)
    outputs = [_output(ctx, o) for o in model.graph.output]
    return ctx.b.build(outputs)


def _check_options(batch_size: int, max_bytes: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_DIM:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise InputError(f"max_bytes must be a non-negative int, got {max_bytes!r}")


def _default_opset(model: onnx.ModelProto, where: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ONNX_DOMAINS]
    if not versions:
        raise ModelLoadError(f"{where}: the model declares no ai.onnx opset")
    newest = onnx.defs.onnx_opset_version()
    if not 1 <= versions[0] <= newest:
        raise ModelLoadError(f"{where}: ai.onnx opset {versions[0]} is not supported (1..{newest})")
    return versions[0]


def _check_structure(graph: onnx.GraphProto, where: str) -> None:
    """Single assignment and definition before use, over initializers, inputs and nodes."""
    if len(graph.sparse_initializer):
        raise ModelLoadError(f"{where}: sparse initializers are not supported")
    defined = set()
    for t in graph.initializer:
        if t.name in defined or not t.name:
            raise ModelLoadError(f"{where}: initializer {quote(t.name)} is unnamed or defined twice")
        defined.add(t.name)
    inits = set(defined)
    for v in graph.input:
        if v.name in defined and v.name not in inits or not v.name:
            raise ModelLoadError(f"{where}: graph input {quote(v.name)} is unnamed or declared twice")
        defined.add(v.name)
    for i, node in enumerate(graph.node):
        for name in node.input:
            if name and name not in defined:
                raise ModelLoadError(f"{where}: {node_ref(node, i)} uses tensor {quote(name)} before it is "
                                     "defined (truncated file or nodes not in topological order?)")
        for name in node.output:
            if name in defined:
                raise ModelLoadError(f"{where}: {node_ref(node, i)} defines tensor {quote(name)} a second time")
            if name:
                defined.add(name)
    for o in graph.output:
        if o.name not in defined:
            raise ModelLoadError(f"{where}: graph output {quote(o.name)} is not defined (truncated file?)")


def _load_initializers(ctx: Ctx, graph: onnx.GraphProto) -> None:
    for t in graph.initializer:
        ctx.consts[t.name] = decode_constant(t, t.name, "initializer", ctx.where, ctx.external,
                                             ctx.allow_nonfinite)


def _input_shape(v: onnx.ValueInfoProto, batch_size: int, where: str) -> tuple[int, ...]:
    tt = v.type.tensor_type
    what = f"{where}: graph input {quote(v.name)}"
    if not v.type.HasField("tensor_type") or tt.elem_type != TensorProto.FLOAT:
        got = dtype_name(tt.elem_type) if v.type.HasField("tensor_type") else "a non-tensor type"
        raise ModelLoadError(f"{what} has {got}; only float32 inputs are supported")
    if not tt.HasField("shape"):
        raise ModelLoadError(f"{what} has no declared shape")
    shape = []
    for i, d in enumerate(tt.shape.dim):
        static = d.HasField("dim_value") and d.dim_value > 0
        if i == 0 and not static and not (d.HasField("dim_value") and d.dim_value < 0):
            shape.append(batch_size)  # symbolic, unknown or zero batch dimension
        elif static and d.dim_value <= MAX_DIM:
            shape.append(int(d.dim_value))
        else:
            dim = d.dim_param if d.HasField("dim_param") else d.dim_value
            raise ModelLoadError(f"{what}: dimension {i} ({dim!r}) must be a positive integer "
                                 "(only the batch dimension 0 may be symbolic)")
    return tuple(shape)


def _add_inputs(ctx: Ctx, graph: onnx.GraphProto, batch_size: int) -> None:
    """Graph inputs that are also initializers (old IR versions) are parameters, not inputs."""
    for v in graph.input:
        if v.name not in ctx.consts:
            ctx.values[v.name] = ctx.b.input(_input_shape(v, batch_size, ctx.where), v.name)


def _convert_nodes(ctx: Ctx, graph: onnx.GraphProto) -> None:
    for i, node in enumerate(graph.node):
        ctx.node_ref, ctx.label = node_ref(node, i), node_label(node, i)
        try:
            out = CONVERTERS[node.op_type](ctx, node, attributes(node))
        except IRError as exc:
            raise ModelLoadError(f"{ctx.where}: {ctx.node_ref}: {exc}") from None
        if out is not None:
            ctx.values[node.output[0]] = out


def _output(ctx: Ctx, o: onnx.ValueInfoProto) -> Value:
    """The IR value of a graph output, checked against its declared type and static dims."""
    ctx.node_ref = f"graph output {quote(o.name)}"
    try:
        v = ctx.operand(o.name)
    except IRError as exc:  # e.g. an empty constant as output
        raise ctx.error(str(exc)) from None
    tt = o.type.tensor_type
    if o.type.HasField("tensor_type") and tt.elem_type not in (TensorProto.UNDEFINED, TensorProto.FLOAT):
        raise ctx.error(f"element type {dtype_name(tt.elem_type)} is not supported; only float32")
    if o.type.HasField("tensor_type") and tt.HasField("shape"):
        declared = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        mismatch = len(declared) != len(v.shape) or any(
            d not in (None, 0) and d != n for i, (d, n) in enumerate(zip(declared, v.shape)) if i > 0)
        if mismatch:
            raise ctx.error(f"declared shape {declared} does not match the computed shape {list(v.shape)}")
    return v
