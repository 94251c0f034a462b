"""SMT-LIB text: exact literals for the special values, sharing, and the same meaning as the terms."""

from __future__ import annotations

import numpy as np

from encoders import fp32
from encoders import terms as T
from encoders.smtlib import fp_literal, script, term_text
from nnlemma.kernels import KERNEL_RULES
from nnlemma.kernels.edge import EDGE_F32, NAN_PATTERNS
from solvers.z3_backend import Z3Solver


def test_special_literals():
    assert fp_literal(T.fp_bits(0)) == "(_ +zero 8 24)"
    assert fp_literal(T.fp_bits(0x80000000)) == "(_ -zero 8 24)"
    assert fp_literal(T.fp_bits(0x7F800000)) == "(_ +oo 8 24)"
    assert fp_literal(T.fp_bits(0xFF800000)) == "(_ -oo 8 24)"
    for p in NAN_PATTERNS:
        assert fp_literal(T.fp_bits(p)) == "(_ NaN 8 24)"
    assert fp_literal(T.fp_bits(0x3F800001)) == "(fp #b0 #b01111111 #b00000000000000000000001)"
    assert fp_literal(T.fp_bits(1)) == "(fp #b0 #b00000000 #b00000000000000000000001)"


def test_golden_relu_bound_script():
    x = T.var("x", T.F32)
    f = T.and_(T.fp_geq(x, fp32.const(-1.0)), T.not_(T.fp_leq(fp32.relu(x), fp32.const(2.0))))
    assert script(f, ("relu bound",), logic="QF_FP") == """\
; relu bound
(set-logic QF_FP)
(declare-fun x () (_ FloatingPoint 8 24))
(assert (and (fp.geq x (fp #b1 #b01111111 #b00000000000000000000000)) \
(not (fp.leq (ite (fp.gt x (_ +zero 8 24)) x (ite (fp.isNaN x) (_ NaN 8 24) (_ +zero 8 24))) \
(fp #b0 #b10000000 #b00000000000000000000000)))))
(check-sat)
(exit)
"""


def test_text_grows_linearly_and_shared_subterms_are_defined_once():
    def fold_text(n):
        xs = [T.var(f"x{i}", T.F32) for i in range(n)]
        return script(T.fp_gt(fp32.fold(xs, [fp32.const(0.5)] * n), fp32.const(1.0)))
    assert len(fold_text(400)) < 2.1 * len(fold_text(200))
    assert fold_text(200).count("fp.mul RNE") == 200
    x = T.var("x", T.F32)
    sq = T.fp_mul(x, x)
    text = script(T.fp_gt(T.fp_add(sq, sq), fp32.const(1.0)))
    assert text.count("fp.mul RNE") == 1 and "(define-fun _t0 () (_ FloatingPoint 8 24) (fp.mul RNE x x))" in text


def test_script_means_what_the_terms_mean():
    """Each edge value v: `x = v ∧ relu(x) ≠ kernel_relu(v)` is unsat both as terms and as text."""
    z3s = Z3Solver()
    x = T.var("x", T.F32)
    for v in EDGE_F32:
        want = T.fp_bits(int(KERNEL_RULES["relu"](v).view(np.uint32)))
        f = T.and_(T.eq(x, T.fp_bits(int(v.view(np.uint32)))), T.not_(T.eq(fp32.relu(x), want)))
        assert z3s.check(f).status == "unsat", v
        assert z3s.check_text(script(f)).status == "unsat", v
        g = T.and_(T.eq(x, T.fp_bits(int(v.view(np.uint32)))), T.eq(fp32.relu(x), want))
        assert z3s.check_text(script(g)).status == "sat", v


def test_real_literals():
    assert term_text(T.real(-3)) == "(- 3.0)"
    assert term_text(T.real("1/3")) == "(/ 1.0 3.0)"
    assert term_text(T.real("-5/2")) == "(/ (- 5.0) 2.0)"
