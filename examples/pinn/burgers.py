"""The Burgers PINN of ∂-CROWN (Eiras et al., ICML 2024) as an ``nnlemma pinn`` problem.

u_θ(t, x) approximates the viscous Burgers equation on (t, x) in [0, 1] x [-1, 1]:

    u_t + u u_x - ν u_xx = 0,  ν = 0.01/π;   u(0, x) = -sin(π x);   u(t, ±1) = 0.

The network (2 inputs, 9 tanh layers of 20, ``burgers_tanh_lbfgs.onnx``) ships without a licence,
so it stays in ``../shared/benchmarks/pinn``: the problem finds it there, or takes ``--model PATH``.
Its input columns are (t, x); u_t, u_x and u_xx are derivative graphs of the loaded ONNX graph.
The constants enter as float32 values (ν and π rounded to nearest).

    nnlemma pinn examples/pinn/burgers.py [--model PATH] --json burgers.json --plot burgers.png
"""

from __future__ import annotations

import math
from pathlib import Path

import nnlemma as nl
from nnlemma.errors import InputError
from nnlemma.pinn import PDE, Condition

NU = 0.01 / math.pi
SHARED = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "pinn" / "burgers_tanh_lbfgs.onnx"


def problem(model: str | None = None) -> PDE:
    path = Path(model) if model else SHARED
    if not path.is_file():
        raise InputError(f"{path}: the Burgers network is not there; pass --model PATH "
                         "(burgers_tanh_lbfgs.onnx from ../shared/benchmarks/pinn)")
    return PDE(
        "burgers", nl.load_model(path), variables=("t", "x"), lo=[0.0, -1.0], hi=[1.0, 1.0],
        residual=lambda u, X: u.t + u.value * u.x - NU * u.xx,
        conditions=[
            Condition("initial", lo=[0.0, -1.0], hi=[0.0, 1.0],
                      residual=lambda u, X: u.value + nl.sin(math.pi * X.x)),
            Condition("boundary_left", lo=[0.0, -1.0], hi=[1.0, -1.0], residual=lambda u, X: u.value),
            Condition("boundary_right", lo=[0.0, 1.0], hi=[1.0, 1.0], residual=lambda u, X: u.value),
        ])
