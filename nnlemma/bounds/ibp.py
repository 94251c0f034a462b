"""Interval bound propagation (IBP): one rule per op, for the float32 and the real semantics.

``ibp(graph, lo, hi, semantics="float32")`` returns a :class:`BoundsResult` whose interval for
every value contains:

* ``float32``: the float32 kernel's value of that node for every float32 input vector in the box,
  including the rounding of every product and partial sum in the kernel's fixed order (the folds
  below replay the kernel's order on interval endpoints);
* ``real``: the exact real-arithmetic value of that node for every real input in the box (weights
  taken as the exact rationals of their float32 values), with outward-rounded float64 endpoints.

An op without a rule for the requested semantics makes the result ``unknown`` with the op named;
nothing falls back to an unsound approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from ..interpret import interpret
from ..ir.graph import Graph
from ..ir.shapes import index_tuple, normalize_axes, resolve_reshape
from ..kernels import KERNEL_RULES
from . import arith as A
from .fold_f32 import fold_interval
from .interval import FLOAT32, REAL, SEMANTICS, Interval, Rounding

# Accuracy assumed of numpy's float64 exp/tanh/sin/cos (relative), the same trust assumption the
# kernel's correctly rounded transcendentals rest on (see SEMANTICS.md); real-semantics endpoints
# are widened by twice that.
_F64_FN_REL = 2.0 ** -43
_TRIG_LIMIT = 2.0 ** 17


def _widen_rel(r: Rounding, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Twice the assumed accuracy: sigmoid adds an add and a division to exp, each rounded."""
    lo = lo - (np.abs(lo) * (2 * _F64_FN_REL) + 2.0 ** -1000)
    hi = hi + (np.abs(hi) * (2 * _F64_FN_REL) + 2.0 ** -1000)
    return r.down(lo), r.up(hi)


def _sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_F64 = {"exp": np.exp, "tanh": np.tanh, "sigmoid": _sigmoid64, "sin": np.sin, "cos": np.cos}


def _transcendental_increasing(name: str, clip: tuple[float, float] | None):
    """exp, tanh, sigmoid are increasing. float32: the kernel is correctly rounded, hence monotone,
    so [k(lo), k(hi)]. real: float64 values widened by the assumed accuracy, then clipped to the
    function's range."""
    def f32(a: Interval) -> Interval:
        k = KERNEL_RULES[name]
        return Interval.make(k(a.lo), k(a.hi), a.nan, np.float32)

    def real(a: Interval) -> Interval:
        with np.errstate(all="ignore"):
            lo, hi = _widen_rel(REAL, _F64[name](a.lo), _F64[name](a.hi))
        if clip:
            lo, hi = np.clip(lo, *clip), np.clip(hi, *clip)
        return Interval.make(lo, hi, a.nan, np.float64)

    return f32, real


def _trig(r: Rounding, a: Interval, name: str) -> Interval:
    """sin has maxima at π/2 + 2kπ and minima at −π/2 + 2kπ (cos: shifted by π/2). Between
    consecutive critical points the function is monotone, and so is its correctly rounded float32
    version, so the range is spanned by the endpoint values, plus ±1 if a critical point may lie
    inside. Candidate critical points are found in float64 with a margin of 1e-7 (far above its
    error for |x| <= 2^17), which can only add candidates; wider or larger intervals get [−1, 1]."""
    lo64, hi64 = a.lo.astype(np.float64), a.hi.astype(np.float64)
    shift = math.pi / 2 if name == "sin" else 0.0
    with np.errstate(all="ignore"):
        k_first = np.ceil((lo64 - shift) / math.pi - 1e-7)
        k_last = np.floor((hi64 - shift) / math.pi + 1e-7)
        if r is FLOAT32:
            k = KERNEL_RULES[name]
            f_lo, f_hi = k(a.lo), k(a.hi)
        else:
            f_lo, f_hi = _F64[name](lo64), _F64[name](hi64)
        lo, hi = np.minimum(f_lo, f_hi), np.maximum(f_lo, f_hi)
        if r is REAL:
            lo, hi = _widen_rel(r, lo, hi)
    wild = ~np.isfinite(lo64) | ~np.isfinite(hi64) | (np.maximum(np.abs(lo64), np.abs(hi64)) > _TRIG_LIMIT) \
        | (k_last - k_first >= 1)
    one = (k_last == k_first)
    even = np.mod(k_first, 2) == 0
    has_max = wild | (one & even)
    has_min = wild | (one & ~even)
    lo = np.where(has_min, r.dtype(-1), lo)
    hi = np.where(has_max, r.dtype(1), hi)
    return Interval.make(np.maximum(lo, r.dtype(-1)), np.minimum(hi, r.dtype(1)), a.nan | A._has_inf(a), r.dtype)


