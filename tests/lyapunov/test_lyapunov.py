"""Lyapunov checks on small systems: verdicts per condition, replayed counterexamples, exact
coverage of the region, certificates re-checked (and tampering caught), the CLI's errors."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nnlemma.cli import main
from nnlemma.errors import InputError
from nnlemma.interpret import run
from nnlemma.lyapunov import check_system, loop_graph
from nnlemma.lyapunov.check import Cell, bisect, region_cells, to_float32_cell
from nnlemma.lyapunov.system import DEC_OUT, V_OUT
from nnlemma.verify.boxes import enumerate_points

sys.path.insert(0, str(Path(__file__).parent))
import systems  # noqa: E402

F32 = np.float32
SYSTEM_FILE = str(Path(__file__).parent / "systems.py")


def by_name(rep):
    return {c["name"]: c for c in rep["conditions"]}


def test_discrete_system_verified():
    rep = check_system(systems.discrete(), cell_timeout=30)
    c = by_name(rep)
    assert rep["verified"] is True and rep["rho"] == 0.9
    assert all(c[n]["verdict"] is True for n in ("v_eq_zero", "positivity", "decrease", "invariance"))
    assert c["decrease"]["certified_volume_fraction"] == 1.0 and rep["counterexamples"] == []
    assert "reach the hole after finitely many steps" in rep["guarantee"] and "float32" in rep["guarantee"]
    assert "not proved" in rep["guarantee"]


def test_unstable_system_refuted_with_replayed_counterexample():
    s = systems.discrete(a00=1.1)
    rep = check_system(s, cell_timeout=30)
    c = by_name(rep)
    assert rep["verified"] is False and c["decrease"]["verdict"] is False
    cx = c["decrease"]["counterexamples"][0]
    y = run(loop_graph(s), np.array([cx["x"]], F32))[0].reshape(-1)
    assert y[V_OUT] <= F32(0.9) and y[DEC_OUT] >= 0  # the kernel itself violates the condition there
    assert "nothing is certified" in rep["guarantee"]


def test_continuous_system_verified():
    rep = check_system(systems.continuous(), cell_timeout=30)
    c = by_name(rep)
    assert rep["verified"] is True, rep["conditions"]
    assert c["sublevel_in_box"]["verdict"] is True and c["decrease"]["verdict"] is True


def test_real_semantics():
    rep = check_system(systems.discrete(), cell_timeout=30, semantics="real")
    assert rep["verified"] is True and rep["semantics"] == "real" and "exact real arithmetic" in rep["guarantee"]
    rep = check_system(systems.discrete(a00=1.1), cell_timeout=30, semantics="real")
    cx = by_name(rep)["decrease"]["counterexamples"][0]
    assert rep["verified"] is False and cx["replayed"] == "exact rationals"


def test_undecided_cells_give_null_and_a_volume_fraction():
    rep = check_system(systems.discrete(), cell_timeout=1e-9, max_depth=0)
    c = by_name(rep)
    assert rep["verified"] is None and c["decrease"]["verdict"] is None
    assert 0 <= c["decrease"]["certified_volume_fraction"] < 1


def test_find_rho():
    rep = check_system(systems.discrete(rho=None), find_rho=True, rho_steps=3, cell_timeout=30)
    assert rep["verified"] is True and rep["rho"] is not None and rep["rho"] > 0
    assert rep["rho_search"][0]["rho"] >= rep["rho"]


def _inside_region(p, s):
    inside_box = all(a <= v <= b for v, a, b in zip(p, s.lo, s.hi))
    in_hole = all(abs(float(v) - e) < h for v, e, h in zip(p, s.x_eq, s.hole))
    return inside_box and not in_hole


def test_region_cells_are_exactly_the_region():
    s = systems.discrete()
    cells = [to_float32_cell(c) for c in region_cells(s)]
    h = F32(0.05)
    edge = [F32(-1), F32(1), h, -h, np.nextafter(h, F32(0)), np.nextafter(h, F32(1)), F32(0), F32(-0.0),
            np.nextafter(-h, F32(0)), np.nextafter(-h, F32(-1))]
    rng = np.random.default_rng(0)
    pts = [(a, b) for a in edge for b in edge] + [tuple(p) for p in rng.uniform(-1, 1, (2000, 2)).astype(F32)]
    for p in pts:
        hits = sum(all(float(c.lo[i]) <= p[i] <= float(c.hi[i]) for i in range(2)) for c in cells)
        assert (hits >= 1) == _inside_region(p, s), p


def test_bisection_partitions_float32_points_exactly():
    one = F32(1)
    hi = one
    for _ in range(12):
        hi = np.nextafter(hi, F32(2))
    cell = Cell([Fraction(1), Fraction(-1)], [Fraction(float(hi)), Fraction(float(np.nextafter(F32(-1), F32(0))))])
    left, right = bisect(cell, "float32")
    def pts(c):
        return {tuple(p) for p in enumerate_points(np.array([float(v) for v in c.lo], F32),
                                                   np.array([float(v) for v in c.hi], F32))}
    assert pts(left) | pts(right) == pts(cell) and not (pts(left) & pts(right))
    rl, rr = bisect(cell, "real")
    assert rl.hi[0] == rr.lo[0]  # real cells share the split point: no real point is lost


def test_cli_json_plot_certificate_and_check(tmp_path, capsys):
    out, png, cert = tmp_path / "r.json", tmp_path / "p.png", tmp_path / "c.json"
    assert main(["lyapunov", SYSTEM_FILE, "--json", str(out), "--plot", str(png), "--certificate", str(cert),
                 "--quiet"]) == 0
    rep = json.loads(out.read_text())
    assert rep["verified"] is True and {"rho", "conditions", "counterexamples"} <= set(rep)
    assert png.stat().st_size > 0
    assert main(["check", SYSTEM_FILE, str(cert)]) == 0
    assert "valid" in capsys.readouterr().out
    c = json.loads(cert.read_text())
    s = next(x for x in c["searches"] if x["name"] == "decrease+invariance")
    s["leaves"] = s["leaves"][1:]                       # one region cell uncovered
    s["certificate"]["cases"] = s["certificate"]["cases"][1:]
    cert.write_text(json.dumps(c))
    assert main(["check", SYSTEM_FILE, str(cert)]) == 1
    c = json.loads((tmp_path / "c.json").read_text())
    c["rho"] = (1.5).hex()
    cert.write_text(json.dumps(c))
    assert main(["check", SYSTEM_FILE, str(cert)]) == 1


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "nosys.py"
    bad.write_text("x = 1\n")
    assert main(["lyapunov", str(bad)]) == 2
    wrong = tmp_path / "wrong.py"
    wrong.write_text("def system():\n    return 3\n")
    assert main(["lyapunov", str(wrong)]) == 2
    assert main(["lyapunov", str(tmp_path / "missing.txt")]) == 2
    assert main(["lyapunov", SYSTEM_FILE, "--json", str(tmp_path / "no" / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "defines no system()" in err and "not nnlemma.lyapunov.System" in err



@pytest.mark.parametrize("c, norm, verdict", [(0.5, "1", True), (0.9, "inf", True), (1.0, "inf", False)])
def test_positivity_with_a_norm_bound(c, norm, verdict):
    """V = |x|_1 (float32 sum): >= 0.5|x|_1 and >= 0.9|x|_inf hold; >= |x|_inf fails where x has one
    non-zero coordinate (V = |x|_inf exactly, and the condition is strict)."""
    s = replace(systems.discrete(), positivity_c=c, positivity_norm=norm)
    rep = check_system(s, cell_timeout=20)
    pos = by_name(rep)["positivity"]
    assert pos["verdict"] is verdict
    if verdict:
        assert f"V(x) > {c} * |x - x*|_{norm}" in rep["guarantee"]
        return
    x = np.array([pos["counterexamples"][0]["x"]], F32)
    y = run(loop_graph(s), x)[0].reshape(-1)
    assert np.array_equal(y[s.state_out:], x[0])                  # the state copy is exact
    assert Fraction(float(y[V_OUT])) <= Fraction(c) * max(abs(Fraction(float(v))) for v in x[0])


def test_norm_bound_arguments_are_checked():
    with pytest.raises(InputError):
        replace(systems.discrete(), positivity_c=-1.0)
    with pytest.raises(InputError):
        replace(systems.discrete(), positivity_c=1.0, positivity_norm="2")
