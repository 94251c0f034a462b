"""Independent references for the float32 kernel tests (not a test module).

Two arithmetics implement the same IEEE binary32 operations:

* :class:`NpScalar` uses ``np.float32`` scalars (one hardware binary32 operation per step);
* :class:`Exact` uses :class:`fractions.Fraction` for the exact result of each operation and
  :func:`round_f32`, our own round-to-nearest-even (gradual underflow, overflow to ±inf), so it
  shares nothing with the hardware or numpy. Special values (NaN, ±inf, signed zeros) follow IEEE
  754 rules written out case by case.

The step-by-step folds (``ref_linear`` etc.) are plain Python loops over one of these
arithmetics, following SEMANTICS.md literally: ``acc = +0; acc = add(acc, mul(x_k, w_k))`` in
index order, bias last. Values are Python objects (np.float32 or float) and are converted to a
float32 array at the end.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np

F32 = np.float32
CANON = 0x7FC00000
MAX_F32 = float(np.finfo(np.float32).max)
TWO128 = 2.0 ** 128


# -- bit helpers ---------------------------------------------------------------------------------

def f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def from_bits(b: int) -> float:
    return struct.unpack("<f", struct.pack("<I", b & 0xFFFFFFFF))[0]


def canon_bits(a) -> np.ndarray:
    """uint32 bits of a float32 array with every NaN replaced by the canonical 0x7FC00000."""
    a = np.array(a, dtype=np.float32, copy=True)
    u = a.view(np.uint32)
    u[np.isnan(a)] = CANON
    return u


def assert_same_bits(got, want, msg: str = "") -> None:
    """Bit-for-bit equality; NaNs compared as canonical. Reports the first mismatches."""
    got = np.asarray(got, dtype=np.float32)
    want = np.asarray(want, dtype=np.float32)
    assert got.shape == want.shape, f"{msg} shape {got.shape} != {want.shape}"
    g, w = canon_bits(got), canon_bits(want)
    bad = np.flatnonzero(g.reshape(-1) != w.reshape(-1))
    if bad.size:
        lines = [f"{msg}: {bad.size} of {g.size} elements differ"]
        for i in bad[:5]:
            idx = np.unravel_index(i, got.shape)
            lines.append(f"  at {idx}: got {got[idx]!r} (0x{int(g.reshape(-1)[i]):08x}) "
                         f"want {want[idx]!r} (0x{int(w.reshape(-1)[i]):08x})")
        raise AssertionError("\n".join(lines))


def assert_canonical_nans(a, msg: str = "") -> None:
    a = np.asarray(a, dtype=np.float32)
    u = a.view(np.uint32)
    nan = np.isnan(a)
    assert np.all(u[nan] == CANON), f"{msg}: non-canonical NaN bits {sorted({hex(int(v)) for v in u[nan]})}"


# -- edge corpus ---------------------------------------------------------------------------------

from nnlemma.kernels.edge import (EDGE, EDGE_F32, FINITE_EDGE_F32, LARGEST_SUB, MIN_NORMAL,  # noqa: E402
                                  NAN_PATTERNS, SMALLEST_SUB)


def edge_array(rng: np.random.Generator, shape, finite: bool = False) -> np.ndarray:
    pool = FINITE_EDGE_F32 if finite else EDGE_F32
    return pool[rng.integers(0, pool.size, size=shape)].astype(np.float32)


def mixed_array(rng: np.random.Generator, shape, finite: bool = False) -> np.ndarray:
    """Edge values, random bit patterns and ordinary values mixed elementwise."""
    edge = edge_array(rng, shape, finite)
    raw = rng.integers(0, 2 ** 32, size=shape, dtype=np.uint64).astype(np.uint32).view(np.float32)
    if finite:
        raw = np.where(np.isfinite(raw), raw, F32(1.0))
    normal = rng.standard_normal(shape).astype(np.float32)
    pick = rng.integers(0, 3, size=shape)
    return np.choose(pick, [edge, raw, normal]).astype(np.float32)


# -- exact rounding --------------------------------------------------------------------------------

def round_f32(q: Fraction, sign_if_zero: int = 1) -> float:
    """The binary32 value nearest to the rational ``q`` (ties to even), with gradual underflow and
    overflow to ±inf, returned as a Python float. A result that underflows to zero keeps the sign
    of ``q``; ``q == 0`` gives ``sign_if_zero * 0.0``."""
    if q == 0:
        return math.copysign(0.0, sign_if_zero)
    neg = q < 0
    a = -q if neg else q
    n, d = a.numerator, a.denominator
    e = n.bit_length() - d.bit_length()  # 2^(e-1) < a < 2^(e+1)
    if (n << max(0, -e)) < (d << max(0, e)):
        e -= 1
    # now 2^e <= a < 2^(e+1)
    qe = max(e, -126) - 23  # exponent of the quantum (ulp) at a; -149 in the subnormal range
    # m = round_half_even(a / 2^qe)
    if qe >= 0:
        num, den = n, d << qe
    else:
        num, den = n << -qe, d
    m, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and m & 1):
        m += 1
    if m == 0:
        val = 0.0
    elif qe + m.bit_length() > 128:  # m * 2^qe >= 2^128: overflow
        val = math.inf
    else:
        val = math.ldexp(float(m), qe)
    return -val if neg else val


def _is_neg(x: float) -> bool:
    return math.copysign(1.0, x) < 0


class Exact:
    """IEEE binary32 arithmetic on Python floats holding float32 values; exact via Fraction."""

    @staticmethod
    def c(x) -> float:
        return float(F32(x))

    @staticmethod
    def mul(a: float, b: float) -> float:
        if math.isnan(a) or math.isnan(b):
            return math.nan
        sign = -1.0 if _is_neg(a) != _is_neg(b) else 1.0
        if math.isinf(a) or math.isinf(b):
            if a == 0 or b == 0:
                return math.nan
            return sign * math.inf
        if a == 0 or b == 0:
            return sign * 0.0
        return round_f32(Fraction(a) * Fraction(b))

    @staticmethod
    def add(a: float, b: float) -> float:
        if math.isnan(a) or math.isnan(b):
            return math.nan
        if math.isinf(a) and math.isinf(b):
            return a if a == b else math.nan
        if math.isinf(a):
            return a
        if math.isinf(b):
            return b
        if a == 0 and b == 0:
            return -0.0 if (_is_neg(a) and _is_neg(b)) else 0.0
        if a == 0:
            return b
        if b == 0:
            return a
        return round_f32(Fraction(a) + Fraction(b), +1)  # exact zero sum is +0 under RNE

    @classmethod
    def sub(cls, a: float, b: float) -> float:
        return cls.add(a, -b)

    @staticmethod
    def div(a: float, b: float) -> float:
        if math.isnan(a) or math.isnan(b):
            return math.nan
        sign = -1.0 if _is_neg(a) != _is_neg(b) else 1.0
        if math.isinf(a):
            return math.nan if math.isinf(b) else sign * math.inf
        if math.isinf(b):
            return sign * 0.0
        if b == 0:
            return math.nan if a == 0 else sign * math.inf
        if a == 0:
            return sign * 0.0
        return round_f32(Fraction(a) / Fraction(b))

    @staticmethod
    def sqrt(a: float) -> float:
        if math.isnan(a) or (a < 0):
            return math.nan
        if a == 0 or math.isinf(a):
            return a
        q = Fraction(a)
        n, d = q.numerator, q.denominator
        ea = n.bit_length() - d.bit_length()
        if (n << max(0, -ea)) < (d << max(0, ea)):
            ea -= 1
        er = ea // 2  # 2^er <= sqrt(a) < 2^(er+1); always in the normal range for float32 a
        qe = er - 23
        # S = a / 4^qe; m0 = floor(sqrt(S)) = isqrt(floor(S))
        if qe >= 0:
            num, den = n, d << (2 * qe)
        else:
            num, den = n << (-2 * qe), d
        m = math.isqrt(num // den)
        # round: compare S with (m + 1/2)^2  <=>  4*num vs (2m+1)^2 * den
        lhs, rhs = 4 * num, (2 * m + 1) ** 2 * den
        if lhs > rhs or (lhs == rhs and m & 1):
            m += 1
        return math.ldexp(float(m), qe)

    @staticmethod
    def maximum(a: float, b: float) -> float:
        if math.isnan(a) or math.isnan(b):
            return math.nan
        if a == 0 and b == 0:
            return -0.0 if (_is_neg(a) and _is_neg(b)) else 0.0
        return a if a > b else b

    @staticmethod
    def minimum(a: float, b: float) -> float:
        if math.isnan(a) or math.isnan(b):
            return math.nan
        if a == 0 and b == 0:
            return -0.0 if (_is_neg(a) or _is_neg(b)) else 0.0
        return a if a < b else b


class NpScalar:
    """The same operations as one hardware binary32 operation each, on ``np.float32`` scalars."""

    @staticmethod
    def c(x):
        return F32(x)

    @staticmethod
    def mul(a, b):
        with np.errstate(all="ignore"):
            return F32(F32(a) * F32(b))

    @staticmethod
    def add(a, b):
        with np.errstate(all="ignore"):
            return F32(F32(a) + F32(b))

    @staticmethod
    def sub(a, b):
        with np.errstate(all="ignore"):
            return F32(F32(a) - F32(b))

    @staticmethod
    def div(a, b):
        with np.errstate(all="ignore"):
            return F32(F32(a) / F32(b))

    @staticmethod
    def sqrt(a):
        with np.errstate(all="ignore"):
            return F32(np.sqrt(F32(a)))

    # maximum/minimum are not hardware ops; the IEEE-2019 rules are shared with Exact
    maximum = staticmethod(lambda a, b: F32(Exact.maximum(float(a), float(b))))
    minimum = staticmethod(lambda a, b: F32(Exact.minimum(float(a), float(b))))


ARITHS = {"npscalar": NpScalar, "exact": Exact}


# -- step-by-step folds ----------------------------------------------------------------------------

def _arr(vals, shape) -> np.ndarray:
    out = np.array([float(v) for v in vals], dtype=np.float64).astype(np.float32)
    return out.reshape(shape)


def ref_fold(A, xs, ws):
    acc = A.c(0.0)
    for xv, wv in zip(xs, ws):
        acc = A.add(acc, A.mul(xv, wv))
    return acc


def ref_linear(A, x, w, b=None) -> np.ndarray:
    """x [B, K], w [N, K], b [N]."""
    x, w = np.asarray(x, F32), np.asarray(w, F32)
    out = []
    for i in range(x.shape[0]):
        for j in range(w.shape[0]):
            acc = ref_fold(A, [A.c(v) for v in x[i]], [A.c(v) for v in w[j]])
            if b is not None:
                acc = A.add(acc, A.c(b[j]))
            out.append(acc)
    return _arr(out, (x.shape[0], w.shape[0]))


def ref_matmul(A, a, bm) -> np.ndarray:
    """a [B, K], bm [K, N]."""
    return ref_linear(A, a, np.asarray(bm, F32).T)


def ref_conv2d(A, x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)) -> np.ndarray:
    x, w = np.asarray(x, F32), np.asarray(w, F32)
    n, cin, h, wd = x.shape
    cout, _, kh, kw = w.shape
    top, left, bottom, right = pads
    oh = (h + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = []
    for bi in range(n):
        for co in range(cout):
            for p in range(oh):
                for q in range(ow):
                    acc = A.c(0.0)
                    for ci in range(cin):
                        for i in range(kh):
                            for j in range(kw):
                                r = p * stride[0] + i * dilation[0] - top
                                c = q * stride[1] + j * dilation[1] - left
                                xv = x[bi, ci, r, c] if (0 <= r < h and 0 <= c < wd) else 0.0
                                acc = A.add(acc, A.mul(A.c(xv), A.c(w[co, ci, i, j])))
                    if b is not None:
                        acc = A.add(acc, A.c(b[co]))
                    out.append(acc)
    return _arr(out, (n, cout, oh, ow))


def ref_sum(A, x, axes, keepdims=0) -> np.ndarray:
    x = np.asarray(x, F32)
    ax = sorted(a % x.ndim for a in axes)
    keep = [i for i in range(x.ndim) if i not in ax]
    out = []
    for kidx in np.ndindex(*[x.shape[i] for i in keep]):
        acc = A.c(0.0)
        for ridx in np.ndindex(*[x.shape[i] for i in ax]):  # row-major over the reduced axes
            full = [0] * x.ndim
            for i, v in zip(keep, kidx):
                full[i] = v
            for i, v in zip(ax, ridx):
                full[i] = v
            acc = A.add(acc, A.c(x[tuple(full)]))
        out.append(acc)
    shape = tuple(1 if i in ax else d for i, d in enumerate(x.shape)) if keepdims else \
        tuple(x.shape[i] for i in keep)
    return _arr(out, shape)


def ref_mean(A, x, axes, keepdims=0) -> np.ndarray:
    x = np.asarray(x, F32)
    n = 1
    for a in axes:
        n *= x.shape[a]
    s = ref_sum(A, x, axes, keepdims)
    return _arr([A.div(A.c(v), A.c(float(n))) for v in s.reshape(-1)], s.shape)


def _pool_windows(x, kernel, stride, pads):
    stride = stride or kernel
    n, c, h, wd = x.shape
    top, left, bottom, right = pads
    oh = (h + top + bottom - kernel[0]) // stride[0] + 1
    ow = (wd + left + right - kernel[1]) // stride[1] + 1
    for bi in range(n):
        for ch in range(c):
            for p in range(oh):
                for q in range(ow):
                    cells = []  # (value or None for padding) in (kh, kw) order
                    for i in range(kernel[0]):
                        for j in range(kernel[1]):
                            r, cc = p * stride[0] + i - top, q * stride[1] + j - left
                            cells.append(x[bi, ch, r, cc] if (0 <= r < h and 0 <= cc < wd) else None)
                    yield cells
    return


def _pool_shape(x, kernel, stride, pads):
    stride = stride or kernel
    return (x.shape[0], x.shape[1], (x.shape[2] + pads[0] + pads[2] - kernel[0]) // stride[0] + 1,
            (x.shape[3] + pads[1] + pads[3] - kernel[1]) // stride[1] + 1)


def ref_avg_pool2d(A, x, kernel, stride=None, pads=(0, 0, 0, 0), count_include_pad=0) -> np.ndarray:
    x = np.asarray(x, F32)
    out = []
    for cells in _pool_windows(x, kernel, stride, pads):
        acc = A.c(0.0)
        for v in cells:
            acc = A.add(acc, A.c(0.0 if v is None else v))
        count = len(cells) if count_include_pad else sum(v is not None for v in cells)
        out.append(A.div(acc, A.c(float(count))))
    return _arr(out, _pool_shape(x, kernel, stride, pads))


def ref_max_pool2d(A, x, kernel, stride=None, pads=(0, 0, 0, 0)) -> np.ndarray:
    x = np.asarray(x, F32)
    out = []
    for cells in _pool_windows(x, kernel, stride, pads):
        vals = [A.c(v) for v in cells if v is not None]
        acc = vals[0]
        for v in vals[1:]:
            acc = A.maximum(acc, v)
        out.append(acc)
    return _arr(out, _pool_shape(x, kernel, stride, pads))


def ref_batch_norm(A, x, m, v, g, b, eps) -> np.ndarray:
    x = np.asarray(x, F32)
    out = []
    for idx in np.ndindex(*x.shape):
        c = idx[1]
        s = A.sqrt(A.add(A.c(v[c]), A.c(eps)))
        y = A.add(A.mul(A.div(A.sub(A.c(x[idx]), A.c(m[c])), s), A.c(g[c])), A.c(b[c]))
        out.append(y)
    return _arr(out, x.shape)
