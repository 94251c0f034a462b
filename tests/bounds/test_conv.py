"""CROWN through conv2d / avg_pool2d (:mod:`nnlemma.bounds.conv`).

* The transposed convolution is the exact adjoint: ``Σ Λ·conv(x) = Σ convᵀ(Λ)·x`` for small
  integer data (every float64 operation exact), over strides, dilations and paddings.
* Containment, exact (:func:`test_crown_float32.check_crown_f32`: every node's kernel value at
  corners, edge midpoints, one-ulp neighbours and random points lies inside the float32 CROWN
  bounds), and the nodes are substituted, not cut.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import nnlemma as nl
from nnlemma import nn
from nnlemma.bounds.conv import conv_transpose, geometry
from test_crown_float32 import check_crown_f32

F32 = np.float32


def _conv_int(x, W, stride, pads, dilation):
    """Reference convolution in float64 on integer data (exact)."""
    co, ci, kh, kw = W.shape
    hp, wp, oh, ow = geometry(x.shape, kh, kw, stride, pads, dilation)
    xp = np.zeros(x.shape[:2] + (hp, wp))
    xp[:, :, pads[0]:pads[0] + x.shape[2], pads[1]:pads[1] + x.shape[3]] = x
    out = np.zeros((x.shape[0], co, oh, ow))
    for a in range(oh):
        for b in range(ow):
            patch = xp[:, :, a * stride[0]:a * stride[0] + dilation[0] * (kh - 1) + 1:dilation[0],
                       b * stride[1]:b * stride[1] + dilation[1] * (kw - 1) + 1:dilation[1]]
            out[:, :, a, b] = np.einsum("bchw,ochw->bo", patch, W)
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(1, 1), (2, 1), (2, 2)]), st.sampled_from([(1, 1), (2, 1)]),
       st.sampled_from([(0, 0, 0, 0), (1, 1, 1, 1), (0, 2, 1, 0)]))
def test_transpose_is_the_exact_adjoint(seed, stride, dilation, pads):
    rng = np.random.default_rng(seed)
    x = rng.integers(-5, 6, (2, 3, 6, 7)).astype(np.float64)
    W = rng.integers(-4, 5, (2, 3, 2, 3)).astype(np.float64)
    z = _conv_int(x, W, stride, pads, dilation)
    lam = rng.integers(-3, 4, (4,) + z.shape).astype(np.float64)
    lhs = np.einsum("sbohw,bohw->sb", lam, z)
    rhs = np.einsum("sbchw,bchw->sb", conv_transpose(lam, W, x.shape, stride, pads, dilation), x)
    assert np.array_equal(lhs, rhs)


def _net(seed, stride, dilation, padding, bias, pool_pad, include_pad):
    conv = nn.Conv2d(2, 3, 3, stride=stride, padding=padding, dilation=dilation, bias=bias, seed=seed)
    pool = nn.AvgPool2d(2, stride=1, padding=pool_pad, count_include_pad=include_pad)

    def f(x):
        return pool(nl.relu(conv(x)))
    return nl.compile(f, [np.zeros((1, 2, 7, 7), F32)]).graph


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1, 2]), st.sampled_from([1, 2]), st.sampled_from([0, 1]),
       st.booleans(), st.sampled_from([0, 1]), st.booleans(), st.sampled_from([1e-3, 0.1, 2.0]))
def test_crown_contains_kernel_outputs(seed, stride, dilation, padding, bias, pool_pad, include_pad, radius):
    g = _net(seed, stride, dilation, padding, bias, pool_pad, include_pad)
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, (1, 2, 7, 7)).astype(F32)
    lo, hi = (c - F32(radius)).astype(F32), (c + F32(radius)).astype(F32)
    res, _, _ = check_crown_f32(g, lo, hi, seed=seed, n_random=20)
    cut_ops = {e.op for e in g.equations if e.out.id in res.cut_nodes}
    assert not cut_ops & {"conv2d", "avg_pool2d"}, cut_ops


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1, 2]), st.sampled_from([0, 1]), st.sampled_from([1e-3, 0.1, 2.0]))
def test_crown_through_max_pool_contains_kernel_outputs(seed, stride, pad, radius):
    conv = nn.Conv2d(2, 3, 2, seed=seed)
    pool = nn.MaxPool2d(2, stride=stride, padding=pad)

    def f(x):
        return nn.Conv2d(3, 2, 2, seed=seed + 1)(pool(nl.relu(conv(x))))
    g = nl.compile(f, [np.zeros((1, 2, 7, 7), F32)]).graph
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, (1, 2, 7, 7)).astype(F32)
    lo, hi = (c - F32(radius)).astype(F32), (c + F32(radius)).astype(F32)
    res, _, _ = check_crown_f32(g, lo, hi, seed=seed, n_random=20)
    assert not [e for e in g.equations if e.out.id in res.cut_nodes and e.op == "max_pool2d"]


def test_max_pool_rule_is_exact_when_one_element_dominates():
    """y = maxpool(x) − x_00 with x_00's interval above the others': the maximum is x_00, so the
    CROWN rule gives y in [0, 0] up to float64 slack, where IBP gives [−1, 1]."""
    pick = nn.Conv2d(1, 1, 2, stride=2, bias=False)
    pick.load_state_dict({"weight": np.array([[[[1, 0], [0, 0]]]], F32)})

    def f(x):
        return nn.MaxPool2d(2)(x) - pick(x)
    g = nl.compile(f, [np.zeros((1, 1, 2, 2), F32)]).graph
    lo = np.array([[[[10, 0], [0, 0]]]], F32)
    hi = np.array([[[[11, 1], [1, 1]]]], F32)
    out = g.outputs[0]
    assert nl.bounds.ibp(g, lo, hi, "real").env[out].lo[0, 0, 0, 0] <= -1
    iv = nl.bounds.crown(g, lo, hi, "real").bounds[out]
    assert -1e-9 < iv.lo[0, 0, 0, 0] <= 0 <= iv.hi[0, 0, 0, 0] < 1e-9
