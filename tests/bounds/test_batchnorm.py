"""CROWN through batch_norm (:mod:`nnlemma.bounds.batchnorm`), with extreme statistics.

Float32: every node's kernel value at corners, edge midpoints, one-ulp neighbours and random
points lies inside the bounds (exact comparisons, :func:`test_crown_float32.check_crown_f32`). Real: the exact values (:mod:`nnlemma.exact`, irrational square roots as
300-bit enclosures) lie inside the real bounds. In both, the node is substituted, not cut.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import nnlemma as nl
from nnlemma import nn
from test_crown_float32 import check_crown_f32
from test_crown_real import check_crown_real

F32 = np.float32


def _net(seed: int, var_scale: float, mean_scale: float):
    rng = np.random.default_rng(seed)
    bn = nn.BatchNorm2d(3, eps=1e-5)
    bn.load_state_dict({"weight": rng.normal(size=3), "bias": rng.normal(size=3),
                        "running_mean": rng.normal(size=3) * mean_scale,
                        "running_var": np.abs(rng.normal(size=3)) * var_scale + np.array([0.0, 1e-7, 1.0])})
    conv = nn.Conv2d(1, 3, 2, seed=seed)

    def f(x):
        return nn.Conv2d(3, 2, 2, seed=seed + 1)(nl.relu(bn(conv(x))))
    return nl.compile(f, [np.zeros((1, 1, 4, 4), F32)]).graph


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1e-6, 1.0, 1e4]), st.sampled_from([0.0, 1.0, 1e3]),
       st.sampled_from([1e-4, 0.05, 1.0]))
def test_float32_crown_contains_kernel_outputs(seed, var_scale, mean_scale, radius):
    g = _net(seed, var_scale, mean_scale)
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, (1, 1, 4, 4)).astype(F32)
    lo, hi = (c - F32(radius)).astype(F32), (c + F32(radius)).astype(F32)
    res, _, _ = check_crown_f32(g, lo, hi, seed=seed, n_random=16)
    assert not [e for e in g.equations if e.out.id in res.cut_nodes and e.op == "batch_norm"]


def test_crown_is_tighter_than_ibp_through_batch_norm():
    g = _net(3, 1.0, 1.0)
    c = np.random.default_rng(3).uniform(-1, 1, (1, 1, 4, 4)).astype(F32)
    lo, hi = c - F32(0.05), c + F32(0.05)
    out = g.outputs[0]
    w_crown = nl.bounds.crown(g, lo, hi).bounds[out]
    w_ibp = nl.bounds.ibp(g, lo, hi).env[out]
    assert np.sum(w_crown.hi - w_crown.lo) < 0.75 * np.sum(w_ibp.hi - w_ibp.lo)


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1e-6, 1.0]), st.sampled_from([0.0, 1e3]))
def test_real_crown_contains_exact_values(seed, var_scale, mean_scale):
    g = _net(seed, var_scale, mean_scale)
    c = np.random.default_rng(seed).uniform(-1, 1, (1, 1, 4, 4)).astype(F32)
    res, _ = check_crown_real(g, c - F32(0.1), c + F32(0.1), seed=seed, n_random=1, max_corners=2)
    assert not [e for e in g.equations if e.out.id in res.cut_nodes and e.op == "batch_norm"]
