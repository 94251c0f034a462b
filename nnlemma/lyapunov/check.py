"""Checking a :class:`~nnlemma.lyapunov.system.System`: each condition over the region, by branch
and bound over state boxes, with per-condition verdicts and counterexamples.

**Region.** ``B \\ H`` (H the open hole around x*, if any) is the union of ``2n`` closed boxes: for
``i = 0..n−1``, the boxes with ``x_i >= x*_i + h_i`` and with ``x_i <= x*_i − h_i``, where the
dimensions before ``i`` are restricted to ``|x_j − x*_j| <= h_j`` (the layout of Yang et al.).

**Conditions** (each a VNN-LIB-style property of the loop graph over the region's cells; a
``sat`` answer is a state violating it, replayed on the float32 kernel or in exact rationals by
:func:`nnlemma.verify.verify` before it is reported):

* ``v_eq_zero``: ``V(x*) = 0`` exactly (the kernel's float32 value; exact rationals for ``real``);
* ``positivity``: ``V(x) > −positivity_tol`` on ``B \\ H`` (only where ``V <= ρ`` with
  ``positivity_within_level``); with ``positivity_c = c > 0``, ``V(x) > c·‖x − x*‖ − tol``. The
  norm is exact: with ``d = x − x*`` (x read from the loop's exact copy of the state),
  ``‖d‖_1 = max over signs s of Σ s_i d_i`` and ``‖d‖_∞ = max over i, s of s·d_i``, so the
  violation ``V <= c‖d‖ − tol`` is the disjunction over those linear forms of
  ``V − c·(form) + tol <= 0`` — 2^n (1-norm) or 2n (∞-norm) conjunctions of exact rational atoms;
* ``decrease``: on ``{x in B \\ H : V(x) <= ρ}``, ``V(x⁺) − (1−κ)V(x) < decrease_tol`` (discrete)
  or ``∇V·f + κV < decrease_tol`` (continuous);
* ``invariance`` (discrete): on the same set, ``lo − box_tol < x⁺ < hi + box_tol``;
* ``sublevel_in_box`` (continuous, with ρ): ``V > ρ`` on every face of ``B``, so the sublevel set
  ``{V <= ρ}`` containing x* does not reach the boundary.

**Search.** Every region box is one cell; a cell is decided by :func:`nnlemma.verify.verify`
(itself a branch and bound with CROWN/IBP on the closed loop) within ``cell_timeout``; a cell it
cannot decide in time is bisected along its widest side (float32: at a float32 ``m``, children
``[lo, m]`` and ``[next_up(m), hi]``, an exact partition of the float32 points; real: at the
exact midpoint, both children closed) and its children queued, until ``max_depth`` or the time
budget. A condition is ``true`` only when every leaf is ``unsat``, ``false`` on any replayed
counterexample, ``null`` otherwise, with the certified fraction of the region's volume.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..ir.graph import Graph
from ..verify import verify
from ..verify.bab import Options
from ..vnnlib import Atom, Box, Case, Property
from .system import DEC_OUT, NEXT_OUT, V_OUT, System

F32 = np.float32


@dataclass
class Cell:
    lo: list[Fraction]
    hi: list[Fraction]
    depth: int = 0
    path: str = ""                     # "r<k>/" (region cell k) or "f<k>/" (face k), then one 0/1 per bisection

    def box(self) -> Box:
        n = len(self.lo)
        return Box(tuple(self.lo), tuple(self.hi), (False,) * n, (False,) * n)

    def volume(self) -> float:
        return float(np.prod([float(b - a) for a, b in zip(self.lo, self.hi)]))


@dataclass
class Leaf:
    cell: Cell
    status: str                        # unsat / sat / timeout / unknown
    seconds: float
    boxes: int = 0
    tree: object = None                # the verify search record (certificates), when unsat


@dataclass
class ConditionResult:
    name: str
    verdict: bool | None
    leaves: list[Leaf] = field(default_factory=list)
    counterexamples: list[dict] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0
    volume_fraction: float | None = None
    prop: Property | None = None       # the condition over the leaves, in leaf order (certificates)
    searched_as: str = ""              # the search that decided it ("decrease+invariance" when joint)

    def to_json(self) -> dict:
        counts: dict[str, int] = {}
        for leaf in self.leaves:
            counts[leaf.status] = counts.get(leaf.status, 0) + 1
        return {"name": self.name, "verdict": self.verdict, "reason": self.reason,
                "seconds": round(self.seconds, 3), "leaves": counts,
                "boxes": sum(leaf.boxes for leaf in self.leaves),
                "certified_volume_fraction": self.volume_fraction, "counterexamples": self.counterexamples}


def _q(v: float) -> Fraction:
    return Fraction(float(v))


def region_cells(system: System) -> list[Cell]:
    """The closed boxes whose union is ``B \\ H`` (see the module docstring)."""
    lo, hi = [_q(v) for v in system.lo], [_q(v) for v in system.hi]
    if system.hole is None:
        return [Cell(lo, hi, 0, "r0/")]
    eq, h = [_q(v) for v in system.x_eq], [_q(v) for v in system.hole]
    cells = []
    for i in range(system.dim):
        inner_lo = [max(lo[j], eq[j] - h[j]) for j in range(i)]
        inner_hi = [min(hi[j], eq[j] + h[j]) for j in range(i)]
        for a, b in ((eq[i] + h[i], hi[i]), (lo[i], eq[i] - h[i])):
            if a <= b:
                cells.append(Cell(inner_lo + [a] + lo[i + 1:], inner_hi + [b] + hi[i + 1:], 0, f"r{len(cells)}/"))
    return cells


def face_cells(system: System) -> list[Cell]:
    """The 2n faces of the state box (continuous time: where V must exceed ρ)."""
    lo, hi = [_q(v) for v in system.lo], [_q(v) for v in system.hi]
    out = []
    for i in range(system.dim):
        for v in (lo[i], hi[i]):
            out.append(Cell(lo[:i] + [v] + lo[i + 1:], hi[:i] + [v] + hi[i + 1:], 0, f"f{len(out)}/"))
    return out


def bisect(cell: Cell, semantics: str) -> list[Cell]:
    """Two children covering the cell's points (float32 points for float32; all reals for real)."""
    widths = [float(b - a) for a, b in zip(cell.lo, cell.hi)]
    k = int(np.argmax(widths))
    a, b = cell.lo[k], cell.hi[k]
    if semantics == "real":
        m = (a + b) / 2
        left, right = m, m
    else:
        fa, fb = F32(float(a)), F32(float(b))  # the cells' float32 bounds are float32 values already
        if not fa < fb:
            return []
        m32 = F32((float(fa) + float(fb)) / 2)
        if m32 >= fb:
            m32 = np.nextafter(fb, F32(-np.inf))
        left, right = Fraction(float(m32)), Fraction(float(np.nextafter(m32, F32(np.inf))))
    lhi, rlo = list(cell.hi), list(cell.lo)
    lhi[k], rlo[k] = left, right
    return [Cell(list(cell.lo), lhi, cell.depth + 1, cell.path + "0"),
            Cell(rlo, list(cell.hi), cell.depth + 1, cell.path + "1")]


