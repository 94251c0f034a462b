"""Bitwuzla and cvc5 backends: each runs the SMT-LIB2 text of an obligation through the solver's
own Python parser, so a second and third solver check exactly the script a third party would run.

The script's commands are executed up to (not including) ``check-sat``/``exit``; satisfiability is
then asked through the API with a per-call time limit, on a fresh solver instance every time.
Only the solver's own ``unsat`` is ever ``unsat``. A timeout, the solver's ``unknown``, a parse
error or any exception is ``unknown`` with the reason, and so is a ``sat`` whose model cannot be
read (a model is part of the answer). ``check``/``check_text`` never raise for a solver's errors.

Models map each declared constant to its value: FloatingPoint as the IEEE bit pattern (every NaN
as the canonical pattern), Real as a ``Fraction``, Bool as a ``bool``. Bitwuzla has no Real
arithmetic, so a formula with a Real subterm is ``unknown`` for it.
"""

from __future__ import annotations

import time
from fractions import Fraction

from encoders.smtlib import script
from encoders.terms import Sort, Term, free_vars, is_nan_bits, nan_bits, postorder

from .outcome import Outcome

Value = int | Fraction | bool


def pure_fp(formula: Term) -> bool:
    """No Real-sorted subterm (the same test as the Z3 backend): such scripts use ``QF_FP``."""
    return all(t.sort.kind != "Real" for t in postorder(formula))


def fp_value(bits: str, eb: int, sb: int) -> int:
    """The bit pattern from a solver's binary string (sign, exponent, significand in order)."""
    if len(bits) != eb + sb or set(bits) - {"0", "1"}:
        raise ValueError(f"malformed FloatingPoint value {bits!r} for sort ({eb}, {sb})")
    pattern, sort = int(bits, 2), Sort("FP", eb, sb)
    return nan_bits(sort) if is_nan_bits(pattern, sort) else pattern


class _TextSolver:
    """Shared driver: subclasses implement ``_solve(smt2, timeout_s) -> (status, model, reason)``."""
    name = ""

    def check(self, formula: Term, timeout_s: float = 10.0) -> Outcome:
        """Is ``formula`` satisfiable? The model (on ``sat``) covers every free variable."""
        t0 = time.perf_counter()
        try:
            refusal = self._refuse(formula)
            if refusal:
                return Outcome("unknown", time.perf_counter() - t0, self.name, reason=refusal)
            text = script(formula, logic="QF_FP" if pure_fp(formula) else "ALL")
        except Exception as exc:  # an encoder bug is not a solver answer either
            return Outcome("unknown", time.perf_counter() - t0, self.name,
                           reason=f"could not build the script: {exc}")
        out = self.check_text(text, timeout_s)
        if out.status == "sat":
            missing = [v.payload for v in free_vars(formula) if v.payload not in out.model]
            if missing:
                return Outcome("unknown", out.seconds, self.name,
                               reason=f"sat, but the model lacks {', '.join(missing)}")
            out.model = {v.payload: out.model[v.payload] for v in free_vars(formula)}
        return out

    def check_text(self, smt2: str, timeout_s: float = 10.0) -> Outcome:
        """Run an SMT-LIB script's assertions; ``sat`` carries every readable declared constant."""
        t0 = time.perf_counter()
        try:
            status, model, reason = self._solve(smt2, timeout_s)
        except Exception as exc:  # a crash is never a proof
            status, model, reason = "unknown", {}, f"{self.name} error: {exc}"
        return Outcome(status, time.perf_counter() - t0, self.name, model, reason)

    def _refuse(self, formula: Term) -> str:
        return ""

    def _solve(self, smt2: str, timeout_s: float) -> tuple[str, dict[str, Value], str]:
        raise NotImplementedError


class BitwuzlaSolver(_TextSolver):
    """``bitwuzla.Parser`` parses (``parse_only``) into its own Bitwuzla instance; then
    ``check_sat`` and ``get_value`` per declared constant."""
    name = "bitwuzla"

    @property
    def version(self) -> str:
        import bitwuzla
        return "bitwuzla-" + bitwuzla.version()

    def _refuse(self, formula: Term) -> str:
        return "" if pure_fp(formula) else "bitwuzla has no Real arithmetic (formula has Real terms)"

    def _solve(self, smt2, timeout_s):
        import bitwuzla as bw
        tm, opts = bw.TermManager(), bw.Options()
        opts.set(bw.Option.PRODUCE_MODELS, True)
        opts.set(bw.Option.TIME_LIMIT_PER, max(1, int(timeout_s * 1000)))
        parser = bw.Parser(tm, opts, "smt2", 2)
        parser.parse(smt2, True, False)  # parse_only: assert, but do not run check-sat
        solver = parser.bitwuzla()
        result = solver.check_sat()
        if result == bw.Result.UNSAT:
            return "unsat", {}, ""
        if result != bw.Result.SAT:
            return "unknown", {}, f"bitwuzla: {result} (time limit {timeout_s:g} s)"
        model = {}
        for c in parser.get_declared_funs():
            sort = c.sort()
            if sort.is_fp():
                v = solver.get_value(c).value(2, False)  # one IEEE binary string
                model[c.symbol()] = fp_value(v, sort.fp_exp_size(), sort.fp_sig_size())
            elif sort.is_bool():
                model[c.symbol()] = bool(solver.get_value(c).value())
        return "sat", model, ""


class Cvc5Solver(_TextSolver):
    """``cvc5.InputParser`` yields commands that are invoked on a fresh ``cvc5.Solver`` (except
    ``check-sat``/``exit``); then ``checkSat`` and ``getValue`` per declared term."""
    name = "cvc5"

    @property
    def version(self) -> str:
        import cvc5
        v = cvc5.Solver().getVersion()
        return "cvc5-" + (v.decode() if isinstance(v, bytes) else str(v))

    def _solve(self, smt2, timeout_s):
        import cvc5
        tm = cvc5.TermManager()
        solver = cvc5.Solver(tm)
        solver.setOption("produce-models", "true")
        solver.setOption("tlimit-per", str(max(1, int(timeout_s * 1000))))
        symbols = cvc5.SymbolManager(tm)
        parser = cvc5.InputParser(solver, symbols)
        parser.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, smt2, "obligation")
        while True:
            cmd = parser.nextCommand()
            if cmd.isNull():
                break
            if cmd.getCommandName() not in ("check-sat", "exit"):
                cmd.invoke(solver, symbols)
        result = solver.checkSat()
        if result.isUnsat():
            return "unsat", {}, ""
        if not result.isSat():
            return "unknown", {}, f"cvc5: {result} (time limit {timeout_s:g} s)"
        model = {}
        for c in symbols.getDeclaredTerms():
            sort, v = c.getSort(), solver.getValue(c)
            if sort.isFloatingPoint():
                eb, sb, bv = v.getFloatingPointValue()
                model[c.getSymbol()] = fp_value(bv.getBitVectorValue(2), eb, sb)
            elif sort.isReal():
                model[c.getSymbol()] = Fraction(v.getRealValue())
            elif sort.isBoolean():
                model[c.getSymbol()] = v.getBooleanValue()
        return "sat", model, ""


TEXT_BACKENDS = {"bitwuzla": BitwuzlaSolver, "cvc5": Cvc5Solver}
