"""Encoder agreement: each op's SMT encoding gives the float32 kernel's bits (every NaN equal).

The linchpin of the obligations: an obligation about an op is only about the kernel if the
encoding *is* the kernel. Constants from the edge corpus are substituted and the encoded term is
evaluated two ways — by Z3's simplifier, and by the solver proper (``y = encoding ∧ y ≠ kernel``
must be unsat, then ``y = encoding`` must return the kernel's bits as its model) — and compared
bit for bit with the kernel.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from encoders import fp32
from encoders import terms as T
from nnlemma.kernels import KERNEL_RULES
from nnlemma.kernels.edge import EDGE_F32, NAN_PATTERNS
from solvers.z3_backend import Z3Solver

CANON = 0x7FC00000
CORPUS = [int(b) for b in EDGE_F32.view(np.uint32)] + NAN_PATTERNS


@pytest.fixture(scope="module")
def z3s():
    return Z3Solver()


def kernel_bits(op: str, *patterns: int, **attrs) -> int:
    args = [np.array(p, dtype=np.uint32).view(np.float32) for p in patterns]
    return int(np.asarray(KERNEL_RULES[op](*args, **attrs), np.float32).view(np.uint32))


def encoded(op: str, *patterns: int, **attrs) -> T.Term:
    return fp32.FP_RULES[op](attrs, *(T.fp_bits(p) for p in patterns))


def show(p: int) -> str:
    return f"0x{p:08x} ({np.array(p, dtype=np.uint32).view(np.float32)!r})"


def assert_agree(z3s, op, patterns, attrs=None):
    attrs = attrs or {}
    want = kernel_bits(op, *patterns, **attrs)
    got = z3s.evaluate(encoded(op, *patterns, **attrs))
    assert got == want, (f"{op}{attrs or ''} on {', '.join(map(show, patterns))}: "
                         f"encoding gives {show(got)}, kernel gives {show(want)}")


UNARY = [("identity", {}), ("neg", {}), ("abs", {}), ("relu", {}), ("sqrt", {}), ("square", {}),
         ("leaky_relu", {"alpha": 0.01}), ("leaky_relu", {"alpha": 1.0}),
         ("clamp", {"lo": 0.0, "hi": 6.0}), ("clamp", {"lo": -1.0, "hi": -0.0})]
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum"]


@pytest.mark.parametrize("op,attrs", UNARY, ids=[f"{o}{a}" for o, a in UNARY])
def test_unary_edge_corpus(z3s, op, attrs):
    for p in CORPUS:
        assert_agree(z3s, op, [p], dict(attrs, **({"alpha": np.float32(attrs["alpha"])}
                                                  if "alpha" in attrs else {})))


@pytest.mark.parametrize("op", BINARY)
def test_binary_edge_corpus_all_pairs(z3s, op):
    for a, b in itertools.product(CORPUS, CORPUS):
        assert_agree(z3s, op, [a, b])


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(BINARY), a=st.integers(0, 2**32 - 1), b=st.integers(0, 2**32 - 1))
def test_binary_random_bit_patterns(op, a, b):
    assert_agree(Z3Solver(), op, [a, b])


def test_solver_returns_the_kernel_bits(z3s):
    """Through the solver (bit-blasting), not the simplifier: the encoding determines y uniquely
    and y is the kernel's value."""
    rng = np.random.default_rng(0)
    pairs = [tuple(int(x) for x in rng.choice(CORPUS, 2)) for _ in range(40)]
    for op in BINARY:
        for a, b in pairs:
            want = kernel_bits(op, a, b)
            y = T.var("y", T.F32)
            term = encoded(op, a, b)
            out = z3s.check(T.eq(y, term), timeout_s=30)
            assert out.status == "sat" and out.model["y"] == (CANON if want == CANON else want), \
                f"{op}({show(a)}, {show(b)}): solver model {out.model}, kernel {show(want)}"
            differs = z3s.check(T.and_(T.eq(y, term), T.not_(T.eq(y, T.fp_bits(want)))), timeout_s=30)
            assert differs.status == "unsat", f"{op}({show(a)}, {show(b)}) is not determined"


