"""Tensors, the single ``bind`` entry point, and tracing.

A :class:`Tensor` is either *concrete* (holds a read-only float32 array) or *traced* (holds an IR
value of a :class:`Trace`). Every operation goes through :func:`bind`:

- no traced operand: the op's shape rule checks the operands, then the float32 kernel rule runs
  immediately (eager mode);
- some traced operand: the op is recorded as an equation in that operand's trace; concrete
  operands (parameters, constants) are lifted into the graph as params (compiled mode).

Both modes check attributes and shapes with the same tables and compute with the same kernel
rules, which is why a compiled graph reproduces eager results bit for bit. Python scalars are
rounded to float32 (nearest even) when they meet a tensor, in both modes. There is no global
state: the trace travels with its tensors.
"""

from __future__ import annotations

import itertools
import os
import sys
from typing import Any, Sequence

import numpy as np

from . import ops as op_table
from .errors import IRError, NnlemmaError
from .ir.builder import Builder, as_f32_array
from .ir.graph import Value
from .ir.shapes import SHAPE_RULES

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_source() -> str | None:
    """``file:line`` of the innermost frame outside the nnlemma package (for error messages)."""
    frame = sys._getframe(1)
    while frame is not None:
        fname = os.path.abspath(frame.f_code.co_filename)
        if not fname.startswith(_PKG_DIR + os.sep):
            return f"{os.path.basename(fname)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


_LEVELS = itertools.count()


class Trace:
    """The recording context of one ``nl.compile`` call: a builder plus the lifted constants.

    Traces nest (a derivative traces its function inside an enclosing trace); ``level`` orders
    them, and an op joins the innermost trace among its operands. With ``foreign_ok`` (set by the
    derivative transforms) a tensor of an enclosing trace is lifted like a constant, and the
    caller re-runs the graph on that very tensor (``trace_function(..., constants=)``); without it
    such a tensor is an error, since the graph alone could not compute it."""

    def __init__(self, names: dict[int, str] | None = None, foreign_ok: bool = False) -> None:
        self.builder = Builder()
        self._lifted: dict[int, tuple[Tensor, Value]] = {}
        self._names = names or {}
        self.foreign_ok = foreign_ok
        self.level = next(_LEVELS)

    def value_of(self, t: "Tensor") -> Value:
        if t._trace is self:
            return t._value
        if t._trace is not None and not (self.foreign_ok and t._trace.level < self.level):
            raise IRError("a tensor from another trace was used; compile one function at a time")
        hit = self._lifted.get(id(t))
        if hit is None:
            data = t._data if t._data is not None else np.zeros(t.shape, np.float32)  # placeholder
            v = self.builder.param(data, self._names.get(id(t)))
            hit = self._lifted[id(t)] = (t, v)  # keep t alive so its id is not reused
        return hit[1]


class Tensor:
    """A float32 tensor (concrete or traced). Construct concrete tensors with :func:`tensor`."""

    __slots__ = ("_data", "_value", "_trace", "__weakref__")
    __array_priority__ = 1000  # numpy defers `ndarray op Tensor` to Tensor's reflected ops

    def __init__(self, data: Any = None, *, _value: Value | None = None, _trace: Trace | None = None):
        if _trace is None:
            self._data = data if isinstance(data, np.ndarray) and data.dtype == np.float32 \
                and not data.flags.writeable else as_f32_array(data, "tensor")
            self._value = None
        else:
            self._data = None
            self._value = _value
        self._trace = _trace

    # -- inspection ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape if self._trace is not None else self._data.shape

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_traced(self) -> bool:
        return self._trace is not None

    def numpy(self) -> np.ndarray:
        """A writable float32 copy of the data (concrete tensors only)."""
        if self._trace is not None:
            raise NnlemmaError("cannot read the values of a traced tensor while compiling; "
                               "keep data-dependent Python control flow out of compiled functions")
        return np.array(self._data, copy=True)

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self) -> str:
        if self._trace is not None:
            return f"Tensor(traced {self._value})"
        return f"Tensor({np.array2string(self._data, precision=9)}, shape={self.shape})"

    def __bool__(self):
        raise NnlemmaError("the truth value of a tensor is ambiguous; compare explicitly")

    def __len__(self) -> int:
        return self.shape[0]

    # -- operators -------------------------------------------------------------------------
    def __add__(self, o): return bind("add", self, o)
    def __radd__(self, o): return bind("add", o, self)
    def __sub__(self, o): return bind("sub", self, o)
    def __rsub__(self, o): return bind("sub", o, self)
    def __mul__(self, o): return bind("mul", self, o)
    def __rmul__(self, o): return bind("mul", o, self)
    def __truediv__(self, o): return bind("div", self, o)
    def __rtruediv__(self, o): return bind("div", o, self)
    def __matmul__(self, o): return bind("matmul", self, o)
    def __rmatmul__(self, o): return bind("matmul", o, self)
    def __neg__(self): return bind("neg", self)
    def __abs__(self): return bind("abs", self)

    def __getitem__(self, key) -> "Tensor":
        return bind("slice", self, index=_index_attr(key, self.shape))

    # -- methods mirroring the functional API ----------------------------------------------
    def relu(self): return bind("relu", self)
    def leaky_relu(self, alpha=0.01): return bind("leaky_relu", self, alpha=alpha)
    def tanh(self): return bind("tanh", self)
    def sigmoid(self): return bind("sigmoid", self)
    def exp(self): return bind("exp", self)
    def sin(self): return bind("sin", self)
    def cos(self): return bind("cos", self)
    def sqrt(self): return bind("sqrt", self)
    def square(self): return bind("square", self)
    def abs(self): return bind("abs", self)

    def clamp(self, lo=None, hi=None):
        return bind("clamp", self, lo=-np.inf if lo is None else lo, hi=np.inf if hi is None else hi)

    def sum(self, axis, keepdims=False):
        return bind("sum", self, axes=_axes(axis), keepdims=int(keepdims))

    def mean(self, axis, keepdims=False):
        return bind("mean", self, axes=_axes(axis), keepdims=int(keepdims))

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return bind("reshape", self, shape=tuple(shape))

    def transpose(self, *perm):
        if len(perm) == 1 and isinstance(perm[0], (tuple, list)):
            perm = tuple(perm[0])
        return bind("transpose", self, perm=perm or tuple(reversed(range(self.ndim))))

    @property
    def T(self):
        return self.transpose()


