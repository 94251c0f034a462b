"""One converter per supported ONNX op: ``CONVERTERS[op_type](ctx, node, attrs)`` emits IR
equations through the :class:`Builder` and returns the value of the node's output (or ``None``
for ``Constant``/``Identity``-of-a-constant, which only record a constant).

Constants (initializers, ``Constant`` nodes) are kept as numpy arrays and become IR parameters
only when an equation uses them as a float operand; integer constants serve shapes and axes.
Every mapping is exact: the IR equation computes the same real function with the same float32
roundings as the ONNX op's definition, or the node is refused (see :mod:`.support`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import onnx

from ..errors import ModelLoadError, UnsupportedOpError
from ..ir import Builder, Value
from .reader import ExternalData, quote
from .support import F32_MAX, present
from .tensors import attribute_constant, decode_constant, to_float32

MAX_DIM = 2**31 - 1


class Ctx:
    """Conversion state: the builder, ONNX name -> IR value, ONNX name -> constant array."""

    def __init__(self, b: Builder, where: str, opset: int, external: ExternalData, allow_nonfinite: bool):
        self.b, self.where, self.opset = b, where, opset
        self.external, self.allow_nonfinite = external, allow_nonfinite
        self.values: dict[str, Value] = {}
        self.consts: dict[str, np.ndarray] = {}
        self._derived: dict[tuple[str, str], Value] = {}
        self.node_ref = ""  # "OpType 'name'" of the node being converted, set by the loader
        self.label = ""  # that node's name (or #index:output when unnamed)

    # -- errors --------------------------------------------------------------------------------
    def error(self, msg: str) -> ModelLoadError:
        return ModelLoadError(f"{self.where}: {self.node_ref}: {msg}")

    def unsupported(self, node: onnx.NodeProto, msg: str) -> UnsupportedOpError:
        """For the few problems only visible once shapes are known (e.g. a computed 3-D MatMul operand)."""
        return UnsupportedOpError(f"{self.where}: unsupported ONNX content in 1 node(s): {self.node_ref} ({msg})",
                                  [(node.op_type, self.label)])

    # -- operands ------------------------------------------------------------------------------
    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    def float_const(self, name: str) -> np.ndarray:
        arr = self.consts[name]
        if arr.dtype != np.float32:
            raise self.error(f"integer tensor {quote(name)} used as a float operand")
        return arr

    def operand(self, name: str) -> Value:
        """The IR value of an ONNX tensor; a constant becomes a parameter on first use."""
        if name not in self.values:
            if name not in self.consts:
                raise self.error(f"tensor {quote(name)} is not defined")
            self.values[name] = self.b.param(self.float_const(name), name)
        return self.values[name]

    def derived(self, source: str, tag: str, data: np.ndarray) -> Value:
        """A parameter computed exactly from constant ``source`` (e.g. its transpose), cached."""
        key = (source, tag)
        if key not in self._derived:
            self._derived[key] = self.b.param(data, f"{source}{tag}")
        return self._derived[key]

    def ints(self, name: str) -> tuple[int, ...]:
        arr = self.consts.get(name)
        if arr is None or arr.dtype != np.int64:
            raise self.error(f"{quote(name)} must be a constant integer tensor")
        return tuple(int(v) for v in arr.reshape(-1))

    def emit(self, op: str, inputs: Sequence[Value], attrs: dict[str, Any], node: onnx.NodeProto,
             final: bool = True) -> Value:
        return self.b.eqn(op, inputs, attrs, name=node.name or None,
                          out_name=node.output[0] if final else None)


Converter = Callable[[Ctx, onnx.NodeProto, dict[str, Any]], "Value | None"]


def _simple(op: str) -> Converter:
    def convert(ctx, node, at):
        return ctx.emit(op, [ctx.operand(n) for n in node.input], {}, node)

    convert.__doc__ = f"ONNX -> IR {op!r}, operands in order."
    return convert


# -- dot products -----------------------------------------------------------------------------

def _row_bias(arr: np.ndarray, n: int) -> np.ndarray | None:
    """C as an exact [n] vector when it only broadcasts along the rows (shape (), (1,), (n,),
    (1, 1) or (1, n)); else ``None``."""
    if arr.ndim > 2 or (arr.ndim == 2 and arr.shape[0] != 1) or arr.shape[-1:] not in ((), (1,), (n,)):
        return None
    return np.broadcast_to(arr.reshape(arr.shape[-1:]), (n,))


def _gemm_bias(ctx: Ctx, c: str | None, n: int) -> tuple[Value | None, Value | None]:
    """``(bias, addend)``: C as the [n] bias of 'linear' when that is exact, else a separate 'add'."""
    if c is None:
        return None, None
    arr = ctx.const(c)
    vec = None if arr is None else _row_bias(ctx.float_const(c), n)
    if vec is not None:
        return (ctx.operand(c) if arr.shape == (n,) else ctx.derived(c, f"[{n}]", vec)), None
    v = ctx.operand(c)
    return (v, None) if v.shape == (n,) else (None, v)


def _gemm_weight(ctx: Ctx, b_name: str, trans_b: int) -> Value | None:
    """W = B (transB=1) or the exact transpose B^T of a constant B; ``None`` for a computed B
    with transB=0."""
    if trans_b == 1:
        w = ctx.operand(b_name)
    elif ctx.const(b_name) is not None:
        b_arr = ctx.float_const(b_name)
        w = ctx.derived(b_name, ".T", np.ascontiguousarray(b_arr.T)) if b_arr.ndim == 2 else ctx.operand(b_name)
    else:
        return None
    if len(w.shape) != 2:
        raise ctx.error(f"input B must be 2-D, got shape {list(w.shape)}")
    return w


def gemm(ctx: Ctx, node, at) -> Value:
    """Y = A B' + C with alpha = beta = 1, transA = 0 (checked by the scan)."""
    a = ctx.operand(node.input[0])
    if len(a.shape) != 2:
        raise ctx.error(f"input A must be 2-D, got shape {list(a.shape)}")
    c = node.input[2] if present(node, 2) else None
    w = _gemm_weight(ctx, node.input[1], at.get("transB", 0))
    if w is None:  # computed B, transB=0: Y = matmul(A, B) (+ C)
        y = ctx.emit("matmul", [a, ctx.operand(node.input[1])], {}, node, final=c is None)
        n = y.shape[-1]
        if c is not None:
            y = ctx.emit("add", [y, ctx.operand(c)], {}, node)
        return _gemm_shape(ctx, y, a, n)
    bias, addend = _gemm_bias(ctx, c, w.shape[0])
    y = ctx.emit("linear", [a, w] + ([bias] if bias is not None else []), {}, node, final=addend is None)
    if addend is not None:
        y = ctx.emit("add", [y, addend], {}, node)
    return _gemm_shape(ctx, y, a, w.shape[0])


