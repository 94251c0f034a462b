"""The closed operator table: every op nnlemma knows, as data.

An op is a frozen :class:`OpSpec`: its name, arity, attribute schema, algebraic properties and a
docstring stating its meaning. Each *interpretation* of the ops (shape rules in
``nnlemma.ir.shapes``, the float32 kernel in ``nnlemma.kernels``, and later bounds, encoders and
lemmas) is a separate rule table keyed by op name; a coverage test checks every (op x table) cell.

The exact float32 meaning of each op (rounding, order of summation, NaN and signed zero) is pinned
in ``SEMANTICS.md``; the docstrings here are the one-line mathematical statement.

Attribute values are normalised to hashable, JSON-friendly Python values: ``int``, ``float``,
``str``, tuples of those, and (for ``slice``) tuples of index entries.
"""

from __future__ import annotations

import math

import numpy as np
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import IRError

REQUIRED = object()


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int,)) and not (hasattr(v, "__index__")):
        raise TypeError(f"expected an int, got {v!r}")
    return int(v)


def _float(v: Any) -> float:
    """A float attribute is stored as the float32 value the kernel uses (round to nearest even)."""
    if isinstance(v, bool):
        raise TypeError(f"expected a float, got {v!r}")
    with np.errstate(over="ignore"):
        return float(np.float32(float(v)))


def _ints(n: int | None) -> Callable[[Any], tuple]:
    def conv(v: Any) -> tuple:
        if isinstance(v, (int,)) and not isinstance(v, bool):
            v = (v,) * (n or 1)
        t = tuple(_int(x) for x in v)
        if n is not None and len(t) != n:
            raise TypeError(f"expected {n} ints, got {len(t)}")
        return t

    return conv


def _index(v: Any) -> tuple:
    """A basic numpy index: a tuple whose entries are ``(k,)`` (select index k, drop the axis)
    or ``(start, stop, step)`` with ``None`` allowed (a slice)."""
    out = []
    for e in v:
        e = tuple(e)
        if len(e) == 1:
            out.append((_int(e[0]),))
        elif len(e) == 3:
            start, stop, step = (None if x is None else _int(x) for x in e)
            if step is not None and step <= 0:
                raise TypeError(f"slice step must be positive, got {step}")
            out.append((start, stop, step))
        else:
            raise TypeError(f"index entry must be (k,) or (start, stop, step), got {e!r}")
    return tuple(out)


@dataclass(frozen=True)
class AttrSpec:
    convert: Callable[[Any], Any]
    default: Any = REQUIRED
    check: Callable[[Any], bool] | None = None
    doc: str = ""


@dataclass(frozen=True)
class OpSpec:
    """One operator. ``arity`` is ``(min, max)`` inputs (``max=None``: variadic)."""

    name: str
    arity: tuple[int, int | None]
    doc: str
    attrs: dict[str, AttrSpec] = field(default_factory=dict)
    properties: frozenset[str] = frozenset()

    def normalize_attrs(self, attrs: dict[str, Any], where: str = "") -> tuple[tuple[str, Any], ...]:
        """Check ``attrs`` against the schema; return them sorted, converted and with defaults."""
        unknown = sorted(set(attrs) - set(self.attrs))
        if unknown:
            raise IRError(f"{where}op {self.name!r}: unknown attribute(s) {unknown}; "
                          f"allowed: {sorted(self.attrs)}")
        out = []
        for key, spec in sorted(self.attrs.items()):
            if key in attrs and attrs[key] is None and spec.default is None:
                val = None  # an optional attribute passed as its default (e.g. re-binding normalised attrs)
            elif key in attrs:
                try:
                    val = spec.convert(attrs[key])
                except (TypeError, ValueError) as exc:
                    raise IRError(f"{where}op {self.name!r}: attribute {key}={attrs[key]!r}: {exc}") from None
            elif spec.default is REQUIRED:
                raise IRError(f"{where}op {self.name!r}: missing required attribute {key!r}")
            else:
                val = spec.default
            if spec.check is not None and not spec.check(val):
                raise IRError(f"{where}op {self.name!r}: attribute {key}={val!r} is invalid ({spec.doc})")
            out.append((key, val))
        return tuple(out)

    def check_arity(self, n: int, where: str = "") -> None:
        lo, hi = self.arity
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if lo == hi else f"{lo}..{'' if hi is None else hi}"
            raise IRError(f"{where}op {self.name!r} takes {want} inputs, got {n}")


