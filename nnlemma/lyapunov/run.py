"""``check_system``: every condition of a :class:`System`, the level ρ (given or found), the
verdict and the guarantee that follows from exactly what was checked.

Discrete time checks decrease and invariance as one search first (their violations joined in one
disjunction: ``unsat`` proves both); only when it finds a counterexample is the other condition
searched on its own, so each condition still gets its own verdict. ``find_rho`` bisects the level:
the conditions on ``{V <= ρ}`` only get stronger as ρ grows, so the largest ρ verified is a
certified level, and a counterexample at one ρ rules out every larger one.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..interpret import run
from ..ir.graph import Graph
from ..verify.problem import Problem
from .check import ConditionResult, check_condition, face_cells, region_cells
from .system import DEC_OUT, NEXT_OUT, V_OUT, System, loop_graph

F32 = np.float32


def _v_eq_zero(graph: Graph, system: System, semantics: str) -> ConditionResult:
    t0 = time.monotonic()
    x = np.array([system.x_eq], F32)
    if semantics == "real":
        from fractions import Fraction

        from ..exact import exact_eval
        env = exact_eval(graph, [np.array([[Fraction(float(v)) for v in system.x_eq]], dtype=object)])
        v = env[graph.outputs[0]].reshape(-1)[V_OUT]
        ok, shown = (v == 0 if isinstance(v, Fraction) else None), str(v)
    else:
        v = run(graph, x)[0].reshape(-1)[V_OUT]
        ok, shown = bool(v == 0), repr(float(v))
    res = ConditionResult("v_eq_zero", ok, reason=f"V(x*) = {shown}", seconds=time.monotonic() - t0)
    if ok is False:
        res.counterexamples.append({"condition": "v_eq_zero", "x": list(map(float, system.x_eq)), "V": shown})
    return res


def _boundary_min_witness(graph: Graph, system: System, n: int = 400) -> tuple[float, list[float]]:
    """The smallest float32 V found on the box's faces by sampling (an upper bound on min V there)."""
    lo, hi = np.array(system.lo, F32), np.array(system.hi, F32)
    pts = []
    for i in range(system.dim):
        grid = np.random.default_rng(i).uniform(lo, hi, (n, system.dim)).astype(F32)
        for v in (lo[i], hi[i]):
            g = grid.copy()
            g[:, i] = v
            pts.append(g)
    xs = np.concatenate(pts)
    vals = Problem(graph, "float32").evaluate(xs)[:, V_OUT]
    k = int(np.argmin(vals))
    return float(vals[k]), [float(v) for v in xs[k]]


def _dynamics_conditions(graph, system, rho, semantics, kw) -> list[ConditionResult]:
    cells = region_cells(system)
    if system.time == "continuous":
        out = [check_condition(graph, system, "decrease", cells, rho, semantics=semantics, **kw)]
        if rho is not None:
            out.append(check_condition(graph, system, "sublevel_in_box", face_cells(system), rho,
                                       semantics=semantics, **kw))
        return out
    both = check_condition(graph, system, "decrease+invariance", cells, rho, semantics=semantics, **kw)
    if both.verdict is not False:
        return [replace(both, name=a, reason=(both.reason + "; " if both.reason else "") + "decided jointly with " + b)
                for a, b in (("decrease", "invariance"), ("invariance", "decrease"))]
    out = []
    for name in ("decrease", "invariance"):
        mine = [cx for cx in both.counterexamples if _violates(system, name, cx["outputs"])]
        if mine:
            out.append(replace(both, name=name, counterexamples=[dict(cx, condition=name) for cx in mine],
                               reason="counterexample of the joint search"))
        else:
            out.append(check_condition(graph, system, name, cells, rho, semantics=semantics, **kw))
    return out


def _violates(system: System, name: str, y: list[float]) -> bool:
    """Whether replayed outputs ``y`` break condition ``name`` (float values; the joint search
    already decided exactly that they break one of the two)."""
    if name == "decrease":
        return y[DEC_OUT] >= system.decrease_tol
    nxt = y[NEXT_OUT:NEXT_OUT + system.dim]
    return any(v <= a - system.box_tol or v >= b + system.box_tol for v, a, b in zip(nxt, system.lo, system.hi))


