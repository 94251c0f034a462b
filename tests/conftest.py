"""Shared pytest fixtures.

``shared_benchmarks``: the benchmark folder shared by the team, ``../shared/benchmarks`` next to
the repository. If it is missing the test is skipped locally but fails in CI (``CI=true``), so CI
can never pass vacuously.
"""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    path = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"
    if not path.is_dir():
        msg = f"shared benchmark folder {path} is missing"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def small_net():
    """A small graph touching each kind of fp-transfer obligation: linear(3->2) + bias, relu,
    leaky_relu, maximum, a reshape and transpose, add of a param (obligation and solver tests)."""
    import numpy as np

    from nnlemma.ir import Builder
    f32 = np.float32
    rng = np.random.default_rng(0)
    b = Builder()
    x = b.input((1, 3), "x")
    w = b.param(rng.standard_normal((2, 3)).astype(f32), "w")
    bias = b.param(rng.standard_normal(2).astype(f32), "b")
    h = b.eqn("linear", [x, w, bias], name="fc")
    r = b.eqn("relu", [h], name="relu")
    lk = b.eqn("leaky_relu", [h], {"alpha": 0.1}, name="leaky")
    m = b.eqn("maximum", [r, lk], name="max")
    t = b.eqn("transpose", [b.eqn("reshape", [m], {"shape": (2, 1)}, name="rs")], {"perm": (1, 0)}, name="tr")
    out = b.eqn("add", [t, b.param(np.array([[0.5, -0.25]], f32), "c")], name="shift")
    return b.build([out])

