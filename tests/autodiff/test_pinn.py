"""The Burgers PINN (../shared/benchmarks/pinn): u_t, u_x and u_xx as derivative graphs (jvp, and jvp
of jvp) run, print and round-trip, and match finite differences of the float64 network."""

from __future__ import annotations

import numpy as np
import pytest

import nnlemma as nl
from nnlemma.ir import serialize
from nnlemma.float64 import run64

F32 = np.float32
H = 1e-6


@pytest.fixture(scope="module")
def pinn(shared_benchmarks):
    return nl.load_model(shared_benchmarks / "pinn" / "burgers_tanh_lbfgs.onnx")


def _derivatives(g):
    e_t, e_x = np.array([[1, 0]], F32), np.array([[0, 1]], F32)
    u_t = lambda z: nl.jvp(g, (z,), (e_t,))[1]   # noqa: E731  (input columns are (t, x))
    u_x = lambda z: nl.jvp(g, (z,), (e_x,))[1]   # noqa: E731
    u_xx = lambda z: nl.jvp(u_x, (z,), (e_x,))[1]  # noqa: E731
    return {"u_t": u_t, "u_x": u_x, "u_xx": u_xx}, e_t, e_x


def test_burgers_derivative_graphs_run_print_round_trip_and_match_differences(pinn):
    fns, e_t, e_x = _derivatives(pinn)
    pts = np.array([[0.1, -0.5], [0.3, 0.2], [0.7, 0.05], [0.95, -0.9]], F32)
    graphs = {k: nl.compile(f, pts[:1]).graph for k, f in fns.items()}
    assert {e.op for e in graphs["u_xx"].equations} >= {"tanh", "mul", "linear"}
    for k, g in graphs.items():
        text = str(g)
        assert "tanh" in text
        back = serialize.loads(serialize.dumps(g))
        assert str(back) == text
    for p in pts:
        p = p[None]
        x64 = p.astype(np.float64)
        want = {"u_t": (run64(pinn, x64 + H * e_t)[0] - run64(pinn, x64 - H * e_t)[0]) / (2 * H),
                "u_x": (run64(pinn, x64 + H * e_x)[0] - run64(pinn, x64 - H * e_x)[0]) / (2 * H)}
        want["u_xx"] = (run64(graphs["u_x"], x64 + H * e_x)[0] - run64(graphs["u_x"], x64 - H * e_x)[0]) / (2 * H)
        for k, g in graphs.items():
            got64 = run64(g, x64)[0]
            assert np.all(np.abs(got64 - want[k]) <= 1e-5 * (1 + np.abs(want[k]))), (k, p, got64, want[k])
            # the float32 kernel run of the same graph is close to its float64 run, and eager = compiled
            got32 = nl.run(g, p)[0]
            assert np.all(np.abs(got32 - got64) <= 1e-3 * (1 + np.abs(got64))), (k, p)
            assert np.array_equal(np.asarray(fns[k](nl.tensor(p)).numpy()).view(np.uint32), got32.view(np.uint32))


def test_derivative_graphs_are_bounded_like_any_graph(pinn):
    """IBP and CROWN bound u_x and u_xx over a box: every float32 kernel value at sampled points
    (corners, centre, random) lies inside the float32 bounds (exact comparisons)."""
    fns, _, _ = _derivatives(pinn)
    lo, hi = np.array([[0.4, 0.1]], F32), np.array([[0.45, 0.15]], F32)
    rng = np.random.default_rng(0)
    pts = np.concatenate([np.array([[a, b]] , F32) for a in (lo[0, 0], hi[0, 0]) for b in (lo[0, 1], hi[0, 1])]
                         + [((lo + hi) / 2).astype(F32), rng.uniform(lo, hi, (16, 2)).astype(F32)])
    for k in ("u_x", "u_xx"):
        g = nl.compile(fns[k], lo).graph
        for res in (nl.bounds.ibp(g, lo, hi), nl.bounds.crown(g, lo, hi)):
            assert res.status == "ok", res.reason
            b = res.outputs[0]
            for p in pts:
                y = nl.run(g, p[None])[0]
                assert np.all(b.lo <= y) and np.all(y <= b.hi), (k, p, y, b.lo, b.hi)
