"""``nnlemma obligations generate|discharge``: the command-line front end of the obligations.

Lives outside the core so that ``nnlemma/`` never imports a solver: ``nnlemma.cli`` imports this
module only when an ``obligations`` command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from nnlemma.errors import InputError


def add_parser(sub) -> None:
    o = sub.add_parser("obligations", help="generate and discharge per-op proof obligations (SMT)")
    osub = o.add_subparsers(dest="obligations_command", required=True)
    g = osub.add_parser("generate", help="write DIR/manifest.json and DIR/smt2/*.smt2 for a model and box",
                        description="The claim is the model's float32 IBP bounds over the box: each "
                                    "obligation is one node's (or one multiply-add's) lemma, as an "
                                    "SMT-LIB2 file asserting its negation (unsat = proved).")
    g.add_argument("model", help="model file (.onnx or nnlemma IR .json)")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--vnnlib", metavar="SPEC", help="take the input box from a VNN-LIB property; the claim then also "
                                                     "includes that the output bounds imply it")
    src.add_argument("--box", metavar="BOX.json", help='input box as {"lo": [...], "hi": [...]}')
    g.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(fn=cmd_generate)
    f = osub.add_parser("fallback", help="tightest float32 bounds of a scalar-function model by solver "
                                          "bisection (for functions whose IBP bound is loose)",
                        description="MODEL maps one float32 x to one float32 y with elementwise ops "
                                    "(e.g. x/(1+|x|), hard-swish). Bisection over ordered float32 bit "
                                    "patterns finds the tightest bounds the solver proves over [LO, HI]; "
                                    "the bounds are written as obligations with -o.")
    f.add_argument("model", help="model file (.onnx or nnlemma IR .json)")
    f.add_argument("--lo", type=float, required=True)
    f.add_argument("--hi", type=float, required=True)
    f.add_argument("--solver", default="bitwuzla", choices=["z3", "bitwuzla", "cvc5"])
    f.add_argument("--timeout", type=float, default=20.0, metavar="S", help="per-query time limit")
    f.add_argument("-o", "--out", metavar="DIR", help="write the bounds' obligations here")
    f.set_defaults(fn=cmd_fallback)
    lib = osub.add_parser("library", help="prove the rounding-model library lemmas once and store the results",
                          description="Proves every library lemma case (and each case split's coverage) "
                                      "and writes the proof store the corner route reads; a lemma is "
                                      "used only if all its cases and its coverage are proved.")
    lib.add_argument("--solver", default="bitwuzla", choices=["z3", "bitwuzla", "cvc5"])
    lib.add_argument("--timeout", type=float, default=60.0, metavar="S", help="per-case time limit")
    lib.add_argument("--route", action="store_true",
                     help="only what the corner route rests on (monotonicity of add and mul and the "
                          "queries they cite), instead of the whole library")
    lib.add_argument("-o", "--out", metavar="FILE", help="proof store (default: the package's library_proofs.json)")
    lib.set_defaults(fn=cmd_library)
    d = osub.add_parser("discharge", help="prove every obligation of DIR; writes DIR/results.json")
    d.add_argument("dir", help="directory written by `obligations generate`")
    d.add_argument("--solver", default="z3", choices=["z3", "bitwuzla", "cvc5"])
    d.add_argument("--jobs", type=int, default=0, metavar="N", help="worker processes (default: all cores)")
    d.add_argument("--timeout", type=float, default=60.0, metavar="S", help="per-obligation time limit")
    d.add_argument("--cache", metavar="DB", help="proof cache (default DIR/cache.sqlite)")
    d.add_argument("--no-cache", action="store_true", help="do not read or write a proof cache")
    d.add_argument("--real-solver", choices=["z3", "cvc5", "pysmt-z3", "pysmt-cvc5"],
                   help="solver for the real-arithmetic (QF_LRA) obligations; default: --solver, or z3 "
                        "when --solver has no real arithmetic (bitwuzla). Not used with --scheduler")
    d.add_argument("--no-corners", action="store_true",
                   help="send every obligation to the solver (no corner route even when the library "
                        "monotonicity lemmas are recorded as proved)")
    d.add_argument("--cross-check", metavar="SOLVER", choices=["z3", "bitwuzla", "cvc5"],
                   help="re-discharge every obligation with a second solver (no cache, no corner route; "
                        "results.SOLVER.json) and report any proved/refuted disagreement")
    d.add_argument("--json", metavar="OUT", help="also write the summary as JSON here")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.add_argument("--scheduler", metavar="ADDR",
                   help="solve on a running Dask cluster (tcp://HOST:PORT) instead of local worker "
                        "processes; the SMT-LIB text is sent, so workers need no access to DIR")
    d.set_defaults(fn=cmd_discharge)
    r = osub.add_parser("report", help="write DIR/report.md and DIR/report.html (verdict, tables, plots)",
                        description="A Markdown and a self-contained HTML report of an obligations "
                                    "directory: the claim, the verdict, a per-kind/per-op table, gaps, "
                                    "every refuted obligation and encoder disagreement, the slowest "
                                    "obligations and plots (plots need matplotlib).")
    r.add_argument("dir", help="directory written by `obligations generate` (and `discharge`)")
    r.add_argument("--out", metavar="PATH_PREFIX", help="write PATH_PREFIX.md/.html (default DIR/report)")
    r.add_argument("--format", default="both", choices=["md", "html", "both"], help="default: both")
    r.set_defaults(fn=cmd_report)


def _box(args, graph) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if args.box:
        try:
            data = json.loads(Path(args.box).read_text())
            lo, hi = np.asarray(data["lo"], np.float64), np.asarray(data["hi"], np.float64)
        except OSError as exc:
            raise InputError(f"{args.box}: cannot read ({exc.strerror})") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f'{args.box}: not a box {{"lo": [...], "hi": [...]}} ({exc})') from None
        with np.errstate(over="ignore"):
            lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
        if np.any(lo32.astype(np.float64) != lo) or np.any(hi32.astype(np.float64) != hi):
            raise InputError(f"{args.box}: box endpoints must be float32 values (a rounded endpoint "
                             "would change the region)")
        return [("", lo32, hi32, None)]
    from nnlemma import vnnlib
    prop = vnnlib.load(args.vnnlib)
    out = []
    for i, case in enumerate(prop.cases):
        b = case.box.float32_bounds()
        if b is None:
            continue  # no float32 input in this part of the region: nothing to prove
        out.append((f".case{i}" if len(prop.cases) > 1 else "", *b, case))
    return out


def cmd_generate(args) -> int:
    from nnlemma.cli import _load

    from .generate import generate_dir
    graph = _load(args.model)
    name = Path(args.model).stem
    for suffix, lo, hi, case in _box(args, graph):
        out = Path(args.out) / suffix.lstrip(".") if suffix else Path(args.out)
        trailer = generate_dir(graph, lo, hi, out, model=name + suffix,
                               source={"model_file": str(args.model), "spec": args.vnnlib or args.box},
                               progress=not args.quiet, case=case)
        c = trailer["counts"]
        print(f"{out}: {c['obligations']} obligations ({c['distinct_formulas']} distinct formulas), "
              f"{len(trailer['gaps'])} gap(s), {trailer['seconds']:.1f} s")
        for g in trailer["gaps"]:
            print(f"  gap: {g['node']} ({g['op']}): {g['reason']}")
    return 0


def cmd_discharge(args) -> int:
    from nnlemma.verify.report import write_json
    from solvers.discharge import DischargeOptions, discharge, summary_table

    from .corners import proved_route_lemmas
    if args.jobs < 0:
        raise InputError(f"--jobs must be >= 0, got {args.jobs}")
    if args.timeout <= 0:
        raise InputError(f"--timeout must be positive, got {args.timeout}")
    opts = DischargeOptions(solver=args.solver, jobs=args.jobs, timeout_s=args.timeout,
                            cache="" if args.no_cache else args.cache, progress=not args.quiet,
                            proved_lemmas=frozenset() if args.no_corners else frozenset(proved_route_lemmas()),
                            scheduler=args.scheduler, real_solver=args.real_solver)
    summary = discharge(args.dir, opts)
    print(summary_table(summary))
    c = summary["counts"]
    print(f"{summary['verdict']}: {c.get('proved', 0)}/{summary['obligations']} proved, "
          f"{c.get('refuted', 0)} refuted, {c.get('unknown', 0)} unknown"
          + (f", {c['encoder-disagreement']} ENCODER DISAGREEMENT(S)" if c.get("encoder-disagreement") else "")
          + f" in {summary['wall_seconds']:.1f} s ({summary['solver']}, {summary['jobs']} job(s))")
    if args.cross_check:
        from dataclasses import replace

        from solvers.discharge import cross_check
        name = f"results.{args.cross_check}.json"
        discharge(args.dir, replace(opts, solver=args.cross_check, cache="", proved_lemmas=frozenset(),
                                    results_name=name))
        cc = cross_check(args.dir, "results.json", name)
        summary["cross_check"] = {"solver": args.cross_check, **cc}
        for dis in cc["disagreements"]:
            print(f"SOLVER DISAGREEMENT on {dis['id']}: {dis}", file=sys.stderr)
        print(f"cross-check with {args.cross_check}: {cc['compared']} compared, "
              f"{len(cc['disagreements'])} disagreement(s)")
    if args.json:
        write_json(args.json, summary)
    if summary.get("cross_check", {}).get("disagreements"):
        return 1
    return 0 if summary["verdict"] == "proved" else 1


def add_prove_arguments(v) -> None:
    """``nnlemma verify --prove`` options (the verify parser lives in nnlemma.cli)."""
    v.add_argument("--prove", action="store_true",
                   help="back an unsat verdict by proof obligations: split the region until float32 IBP "
                        "bounds imply the property, generate every lemma and discharge it; unsat only if "
                        "every obligation is proved, otherwise unknown")
    v.add_argument("--prove-dir", metavar="DIR", help="with --prove: keep the obligations directory here")
    v.add_argument("--prove-solver", default="bitwuzla", choices=["z3", "bitwuzla", "cvc5"],
                   help="with --prove: solver for the lemmas the corner route does not decide")
    v.add_argument("--prove-leaves", type=int, default=4096, metavar="N",
                   help="with --prove: most IBP leaves per case before giving up (unknown)")
    v.add_argument("--jobs", type=int, default=0, metavar="N", help="worker processes (with --prove: for the obligations; nnlemma pinn: also for bounding)")


def prove_property(graph, prop, args, budget_s: float | None) -> tuple[bool, str, dict]:
    """Run the obligation chain for ``prop``; ``(proved, reason, summary)``."""
    import tempfile

    from solvers.discharge import DischargeOptions, discharge

    from .corners import proved_route_lemmas
    from .prove import generate_property
    keep = args.prove_dir
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="nnlemma-prove-"))
    try:
        trailer = generate_property(graph, prop, work, model=Path(args.model).stem,
                                    max_leaves=args.prove_leaves)
        if trailer["gaps"]:
            g = trailer["gaps"][0]
            return False, f"--prove: {g['node']} ({g['op']}): {g['reason']}", {"gaps": trailer["gaps"]}
        opts = DischargeOptions(solver=args.prove_solver, jobs=args.jobs, progress=not args.quiet,
                                timeout_s=60.0 if budget_s is None else max(1.0, min(60.0, budget_s)),
                                proved_lemmas=frozenset(proved_route_lemmas()))
        summary = discharge(work, opts)
    finally:
        if not keep:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
    c = summary["counts"]
    text = (f"{c.get('proved', 0)}/{summary['obligations']} obligations proved "
            f"({summary['solver']}, {summary['wall_seconds']:.1f} s)")
    return summary["verdict"] == "proved", ("proved by obligations: " if summary["verdict"] == "proved"
                                            else "--prove: not every obligation proved: ") + text, summary


def cmd_report(args) -> int:
    from .report import write_report
    for path in write_report(args.dir, args.out, args.format):
        print(path)
    return 0


def cmd_fallback(args) -> int:
    from nnlemma.cli import _load
    from solvers import get_solver

    from . import manifest
    from .fallback import UnsupportedScalarFunction, fallback_bounds
    graph = _load(args.model)
    lo, hi = np.float32(args.lo), np.float32(args.hi)
    if not (np.float64(lo) == args.lo and np.float64(hi) == args.hi and lo <= hi):
        raise InputError(f"--lo/--hi must be float32 values with lo <= hi, got [{args.lo}, {args.hi}]")
    try:
        res = fallback_bounds(graph, lo, hi, get_solver(args.solver), args.timeout,
                              model=Path(args.model).stem)
    except UnsupportedScalarFunction as exc:
        raise InputError(f"{args.model}: {exc}") from None
    print(res.report())
    if args.out:
        manifest.write(Path(args.out), {"model": Path(args.model).stem, "claim": res.report()},
                       res.obligations)
        print(f"{len(res.obligations)} obligations written to {args.out}")
    return 0


def cmd_library(args) -> int:
    import time

    from nnlemma.verify.report import write_json
    from solvers import get_solver

    from .corners import STORE, proved_route_lemmas, route_requirements
    from .library import exactness_checks, library_lemmas, prove_library
    obs, checks = library_lemmas(), exactness_checks()
    if args.route:
        need = route_requirements()
        obs = [o for o in obs if o.id in need]
        checks = [c for c in checks if c.id in need]
    hashes = {o.id: o.formula_hash for o in obs} | {c.id: c.formula_hash for c in checks}
    solver = get_solver(args.solver)
    t0 = time.perf_counter()
    rows = prove_library(lambda: get_solver(args.solver), args.timeout,
                         progress=lambda r: print(f"{r['status']:<9} {r['seconds']:8.2f} s  {r['id']}"),
                         obligations=obs, checks=checks)
    for r in rows:
        r["hash"] = hashes.get(r["id"])  # derived cases (proved from cited queries) have none
    out = Path(args.out) if args.out else STORE
    write_json(out, {"format": "nnlemma-library-proofs/1", "solver": solver.version,
                     "timeout_s": args.timeout, "wall_seconds": round(time.perf_counter() - t0, 2),
                     "rows": rows})
    print(f"{sum(r['status'] == 'proved' for r in rows)}/{len(rows)} proved; store {out}; "
          f"corner route lemmas available: {', '.join(sorted(proved_route_lemmas(out))) or 'none'}")
    return 0
