"""``SpecRows.refuted``: its float64 shortcut decides exactly what the rational comparison decides,
on bounds at, next to and around every threshold (strict and non-strict atoms, thresholds that
are and are not float64 values, infinite bounds)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlemma.verify.spec import SpecRows

THRESHOLDS = st.one_of(
    st.fractions(max_denominator=10 ** 6).filter(lambda q: abs(q) < 10 ** 9),
    st.floats(allow_nan=False, allow_infinity=False).map(Fraction),
    st.integers(-2 ** 70, 2 ** 70).map(lambda n: Fraction(n, 3)),
)


def _exact(lb: float, d: Fraction, strict: bool) -> bool:
    if not np.isfinite(lb):
        return False
    total = Fraction(lb) + d
    return total >= 0 if strict else total > 0


@given(st.lists(st.tuples(THRESHOLDS, st.booleans()), min_size=1, max_size=4), st.integers(0, 2 ** 32 - 1))
@settings(max_examples=200, deadline=None)
def test_refuted_matches_exact_rationals(atoms, seed):
    rng = np.random.default_rng(seed)
    ds = tuple(-t for t, _ in atoms)
    strict = tuple(s for _, s in atoms)
    rows = SpecRows(np.eye(len(atoms)), ds, strict, (tuple(range(len(atoms))),), True)
    cols = []
    for t, _ in atoms:
        t_f = float(t)
        near = [t_f, np.nextafter(t_f, np.inf), np.nextafter(t_f, -np.inf),
                np.nextafter(np.nextafter(t_f, np.inf), np.inf), -np.inf, np.inf, 0.0]
        cols.append(near + list(t_f + rng.standard_normal(5) * (1 + abs(t_f)) * 1e-15) + list(rng.standard_normal(3)))
    lb = np.array(cols)
    got = rows.refuted(lb)
    for i, (t, s) in enumerate(atoms):
        for b, v in enumerate(lb[i]):
            assert got[i, b] == _exact(float(v), ds[i], s), (t, s, v)
