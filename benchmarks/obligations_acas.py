"""Proof obligations for the float32 IBP bounds of an ACAS Xu network over prop_1's input box.

Measures, in one run on this machine:

* generation: obligation count (per kind/op/step), distinct formulas, seconds;
* per-obligation solver time for Z3 and Bitwuzla side by side, on the same random sample of
  obligations (one process, one query at a time): median, 90th percentile, max, statuses;
* the fastest sound route built: multiply-add lemmas decided at the domain corners (citing the
  library monotonicity lemmas, only if they are recorded as proved in the library proof store),
  everything else by the chosen solver, ``--jobs`` worker processes, fresh cache: wall time; then
  the cached rerun's wall time;
* optionally (``--full-smt``) the same discharge with no lemma route: every obligation by the solver;
* the baseline: one monolithic Z3 FP query for the whole network (the claim that output 0 stays
  below its IBP upper bound), with ``--mono-timeout``;
* peak memory: max RSS of the main process and of the worker processes.

Writes ``benchmarks/results/obligations_acas.json``.

    python benchmarks/obligations_acas.py [--net 1_1] [--sample 150] [--jobs 2] [--full-smt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from encoders import terms as T
from encoders.graph import output_terms
from nnlemma import vnnlib
from nnlemma.bounds import ibp
from nnlemma.model_io import load_model
from obligations.fp_transfer import Dom, Gap, generate
from obligations.generate import generate_dir
from obligations.corners import proved_route_lemmas
from solvers import get_solver
from solvers.discharge import DischargeOptions, discharge

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "benchmarks" / "vnncomp2021" / "acasxu"
OUT = ROOT / "benchmarks" / "results" / "obligations_acas.json"


def stats(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {"n": len(xs), "median_s": round(statistics.median(xs), 4),
            "p90_s": round(xs[int(0.9 * (len(xs) - 1))], 4), "max_s": round(xs[-1], 4),
            "total_s": round(sum(xs), 2)} if xs else {"n": 0}


def max_rss_mb(who) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="1_1")
    ap.add_argument("--sample", type=int, default=150, help="obligations timed per solver")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--solver", default="bitwuzla", help="solver for what the lemma route leaves")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--mono-timeout", type=float, default=300.0)
    ap.add_argument("--full-smt", action="store_true", help="also discharge everything by the solver")
    args = ap.parse_args()
    model = DATA / f"ACASXU_run2a_{args.net}_batch_2000.onnx"
    g = load_model(model)
    lo, hi = vnnlib.load(DATA / "prop_1.vnnlib").cases[0].box.float32_bounds()
    shape = g.inputs[0].shape
    lo, hi = lo.reshape(shape), hi.reshape(shape)
    result: dict = {"model": model.name, "property": "prop_1 (unsplit input box)",
                    "claim": "float32 IBP bounds of every value", "machine": {
                        "cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()}}
    work = Path(tempfile.mkdtemp(prefix="nnlemma-obl-"))
    try:
        t0 = time.perf_counter()
        trailer = generate_dir(g, lo, hi, work / "obl", model=f"acas_{args.net}")
        result["generate"] = {"seconds": round(time.perf_counter() - t0, 2), **trailer["counts"],
                              "gaps": trailer["gaps"]}
        print("generated", result["generate"])

        obls = [o for o in generate(g, ibp(g, lo, hi), "s") if not isinstance(o, Gap)]
        result["generate"]["by_step"] = dict(Counter(f"{o.op}:{o.replay['step']}" for o in obls))
        rng = random.Random(0)
        sample = rng.sample(obls, min(args.sample, len(obls)))
        per_solver = {}
        for name in ("z3", "bitwuzla"):
            s = get_solver(name)
            times: dict[str, list[float]] = {"all": [], "mac": [], "other": []}
            statuses: Counter = Counter()
            for o in sample:
                out = s.check(o.violation, args.timeout)
                statuses[out.status] += 1
                times["all"].append(out.seconds)
                times["mac" if o.replay["step"] == "mac" else "other"].append(out.seconds)
            per_solver[name] = {"version": s.version, "statuses": dict(statuses),
                                **{k: stats(v) for k, v in times.items()}}
            print(name, per_solver[name]["all"], dict(statuses))
        result["per_obligation_sample"] = per_solver

        store = proved_route_lemmas()
        result["lemma_route"] = {"proved_library_lemmas_used": sorted(store)}
        runs = {}
        for label, lemmas in (("fastest_route", frozenset(store)),) + \
                ((("full_smt", frozenset()),) if args.full_smt else ()):
            cache = work / f"cache-{label}.sqlite"
            opts = DischargeOptions(solver=args.solver, jobs=args.jobs, timeout_s=args.timeout,
                                    cache=str(cache), progress=False, proved_lemmas=lemmas)
            first = discharge(work / "obl", opts)
            again = discharge(work / "obl", opts)
            runs[label] = {"solver": first["solver"], "jobs": args.jobs, "verdict": first["verdict"],
                           "counts": first["counts"], "wall_s": first["wall_seconds"],
                           "cached_rerun_wall_s": again["wall_seconds"],
                           "cached_rerun_verdict": again["verdict"], "by_kind_op": first["by_kind_op"]}
            print(label, {k: v for k, v in runs[label].items() if k != "by_kind_op"})
        result["discharge"] = runs

        rss_before_baseline = max_rss_mb(resource.RUSAGE_SELF)
        xs, ys = output_terms(g)
        b = ibp(g, lo, hi)
        y0_hi = b.outputs[0].hi.reshape(-1)[0]
        hyps = [Dom.interval(lo.reshape(-1)[i], hi.reshape(-1)[i]).member(x) for i, x in enumerate(xs)]
        violation = T.and_(*hyps, T.not_(T.fp_leq(ys[0], T.fp_bits(int(np.float32(y0_hi).view(np.uint32))))))
        z3s = get_solver("z3")
        mono = z3s.check(violation, args.mono_timeout)
        result["monolithic_baseline"] = {"solver": z3s.version, "claim": f"Y_0 <= {float(y0_hi)!r}",
                                         "status": mono.status, "seconds": round(mono.seconds, 2),
                                         "timeout_s": args.mono_timeout, "reason": mono.reason}
        print("monolithic", result["monolithic_baseline"])
        result["peak_rss_mb"] = {"main_before_baseline": rss_before_baseline,
                                 "main_with_monolithic_z3": max_rss_mb(resource.RUSAGE_SELF),
                                 "workers_max": max_rss_mb(resource.RUSAGE_CHILDREN)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
