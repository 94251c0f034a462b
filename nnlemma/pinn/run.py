"""``check_problem``: every part of a :class:`~nnlemma.pinn.problem.PDE` (the PDE residual, each
initial/boundary condition) refined and bounded, and the report that states what was certified.

The report's headline numbers are the PDE part's: ``certified_max_abs_residual`` (a sound upper
bound of |residual| over the whole domain, or null when some leaf could not be bounded),
``sampled_max_abs_residual`` (the largest |residual| the kernel gives at a point found by
sampling and local search: a lower bound of the true maximum) and their ratio, the tightness.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..errors import InputError
from .problem import PDE, part_graph
from .search import Bounder, Options, PartResult, float32_box, refine

F32 = np.float32


def part_report(res: PartResult) -> dict:
    finite = bool(len(res.lo)) and bool(np.isfinite(res.ylo).all() and np.isfinite(res.yhi).all())
    cert = res.certified_max if finite else None
    bounds = {name: [float(res.ylo[:, j].min()), float(res.yhi[:, j].max())] if finite else None
              for j, name in enumerate(res.outputs)}
    return {"name": res.name, "certified_max_abs_residual": cert,
            "sampled_max_abs_residual": res.sampled_max,
            "ratio": (cert / res.sampled_max if cert is not None and res.sampled_max > 0 else None),
            "sampled_at": res.sampled_at,
            "sampled_outputs": dict(zip(res.outputs, res.sampled_values)),
            "bounds": bounds, "leaves": len(res.lo), "bounded_boxes": res.bounded_boxes,
            "stop": res.stop, "seconds": round(res.seconds, 3),
            "min_leaf_width": (np.min(res.hi - res.lo, axis=0).tolist() if len(res.lo) else None)}


def guarantee(problem: PDE, semantics: str, parts: list[dict]) -> str:
    what = ("at every float32 point of the domain, the residual as the float32 kernel computes it "
            "(network, its derivative graphs and the residual expression, each op rounded as executed)"
            if semantics == "float32" else
            "at every real point of the domain, the residual of the real-valued network (exact "
            "derivatives, exact arithmetic in the residual expression)")
    out = [f"Certified {what}:"]
    for p in parts:
        c = p["certified_max_abs_residual"]
        out.append(f"{p['name']}: |residual| <= {c:.6g}" if c is not None else f"{p['name']}: not bounded")
    return " ".join(out[:1]) + " " + "; ".join(out[1:]) + "."


def part_columns(name: str, all_derivatives: bool) -> str:
    """Which partials a part's graph outputs (:func:`~nnlemma.pinn.problem.derivative_indices`):
    the PDE every first partial (and every second one when asked), a condition what it uses."""
    return ("all" if all_derivatives else "first") if name == "pde" else "used"


def check_problem(problem: PDE, opts: Options, *, all_derivatives: bool = False) -> dict:
    """The report dict (JSON-ready except ``_internal``: the part results and graphs)."""
    t0 = time.monotonic()
    todo = problem.parts()
    todo = todo[1:] + todo[:1]      # conditions first: each gets its share of the budget, the PDE the rest
    parts, internal = [], []
    for k, (name, lo, hi, residual) in enumerate(todo):
        graph, names = part_graph(problem, residual, part_columns(name, all_derivatives))
        share = (opts.timeout - (time.monotonic() - t0)) / (len(todo) - k)
        res = refine(name, graph, names, lo, hi, replace(opts, timeout=max(share, 0.0)))
        parts.insert(0 if name == "pde" else len(parts), part_report(res))
        internal.insert(0 if name == "pde" else len(internal), (res, graph))
    pde = parts[0]
    report = {"problem": problem.name, "semantics": opts.semantics, "variables": list(problem.variables),
              "domain": {"lo": problem.lo, "hi": problem.hi},
              "certified_max_abs_residual": pde["certified_max_abs_residual"],
              "sampled_max_abs_residual": pde["sampled_max_abs_residual"], "ratio": pde["ratio"],
              "target_ratio": opts.target_ratio, "boxes": pde["leaves"], "all_derivatives": all_derivatives,
              "parts": parts, "guarantee": guarantee(problem, opts.semantics, parts),
              "seconds": round(time.monotonic() - t0, 3)}
    report["_internal"] = internal
    return report


def box_bounds(problem: PDE, lo, hi, semantics: str = "float32", which: str = "all") -> tuple[list[str], np.ndarray, np.ndarray]:
    """Bounds of u, its partials and the residual on each box ``[N, n]`` (no refinement): the
    pointwise certificates of TorchLean's pinn-cert (a point with a small box around it)."""
    graph, names = part_graph(problem, problem.residual, which)
    lo, hi = np.atleast_2d(np.asarray(lo, np.float64)), np.atleast_2d(np.asarray(hi, np.float64))
    boxes = [float32_box(a, b, semantics) for a, b in zip(lo, hi)]
    if any(b is None for b in boxes):
        raise InputError("a box has no float32 points")
    L, H = np.array([b[0] for b in boxes]), np.array([b[1] for b in boxes])
    ylo, yhi = Bounder(graph, semantics, 256).bound(L, H)
    return names, ylo, yhi
