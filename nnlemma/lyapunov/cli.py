"""``nnlemma lyapunov SYSTEM``: load a system file, check it, print and write the results.

A system file is Python defining ``system(data_dir=None)`` (or ``system()``) that returns a
:class:`~nnlemma.lyapunov.System`. The exit code is 0 when the check ran (the verdict is printed
and in the JSON, like ``nnlemma verify``), 2 on bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputError
from ..userfile import load_user_object
from .system import System


def add_arguments(p) -> None:
    p.add_argument("system", help="Python file defining system() -> nnlemma.lyapunov.System")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--rho", type=float, help="check this level instead of the system's own")
    g.add_argument("--find-rho", action="store_true", help="find the largest level it can certify (bisection)")
    p.add_argument("--rho-steps", type=int, default=6, help="with --find-rho: bisection steps (default 6)")
    p.add_argument("--semantics", choices=["float32", "real"], default="float32",
                   help="float32: the closed loop as the kernel executes it (default); real: exact arithmetic")
    p.add_argument("--data", metavar="DIR", help="passed to system(data_dir=DIR) (where the weights are)")
    p.add_argument("--cell-timeout", type=float, default=120.0, help="seconds per cell before it is bisected")
    p.add_argument("--max-depth", type=int, default=8, help="most bisections of a region cell")
    p.add_argument("--timeout", type=float, default=None, help="overall time budget in seconds")
    p.add_argument("--json", metavar="OUT", help="write the report as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="2-D systems: certified/failed leaves, V = rho, counterexamples")
    p.add_argument("--certificate", metavar="OUT", help="write the leaf partition and proofs (float32, verified "
                                                        "only); re-check with `nnlemma check SYSTEM.py OUT`")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def load_system(path: str, data_dir: str | None = None) -> System:
    """Import the system file and call its ``system()``."""
    return load_user_object(path, "system", System, "nnlemma.lyapunov.System", data_dir=data_dir)


def run_command(args, prover=None) -> int:
    """``prover(graph, prop, seconds_left) -> (proved, reason, summary)`` backs --prove."""
    from ..verify.report import write_json
    from .run import check_system
    for out in (args.json, args.plot, args.certificate):
        if out and not Path(out).resolve().parent.is_dir():
            raise InputError(f"{out}: the output directory does not exist")
    if args.certificate and args.semantics != "float32":
        raise InputError("--certificate backs float32 results only")
    if args.prove and args.semantics != "float32":
        raise InputError("--prove backs float32 results only")
    system = load_system(args.system, args.data)

    def progress(name, cell, status):
        if not args.quiet:
            print(f"  {name:<20} cell {cell.path:<14} {status}", file=sys.stderr, flush=True)

    rep = check_system(system, rho=args.rho, find_rho=args.find_rho, semantics=args.semantics,
                       cell_timeout=args.cell_timeout, max_depth=args.max_depth, timeout=args.timeout,
                       rho_steps=args.rho_steps, record=bool(args.certificate), progress=progress)
    if prover is not None:
        from .run import guarantee
        _prove(rep, prover)
        rep["guarantee"] = guarantee(system, rep["rho"], rep["semantics"], rep["verified"],
                                     rep["boundary_min_V_found"]["V"])
    for c in rep["conditions"]:
        v = {True: "holds", False: "FAILS", None: "unknown"}[c["verdict"]]
        extra = "" if c["certified_volume_fraction"] in (None, 1.0) else \
            f" (certified volume {100 * c['certified_volume_fraction']:.1f}%)"
        print(f"{c['name']:<16} {v}{extra}  {c['seconds']:.1f} s  {c['reason']}")
    for cx in rep["counterexamples"][:5]:
        print(f"counterexample ({cx['condition']}): x = {cx['x']}")
    verdict = {True: "true", False: "false", None: "null"}[rep["verified"]]
    print(f"verified: {verdict}  rho = {rep['rho']}  ({rep['semantics']}, {rep['seconds']:.1f} s)")
    print(rep["guarantee"])
    if args.plot:
        from .plot import write_plot
        print(f"plot: {write_plot(rep, system, args.plot)}")
    if args.certificate:
        if rep["verified"] is True:
            from .certificate import build, write
            write(args.certificate, build(system, rep))
            print(f"certificate: {args.certificate}")
        else:
            print("no certificate written: the result is not verified", file=sys.stderr)
    if args.json:
        write_json(args.json, {k: v for k, v in rep.items() if k != "_internal"})
    return 0


def _prove(rep: dict, prover) -> None:
    """Back every decided search by proof obligations; a search they cannot back becomes unknown."""
    conds = rep["_internal"]["conditions"]
    done: dict[str, tuple[bool, str]] = {}
    graph = rep["_internal"]["graph"]
    for c, js in zip([c for c in conds if c.name != "v_eq_zero"],
                     [j for j in rep["conditions"] if j["name"] != "v_eq_zero"]):
        if c.verdict is not True or c.prop is None:
            continue
        if c.searched_as not in done:
            proved, reason, _ = prover(graph, c.prop, None)
            done[c.searched_as] = (proved, reason)
        proved, reason = done[c.searched_as]
        js["proved_by_obligations"] = proved
        js["reason"] = (js["reason"] + "; " if js["reason"] else "") + reason
        if not proved:
            js["verdict"] = None
    verdicts = [j["verdict"] for j in rep["conditions"]]
    rep["verified"] = False if False in verdicts else (True if all(v is True for v in verdicts) else None)
