"""Eager mode and compiled mode give bit-identical results on every model here."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnlemma as nl
from nnlemma import nn
from nnlemma.ir import dumps, loads
from nnlemma.kernels import same_bits


def mlp():
    return nn.Sequential(nn.Linear(2, 8, seed=1), nn.ReLU(), nn.Linear(8, 8, seed=2), nn.LeakyReLU(0.1),
                         nn.Linear(8, 4, seed=3), nn.Tanh(), nn.Linear(4, 3, seed=4), nn.Sigmoid(),
                         nn.Hardtanh(-0.5, 0.75), nn.Identity())


def convnet():
    bn = nn.BatchNorm2d(4)
    rng = np.random.default_rng(5)
    bn.load_state_dict({"weight": rng.normal(size=4), "bias": rng.normal(size=4),
                        "running_mean": rng.normal(size=4), "running_var": rng.uniform(0.5, 2, size=4),
                        "num_batches_tracked": np.array(3)})
    return nn.Sequential(nn.Conv2d(2, 4, 3, stride=1, padding=1, seed=6), bn, nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 3, 2, stride=2, padding=1, seed=7),
                         nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False), nn.Flatten(),
                         nn.Linear(3 * 3 * 3, 2, seed=8))


class Lyapunov(nn.Module):
    """V(x) = |phi(x) - phi(0)| + ||R x||_1, written with plain tensor ops."""

    def __init__(self):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(2, 16, seed=9), nn.LeakyReLU(0.01), nn.Linear(16, 1, seed=10))
        self.R = nn.Parameter(np.random.default_rng(11).normal(size=(3, 2)))

    def forward(self, x):
        zero = nl.tensor(np.zeros((1, 2)))
        d = self.phi(x) - self.phi(zero)
        return (d.relu() + (-d).relu()).sum(1) + nl.abs(nl.linear(x, self.R)).sum(axis=1)


def pendulum_step(x):
    """Closed-loop explicit-Euler pendulum step with a clamped linear controller."""
    th, w = x[:, 0], x[:, 1]
    u = nl.clamp(-2.0 * th - 0.5 * w, -6.0, 6.0)
    acc = 19.62 * nl.sin(th) - 2.6667 * w + 26.667 * u
    return nl.stack([th + 0.05 * w, w + 0.05 * acc], axis=1)


def pinn_like(tx):
    """A tanh PINN-style network with input scaling, slicing, concat, exp/cos and reductions."""
    t = tx[:, 0:1]
    x = tx[:, 1:2]
    z = nl.concat([2.0 * t - 1.0, x / 1.5], axis=1)
    h = nl.tanh(z @ nl.tensor(np.random.default_rng(12).normal(size=(2, 6))))
    return (h.square().mean(1, keepdims=True) + nl.exp(-t) * nl.cos(x) - nl.sqrt(nl.abs(x))
            + nl.maximum(t, x) - nl.minimum(t, x))


CASES = [
    ("mlp", mlp(), (5, 2)),
    ("convnet", convnet(), (2, 2, 6, 6)),
    ("lyapunov", Lyapunov(), (7, 2)),
    ("pendulum", pendulum_step, (9, 2)),
    ("pinn", pinn_like, (6, 2)),
]


def _check(model, x):
    eager = model(nl.tensor(x))
    compiled = nl.compile(model, x)
    assert same_bits(compiled(x).numpy(), eager.numpy())
    reloaded = loads(dumps(compiled.graph))
    assert same_bits(nl.run(reloaded, x)[0], eager.numpy())
    return compiled


@pytest.mark.parametrize("name,model,shape", CASES, ids=[c[0] for c in CASES])
def test_eager_equals_compiled(name, model, shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32) * 3
    _check(model, x)


EDGE = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38,
        1.0, 1.0000001, 0.99999994]


@pytest.mark.parametrize("name,model,shape", CASES, ids=[c[0] for c in CASES])
def test_eager_equals_compiled_on_edge_values(name, model, shape):
    rng = np.random.default_rng(1)
    x = rng.choice(np.array(EDGE, dtype=np.float32), size=shape)
    _check(model, x)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float32, (4, 2), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_eager_equals_compiled_hypothesis(x):
    for model in (CASES[0][1], CASES[2][1], CASES[3][1], CASES[4][1]):
        eager = model(nl.tensor(x))
        assert same_bits(nl.compile(model, x)(x).numpy(), eager.numpy())


def test_parameters_are_named_like_pytorch():
    g = nl.compile(Lyapunov(), np.zeros((1, 2), np.float32)).graph
    names = {p.value.name for p in g.params}
    assert {"phi.0.weight", "phi.0.bias", "phi.2.weight", "phi.2.bias", "R"} <= names


def test_trace_records_source_line():
    g = nl.compile(pendulum_step, np.zeros((2, 2), np.float32)).graph
    assert all(e.source and e.source.startswith("test_eager_compiled.py:") for e in g.equations)


def test_reading_traced_values_is_an_error():
    def bad(x):
        return x * 2.0 if x.numpy()[0, 0] > 0 else x

    with pytest.raises(nl.NnlemmaError, match="traced tensor"):
        nl.compile(bad, np.zeros((1, 2), np.float32))


def test_eager_shape_errors_use_the_same_rules():
    with pytest.raises(nl.ShapeError, match="do not broadcast"):
        nl.tensor(np.zeros(3)) + nl.tensor(np.zeros(4))


def test_python_scalars_round_to_float32_in_both_modes():
    x = np.array([[1.0, 3.0]], np.float32)
    f = lambda t: t * 0.1  # noqa: E731
    expect = x * np.float32(0.1)
    assert same_bits(f(nl.tensor(x)).numpy(), expect)
    assert same_bits(nl.compile(f, x)(x).numpy(), expect)


def test_concrete_subexpressions_fold_into_exact_constants():
    w = nl.tensor(np.random.default_rng(3).normal(size=(3, 2)))
    f = lambda x: x @ w.T  # noqa: E731  (w.T is computed eagerly, then lifted as a param)
    x = np.random.default_rng(4).normal(size=(4, 2)).astype(np.float32)
    g = nl.compile(f, x).graph
    assert [e.op for e in g.equations] == ["matmul"]
    assert same_bits(nl.run(g, x)[0], f(nl.tensor(x)).numpy())
