"""alpha/beta-CROWN parameters (:mod:`nnlemma.bounds.optimize`) and the split multipliers of the
backward pass.

The optimiser is only a heuristic; soundness rests on ``backward()`` accepting *any* slopes and
multipliers. So the soundness test feeds adversarial random values (slopes outside [0, 1],
multipliers of both signs, on split and unsplit nodes) and checks, exactly, that the certified
bound never exceeds ``Λ·y`` at float32 points of the domain (points of the box whose kernel
pre-activations satisfy the split signs).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import nnlemma as nl
from nnlemma import nn
from nnlemma.bounds.backward import backward
from nnlemma.bounds.crown import prepare, tighten
from nnlemma.bounds.domains import domain_ctx
from nnlemma.bounds.optimize import as_mlp, optimize
from nnlemma.interpret import run
from nnlemma.ir.builder import rebuild

F32 = np.float32


def _mlp(widths, seed):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1], seed=seed + i))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    m = nn.Sequential(*layers)
    return nl.compile(m, nl.tensor(np.zeros((1, widths[0]), F32))).graph


def test_as_mlp_recognises_plain_relu_mlps_only():
    g = _mlp([3, 5, 4, 2], 0)
    mlp = as_mlp(g)
    assert mlp is not None and len(mlp.W) == 3 and len(mlp.relu_ids) == 2
    m = nn.Sequential(nn.Linear(3, 4, seed=1), nn.Tanh(), nn.Linear(4, 1, seed=2))
    assert as_mlp(nl.compile(m, nl.tensor(np.zeros((1, 3), F32))).graph) is None
    # one-input ops where a layer could start (a graph of only a sum once raised IndexError)
    assert as_mlp(nl.compile(lambda x: nl.abs(x).sum(axis=1), nl.tensor(np.zeros((1, 3), F32))).graph) is None


def test_optimised_bound_not_below_plain_crown_in_the_model():
    """The optimiser keeps the best parameters seen, starting from CROWN's: its modelled bound
    can only improve on iteration 0."""
    g = _mlp([4, 16, 16, 3], 7)
    lo = np.full((1, 4), -0.5, F32)
    hi = np.full((1, 4), 0.5, F32)
    ctx, _ = prepare(g, lo, hi, "real")
    tighten(ctx)
    mlp = as_mlp(g)
    zs = [(ctx.bounds[z].lo.astype(float), ctx.bounds[z].hi.astype(float)) for z in mlp.z_ids[:-1]]
    sg = [np.zeros_like(z[0]) for z in zs]
    C = np.eye(3)
    _, _, b0 = optimize(mlp, lo.astype(float), hi.astype(float), [z[0] for z in zs], [z[1] for z in zs], sg, C, iters=0)
    _, _, b20 = optimize(mlp, lo.astype(float), hi.astype(float), [z[0] for z in zs], [z[1] for z in zs], sg, C,
                         iters=20)
    assert np.all(b20 >= b0)
    assert np.any(b20 > b0)


def _domain_points(g, lo, hi, signs, rng, n=3000):
    """Float32 points of the box whose kernel pre-activations satisfy the split signs."""
    X = (lo + rng.random((n, lo.shape[1])) * (hi - lo)).astype(F32)
    X = np.clip(X, lo, hi)
    gb = rebuild(g, [(n, lo.shape[1])])
    from nnlemma.interpret import interpret
    from nnlemma.kernels.table import KERNEL_RULES

    env = interpret(gb, KERNEL_RULES, [X], param_value=lambda p: p.data)
    keep = np.ones(n, bool)
    for z, s in signs.items():
        v = env[z].reshape(n, -1)
        keep &= np.all(np.where(s > 0, v >= 0, True) & np.where(s < 0, v <= 0, True), axis=1)
    return X[keep], env[gb.outputs[0]].reshape(n, -1)[keep]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_any_slopes_and_multipliers_stay_sound(seed):
    rng = np.random.default_rng(seed)
    g = _mlp([3, 8, 8, 2], seed % 97)
    mlp = as_mlp(g)
    c = rng.uniform(-1, 1, 3).astype(F32)
    r = F32(rng.uniform(0.05, 1.0))
    lo, hi = (c - r)[None], (c + r)[None]
    root, _ = prepare(g, lo, hi, "float32")
    tighten(root)
    z1 = mlp.z_ids[0]
    s1 = np.zeros((1, 8), np.int8)
    unst = ((root.bounds[z1].lo < 0) & (root.bounds[z1].hi > 0)).reshape(-1)
    for j in np.flatnonzero(unst)[:2]:
        s1[0, j] = rng.choice([-1, 1])
    ctx, empty = domain_ctx(root, g, {z1: s1})
    if empty.any():
        return
    S = 2
    lam = rng.standard_normal((S, 1, 2))
    ctx.alpha = {h: rng.uniform(-0.5, 1.5, (1, 8)) for h in mlp.relu_ids}
    ctx.beta = {z: rng.standard_normal((S, 1, 8)) * rng.uniform(0, 3) for z in mlp.z_ids[:-1]}
    lb = backward(ctx, g.outputs[0], lam)
    X, Y = _domain_points(g, lo, hi, {z1: s1}, rng)
    assert len(Y) > 0 or s1.any()  # an unsplit domain is the whole box
    for y in Y:
        for s in range(S):
            exact = sum(Fraction(float(lam[s, 0, j])) * Fraction(float(y[j])) for j in range(2))
            assert Fraction(float(lb[s, 0])) <= exact


def test_multiplier_dropped_where_sign_unproven():
    """A multiplier on an unsplit (sign-open) element would be unsound; backward ignores it."""
    g = _mlp([2, 4, 1], 3)
    mlp = as_mlp(g)
    lo = np.full((1, 2), -1.0, F32)
    hi = np.full((1, 2), 1.0, F32)
    ctx, _ = prepare(g, lo, hi, "float32")
    tighten(ctx)
    lam = np.ones((1, 1, 1))
    base = backward(ctx, g.outputs[0], lam)
    ctx.relax_cache = {}
    z = ctx.bounds[mlp.z_ids[0]]
    open_ = (z.lo < 0) & (z.hi > 0)
    assert open_.any()
    # on sign-open units a multiplier would add ±1e6·z "for free" if it were used
    # (dropped multipliers still cost a few float64 ulps of slack; used, they would move the bound
    # by ~1e6)
    for sign in (-1, 1):
        ctx.relax_cache = {}
        ctx.beta = {mlp.z_ids[0]: np.where(open_, sign * 1e6, 0.0)[None]}
        got = backward(ctx, g.outputs[0], lam)[0, 0]
        assert base[0, 0] - 1e-9 <= got <= base[0, 0]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["float32", "real"]))
def test_alpha_crown_contains_kernel_outputs_and_tightens_crown(seed, semantics):
    rng = np.random.default_rng(seed)
    g = _mlp([3, 12, 12, 2], seed % 89)
    c = rng.uniform(-1, 1, 3).astype(F32)
    r = F32(rng.uniform(0.05, 1.0))
    lo, hi = (c - r)[None], (c + r)[None]
    plain = nl.bounds.crown(g, lo, hi, semantics)
    res = nl.bounds.alpha_crown(g, lo, hi, semantics, iters=10)
    assert res.optimized
    out = g.outputs[0]
    assert np.all(res.bounds[out].lo >= plain.bounds[out].lo) and np.all(res.bounds[out].hi <= plain.bounds[out].hi)
    if semantics == "real":  # (containment of exact real values: tests/bounds/test_crown_real.py's oracle)
        return
    X = np.clip((lo + rng.random((500, 3)) * (hi - lo)).astype(F32), lo, hi)
    corners = np.array(np.meshgrid(*[[lo[0, i], hi[0, i]] for i in range(3)])).reshape(3, -1).T.astype(F32)
    for x in np.concatenate([X, corners]):
        y = run(g, x[None])[0]
        assert np.all(res.bounds[out].lo <= y) and np.all(y <= res.bounds[out].hi)


def _acas_style(seed):
    """The layout of ACAS Xu's ONNX files: x − mean on a [1,1,1,n] input, reshape, then
    (matmul W + b → relu)* → matmul W + b."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(1, 1, 1, 3)).astype(F32)
    Ws = [rng.normal(size=s).astype(F32) for s in [(3, 10), (10, 10), (10, 2)]]
    bs = [rng.normal(size=s[1]).astype(F32) for s in [(3, 10), (10, 10), (10, 2)]]

    def f(x):
        h = nl.functional.reshape(x - mean, (1, 3))
        for k in range(3):
            h = h @ Ws[k] + bs[k]
            if k < 2:
                h = nl.functional.relu(h)
        return h
    return nl.compile(f, [np.zeros((1, 1, 1, 3), F32)]).graph, Ws, bs


