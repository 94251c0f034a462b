"""Library lemmas: prove the binary32 rounding-model lemmas once, with Bitwuzla and Z3, and store
per-case status and time.

The lemmas, their case splits and formulations are in ``obligations/library.py``. Every query
(case obligations, coverage obligations, exactness checks) runs one at a time, on a fresh solver,
with a per-query time limit; the derived cases (proved by composition) are then recomputed from
their dependencies. A query that times out is ``unknown`` with its time limit — never proved.

Schedule (the machine has 2 shared cores; one solver process at a time):

1. Bitwuzla on every query, ``--timeout`` (default 60 s).
2. Z3 on every query with a short first limit ``--z3-first-timeout`` (default 5 s): Z3 proves
   the easy cases quickly and times out on nearly every case that needs a 24-bit circuit.
3. Z3 again, at ``--timeout``, on the queries it left unknown, in increasing order of Bitwuzla's
   time, while the wall-clock budget ``--budget-min`` (default 25 min) allows. A query not re-run
   keeps its first-pass result (``unknown`` with the first-pass limit).

Usage: ``python benchmarks/library_lemmas.py [--filter SUBSTR] [--solvers bitwuzla,z3]``; writes
``benchmarks/results/library_lemmas.json`` (rewritten after every phase).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from obligations import library as L  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "library_lemmas.json"


def solver_factory(name: str):
    if name == "z3":
        from solvers.z3_backend import Z3Solver
        return Z3Solver
    from solvers.text_backends import BitwuzlaSolver
    return BitwuzlaSolver


def machine_info() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()
        info["mem_total_gb"] = round(int(mem[1]) / 2 ** 20, 1)
    except OSError:
        pass
    return info


def lemma_table(lemmas: list[L.Lemma], ids: set[str]) -> list[dict]:
    out = []
    for lem in lemmas:
        queries = [o.id for o in lem.obligations() if o.id in ids]
        queries += [c.id for c in L.exactness_checks([lem]) if c.id in ids]
        if not queries:
            continue
        out.append({"id": lem.prefix, "op": lem.op, "lemma": lem.name, "statement": lem.statement,
                    "queries": queries,
                    "derived": [i for i in (f"{lem.prefix}/{d.name}" for d in lem.derived) if i in ids]})
    return out


def summarize(doc: dict) -> None:
    rows, solvers = doc["results"], doc["solvers_run"]
    summary = {}
    for s in solvers:
        mine = [r[s] for r in rows if s in r]
        summary[s] = {"queries": len(mine), "status": dict(Counter(r["status"] for r in mine)),
                      "total_seconds": round(sum(r["seconds"] for r in mine if r.get("kind") != "derived"), 1)}
    # combined: a query counts as proved if some solver proved it
    best = {r["id"]: ("proved" if any(r.get(s, {}).get("status") == "proved" for s in solvers)
                      else "open") for r in rows}
    lemma_status = []
    for lem in doc["lemmas"]:
        members = lem["queries"] + lem["derived"]
        per_solver = {s: all(next(r for r in rows if r["id"] == m).get(s, {}).get("status") == "proved"
                             for m in members) for s in solvers}
        open_ids = [m for m in members if best.get(m) != "proved"]
        lemma_status.append({"id": lem["id"], "proved": not open_ids,
                             "proved_by_one_solver": [s for s, ok in per_solver.items() if ok],
                             "open": open_ids})
    summary["lemmas"] = lemma_status
    summary["lemmas_proved"] = sum(x["proved"] for x in lemma_status)
    summary["lemmas_total"] = len(lemma_status)
    doc["summary"] = summary


def write(doc: dict, path: Path) -> None:
    summarize(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timeout", type=float, default=60.0, help="per-query limit (s)")
    ap.add_argument("--z3-first-timeout", type=float, default=5.0)
    ap.add_argument("--budget-min", type=float, default=25.0, help="wall-clock budget for the run")
    ap.add_argument("--solvers", default="bitwuzla,z3")
    ap.add_argument("--filter", default="", help="only query ids containing this substring")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    deadline = t_start + 60 * args.budget_min

    lemmas = L.lemmas()
    jobs = [j for j in L.library_jobs() if args.filter in j[0]]
    ids = {j[0] for j in jobs}
    derived = [(i, d) for i, d in L.derived_cases(lemmas) if args.filter in i]
    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    versions = {s: getattr(solver_factory(s)(), "version", s) for s in solvers}
    doc = {"benchmark": "library_lemmas",
           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine_info(), "loadavg_before": list(os.getloadavg()),
           "solver_versions": versions, "solvers_run": solvers,
           "settings": {"timeout_s": args.timeout, "z3_first_timeout_s": args.z3_first_timeout,
                        "budget_min": args.budget_min, "filter": args.filter},
           "lemmas": lemma_table(lemmas, ids | {i for i, _ in derived}),
           "results": [{"id": j[0], "kind": j[1]} for j in jobs]
           + [{"id": i, "kind": "derived"} for i, _ in derived]}
    by_id = {r["id"]: r for r in doc["results"]}

    def record(solver: str, row: dict) -> None:
        keep = {k: row[k] for k in ("status", "seconds", "timeout_s", "reason", "model") if k in row}
        by_id[row["id"]][solver] = keep
        print(f"[{time.monotonic() - t_start:7.1f}s] {solver:8s} {row['status']:9s} "
              f"{row['seconds']:7.2f}s  {row['id']}", file=sys.stderr, flush=True)

    def rederive(solver: str) -> None:
        rows = [dict(by_id[i][solver], id=i) for i in ids if solver in by_id[i]]
        for row in L.derive(rows, derived):
            by_id[row["id"]][solver] = {k: row[k] for k in ("status", "seconds", "reason") if k in row}
            by_id[row["id"]].update(deps=row["deps"], argument=row["argument"])

    for solver in solvers:
        factory = solver_factory(solver)
        first = args.z3_first_timeout if solver == "z3" else args.timeout
        for job in jobs:
            record(solver, L.run_job(factory(), job, first))
        rederive(solver)
        write(doc, args.out)
        if solver == "z3" and first < args.timeout:
            bw = lambda i: by_id[i].get("bitwuzla", {})  # noqa: E731
            again = [j for j in jobs if by_id[j[0]]["z3"]["status"] == "unknown"]
            again.sort(key=lambda j: (bw(j[0]).get("status") != "proved", bw(j[0]).get("seconds", 1e9)))
            for k, job in enumerate(again):
                if time.monotonic() + args.timeout > deadline:
                    doc["z3_not_rerun"] = [j[0] for j in again[k:]]
                    print(f"z3 second pass: budget reached, {len(again) - k} queries keep their "
                          f"{first:g} s result", file=sys.stderr)
                    break
                record(solver, L.run_job(factory(), job, args.timeout))
            rederive(solver)
            write(doc, args.out)
    doc["wall_seconds"] = round(time.monotonic() - t_start, 1)
    write(doc, args.out)
    s = doc["summary"]
    print(f"lemmas proved: {s['lemmas_proved']}/{s['lemmas_total']}; " +
          "; ".join(f"{k}: {s[k]['status']}" for k in solvers), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