# -- folds ------------------------------------------------------------------------------------

def _take(a: Interval, idx) -> Interval:
    return a.map(lambda v: v[idx])


def _zeros(r: Rounding, shape) -> Interval:
    return Interval.point(np.zeros(shape, r.dtype), r.dtype)


def _fold_dot(r: Rounding, x: Interval, w: Interval) -> Interval:
    """x [B, K] · w [K, N] in the kernel's order: acc = +0; acc = fl(acc + fl(x_k w_k)). Each step
    uses the sound interval mul and add; for the float32 model that is the kernel's own rounding on
    endpoints, so the result contains every float32 fold result."""
    acc = _zeros(r, (x.shape[0], w.shape[1]))
    for k in range(x.shape[1]):
        acc = A.add(r, acc, A.mul(r, _take(x, (slice(None), slice(k, k + 1))), _take(w, slice(k, k + 1))))
    return acc


def _gamma(n: int) -> float:
    u = 2.0 ** -53
    return n * u / (1 - n * u)


def _dot_real(x: Interval, w: Interval) -> Interval:
    """Real semantics with point weights: midpoint/radius form evaluated by float64 BLAS (any
    order), enclosed with the a-priori error bound |fl(Σ) − Σ| <= γ_n · Σ|terms| (valid for every
    summation order and for FMA), plus an underflow allowance."""
    if not (np.array_equal(w.lo, w.hi) and not w.nan.any()):
        return _fold_dot(REAL, x, w)
    W = w.lo.astype(np.float64)
    with np.errstate(all="ignore"):
        c = REAL.up((x.lo + x.hi) / 2)
        rad = REAL.up(np.maximum(c - x.lo, x.hi - c))
        yc = c @ W
        yr = rad @ np.abs(W)
        mag = np.abs(c) @ np.abs(W) + yr
        n = x.shape[1] + 2
        err = REAL.up(REAL.up(_gamma(n) * 2 * mag) + n * 2.0 ** -1022)
        lo = REAL.down(REAL.down(yc - yr) - err)
        hi = REAL.up(REAL.up(yc + yr) + err)
    nan = np.broadcast_to(x.nan.any(axis=1, keepdims=True), lo.shape) | ~np.isfinite(lo) | ~np.isfinite(hi)
    return Interval.make(lo, hi, nan, np.float64)


def _point_finite(w: Interval) -> bool:
    return bool(np.array_equal(w.lo, w.hi) and np.isfinite(w.lo).all() and not w.nan.any())


def _dot(r: Rounding, x: Interval, wt: Interval, b: Interval | None) -> Interval:
    lead = x.shape[:-1]
    x2 = x.map(lambda v: v.reshape(-1, x.shape[-1]))
    if r is FLOAT32 and _point_finite(wt) and np.isfinite(x2.lo).all() and np.isfinite(x2.hi).all() \
            and not x2.nan.any():
        lo, hi, _ = fold_interval(x2.lo, x2.hi, wt.lo)
        acc = Interval.make(lo, hi, ~np.isfinite(lo) | ~np.isfinite(hi), np.float32)
    elif r is FLOAT32:
        acc = _fold_dot(r, x2, wt)
    else:
        acc = _dot_real(x2, wt)
    if b is not None:
        acc = A.add(r, acc, b.map(lambda v: v[None, :]))
    return acc.map(lambda v: v.reshape(lead + (wt.shape[1],)))


def _linear(r):
    def rule(x, w, b=None):
        return _dot(r, x, w.map(lambda v: np.ascontiguousarray(v.T)), b)
    return rule


def _matmul(r):
    return lambda a, b: _dot(r, a, b, None)


def _pad(r: Rounding, x: Interval, pads, value) -> Interval:
    top, left, bottom, right = pads
    if not any(pads):
        return x
    width = ((0, 0), (0, 0), (top, bottom), (left, right))
    return Interval(np.pad(x.lo, width, constant_values=value), np.pad(x.hi, width, constant_values=value),
                    np.pad(np.broadcast_to(x.nan, x.shape), width, constant_values=False))


def _win(x: Interval, ch, i, j, oh, ow, stride) -> Interval:
    return _take(x, (slice(None), ch, slice(i, i + stride[0] * (oh - 1) + 1, stride[0]),
                     slice(j, j + stride[1] * (ow - 1) + 1, stride[1])))