def test_as_mlp_recognises_onnx_layout_with_normalisation_prefix():
    g, Ws, bs = _acas_style(5)
    mlp = as_mlp(g)
    assert mlp is not None and len(mlp.W) == 3 and len(mlp.relu_ids) == 2
    reshape = next(e for e in g.equations if e.op == "reshape")
    assert mlp.input_id == reshape.out.id
    for k in range(3):  # weights transposed to [out, in], bits unchanged
        assert np.array_equal(mlp.W[k], Ws[k].T.astype(np.float64))
        assert np.array_equal(mlp.b[k], bs[k].astype(np.float64))
    adds = [e.out.id for e in g.equations if e.op == "add"]
    assert mlp.z_ids == adds and mlp.z_ids[-1] == g.outputs[0]


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000))
def test_alpha_crown_on_onnx_layout_is_optimised_and_contains_kernel_outputs(seed):
    rng = np.random.default_rng(seed)
    g, _, _ = _acas_style(seed % 53)
    c = rng.uniform(-1, 1, (1, 1, 1, 3)).astype(F32)
    r = F32(rng.uniform(0.05, 1.0))
    lo, hi = c - r, c + r
    plain = nl.bounds.crown(g, lo, hi, "float32")
    res = nl.bounds.alpha_crown(g, lo, hi, "float32", iters=10)
    assert res.optimized
    out = g.outputs[0]
    assert np.all(res.bounds[out].lo >= plain.bounds[out].lo) and np.all(res.bounds[out].hi <= plain.bounds[out].hi)
    X = np.clip((lo.reshape(1, 3) + rng.random((400, 3)) * (hi - lo).reshape(1, 3)).astype(F32), lo.reshape(1, 3),
                hi.reshape(1, 3))
    for x in X:
        y = run(g, x.reshape(1, 1, 1, 3))[0]
        assert np.all(res.bounds[out].lo <= y) and np.all(y <= res.bounds[out].hi)


