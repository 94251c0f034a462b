"""``verify(..., semantics="real")``: the exact real-arithmetic graph over the real input box.

Every ``sat`` is replayed here independently: x must be a float64 point inside the rational box
(strict bounds respected) and the exact outputs (``Net.real``, Fractions) must make the unsafe
set hold exactly; the reported ``y_exact`` must equal them. ``unsat`` is checked against planted
real counterexamples (it must never appear when one exists).
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlemma.ir.serialize import save
from nnlemma.verify import verify
from nnlemma.vnnlib import parse
from planted_nets import Net, ge, in_region, le, random_mlp, simple_prop

F32 = np.float32


def check_real(net: Net, prop, res, *, real_violated: bool | None = None) -> str:
    assert res.status in ("sat", "unsat", "unknown", "timeout"), res.status
    if res.status == "sat":
        x = np.asarray(res.x)
        assert x.dtype == np.float64 and x.shape == (prop.n_inputs,) and np.isfinite(x).all()
        y = [Fraction(v) for v in net.real([Fraction(float(v)) for v in x])]
        assert [Fraction(v) for v in res.y_exact] == y, "reported exact outputs differ from the replay"
        hits = [c for c in prop.cases if in_region(c.box, x)]
        assert hits and any(c.unsafe_at_exact(y) is True for c in hits), f"sat x={x.tolist()} does not replay"
        assert real_violated is not False, "sat on a property that holds in real arithmetic"
    if real_violated:
        assert res.status != "unsat", "UNSOUND: unsat, but the real property is violated"
    return res.status


CANCEL = Net(1, [("linear", [[1]], [2 ** 24]), ("linear", [[1]], [-2 ** 24])])  # fl(fl(x + 2^24) − 2^24)


def test_violated_in_reals_only_is_sat_in_real_and_not_in_float32():
    """On [0.25, 0.75] the kernel gives 0 everywhere, the real graph gives x: ``Y_0 >= 0.1``."""
    prop = simple_prop(1, 1, [(0.25, 0.75)], [[ge(0, 0.1)]])
    assert verify(CANCEL.graph, prop, timeout=2).status != "sat"  # holds in float32 (too many points to prove)
    res = verify(CANCEL.graph, prop, semantics="real", timeout=30)
    assert check_real(CANCEL, prop, res, real_violated=True) == "sat"


def test_violated_in_float32_only_is_never_sat_in_real():
    """fl(2^23 + 0.75) = 2^23 + 1: the kernel gives 1 at x = 0.75, the real graph 0.75, so
    ``Y_0 >= 0.9`` on [0.7, 0.75] holds in real arithmetic and fails in float32."""
    net = Net(1, [("linear", [[1]], [2 ** 23]), ("linear", [[1]], [-2 ** 23])])
    prop = simple_prop(1, 1, [(0.7, 0.75)], [[ge(0, 0.9)]])
    assert net.kernel([0.75])[0] == 1
    assert verify(net.graph, prop, timeout=30).status == "sat"
    res = verify(net.graph, prop, semantics="real", timeout=30)
    assert check_real(net, prop, res, real_violated=False) == "unsat"


def test_only_counterexample_not_a_float64_point_is_never_unsat():
    """Y_0 = x; the unsafe set {x = 1/10} has one real point, which no float64 reaches: the answer
    must not be unsat (sat is impossible to replay with a float64 x, so unknown/timeout)."""
    net = Net(1, [("linear", [[1]], None)])
    prop = simple_prop(1, 1, [(0, 1)], [[ge(0, "0.1"), le(0, "0.1")]])
    res = verify(net.graph, prop, semantics="real", timeout=10)
    assert check_real(net, prop, res, real_violated=True) in ("unknown", "timeout")


def test_strict_input_bound_excludes_the_boundary():
    """0 < x <= 1 and Y_0 = x: ``Y_0 <= 0`` has no point of the region; the float64 enclosure
    still holds 0, so the search may end unknown — but never sat."""
    net = Net(1, [("linear", [[1]], None)])
    prop = parse("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
                 "(assert (> X_0 0.0))\n(assert (<= X_0 1.0))\n(assert (<= Y_0 0.0))\n")
    res = verify(net.graph, prop, semantics="real", timeout=10)
    assert check_real(net, prop, res, real_violated=False) != "sat"


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 10_000))
def test_random_relu_nets_agree_with_exact_replay(seed):
    """Random 2-input ReLU MLPs, threshold at an exactly evaluated sample: the real verdict is
    sat with a replaying point, or — when it is unsat — no exactly evaluated sample violates."""
    rng = np.random.default_rng(seed)
    net = random_mlp(rng, 2, [6, 6], 1)
    lo, hi = -1.0, 1.0
    xs = [[Fraction(float(F32(v))) for v in rng.uniform(lo, hi, 2)] for _ in range(40)]
    vals = [net.real(x)[0] for x in xs]
    t = max(vals) - Fraction(1, 1000) * (1 if seed % 2 else -1)   # violated or (maybe) not
    prop = simple_prop(2, 1, [(lo, hi), (lo, hi)], [[ge(0, t)]])
    res = verify(net.graph, prop, semantics="real", timeout=20, seed=seed)
    violated = True if seed % 2 else None
    check_real(net, prop, res, real_violated=violated)
    if res.status == "unsat":
        assert all(v < t for v in vals)


def test_cli_real_semantics_writes_exact_outputs(tmp_path):
    """``nnlemma verify --semantics real``: the result file and the JSON with exact outputs; and
    --certificate / --prove are refused with a one-line error."""
    save(CANCEL.graph, tmp_path / "cancel.json")
    spec = tmp_path / "p.vnnlib"
    spec.write_text("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
                    "(assert (>= X_0 0.25))\n(assert (<= X_0 0.75))\n(assert (>= Y_0 0.1))\n")
    cmd = [sys.executable, "-m", "nnlemma.cli", "verify", str(tmp_path / "cancel.json"), str(spec), "--semantics", "real",
           "--timeout", "20", "--json", str(tmp_path / "r.json"), "--result", str(tmp_path / "r.txt")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r.txt").read_text().startswith("sat\n((X_0 ")
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["semantics"] == "real" and d["status"] == "sat"
    x = Fraction(d["counterexample"]["x"][0])
    assert [Fraction(v) for v in d["counterexample"]["y_exact"]] == CANCEL.real([x])
    bad = subprocess.run(cmd[:-4] + ["--certificate", str(tmp_path / "c.json")], capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def _exact_out(g, x):
    from nnlemma.exact import exact_eval

    return exact_eval(g, [np.array([[Fraction(float(v)) for v in x]], dtype=object)])[g.outputs[0]].reshape(-1)


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["Tanh", "Sigmoid"]))
def test_smooth_nets_sat_replays_with_enclosures(seed, act):
    """tanh/sigmoid nets: exact outputs are 300-bit enclosures; a sat must be decided by them
    (``unsafe_at_exact`` is True only when the enclosure lies inside the unsafe set)."""
    import nnlemma as nl
    from nnlemma import nn

    rng = np.random.default_rng(seed)
    m = nn.Sequential(nn.Linear(2, 8, seed=seed), getattr(nn, act)(), nn.Linear(8, 1, seed=seed + 1))
    g = nl.compile(m, nl.tensor(np.zeros((1, 2), F32))).graph
    vals = [float(_exact_out(g, rng.uniform(-1, 1, 2))[0].mid) for _ in range(30)]
    t = float(np.float32(max(vals) - 1e-3))
    prop = simple_prop(2, 1, [(-1, 1), (-1, 1)], [[ge(0, t)]])
    res = verify(g, prop, semantics="real", timeout=20, seed=seed)
    assert res.status != "unsat"  # a sampled point exceeds t by about 1e-3
    if res.status == "sat":
        assert prop.cases[0].unsafe_at_exact(list(_exact_out(g, res.x))) is True and in_region(prop.cases[0].box, res.x)
