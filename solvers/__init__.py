"""Discharge: the only package that imports a solver.

``z3_backend`` translates terms for Z3 (the default); ``text_backends`` runs Bitwuzla and cvc5 on
the SMT-LIB text. Every backend returns an :class:`~solvers.outcome.Outcome` whose status is
``unsat``, ``sat`` or ``unknown``; a timeout, a solver ``unknown`` or a crash is ``unknown`` and
never counts as proved.
"""

from .outcome import Outcome

__all__ = ["Outcome", "get_solver"]


def get_solver(name: str):
    """A fresh solver backend by name (``z3``, ``bitwuzla``, ``cvc5``, or ``pysmt-z3`` /
    ``pysmt-cvc5`` for real-arithmetic obligations only): one context per call."""
    if name == "z3":
        from .z3_backend import Z3Solver
        return Z3Solver()
    if name.startswith("pysmt-"):
        from .pysmt_backend import PysmtSolver
        return PysmtSolver(name.split("-", 1)[1])
    if name in ("bitwuzla", "cvc5"):
        from .text_backends import TEXT_BACKENDS
        return TEXT_BACKENDS[name]()
    from nnlemma.errors import NnlemmaError
    raise NnlemmaError(f"unknown solver {name!r}; choose z3, bitwuzla, cvc5, pysmt-z3 or pysmt-cvc5")
