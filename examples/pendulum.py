"""A neural controller, a Lyapunov candidate and pendulum dynamics in plain nnlemma Python.

Run: ``python examples/pendulum.py``. It builds the closed loop of the inverted pendulum from
Yang et al. (ICML 2024) with random weights (no data files needed), evaluates it eagerly, compiles
it to the IR, checks that both modes agree bit for bit, and prints the graph.
"""

import numpy as np

import nnlemma as nl
from nnlemma import nn

DT, G, L, M, BETA = 0.05, 9.81, 0.5, 0.15, 0.1
U_MAX = 6.0


class Controller(nn.Module):
    """u = clamp(net(x) - net(0), -6, 6): zero control at the upright equilibrium."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8, seed=1), nn.ReLU(), nn.Linear(8, 8, seed=2), nn.ReLU(),
                                 nn.Linear(8, 1, seed=3))

    def forward(self, x):
        return nl.clamp(self.net(x) - self.net(nl.tensor(np.zeros((1, 2)))), -U_MAX, U_MAX)


class Lyapunov(nn.Module):
    """V(x) = |phi(x) - phi(0)| + ||(eps I + R^T R) x||_1, positive definite by construction."""

    def __init__(self):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(2, 16, seed=4), nn.LeakyReLU(0.01), nn.Linear(16, 1, seed=5))
        self.R = nn.Parameter(np.random.default_rng(6).normal(size=(3, 2)))

    def forward(self, x):
        d = self.phi(x) - self.phi(nl.tensor(np.zeros((1, 2))))
        quad = nl.linear(x, 0.01 * nl.tensor(np.eye(2)) + self.R.T @ self.R)
        return nl.abs(d).sum(axis=1) + nl.abs(quad).sum(axis=1)


class ClosedLoop(nn.Module):
    """x -> (V(x), V(x+) - V(x)) for explicit-Euler pendulum dynamics under the controller."""

    def __init__(self):
        super().__init__()
        self.controller, self.lyapunov = Controller(), Lyapunov()

    def step(self, x):
        theta, omega = x[:, 0], x[:, 1]
        u = self.controller(x)[:, 0]
        acc = (G / L) * nl.sin(theta) - (BETA / (M * L * L)) * omega + u / (M * L * L)
        return nl.stack([theta + DT * omega, omega + DT * acc], axis=1)

    def forward(self, x):
        v = self.lyapunov(x)
        return nl.stack([v, self.lyapunov(self.step(x)) - v], axis=1)


def main():
    model = ClosedLoop()
    x = np.random.default_rng(0).uniform(-1, 1, size=(4, 2)).astype(np.float32)
    eager = model(nl.tensor(x)).numpy()
    compiled = nl.compile(model, x)
    again = compiled(x).numpy()
    assert np.array_equal(eager.view(np.uint32), again.view(np.uint32)), "eager and compiled differ"
    print(compiled.graph)
    print(f"\n{len(compiled.graph.equations)} equations, {compiled.graph.param_count()} parameters")
    print("states:\n", x)
    print("[V(x), V(x+) - V(x)] (eager == compiled, bit for bit):\n", eager)


if __name__ == "__main__":
    main()
