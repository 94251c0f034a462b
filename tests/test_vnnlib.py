"""VNN-LIB parsing: exact rationals, inward float32 rounding, DNF cases, clear errors."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnlemma.errors import SpecError
from nnlemma.vnnlib import f32_at_least, f32_at_most, load, parse

HEAD = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
BOX = "(assert (>= X_0 -1))(assert (<= X_0 1))(assert (>= X_1 0.1))(assert (<= X_1 0.2))\n"


def test_box_and_output_atoms_are_exact():
    p = parse(HEAD + BOX + "(assert (>= Y_0 3.991125645861615))")
    (case,) = p.cases
    assert case.box.lo == (Fraction(-1), Fraction(1, 10)) and case.box.hi == (Fraction(1), Fraction(1, 5))
    (conj,) = case.unsafe
    (atom,) = conj
    assert atom.const == Fraction("3.991125645861615") and atom.coeffs == ((0, Fraction(-1)),)
    t = np.float32(3.991125645861615)  # the float32 nearest the threshold is below it
    assert Fraction(float(t)) < Fraction("3.991125645861615")
    assert case.unsafe_at(np.array([t, 0], np.float32)) is False
    assert case.unsafe_at(np.array([np.nextafter(t, np.float32(9)), 0], np.float32)) is True


def test_float32_region_rounds_inward():
    lo, hi = parse(HEAD + BOX + "(assert (<= Y_0 Y_1))").cases[0].box.float32_bounds()
    assert Fraction(float(lo[1])) >= Fraction(1, 10) > Fraction(float(np.nextafter(lo[1], np.float32(0))))
    assert Fraction(float(hi[1])) <= Fraction(1, 5) < Fraction(float(np.nextafter(hi[1], np.float32(1))))


def test_strict_bounds_exclude_the_endpoint():
    p = parse(HEAD + "(assert (> X_0 0))(assert (< X_0 1))(assert (>= X_1 0))(assert (<= X_1 0))"
              "(assert (< Y_0 0))")
    lo, hi = p.cases[0].box.float32_bounds()
    assert lo[0] == np.float32(1e-45) and hi[0] == np.nextafter(np.float32(1), np.float32(0))
    assert lo[1] == 0 and hi[1] == 0
    assert p.cases[0].unsafe_at(np.array([0, 0], np.float32)) is False


def test_empty_box_has_no_float32_region():
    p = parse(HEAD + "(assert (>= X_0 0.1))(assert (<= X_0 0.1))(assert (>= X_1 0))(assert (<= X_1 1))"
              "(assert (<= Y_0 0))")
    assert p.cases[0].box.float32_bounds() is None  # 0.1 is not a float32


def test_disjunctive_input_region_and_outputs():
    text = HEAD + ("(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1))"
                   "            (and (>= X_0 -1) (<= X_0 0) (>= X_1 0) (<= X_1 1))))"
                   "(assert (or (and (<= Y_1 Y_0)) (and (<= Y_0 -2) (>= Y_1 3))))")
    p = parse(text)
    assert len(p.cases) == 2 and all(len(c.unsafe) == 2 for c in p.cases)
    assert p.cases[0].unsafe_at(np.array([-3, 4], np.float32)) is True
    assert p.cases[0].unsafe_at(np.array([-3, 2], np.float32)) is False
    assert p.cases[0].unsafe_at(np.array([np.nan, 2], np.float32)) is None


def test_linear_terms():
    p = parse(HEAD + BOX + "(assert (<= (+ Y_0 (* 2 (- Y_1 1)) (- 0.5)) (* 3 Y_0)))")
    (atom,) = p.cases[0].unsafe[0]
    # Y0 + 2Y1 - 2 - 0.5 - 3Y0 <= 0
    assert dict(atom.coeffs) == {0: Fraction(-2), 1: Fraction(2)} and atom.const == Fraction(-5, 2)


@pytest.mark.parametrize("text,match", [
    (HEAD + BOX + "(assert (<= Y_0 Y_1)", r":6: missing '\)'"),
    (HEAD + BOX + "(assert (<= Y_0 Y_2))", "Y_2 is not declared"),
    (HEAD + BOX + "(assert (<= (* Y_0 Y_1) 0))", "nonlinear"),
    (HEAD + BOX + "(assert (<= X_0 Y_1))", "mixes inputs X and outputs Y"),
    (HEAD + "(assert (<= X_0 1))(assert (<= Y_0 0))", "X_0, X_1 lack a lower or upper bound"),
    (HEAD + BOX + "(assert (not (<= Y_0 0)))", "unsupported formula operator 'not'"),
    (HEAD + "(declare-const X_0 Real)", "declared twice"),
    (HEAD + "(declare-fun f () Real)", "unsupported command 'declare-fun'"),
    ("(declare-const Z Real)", "must be named X_i or Y_j"),
    (HEAD + BOX + "(assert (<= Y_0 abc))", "unknown symbol 'abc'"),
    (HEAD + BOX + ")", "unbalanced"),
])
def test_malformed_files(text, match):
    with pytest.raises(SpecError, match=match):
        parse(text, "p.vnnlib")


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such property file"):
        load(tmp_path / "nope.vnnlib")


@given(st.fractions(min_value=-1e6, max_value=1e6, max_denominator=10**12), st.booleans())
def test_directed_float32_rounding_is_tightest(q, strict):
    lo = f32_at_least(q, strict)
    hi = f32_at_most(q, strict)
    fl, fh = Fraction(float(lo)), Fraction(float(hi))
    assert (fl > q if strict else fl >= q) and (fh < q if strict else fh <= q)
    below = Fraction(float(np.nextafter(lo, np.float32(-np.inf))))
    above = Fraction(float(np.nextafter(hi, np.float32(np.inf))))
    assert not (below > q if strict else below >= q)
    assert not (above < q if strict else above <= q)


@pytest.mark.shared_data
def test_all_vnncomp_properties_parse(shared_benchmarks):
    acas = shared_benchmarks / "vnncomp2021" / "acasxu"
    counts = {p.name: len(load(p).cases) for p in sorted(acas.glob("prop_*.vnnlib"))}
    assert len(counts) == 10 and counts["prop_6.vnnlib"] == 2
    assert all(n == 1 for k, n in counts.items() if k != "prop_6.vnnlib")
    for p in sorted((shared_benchmarks / "vnncomp2021" / "mnistfc").glob("prop_*.vnnlib")):
        prop = load(p)
        assert prop.n_inputs == 784 and prop.n_outputs == 10 and len(prop.cases[0].unsafe) == 9
