"""Composition obligations: the claimed output bounds imply the property (exact rationals).

For one VNN-LIB case — an input box and an unsafe region that is a disjunction of conjunctions
of linear atoms ``Σ c_j·Y_j + d ≤ 0`` (or ``< 0``) with exact rational coefficients — the lemma
for each conjunction is: no real ``y`` inside the claimed output box satisfies all its atoms.
Every float32 output in the box is such a real, so the lemma (QF_LRA, the float32 endpoints taken
as exact rationals, the thresholds never rounded) and the fp-transfer lemmas together prove the
property for every float32 input of the case's box. An output whose bound is infinite or may be
NaN cannot be compared with a threshold: that is a gap, not a pass.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Iterator

import numpy as np

from encoders import terms as T
from nnlemma.vnnlib import Case

from .fp_transfer import Gap
from .model import Obligation


def _q(v) -> Fraction:
    return Fraction(float(v))


def spec_obligations(case: Case, lo: np.ndarray, hi: np.ndarray, nan: np.ndarray, model: str,
                     node: str = "property") -> Iterator[Obligation | Gap]:
    """One obligation per conjunction of the case's unsafe region, over output bounds lo/hi."""
    nan = np.broadcast_to(np.asarray(nan), np.asarray(lo).shape).reshape(-1)
    lo, hi = np.asarray(lo).reshape(-1), np.asarray(hi).reshape(-1)
    for k, conj in enumerate(case.unsafe):
        used = sorted({j for a in conj for j, _ in a.coeffs})
        bad = [j for j in used if nan[j] or not (np.isfinite(lo[j]) and np.isfinite(hi[j]))]
        if bad:
            yield Gap(node, "composition", f"output(s) {bad} may be infinite or NaN: the property "
                                           "cannot follow from these bounds")
            continue
        ys = {j: T.var(f"y{j}", T.REAL) for j in used}
        hyps = [T.and_(T.r_le(T.real(_q(lo[j])), ys[j]), T.r_le(ys[j], T.real(_q(hi[j])))) for j in used]
        atoms = []
        for a in conj:
            lhs = T.r_add(T.real(a.const), *(T.r_mul(T.real(c), ys[j]) for j, c in a.coeffs)) \
                if a.coeffs else T.real(a.const)
            atoms.append(T.r_lt(lhs, T.real(0)) if a.strict else T.r_le(lhs, T.real(0)))
        violation = T.and_(*hyps, *atoms)
        replay = {"step": "composition",
                  "box": {str(j): [str(_q(lo[j])), str(_q(hi[j]))] for j in used},
                  "atoms": [{"coeffs": [[j, str(c)] for j, c in a.coeffs], "const": str(a.const),
                             "strict": a.strict} for a in conj]}
        yield Obligation(f"{model}/{node}/composition/{k}", "composition", "property", "QF_LRA",
                         violation, f"no output in the claimed bounds satisfies unsafe conjunction {k} "
                                    f"({' and '.join(map(str, conj)) or 'true'})",
                         {"model": model, "node": node, "conjunction": k}, replay)


def replay_composition(data: dict, model: dict) -> tuple[bool, str]:
    """Exact check of a model: inside the box and every atom holds (so the bounds do not imply the
    property; this says nothing about the network itself)."""
    y = {}
    for j, (lo, hi) in data["box"].items():
        v = model.get(f"y{j}")
        if v is None:
            return False, f"the model has no value for y{j}"
        v = Fraction(v)
        if not Fraction(lo) <= v <= Fraction(hi):
            return False, f"y{j} = {v} is outside [{lo}, {hi}]"
        y[int(j)] = v
    for a in data["atoms"]:
        total = Fraction(a["const"]) + sum(Fraction(c) * y[j] for j, c in a["coeffs"])
        if not (total < 0 if a["strict"] else total <= 0):
            return False, f"atom {a} does not hold at {y}"
    return True, "outputs inside the claimed bounds satisfy the unsafe conjunction: " + \
        ", ".join(f"Y_{j} = {v}" for j, v in sorted(y.items()))
