"""Lyapunov certification time per system on this machine (one process, 2 cores available; the
search itself uses one).

Systems: Yang et al.'s pendulum and path-tracking state-feedback controllers with their Lyapunov
networks at the paper's levels (rho = 672 and 36.48387), the two NLC discrete-time baselines at
their with-rho levels, and the continuous-time damped pendulum with a tanh Lyapunov network trained
by nnlemma (examples/lyapunov/). Target: each 2-D system certified in under 5 minutes. Baseline:
Yang et al. report seconds to minutes per system with alpha-beta-CROWN on a 48 GB GPU (not
float32-sound); it is not rerun here (no GPU), so the comparison is against their reported numbers.
Writes ``benchmarks/results/lyapunov.json`` and a PNG per system in ``benchmarks/results/``.

    python benchmarks/lyapunov.py [--only NAME] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from results_io import write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "lyapunov"))
OUT = ROOT / "benchmarks" / "results" / "lyapunov.json"

import damped_pendulum_continuous  # noqa: E402
import nlc_discrete  # noqa: E402
import path_tracking_state_feedback  # noqa: E402
import pendulum_state_feedback  # noqa: E402

from nnlemma.lyapunov import check_system  # noqa: E402
from nnlemma.lyapunov.plot import write_plot  # noqa: E402

SYSTEMS = {
    "pendulum_state_feedback": pendulum_state_feedback.system,
    "path_tracking_state_feedback": path_tracking_state_feedback.system,
    "nlc_discrete_pendulum": lambda: nlc_discrete.system(which="pendulum"),
    "nlc_discrete_path_tracking": lambda: nlc_discrete.system(which="path_tracking"),
    "damped_pendulum_continuous": damped_pendulum_continuous.system,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append")
    ap.add_argument("--timeout", type=float, default=1800.0)
    args = ap.parse_args()
    old = json.loads(OUT.read_text()) if OUT.exists() and args.only else {"systems": {}}
    rows = old["systems"]
    for name, make in SYSTEMS.items():
        if args.only and name not in args.only:
            continue
        system = make()
        t = time.perf_counter()
        rep = check_system(system, cell_timeout=300.0, max_depth=8, timeout=args.timeout)
        wall = time.perf_counter() - t
        write_plot(rep, system, OUT.parent / f"lyapunov_{name}.png")
        rep.pop("_internal")
        rows[name] = {"verified": rep["verified"], "rho": rep["rho"], "wall_s": round(wall, 1),
                      "target_s": 300, "conditions": rep["conditions"], "counterexamples": rep["counterexamples"],
                      "guarantee": rep["guarantee"], "boundary_min_V_found": rep["boundary_min_V_found"]}
        print(name, rep["verified"], round(wall, 1), "s", flush=True)
        write_result(OUT, {"semantics": "float32", "cell_timeout_s": 300, "systems": rows})


if __name__ == "__main__":
    main()