def _conv2d(r):
    def rule(x, w, b=None, *, stride, pads, dilation):
        """The kernel's conv fold on the zero-padded input, with interval mul/add per tap."""
        xp = _pad(r, x, pads, 0.0)
        cout, cin, kh, kw = w.shape
        oh = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        acc = _zeros(r, (x.shape[0], cout, oh, ow))
        for ci in range(cin):
            for i in range(kh):
                for j in range(kw):
                    win = _win(xp, slice(ci, ci + 1), i * dilation[0], j * dilation[1], oh, ow, stride)
                    wk = _take(w, (None, slice(None), ci, i, j, None, None))
                    acc = A.add(r, acc, A.mul(r, win, wk))
        if b is not None:
            acc = A.add(r, acc, _take(b, (None, slice(None), None, None)))
        return acc
    return rule


def _pool_geometry(x, kernel, stride, pads):
    stride = stride or kernel
    oh = (x.shape[2] + pads[0] + pads[2] - kernel[0]) // stride[0] + 1
    ow = (x.shape[3] + pads[1] + pads[3] - kernel[1]) // stride[1] + 1
    return stride, oh, ow


def _avg_pool(r):
    def rule(x, *, kernel, stride, pads, count_include_pad):
        """The kernel's window fold with interval adds, then division by the positive count (a
        small integer, exact in float32, computed as the kernel does)."""
        stride, oh, ow = _pool_geometry(x, kernel, stride, pads)
        xp = _pad(r, x, pads, 0.0)
        acc = _zeros(r, x.shape[:2] + (oh, ow))
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                acc = A.add(r, acc, _win(xp, slice(None), i, j, oh, ow, stride))
        count = _window_counts(x.shape, kernel, stride, pads, count_include_pad)
        return A.div(r, acc, Interval.point(count.astype(r.dtype), r.dtype))
    return rule


def _window_counts(shape, kernel, stride, pads, count_include_pad) -> np.ndarray:
    _, oh, ow = _pool_geometry(np.empty((1, 1) + tuple(shape[2:])), kernel, stride, pads)
    if count_include_pad or not any(pads):
        return np.full((1, 1, oh, ow), kernel[0] * kernel[1], np.float64)
    inside = np.zeros((shape[2] + pads[0] + pads[2], shape[3] + pads[1] + pads[3]))
    inside[pads[0]:pads[0] + shape[2], pads[1]:pads[1] + shape[3]] = 1
    counts = np.zeros((oh, ow))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            counts += inside[i:i + stride[0] * (oh - 1) + 1:stride[0], j:j + stride[1] * (ow - 1) + 1:stride[1]]
    return counts[None, None]


def _max_pool(r):
    def rule(x, *, kernel, stride, pads):
        """maximum is monotone: max of the lo's and max of the hi's over the window (padding is
        −inf, which maximum ignores)."""
        stride, oh, ow = _pool_geometry(x, kernel, stride, pads)
        xp = _pad(r, x, pads, -np.inf)
        acc = None
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                win = _win(xp, slice(None), i, j, oh, ow, stride)
                acc = win if acc is None else A.maximum(r, acc, win)
        return acc
    return rule


def move_reduced_last(x: Interval, axes):
    ax = normalize_axes(axes, len(x.shape))
    keep = [i for i in range(len(x.shape)) if i not in ax]

    def f(v):
        v = np.transpose(np.broadcast_to(v, x.shape), keep + list(ax))
        return v.reshape(v.shape[:len(keep)] + (-1,))
    return x.map(f), ax


def _sum(r):
    def rule(x, *, axes, keepdims):
        """The kernel's fold from +0 over the reduced axes, with interval adds."""
        flat, ax = move_reduced_last(x, axes)
        acc = _zeros(r, flat.shape[:-1])
        for k in range(flat.shape[-1]):
            acc = A.add(r, acc, _take(flat, (..., k)))
        if keepdims:
            shape = tuple(1 if i in ax else d for i, d in enumerate(x.shape))
            acc = acc.map(lambda v: v.reshape(shape))
        return acc
    return rule


def _mean(r):
    def rule(x, *, axes, keepdims):
        """fl(sum / float32(n)): the sum rule, then division by the positive constant."""
        n = int(np.prod([x.shape[a] for a in normalize_axes(axes, len(x.shape))]))
        s = _sum(r)(x, axes=axes, keepdims=keepdims)
        return A.div(r, s, Interval.point(np.asarray(np.float32(n), r.dtype), r.dtype))
    return rule


