"""The rounding-model library lemmas: well-formed, and wrong formulations are caught.

The proofs themselves are run by ``benchmarks/library_lemmas.py`` (minutes). Here: the lemma set
is well-formed (unique ids, Bool violations, every script parses), and *mutations* that would make
a lemma false are refuted with a counterexample that replays on numpy float32 with exact
rationals — so a formulation that proves a wrong statement (or nothing) would fail these tests.
A few cheap cases are proved outright.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from encoders import terms as T
from obligations import library as L
from obligations.model import Obligation
from solvers.outcome import Outcome
from solvers.z3_backend import Z3Solver

bitwuzla = pytest.importorskip("bitwuzla")
from solvers.text_backends import BitwuzlaSolver  # noqa: E402


def f32(bits: int) -> np.float32:
    return np.array(bits, np.uint32).view(np.float32)[()]


def case(lemma: L.Lemma, name: str) -> Obligation:
    (ob,) = [o for o in lemma.obligations() if o.id == f"{lemma.prefix}/{name}"]
    return ob


@pytest.fixture(scope="module")
def obligations():
    return L.library_lemmas()


# ---- well-formedness -------------------------------------------------------------------------------

def test_ids_unique_and_kinds(obligations):
    checks = L.exactness_checks()
    ids = [o.id for o in obligations] + [c.id for c in checks] + [i for i, _ in L.derived_cases()]
    assert len(ids) == len(set(ids))
    for ob in obligations:
        assert ob.id.startswith("library/") and ob.kind == "library" and ob.logic == "QF_FP"
        assert ob.violation.sort == T.BOOL, ob.id
        assert ob.statement


def test_every_split_lemma_has_a_coverage_obligation():
    for lem in L.lemmas():
        ids = {o.id for o in lem.obligations()}
        if len(lem.cases) + len(lem.derived) > 1:
            assert f"{lem.prefix}/coverage" in ids


def test_derived_cases_name_existing_queries(obligations):
    known = {o.id for o in obligations} | {c.id for c in L.exactness_checks()}
    for ident, d in L.derived_cases():
        assert d.deps and set(d.deps) <= known, ident


def test_required_queries_include_the_dependencies_of_derived_cases():
    req = L.required_queries("library/mul/monotone-a-nonneg")
    assert {"library/mul/monotone-a-nonneg/infinite", "library/mul/monotone-a-nonneg/coverage",
            "library/mul/via-float64/all", "library/mul/via-float64/all/exact-0",
            "library/to_fp/monotone-float64-to-float32/all"} == set(req)
    add = L.required_queries("library/add/relative-error")
    assert "library/add/relative-error/close/exact-0" in add and len(set(add.values())) == len(add)


def test_scripts_parse_in_z3(obligations):
    for ob in obligations:
        out = Z3Solver().check_text(ob.smt2, timeout_s=0.01)
        assert not out.reason.startswith("z3 error"), (ob.id, out.reason)
    for c in L.exactness_checks():
        out = Z3Solver().check_text(c.smt2, timeout_s=0.01)
        assert not out.reason.startswith("z3 error"), (c.id, out.reason)


def test_scripts_parse_in_bitwuzla(obligations):
    """Bitwuzla accepts only Float16/32/64/128: the wide sort must be Float128."""
    bw = bitwuzla
    for text in [o.smt2 for o in obligations] + [c.smt2 for c in L.exactness_checks()]:
        parser = bw.Parser(bw.TermManager(), bw.Options(), "smt2", 2)
        parser.parse(text, True, False)  # raises on a parse error


def test_exact_const():
    assert L.exact_const(1, T.F32).payload == 0x3F800000
    assert L.exact_const(-2.5, T.F64).payload == 0xC004000000000000
    assert L.exact_const(2 ** 24 + 1, T.F64).payload == 0x4170000010000000
    assert L.pow2(-150, L.F128).payload == (16383 - 150) << 112
    with pytest.raises(ValueError):
        L.exact_const(2 ** 24 + 1, T.F32)
    with pytest.raises(ValueError):
        L.exact_const(Fraction(1, 3), T.F64)


# ---- mutations: a wrong lemma is refuted, and the counterexample replays -------------------------

def exact_rel_error_violated(op: str, a: np.float32, b: np.float32, u: Fraction) -> bool:
    with np.errstate(all="ignore"):
        x = {"add": np.add, "sub": np.subtract, "mul": np.multiply}[op](a, b, dtype=np.float32)
    assert np.isfinite(a) and np.isfinite(b) and np.isfinite(x)
    fa, fb = Fraction(float(a)), Fraction(float(b))
    v = {"add": fa + fb, "sub": fa - fb, "mul": fa * fb}[op]
    return abs(Fraction(float(x)) - v) > u * abs(v) + Fraction(1, 2 ** 150)


@pytest.mark.parametrize("op,name", [("add", "close"), ("sub", "close"), ("mul", "normal")])
def test_relative_error_tightened_to_2_25_is_refuted(op, name):
    lem = L.relative_error_mul(u_exp=25) if op == "mul" else L.relative_error_addsub(op, u_exp=25)
    ob = case(lem, name)
    out = BitwuzlaSolver().check(ob.violation, timeout_s=10)
    assert out.status == "sat", out
    a, b = f32(out.model["a"]), f32(out.model["b"])
    assert exact_rel_error_violated(op, a, b, Fraction(1, 2 ** 25)), (a, b)
    assert not exact_rel_error_violated(op, a, b, Fraction(1, 2 ** 24)), (a, b)
    assert L.lemma_holds(ob.replay, out.model) is False
    assert L.lemma_holds(dict(ob.replay, u_exp=24), out.model) is True  # the true lemma holds there


def test_prove_library_reports_a_refuted_mutation():
    lem = L.relative_error_addsub("add", u_exp=25)
    rows = L.prove_library(BitwuzlaSolver, 10, obligations=[case(lem, "close")], checks=[])
    assert [r["status"] for r in rows] == ["refuted"]
    assert rows[0]["model"].keys() == {"a", "b"}


def test_monotone_add_without_nan_exclusions_is_refuted():
    lem = L.monotone("add", 0, "increasing", guard_nan=False)
    (ob,) = lem.obligations()
    out = BitwuzlaSolver().check(ob.violation, timeout_s=10)
    assert out.status == "sat", out
    x1, x2, y = (f32(out.model[k]) for k in ("x1", "x2", "y"))
    with np.errstate(all="ignore"):
        r1, r2 = np.add(x1, y, dtype=np.float32), np.add(x2, y, dtype=np.float32)
    assert x1 <= x2 and not r1 <= r2 and (np.isnan(r1) or np.isnan(r2))
    assert L.lemma_holds(ob.replay, out.model) is False


def test_monotone_sub_in_second_argument_is_not_increasing():
    (ob, *_) = L.monotone("sub", 1, "increasing").obligations()
    out = BitwuzlaSolver().check(ob.violation, timeout_s=10)
    assert out.status == "sat" and L.lemma_holds(ob.replay, out.model) is False


def test_monotone_mul_without_sign_condition_is_refuted():
    (ob,) = L.monotone("mul", 0, "increasing").obligations()
    out = BitwuzlaSolver().check(ob.violation, timeout_s=10)
    assert out.status == "sat" and L.lemma_holds(ob.replay, out.model) is False
    assert f32(out.model["y"]) < 0


def test_exactness_checks_have_teeth():
    """fl64(a + b) is not exact for every pair of float32 (only for 'close' ones)."""
    a64, b64 = L.widen(L.A, T.F64), L.widen(L.B, T.F64)
    fin = T.and_(T.is_finite(L.A), T.is_finite(L.B))
    text = L._exactness_script("mutant", fin, T.fp_add(a64, b64))
    assert BitwuzlaSolver().check_text(text, timeout_s=10).status == "sat"


def test_coverage_catches_a_missing_case():
    lem = L.relative_error_addsub("add")
    partial = L.Lemma(lem.op, lem.name, lem.statement, lem.pre, lem.cases[:2], lem.replay)
    cov = [o for o in partial.obligations() if o.id.endswith("/coverage")][0]
    assert Z3Solver().check(cov.violation, timeout_s=10).status == "sat"


# ---- easy cases proved here ---------------------------------------------------------------------

EASY_Z3 = ["library/add/relative-error/far-a", "library/add/relative-error/coverage",
           "library/mul/relative-error/coverage", "library/div/relative-error/coverage",
           "library/add/monotone-a/x1+x2-y+", "library/mul/monotone-a-nonneg/infinite"]
EASY_BITWUZLA = ["library/sub/relative-error/far-b", "library/mul/relative-error/tiny-zero",
                 "library/div/relative-error/tiny-zero", "library/mul/via-float64/all",
                 "library/to_fp/monotone-float64-to-float32/all",
                 "library/div/monotone-a-pos/x1+x2+.far"]


@pytest.mark.parametrize("ident", EASY_Z3)
def test_easy_case_proved_by_z3(obligations, ident):
    (ob,) = [o for o in obligations if o.id == ident]
    assert Z3Solver().check(ob.violation, timeout_s=10).status == "unsat"


@pytest.mark.parametrize("ident", EASY_BITWUZLA)
def test_easy_case_proved_by_bitwuzla(obligations, ident):
    (ob,) = [o for o in obligations if o.id == ident]
    assert BitwuzlaSolver().check(ob.violation, timeout_s=10).status == "unsat"


def test_an_exactness_check_proved():
    (c,) = [c for c in L.exactness_checks() if c.id == "library/mul/via-float64/all/exact-0"]
    assert BitwuzlaSolver().check_text(c.smt2, timeout_s=10).status == "unsat"


# ---- bookkeeping of prove_library (no solver) ------------------------------------------------------

class FakeSolver:
    name, version = "fake", "fake-1"

    def __init__(self, status):
        self.status = status

    def check(self, formula, timeout_s):
        return Outcome(self.status, 0.5, self.name, reason="" if self.status != "unknown" else "timeout")

    check_text = check


@pytest.mark.parametrize("status,expect", [("unsat", "proved"), ("unknown", "unknown")])
def test_derived_cases_follow_their_dependencies(status, expect):
    rows = L.prove_library(lambda: FakeSolver(status), 1.0)
    derived = [r for r in rows if r["kind"] == "derived"]
    assert len(derived) == 4 and {r["status"] for r in derived} == {expect}
    assert all(r["status"] == expect for r in rows)
    assert {r["kind"] for r in rows} == {"case", "coverage", "exactness", "derived"}
    if status == "unknown":
        assert all(r["reason"] for r in rows)


@pytest.mark.slow
def test_mul_relative_error_proved_by_bitwuzla():
    for ob in L.relative_error_mul().obligations():
        assert BitwuzlaSolver().check(ob.violation, timeout_s=60).status == "unsat", ob.id