def _finite_or_inf(x: float) -> bool:
    return not math.isnan(x)


EW = frozenset({"elementwise"})
MONO = frozenset({"elementwise", "monotone_increasing"})
PWL = frozenset({"piecewise_linear"})
MOVE = frozenset({"data_movement", "linear", "piecewise_linear"})

_SPECS = [
    # unary elementwise
    OpSpec("identity", (1, 1), "y = x", properties=MONO | PWL | {"linear"}),
    OpSpec("neg", (1, 1), "y = -x (sign flip, exact)", properties=EW | PWL | {"linear"}),
    OpSpec("abs", (1, 1), "y = |x| (sign cleared, exact)", properties=EW | PWL),
    OpSpec("relu", (1, 1), "y = max(x, +0) (IEEE-2019 maximum: NaN propagates, relu(-0) = +0)",
           properties=MONO | PWL),
    OpSpec("leaky_relu", (1, 1), "y = x if x > 0 else fl(alpha * x)",
           attrs={"alpha": AttrSpec(_float, check=lambda a: 0.0 < a <= 1.0, doc="0 < alpha <= 1")},
           properties=MONO | PWL),
    OpSpec("clamp", (1, 1), "y = minimum(maximum(x, lo), hi) with IEEE-2019 maximum/minimum",
           attrs={"lo": AttrSpec(_float, -math.inf, _finite_or_inf, "not NaN"),
                  "hi": AttrSpec(_float, math.inf, _finite_or_inf, "not NaN")},
           properties=MONO | PWL),
    OpSpec("step", (1, 1), "Heaviside step: 1 if x > 0, NaN if x is NaN, otherwise +0 (step(-0) = step(+0) = +0); "
           "relu's derivative with the Clarke element 0 chosen at the kink", properties=MONO | PWL),
    OpSpec("tanh", (1, 1), "y = tanh(x), correctly rounded", properties=MONO),
    OpSpec("sigmoid", (1, 1), "y = 1 / (1 + exp(-x)), correctly rounded as a whole", properties=MONO),
    OpSpec("exp", (1, 1), "y = exp(x), correctly rounded", properties=MONO),
    OpSpec("sin", (1, 1), "y = sin(x), correctly rounded", properties=EW),
    OpSpec("cos", (1, 1), "y = cos(x), correctly rounded", properties=EW),
    OpSpec("sqrt", (1, 1), "y = sqrt(x), correctly rounded (IEEE); sqrt(-0) = -0, x < 0 gives NaN",
           properties=MONO),
    OpSpec("square", (1, 1), "y = fl(x * x)", properties=EW),
    # binary elementwise, numpy broadcasting
    OpSpec("add", (2, 2), "y = fl(a + b)", properties=EW | PWL | {"linear", "broadcast"}),
    OpSpec("sub", (2, 2), "y = fl(a - b)", properties=EW | PWL | {"linear", "broadcast"}),
    OpSpec("mul", (2, 2), "y = fl(a * b)", properties=EW | {"broadcast"}),
    OpSpec("div", (2, 2), "y = fl(a / b)", properties=EW | {"broadcast"}),
    OpSpec("maximum", (2, 2), "IEEE-2019 maximum: NaN propagates, -0 < +0",
           properties=EW | PWL | {"broadcast"}),
    OpSpec("minimum", (2, 2), "IEEE-2019 minimum: NaN propagates, -0 < +0",
           properties=EW | PWL | {"broadcast"}),
    # dot-product ops: left fold from +0.0 in index order, products and sums rounded separately,
    # bias added last
    OpSpec("linear", (2, 3), "y[..., j] = fold_k(x[..., k] * W[j, k]) + b[j]; W is [out, in]",
           properties=frozenset({"dot", "linear"})),
    OpSpec("matmul", (2, 2), "y[..., j] = fold_k(a[..., k] * b[k, j]); b is 2-D",
           properties=frozenset({"dot"})),
    OpSpec("conv2d", (2, 3),
           "NCHW convolution (cross-correlation) over the zero-padded input; per output element a "
           "fold over (c_in, kh, kw) in index order, bias last",
           attrs={"stride": AttrSpec(_ints(2), (1, 1), lambda t: min(t) >= 1, "stride >= 1"),
                  "pads": AttrSpec(_ints(4), (0, 0, 0, 0), lambda t: min(t) >= 0,
                                   "(top, left, bottom, right) >= 0"),
                  "dilation": AttrSpec(_ints(2), (1, 1), lambda t: min(t) >= 1, "dilation >= 1")},
           properties=frozenset({"dot", "linear"})),
    OpSpec("batch_norm", (5, 5),
           "eval-mode batch norm over channel axis 1: inputs (x, mean, var, gamma, beta); "
           "y = fl(fl(fl(x - mean) / fl(sqrt(fl(var + eps)))) * gamma) + beta",
           attrs={"eps": AttrSpec(_float, 1e-5, lambda e: e >= 0, "eps >= 0")},
           properties=frozenset({"linear"})),
    OpSpec("avg_pool2d", (1, 1),
           "NCHW average pooling: fold of the window from +0.0 in (kh, kw) order, then one rounded "
           "division by the count (padding included iff count_include_pad)",
           attrs={"kernel": AttrSpec(_ints(2), check=lambda t: min(t) >= 1, doc="kernel >= 1"),
                  "stride": AttrSpec(_ints(2), None, lambda t: t is None or min(t) >= 1, "stride >= 1"),
                  "pads": AttrSpec(_ints(4), (0, 0, 0, 0), lambda t: min(t) >= 0, "pads >= 0"),
                  "count_include_pad": AttrSpec(_int, 0, lambda v: v in (0, 1), "0 or 1")},
           properties=frozenset({"linear"})),
    OpSpec("max_pool2d", (1, 1),
           "NCHW max pooling with IEEE-2019 maximum over the in-bounds window (padding ignored)",
           attrs={"kernel": AttrSpec(_ints(2), check=lambda t: min(t) >= 1, doc="kernel >= 1"),
                  "stride": AttrSpec(_ints(2), None, lambda t: t is None or min(t) >= 1, "stride >= 1"),
                  "pads": AttrSpec(_ints(4), (0, 0, 0, 0), lambda t: min(t) >= 0, "pads >= 0")},
           properties=PWL),
    # reductions: left fold from +0.0 over the reduced axes in row-major index order
    OpSpec("sum", (1, 1), "left fold from +0.0 over `axes` in row-major index order",
           attrs={"axes": AttrSpec(_ints(None)), "keepdims": AttrSpec(_int, 0, lambda v: v in (0, 1), "0 or 1")},
           properties=frozenset({"linear", "reduction"})),
    OpSpec("mean", (1, 1), "fl(sum / n): the sum fold, then one rounded division by the count",
           attrs={"axes": AttrSpec(_ints(None)), "keepdims": AttrSpec(_int, 0, lambda v: v in (0, 1), "0 or 1")},
           properties=frozenset({"linear", "reduction"})),
    # data movement: exact
    OpSpec("concat", (1, None), "concatenate along `axis`", attrs={"axis": AttrSpec(_int)},
           properties=MOVE),
    OpSpec("reshape", (1, 1),
           "row-major reshape; a -1 entry is inferred, a 0 entry copies the input's dimension",
           attrs={"shape": AttrSpec(_ints(None))}, properties=MOVE),
    OpSpec("transpose", (1, 1), "permute axes", attrs={"perm": AttrSpec(_ints(None))}, properties=MOVE),
    OpSpec("slice", (1, 1),
           "basic indexing: per leading axis either (k,) selects index k (axis dropped) or "
           "(start, stop, step) slices; trailing axes are kept whole",
           attrs={"index": AttrSpec(_index)}, properties=MOVE),
]

OPS: dict[str, OpSpec] = {s.name: s for s in _SPECS}


def get(op: str, where: str = "") -> OpSpec:
    try:
        return OPS[op]
    except KeyError:
        raise IRError(f"{where}unknown op {op!r}") from None
