"""Discharge an obligations directory: cache, process pool, replay of every counterexample.

For each manifest entry (streamed) the proof cache is consulted first (key: formula hash and
solver version); equal formulas are solved once per run. The rest go to a pool of worker
processes, each with its own solver context, and every result is written to the cache as soon as
it arrives (one committed transaction each), so a killed run loses nothing already proved.

Statuses: ``proved`` (the solver said ``unsat`` to the lemma's negation), ``refuted`` (``sat`` and
the model replays on the float32 kernel), ``encoder-disagreement`` (``sat`` but the model does not
replay: an encoder or solver bug, reported loudly; never a result about the model), ``unknown``
(timeout, solver ``unknown``, crash). The claim is ``proved`` only if every obligation is proved
and no node was left without obligations (a gap).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from obligations import corners
from obligations.manifest import iter_entries, read_header
from obligations.replay import replay

from . import get_solver
from .cache import ProofCache
from .outcome import Outcome


@dataclass
class DischargeOptions:
    solver: str = "z3"
    jobs: int = 0  # 0: all cores
    timeout_s: float = 60.0
    cache: str | None = None  # default DIR/cache.sqlite; "" disables the cache
    progress: bool = True
    # library lemmas proved once (see obligations.library); the multiply-add lemmas they cover
    # are decided by kernel evaluation at the domain corners instead of a solver call
    proved_lemmas: frozenset[str] = frozenset()
    scheduler: str | None = None  # a Dask scheduler address (tcp://HOST:PORT) instead of a local pool
    results_name: str = "results.json"
    real_solver: str | None = None  # for QF_LRA obligations (e.g. pysmt-cvc5); default: see _solve


_WORKER: dict = {}  # per worker *process*: its own solver context (never shared)


def _init_worker(solver: str, real_solver: str | None = None) -> None:
    _WORKER["solver"] = get_solver(solver)
    if real_solver:
        _WORKER["reals"] = get_solver(real_solver)


# solvers without real arithmetic hand QF_LRA/QF_FPLRA obligations to Z3
_NO_REALS = {"bitwuzla"}


def _solve(path: str, timeout_s: float, logic: str = "QF_FP") -> Outcome:
    solver = _WORKER.get("solver")
    if logic != "QF_FP" and ("reals" in _WORKER or getattr(solver, "name", None) in _NO_REALS):
        solver = _WORKER.setdefault("reals", get_solver("z3"))
    try:
        text = Path(path).read_text()
    except OSError as exc:
        return Outcome("unknown", 0.0, getattr(solver, "name", "?"), reason=f"cannot read {path}: {exc}")
    try:
        return solver.check_text(text, timeout_s)
    except Exception as exc:  # a backend bug must not become a proof
        return Outcome("unknown", 0.0, solver.name, reason=f"solver crashed: {type(exc).__name__}: {exc}")


def _by_lemmas(entry: dict, proved: frozenset[str]) -> Outcome | None:
    """The corner route (:mod:`obligations.corners`), or None when it does not apply."""
    if not proved:
        return None
    t0 = time.perf_counter()
    decided = corners.decide(entry.get("replay", {}), proved)
    if decided is None:
        return None
    status, model = decided
    used = ", ".join(corners.LEMMAS[entry["replay"]["step"]]) or "none"
    return Outcome(status, time.perf_counter() - t0, f"corners (library lemmas: {used})", model)


def _status(outcome: Outcome, entry: dict) -> tuple[str, str]:
    if outcome.status == "unsat":
        return "proved", ""
    if outcome.status == "sat":
        ok, detail = replay(entry.get("replay", {}), outcome.model)
        if ok is None:  # the lemma's reduction was inconclusive, which is not a disagreement
            return "unknown", detail
        return ("refuted", detail) if ok else ("encoder-disagreement", detail)
    return "unknown", outcome.reason


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="obl", file=sys.stderr, dynamic_ncols=True)

    def step(self, status: str, counts: dict) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: v for k, v in counts.items() if v}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def discharge(directory: str | os.PathLike, options: DischargeOptions | None = None) -> dict:
    """Discharge every obligation of ``directory``; writes ``results.json``; returns its summary."""
    opts = options or DischargeOptions()
    d = Path(directory)
    header = read_header(d)
    total = header.get("counts", {}).get("obligations", 0)
    solver = get_solver(opts.solver)
    version = solver.version
    jobs = opts.jobs or os.cpu_count() or 1
    cache = ProofCache(opts.cache or d / "cache.sqlite") if opts.cache != "" else None
    counts: dict[str, int] = defaultdict(int)
    per: dict[tuple[str, str], list[float]] = defaultdict(list)
    per_status: dict[tuple[str, str, str], int] = defaultdict(int)
    rows_path = d / f".results.{os.getpid()}.jsonl"
    known: dict[str, Outcome] = {}
    waiting: dict[str, list[dict]] = {}
    progress = _Progress(total, opts.progress)
    t0 = time.perf_counter()

    def record(entry: dict, outcome: Outcome, cached: bool, rows) -> None:
        status, detail = _status(outcome, entry)
        counts[status] += 1
        per[(entry["kind"], entry["op"])].append(outcome.seconds)
        per_status[(entry["kind"], entry["op"], status)] += 1
        row = {"id": entry["id"], "kind": entry["kind"], "op": entry["op"], "status": status,
               "seconds": round(outcome.seconds, 6), "solver": outcome.solver or solver.name,
               "hash": entry["hash"], "cached": cached}
        if detail:
            row["detail"] = detail
        if outcome.status == "sat":
            row["counterexample"] = {k: v if isinstance(v, (bool, int)) else str(v)
                                     for k, v in outcome.model.items()}  # Fractions as "p/q"
        rows.write(json.dumps(row) + "\n")
        progress.step(status, counts)
        if status == "encoder-disagreement":
            print(f"nnlemma: ENCODER DISAGREEMENT on {entry['id']}: the solver's model does not "
                  f"replay on the kernel ({detail})", file=sys.stderr)

    def finish(h: str, outcome: Outcome, rows) -> None:
        known[h] = outcome
        if cache is not None and outcome.status in ("sat", "unsat"):
            cache.put(h, version, outcome)
        for e in waiting.pop(h, []):
            record(e, outcome, False, rows)

    if opts.scheduler:
        from .dask_pool import DaskPool
        pool = DaskPool(opts.scheduler, opts.solver)
        jobs = pool.workers
    else:
        pool = ProcessPoolExecutor(jobs, initializer=_init_worker,
                                   initargs=(opts.solver, opts.real_solver)) if jobs > 1 else None
    if pool is None:
        _init_worker(opts.solver, opts.real_solver)
    inflight: dict = {}
    try:
        with open(rows_path, "w") as rows:
            for entry in iter_entries(d):
                h = entry["hash"]
                if h in known:
                    record(entry, known[h], True, rows)
                    continue
                if h in waiting:
                    waiting[h].append(entry)
                    continue
                hit = cache.get(h, version) if cache is not None else None
                if hit is not None:
                    known[h] = hit
                    record(entry, hit, True, rows)
                    continue
                waiting[h] = [entry]
                by_lemma = _by_lemmas(entry, opts.proved_lemmas)
                if by_lemma is not None:
                    known[h] = by_lemma
                    for e in waiting.pop(h):
                        record(e, by_lemma, False, rows)
                    continue
                path = str(d / entry["file"])
                if pool is None:
                    finish(h, _solve(path, opts.timeout_s, entry["logic"]), rows)
                    continue
                inflight[pool.submit(_solve, path, opts.timeout_s, entry["logic"])] = h
                while len(inflight) >= 4 * jobs:
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for fut in done:
                        finish(inflight.pop(fut), fut.result(), rows)
            while inflight:
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
                    finish(inflight.pop(fut), fut.result(), rows)
    finally:
        progress.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if cache is not None:
            cache.close()
    wall = time.perf_counter() - t0
    gaps = header.get("gaps", [])
    n = sum(counts.values())
    verdict = ("refuted" if counts.get("refuted") else
               "proved" if n and counts.get("proved", 0) == n and not gaps else "unknown")
    summary = {"verdict": verdict, "solver": version, "jobs": jobs, "timeout_s": opts.timeout_s,
               "wall_seconds": round(wall, 3), "obligations": n, "counts": dict(counts),
               "gaps": gaps, "by_kind_op": _table(per, per_status)}
    _write_results(d / opts.results_name, summary, rows_path)
    return summary


def _table(per, per_status) -> list[dict]:
    out = []
    for (kind, op), secs in sorted(per.items()):
        row = {"kind": kind, "op": op, "count": len(secs), "seconds_total": round(sum(secs), 3),
               "seconds_median": round(statistics.median(secs), 4), "seconds_max": round(max(secs), 4)}
        for (k, o, st), c in per_status.items():
            if (k, o) == (kind, op):
                row[st] = c
        out.append(row)
    return out


def _write_results(path: Path, summary: dict, rows_path: Path) -> None:
    """``results.json``: the summary keys, then one obligation result per line (streamed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f, open(rows_path) as rows:
        f.write("{\n")
        for k, v in summary.items():
            f.write(f"{json.dumps(k)}: {json.dumps(v)},\n")
        f.write('"obligations": [\n')
        for i, line in enumerate(rows):
            f.write(("," if i else "") + line)
        f.write("]\n}\n")
    os.replace(tmp, path)
    rows_path.unlink()


def result_rows(path: str | os.PathLike):
    """The per-obligation rows of a results file, one at a time (streamed)."""
    with open(path) as f:
        for line in f:
            if line.startswith("{\"id\"") or line.startswith(",{\"id\""):
                yield json.loads(line.lstrip(","))


def cross_check(directory: str | os.PathLike, first: str, second: str) -> dict:
    """Compare two results files of the same directory obligation by obligation: a ``proved``
    against a ``refuted`` is a disagreement between the solvers (an encoder or solver bug);
    ``unknown`` on either side is not."""
    d = Path(directory)
    a = {r["id"]: r["status"] for r in result_rows(d / first)}
    out = {"compared": 0, "disagreements": []}
    for r in result_rows(d / second):
        s1 = a.get(r["id"])
        if s1 is None:
            continue
        out["compared"] += 1
        if {s1, r["status"]} == {"proved", "refuted"}:
            out["disagreements"].append({"id": r["id"], first: s1, second: r["status"]})
    return out


def summary_table(summary: dict) -> str:
    """The per-kind, per-op table printed after a discharge."""
    cols = ["proved", "refuted", "unknown", "encoder-disagreement"]
    lines = [f"{'kind':<16} {'op':<12} {'count':>7} " + " ".join(f"{c[:8]:>8}" for c in cols)
             + f" {'median s':>9} {'total s':>9}"]
    for r in summary["by_kind_op"]:
        lines.append(f"{r['kind']:<16} {r['op']:<12} {r['count']:>7} "
                     + " ".join(f"{r.get(c, 0):>8}" for c in cols)
                     + f" {r['seconds_median']:>9.4f} {r['seconds_total']:>9.2f}")
    for g in summary["gaps"]:
        lines.append(f"gap: {g['node']} ({g['op']}): {g['reason']}")
    return "\n".join(lines)
