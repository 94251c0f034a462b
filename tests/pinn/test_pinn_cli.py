"""``nnlemma pinn`` end to end on a small problem: JSON, plot, certificate re-checked by ``nnlemma
check`` (and tampering caught), and one-line errors on bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import nnlemma as nl
from nnlemma.cli import main
from nnlemma.pinn import certificate

sys.path.insert(0, str(Path(__file__).parent))
import problems  # noqa: E402

PROBLEM = str(Path(__file__).parent / "problems.py")


def _tamper(src, dst, fn):
    cert = certificate.read(src)
    fn(cert)
    certificate.write(dst, cert)


def test_cli_json_plot_certificate_and_check(tmp_path, capsys):
    out, png, cert = tmp_path / "r.json", tmp_path / "h.png", tmp_path / "c.npz"
    assert main(["pinn", PROBLEM, "--timeout", "20", "--batch", "64", "--json", str(out), "--plot", str(png),
                 "--certificate", str(cert), "--quiet", "--all-derivatives"]) == 0
    rep = json.loads(out.read_text())
    assert {"certified_max_abs_residual", "sampled_max_abs_residual", "boxes", "seconds", "ratio"} <= set(rep)
    assert [p["name"] for p in rep["parts"]] == ["pde", "initial", "boundary"]
    assert 0 < rep["sampled_max_abs_residual"] <= rep["certified_max_abs_residual"]
    assert set(rep["parts"][0]["bounds"]) == {"u", "u_t", "u_x", "u_tt", "u_tx", "u_xx", "residual"}
    assert png.stat().st_size > 0
    assert main(["check", PROBLEM, str(cert)]) == 0
    assert "valid" in capsys.readouterr().out

    def raise_a_bound(c):   # a recorded lower bound above what CROWN recomputes
        c["arrays"]["p0_ylo"][0, -1] += 1.0

    def drop_a_leaf(c):
        for k in ("lo", "hi", "ylo", "yhi", "paths"):
            c["arrays"][f"p0_{k}"] = c["arrays"][f"p0_{k}"][1:]

    def lower_the_claim(c):
        c["meta"]["parts"][0]["certified_max_abs_residual"] *= 0.5

    def move_a_leaf(c):
        c["arrays"]["p1_hi"][0, 1] = np.nextafter(c["arrays"]["p1_hi"][0, 1], np.float32(2))
    for fn, why in ((raise_a_bound, "recomputed bounds"), (drop_a_leaf, "coverage"),
                    (lower_the_claim, "claimed maximum"), (move_a_leaf, "replay")):
        bad = tmp_path / f"{fn.__name__}.npz"
        _tamper(cert, bad, fn)
        assert main(["check", PROBLEM, str(bad)]) == 1, fn.__name__
        assert why in capsys.readouterr().out, fn.__name__


def test_model_option_and_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "noproblem.py"
    bad.write_text("x = 1\n")
    wrong = tmp_path / "wrong.py"
    wrong.write_text("def problem():\n    return 3\n")
    assert main(["pinn", str(bad)]) == 2
    assert main(["pinn", str(wrong)]) == 2
    assert main(["pinn", str(wrong), "--model", str(tmp_path / "missing.onnx")]) == 2
    assert main(["pinn", PROBLEM, "--target-ratio", "0.5"]) == 2
    assert main(["pinn", PROBLEM, "--prove", "--semantics", "real"]) == 2
    assert main(["pinn", PROBLEM, "--json", str(tmp_path / "no" / "r.json")]) == 2
    assert main(["check", PROBLEM, str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "defines no problem()" in err and "not nnlemma.pinn.PDE" in err
    assert "no such model file" in err
    # --model reaches problem(model=...): an exported copy of the toy network gives the same graph
    onnx = tmp_path / "net.onnx"
    nl.export_onnx(nl.compile(problems.tanh_net(), np.zeros((1, 2), np.float32)).graph, onnx)
    out = tmp_path / "r.json"
    assert main(["pinn", PROBLEM, "--model", str(onnx), "--timeout", "10", "--batch", "64", "--json", str(out),
                 "--quiet"]) == 0
    assert json.loads(out.read_text())["certified_max_abs_residual"] is not None


TINY = """
from nnlemma import nn
from nnlemma.pinn import PDE


def problem():
    net = nn.Sequential(nn.Linear(1, 4, seed=3), nn.Tanh(), nn.Linear(4, 1, seed=4))
    return PDE("tiny", net, ("x",), [0.2], [0.2001], residual=lambda u, X: u.xx + u.value)
"""


def test_prove_backs_a_small_partition_and_refuses_a_big_one(tmp_path):
    tiny, out = tmp_path / "tiny.py", tmp_path / "r.json"
    tiny.write_text(TINY)
    args = ["pinn", str(tiny), "--prove", "--prove-leaves", "64", "--target-ratio", "1000", "--timeout", "20",
            "--json", str(out), "--quiet"]
    assert main(args) == 0
    rep = json.loads(out.read_text())
    pde = rep["parts"][0]
    assert pde["proved_by_obligations"] is True and rep["proved_by_obligations"] is True, pde["prove_reason"]
    assert "obligations proved" in pde["prove_reason"]
    assert main(args + ["--prove-max-boxes", "0"]) == 0
    rep = json.loads(out.read_text())
    assert rep["proved_by_obligations"] is False and "--prove-max-boxes" in rep["parts"][0]["prove_reason"]


def test_prove_cannot_back_a_false_claim(tmp_path):
    """A claim below the sampled maximum is false: the obligation chain must not prove it."""
    import types

    from obligations.cli import prove_property

    from nnlemma.pinn.cli import claim_property, load_problem
    from nnlemma.pinn.problem import part_graph
    from nnlemma.pinn.search import Options, refine
    tiny = tmp_path / "tiny.py"
    tiny.write_text(TINY)
    p = load_problem(str(tiny))
    graph, names = part_graph(p, p.residual)
    res = refine("pde", graph, names, p.lo, p.hi, Options(timeout=10, target_ratio=1000))
    args = types.SimpleNamespace(model="tiny", prove_dir=None, prove_leaves=4, prove_solver="bitwuzla", jobs=1,
                                 quiet=True)
    proved, reason, _ = prove_property(graph, claim_property(res, res.sampled_max / 2), args, 30)
    assert proved is False and reason