def test_target_stops_pairs_that_are_done():
    """A pair whose modelled bound passes its row's target is no longer optimised: a target of
    −inf stops every pair after the first (plain CROWN) evaluation, +inf never stops one."""
    g = _mlp([4, 16, 16, 3], 7)
    lo = np.full((2, 4), -0.5)
    hi = np.full((2, 4), 0.5)
    ctx, _ = prepare(rebuild(g, [(2, 4)]), lo.astype(F32), hi.astype(F32), "real")
    tighten(ctx)
    mlp = as_mlp(ctx.graph)
    zs = [(ctx.bounds[z].lo.astype(float), ctx.bounds[z].hi.astype(float)) for z in mlp.z_ids[:-1]]
    args = (mlp, lo, hi, [z[0] for z in zs], [z[1] for z in zs], [np.zeros_like(z[0]) for z in zs], np.eye(3))
    _, _, b0 = optimize(*args, iters=0)
    _, _, b_free = optimize(*args, iters=15)
    _, _, b_never = optimize(*args, iters=15, target=np.full(3, np.inf))
    _, _, b_done = optimize(*args, iters=15, target=np.full(3, -np.inf))
    assert np.array_equal(b_never, b_free) and np.array_equal(b_done, b0)
    assert np.any(b_free > b0)
