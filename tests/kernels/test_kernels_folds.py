"""The fixed-order folds (linear, matmul, conv2d, sum, mean, pooling, batch norm), bit for bit.

Each kernel result (numpy fold, compiled C fold, and the kernel table rule) is compared with two
independent step-by-step references from ``kref32``: Python loops over ``np.float32`` scalars, and
the same loops over exact Fraction arithmetic with our own round-to-nearest-even. Inputs: the edge
corpus (±0, ±inf, NaN, subnormals, min normal, max finite, ulp neighbours, 1+2^-23, ...) and
hypothesis-generated float32 arrays with NaN and inf allowed.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kref32 import (ARITHS, Exact, NpScalar, assert_canonical_nans, assert_same_bits, edge_array,
                    mixed_array, f32_bits, ref_avg_pool2d, round_f32, ref_batch_norm, ref_conv2d, ref_linear, ref_matmul,
                    ref_max_pool2d, ref_mean, ref_sum)
from nnlemma.kernels import KERNEL_RULES, fast, fold

F32 = np.float32
HSET = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ANY_F32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)

# linear/matmul/conv2d have three implementations that must agree bit for bit
LINEAR = {"numpy": fold.linear, "compiled": fast.linear, "table": KERNEL_RULES["linear"]}
MATMUL = {"numpy": fold.matmul, "compiled": fast.matmul, "table": KERNEL_RULES["matmul"]}
CONV = {"numpy": fold.conv2d, "compiled": fast.conv2d, "table": KERNEL_RULES["conv2d"]}


def _check(got, want, impl, msg=""):
    assert_same_bits(got, want, msg)
    if impl == "table":
        assert_canonical_nans(got, msg)


# -- linear / matmul ----------------------------------------------------------------------------

@pytest.mark.parametrize("arith", list(ARITHS))
@pytest.mark.parametrize("impl", list(LINEAR))
@pytest.mark.parametrize("batch", [1, 3, 4, 5, 9])
def test_linear_edge_corpus(impl, arith, batch):
    A = ARITHS[arith]
    rng = np.random.default_rng(1000 + batch)
    for trial in range(6):
        k = int(rng.integers(1, 6))
        x = edge_array(rng, (batch, k))
        w = edge_array(rng, (7, k))
        b = edge_array(rng, (7,)) if trial % 2 else None
        _check(LINEAR[impl](x, w, b), ref_linear(A, x, w, b), impl, f"trial {trial}")


@pytest.mark.parametrize("impl", list(MATMUL))
def test_matmul_edge_corpus_and_leading_axes(impl):
    rng = np.random.default_rng(7)
    for trial in range(8):
        k = int(rng.integers(1, 5))
        a = edge_array(rng, (2, 3, k))
        bm = edge_array(rng, (k, 5))
        got = MATMUL[impl](a, bm)
        want = ref_matmul(NpScalar, a.reshape(6, k), bm).reshape(2, 3, 5)
        _check(got, want, impl)
        assert_same_bits(got, ref_matmul(Exact, a.reshape(6, k), bm).reshape(2, 3, 5))
    v = edge_array(rng, (4,))  # 1-D left operand
    m = edge_array(rng, (4, 3))
    _check(MATMUL[impl](v, m), ref_matmul(Exact, v[None], m)[0], impl)


@st.composite
def linear_case(draw):
    bsz, k, n = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    x = draw(arrays(F32, (bsz, k), elements=ANY_F32))
    w = draw(arrays(F32, (n, k), elements=ANY_F32))
    b = draw(st.none() | arrays(F32, (n,), elements=ANY_F32))
    return x, w, b


@HSET
@given(linear_case())
def test_linear_hypothesis(case):
    x, w, b = case
    want = ref_linear(NpScalar, x, w, b)
    assert_same_bits(want, ref_linear(Exact, x, w, b), "npscalar vs exact")
    for impl, f in LINEAR.items():
        _check(f(x, w, b), want, impl, impl)


_B18 = float(F32(1e18))
BOUNDED_F32 = st.floats(width=32, min_value=-_B18, max_value=_B18, allow_subnormal=True) | \
    st.sampled_from([0.0, -0.0, 2.0 ** -149, -(2.0 ** -126 - 2.0 ** -149), 2.0 ** -126, 1.0 + 2.0 ** -23,
                     -(1.0 + 2.0 ** -12), 1.0 - 2.0 ** -24, 2.0 ** 24 + 2.0])


@HSET
@given(st.data())
def test_fold_steps_equal_exact_rational_rounding(data):
    """For finite inputs whose fold stays finite, step k of the fold (the kernel on the first k
    terms) equals RNE(Fraction(step k-1) + Fraction(RNE(Fraction(x_k) * Fraction(w_k)))), and the
    bias step RNE(Fraction(fold) + Fraction(b)); checked for the numpy and compiled folds."""
    bsz, k, n = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 7)), data.draw(st.integers(1, 4))
    x = data.draw(arrays(F32, (bsz, k), elements=BOUNDED_F32))
    w = data.draw(arrays(F32, (n, k), elements=BOUNDED_F32))
    b = data.draw(arrays(F32, (n,), elements=BOUNDED_F32))
    for f in (fold.linear, fast.linear):
        prev = np.zeros((bsz, n), F32)
        for step in range(1, k + 1):
            got = f(x[:, :step], w[:, :step])
            assert np.all(np.isfinite(got))
            for i in range(bsz):
                for j in range(n):
                    prod = round_f32(Fraction(float(x[i, step - 1])) * Fraction(float(w[j, step - 1])))
                    want = round_f32(Fraction(float(prev[i, j])) + Fraction(prod), +1)
                    assert f32_bits(float(got[i, j])) == f32_bits(want), (f, step, i, j, got[i, j], want)
            prev = got
        got = f(x, w, b)
        for i in range(bsz):
            for j in range(n):
                want = round_f32(Fraction(float(prev[i, j])) + Fraction(float(b[j])), +1)
                assert f32_bits(float(got[i, j])) == f32_bits(want), (f, "bias", i, j)


@HSET
@given(arrays(F32, st.integers(1, 12), elements=st.floats(width=32, min_value=-float(F32(1e37)),
                                                            max_value=float(F32(1e37)))))
def test_sum_steps_equal_exact_rational_rounding(x):
    acc = 0.0
    for step in range(1, x.size + 1):
        acc = round_f32(Fraction(acc) + Fraction(float(x[step - 1])), +1)
        got = KERNEL_RULES["sum"](x[:step], axes=(0,))
        assert f32_bits(float(got)) == f32_bits(acc), (step, got, acc)


def test_compiled_matches_numpy_fold_on_large_mixed_arrays():
    rng = np.random.default_rng(3)
    for bsz, k, n in [(1, 1, 1), (37, 300, 70), (8, 129, 257), (6, 1000, 3)]:
        x = mixed_array(rng, (bsz, k))
        wt = mixed_array(rng, (k, n))
        with np.errstate(all="ignore"):
            assert_same_bits(fast.matmul_fold(x, wt), fold.matmul_fold(x, wt), f"{bsz}x{k}x{n}")
        xf = rng.standard_normal((bsz, k)).astype(F32)
        wf = rng.standard_normal((k, n)).astype(F32)
        assert_same_bits(fast.matmul_fold(xf, wf), fold.matmul_fold(xf, wf), "finite")
    # Fortran-ordered / transposed operands give the same bits through every implementation
    xs = rng.standard_normal((9, 11)).astype(F32)
    ws = mixed_array(rng, (5, 11), finite=True)
    want = fold.linear(np.ascontiguousarray(xs), np.ascontiguousarray(ws))
    for f in LINEAR.values():
        assert_same_bits(f(np.asfortranarray(xs), np.asfortranarray(ws)), want)
        assert_same_bits(f(np.ascontiguousarray(xs.T).T, ws), want)
    # non-contiguous and float64 inputs are accepted and converted exactly like fold.py does
    x = rng.standard_normal((10, 12)).astype(F32)
    wt = rng.standard_normal((12, 6))
    assert_same_bits(fast.matmul_fold(x[::2], wt), fold.matmul_fold(x[::2], wt.astype(F32)))


# -- no FMA, no reassociation ----------------------------------------------------------------

def _fma_sensitive(rng, n):
    """Pairs (p, q) of float32 whose exact product needs more than 24 bits."""
    p = (1 + rng.integers(1, 2 ** 12, size=n) * 2.0 ** -12).astype(F32)
    q = (1 + rng.integers(1, 2 ** 12, size=n) * 2.0 ** -12).astype(F32)
    sign = np.where(rng.random(n) < 0.5, -1, 1).astype(F32)
    p = p * sign * np.exp2(rng.integers(-20, 20, size=n)).astype(F32)
    exact = p.astype(np.float64) * q.astype(np.float64)
    keep = exact != (p * q).astype(np.float64)
    return p[keep], q[keep]


@pytest.mark.parametrize("impl", list(LINEAR))
def test_no_fma_contraction_linear(impl):
    """x·w = [-fl(p·q), p] · [1, q]: unfused the fold is exactly +0; an FMA would give the rounding
    error fl(p·q) - p·q != 0 (and a different sign/size per element)."""
    rng = np.random.default_rng(11)
    p, q = _fma_sensitive(rng, 400)
    m = p.size
    x = np.stack([-(p * q), p], axis=1).astype(F32)           # [m, 2]
    w = np.stack([np.ones(m, F32), q], axis=1).astype(F32)   # [m, 2]
    # every row against every weight row; the diagonal is the cancelling pair
    got = LINEAR[impl](x, w)
    diag = np.diagonal(got)
    assert np.all(diag.view(np.uint32) == 0), "FMA contraction: diagonal not +0"
    assert_same_bits(got[:9, :40], ref_linear(Exact, x[:9], w[:40]))
    assert_same_bits(got[-5:, -30:], ref_linear(NpScalar, x[-5:], w[-30:]))
    # the unrounded values an FMA would have produced are really different
    fused = (-(p * q)).astype(np.float64) + p.astype(np.float64) * q.astype(np.float64)
    assert np.all(fused != 0)


def test_no_fma_contraction_vector_lanes():
    """The same cancellation in every lane of the vectorised n loop and every row of the 4-row
    blocks (and the remainder rows): row b is [1, p], column n is [-fl(p·q_n), q_n]."""
    rng = np.random.default_rng(12)
    for p in F32([1 + 2.0 ** -12, -(1 + 3 * 2.0 ** -12), 1.1, 3.3e-20, -7.7e15]):
        q = (1 + rng.integers(1, 2 ** 12, size=400) * 2.0 ** -12).astype(F32)
        q = q[p.astype(np.float64) * q.astype(np.float64) != (p * q).astype(np.float64)][:67]
        assert q.size == 67
        wt = np.stack([-(p * q), q]).astype(F32)
        for bsz in (1, 4, 7, 9):
            x = np.tile(np.array([1.0, p], F32), (bsz, 1))
            for f in (fast.matmul_fold, fold.matmul_fold):
                assert np.all(f(x, wt).view(np.uint32) == 0), (f, p, bsz)


def test_compiled_code_has_no_fused_multiply_add():
    """The machine code of nnlemma._native multiplies and adds separately (setup.py builds it with
    -ffp-contract=off): no FMA mnemonic anywhere in its disassembly."""
    import shutil
    import subprocess

    from nnlemma import native

    assert native.AVAILABLE, native.BACKEND
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump not installed")
    asm = subprocess.run([objdump, "-d", native.lib.__file__], capture_output=True, text=True,
                         check=True).stdout.lower()
    assert "mulss" in asm or "mulps" in asm
    for mnemonic in ("vfmadd", "vfmsub", "vfnmadd", "vfnmsub", "fmla", "fmadd"):
        assert mnemonic not in asm, mnemonic


# -- conv2d -----------------------------------------------------------------------------------

CONV_GEOMS = [dict(stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)),
              dict(stride=(2, 1), pads=(1, 2, 0, 1), dilation=(1, 2)),
              dict(stride=(1, 3), pads=(2, 0, 2, 1), dilation=(2, 1)),
              dict(stride=(2, 2), pads=(1, 1, 1, 1), dilation=(1, 1))]


@pytest.mark.parametrize("geom", range(len(CONV_GEOMS)))
@pytest.mark.parametrize("impl", list(CONV))
def test_conv2d_edge_corpus(impl, geom):
    g = CONV_GEOMS[geom]
    rng = np.random.default_rng(50 + geom)
    for trial in range(3):
        x = edge_array(rng, (2, 2, 5, 6))
        w = edge_array(rng, (3, 2, 2, 3))
        b = edge_array(rng, (3,)) if trial else None
        want = ref_conv2d(NpScalar, x, w, b, **g)
        assert_same_bits(want, ref_conv2d(Exact, x, w, b, **g), "npscalar vs exact")
        _check(CONV[impl](x, w, b, **g), want, impl, f"{impl} {g} trial {trial}")


def test_conv2d_padding_multiplies_zeros():
    """Padded zeros are multiplied like inputs: an inf weight gives NaN at the border only."""
    x = np.ones((1, 1, 3, 3), F32)
    w = np.array([[[[np.inf, 1.0], [1.0, 1.0]]]], F32)
    for impl, f in CONV.items():
        y = f(x, w, pads=(1, 1, 0, 0))
        assert np.isnan(y[0, 0, 0, :]).all() and np.isnan(y[0, 0, :, 0]).all(), impl
        assert np.isinf(y[0, 0, 1:, 1:]).all(), impl


@st.composite
def conv_case(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h, wd = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    assume(h + pads[0] + pads[2] >= dil[0] * (kh - 1) + 1)
    assume(wd + pads[1] + pads[3] >= dil[1] * (kw - 1) + 1)
    n, cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    x = draw(arrays(F32, (n, cin, h, wd), elements=ANY_F32))
    w = draw(arrays(F32, (cout, cin, kh, kw), elements=ANY_F32))
    b = draw(st.none() | arrays(F32, (cout,), elements=ANY_F32))
    return x, w, b, dict(stride=stride, pads=pads, dilation=dil)


@HSET
@given(conv_case())
def test_conv2d_hypothesis(case):
    x, w, b, g = case
    want = ref_conv2d(NpScalar, x, w, b, **g)
    assert_same_bits(want, ref_conv2d(Exact, x, w, b, **g), "npscalar vs exact")
    for impl, f in CONV.items():
        _check(f(x, w, b, **g), want, impl, impl)


def test_conv2d_compiled_matches_numpy_larger():
    rng = np.random.default_rng(5)
    x = mixed_array(rng, (2, 3, 11, 13))
    w = mixed_array(rng, (4, 3, 3, 3))
    for g in CONV_GEOMS:
        assert_same_bits(fast.conv2d(x, w, **g), fold.conv2d(x, w, **g), str(g))
    xf = rng.standard_normal((3, 4, 16, 16)).astype(F32)
    wf = rng.standard_normal((5, 4, 3, 3)).astype(F32)
    assert_same_bits(fast.conv2d(xf, wf, pads=(1, 1, 1, 1)), fold.conv2d(xf, wf, pads=(1, 1, 1, 1)))


# -- reductions, pooling, batch norm -----------------------------------------------------------

SUM_CASES = [((3, 4), (1,)), ((3, 4), (0,)), ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, 0, 1)), ((5,), (0,)),
             ((2, 2, 3), (1,))]


@pytest.mark.parametrize("arith", list(ARITHS))
@pytest.mark.parametrize("case", range(len(SUM_CASES)))
def test_sum_mean_edge_corpus(case, arith):
    A = ARITHS[arith]
    shape, axes = SUM_CASES[case]
    rng = np.random.default_rng(case)
    for trial in range(4):
        x = edge_array(rng, shape)
        for keep in (0, 1):
            _check(KERNEL_RULES["sum"](x, axes=axes, keepdims=keep), ref_sum(A, x, axes, keep), "table")
            _check(KERNEL_RULES["mean"](x, axes=axes, keepdims=keep), ref_mean(A, x, axes, keep), "table")
            assert_same_bits(fold.sum_(x, axes=axes, keepdims=keep), ref_sum(A, x, axes, keep))


@HSET
@given(st.data())
def test_sum_mean_hypothesis(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    axes = data.draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True))
    x = data.draw(arrays(F32, shape, elements=ANY_F32))
    keep = data.draw(st.integers(0, 1))
    for A in (NpScalar, Exact):
        _check(KERNEL_RULES["sum"](x, axes=axes, keepdims=keep), ref_sum(A, x, axes, keep), "table")
        _check(KERNEL_RULES["mean"](x, axes=axes, keepdims=keep), ref_mean(A, x, axes, keep), "table")


POOL_GEOMS = [dict(kernel=(2, 2)), dict(kernel=(3, 2), stride=(1, 2), pads=(1, 1, 2, 0)),
              dict(kernel=(2, 3), stride=(2, 1), pads=(1, 2, 1, 0)), dict(kernel=(1, 1), stride=(2, 2))]


@pytest.mark.parametrize("arith", list(ARITHS))
@pytest.mark.parametrize("geom", range(len(POOL_GEOMS)))
def test_pooling_edge_corpus(geom, arith):
    A = ARITHS[arith]
    g = POOL_GEOMS[geom]
    rng = np.random.default_rng(90 + geom)
    for trial in range(4):
        x = edge_array(rng, (2, 2, 5, 5))
        _check(KERNEL_RULES["max_pool2d"](x, **g), ref_max_pool2d(A, x, **g), "table", "max")
        for cip in (0, 1):
            _check(KERNEL_RULES["avg_pool2d"](x, count_include_pad=cip, **g),
                   ref_avg_pool2d(A, x, count_include_pad=cip, **g), "table", f"avg cip={cip}")


@st.composite
def pool_case(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    pads = (draw(st.integers(0, kernel[0] - 1)), draw(st.integers(0, kernel[1] - 1)),
            draw(st.integers(0, kernel[0] - 1)), draw(st.integers(0, kernel[1] - 1)))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    assume(h + pads[0] + pads[2] >= kernel[0] and w + pads[1] + pads[3] >= kernel[1])
    x = draw(arrays(F32, (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w), elements=ANY_F32))
    return x, dict(kernel=kernel, stride=stride, pads=pads)


@HSET
@given(pool_case(), st.integers(0, 1))
def test_pooling_hypothesis(case, cip):
    x, g = case
    for A in (NpScalar, Exact):
        _check(KERNEL_RULES["max_pool2d"](x, **g), ref_max_pool2d(A, x, **g), "table", "max")
        _check(KERNEL_RULES["avg_pool2d"](x, count_include_pad=cip, **g),
               ref_avg_pool2d(A, x, count_include_pad=cip, **g), "table", "avg")


@pytest.mark.parametrize("arith", list(ARITHS))
def test_batch_norm_edge_corpus(arith):
    A = ARITHS[arith]
    rng = np.random.default_rng(17)
    for trial in range(6):
        x = edge_array(rng, (2, 3, 2, 2))
        m, v, g, b = (edge_array(rng, (3,)) for _ in range(4))
        if trial % 2:
            v = np.abs(v)
        for eps in (1e-5, 0.0):
            eps = float(F32(eps))
            _check(KERNEL_RULES["batch_norm"](x, m, v, g, b, eps=eps), ref_batch_norm(A, x, m, v, g, b, eps),
                   "table")


@HSET
@given(st.data())
def test_batch_norm_hypothesis(data):
    c = data.draw(st.integers(1, 3))
    x = data.draw(arrays(F32, (2, c, 3), elements=ANY_F32))
    m, v, g, b = (data.draw(arrays(F32, (c,), elements=ANY_F32)) for _ in range(4))
    eps = float(F32(data.draw(st.floats(0, 1e-2))))
    for A in (NpScalar, Exact):
        _check(KERNEL_RULES["batch_norm"](x, m, v, g, b, eps=eps), ref_batch_norm(A, x, m, v, g, b, eps),
               "table")


# -- table: every NaN canonical ---------------------------------------------------------------

def test_fold_ops_produce_canonical_nan_for_inf_minus_inf():
    x = np.array([[np.inf, 1.0]], F32)
    w = np.array([[1.0, 0.0], [1.0, 1.0]], F32)
    b = np.array([-np.inf, -np.inf], F32)
    y = KERNEL_RULES["linear"](x, w, b)
    assert y.view(np.uint32).tolist() == [[0x7FC00000, 0x7FC00000]]
    y = KERNEL_RULES["sum"](np.array([np.inf, -np.inf], F32), axes=(0,))
    assert int(y.view(np.uint32)) == 0x7FC00000
    y = KERNEL_RULES["conv2d"](np.array([[[[np.inf, -np.inf]]]], F32), np.ones((1, 1, 1, 2), F32))
    assert int(y.view(np.uint32).reshape(-1)[0]) == 0x7FC00000
