"""``nnlemma pinn PROBLEM.py``: load a problem file, refine and bound every part, print and write.

A problem file is Python defining ``problem()`` (optionally ``problem(model=None)``, which gets
``--model PATH``) that returns a :class:`~nnlemma.pinn.PDE`. Exit code 0 when the run finished
(the numbers are printed and in the JSON), 2 on bad input.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import InputError
from ..userfile import load_user_object
from .problem import PDE


def add_arguments(p) -> None:
    p.add_argument("problem", help="Python file defining problem() -> nnlemma.pinn.PDE")
    p.add_argument("--model", dest="network", metavar="PATH", help="the network (ONNX or nnlemma JSON), passed to problem(model=PATH)")
    p.add_argument("--semantics", choices=["float32", "real"], default="float32",
                   help="float32: the residual as the kernel computes it at float32 points (default); real: the "
                        "real-valued network's residual at every real point")
    p.add_argument("--split-depth", type=int, default=60, metavar="N", help="most bisections of any box (default 60)")
    p.add_argument("--target-ratio", type=float, default=1.5, metavar="R",
                   help="refine until certified <= R x sampled maximum (default 1.5)")
    p.add_argument("--timeout", type=float, default=1800.0, metavar="S", help="overall time budget (default 1800 s)")
    p.add_argument("--max-boxes", type=int, default=2_000_000, metavar="N", help="most leaves per part")
    p.add_argument("--batch", type=int, default=512, metavar="N", help="boxes bounded per CROWN call (default 512)")
    p.add_argument("--all-derivatives", action="store_true",
                   help="bound every second partial too (default: u, its first partials and what the residual uses)")
    p.add_argument("--json", metavar="OUT", help="write the report as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="heat map of the certified |residual| bound over the domain")
    p.add_argument("--certificate", metavar="OUT", help="write the partition and its per-box bounds; re-check "
                                                        "with `nnlemma check PROBLEM.py OUT`")
    p.add_argument("--prove-max-boxes", type=int, default=64, metavar="N",
                   help="with --prove: parts with more leaves are not sent to the obligation chain")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def load_problem(path: str, model: str | None = None) -> PDE:
    """Import the problem file and call its ``problem()``."""
    if model is not None and not Path(model).is_file():
        raise InputError(f"{model}: no such model file")
    return load_user_object(path, "problem", PDE, "nnlemma.pinn.PDE", model=model)


def claim_property(res, claim: float):
    """``|residual| <= claim`` on every leaf of a part, as a VNN-LIB-style property whose violation
    per leaf is ``r > claim`` or ``r < -claim`` (strict: the bounds are inclusive)."""
    from fractions import Fraction

    from ..vnnlib import Atom, Box, Case, Property
    k, c = len(res.outputs), Fraction(claim)
    j = k - 1
    unsafe = ((Atom(((j, Fraction(-1)),), c, True),), (Atom(((j, Fraction(1)),), c, True),))
    n = res.lo.shape[1]
    cases = tuple(Case(Box(tuple(Fraction(float(v)) for v in l), tuple(Fraction(float(v)) for v in h),
                           (False,) * n, (False,) * n), unsafe) for l, h in zip(res.lo, res.hi))
    return Property(n, k, cases, f"<pinn part {res.name}: |residual| <= {claim!r}>")


def _prove(rep: dict, prover, max_leaves: int) -> None:
    """Back each part's certified maximum by proof obligations (float32 IBP on split leaves, every
    lemma discharged); a part they cannot back says why. The CROWN number stays in the report,
    with ``proved_by_obligations`` false."""
    for (res, graph), part in zip(rep["_internal"], rep["parts"]):
        claim = part["certified_max_abs_residual"]
        if claim is None:
            part["proved_by_obligations"], part["prove_reason"] = False, "no finite certified bound to prove"
        elif len(res.lo) > max_leaves:
            part["proved_by_obligations"], part["prove_reason"] = False, (
                f"--prove: {len(res.lo):,} leaves exceed --prove-max-boxes {max_leaves:,} (one IBP-split case each)")
        else:
            proved, reason, _ = prover(graph, claim_property(res, claim), None)
            part["proved_by_obligations"], part["prove_reason"] = proved, reason
    rep["proved_by_obligations"] = all(p["proved_by_obligations"] for p in rep["parts"])


def run_command(args, prover=None) -> int:
    """``prover(graph, prop, seconds_left) -> (proved, reason, summary)`` backs --prove."""
    from ..verify.report import write_json
    from .run import check_problem
    from .search import Options
    for out in (args.json, args.plot, args.certificate):
        if out and not Path(out).resolve().parent.is_dir():
            raise InputError(f"{out}: the output directory does not exist")
    if not args.target_ratio >= 1 or not args.timeout > 0 or args.split_depth < 0 or args.batch < 1 or args.jobs < 0:
        raise InputError("--target-ratio must be >= 1, --timeout > 0, --split-depth >= 0, --batch >= 1, --jobs >= 0")
    if prover is not None and args.semantics != "float32":
        raise InputError("--prove backs float32 results only")
    problem = load_problem(args.problem, args.network)
    last = [0.0]

    def progress(part, leaves, cert, sampled):
        now = time.monotonic()
        if not args.quiet and now - last[0] >= 2.0:
            last[0] = now
            ratio = cert / sampled if sampled > 0 else float("inf")
            print(f"  {part:<10} {leaves:>9,} boxes  certified {cert:.4g}  sampled {sampled:.4g}  "
                  f"ratio {ratio:.3g}", file=sys.stderr, flush=True)

    opts = Options(semantics=args.semantics, target_ratio=args.target_ratio, timeout=args.timeout,
                   max_leaves=args.max_boxes, max_depth=args.split_depth, batch=args.batch, jobs=max(1, args.jobs),
                   progress=progress)
    rep = check_problem(problem, opts, all_derivatives=args.all_derivatives)
    if prover is not None:
        _prove(rep, prover, args.prove_max_boxes)
    for p in rep["parts"]:
        c, r = p["certified_max_abs_residual"], p["ratio"]
        cert = "not bounded" if c is None else f"{c:.6g}"
        print(f"{p['name']:<10} certified max |residual| {cert}  sampled {p['sampled_max_abs_residual']:.6g}"
              f"{'' if r is None else f'  ratio {r:.3g}'}  {p['leaves']:,} boxes  {p['seconds']:.1f} s  ({p['stop']})")
        if "prove_reason" in p:
            print(f"{'':<10} {p['prove_reason']}")
    print(rep["guarantee"])
    if args.plot:
        from .plot import write_plot
        print(f"plot: {write_plot(rep, problem, args.plot)}")
    if args.certificate:
        from .certificate import build, write
        write(args.certificate, build(problem, rep))
        print(f"certificate: {args.certificate}")
    if args.json:
        write_json(args.json, {k: v for k, v in rep.items() if k != "_internal"})
    return 0

