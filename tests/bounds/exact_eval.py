"""Containment checks of real-semantics bounds against the exact evaluator (a test oracle, not a
test module). The exact values come from :mod:`nnlemma.exact` (the real semantics); this module
sets mpmath's interval precision to :data:`nnlemma.exact.PREC` for the tests that build exact
values by hand."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import numpy as np
from mpmath import iv, mpf

from nnlemma.exact import PREC, UNDEF, UNSURE, _ends, exact_eval
from nnlemma.ir.graph import Graph

iv.prec = PREC


# -- containment -------------------------------------------------------------------------------

def contains(lo: float, hi: float, nan: bool, v) -> bool | None:
    """Does the float64 interval [lo, hi] (+NaN flag) contain the exact value ``v``? ``None``
    for UNSURE. Comparisons are exact (Fraction vs float, mpf vs float)."""
    if v is UNSURE:
        return None
    if v is UNDEF:
        return bool(nan)
    lo, hi = float(lo), float(hi)
    if isinstance(v, Fraction):
        return lo <= v <= hi  # Fraction/float comparison is exact (and handles ±inf)
    a, b = _ends(v)
    return mpf(lo) <= a and b <= mpf(hi)


def describe(v) -> str:
    if isinstance(v, Fraction):
        return f"{v} (~{float(v)!r})"
    return repr(v)


def check_real(graph: Graph, result, inputs: Sequence[Any], env=None) -> tuple[list[str], int]:
    """Check every node's exact value against ``result`` (a real-semantics BoundsResult).
    Returns (failure messages, number of UNSURE elements skipped)."""
    env = exact_eval(graph, inputs) if env is None else env
    vals = graph.values()
    ops = {e.out.id: e for e in graph.equations}
    fails: list[str] = []
    unsure = 0
    for vid, val in env.items():
        I = result.env[vid]
        lo = np.broadcast_to(I.lo, val.shape)
        hi = np.broadcast_to(I.hi, val.shape)
        nan = np.broadcast_to(I.nan, val.shape)
        for idx in np.ndindex(*val.shape):
            ok = contains(lo[idx], hi[idx], nan[idx], val[idx])
            if ok is None:
                unsure += 1
            elif not ok:
                where = ops[vid].describe() if vid in ops else str(vals[vid])
                fails.append(f"{where} at {idx}: exact {describe(val[idx])} not in "
                             f"[{float(lo[idx])!r}, {float(hi[idx])!r}] nan={bool(nan[idx])}")
    return fails, unsure
