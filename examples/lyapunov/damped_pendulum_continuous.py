"""Continuous time: a damped pendulum under linear feedback, with a tanh Lyapunov network trained
by nnlemma's own training API, then certified.

Dynamics (hanging pendulum, theta = 0 down): theta' = omega, omega' = -sin(theta) - 0.5 omega + u,
u = -0.5 theta (a fixed linear feedback). Candidate:

    V(x) = 0.1 ||x||^2 + ||phi(x) - phi(0)||^2,      phi: 2-8-4 with tanh,

positive definite by construction. Training minimises mean(relu(dV/dt + kappa V + 0.01)) over
states of the box outside the hole, with dV/dt from the derivative graph (nl.grad). The trained
weights ship beside this file (``damped_pendulum_continuous.npz``, ours); ``--train`` redoes it.

    nnlemma lyapunov examples/lyapunov/damped_pendulum_continuous.py --plot out.png
    python examples/lyapunov/damped_pendulum_continuous.py --train [--epochs 200]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import nnlemma as nl
from nnlemma import nn
from nnlemma.lyapunov import System

F32 = np.float32
WEIGHTS = Path(__file__).with_suffix(".npz")
BOX, HOLE, KAPPA, RHO = 2.0, 0.1, 0.1, 0.3


def make_phi(seed: int = 0) -> nn.Module:
    return nn.Sequential(nn.Linear(2, 8, seed=seed), nn.Tanh(), nn.Linear(8, 4, seed=seed + 1))


def flow(x):
    theta, omega = x[:, 0], x[:, 1]
    u = -0.5 * theta
    return nl.stack([omega, -nl.sin(theta) - 0.5 * omega + u], axis=1)


def lyapunov(phi):
    zero = nl.tensor(np.zeros((1, 2), F32))

    def V(x):
        d = phi(x) - phi(zero)
        return 0.1 * (x * x).sum(axis=1) + (d * d).sum(axis=1)
    return V


def train(epochs: int = 200, seed: int = 0) -> nn.Module:
    phi = make_phi(seed)
    V = lyapunov(phi)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-BOX, BOX, (4000, 2)).astype(F32)
    X = X[np.max(np.abs(X), axis=1) >= HOLE]

    def objective(x):
        grad_v = nl.grad(lambda z: V(z).sum(axis=0))(x)
        lie = (grad_v * flow(x)).sum(axis=1)
        return nl.relu(lie + KAPPA * V(x) + 0.01).mean(axis=0)
    losses = nl.train.minimize(objective, phi, X, epochs=epochs, batch_size=256, seed=seed)
    print(f"training loss: {losses[0]:.4g} -> {losses[-1]:.4g}")
    return phi


def system(data_dir=None) -> System:
    phi = make_phi()
    if not WEIGHTS.exists():
        raise nl.InputError(f"{WEIGHTS}: missing; run this file with --train")
    with np.load(WEIGHTS) as z:
        phi.load_state_dict({k: z[k] for k in z.files})
    return System("damped_pendulum_continuous", lo=[-BOX, -BOX], hi=[BOX, BOX], V=lyapunov(phi), flow=flow,
                  hole=HOLE, kappa=KAPPA, rho=RHO)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--epochs", type=int, default=200)
    args = ap.parse_args()
    if args.train:
        phi = train(args.epochs)
        np.savez(WEIGHTS, **{k: np.asarray(v, F32) for k, v in phi.state_dict().items()})
        print(f"wrote {WEIGHTS}")
    from nnlemma.lyapunov import check_system
    rep = check_system(system())
    print("verified:", rep["verified"], "| rho:", rep["rho"], "|", rep["seconds"], "s")
    print(rep["guarantee"])
