"""Small systems for the Lyapunov tests (fast to check)."""

import numpy as np

import nnlemma as nl
from nnlemma import nn
from nnlemma.lyapunov import System

F32 = np.float32


def controller():
    net = nn.Sequential(nn.Linear(2, 4, seed=1), nn.ReLU(), nn.Linear(4, 1, seed=2))
    for p in net.parameters():
        p.assign(p.numpy() * F32(0.1))
    return net


def discrete(a00: float = 0.7, rho: float = 0.9) -> System:
    """x⁺ = A x + b·clamp(net(x) - net(0), -1, 1), V = ||x||_1."""
    net = controller()
    zero = nl.tensor(np.zeros((1, 2), F32))
    A = nl.tensor(np.array([[a00, -0.1], [0.1, 0.7]], F32))   # x @ A (columns sum to <= 0.8)
    b = nl.tensor(np.array([[0.0, 0.05]], F32))

    def step(x):
        u = nl.clamp(net(x) - net(zero), -1.0, 1.0)
        return x @ A + u * b

    return System("toy_discrete", lo=[-1, -1], hi=[1, 1], V=lambda x: nl.abs(x).sum(axis=1), step=step,
                  hole=0.05, kappa=0.05, rho=rho)


def continuous(rho: float | None = 0.8) -> System:
    """ẋ = (-x0 + 0.2 sin x1, -x1), V = ||x||^2."""
    def flow(x):
        return nl.stack([-x[:, 0] + 0.2 * nl.sin(x[:, 1]), -x[:, 1]], axis=1)
    return System("toy_continuous", lo=[-1, -1], hi=[1, 1], V=lambda x: (x * x).sum(axis=1), flow=flow,
                  hole=0.1, kappa=0.5, rho=rho)


def system():
    return discrete()
