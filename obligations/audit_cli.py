"""``nnlemma audit kernel``: the float32 kernel against its semantics, per op.

Check 1 (symbolic, needs a solver): the op's SMT encoding equals the IEEE operation for every
input (:mod:`obligations.encoder_agreement`), for every op SMT-LIB can express. Check 2 (numeric):
the kernel equals an independent reference (:mod:`nnlemma.audit.references`) exhaustively over all
2^32 float32 inputs for unary ops (``--range`` limits the sweep), and on the edge corpus crossed
with itself plus random pairs for binary ops. Lives outside the core because check 1 drives a
solver.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nnlemma.errors import InputError
from nnlemma.verify.report import write_json


def add_parser(sub) -> None:
    a = sub.add_parser("audit", help="audit operator semantics (the kernel against IEEE references)")
    asub = a.add_subparsers(dest="audit_command", required=True)
    k = asub.add_parser("kernel", help="every op of the float32 kernel: SMT encoding = IEEE (symbolic), kernel = "
                                       "independent reference (exhaustive over float32 for unary ops)")
    k.add_argument("--op", action="append", metavar="NAME", help="audit only this op (repeatable)")
    k.add_argument("--range", metavar="START:STOP", help="unary ops: only bit patterns in [START, STOP) "
                                                         "(hex or decimal; default all 2^32)")
    k.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    k.add_argument("--solver", default="z3", help="solver for the symbolic check (z3, bitwuzla, cvc5)")
    k.add_argument("--no-symbolic", action="store_true", help="skip the symbolic check")
    k.add_argument("--json", metavar="OUT", help='write {"ops": {NAME: {"checked", "mismatches", ...}}}')
    k.add_argument("--quiet", action="store_true", help="no progress bar")
    k.set_defaults(fn=cmd_kernel)
    r = asub.add_parser("runtime", help="where numpy / torch / onnxruntime differ from the spec, per op")
    r.add_argument("runtime", choices=["numpy", "torch", "onnxruntime"])
    r.add_argument("--op", action="append", metavar="NAME", help="audit only this op (repeatable)")
    r.add_argument("--stride", type=int, default=1 << 12,
                   help="unary ops: every STRIDE-th float32 bit pattern besides the edge corpus (1: exhaustive); "
                        "binary ops: 2^32/STRIDE random pairs")
    r.add_argument("--jobs", type=int, default=None, help="worker processes for unary sweeps (default: all cores)")
    r.add_argument("--model", metavar="MODEL", help="also audit this model (ONNX/.nnl): observed and sound "
                                                     "runtime-vs-spec output deviation on the box")
    r.add_argument("--spec", metavar="VNNLIB", help="with --model: the input box(es), and the margin check "
                                                    "(can the runtime violate what holds for the spec?)")
    r.add_argument("--box", metavar="LO:HI", help="with --model and no --spec: the same [LO, HI] for every input")
    r.add_argument("--samples", type=int, default=1000, help="with --model: sampled inputs (default 1000)")
    r.add_argument("--split-depth", type=int, default=4,
                   help="with --model: bound on 2^N parts of the box (tighter, slower; default 4)")
    r.add_argument("--ulps", action="append", metavar="OP=K",
                   help="with --model: the runtime's error for OP is at most K ulps (default: the shipped "
                        "exhaustive measurement when the installed runtime version matches)")
    r.add_argument("--timeout", type=float, default=300.0, help="with --spec: seconds per verification")
    r.add_argument("--report", metavar="OUT.md", help="write a Markdown report with PNG histograms beside it")
    r.add_argument("--json", metavar="OUT", help="write the findings as JSON")
    r.set_defaults(fn=cmd_runtime)


def _range(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1 << 32
    try:
        a, b = (int(v, 0) for v in text.split(":"))
    except ValueError:
        raise InputError(f"--range must be START:STOP (e.g. 0x3f800000:0x40000000), got {text!r}") from None
    if not 0 <= a < b <= 1 << 32:
        raise InputError(f"--range {text}: need 0 <= START < STOP <= 2^32")
    return a, b


def _symbolic(op: str, attrs: dict, solver, timeout: float) -> dict:
    from .encoder_agreement import REFERENCE, agreement
    if op not in REFERENCE:
        return {"status": "n/a", "reason": "no SMT-LIB encoding (transcendental): numeric audit only"}
    out = solver.check(agreement(op, attrs).violation, timeout)
    res = {"status": {"unsat": "proved", "sat": "refuted"}.get(out.status, "unknown"),
           "seconds": round(out.seconds, 3)}
    if out.status == "sat":
        res["model"] = {k: (f"0x{v:08x}" if isinstance(v, int) else str(v)) for k, v in out.model.items()}
    elif out.status != "unsat":
        res["reason"] = out.reason
    return res


def _ulps_args(items: list[str] | None) -> dict[str, dict]:
    out = {}
    for item in items or []:
        op, _, k = item.partition("=")
        try:
            out[op.strip()] = {"max_ulps": int(k), "limit": None}
        except ValueError:
            raise InputError(f"--ulps takes OP=K with an integer K, got {item!r}") from None
    return out


def _model_audit(args) -> dict:
    import numpy as np

    from nnlemma import load_model, vnnlib
    from nnlemma.audit.model_audit import audit_model, measured_ulps
    graph = load_model(args.model)
    prop, n = None, graph.inputs[0].size if len(graph.inputs) == 1 else 0
    if args.spec:
        prop = vnnlib.load(args.spec)
        box = prop.cases[0].box.float32_bounds()
        if box is None:
            raise InputError(f"{args.spec}: the first case's box holds no float32 point")
        lo, hi = box
    elif args.box:
        try:
            a, b = (float(v) for v in args.box.split(":"))
        except ValueError:
            raise InputError(f"--box must be LO:HI, got {args.box!r}") from None
        lo, hi = np.full(n, a, np.float32), np.full(n, b, np.float32)
    else:
        raise InputError("--model needs an input box: --spec P.vnnlib or --box LO:HI")
    ulps, source = measured_ulps(args.runtime)
    given = _ulps_args(args.ulps)
    ulps.update(given)
    if given:
        source += "; stated with --ulps: " + ", ".join(f"{k} {v['max_ulps']}" for k, v in given.items())
    res = audit_model(graph, args.runtime, lo, hi, ulps=ulps, samples=args.samples, prop=prop,
                      timeout=args.timeout, split_depth=args.split_depth)
    res.update(path=str(args.model), ulps_source=source)
    return res


def cmd_runtime(args) -> int:
    from nnlemma.audit.runtime import audit_runtime, runtime_versions
    if args.stride < 1:
        raise InputError(f"--stride must be >= 1, got {args.stride}")
    if args.samples < 1 or args.split_depth < 0:
        raise InputError("--samples must be >= 1 and --split-depth >= 0")
    for out in (args.json, args.report):
        if out and not Path(out).resolve().parent.is_dir():
            raise InputError(f"{out}: the output directory does not exist")
    rep = audit_runtime(args.runtime, args.stride, args.op, jobs=args.jobs)
    rep["versions"] = runtime_versions()
    print(f"{args.runtime}: behaviours")
    for k, v in rep["behaviours"].items():
        print(f"  {k:<22} {v}")
    for op, r in rep["ops"].items():
        print(f"{op:<10} checked {r['checked']:>10,}  differ from spec {r['mismatches']:>8,}  max {r['max_ulps']} ulp(s)")
    d = rep["dot"]
    print(f"dot (n={d['length']}): max |runtime - spec| {d['max_abs_deviation']:.3g} = "
          f"{d['max_deviation_over_order_free_bound']:.3g} x the order-free bound")
    status = 0
    if args.model:
        m = rep["model"] = _model_audit(args)
        b = m["bound"]
        print(f"model {args.model}: observed max |runtime - spec| {max(m['observed_max_deviation']):.3g} over "
              f"{m['samples']} inputs; sound bound " + (f"{max(b['max_deviation']):.3g}" if b["status"] == "ok"
                                                         else f"unknown ({b['reason']})"))
        if b["status"] == "ok" and not m["within_bound"]:
            print("model: the runtime EXCEEDS the bound: it breaks the error model (see the JSON)")
            status = 1
        if "margin" in m:
            v = m["margin"]["runtime_safe"]
            print(f"model: margin check: runtime safe = {'unknown' if v is None else str(v).lower()}")
            for c in m["margin"]["cases"]:
                print(f"  case {c['case']}: {c['why']}")
            status = status or (1 if v is False else 0)
    if args.json:
        write_json(args.json, rep)
    if args.report:
        from nnlemma.audit.report_md import write_report
        print(f"report: {write_report(args.report, rep)}")
    return status


def cmd_kernel(args) -> int:
    from nnlemma.audit.kernel import BINARY, UNARY, audit_binary, audit_unary, settings
    known = list(UNARY) + list(BINARY)
    ops = args.op or known
    bad = [o for o in ops if o not in known]
    if bad:
        raise InputError(f"unknown op {bad[0]!r} for the kernel audit; known: {', '.join(known)}")
    start, stop = _range(args.range)
    solver = None
    if not args.no_symbolic:
        from solvers import get_solver
        solver = get_solver(args.solver)
    report = {}
    bar = None
    if not args.quiet:
        from tqdm import tqdm
        total = sum((stop - start) * len(settings(o)) for o in ops if o in UNARY)
        bar = tqdm(total=total, unit="in", unit_scale=True, file=sys.stderr, dynamic_ncols=True, desc="audit")
    for op in ops:
        for attrs in settings(op) if op in UNARY else [{}]:
            name = op + ("(" + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())) + ")" if attrs else "")
            if op in UNARY:
                res = audit_unary(op, attrs, start, stop, args.jobs, bar.update if bar else None)
            else:
                res = audit_binary(op)
            if solver is not None:
                res["symbolic"] = _symbolic(op, attrs, solver, 60.0)
            report[name] = res
            sym = res.get("symbolic", {}).get("status", "skipped")
            line = (f"{name:<32} checked {res['checked']:>12,}  mismatches {res['mismatches']:>6}  "
                    f"{res['seconds']:8.2f} s  symbolic {sym}")
            print(line, flush=True)
    if bar is not None:
        bar.close()
    if args.json:
        write_json(args.json, {"ops": report})
    failed = any(r["mismatches"] or r.get("symbolic", {}).get("status") == "refuted" for r in report.values())
    return 1 if failed else 0


__all__ = ["add_parser"]
