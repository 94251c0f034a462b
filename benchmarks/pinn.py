"""Certified PINN residual bounds on this machine: the Burgers PINN of ∂-CROWN over its whole
domain (and its initial/boundary conditions), and the 1-D Poisson example.

Burgers: ``nnlemma.pinn.check_problem`` with 2 worker processes, float32 semantics, target ratio
1.5, 1800 s budget. Target (issue): certified max |residual| within 2x of the sampled maximum in
under 30 minutes on 2 cores; the trace gives the time each ratio was first reached. Baseline, in
the same script: the same search with plain CROWN (no CROWN bounds for product operands), run for
``--baseline-timeout`` seconds; compared at equal elapsed time. ∂-CROWN itself (GPU, PyTorch,
not float32-sound) is not available offline and is not rerun.

Writes ``benchmarks/results/pinn.json`` and ``benchmarks/results/pinn_burgers.png``.

    python benchmarks/pinn.py [--timeout 1800] [--baseline-timeout 600] [--only burgers|poisson]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from results_io import write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "pinn"))
OUT = ROOT / "benchmarks" / "results" / "pinn.json"

import burgers  # noqa: E402
import poisson_1d  # noqa: E402

from nnlemma.pinn import Options, check_problem  # noqa: E402
from nnlemma.pinn.plot import write_plot  # noqa: E402


def first_time(trace: list[dict], ratio: float) -> float | None:
    """Seconds until certified <= ratio x sampled first held (None if never)."""
    return next((t["seconds"] for t in trace if t["sampled"] > 0 and t["certified"] <= ratio * t["sampled"]), None)


def at_time(trace: list[dict], seconds: float) -> float:
    """The certified maximum at ``seconds`` (the last trace entry before it)."""
    return [t for t in trace if t["seconds"] <= seconds][-1]["certified"]


def run(problem, opts: Options) -> tuple[dict, float]:
    t = time.perf_counter()
    rep = check_problem(problem, opts)
    return rep, time.perf_counter() - t


def summary(rep: dict, wall: float) -> dict:
    parts = []
    for (res, _), p in zip(rep["_internal"], rep["parts"]):
        parts.append({**p, "seconds_to_ratio_2": first_time(res.trace, 2.0),
                      "seconds_to_ratio_1.5": first_time(res.trace, 1.5),
                      "trace": res.trace[:: max(1, len(res.trace) // 60)] + res.trace[-1:]})
    return {"certified_max_abs_residual": rep["certified_max_abs_residual"],
            "sampled_max_abs_residual": rep["sampled_max_abs_residual"], "ratio": rep["ratio"],
            "boxes": rep["boxes"], "wall_s": round(wall, 1), "guarantee": rep["guarantee"], "parts": parts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--baseline-timeout", type=float, default=600.0)
    ap.add_argument("--only", choices=["burgers", "poisson"])
    args = ap.parse_args()
    out = json.loads(OUT.read_text()) if OUT.exists() and args.only else {}
    opts = Options(jobs=2, timeout=args.timeout)
    if args.only in (None, "poisson"):
        p = poisson_1d.problem()
        rep, wall = run(p, opts)
        out["poisson_1d"] = {**summary(rep, wall), "pointwise": poisson_1d.pointwise_table(p)}
        print("poisson_1d", rep["certified_max_abs_residual"], rep["ratio"], round(wall, 1), "s", flush=True)
        write_result(OUT, out)
    if args.only in (None, "burgers"):
        p = burgers.problem()
        rep, wall = run(p, opts)
        write_plot(rep, p, OUT.parent / "pinn_burgers.png")
        row = summary(rep, wall)
        print("burgers", rep["certified_max_abs_residual"], rep["ratio"], round(wall, 1), "s", flush=True)
        pde = rep["_internal"][0][0]
        # baseline: plain CROWN on the PDE part only, same search, compared at equal elapsed time
        base, bwall = run(replace(p, conditions=[]), replace(opts, products=False, timeout=args.baseline_timeout))
        bres = base["_internal"][0][0]
        tb = bres.trace[-1]["seconds"]
        row["baseline_plain_crown"] = {
            "seconds": round(tb, 1), "certified_max_abs_residual": bres.certified_max, "boxes": len(bres.lo),
            "ours_at_same_seconds": at_time(pde.trace, tb),
            "certified_ratio_baseline_over_ours": bres.certified_max / at_time(pde.trace, tb)}
        out["burgers"] = {"target": "certified <= 2x sampled in under 1800 s on 2 cores", "jobs": 2,
                          "semantics": "float32", **row}
        print("baseline", bres.certified_max, "at", round(tb, 1), "s; ours then", at_time(pde.trace, tb), flush=True)
        write_result(OUT, out)


if __name__ == "__main__":
    main()