def test_fold_matches_kernel_linear_bit_for_bit(z3s):
    """The fold encoding of linear (order, no FMA, bias last) on edge-heavy random rows."""
    rng = np.random.default_rng(1)
    pool = EDGE_F32[np.isfinite(EDGE_F32)]
    for trial in range(60):
        n = int(rng.integers(1, 7))
        choose = (lambda k: pool[rng.integers(0, pool.size, k)]) if trial % 2 else \
            (lambda k: rng.standard_normal(k).astype(np.float32))
        x, w, b = choose(n), choose(n), choose(1)
        want = KERNEL_RULES["linear"](x[None, :], w[None, :], b)[0, 0]
        term = fp32.FP_RULES["linear"]({}, [T.fp_bits(int(v)) for v in x.view(np.uint32)],
                                        [T.fp_bits(int(v)) for v in w.view(np.uint32)],
                                        T.fp_bits(int(b.view(np.uint32)[0])))
        got = z3s.evaluate(term)
        assert got == int(np.float32(want).view(np.uint32)), (x, w, b, show(got), want)


def test_mean_batch_norm_and_max_pool(z3s):
    rng = np.random.default_rng(2)
    for _ in range(30):
        x = rng.standard_normal(4).astype(np.float32) * np.float32(1e3)
        pats = [T.fp_bits(int(v)) for v in x.view(np.uint32)]
        want = KERNEL_RULES["mean"](x, axes=(0,))
        assert z3s.evaluate(fp32.FP_RULES["mean"]({}, pats, 4)) == int(np.float32(want).view(np.uint32))
        want = np.max(x) if not np.isnan(x).any() else np.nan
        assert z3s.evaluate(fp32.FP_RULES["max_pool2d"]({}, pats)) == int(np.float32(want).view(np.uint32))
        mean, var, gamma, beta = (np.float32(v) for v in rng.standard_normal(4))
        var = np.float32(abs(var))
        want = KERNEL_RULES["batch_norm"](x[None, :1, None, None], *(np.array([v], np.float32) for v in
                                                                     (mean, var, gamma, beta)), eps=1e-5)
        term = fp32.FP_RULES["batch_norm"]({"eps": 1e-5}, pats[0],
                                           *(T.fp_bits(int(np.float32(v).view(np.uint32)))
                                             for v in (mean, var, gamma, beta)))
        assert z3s.evaluate(term) == int(np.float32(want.reshape(())).view(np.uint32))


def test_every_op_has_an_encoding_or_a_reason():
    from nnlemma.ops import OPS
    for op in OPS:
        assert (op in fp32.FP_RULES) != (op in fp32.FP_CUT_REASONS), op


def test_whole_graph_encoding_matches_the_kernel(z3s):
    """encode_graph on a small MLP (reshape, matmul, add, relu, sub) with concrete inputs gives
    the kernel's output bits."""
    from encoders.graph import encode_graph
    from nnlemma.interpret import run
    from nnlemma.ir import Builder
    rng = np.random.default_rng(4)
    b = Builder()
    x = b.input((1, 1, 4), "x")
    h = b.eqn("reshape", [b.eqn("sub", [x, b.param(rng.standard_normal((1, 1, 4)).astype(np.float32))])],
              {"shape": (1, 4)})
    h = b.eqn("relu", [b.eqn("add", [b.eqn("matmul", [h, b.param(rng.standard_normal((4, 3)).astype(np.float32))]),
                                     b.param(rng.standard_normal(3).astype(np.float32))])])
    g = b.build([b.eqn("linear", [h, b.param(rng.standard_normal((2, 3)).astype(np.float32))])])
    for _ in range(5):
        xv = rng.standard_normal((1, 1, 4)).astype(np.float32)
        (want,) = run(g, xv)
        (y,) = encode_graph(g, [np.array([T.fp_bits(int(v)) for v in xv.reshape(-1).view(np.uint32)],
                                         dtype=object)])
        got = [z3s.evaluate(t) for t in y.reshape(-1)]
        assert got == [int(v) for v in want.reshape(-1).view(np.uint32)]
