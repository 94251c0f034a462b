"""Yang et al. (ICML 2024) inverted pendulum, state feedback: is the learned controller provably
stable on {V <= 672}, in float32 as executed?

    nnlemma lyapunov examples/lyapunov/pendulum_state_feedback.py --json out.json --plot out.png
    python examples/lyapunov/pendulum_state_feedback.py [DATA_DIR]

The system is written with the nnlemma API; the weights come from
../shared/benchmarks/lyapunov/pendulum_state_feedback.npz (MIT; see its README).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nnlemma as nl  # noqa: E402
from _shared import mlp, weights  # noqa: E402
from nnlemma import nn  # noqa: E402
from nnlemma.lyapunov import System  # noqa: E402

DT = 0.05
U_MAX = 6.0


def system(data_dir=None) -> System:
    w = weights("pendulum_state_feedback", data_dir)
    controller = mlp(w, "controller", nn.ReLU)
    phi = mlp(w, "lyapunov", lambda: nn.LeakyReLU(0.01))
    R = w["lyapunov.R"].astype(np.float64)
    M = (0.01 * np.eye(2) + R.T @ R).astype(np.float32)   # eps I + R^T R (symmetric)
    zero = nl.tensor(np.zeros((1, 2), np.float32))

    def V(x):
        """|phi(x) - phi(0)| + ||(eps I + R^T R) x||_1"""
        return nl.abs(phi(x) - phi(zero)).sum(axis=1) + nl.abs(nl.linear(x, nl.tensor(M))).sum(axis=1)

    def step(x):
        """Explicit Euler, dt = 0.05: theta+ = theta + dt*omega, omega+ = omega + dt*theta_ddot."""
        theta, omega = x[:, 0], x[:, 1]
        u = nl.clamp(controller(x) - controller(zero), -U_MAX, U_MAX)[:, 0]
        theta_ddot = -2.6666667 * omega + 19.62 * nl.sin(theta) + 26.666667 * u
        return nl.stack([theta + DT * omega, omega + DT * theta_ddot], axis=1)

    h = float(np.float32(0.001 * 12))  # the hole's half-width, computed in float32 as in the paper
    return System("pendulum_state_feedback", lo=[-12, -12], hi=[12, 12], V=V, step=step, hole=h,
                  kappa=0.001, rho=672.0, decrease_tol=1e-6, box_tol=1e-6)


if __name__ == "__main__":
    from nnlemma.lyapunov import check_system
    rep = check_system(system(sys.argv[1] if len(sys.argv) > 1 else None))
    rep.pop("_internal")
    print("verified:", rep["verified"], "| rho:", rep["rho"], "|", rep["seconds"], "s")
    print(rep["guarantee"])