def _gemm_shape(ctx: Ctx, y: Value, a: Value, n: int) -> Value:
    if y.shape != (a.shape[0], n):
        raise ctx.error(f"C does not broadcast to the output shape {[a.shape[0], n]} (got {list(y.shape)})")
    return y


def matmul(ctx: Ctx, node, at) -> Value:
    a, b = ctx.operand(node.input[0]), ctx.operand(node.input[1])
    if len(b.shape) != 2:
        raise ctx.unsupported(node, f"right operand has shape {list(b.shape)}: only 2-D is supported")
    return ctx.emit("matmul", [a, b], {}, node)


def _need_nchw(ctx: Ctx, node, *values: Value) -> None:
    if any(len(v.shape) != 4 for v in values):
        shapes = ", ".join(str(list(v.shape)) for v in values)
        raise ctx.unsupported(node, f"only 2-D NCHW is supported, got shapes {shapes}")


def conv(ctx: Ctx, node, at) -> Value:
    x, w = ctx.operand(node.input[0]), ctx.operand(node.input[1])
    _need_nchw(ctx, node, x, w)
    if "kernel_shape" in at and tuple(at["kernel_shape"]) != w.shape[2:]:
        raise ctx.error(f"kernel_shape {list(at['kernel_shape'])} does not match the weight shape {list(w.shape)}")
    attrs = {"stride": at.get("strides", (1, 1)), "pads": at.get("pads", (0, 0, 0, 0)),
             "dilation": at.get("dilations", (1, 1))}  # ONNX pads order = (top, left, bottom, right)
    bias = [ctx.operand(node.input[2])] if present(node, 2) else []
    return ctx.emit("conv2d", [x, w] + bias, attrs, node)