def _batch_norm(r):
    def rule(x, m, v, g, b, *, eps):
        """The kernel's formula with interval sub, add, sqrt (monotone), div, mul, add."""
        shape = (1, x.shape[1]) + (1,) * (len(x.shape) - 2)
        m, v, g, b = (t.map(lambda a: a.reshape(shape)) for t in (m, v, g, b))
        e = Interval.point(np.asarray(np.float32(eps), r.dtype), r.dtype)
        s = _sqrt(r)(A.add(r, v, e))
        return A.add(r, A.mul(r, A.div(r, A.sub(r, x, m), s), g), b)
    return rule


def _sqrt(r):
    def rule(a):
        """sqrt is increasing and correctly rounded (IEEE); NaN where the input may be < 0."""
        with np.errstate(invalid="ignore"):
            lo, hi = np.sqrt(np.maximum(a.lo, r.dtype(0))), np.sqrt(np.maximum(a.hi, r.dtype(0)))
        return Interval.make(r.down(lo), r.up(hi), a.nan | (a.lo < 0), r.dtype)
    return rule


def _clamp(r):
    def rule(a, *, lo, hi):
        """minimum(maximum(x, lo), hi) is monotone and exact."""
        return Interval.make(np.minimum(np.maximum(a.lo, r.dtype(lo)), r.dtype(hi)),
                             np.minimum(np.maximum(a.hi, r.dtype(lo)), r.dtype(hi)), a.nan, r.dtype)
    return rule


def _leaky(r):
    def rule(a, *, alpha):
        """x if x > 0 else fl(alpha·x) is non-decreasing for alpha > 0 (fl monotone)."""
        lo = np.where(a.lo > 0, a.lo, r.down(r.dtype(alpha) * a.lo))
        hi = np.where(a.hi > 0, a.hi, r.up(r.dtype(alpha) * a.hi))
        return Interval.make(lo, hi, a.nan, r.dtype)
    return rule


def _data_movement(fn: Callable[..., np.ndarray]):
    def rule(a, **attrs):
        return a.map(lambda v: fn(np.broadcast_to(v, a.shape), **attrs))
    return rule


def _concat(*xs, axis):
    return Interval(np.concatenate([x.lo for x in xs], axis), np.concatenate([x.hi for x in xs], axis),
                    np.concatenate([np.broadcast_to(x.nan, x.shape) for x in xs], axis))


def _table(r: Rounding) -> dict[str, Callable[..., Interval]]:
    inc = {name: _transcendental_increasing(name, clip)[0 if r is FLOAT32 else 1]
           for name, clip in (("exp", (0.0, np.inf)), ("tanh", (-1.0, 1.0)), ("sigmoid", (0.0, 1.0)))}
    return {
        "identity": lambda a: a,
        "neg": lambda a: A.neg(r, a),
        "abs": lambda a: A.abs_(r, a),
        "relu": lambda a: A.increasing(r, a, lambda v: np.maximum(v, r.dtype(0)), exact=True),
        "step": lambda a: A.increasing(r, a, lambda v: (v > 0).astype(r.dtype), exact=True),
        "leaky_relu": _leaky(r),
        "clamp": _clamp(r),
        **inc,
        "sin": lambda a: _trig(r, a, "sin"),
        "cos": lambda a: _trig(r, a, "cos"),
        "sqrt": _sqrt(r),
        "square": lambda a: A.square(r, a),
        "add": lambda a, b: A.add(r, a, b),
        "sub": lambda a, b: A.sub(r, a, b),
        "mul": lambda a, b: A.mul(r, a, b),
        "div": lambda a, b: A.div(r, a, b),
        "maximum": lambda a, b: A.maximum(r, a, b),
        "minimum": lambda a, b: A.minimum(r, a, b),
        "linear": _linear(r),
        "matmul": _matmul(r),
        "conv2d": _conv2d(r),
        "batch_norm": _batch_norm(r),
        "avg_pool2d": _avg_pool(r),
        "max_pool2d": _max_pool(r),
        "sum": _sum(r),
        "mean": _mean(r),
        "concat": _concat,
        "reshape": _data_movement(lambda v, shape: v.reshape(resolve_reshape(v.shape, shape))),
        "transpose": _data_movement(lambda v, perm: np.transpose(v, perm)),
        "slice": _data_movement(lambda v, index: v[index_tuple(index)]),
    }


IBP_RULES: dict[str, dict[str, Callable[..., Interval]]] = {name: _table(r) for name, r in SEMANTICS.items()}


@dataclass
class BoundsResult:
    """Per-value intervals (``env``) or an ``unknown`` status with the reason."""

    graph: Graph
    semantics: str
    status: str  # "ok" or "unknown"
    reason: str = ""
    env: dict[int, Interval] = field(default_factory=dict)

    @property
    def outputs(self) -> list[Interval]:
        return [self.env[i] for i in self.graph.outputs]

    def __getitem__(self, vid: int) -> Interval:
        return self.env[vid]


