"""Z3 backend: terms become Z3 expressions in an explicit context (one per backend object).

Rounding mode and sort are always passed explicitly; FP constants are built from their bit
patterns, so −0 and NaN are exact. A timeout, Z3's ``unknown`` or any exception raised by Z3 is
reported as ``unknown`` with the reason; only Z3's ``unsat`` is ever ``unsat``.
"""

from __future__ import annotations

import time
from fractions import Fraction

import z3

from encoders.terms import BOOL, REAL, Sort, Term, free_vars, is_nan_bits, nan_bits, postorder

from .outcome import Outcome

_BIN_FP = {"fp.add": z3.fpAdd, "fp.sub": z3.fpSub, "fp.mul": z3.fpMul, "fp.div": z3.fpDiv}
_FP_PRED = {"fp.lt": z3.fpLT, "fp.leq": z3.fpLEQ, "fp.gt": z3.fpGT, "fp.geq": z3.fpGEQ,
            "fp.eq": z3.fpEQ}
_FP_TEST = {"fp.isNaN": z3.fpIsNaN, "fp.isInfinite": z3.fpIsInf, "fp.isZero": z3.fpIsZero,
            "fp.isNegative": z3.fpIsNegative, "fp.isSubnormal": z3.fpIsSubnormal}


class Z3Solver:
    name = "z3"

    def __init__(self):
        self.ctx = z3.Context()
        self._rne = z3.RNE(self.ctx)
        self._sorts: dict = {}

    @property
    def version(self) -> str:
        return "z3-" + z3.get_version_string()

    def _sort(self, s):
        if s not in self._sorts:
            if s.is_fp:
                self._sorts[s] = z3.FPSort(s.eb, s.sb, self.ctx)
            else:
                self._sorts[s] = {"Bool": z3.BoolSort, "Real": z3.RealSort}[s.kind](self.ctx)
        return self._sorts[s]

    def translate(self, *roots: Term) -> list:
        """Z3 expressions for the terms (shared subterms translated once)."""
        ctx, rne = self.ctx, self._rne
        out: dict[Term, object] = {}
        for t in postorder(*roots):
            a = [out[x] for x in t.args]
            op = t.op
            if op == "var":
                e = z3.Const(t.payload, self._sort(t.sort))
            elif op == "fp.const":
                e = z3.simplify(z3.fpBVToFP(z3.BitVecVal(t.payload, t.sort.width, ctx),
                                            self._sort(t.sort), ctx=ctx))
            elif op == "real.const":
                e = z3.RealVal(f"{t.payload.numerator}/{t.payload.denominator}", ctx)
            elif op == "bool.const":
                e = z3.BoolVal(t.payload, ctx)
            elif op in _BIN_FP:
                e = _BIN_FP[op](rne, a[0], a[1], ctx=ctx)
            elif op == "fp.sqrt":
                e = z3.fpSqrt(rne, a[0], ctx=ctx)
            elif op == "fp.neg":
                e = z3.fpNeg(a[0], ctx=ctx)
            elif op == "fp.abs":
                e = z3.fpAbs(a[0], ctx=ctx)
            elif op == "to_fp":
                e = z3.fpFPToFP(rne, a[0], self._sort(t.sort), ctx=ctx)
            elif op == "fp.to_real":
                e = z3.fpToReal(a[0], ctx=ctx)
            elif op in _FP_PRED:
                e = _FP_PRED[op](a[0], a[1], ctx=ctx)
            elif op in _FP_TEST:
                e = _FP_TEST[op](a[0], ctx=ctx)
            elif op == "+":
                e = z3.Sum(*a)
            elif op == "*":
                e = z3.Product(*a)
            elif op == "-":
                e = -a[0] if len(a) == 1 else a[0] - a[1]
            elif op in ("<=", "<", ">="):
                e = {"<=": a[0] <= a[1], "<": a[0] < a[1], ">=": a[0] >= a[1]}[op]
            elif op == "and":
                e = z3.And(*a)
            elif op == "or":
                e = z3.Or(*a)
            elif op == "not":
                e = z3.Not(a[0])
            elif op == "=>":
                e = z3.Implies(a[0], a[1])
            elif op == "=":
                e = a[0] == a[1]
            elif op == "ite":
                e = z3.If(a[0], a[1], a[2], ctx=ctx)
            else:
                raise ValueError(f"z3 backend: no translation for term op {op!r}")
            out[t] = e
        return [out[r] for r in roots]

    def value_bits(self, e, sort) -> int:
        """The IEEE bit pattern of a ground FP expression (NaN as the canonical pattern)."""
        v = z3.simplify(e)
        if z3.is_true(z3.simplify(z3.fpIsNaN(v, ctx=self.ctx))):
            return nan_bits(sort)
        b = z3.simplify(z3.fpToIEEEBV(v, ctx=self.ctx))
        if not z3.is_bv_value(b):
            raise ValueError(f"z3 did not reduce {e} to a constant")
        bits = b.as_long()
        assert not is_nan_bits(bits, sort)
        return bits

    def evaluate(self, t: Term) -> int | Fraction | bool:
        """The value of a ground term, computed by Z3's simplifier (used to test the encoders)."""
        (e,) = self.translate(t)
        return self._value(e, t.sort)

    def _value(self, e, sort):
        if sort.is_fp:
            return self.value_bits(e, sort)
        v = z3.simplify(e)
        if sort.kind == "Bool":
            if not (z3.is_true(v) or z3.is_false(v)):
                raise ValueError(f"z3 did not reduce {e} to a Boolean constant")
            return z3.is_true(v)
        return Fraction(v.numerator_as_long(), v.denominator_as_long())

    def _run(self, solver, assertion, read_model) -> tuple:
        """Check one assertion; ``(status, model, reason)``. Only Z3's ``unsat`` is ``unsat``; a
        timeout, ``unknown`` or any Z3 exception is ``unknown`` (a solver crash is not a proof)."""
        try:
            solver.add(assertion())
            r = solver.check()
            if r == z3.unsat:
                return "unsat", {}, ""
            if r == z3.sat:
                return "sat", read_model(solver.model()), ""
            return "unknown", {}, solver.reason_unknown() or "unknown"
        except z3.Z3Exception as exc:
            return "unknown", {}, f"z3 error: {exc}"

    def _solver(self, logic: str | None, timeout_s: float):
        s = z3.SolverFor(logic, ctx=self.ctx) if logic else z3.Solver(ctx=self.ctx)
        s.set("timeout", max(1, int(timeout_s * 1000)))
        return s

    def check(self, formula: Term, timeout_s: float = 10.0) -> Outcome:
        """Is ``formula`` satisfiable? ``unsat`` only when Z3 says so within the time limit."""
        t0 = time.perf_counter()

        def model(m) -> dict:
            return {v.payload: self._value(m.eval(self.translate(v)[0], model_completion=True), v.sort)
                    for v in free_vars(formula)}
        solver = self._solver("QF_FP" if _pure_fp(formula) else None, timeout_s)
        status, values, reason = self._run(solver, lambda: self.translate(formula)[0], model)
        return Outcome(status, time.perf_counter() - t0, self.name, values, reason)

    def check_text(self, smt2: str, timeout_s: float = 10.0) -> Outcome:
        """Run an SMT-LIB script's assertions (the exported obligation files). On ``sat`` the
        model gives every declared constant of the script (FP as bit patterns)."""
        t0 = time.perf_counter()

        def model(m) -> dict:
            out = {}
            for d in m.decls():
                if d.arity() == 0:
                    srt, v = d.range(), m.get_interp(d)
                    if z3.is_fp_sort(srt):
                        out[d.name()] = self.value_bits(v, Sort("FP", srt.ebits(), srt.sbits()))
                    elif z3.is_real(v) or z3.is_bool(v):
                        out[d.name()] = self._value(v, REAL if z3.is_real(v) else BOOL)
            return out
        status, values, reason = self._run(self._solver(None, timeout_s),
                                           lambda: z3.parse_smt2_string(smt2, ctx=self.ctx), model)
        return Outcome(status, time.perf_counter() - t0, self.name, values, reason)


def _pure_fp(formula: Term) -> bool:
    return all(t.sort.kind != "Real" for t in postorder(formula))
