"""Elementwise ops bit for bit against the semantics pinned in SEMANTICS.md / ops.py.

References are written from the definitions, using the exact Fraction arithmetic of ``kref32``
(our own round-to-nearest-even) for the rounded operations: relu(-0) = +0, relu(NaN) = NaN,
IEEE-2019 maximum/minimum (-0 < +0, NaN propagates), and every NaN the kernel table returns is the
canonical 0x7FC00000, including inf - inf, 0 * inf, 0 / 0, sqrt(-1) and NaN inputs with any
payload or sign.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kref32 import (CANON, EDGE_F32, NAN_PATTERNS, Exact, assert_canonical_nans, assert_same_bits, f32_bits,
                    from_bits)
from nnlemma.kernels import KERNEL_RULES, elementwise as ew

F32 = np.float32
ANY_F32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)
HSET = settings(max_examples=80, deadline=None)
NANS = np.array(NAN_PATTERNS, np.uint32).view(np.float32)
CORPUS = np.concatenate([EDGE_F32, NANS])


def _map(fn, *arrs) -> np.ndarray:
    arrs = np.broadcast_arrays(*[np.asarray(a, F32) for a in arrs])
    out = [fn(*(float(a[i]) for a in arrs)) for i in np.ndindex(arrs[0].shape)]
    return np.array(out, dtype=np.float64).astype(F32).reshape(arrs[0].shape)


def _pairs():
    a, b = np.meshgrid(CORPUS, CORPUS, indexing="ij")
    return a.astype(F32), b.astype(F32)


def _rule(op, *args, **attrs):
    y = KERNEL_RULES[op](*args, **attrs)
    assert y.dtype == np.float32
    assert_canonical_nans(y, op)
    return y


def _sign_op(mask_fn):
    def ref(x):
        return from_bits(mask_fn(f32_bits(x))) if not math.isnan(x) else math.nan
    return ref


UNARY_REF = {
    "neg": _sign_op(lambda b: b ^ 0x80000000),
    "abs": _sign_op(lambda b: b & 0x7FFFFFFF),
    "relu": lambda x: x if x > 0 else (math.nan if math.isnan(x) else 0.0),
    "sqrt": Exact.sqrt,
    "square": lambda x: Exact.mul(x, x),
    "identity": lambda x: x,
}
BINARY_REF = {"add": Exact.add, "sub": Exact.sub, "mul": Exact.mul, "div": Exact.div,
              "maximum": Exact.maximum, "minimum": Exact.minimum}
DIRECT = {"neg": ew.neg, "abs": ew.abs_, "relu": ew.relu, "sqrt": ew.sqrt, "square": ew.square,
          "add": ew.add, "sub": ew.sub, "mul": ew.mul, "div": ew.div, "maximum": ew.maximum,
          "minimum": ew.minimum}


@pytest.mark.parametrize("op", list(UNARY_REF))
def test_unary_edge_corpus(op):
    want = _map(UNARY_REF[op], CORPUS)
    assert_same_bits(_rule(op, CORPUS), want, op)
    if op in DIRECT:
        with np.errstate(all="ignore"):
            assert_same_bits(DIRECT[op](CORPUS), want, f"{op} direct")


def test_unary_on_random_bit_patterns():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2 ** 32, size=3000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    for op, ref in UNARY_REF.items():
        assert_same_bits(_rule(op, x), _map(ref, x), op)


@pytest.mark.parametrize("op", list(BINARY_REF))
def test_binary_all_corpus_pairs(op):
    a, b = _pairs()
    want = _map(BINARY_REF[op], a, b)
    assert_same_bits(_rule(op, a, b), want, op)
    with np.errstate(all="ignore"):
        assert_same_bits(DIRECT[op](a, b), want, f"{op} direct")


@pytest.mark.parametrize("op", list(BINARY_REF))
def test_binary_broadcasting(op):
    rng = np.random.default_rng(1)
    a = EDGE_F32[rng.integers(0, EDGE_F32.size, (3, 1, 4))]
    b = EDGE_F32[rng.integers(0, EDGE_F32.size, (5, 1))]
    y = _rule(op, a, b)
    assert y.shape == (3, 5, 4)
    assert_same_bits(y, _map(BINARY_REF[op], a, b), op)


@HSET
@given(st.data())
def test_binary_hypothesis(data):
    shape = data.draw(st.sampled_from([(7,), (2, 3), (1, 4)]))
    a = data.draw(arrays(F32, shape, elements=ANY_F32))
    b = data.draw(arrays(F32, shape, elements=ANY_F32))
    for op, ref in BINARY_REF.items():
        assert_same_bits(_rule(op, a, b), _map(ref, a, b), op)


@HSET
@given(arrays(F32, st.integers(1, 16), elements=ANY_F32))
def test_unary_hypothesis(x):
    for op, ref in UNARY_REF.items():
        assert_same_bits(_rule(op, x), _map(ref, x), op)


def test_pinned_signed_zero_and_nan_cases():
    pz, nz, nan, inf = F32(0.0), F32(-0.0), F32(np.nan), F32(np.inf)

    def bits(op, *args, **attrs):
        return int(np.asarray(_rule(op, *[np.array(a, F32) for a in args], **attrs)).view(np.uint32))

    assert bits("relu", nz) == 0x00000000
    assert bits("relu", nan) == CANON
    assert bits("maximum", nz, pz) == 0 and bits("maximum", pz, nz) == 0
    assert bits("maximum", nz, nz) == 0x80000000
    assert bits("minimum", pz, nz) == 0x80000000 and bits("minimum", nz, pz) == 0x80000000
    assert bits("minimum", pz, pz) == 0
    assert bits("maximum", nan, inf) == CANON and bits("minimum", -inf, nan) == CANON
    assert bits("sub", inf, inf) == CANON and bits("add", inf, -inf) == CANON
    assert bits("mul", pz, inf) == CANON and bits("div", pz, nz) == CANON and bits("div", inf, -inf) == CANON
    assert bits("sqrt", F32(-1.0)) == CANON and bits("sqrt", -inf) == CANON
    assert bits("sqrt", nz) == 0x80000000
    assert bits("sub", F32(1.5), F32(1.5)) == 0  # x - x = +0
    assert bits("add", nz, nz) == 0x80000000 and bits("add", nz, pz) == 0
    assert bits("clamp", nz, lo=0.0, hi=math.inf) == 0  # clamp(-0, lo=0) = +0
    assert bits("leaky_relu", nz, alpha=0.01) == 0x80000000  # leaky_relu(-0) = -0
    assert bits("neg", nan) == CANON and bits("abs", from_bits(0xFFC00000)) == CANON
    # gradual underflow: subnormals are produced and kept, ties to even
    tiny = F32(2.0 ** -149)
    assert bits("mul", tiny, F32(0.5)) == 0  # 2^-150 is a tie between 0 and 2^-149: even is 0
    assert bits("mul", F32(3 * 2.0 ** -149), F32(0.5)) == 2  # 1.5 ulp -> 2 ulp (even)
    assert bits("add", tiny, tiny) == 2
    assert bits("div", F32(2.0 ** -126), F32(2.0)) == 0x00400000


@pytest.mark.parametrize("alpha", [2.0 ** -149, 0.01, 0.2, 0.5, 1.0])
def test_leaky_relu(alpha):
    alpha = float(F32(alpha))

    def ref(x):
        if x > 0:
            return x
        return math.nan if math.isnan(x) else Exact.mul(alpha, x)

    assert_same_bits(_rule("leaky_relu", CORPUS, alpha=alpha), _map(ref, CORPUS))
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2 ** 32, size=2000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    assert_same_bits(_rule("leaky_relu", x, alpha=alpha), _map(ref, x))


CLAMP_BOUNDS = [(-math.inf, math.inf), (0.0, math.inf), (-0.0, 0.0), (-1.0, 1.0), (0.0, 6.0),
                (-0.0, -0.0), (1.0, -1.0), (float(F32(2.0 ** -149)), float(F32(3.4e38))), (-math.inf, -0.0)]


@pytest.mark.parametrize("lo,hi", CLAMP_BOUNDS)
def test_clamp(lo, hi):
    want = _map(lambda x: Exact.minimum(Exact.maximum(x, lo), hi), CORPUS)
    assert_same_bits(_rule("clamp", CORPUS, lo=lo, hi=hi), want)


def test_every_rule_canonicalises_nan_inputs():
    """Every op of the table, fed NaNs with assorted payloads/signs, returns only 0x7FC00000 NaNs."""
    x = np.resize(CORPUS, (2, 3, 4, 4)).astype(F32)
    x.reshape(-1)[: NANS.size] = NANS
    v = np.resize(CORPUS, (3,)).astype(F32)
    w2 = np.resize(CORPUS[::-1], (5, 4)).astype(F32)
    calls = {
        "linear": ((x, w2), {}), "matmul": ((x, w2.T.copy()), {}),
        "conv2d": ((x, np.resize(CORPUS, (2, 3, 2, 2)).astype(F32)), {}),
        "batch_norm": ((x, v, v, v, v), {"eps": 1e-5}),
        "avg_pool2d": ((x,), {"kernel": (2, 2)}), "max_pool2d": ((x,), {"kernel": (2, 2)}),
        "sum": ((x,), {"axes": (1,)}), "mean": ((x,), {"axes": (1, 3)}),
        "concat": ((x, x), {"axis": 0}), "reshape": ((x,), {"shape": (-1,)}),
        "transpose": ((x,), {"perm": (3, 2, 1, 0)}), "slice": ((x,), {"index": ((0,), (0, 2, 1))}),
        "leaky_relu": ((x,), {"alpha": 0.01}), "clamp": ((x,), {"lo": -1.0, "hi": 1.0}),
    }
    for op, rule in KERNEL_RULES.items():
        if op in calls:
            args, attrs = calls[op]
        elif op in BINARY_REF:
            args, attrs = (x, x[:, :, ::-1]), {}
        else:
            args, attrs = (x,), {}
        y = rule(*args, **attrs)
        assert np.isnan(y).any(), op
        assert_canonical_nans(y, op)
