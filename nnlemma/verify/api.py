"""``nl.verify(model, spec)``: decide a VNN-LIB property for the float32 kernel.

The property is a disjunction of cases (one per input box); it is ``unsat`` (holds) only if every
case is unsat, ``sat`` as soon as one case has a counterexample that replays on the kernel.
With ``certificate=``, an ``unsat`` verdict comes with a proof certificate
(:mod:`nnlemma.verify.certificate`) that :func:`nnlemma.verify.checker.check` re-checks.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..ir.graph import Graph
from ..vnnlib import Property
from .bab import CaseResult, Options, solve_case
from .problem import Problem
from .spec import clamped_float


@dataclass
class VerifyResult:
    status: str                         # unsat / sat / unknown / timeout
    x: np.ndarray | None = None         # counterexample input (flat float32; float64 in real semantics)
    y: np.ndarray | None = None         # kernel output at x (real semantics: float64 values of y_exact)
    reason: str = ""
    seconds: float = 0.0
    cases: list[CaseResult] = field(default_factory=list)
    certificate: dict | None = None     # with verify(certificate=...), when unsat
    y_exact: list | None = None         # real semantics: the exact outputs (Fractions or enclosures)

    def to_json(self) -> dict:
        d = {"status": self.status, "reason": self.reason, "seconds": round(self.seconds, 4),
             "boxes": sum(c.boxes for c in self.cases), "leaves": sum(c.leaves for c in self.cases),
             "enumerated_points": sum(c.enumerated_points for c in self.cases),
             "cases": [{"status": c.status, "reason": c.reason, "boxes": c.boxes} for c in self.cases]}
        if self.x is not None:
            d["counterexample"] = {"x": [float(v) for v in self.x], "y": [float(v) for v in self.y]}
            if self.y_exact is not None:
                d["counterexample"]["y_exact"] = [str(v) for v in self.y_exact]
        return d


def blas_threads(n: int | None):
    """Limit BLAS threads for the search (``None``: leave as is). The bound computations use many
    small matrix products, where BLAS threads only add synchronisation, and spinning BLAS threads
    slow down badly when the cores are shared. Soundness does not depend on it."""
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=n, user_api="blas")


def verify(graph: Graph, prop: Property, *, semantics: str = "float32", timeout: float | None = None,
           seed: int = 0, options: Options | None = None,
           certificate: bool | str | os.PathLike = False) -> VerifyResult:
    """Decide ``prop`` for ``graph``. ``certificate=True`` records the proof and returns it as
    ``result.certificate`` (a JSON-ready dict) when the verdict is ``unsat``; a path also writes it
    there (atomically). Nothing is written for other verdicts (a ``sat`` counterexample is its own
    evidence)."""
    if semantics not in ("float32", "real"):
        raise InputError(f"unknown semantics {semantics!r}: use 'float32' or 'real'")
    if semantics == "real" and certificate not in (False, None):
        raise InputError("certificates are written for the float32 semantics only")
    start = time.monotonic()
    opts = options or Options()
    opts.seed = seed
    opts.timeout = timeout
    if certificate not in (False, None):
        opts.record_tree = True
    deadline = None if timeout is None else start + timeout
    problem = Problem(graph, semantics)
    if prop.n_inputs != problem.n_in or prop.n_outputs != problem.n_out:
        raise InputError(f"{prop.source}: property has {prop.n_inputs} inputs and {prop.n_outputs} outputs; "
                         f"the model has {problem.n_in} and {problem.n_out}")
    results = []
    with blas_threads(opts.threads):
        for case in prop.cases:
            if semantics == "real":
                from .real_bab import solve_case_real
                r = solve_case_real(problem, case, opts, deadline)
            else:
                r = solve_case(problem, case, opts, deadline)
            results.append(r)
            if r.status == "sat" and semantics == "real":
                y = np.array([clamped_float(v.mid if hasattr(v, "mid") else v) for v in r.y])
                return VerifyResult("sat", r.x, y, "", time.monotonic() - start, results, y_exact=list(r.y))
            if r.status == "sat":
                return VerifyResult("sat", r.x, r.y, "", time.monotonic() - start, results)
    worst = next((r for r in results if r.status == "timeout"), None) or \
        next((r for r in results if r.status == "unknown"), None)
    status = worst.status if worst else "unsat"
    res = VerifyResult(status, None, None, worst.reason if worst else "", time.monotonic() - start, results)
    if status == "unsat" and opts.record_tree:
        from . import certificate as cert

        res.certificate = cert.build(graph, prop, semantics, opts, [r.tree for r in results])
        if not isinstance(certificate, bool):
            cert.write(certificate, res.certificate)
    return res
