"""The benchmark systems as written in examples/lyapunov agree with an independent float64 numpy
transcription of the shared JSON specs (modelling check: same dynamics, controller, V), and the
strip cells of the pendulum (the thin sub-boxes next to the hole) are certified."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from nnlemma.float64 import run64
from nnlemma.lyapunov import loop_graph
from nnlemma.lyapunov.check import check_condition, region_cells

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "lyapunov"))

pytestmark = pytest.mark.shared_data


def _mlp(w, prefix, act, x):
    i = 0
    while f"{prefix}.{i}.weight" in w:
        if i:
            x = act(x)
        W = w[f"{prefix}.{i}.weight"].astype(np.float64)
        x = x @ W.T + (w[f"{prefix}.{i}.bias"].astype(np.float64) if f"{prefix}.{i}.bias" in w else 0)
        i += 2
    return x


def _reference(name, w, x):
    """float64 transcription of ../shared/benchmarks/lyapunov/<name>.json."""
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    leaky = lambda v: np.where(v > 0, v, 0.01 * v)  # noqa: E731
    zero = np.zeros((1, 2))
    R = w["lyapunov.R"].astype(np.float64)
    M = 0.01 * np.eye(2) + R.T @ R

    def V(z):
        return np.abs(_mlp(w, "lyapunov", leaky, z) - _mlp(w, "lyapunov", leaky, zero))[:, 0] + np.abs(z @ M).sum(1)
    if name == "pendulum_state_feedback":
        u = np.clip(_mlp(w, "controller", relu, x) - _mlp(w, "controller", relu, zero), -6, 6)[:, 0]
        acc = -(0.1 / 0.0375) * x[:, 1] + (9.81 / 0.5) * np.sin(x[:, 0]) + u / 0.0375
        xn = np.stack([x[:, 0] + 0.05 * x[:, 1], x[:, 1] + 0.05 * acc], 1)
    else:
        u = np.clip(_mlp(w, "controller", relu, x) - _mlp(w, "controller", relu, zero) + 0.1, -0.84, 0.84)[:, 0]
        f = np.stack([2 * np.sin(x[:, 1]), 2 * u - np.cos(x[:, 1]) / (5 - np.sin(x[:, 1]))], 1)
        xn = x + 0.05 * f
    return np.concatenate([np.stack([V(x), V(xn) - 0.999 * V(x)], 1), xn], 1)


@pytest.mark.parametrize("name", ["pendulum_state_feedback", "path_tracking_state_feedback"])
def test_example_matches_the_spec(name, shared_benchmarks):
    mod = __import__(name)
    system = mod.system(shared_benchmarks / "lyapunov")
    w = dict(np.load(shared_benchmarks / "lyapunov" / f"{name}.npz"))
    g = loop_graph(system)
    x = np.random.default_rng(0).uniform(system.lo, system.hi, (64, 2))
    got = np.concatenate([run64(g, xi.reshape(1, 2))[0] for xi in x])
    want = _reference(name, w, x)
    # two float64 evaluations of the same real function (constants differ by float32 rounding):
    # a modelling check, not a soundness one
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_pendulum_strip_cells_certified(shared_benchmarks):
    import pendulum_state_feedback as p
    system = p.system(shared_benchmarks / "lyapunov")
    g = loop_graph(system)
    strips = region_cells(system)[2:]      # |theta| <= h, |omega| >= h
    res = check_condition(g, system, "decrease+invariance", strips, system.rho, cell_timeout=120)
    assert res.verdict is True and res.counterexamples == []
