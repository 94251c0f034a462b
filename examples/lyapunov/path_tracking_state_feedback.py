"""Yang et al. (ICML 2024) path tracking, state feedback: certified on {V <= 36.48387}?

    nnlemma lyapunov examples/lyapunov/path_tracking_state_feedback.py --json out.json --plot out.png

State (d_e, theta_e); explicit Euler with dt = 0.05; u = clamp(net(x) - net(0) + 0.1, -0.84, 0.84).
Weights: ../shared/benchmarks/lyapunov/path_tracking_state_feedback.npz (MIT; see its README).
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

DT, U_MAX, U_EQ = 0.05, 0.84, 0.1


def system(data_dir=None) -> System:
    w = weights("path_tracking_state_feedback", data_dir)
    controller = mlp(w, "controller", nn.ReLU)
    phi = mlp(w, "lyapunov", lambda: nn.LeakyReLU(0.01))
    R = w["lyapunov.R"].astype(np.float64)
    M = (0.01 * np.eye(2) + R.T @ R).astype(np.float32)
    zero = nl.tensor(np.zeros((1, 2), np.float32))

    def V(x):
        return nl.abs(phi(x) - phi(zero)).sum(axis=1) + nl.abs(nl.linear(x, nl.tensor(M))).sum(axis=1)

    def step(x):
        d_e, theta_e = x[:, 0], x[:, 1]
        u = nl.clamp(controller(x) - controller(zero) + U_EQ, -U_MAX, U_MAX)[:, 0]
        d_dot = 2.0 * nl.sin(theta_e)                                   # v sin(theta_e), v = 2
        theta_dot = 2.0 * u - nl.cos(theta_e) / (5.0 - nl.sin(theta_e))  # v u / L - cos / (R/v - sin)
        return nl.stack([d_e + DT * d_dot, theta_e + DT * theta_dot], axis=1)

    h = float(np.float32(0.001 * 3))
    return System("path_tracking_state_feedback", lo=[-3, -3], hi=[3, 3], V=V, step=step, hole=h,
                  kappa=0.001, rho=36.48387, decrease_tol=1e-6, box_tol=1e-6)


if __name__ == "__main__":
    from nnlemma.lyapunov import check_system
    rep = check_system(system(sys.argv[1] if len(sys.argv) > 1 else None))
    print("verified:", rep["verified"], "| rho:", rep["rho"], "|", rep["seconds"], "s")
    print(rep["guarantee"])
