"""Runtime audits: every installed runtime is compared with the spec per op; IEEE arithmetic
(+ − × ÷, abs, neg) must agree bit for bit, named behaviours are reported, the dot-product
deviation stays within twice the order-free bound (a property of any summation order), and a
missing runtime is a clear one-line error."""

from __future__ import annotations

import json

import pytest

from nnlemma.audit import runtime as R
from nnlemma.cli import main
from nnlemma.errors import InputError

EXACT = ("add", "sub", "mul", "div", "abs", "neg")


@pytest.mark.parametrize("name", R.RUNTIMES)
def test_runtime_audit(name):
    if name != "numpy":
        pytest.importorskip(name)
    rep = R.audit_runtime(name, stride=1 << 16)
    assert set(rep["ops"]) == set(R.UNARY + R.BINARY)
    for op in EXACT:
        assert rep["ops"][op]["mismatches"] == 0, (name, op, rep["ops"][op]["examples"])
    assert set(rep["behaviours"]) >= {"relu(NaN)", "relu(-0)", "maximum(-0, +0)", "maximum(NaN, 1)"}
    assert rep["behaviours"]["relu(NaN)"].startswith("nan")  # every runtime here propagates NaN
    assert rep["dot"]["max_deviation_over_order_free_bound"] <= 2.0
    for r in rep["ops"].values():
        assert r["checked"] > 65_000 and len(r["examples"]) <= 5


def test_missing_runtime_is_a_clear_error(monkeypatch, capsys):
    def missing():
        raise ImportError("no module named torch")
    monkeypatch.setattr(R, "_torch_ops", missing)
    with pytest.raises(InputError, match="not installed"):
        R.runtime_ops("torch")
    assert main(["audit", "runtime", "torch"]) == 2
    assert "not installed" in capsys.readouterr().err


def test_cli_json(tmp_path):
    out = tmp_path / "rt.json"
    assert main(["audit", "runtime", "numpy", "--op", "relu", "--op", "exp", "--stride", "65536",
                 "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["runtime"] == "numpy" and set(d["ops"]) == {"relu", "exp"}
    assert {"checked", "mismatches", "max_ulps", "examples"} <= set(d["ops"]["exp"])
    assert main(["audit", "runtime", "numpy", "--stride", "0"]) == 2
