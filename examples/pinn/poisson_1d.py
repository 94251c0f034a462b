"""A 1-D Poisson PINN trained with nnlemma, as an ``nnlemma pinn`` problem and a pointwise table.

Problem: u''(x) = -π² sin(π x) on [-1, 1], u(±1) = 0 (solution sin(π x)). The network is
1-16-16-1 with tanh, trained by ``examples/pinn_1d.py`` (nnlemma's derivative graphs and
``nl.train.minimize``, 300 epochs, seed 0); its weights ship beside this file
(``poisson_1d.npz``, ours), ``--train`` redoes it.

    nnlemma pinn examples/pinn/poisson_1d.py --json poisson.json --plot poisson.png
    python examples/pinn/poisson_1d.py          # u, u_x, u_xx bounded on [x - 0.01, x + 0.01]
                                                # next to finite differences at x (as TorchLean's pinn-cert)
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

import nnlemma as nl
from nnlemma.pinn import PDE, Condition, box_bounds

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pinn_1d import make_model, train  # noqa: E402  (the training example next door)

F32 = np.float32
WEIGHTS = Path(__file__).with_suffix(".npz")
PI2 = math.pi ** 2


def problem() -> PDE:
    model = make_model(0)
    if not WEIGHTS.exists():
        raise nl.InputError(f"{WEIGHTS}: missing; run this file with --train")
    with np.load(WEIGHTS) as z:
        model.load_state_dict({k: z[k] for k in z.files})
    return PDE("poisson_1d", model, variables=("x",), lo=[-1.0], hi=[1.0],
               residual=lambda u, X: u.xx + PI2 * nl.sin(math.pi * X.x),
               conditions=[Condition("boundary_left", [-1.0], [-1.0], lambda u, X: u.value),
                           Condition("boundary_right", [1.0], [1.0], lambda u, X: u.value)])


def pointwise_table(p: PDE, points=(-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75), half: float = 0.01,
                    h: float = 1e-3) -> list[dict]:
    """Certified bounds on each ``[x - half, x + half]`` and central differences (float64) at x."""
    from nnlemma.float64 import run64
    xs = np.array(points, np.float64).reshape(-1, 1)
    names, ylo, yhi = box_bounds(p, xs - half, xs + half)
    g = nl.compile(p.model, np.zeros((1, 1), F32)).graph

    def u64(x):
        return np.array([run64(g, np.array([[v]]))[0].item() for v in x])
    x = xs[:, 0]
    fd = {"u": u64(x), "u_x": (u64(x + h) - u64(x - h)) / (2 * h),
          "u_xx": (u64(x + h) - 2 * u64(x) + u64(x - h)) / h ** 2}
    rows = []
    for i, x0 in enumerate(x):
        row = {"x": float(x0)}
        for name in ("u", "u_x", "u_xx"):
            j = names.index(name)
            row[name] = {"lo": float(ylo[i, j]), "hi": float(yhi[i, j]), "finite_difference": float(fd[name][i])}
        rows.append(row)
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", action="store_true")
    args = ap.parse_args()
    if args.train:
        model, _, _ = train(300, 0, verbose=True)
        np.savez(WEIGHTS, **{k: np.asarray(v, F32) for k, v in model.state_dict().items()})
        print(f"wrote {WEIGHTS}")
    print(f"{'x':>6}  {'quantity':<5} {'certified on [x-0.01, x+0.01]':>32}  {'finite difference at x':>22}")
    for row in pointwise_table(problem()):
        for name in ("u", "u_x", "u_xx"):
            b = row[name]
            print(f"{row['x']:6.2f}  {name:<5} [{b['lo']:>14.6f}, {b['hi']:>14.6f}]  {b['finite_difference']:>22.6f}")
