"""The whole chain for a property: IBP splitting, fp-transfer + composition + cover lemmas,
discharge; `nnlemma verify --prove` backs unsat by obligations and never upgrades anything."""

from __future__ import annotations

import json

import numpy as np

from nnlemma import vnnlib
from nnlemma.cli import main
from nnlemma.ir import Builder
from nnlemma.ir.serialize import save as save_graph
from obligations.composition import spec_obligations
from obligations.fp_transfer import Dom
from obligations.prove import cover_obligation, generate_property
from obligations.replay import replay
from solvers.discharge import DischargeOptions, discharge
from solvers.z3_backend import Z3Solver

F32 = np.float32


def net():
    b = Builder()
    x = b.input((1, 2), "x")
    h = b.eqn("relu", [b.eqn("linear", [x, b.param(np.array([[1, -1], [0.5, 1], [-1, 0.25]], F32)),
                                        b.param(np.array([0.1, -0.2, 0.3], F32))])])
    y = b.eqn("linear", [h, b.param(np.array([[1, 0.5, -1], [-0.5, 1, 0.25]], F32))])
    return b.build([y])


SAFE = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 0.4))
(assert (<= X_0 0.6))
(assert (>= X_1 -0.3))
(assert (<= X_1 -0.1))
(assert (<= Y_0 Y_1))
"""
# Y_0 - Y_1 is about 0.9 on SAFE's box; at X = (0, 0.5) it is negative: the unsafe region is hit
UNSAFE = SAFE.replace("(assert (>= X_0 0.4))", "(assert (>= X_0 -0.1))").replace(
    "(assert (>= X_1 -0.3))\n(assert (<= X_1 -0.1))", "(assert (>= X_1 -0.3))\n(assert (<= X_1 0.6))")


def test_property_proved_by_obligations(tmp_path):
    g = net()
    prop = vnnlib.parse(SAFE, "safe")
    trailer = generate_property(g, prop, tmp_path / "d", model="net")
    assert not trailer["gaps"]
    assert trailer["counts"]["composition"] >= 1
    s = discharge(tmp_path / "d", DischargeOptions(solver="bitwuzla", jobs=1, cache="", progress=False))
    assert s["verdict"] == "proved", s["counts"]


def test_budget_exhausted_is_a_gap_and_unknown(tmp_path):
    g = net()
    trailer = generate_property(g, vnnlib.parse(UNSAFE, "unsafe"), tmp_path / "d", model="net",
                                max_leaves=16)
    assert trailer["gaps"] and trailer["gaps"][0]["op"] == "split"
    s = discharge(tmp_path / "d", DischargeOptions(solver="bitwuzla", jobs=1, cache="", progress=False))
    assert s["verdict"] == "unknown"


def test_bounds_that_do_not_imply_the_property_are_refuted_exactly():
    case = vnnlib.parse(SAFE, "safe").cases[0]
    # Y_0 in [0, 1], Y_1 in [0.5, 2]: Y_0 <= Y_1 is possible
    (ob,) = spec_obligations(case, np.array([0, 0.5], F32), np.array([1, 2], F32), np.zeros(2, bool), "m")
    out = Z3Solver().check(ob.violation, 10)
    assert out.status == "sat"
    ok, detail = replay(ob.replay, out.model)
    assert ok and "Y_0" in detail
    (good,) = spec_obligations(case, np.array([3, 0.5], F32), np.array([4, 2], F32), np.zeros(2, bool), "m")
    assert Z3Solver().check(good.violation, 10).status == "unsat"
    (nan,) = spec_obligations(case, np.array([3, 0.5], F32), np.array([4, 2], F32), np.array([True, False]), "m")
    assert not hasattr(nan, "violation")  # a gap: NaN-possible outputs cannot imply a threshold


def test_cover_lemma_detects_a_hole():
    l, h = np.array([0.0], F32), np.array([1.0], F32)
    assert Z3Solver().check(cover_obligation("m", 0, l, h, 0, F32(0.5)).violation, 10).status == "unsat"
    # halves at different points leave a hole: [0, 0.25] and [0.5, 1] do not cover [0, 1]
    hole = cover_obligation("m", 0, l, h, 0, F32(0.5))
    from encoders import terms as T
    x = T.var("x", T.F32)
    bad = T.and_(Dom.interval(l[0], h[0]).member(x),
                 T.not_(T.or_(Dom.interval(l[0], F32(0.25)).member(x), Dom.interval(F32(0.5), h[0]).member(x))))
    assert hole.violation != bad and Z3Solver().check(bad, 10).status == "sat"


def test_cli_verify_prove(tmp_path, capsys):
    model = tmp_path / "net.json"
    save_graph(net(), model)
    safe, unsafe = tmp_path / "safe.vnnlib", tmp_path / "unsafe.vnnlib"
    safe.write_text(SAFE)
    unsafe.write_text(UNSAFE)
    out = tmp_path / "r.json"
    assert main(["verify", str(model), str(safe), "--prove", "--quiet", "--jobs", "1",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["status"] == "unsat" and r["reason"].startswith("proved by obligations")
    assert main(["verify", str(model), str(unsafe), "--prove", "--quiet", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["status"] == "sat"  # a replayed counterexample needs no lemma
