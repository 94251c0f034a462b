"""Train a 1-D physics-informed network with nnlemma's own derivative graphs and training API.

Problem: u''(x) = −π² sin(πx) on [−1, 1] with u(−1) = u(1) = 0, whose solution is u = sin(πx).
The network u_θ: 1-16-16-1 with tanh. The objective on a batch of collocation points x is

    mean((u_θ''(x) + π² sin(πx))²) + mean(u_θ(±1)²),

where u_θ'' is a jvp of a jvp of the network (a derivative graph, traced once per batch shape and
evaluated by the float32 kernel at every step). Prints the loss every few epochs and the largest
error against sin(πx) on a grid; ``--seed`` makes the run reproducible.

    python examples/pinn_1d.py [--epochs 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import nnlemma as nl
from nnlemma import nn

F32 = np.float32
PI2 = F32(math.pi ** 2)


def make_model(seed: int) -> nn.Module:
    return nn.Sequential(nn.Linear(1, 16, seed=seed), nn.Tanh(), nn.Linear(16, 16, seed=seed + 1), nn.Tanh(),
                         nn.Linear(16, 1, seed=seed + 2))


def objective(model):
    one = np.ones((1, 1), F32)

    def u_xx(x):
        n = x.shape[0]
        e = np.ones((n, 1), F32)
        return nl.jvp(lambda z: nl.jvp(model, (z,), (e,))[1], (x,), (e,))[1]

    def loss(x):
        r = u_xx(x) + PI2 * nl.sin(x * F32(math.pi))
        bc = nl.concat([model(-one), model(one)], axis=0)
        return (r * r).mean(axis=(0, 1)) + (bc * bc).mean(axis=(0, 1))
    return loss


def train(epochs: int = 300, seed: int = 0, verbose: bool = True):
    model = make_model(seed)
    X = np.linspace(-1, 1, 64, dtype=F32).reshape(-1, 1)
    hist = nl.train.minimize(objective(model), model, X, optimizer=nl.train.Adam(lr=0.01), epochs=epochs,
                             batch_size=32, seed=seed)
    grid = np.linspace(-1, 1, 201, dtype=F32).reshape(-1, 1)
    u = nl.run(nl.compile(model, grid).graph, grid)[0]
    err = float(np.max(np.abs(u - np.sin(np.pi * grid))))
    if verbose:
        for k in range(0, epochs, max(1, epochs // 10)):
            print(f"epoch {k:4d}  loss {hist[k]:.4e}")
        print(f"final loss {hist[-1]:.4e}; max |u - sin(pi x)| on 201 points: {err:.3e}")
    return model, hist, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    train(args.epochs, args.seed)


if __name__ == "__main__":
    main()
