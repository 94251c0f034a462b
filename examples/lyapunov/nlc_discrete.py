"""The small discrete-time neural-Lyapunov-control baselines Yang et al. compare against (pendulum
and path tracking), checked with exactly the conditions of their with-rho specs:
V > -1e-8 and V(x+) - V(x) < -1e-5 and x+ within 1e-5 of the box, on {V <= rho} minus the hole.

    nnlemma lyapunov examples/lyapunov/nlc_discrete.py                  # the pendulum baseline
    python examples/lyapunov/nlc_discrete.py path_tracking

The specs leave out the closed hole [-0.1, 0.1]^2; this leaves out only the open hole, so its
boundary is checked too (a slightly stronger claim). V(x*) = 0 is not part of these specs (V(0) is
-0.00224 and 0.0301). Weights: ../shared/benchmarks/lyapunov/nlc_discrete_*.npz (MIT).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nnlemma as nl  # noqa: E402
from _shared import mlp, weights  # noqa: E402
from nnlemma import nn  # noqa: E402
from nnlemma.lyapunov import System  # noqa: E402

DT = 0.05


def system(data_dir=None, which: str = "pendulum") -> System:
    w = weights(f"nlc_discrete_{which}", data_dir)
    V_net = mlp(w, "lyapunov", nn.ReLU)
    if which == "pendulum":
        controller = mlp(w, "controller", nn.ReLU, bias=False)   # u = clamp(K x, -6, 6)

        def step(x):
            theta, omega = x[:, 0], x[:, 1]
            u = nl.clamp(controller(x), -6.0, 6.0)[:, 0]
            acc = (0.15 * 9.81 * 0.5 * nl.sin(theta) + u - 0.1 * omega) / 0.0375   # (m g l sin + u - b w)/(m l^2)
            return nl.stack([theta + DT * omega, omega + DT * acc], axis=1)
        L, rho = 12.0, 25.58
    else:
        controller = mlp(w, "controller", nn.ReLU)                # u = clamp(net(x), -0.84, 0.84), no offset

        def step(x):
            d_e, theta_e = x[:, 0], x[:, 1]
            u = nl.clamp(controller(x), -0.84, 0.84)[:, 0]
            theta_dot = 2.0 * u - nl.cos(theta_e) / (5.0 - nl.sin(theta_e))
            return nl.stack([d_e + DT * 2.0 * nl.sin(theta_e), theta_e + DT * theta_dot], axis=1)
        L, rho = 3.0, 72.425
    return System(f"nlc_discrete_{which}", lo=[-L, -L], hi=[L, L], V=lambda x: V_net(x), step=step, hole=0.1,
                  kappa=0.0, rho=rho, decrease_tol=-1e-5, box_tol=1e-5, positivity_tol=1e-8,
                  positivity_within_level=True, check_v_eq_zero=False)


if __name__ == "__main__":
    from nnlemma.lyapunov import check_system
    rep = check_system(system(which=sys.argv[1] if len(sys.argv) > 1 else "pendulum"))
    print("verified:", rep["verified"], "| rho:", rep["rho"], "|", rep["seconds"], "s")
    print(rep["guarantee"])
