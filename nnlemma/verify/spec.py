"""A property case as a matrix over the outputs, and exact refutation of its atoms.

For one case of a VNN-LIB property, every atom ``c·y + d <= 0`` (``< 0``) of the unsafe DNF
becomes a row of ``C`` with constant ``d`` (an exact Fraction). Given a certified lower bound
``lb`` of ``c·y`` over a box (exact real value of the linear form at the kernel's float32
outputs), the atom is impossible on the box iff ``lb + d > 0`` (``>= 0`` for strict atoms) —
compared exactly in rationals. A box is safe iff every conjunction has an impossible atom.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..vnnlib import Atom, Case


@dataclass(frozen=True)
class SpecRows:
    C: np.ndarray                        # [n_atoms, n_outputs] float64 (exact when coefficients are)
    d: tuple[Fraction, ...]
    strict: tuple[bool, ...]
    conjunctions: tuple[tuple[int, ...], ...]   # atom row indices per conjunction
    exact: bool                          # every coefficient is exactly representable in float64

    @staticmethod
    def from_case(case: Case, n_outputs: int) -> "SpecRows":
        atoms: dict[Atom, int] = {}
        conj = []
        for c in case.unsafe:
            conj.append(tuple(atoms.setdefault(a, len(atoms)) for a in c))
        C = np.zeros((len(atoms), n_outputs))
        exact = True
        for a, row in atoms.items():
            for j, coef in a.coeffs:
                C[row, j] = float(coef)
                exact &= Fraction(C[row, j]) == coef
        return SpecRows(C, tuple(a.const for a in atoms), tuple(a.strict for a in atoms), tuple(conj), exact)

    def refuted(self, lb: np.ndarray) -> np.ndarray:
        """``[n_atoms, B]`` bool: atom impossible on box b, given lower bounds of ``C·y``.

        Decided in rationals; float64 settles the clear cases first. With t = −d and t_f its
        nearest float64, t lies strictly between t_f's neighbours, so lb >= next_up(t_f) gives
        lb > t (refuted, strict or not) and lb <= next_down(t_f) gives lb < t (not refuted); only
        bounds strictly between the neighbours go to the exact comparison."""
        lb = np.asarray(lb, np.float64)
        out = np.zeros(lb.shape, bool)
        for i in range(lb.shape[0]):
            d, strict = self.d[i], self.strict[i]
            row = lb[i]
            todo = np.isfinite(row)
            try:
                t_f = float(-d)
            except OverflowError:
                t_f = None
            if t_f is not None and np.isfinite(t_f):
                sure = todo & (row >= np.nextafter(t_f, np.inf))
                out[i] = sure
                todo &= ~sure & (row > np.nextafter(t_f, -np.inf))
            for b in np.flatnonzero(todo):
                total = Fraction(float(row[b])) + d
                out[i, b] = total >= 0 if strict else total > 0
        return out

    def safe(self, lb: np.ndarray) -> np.ndarray:
        """``[B]`` bool: every conjunction has an atom refuted on box b."""
        ref = self.refuted(lb)
        ok = np.ones(lb.shape[1], bool)
        for conj in self.conjunctions:
            ok &= ref[list(conj)].any(axis=0) if conj else False
        return ok

    def possibly_unsafe(self, Y: np.ndarray) -> np.ndarray:
        """``[N]`` bool over output vectors ``Y`` ``[N, n_outputs]``: False only where some atom of
        every conjunction is certainly false, judged in float64 with a bound on its own rounding
        (a prefilter: only flagged points need the exact rational check)."""
        Y = np.asarray(Y, np.float64)
        N = Y.shape[0]
        if not self.exact or not np.isfinite(Y).all():
            return np.ones(N, bool)
        try:
            d = np.array([float(x) for x in self.d])
        except OverflowError:  # a constant beyond float64: leave it to the exact check
            return np.ones(N, bool)
        vals = Y @ self.C.T + d
        # the dot product of n terms plus d errs by <= γ_{n+1}·(Σ|c||y| + |d|); float(d) by half
        # an ulp of d; doubled, plus the smallest normal, as margin
        mag = np.abs(Y) @ np.abs(self.C).T + np.abs(d)
        err = 2 * ((self.C.shape[1] + 2) * 2.0 ** -52 * mag + 2.0 ** -1022)
        if not (np.isfinite(vals).all() and np.isfinite(err).all()):
            return np.ones(N, bool)
        maybe = vals - err <= 0  # the atom c·y + d (<= or <) 0 may hold
        out = np.zeros(N, bool)
        for conj in self.conjunctions:
            out |= maybe[:, list(conj)].all(axis=1) if conj else True
        return out

    def targets(self) -> np.ndarray:
        """``[S]`` float: a row's lower bound above this refutes its atom with room to spare
        (−d plus a relative margin; for stopping heuristics only — refutation is decided exactly)."""
        t = np.array([-clamped_float(q) for q in self.d])
        return t + 1e-6 * (1 + np.abs(t))

    def margin(self, lb: np.ndarray) -> np.ndarray:
        """``[B]`` float: a score of how far box b is from safe (larger = closer), for ordering."""
        m = np.full(lb.shape[1], np.inf)
        dd = np.array([clamped_float(x) for x in self.d])[:, None]
        vals = lb + dd
        for conj in self.conjunctions:
            m = np.minimum(m, vals[list(conj)].max(axis=0) if conj else -np.inf)
        return m


def clamped_float(q) -> float:
    """``float(q)``, with rationals beyond the float64 range clamped to ±max (for scores only)."""
    try:
        return float(q)
    except OverflowError:
        return float(np.sign(q)) * float(np.finfo(np.float64).max)
