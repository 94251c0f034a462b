"""What the ONNX importer accepts, as data, and the whole-model scan that reports everything else.

:data:`SCHEMA` lists, per supported ONNX op, its input count and every attribute it understands
with the expected attribute type; an attribute not listed there is unsupported (so a new ONNX
attribute can never be silently ignored). Per-op check functions reject attribute *values* whose
meaning the IR cannot express (``Gemm`` with ``alpha != 1``, ``Conv`` with ``group != 1``, ...).
:func:`scan` runs before anything is built and raises one :class:`UnsupportedOpError` listing every
problem, e.g. ``Softmax 'sm' (op not supported), Gemm 'fc' (transA=1: only transA=0 is supported)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import onnx
from onnx import AttributeProto as A

from ..errors import UnsupportedOpError
from .reader import quote

ONNX_DOMAINS = ("", "ai.onnx")
F32_MAX = 3.4028234663852886e38  # numeric_limits<float>::max(), the ONNX Clip default bound


@dataclass
class ScanInfo:
    """What the scan knows without decoding data: the default-domain opset, and the dims of every
    constant tensor name (initializers, Constant outputs, Identity of a constant)."""

    opset: int
    const_dims: dict[str, tuple[int, ...]] = field(default_factory=dict)


Check = Callable[[onnx.NodeProto, dict[str, Any], ScanInfo], list[str]]


@dataclass(frozen=True)
class OnnxOp:
    inputs: tuple[int, int | None]  # min, max (None = variadic)
    attrs: dict[str, int]  # attribute name -> AttributeProto type
    check: Check | None = None
    outputs: int = 1


def node_label(node: onnx.NodeProto, index: int) -> str:
    """The node's name, or ``#index:first_output`` for an unnamed node."""
    return node.name or f"#{index}:{node.output[0] if node.output else ''}"


def node_ref(node: onnx.NodeProto, index: int) -> str:
    """``OpType 'name'`` for messages (one line)."""
    op = node.op_type if node.op_type.isidentifier() else quote(node.op_type)
    return f"{op} {quote(node_label(node, index))}"


def attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """Attribute values as Python values (strings decoded, lists as tuples)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list):
            v = tuple(v)
        out[a.name] = v
    return out


def present(node: onnx.NodeProto, i: int) -> bool:
    """True iff optional input ``i`` is given (ONNX writes a missing optional input as "")."""
    return len(node.input) > i and node.input[i] != ""


# -- per-op value checks ----------------------------------------------------------------------

def _check_gemm(node, at, info) -> list[str]:
    out = []
    if at.get("alpha", 1.0) != 1.0:
        out.append(f"alpha={at['alpha']!r}: only alpha=1 is supported")
    if present(node, 2) and at.get("beta", 1.0) != 1.0:
        out.append(f"beta={at['beta']!r}: only beta=1 is supported")
    if at.get("transA", 0) != 0:
        out.append(f"transA={at['transA']}: only transA=0 is supported")
    if at.get("transB", 0) not in (0, 1):
        out.append(f"transB={at['transB']} is invalid")
    return out


def _check_matmul(node, at, info) -> list[str]:
    dims = info.const_dims.get(node.input[1]) if len(node.input) > 1 else None
    return [] if dims is None or len(dims) == 2 else [f"right operand has rank {len(dims)}: only 2-D is supported"]


def _check_binary(node, at, info) -> list[str]:
    if "axis" in at:
        return [f"legacy broadcast with axis={at['axis']} is not supported"]
    return []


def _check_leaky(node, at, info) -> list[str]:
    alpha = at.get("alpha", 0.01)
    return [] if 0.0 <= alpha <= 1.0 else [f"alpha={alpha!r}: only 0 <= alpha <= 1 is supported"]


def _check_clip(node, at, info) -> list[str]:
    out = []
    if info.opset < 11:
        out += [f"{k}=nan is not supported" for k in ("min", "max") if k in at and math.isnan(at[k])]
        if present(node, 1) or present(node, 2):
            out.append(f"min/max inputs need opset >= 11 (model has {info.opset})")
        return out
    out += [f"attribute {k!r} is not valid at opset {info.opset}" for k in ("min", "max") if k in at]
    for i, what in ((1, "min"), (2, "max")):
        if present(node, i):
            dims = info.const_dims.get(node.input[i])
            if dims is None:
                out.append(f"{what} input {quote(node.input[i])} is not a constant")
            elif math.prod(dims) != 1:
                out.append(f"{what} input must be a scalar, has dims {list(dims)}")
    return out


def _window_checks(at: dict[str, Any], kernel_required: bool) -> list[str]:
    out = []
    if at.get("auto_pad", "NOTSET") != "NOTSET":
        out.append(f"auto_pad={at['auto_pad']!r}: only NOTSET is supported")
    if "kernel_shape" in at and len(at["kernel_shape"]) != 2:
        out.append(f"kernel_shape={list(at['kernel_shape'])}: only 2-D is supported")
    elif kernel_required and "kernel_shape" not in at:
        out.append("kernel_shape is missing")
    for key, n in (("strides", 2), ("dilations", 2), ("pads", 4)):
        if key in at and len(at[key]) != n:
            out.append(f"{key}={list(at[key])}: expected {n} values (2-D)")
    return out


def _check_conv(node, at, info) -> list[str]:
    out = _window_checks(at, kernel_required=False)
    if at.get("group", 1) != 1:
        out.append(f"group={at['group']}: only group=1 is supported")
    dims = info.const_dims.get(node.input[1]) if len(node.input) > 1 else None
    if dims is not None and len(dims) != 4:
        out.append(f"weight has rank {len(dims)}: only 2-D convolution (rank-4 weight) is supported")
    return out


def _check_pool(node, at, info) -> list[str]:
    out = _window_checks(at, kernel_required=True)
    if at.get("ceil_mode", 0) != 0:
        out.append(f"ceil_mode={at['ceil_mode']}: only ceil_mode=0 is supported")
    if any(d != 1 for d in at.get("dilations", ())):
        out.append(f"dilations={list(at['dilations'])}: only 1 is supported")
    if at.get("storage_order", 0) != 0:
        out.append(f"storage_order={at['storage_order']}: only 0 is supported")
    if at.get("count_include_pad", 0) not in (0, 1):
        out.append(f"count_include_pad={at['count_include_pad']} is invalid")
    return out


def _check_reshape(node, at, info) -> list[str]:
    out = [f"allowzero={at['allowzero']}: only allowzero=0 is supported"] if at.get("allowzero", 0) else []
    if info.opset < 5:
        return out + ([] if "shape" in at else ["shape attribute is missing"])
    if "shape" in at:
        out.append(f"attribute 'shape' is not valid at opset {info.opset}")
    if not present(node, 1):
        out.append("shape input is missing")
    elif node.input[1] not in info.const_dims:
        out.append(f"shape input {quote(node.input[1])} is not a constant")
    return out


def _check_axes(node, at, info) -> list[str]:
    required = node.op_type == "Unsqueeze"
    if info.opset < 13:
        if present(node, 1):
            return [f"axes input needs opset >= 13 (model has {info.opset})"]
        return ["axes attribute is missing"] if required and "axes" not in at else []
    if "axes" in at:
        return [f"attribute 'axes' is not valid at opset {info.opset}"]
    if not present(node, 1):
        return ["axes input is missing"] if required else []
    return [] if node.input[1] in info.const_dims else [f"axes input {quote(node.input[1])} is not a constant"]


def _check_concat(node, at, info) -> list[str]:
    # Concat-1 (opset < 4) has axis default 1; from opset 4 on it is required
    return [] if "axis" in at or info.opset < 4 else ["axis attribute is missing"]


def _check_batch_norm(node, at, info) -> list[str]:
    out = []
    if at.get("training_mode", 0) != 0:
        out.append(f"training_mode={at['training_mode']}: only inference mode is supported")
    if at.get("spatial", 1) != 1:
        out.append(f"spatial={at['spatial']}: only spatial=1 is supported")
    if info.opset < 7 and at.get("is_test", 0) == 0:
        out.append("is_test=0 (training mode) is not supported")
    return out


_CONSTANT_KINDS = ("value", "value_float", "value_floats", "value_int", "value_ints")


def _check_constant(node, at, info) -> list[str]:
    kinds = [k for k in at if k in _CONSTANT_KINDS]
    return [] if len(kinds) == 1 and len(at) == 1 else [f"needs exactly one of {', '.join(_CONSTANT_KINDS)}"]


# -- the schema -------------------------------------------------------------------------------

_LEGACY = {"consumed_inputs": A.INTS}  # opset < 6 bookkeeping attribute, no meaning in inference
_UNARY = OnnxOp((1, 1), dict(_LEGACY))
_BINARY = OnnxOp((2, 2), {"broadcast": A.INT, "axis": A.INT, **_LEGACY}, _check_binary)
_WINDOW = {"auto_pad": A.STRING, "kernel_shape": A.INTS, "pads": A.INTS, "strides": A.INTS,
           "dilations": A.INTS}

SCHEMA: dict[str, OnnxOp] = {
    "Gemm": OnnxOp((2, 3), {"alpha": A.FLOAT, "beta": A.FLOAT, "transA": A.INT, "transB": A.INT,
                            "broadcast": A.INT}, _check_gemm),
    "MatMul": OnnxOp((2, 2), {}, _check_matmul),
    **{op: _BINARY for op in ("Add", "Sub", "Mul", "Div")},
    **{op: _UNARY for op in ("Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg", "Sqrt")},
    **{op: OnnxOp((1, 1), {}) for op in ("Sin", "Cos", "Identity")},
    "LeakyRelu": OnnxOp((1, 1), {"alpha": A.FLOAT, **_LEGACY}, _check_leaky),
    "Clip": OnnxOp((1, 3), {"min": A.FLOAT, "max": A.FLOAT, **_LEGACY}, _check_clip),
    "Conv": OnnxOp((2, 3), {**_WINDOW, "group": A.INT}, _check_conv),
    "AveragePool": OnnxOp((1, 1), {**_WINDOW, "ceil_mode": A.INT, "count_include_pad": A.INT}, _check_pool),
    "MaxPool": OnnxOp((1, 1), {**_WINDOW, "ceil_mode": A.INT, "storage_order": A.INT}, _check_pool),
    "Flatten": OnnxOp((1, 1), {"axis": A.INT}),
    "Reshape": OnnxOp((1, 2), {"allowzero": A.INT, "shape": A.INTS, **_LEGACY}, _check_reshape),
    "Squeeze": OnnxOp((1, 2), {"axes": A.INTS}, _check_axes),
    "Unsqueeze": OnnxOp((1, 2), {"axes": A.INTS}, _check_axes),
    "Transpose": OnnxOp((1, 1), {"perm": A.INTS}),
    "Concat": OnnxOp((1, None), {"axis": A.INT}, _check_concat),
    "BatchNormalization": OnnxOp((5, 5), {"epsilon": A.FLOAT, "momentum": A.FLOAT, "spatial": A.INT,
                                          "is_test": A.INT, "training_mode": A.INT, **_LEGACY},
                                 _check_batch_norm),
    "Constant": OnnxOp((0, 0), {"value": A.TENSOR, "value_float": A.FLOAT, "value_floats": A.FLOATS,
                                "value_int": A.INT, "value_ints": A.INTS}, _check_constant),
}


def _type_name(t: int) -> str:
    return A.AttributeType.Name(t) if t in A.AttributeType.values() else f"#{t}"


def _generic_problems(node: onnx.NodeProto, spec: OnnxOp) -> list[str]:
    out = []
    names = [a.name for a in node.attribute]
    out += [f"attribute {quote(n)} is given twice" for n in sorted(set(names)) if names.count(n) > 1]
    for a in node.attribute:
        if a.name not in spec.attrs:
            out.append(f"attribute {quote(a.name)} is not supported")
        elif a.ref_attr_name:
            out.append(f"attribute {quote(a.name)} refers to a function attribute")
        elif a.type != spec.attrs[a.name]:
            out.append(f"attribute {quote(a.name)} has type {_type_name(a.type)}, "
                       f"expected {_type_name(spec.attrs[a.name])}")
    lo, hi = spec.inputs
    n = len(node.input)
    if n < lo or (hi is not None and n > hi) or any(not node.input[i] for i in range(lo)):
        out.append(f"takes {lo}..{'' if hi is None else hi} inputs, got {n}")
    outs = [o for o in node.output if o]
    if len(outs) != spec.outputs or not node.output or not node.output[0]:
        out.append(f"{len(outs)} outputs: only the single main output is supported")
    return out


def node_problems(node: onnx.NodeProto, info: ScanInfo) -> list[str] | None:
    """``None`` if the op itself is unsupported, else the list of reasons (empty = supported)."""
    if node.domain not in ONNX_DOMAINS:
        return [f"domain {quote(node.domain)} is not supported"]
    spec = SCHEMA.get(node.op_type)
    if spec is None:
        return None
    problems = _generic_problems(node, spec)
    if problems or spec.check is None:
        return problems
    return spec.check(node, attributes(node), info)


def _constant_dims(node: onnx.NodeProto) -> tuple[int, ...]:
    for a in node.attribute:
        if a.name == "value" and a.type == A.TENSOR:
            return tuple(int(d) for d in a.t.dims)
        if a.type in (A.FLOATS, A.INTS):
            return (len(a.floats) if a.type == A.FLOATS else len(a.ints),)
    return ()


def scan(graph: onnx.GraphProto, opset: int, where: str) -> ScanInfo:
    """Check every node; raise one :class:`UnsupportedOpError` listing all problems."""
    info = ScanInfo(opset, {t.name: tuple(int(d) for d in t.dims) for t in graph.initializer})
    found: list[tuple[str, str, str]] = []
    for i, node in enumerate(graph.node):
        problems = node_problems(node, info)
        if problems is None:
            found.append((node.op_type, node_label(node, i), node_ref(node, i) + " (op not supported)"))
        elif problems:
            found.append((node.op_type, node_label(node, i), f"{node_ref(node, i)} ({'; '.join(problems)})"))
        elif node.op_type == "Constant":
            info.const_dims[node.output[0]] = _constant_dims(node)
        elif node.op_type == "Identity" and node.input[0] in info.const_dims:
            info.const_dims[node.output[0]] = info.const_dims[node.input[0]]
    if found:
        listing = ", ".join(text for _, _, text in found)
        raise UnsupportedOpError(f"{where}: unsupported ONNX content in {len(found)} node(s): {listing}",
                                 [(op, label) for op, label, _ in found])
    return info
