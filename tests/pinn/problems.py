"""Small PINN problems for the tests (fast to bound)."""

import math

import numpy as np

import nnlemma as nl
from nnlemma import nn
from nnlemma.pinn import PDE, Condition

F32 = np.float32


def tanh_net(seed: int = 0):
    net = nn.Sequential(nn.Linear(2, 8, seed=seed), nn.Tanh(), nn.Linear(8, 8, seed=seed + 1), nn.Tanh(),
                        nn.Linear(8, 1, seed=seed + 2))
    return net


def burgers_like(seed: int = 0) -> PDE:
    """A Burgers-style residual of a small random tanh network, with an initial and a boundary condition."""
    return PDE("toy_burgers", tanh_net(seed), variables=("t", "x"), lo=[0.0, -1.0], hi=[1.0, 1.0],
               residual=lambda u, X: u.t + u.value * u.x - 0.01 * u.xx,
               conditions=[Condition("initial", [0.0, -1.0], [0.0, 1.0],
                                     lambda u, X: u.value + nl.sin(math.pi * X.x)),
                           Condition("boundary", [0.0, 1.0], [1.0, 1.0], lambda u, X: u.value)])


def polynomial(seed: int = 0) -> PDE:
    """u = w2 · (W1 z + b1)² (products only: exact rational evaluation checks the real semantics)."""
    rng = np.random.default_rng(seed)
    W1 = nl.tensor(rng.standard_normal((2, 4)).astype(F32) * F32(0.5))
    b1 = nl.tensor(rng.standard_normal((1, 4)).astype(F32) * F32(0.1))
    w2 = nl.tensor(rng.standard_normal((4, 1)).astype(F32) * F32(0.5))

    def model(z):
        h = z @ W1 + b1
        return (h * h) @ w2
    return PDE("toy_polynomial", model, variables=("t", "x"), lo=[0.0, -0.5], hi=[0.5, 0.5],
               residual=lambda u, X: u.t + u.value * u.x - 0.1 * u.xx)


def problem(model=None):
    p = burgers_like()
    if model is not None:
        p.model = nl.load_model(model)
    return p