def to_float32_cell(cell: Cell) -> Cell | None:
    """The cell shrunk to its float32 points (None if it has none)."""
    b = cell.box().float32_bounds()
    if b is None:
        return None
    return Cell([Fraction(float(v)) for v in b[0]], [Fraction(float(v)) for v in b[1]], cell.depth, cell.path)


def _atom(j: int, coeff: int, const: Fraction) -> Atom:
    """``coeff·Y_j + const <= 0``."""
    return Atom(((j, Fraction(coeff)),), const, False)


def _norm_atoms(system: System) -> list[Atom]:
    """``V − c·Σ_i s_i (x_i − x*_i) + tol <= 0`` for every sign vector s of the norm's linear forms."""
    c, n, base = _q(system.positivity_c), system.dim, system.state_out
    if system.positivity_norm == "inf":
        forms = [{i: s} for i in range(n) for s in (1, -1)]
    else:
        forms = [dict(enumerate(signs)) for signs in itertools.product((1, -1), repeat=n)]
    out = []
    for form in forms:
        coeffs = ((V_OUT, Fraction(1)),) + tuple((base + i, -c * s) for i, s in form.items())
        const = _q(system.positivity_tol) + c * sum(s * _q(system.x_eq[i]) for i, s in form.items())
        out.append(Atom(coeffs, const, False))
    return out