def _directed(values: np.ndarray, dtype, up: bool, inward: bool) -> np.ndarray:
    """Convert bounds exactly: values already of ``dtype`` pass through; anything else (int,
    longdouble, Fraction objects) is rounded to the nearest ``dtype`` value in the safe direction
    (outward for real boxes; inward for float32 boxes, whose float32 points are the same)."""
    a = np.asarray(values)
    if a.dtype == dtype or (a.dtype == np.float32 and dtype is np.float64):
        return a.astype(dtype)
    from fractions import Fraction

    from ..vnnlib import f32_at_least, f32_at_most

    def exact(x):
        if isinstance(x, Fraction):
            return x
        if isinstance(x, (int, np.integer)):
            return Fraction(int(x))
        return Fraction(*np.longdouble(x).as_integer_ratio()) if np.isfinite(x) else x

    big = Fraction(float(np.finfo(np.float64).max))
    out = np.empty(a.shape, dtype)
    for idx, x in np.ndenumerate(a):
        q = exact(x)
        if not isinstance(q, Fraction):
            if np.isnan(q):
                raise InputError(f"box bound {x!r} is NaN")
            v = dtype(q)  # ±inf is itself a (float32 or extended-real) value of the box
        elif dtype is np.float32:
            v = (f32_at_least(q) if up else f32_at_most(q)) if inward else None
            if v is None:
                raise InputError(f"box bound {q} has no float32 value inside the box")
        elif abs(q) > big:  # beyond float64: outward is ±inf, else the largest finite value
            v = np.float64(np.inf if up else big) if q > 0 else np.float64(-big if up else -np.inf)
        else:
            v = np.float64(float(q))
            if up and Fraction(float(v)) < q:
                v = np.nextafter(v, np.inf)
            elif not up and Fraction(float(v)) > q:
                v = np.nextafter(v, -np.inf)
        out[idx] = v
    return out


def _as_boxes(graph: Graph, lo, hi, dtype) -> list[Interval]:
    los = [lo] if len(graph.inputs) == 1 and not isinstance(lo, (list, tuple)) else list(lo)
    his = [hi] if len(graph.inputs) == 1 and not isinstance(hi, (list, tuple)) else list(hi)
    if len(los) != len(graph.inputs) or len(his) != len(graph.inputs):
        raise InputError(f"graph has {len(graph.inputs)} inputs; got {len(los)} lower and {len(his)} upper bounds")
    boxes = []
    inward = dtype is np.float32
    for v, l, h in zip(graph.inputs, los, his):
        l, h = np.asarray(l), np.asarray(h)
        name = v.name or str(v)
        if l.shape != v.shape or h.shape != v.shape:
            raise InputError(f"input {name}: box shape {list(l.shape)}/{list(h.shape)} != input shape {list(v.shape)}")
        # float32 boxes: lower bounds round up and upper bounds down (same float32 points);
        # real boxes: lower bounds round down and upper bounds up (the box only grows)
        l = _directed(l, dtype, up=inward, inward=inward)
        h = _directed(h, dtype, up=not inward, inward=inward)
        if np.isnan(l).any() or np.isnan(h).any() or np.any(l > h):
            raise InputError(f"input {name}: box bounds must satisfy lo <= hi without NaN")
        boxes.append(Interval.make(l, h, False, dtype))
    return boxes


def ibp(graph: Graph, lo, hi, semantics: str = "float32",
        rules: dict[str, Callable[..., Interval]] | None = None) -> BoundsResult:
    """Interval bounds of every value of ``graph`` over the input box ``[lo, hi]``."""
    if semantics not in SEMANTICS:
        raise InputError(f"unknown semantics {semantics!r}; use 'float32' or 'real'")
    r = SEMANTICS[semantics]
    table = IBP_RULES[semantics] if rules is None else rules
    missing = [e for e in graph.equations if e.op not in table]
    if missing:
        ops = ", ".join(dict.fromkeys(f"{e.op!r} at {e.describe()}" for e in missing))
        return BoundsResult(graph, semantics, "unknown", f"no {semantics} IBP rule for {ops}")
    boxes = _as_boxes(graph, lo, hi, r.dtype)
    env = interpret(graph, table, boxes, param_value=lambda p: Interval.point(p.data.astype(r.dtype), r.dtype))
    return BoundsResult(graph, semantics, "ok", "", env)


__all__: Sequence[str] = ["BoundsResult", "IBP_RULES", "ibp"]
