"""Points whose kernel outputs are inf or NaN leave a VNN-LIB property undefined (its outputs are
real variables): verify must then answer neither sat nor unsat."""

import numpy as np

import nnlemma as nl
from nnlemma import nn, vnnlib
from nnlemma.verify.api import verify

F32 = np.float32


def _overflowing_net():
    m = nn.Sequential(nn.Linear(1, 1, seed=0))
    m.load_state_dict({"0.weight": np.array([[3e38]], F32), "0.bias": np.array([0.0], F32)})
    return nl.compile(m, nl.tensor(np.zeros((1, 1), F32))).graph


def test_inf_outputs_give_unknown_not_unsat():
    g = _overflowing_net()
    assert np.isinf(nl.run(g, np.array([[1.5]], F32))[0]).all()
    for atom in ("(>= Y_0 1.0)", "(<= Y_0 1.0)"):
        spec = ("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
                f"(assert (>= X_0 1.5))\n(assert (<= X_0 1.5000001))\n(assert {atom})\n")
        res = verify(g, vnnlib.parse(spec, "undefined.vnnlib"), timeout=20)
        assert res.status == "unknown", (atom, res.status, res.reason)
        assert "inf or NaN" in res.reason