def _pool(op: str) -> Converter:
    def convert(ctx, node, at):
        x = ctx.operand(node.input[0])
        _need_nchw(ctx, node, x)
        attrs = {"kernel": at["kernel_shape"], "stride": at.get("strides", (1, 1)),  # ONNX default 1, not kernel
                 "pads": at.get("pads", (0, 0, 0, 0))}
        if op == "avg_pool2d":
            attrs["count_include_pad"] = at.get("count_include_pad", 0)
        return ctx.emit(op, [x], attrs, node)

    convert.__doc__ = f"ONNX pooling -> IR {op!r} (strides default to 1 as in ONNX)."
    return convert


def batch_norm(ctx: Ctx, node, at) -> Value:
    """ONNX inputs (X, scale, B, mean, var) -> IR operands (x, mean, var, gamma=scale, beta=B)."""
    x, scale, bias, mean, var = (ctx.operand(n) for n in node.input)
    return ctx.emit("batch_norm", [x, mean, var, scale, bias], {"eps": at.get("epsilon", 1e-5)}, node)


# -- elementwise with attributes --------------------------------------------------------------

def leaky_relu(ctx: Ctx, node, at) -> Value:
    return ctx.emit("leaky_relu", [ctx.operand(node.input[0])], {"alpha": at.get("alpha", 0.01)}, node)


def _clip_bound(ctx: Ctx, node, i: int, default: float) -> float:
    if not present(node, i):
        return default
    return float(ctx.float_const(node.input[i]).reshape(-1)[0])


def clip(ctx: Ctx, node, at) -> Value:
    """Missing bounds default to numeric_limits<float>::lowest()/max() (= -/+FLT_MAX, not inf),
    as the ONNX spec says; so Clip maps -inf to -FLT_MAX, exactly like onnxruntime."""
    if ctx.opset < 11:
        lo, hi = at.get("min", -F32_MAX), at.get("max", F32_MAX)
    else:
        lo, hi = _clip_bound(ctx, node, 1, -F32_MAX), _clip_bound(ctx, node, 2, F32_MAX)
    return ctx.emit("clamp", [ctx.operand(node.input[0])], {"lo": lo, "hi": hi}, node)


# -- data movement ----------------------------------------------------------------------------

def _check_dims(ctx: Ctx, shape: Sequence[int]) -> None:
    if len(shape) > 64 or any(not -1 <= d <= MAX_DIM for d in shape):
        raise ctx.error(f"shape {list(shape)} has an invalid entry or more than 64 dimensions")


def _resolve_reshape(ctx: Ctx, x: tuple[int, ...], shape: Sequence[int]) -> tuple[int, ...]:
    """ONNX Reshape (allowzero=0) in exact Python integers: 0 copies, -1 is inferred."""
    _check_dims(ctx, shape)
    if any(d == 0 and i >= len(x) for i, d in enumerate(shape)) or list(shape).count(-1) > 1:
        raise ctx.error(f"cannot reshape {list(x)} to {list(shape)}")
    out = [x[i] if d == 0 else d for i, d in enumerate(shape)]
    known = math.prod(d for d in out if d != -1)
    size = math.prod(x)
    if -1 in out and known and size % known == 0:
        out[out.index(-1)] = size // known
    if math.prod(out) != size or any(d < 1 for d in out):
        raise ctx.error(f"cannot reshape {list(x)} to {list(shape)}")
    return tuple(out)


def _reshape_to(ctx: Ctx, node, x: Value, shape: Sequence[int]) -> Value:
    """Emit 'reshape'; the IR's result shape must equal the exact Python-integer resolution."""
    expect = _resolve_reshape(ctx, x.shape, shape)
    y = ctx.emit("reshape", [x], {"shape": tuple(shape)}, node)
    if y.shape != expect:
        raise ctx.error(f"reshape {list(x.shape)} -> {list(shape)}: IR gave {list(y.shape)}, expected {list(expect)}")
    return y


def reshape(ctx: Ctx, node, at) -> Value:
    shape = at["shape"] if ctx.opset < 5 else ctx.ints(node.input[1])
    return _reshape_to(ctx, node, ctx.operand(node.input[0]), shape)


