"""Problem files and part graphs: derivative columns are the jvp derivatives (bit for bit on the
kernel), names and errors; the ir's common-subexpression merge keeps the function bit for bit."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import nnlemma as nl
from nnlemma.errors import InputError
from nnlemma.ir.transforms import dedupe
from nnlemma.pinn import PDE, Condition
from nnlemma.pinn.problem import part_graph

sys.path.insert(0, str(Path(__file__).parent))
import problems  # noqa: E402

F32 = np.float32
EDGE = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38,
                 1.0, np.nextafter(F32(1), F32(2)), 0.5, -2.5], F32)


def _points(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform([0, -1], [1, 1], (n, 2)).astype(F32)


def test_columns_are_the_jvp_derivatives_bit_for_bit():
    p = problems.burgers_like()
    graph, names = part_graph(p, p.residual, "all")
    assert names == ["u", "u_t", "u_x", "u_tt", "u_tx", "u_xx", "residual"]
    X = _points(16)
    Y = nl.verify.problem.Problem(graph).evaluate(X)
    net = p.model
    et, ex = np.tile([[1, 0]], (len(X), 1)).astype(F32), np.tile([[0, 1]], (len(X), 1)).astype(F32)

    def d(z, e):
        return nl.jvp(net, (z,), (e,))[1]
    z = nl.tensor(X)
    want = {"u": net(z), "u_t": d(z, et), "u_x": d(z, ex),
            "u_xx": nl.jvp(lambda w: nl.jvp(net, (w,), (ex,))[1], (z,), (ex,))[1],
            "u_tx": nl.jvp(lambda w: nl.jvp(net, (w,), (et,))[1], (z,), (ex,))[1]}
    for k, v in want.items():
        got = Y[:, names.index(k)]
        assert np.array_equal(got.view(np.uint32), v.numpy().reshape(-1).view(np.uint32)), k


def test_derivatives_the_residual_uses_are_reported():
    p = problems.burgers_like()
    cond = p.conditions[0]
    _, names = part_graph(p, cond.residual, "used")
    assert names == ["u", "residual"]
    _, names = part_graph(p, p.residual, "first")
    assert names == ["u", "u_t", "u_x", "u_xx", "residual"]


@pytest.mark.parametrize("residual, match", [
    (lambda u, X: u.d("y"), "unknown variable"),
    (lambda u, X: nl.stack([u.value, u.value], axis=1), "shape"),
    (lambda u, X: 3.0, "must return a tensor"),
    (lambda u, X: u.zz, "building the residual graph failed"),
])
def test_bad_residuals_are_input_errors(residual, match):
    p = problems.burgers_like()
    with pytest.raises(InputError, match=match):
        part_graph(p, residual)


def test_bad_boxes_and_names():
    net = problems.tanh_net()
    with pytest.raises(InputError):
        PDE("p", net, ("t", "x"), [0, 1], [1, 1], lambda u, X: u.value)          # empty in x
    with pytest.raises(InputError):
        PDE("p", net, ("t", "t"), [0, 0], [1, 1], lambda u, X: u.value)          # duplicate variable
    with pytest.raises(InputError):
        PDE("p", net, ("t", "x"), [0, 0], [1, 1], lambda u, X: u.value,
            conditions=[Condition("pde", [0, 0], [0, 1], lambda u, X: u.value)])
    with pytest.raises(InputError):
        PDE("p", net, ("t", "x"), [0, 0], [1, np.inf], lambda u, X: u.value)


def test_dedupe_keeps_the_function_bit_for_bit():
    p = problems.burgers_like()

    def fn(z):   # the same derivative traced twice: every node duplicated
        e = np.tile([[0, 1]], (1, 1)).astype(F32)
        a = nl.jvp(p.model, (z,), (e,))[1]
        b = nl.jvp(p.model, (z,), (e,))[1]
        return a * b + a
    g = nl.compile(fn, np.zeros((1, 2), F32)).graph
    d = dedupe(g)
    assert len(d.equations) < len(g.equations) and len(d.params) < len(g.params)
    X = np.array([[a, b] for a in EDGE for b in EDGE[::3]], F32)
    for row in X:
        y0, y1 = nl.run(g, row[None])[0], nl.run(d, row[None])[0]
        assert np.array_equal(y0.view(np.uint32), y1.view(np.uint32)), row