def check_system(system: System, *, rho: float | None = None, find_rho: bool = False, semantics: str = "float32",
                 cell_timeout: float = 60.0, max_depth: int = 8, timeout: float | None = None,
                 rho_steps: int = 6, record: bool = False, progress=None) -> dict:
    """The report dict (JSON-ready except the ``_internal`` entry used by plots and certificates)."""
    t0 = time.monotonic()
    graph = loop_graph(system)
    rho = system.rho if rho is None else rho
    deadline = None if timeout is None else t0 + timeout
    kw = {"cell_timeout": cell_timeout, "max_depth": max_depth, "deadline": deadline, "record": record,
          "progress": progress}
    conds = []
    if system.check_v_eq_zero:
        conds.append(_v_eq_zero(graph, system, semantics))
    level = rho if system.positivity_within_level else None
    conds.append(check_condition(graph, system, "positivity", region_cells(system), level, semantics=semantics, **kw))
    rho_trace = []
    if find_rho:
        hi = rho if rho is not None else _rho_ceiling(graph, system)
        lo_ok, best = None, None
        lo, top = 0.0, hi
        cand = hi
        for _ in range(max(1, rho_steps)):
            got = _dynamics_conditions(graph, system, cand, semantics, kw)
            ok = all(c.verdict is True for c in got)
            rho_trace.append({"rho": cand, "verified": ok if ok else (False if any(c.verdict is False for c in got)
                                                                        else None)})
            if ok:
                lo_ok, best = cand, got
                lo = cand
                if cand == top:
                    break
            else:
                top = cand
            cand = (lo + top) / 2
        rho = lo_ok
        dyn = best if best is not None else got
    else:
        dyn = _dynamics_conditions(graph, system, rho, semantics, kw)
    conds += dyn
    verdicts = [c.verdict for c in conds]
    verified = False if False in verdicts else (True if all(v is True for v in verdicts) else None)
    if find_rho and rho is None:
        verified = None if verified is not False else False
    witness = _boundary_min_witness(graph, system)
    report = {"system": system.name, "time": system.time, "semantics": semantics, "verified": verified,
              "rho": rho, "kappa": system.kappa, "box": {"lo": system.lo, "hi": system.hi},
              "x_eq": system.x_eq, "hole": system.hole,
              "tolerances": {"decrease": system.decrease_tol, "box": system.box_tol,
                             "positivity": system.positivity_tol},
              "positivity_norm_bound": ({"c": system.positivity_c, "norm": system.positivity_norm}
                                        if system.positivity_c > 0 else None),
              "conditions": [c.to_json() for c in conds],
              "counterexamples": [cx for c in conds for cx in c.counterexamples],
              "boundary_min_V_found": {"V": witness[0], "x": witness[1]},
              "guarantee": guarantee(system, rho, semantics, verified, witness[0]),
              "seconds": round(time.monotonic() - t0, 3)}
    if find_rho:
        report["rho_search"] = rho_trace
    report["_internal"] = {"graph": graph, "conditions": conds}
    return report


def _rho_ceiling(graph: Graph, system: System) -> float:
    """An upper end for the ρ search: the largest V sampled on the state box."""
    xs = np.random.default_rng(0).uniform(system.lo, system.hi, (2000, system.dim)).astype(F32)
    return float(Problem(graph, "float32").evaluate(xs)[:, V_OUT].max())


def guarantee(system: System, rho, semantics: str, verified, boundary_min: float) -> str:
    """What the checked conditions imply — no more."""
    sem = ("in float32, as the kernel executes the closed loop (controller, V and dynamics)"
           if semantics == "float32" else "in exact real arithmetic")
    if verified is not True:
        return ("nothing is certified: " + ("a condition fails (see counterexamples)" if verified is False
                                           else "some condition was not decided (see the certified volume fractions)"))
    hole = "" if system.hole is None else f" outside the open hole |x - x*| < {system.hole}"
    level = "the whole box" if rho is None else f"S = {{x in B : V(x) <= {rho}}}"
    parts = [f"Checked {sem}: on {level}{hole},"]
    if system.time == "discrete":
        k, tol = system.kappa, system.decrease_tol
        parts.append(f"V(x+) < (1 - {k}) V(x) {'-' if tol < 0 else '+'} {abs(tol)} and x+ lies within "
                     f"{system.box_tol} of the box.")
        if rho is not None:
            if tol <= k * rho:
                stay = "stay in S" + (f" (up to the box tolerance: x+ may leave B by less than {system.box_tol})"
                                      if system.box_tol > 0 else "") + " while outside the hole"
                if k > 0:
                    decay = "V decreases geometrically" + ("" if tol <= 0 else f" while V > tol/kappa = {tol / k:.3g}")
                else:
                    decay = f"V decreases by more than {-tol} per step" if tol < 0 else "V decreases strictly"
                if system.hole is not None:
                    until = "the hole" + ("" if tol <= 0 else f" or the set {{V <= {tol / k if k else 0:.3g}}}")
                    parts.append(f"So trajectories starting in S {stay}, and {decay} there; V being bounded below on "
                                 f"the region (positivity), they reach {until} after finitely many steps. Nothing "
                                 "is claimed inside the hole, so convergence to x* is not proved.")
                else:
                    parts.append(f"So S is forward invariant ({stay.replace(' while outside the hole', '')}) and "
                                 f"{decay} along trajectories.")
            else:
                parts.append(f"The tolerance exceeds kappa * rho ({tol} > {k * rho}), so the level set need not be "
                             "invariant: only the one-step decrease is certified.")
            if boundary_min < rho:
                parts.append(f"rho exceeds V at a point of the box boundary (V = {boundary_min:.6g}): S is not a "
                             "sublevel set inside the box; invariance rests on the successor check.")
    else:
        parts.append(f"dV/dt + {system.kappa} V < {system.decrease_tol} along the field"
                     + ("" if rho is None else f", and V > {rho} on the box boundary, so S is forward invariant") + ".")
    if system.positivity_c > 0:
        parts.append(f"Positivity was checked as V(x) > {system.positivity_c} * |x - x*|_{system.positivity_norm}"
                     + (f" - {system.positivity_tol}" if system.positivity_tol else "") + " on the region"
                     + (" where V <= rho" if system.positivity_within_level else "") + ".")
    if not system.check_v_eq_zero:
        parts.append("V(x*) = 0 was not required by this spec.")
    return " ".join(parts)