def _axes(axis) -> tuple[int, ...]:
    return tuple(axis) if isinstance(axis, (tuple, list)) else (int(axis),)


def _index_attr(key, shape) -> tuple:
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, slice):
            out.append((k.start, k.stop, k.step))
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            out.append((int(k),))
        else:
            raise IRError(f"unsupported index {k!r}: use ints and slices (basic indexing)")
    return tuple(out)


def tensor(data: Any) -> Tensor:
    """A concrete float32 tensor; data that is not float32 is rounded to nearest even."""
    if isinstance(data, Tensor):
        return Tensor(data.numpy())
    return Tensor(data)


def _concrete(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return x._data
    return as_f32_array(x, "operand")


def bind(op: str, *args: Any, **attrs: Any) -> Tensor:
    """Apply ``op`` to ``args``: eagerly with the float32 kernel, or recorded into a trace."""
    trace = None
    for a in args:
        if isinstance(a, Tensor) and a._trace is not None and a._trace is not trace:
            if trace is not None and not (trace.foreign_ok or a._trace.foreign_ok):
                raise IRError(f"op {op!r}: operands come from two different traces")
            if trace is None or a._trace.level > trace.level:
                trace = a._trace  # the innermost trace records the op
    if trace is not None:
        vals = [trace.value_of(a if isinstance(a, Tensor) else Tensor(a)) for a in args]
        out = trace.builder.eqn(op, vals, attrs, source=_caller_source())
        return Tensor(_value=out, _trace=trace)
    from .kernels import KERNEL_RULES

    arrays = [_concrete(a) for a in args]
    where = f"{op} (at {_caller_source()}): "
    spec = op_table.get(op, where)
    spec.check_arity(len(arrays), where)
    norm = dict(spec.normalize_attrs(attrs, where))
    try:
        SHAPE_RULES[op]([a.shape for a in arrays], **norm)
    except IRError as exc:
        raise type(exc)(f"{where}{exc}") from None
    out = KERNEL_RULES[op](*arrays, **norm)
    out.setflags(write=False)
    return Tensor(out)


def trace_function(fn, example_inputs: Sequence[Any], names: dict[int, str] | None = None,
                   constants: dict[int, "Tensor"] | None = None, bound: Sequence["Tensor"] = ()):
    """Trace ``fn`` on inputs shaped like ``example_inputs``; returns ``(graph, out_structure)``.
    ``constants``, if given, receives for every parameter of the graph the tensor it was lifted
    from (by value id), so a caller can re-run the graph on those very tensors (and the trace then
    lifts tensors of enclosing traces too). ``bound`` tensors (e.g. a model's parameters, which
    ``fn`` reaches by closure) become extra graph inputs after the examples, named by ``names``,
    for the duration of the trace: ops on them are recorded instead of folded."""
    trace = Trace(names, foreign_ok=constants is not None)
    tracers = []
    for i, x in enumerate(example_inputs):
        shape = x.shape if isinstance(x, Tensor) else np.shape(x)
        tracers.append(Tensor(_value=trace.builder.input(shape, f"input{i}"), _trace=trace))
    saved = [(t, t._value, t._trace) for t in bound]
    for t in bound:
        t._value, t._trace = trace.builder.input(t.shape, trace._names.get(id(t))), trace
    try:
        result = fn(*tracers)
    finally:
        for t, value, tr in saved:
            t._value, t._trace = value, tr
    single = isinstance(result, Tensor)
    outs = [result] if single else list(result)
    if not outs or not all(isinstance(o, Tensor) for o in outs):
        raise IRError("a compiled function must return a Tensor or a tuple/list of Tensors")
    vals = [trace.value_of(o) for o in outs]
    if constants is not None:
        constants.update({v.id: t for t, v in trace._lifted.values()})
    return trace.builder.build(vals), single
