"""Runtime audits: every installed runtime is compared with the spec per op; IEEE arithmetic
(+ − × ÷, abs, neg) must agree bit for bit, named behaviours are reported, the dot-product
deviation stays within twice the order-free bound (a property of any summation order), and a
missing runtime is a clear one-line error."""

from __future__ import annotations

import json

import numpy as np
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


def test_compare_counts_ulps_zeros_and_classes():
    from nnlemma.audit.sweep import compare, finish
    one = np.float32(1)
    x = np.array([0, 1, 2, 3, 4, 5], np.float32)
    want = np.array([one, one, -0.0, np.nan, 1e-45, np.inf], np.float32)
    got = np.array([one, np.nextafter(one, np.float32(2)), 0.0, 1.0, -1e-45, np.inf], np.float32)
    r = finish(compare(x, got, want))
    assert r["checked"] == 6 and r["mismatches"] == 4
    assert r["max_ulps"] == 2  # +1e-45 to -1e-45 crosses zero: two steps
    assert r["signed_zero"] == 1 and r["class_mismatch"] == 1
    assert r["histogram"] == {"0": 3, "1": 1, "2-3": 1}
    assert r["worst"]["input"] == f"0x{int(np.float32(4).view(np.uint32)):08x}"


def test_exhaustive_sweep_of_a_range_in_two_processes():
    from nnlemma.audit.sweep import sweep
    a, b = 0x3F800000, 0x3F800000 + (3 << 21)  # [1, 1.75): 6.3M patterns, several chunks
    par = sweep("relu", ["numpy"], a, b, 1, jobs=2)["numpy"]
    ser = sweep("relu", ["numpy"], a, b, 1, jobs=1)["numpy"]
    assert par["checked"] == ser["checked"] == b - a and par["mismatches"] == ser["mismatches"] == 0