def unsafe_sets(system: System, name: str, rho: float | None) -> tuple[tuple[Atom, ...], ...]:
    """The violation of condition ``name`` as a disjunction of conjunctions over the loop outputs."""
    level = () if rho is None else (_atom(V_OUT, 1, -_q(rho)),)          # V <= rho
    if name == "positivity":
        if system.positivity_c > 0:
            return tuple(level + (a,) for a in _norm_atoms(system))
        return (level + (_atom(V_OUT, 1, _q(system.positivity_tol)),),)    # V <= -tol
    if name == "decrease":
        return (level + (_atom(DEC_OUT, -1, _q(system.decrease_tol)),),)   # dec >= tol
    if name == "invariance":
        out = []
        for i in range(system.dim):
            tol = _q(system.box_tol)
            out.append(level + (_atom(NEXT_OUT + i, 1, -(_q(system.lo[i]) - tol)),))   # x⁺_i <= lo_i - tol
            out.append(level + (_atom(NEXT_OUT + i, -1, _q(system.hi[i]) + tol),))     # x⁺_i >= hi_i + tol
        return tuple(out)
    if name == "decrease+invariance":
        return unsafe_sets(system, "decrease", rho) + unsafe_sets(system, "invariance", rho)
    if name == "sublevel_in_box":
        return (level,)
    raise ValueError(name)


def check_condition(graph: Graph, system: System, name: str, cells: list[Cell], rho: float | None, *,
                    semantics: str = "float32", cell_timeout: float = 60.0, max_depth: int = 12,
                    deadline: float | None = None, record: bool = False, progress=None,
                    max_counterexamples: int = 5) -> ConditionResult:
    """Decide one condition over ``cells`` (see the module docstring)."""
    t0 = time.monotonic()
    unsafe = unsafe_sets(system, name, rho)
    n_out = graph.output_values[0].shape[-1]
    queue = []
    for c in cells:
        c32 = c if semantics == "real" else to_float32_cell(c)
        if c32 is not None:
            queue.append(c32)
    total = sum(c.volume() for c in queue)
    res = ConditionResult(name, None, searched_as=name)
    while queue:
        cell = queue.pop(0)
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            res.leaves.append(Leaf(cell, "timeout", 0.0))
            continue
        budget = cell_timeout if left is None else min(cell_timeout, left)
        prop = Property(system.dim, n_out, (Case(cell.box(), unsafe),), f"<{system.name}: {name}>")
        r = verify(graph, prop, semantics=semantics, timeout=budget, options=Options(record_tree=record))
        boxes = sum(c.boxes for c in r.cases)
        if r.status in ("timeout", "unknown") and cell.depth < max_depth and (deadline is None or time.monotonic() < deadline):
            kids = bisect(cell, semantics)
            if kids:
                queue.extend(kids)
                if progress:
                    progress(name, cell, "split")
                continue
        leaf = Leaf(cell, r.status, r.seconds, boxes, r.cases[0].tree if (r.status == "unsat" and r.cases) else None)
        res.leaves.append(leaf)
        if progress:
            progress(name, cell, r.status)
        if r.status == "sat":
            cx = {"condition": name, "x": [float(v) for v in r.x], "outputs": [float(v) for v in r.y],
                  "replayed": "float32 kernel" if semantics == "float32" else "exact rationals"}
            if r.y_exact is not None:
                cx["outputs_exact"] = [str(v) for v in r.y_exact]
            res.counterexamples.append(cx)
            if len(res.counterexamples) >= max_counterexamples:
                break
    unsat = [leaf for leaf in res.leaves if leaf.status == "unsat"]
    decided_all = len(unsat) == len(res.leaves) and not queue
    res.verdict = False if res.counterexamples else (True if decided_all else None)
    # faces (sublevel_in_box) have no volume: count leaves there instead
    res.volume_fraction = (sum(leaf.cell.volume() for leaf in unsat) / total if total > 0
                           else len(unsat) / max(1, len(res.leaves)))
    if res.verdict is None:
        res.reason = "some cells were not decided in the time budget"
    res.seconds = time.monotonic() - t0
    if res.verdict is True:
        res.prop = Property(system.dim, n_out, tuple(Case(leaf.cell.box(), unsafe) for leaf in res.leaves),
                            f"<{system.name}: {name}>")
    return res
