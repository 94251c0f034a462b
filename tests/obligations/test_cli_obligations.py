"""`nnlemma obligations ...` from the command line: the happy paths and one-line errors."""

from __future__ import annotations

import json

import numpy as np

from nnlemma.cli import main
from nnlemma.ir import Builder
from nnlemma.ir.serialize import save

F32 = np.float32


def softsign(path):
    b = Builder()
    x = b.input((1,), "x")
    y = b.eqn("div", [x, b.eqn("add", [b.param(np.array([1.0], F32)), b.eqn("abs", [x])])], name="softsign")
    save(b.build([y]), path)


def mlp(path):
    b = Builder()
    x = b.input((1, 2), "x")
    h = b.eqn("relu", [b.eqn("linear", [x, b.param(np.array([[1, -1], [0.5, 2]], F32))])], name="h")
    save(b.build([b.eqn("linear", [h, b.param(np.array([[1, -1]], F32)), b.param(np.array([0.5], F32))])]), path)


def generated(tmp_path):
    """An obligations directory for `mlp` over a small box, written by the CLI."""
    mlp(tmp_path / "m.json")
    (tmp_path / "box.json").write_text(json.dumps({"lo": [0, -0.5], "hi": [0.25, 0.5]}))
    d = tmp_path / "obl"
    assert main(["obligations", "generate", str(tmp_path / "m.json"), "--box", str(tmp_path / "box.json"),
                 "-o", str(d), "--quiet"]) == 0
    return d


def test_generate_discharge_report(tmp_path, capsys):
    d = generated(tmp_path)
    assert main(["obligations", "discharge", str(d), "--jobs", "1", "--quiet", "--solver", "bitwuzla",
                 "--json", str(tmp_path / "s.json")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["verdict"] == "proved" and s["counts"]["proved"] == s["obligations"] > 0
    out = capsys.readouterr().out
    assert "proved:" in out and "linear" in out
    assert main(["obligations", "report", str(d), "--format", "md"]) == 0
    assert (d / "report.md").exists()


def test_fallback_command(tmp_path, capsys):
    softsign(tmp_path / "f.json")
    assert main(["obligations", "fallback", str(tmp_path / "f.json"), "--lo", "-10", "--hi", "10",
                 "-o", str(tmp_path / "fb")]) == 0
    assert "fallback bounds [-0.90909094, 0.90909094]" in capsys.readouterr().out
    assert main(["obligations", "discharge", str(tmp_path / "fb"), "--jobs", "1", "--quiet"]) == 0


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    mlp(tmp_path / "m.json")
    cases = [
        ["obligations", "generate", str(tmp_path / "m.json"), "--box", str(tmp_path / "nope.json"), "-o", str(tmp_path / "o")],
        ["obligations", "discharge", str(tmp_path / "missing")],
        ["obligations", "discharge", str(tmp_path), "--timeout", "0"],
        ["obligations", "fallback", str(tmp_path / "m.json"), "--lo", "1", "--hi", "0"],
    ]
    (tmp_path / "badbox.json").write_text('{"lo": [0.1, 0], "hi": [1, 1]}')  # 0.1 is not a float32
    cases.append(["obligations", "generate", str(tmp_path / "m.json"), "--box", str(tmp_path / "badbox.json"),
                  "-o", str(tmp_path / "o")])
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("nnlemma: error:") and "\n" not in err and "Traceback" not in err, (argv, err)


def test_cross_check_with_a_second_solver(tmp_path, capsys):
    d = generated(tmp_path)
    assert main(["obligations", "discharge", str(d), "--jobs", "1", "--quiet", "--solver", "bitwuzla",
                 "--cross-check", "z3", "--json", str(tmp_path / "s.json")]) == 0
    cc = json.loads((tmp_path / "s.json").read_text())["cross_check"]
    assert cc["solver"] == "z3" and cc["compared"] > 0 and cc["disagreements"] == []
    z3_rows = json.loads((d / "results.z3.json").read_text())["obligations"]
    assert {r["solver"].split("-")[0] for r in z3_rows} == {"z3"}  # no corner route, no cache


def test_cross_check_reports_a_disagreement(tmp_path):
    from solvers.discharge import cross_check
    rows = lambda st: "{\n" + '"verdict": "x",\n"obligations": [\n' + "".join(  # noqa: E731
        ("," if i else "") + json.dumps({"id": f"o{i}", "status": s}) + "\n" for i, s in enumerate(st)) + "]\n}\n"
    (tmp_path / "results.json").write_text(rows(["proved", "proved", "unknown"]))
    (tmp_path / "results.b.json").write_text(rows(["proved", "refuted", "proved"]))
    cc = cross_check(tmp_path, "results.json", "results.b.json")
    assert cc["compared"] == 3 and [d["id"] for d in cc["disagreements"]] == ["o1"]


def test_real_obligations_through_pysmt(tmp_path):
    mlp(tmp_path / "m.json")
    spec = tmp_path / "p.vnnlib"
    spec.write_text("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
                    "(assert (>= X_0 0.0))\n(assert (<= X_0 0.25))\n(assert (>= X_1 -0.5))\n"
                    "(assert (<= X_1 0.5))\n(assert (<= Y_0 -100.0))\n")
    d = tmp_path / "obl"
    assert main(["obligations", "generate", str(tmp_path / "m.json"), "--vnnlib", str(spec), "-o", str(d),
                 "--quiet"]) == 0
    assert main(["obligations", "discharge", str(d), "--jobs", "1", "--quiet", "--solver", "bitwuzla",
                 "--real-solver", "pysmt-cvc5"]) == 0
    rows = json.loads((d / "results.json").read_text())["obligations"]
    comp = [r for r in rows if r["kind"] == "composition"]
    assert comp and all(r["solver"] == "pysmt-cvc5" and r["status"] == "proved" for r in comp)
