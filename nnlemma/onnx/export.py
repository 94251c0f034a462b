"""Export an IR graph to ONNX (opset 17) for the op subset the importer reads back.

Each IR op becomes the ONNX node(s) with the same meaning on the same operands; parameters become
float32 initializers (bit patterns kept, so −0, subnormals and NaN payloads survive), values are
named ``v<id>`` and the outputs ``output`` (``output<i>`` for several). Re-importing the
file (:func:`nnlemma.load_onnx`) gives a graph whose float32 kernel results are bit-identical to
the original's; ONNX runtimes execute it with their own summation order and FMA use, which the
audit issue measures. Notes on the mapping:

* ``linear`` is ``Gemm(transB=1)`` for 2-D inputs, else ``MatMul`` by the transposed weight then
  ``Add`` of the bias — the same two roundings (fold, then one rounded bias add) as the IR op;
* ``square`` is ``Mul(x, x)``; ``clamp`` is ``Clip`` with both bounds as constant inputs (an
  infinite bound is written as ±inf, so re-import needs ``allow_nonfinite=True`` for it);
* ``reshape`` writes the output's concrete shape.

Ops with no exporter (``EXPORT_REASONS``) raise :class:`~nnlemma.errors.UnsupportedOpError`
naming every such node; nothing is written then. The file is written atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import Graph

OPSET = 17
F32 = np.float32

_SAME = {"identity": "Identity", "neg": "Neg", "abs": "Abs", "relu": "Relu", "tanh": "Tanh",
         "sigmoid": "Sigmoid", "exp": "Exp", "sin": "Sin", "cos": "Cos", "sqrt": "Sqrt", "add": "Add",
         "sub": "Sub", "mul": "Mul", "div": "Div", "matmul": "MatMul", "concat": "Concat",
         "transpose": "Transpose", "leaky_relu": "LeakyRelu"}
EXPORTED = set(_SAME) | {"square", "clamp", "linear", "conv2d", "avg_pool2d", "max_pool2d", "batch_norm", "reshape"}
EXPORT_REASONS = {
    "step": "ONNX has no Heaviside op the importer reads back (Greater/Cast/Where are not imported)",
    "maximum": "ONNX Max is not imported yet", "minimum": "ONNX Min is not imported yet",
    "sum": "ONNX ReduceSum is not imported yet", "mean": "ONNX ReduceMean is not imported yet",
    "slice": "ONNX Slice is not imported yet",
}


class _Writer:
    def __init__(self, graph: Graph):
        from onnx import helper, numpy_helper
        self.h, self.nh = helper, numpy_helper
        self.graph = graph
        self.nodes, self.inits = [], []
        self.names = {v.id: f"v{v.id}" for v in graph.values().values()}
        self._k = 0

    def const(self, arr: np.ndarray, hint: str) -> str:
        self._k += 1
        name = f"c{self._k}_{hint}"
        self.inits.append(self.nh.from_array(np.asarray(arr), name))
        return name

    def node(self, op: str, ins: list[str], out: str, **attrs) -> None:
        self._k += 1
        self.nodes.append(self.h.make_node(op, ins, [out], name=f"n{self._k}_{op}", **attrs))

    def tmp(self) -> str:
        self._k += 1
        return f"t{self._k}"


def _emit(w: _Writer, e) -> None:
    ins = [w.names[i] for i in e.inputs]
    out = w.names[e.out.id]
    a = e.attr_dict
    vals = w.graph.values()
    if e.op in _SAME:
        extra = {"perm": list(a["perm"])} if e.op == "transpose" else {"axis": a["axis"]} if e.op == "concat" else \
            {"alpha": float(a["alpha"])} if e.op == "leaky_relu" else {}
        w.node(_SAME[e.op], ins, out, **extra)
    elif e.op == "square":
        w.node("Mul", [ins[0], ins[0]], out)
    elif e.op == "clamp":
        lo, hi = (w.const(np.array(a[k], F32), k) for k in ("lo", "hi"))
        w.node("Clip", [ins[0], lo, hi], out)
    elif e.op == "reshape":
        w.node("Reshape", [ins[0], w.const(np.array(e.out.shape, np.int64), "shape")], out)
    elif e.op == "linear":
        if len(vals[e.inputs[0]].shape) == 2:
            w.node("Gemm", ins, out, transB=1)
        else:
            wt = _param(w.graph, e.inputs[1])
            if wt is None:  # a computed weight: transpose it in the graph
                t = w.tmp()
                w.node("Transpose", [ins[1]], t, perm=[1, 0])
            else:
                t = w.const(np.ascontiguousarray(wt.T), "wT")
            if len(ins) == 3:
                mm = w.tmp()
                w.node("MatMul", [ins[0], t], mm)
                w.node("Add", [mm, ins[2]], out)
            else:
                w.node("MatMul", [ins[0], t], out)
    elif e.op == "conv2d":
        w.node("Conv", ins, out, strides=list(a["stride"]), pads=list(a["pads"]), dilations=list(a["dilation"]),
               kernel_shape=list(vals[e.inputs[1]].shape[2:]))
    elif e.op in ("avg_pool2d", "max_pool2d"):
        kw = {"kernel_shape": list(a["kernel"]), "strides": list(a["stride"] or a["kernel"]), "pads": list(a["pads"])}
        if e.op == "avg_pool2d":
            w.node("AveragePool", ins, out, count_include_pad=int(a["count_include_pad"]), **kw)
        else:
            w.node("MaxPool", ins, out, **kw)
    elif e.op == "batch_norm":
        x, mean, var, gamma, beta = ins
        w.node("BatchNormalization", [x, gamma, beta, mean, var], out, epsilon=float(a["eps"]))
    else:  # pragma: no cover - export_onnx checks the ops first
        raise AssertionError(e.op)


def _param(graph: Graph, vid: int):
    for p in graph.params:
        if p.value.id == vid:
            return p.data
    return None


def to_model(graph: Graph, name: str = "nnlemma"):
    """The ONNX ModelProto of ``graph`` (checked by ``onnx.checker``)."""
    import onnx
    from onnx import TensorProto

    bad = [(e.op, e.name or f"%{e.out.id}") for e in graph.equations if e.op not in EXPORTED]
    if bad:
        ops = sorted({op for op, _ in bad})
        raise UnsupportedOpError(
            "cannot export to ONNX: " + "; ".join(f"{op} ({EXPORT_REASONS.get(op, 'no exporter')})" for op in ops)
            + f" — at {', '.join(n for _, n in bad[:5])}{' …' if len(bad) > 5 else ''}", bad)
    w = _Writer(graph)
    for p in graph.params:
        w.inits.append(w.nh.from_array(np.asarray(p.data, F32), w.names[p.value.id]))
    for e in graph.equations:
        _emit(w, e)
    vals = graph.values()
    outs = list(graph.outputs)
    io_in = [w.h.make_tensor_value_info(w.names[v.id], TensorProto.FLOAT, list(v.shape)) for v in graph.inputs]
    io_out = []
    for i, o in enumerate(outs):
        src = w.names[o]
        name = f"output{i}" if len(outs) > 1 else "output"
        w.node("Identity", [src], name)
        io_out.append(w.h.make_tensor_value_info(name, TensorProto.FLOAT, list(vals[o].shape)))
    g = w.h.make_graph(w.nodes, name, io_in, io_out, initializer=w.inits)
    model = w.h.make_model(g, opset_imports=[w.h.make_opsetid("", OPSET)], producer_name="nnlemma")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def export_onnx(graph: Graph, path: str | os.PathLike, name: str = "nnlemma") -> Path:
    """Write ``graph`` as an ONNX file at ``path`` (atomically); returns the path."""
    model = to_model(graph, name)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", suffix=".onnx.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
