"""pysmt backend for the real-arithmetic obligations (QF_LRA: composition, relaxation).

pysmt has no FloatingPoint theory, so this backend takes only scripts without FP sorts; it parses
the same SMT-LIB text the obligation files hold and hands it to a pysmt solver (``z3`` or
``cvc5`` here; yices and MathSAT when installed), which makes the real-arithmetic lemmas portable
to solvers with no FP support at all. As with every backend, only the solver's own ``unsat`` is
``unsat``; pysmt's unknown, a parse error or any exception is ``unknown``. Each call uses a fresh
pysmt environment (pysmt's global environment is never touched).
"""

from __future__ import annotations

import time
from fractions import Fraction
from io import StringIO

from .outcome import Outcome

# per-call time limit, in each solver's own option
_TIMEOUT = {"z3": lambda s: {"timeout": max(1, int(s * 1000))},
            "cvc5": lambda s: {"tlimit-per": str(max(1, int(s * 1000)))}}


class PysmtSolver:
    def __init__(self, backend: str = "z3"):
        if backend not in _TIMEOUT:
            raise ValueError(f"pysmt backend {backend!r}: use one of {sorted(_TIMEOUT)}")
        self.backend = backend
        self.name = f"pysmt-{backend}"

    @property
    def version(self) -> str:
        import pysmt
        return f"pysmt-{pysmt.__version__}-{self.backend}"

    def check(self, formula, timeout_s: float = 10.0) -> Outcome:
        from encoders.smtlib import script
        return self.check_text(script(formula, logic="QF_LRA"), timeout_s)

    def check_text(self, smt2: str, timeout_s: float = 10.0) -> Outcome:
        t0 = time.perf_counter()
        if "FloatingPoint" in smt2:
            return Outcome("unknown", 0.0, self.name, reason="pysmt has no FloatingPoint theory")
        try:
            from pysmt.environment import Environment
            from pysmt.smtlib.parser import SmtLibParser
            env = Environment()
            formula = SmtLibParser(environment=env).get_script(StringIO(smt2)).get_last_formula()
            with env.factory.Solver(name=self.backend, logic="QF_LRA",
                                    solver_options=_TIMEOUT[self.backend](timeout_s)) as s:
                s.add_assertion(formula)
                sat = s.solve()
                secs = time.perf_counter() - t0
                if not sat:
                    return Outcome("unsat", secs, self.name)
                model = {}
                for v in formula.get_free_variables():
                    val = s.get_value(v)
                    if val.is_real_constant():
                        model[v.symbol_name()] = Fraction(val.constant_value())
                    elif val.is_bool_constant():
                        model[v.symbol_name()] = bool(val.constant_value())
                return Outcome("sat", secs, self.name, model)
        except Exception as exc:  # unknown result, parse error, solver crash: never a proof
            return Outcome("unknown", time.perf_counter() - t0, self.name,
                           reason=f"pysmt: {type(exc).__name__}: {exc}")