def flatten(ctx: Ctx, node, at) -> Value:
    """axis 1 -> shape (0, -1) (keeps the batch dimension generic), else explicit sizes."""
    x = ctx.operand(node.input[0])
    r, axis = len(x.shape), at.get("axis", 1)
    if not -r <= axis <= r:
        raise ctx.error(f"axis={axis} out of range for rank {r}")
    axis = axis + r if axis < 0 else axis
    if axis == 1:
        shape: tuple[int, ...] = (0, -1)
    else:
        shape = (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return _reshape_to(ctx, node, x, shape)


def _axes(ctx: Ctx, node, at) -> tuple[int, ...] | None:
    if ctx.opset < 13:
        return tuple(at["axes"]) if "axes" in at else None
    return ctx.ints(node.input[1]) if present(node, 1) else None


def _normalize_axes(ctx: Ctx, axes: Sequence[int], rank: int) -> set[int]:
    if any(not -rank <= a < rank for a in axes):
        raise ctx.error(f"axes {list(axes)} out of range for rank {rank}")
    norm = {a % rank for a in axes}
    if len(norm) != len(axes):
        raise ctx.error(f"repeated axis in {list(axes)}")
    return norm


def _keep_lead(out: list[int], preserved: bool) -> tuple[int, ...]:
    """Write dimension 0 as 0 (copy) when the leading dimension passes through unchanged."""
    return tuple([0] + out[1:]) if preserved and out else tuple(out)


def squeeze(ctx: Ctx, node, at) -> Value:
    x = ctx.operand(node.input[0])
    axes = _axes(ctx, node, at)
    drop = ({i for i, d in enumerate(x.shape) if d == 1} if not axes  # missing or empty: all 1-dims
            else _normalize_axes(ctx, axes, len(x.shape)))
    if any(x.shape[a] != 1 for a in drop):
        raise ctx.error(f"cannot squeeze axes {sorted(drop)} of shape {list(x.shape)}: size is not 1")
    out = [d for i, d in enumerate(x.shape) if i not in drop]
    return _reshape_to(ctx, node, x, _keep_lead(out, 0 not in drop))


def unsqueeze(ctx: Ctx, node, at) -> Value:
    x = ctx.operand(node.input[0])
    axes = _axes(ctx, node, at)
    if axes is None:
        raise ctx.error("axes are missing")
    rank = len(x.shape) + len(axes)
    new = _normalize_axes(ctx, axes, rank)
    dims = iter(x.shape)
    out = [1 if i in new else next(dims) for i in range(rank)]
    return _reshape_to(ctx, node, x, _keep_lead(out, 0 not in new and len(x.shape) > 0))


def transpose(ctx: Ctx, node, at) -> Value:
    x = ctx.operand(node.input[0])
    perm = at.get("perm", tuple(reversed(range(len(x.shape)))))
    return ctx.emit("transpose", [x], {"perm": perm}, node)


def concat(ctx: Ctx, node, at) -> Value:
    axis = at.get("axis", 1)  # the default only exists before opset 4 (checked by the scan)
    return ctx.emit("concat", [ctx.operand(n) for n in node.input], {"axis": axis}, node)


# -- constants --------------------------------------------------------------------------------

def constant(ctx: Ctx, node, at) -> None:
    a = node.attribute[0]
    name = node.output[0]
    if a.name == "value":
        arr = decode_constant(a.t, name, "Constant", ctx.where, ctx.external, ctx.allow_nonfinite)
    else:
        arr, _ = attribute_constant(a)
        if arr.dtype == np.float32:
            arr = to_float32(arr, f"{ctx.where}: Constant {quote(name)}", ctx.allow_nonfinite)
    ctx.consts[name] = arr


def identity(ctx: Ctx, node, at) -> Value | None:
    src = node.input[0]
    if src in ctx.consts and src not in ctx.values:
        ctx.consts[node.output[0]] = ctx.consts[src]  # a constant stays a constant
        return None
    return ctx.emit("identity", [ctx.operand(src)], {}, node)


CONVERTERS: dict[str, Converter] = {
    "Gemm": gemm, "MatMul": matmul,
    "Add": _simple("add"), "Sub": _simple("sub"), "Mul": _simple("mul"), "Div": _simple("div"),
    "Relu": _simple("relu"), "Sigmoid": _simple("sigmoid"), "Tanh": _simple("tanh"), "Sin": _simple("sin"),
    "Cos": _simple("cos"), "Exp": _simple("exp"), "Abs": _simple("abs"), "Neg": _simple("neg"),
    "Sqrt": _simple("sqrt"), "LeakyRelu": leaky_relu, "Clip": clip,
    "Conv": conv, "AveragePool": _pool("avg_pool2d"), "MaxPool": _pool("max_pool2d"),
    "BatchNormalization": batch_norm,
    "Flatten": flatten, "Reshape": reshape, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
    "Transpose": transpose, "Concat": concat, "Constant": constant, "Identity": identity,
}
