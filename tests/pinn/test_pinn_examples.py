"""The shipped PINN examples: the 1-D Poisson pointwise table (bundled weights) and the Burgers
problem on the shared network (its derivative graphs, a sub-box refined, sampled residual at the
shock)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np

from nnlemma.pinn.problem import part_graph
from nnlemma.pinn.search import Options, refine
from nnlemma.verify.problem import Problem

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pinn"
F32 = np.float32


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_poisson_pointwise_bounds_contain_kernel_values_and_finite_differences():
    mod = _load("poisson_1d")
    p = mod.problem()
    rows = mod.pointwise_table(p)
    graph, names = part_graph(p, p.residual, "all")
    for row in rows:
        x = F32(row["x"])
        y = Problem(graph).evaluate(np.array([[x]], F32))[0]
        for name in ("u", "u_x", "u_xx"):
            b = row[name]
            assert b["lo"] <= float(y[names.index(name)]) <= b["hi"]       # the guarantee: exact
            # modelling check (not a containment claim): central differences of the float64 network
            # at x are within O(h^2) of u's derivatives, far inside the ±0.01 box's bounds here
            assert b["lo"] <= b["finite_difference"] <= b["hi"], (row["x"], name, b)
    # u_xx ≈ -π² sin(πx) for the trained network: the bounds say so at x = 0.5
    mid = next(r for r in rows if r["x"] == 0.5)["u_xx"]
    assert mid["lo"] < -math.pi ** 2 * 0.99 and mid["hi"] > -math.pi ** 2 * 1.01


def test_burgers_problem_on_the_shared_network(shared_benchmarks):
    mod = _load("burgers")
    p = mod.problem(str(shared_benchmarks / "pinn" / "burgers_tanh_lbfgs.onnx"))
    assert [c.name for c in p.conditions] == ["initial", "boundary_left", "boundary_right"]
    graph, names = part_graph(p, p.residual)
    # the shared README's numbers: |residual| 0.134 at the shock (t, x) ≈ (0.3975, -0.005), u(0.5, -0.5) = 0.5928
    y = Problem(graph).evaluate(np.array([[0.3975, -0.005], [0.5, -0.5]], F32))
    assert abs(y[0, -1]) > 0.12 and abs(y[1, 0] - 0.5928) < 1e-3
    # a smooth sub-box reaches the 1.5x target quickly; its bounds contain the kernel on samples
    res = refine("pde", graph, names, [0.6, 0.3], [0.7, 0.4], Options(timeout=120, batch=128, grid=4096))
    assert res.stop == "target reached" and res.certified_max <= 1.5 * res.sampled_max
    X = np.random.default_rng(0).uniform([0.6, 0.3], [0.7, 0.4], (2000, 2)).astype(F32)
    Y = Problem(graph).evaluate(X).astype(np.float64)
    inside = (res.lo[None] <= X[:, None]).all(axis=2) & (X[:, None] <= res.hi[None]).all(axis=2)
    owner = inside.argmax(axis=1)
    assert inside.any(axis=1).all()
    assert np.all(res.ylo[owner] <= Y) and np.all(Y <= res.yhi[owner])
