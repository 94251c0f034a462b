"""The ``nnlemma`` command line: ``inspect``, ``run``, ``ops``, ``verify``, ``check``.

Bad input (missing or malformed file, unsupported op, wrong input shape, non-finite weights) gets
a one-line ``nnlemma: error: ...`` on stderr and exit code 2, never a traceback. Output files are
written atomically. ``check`` exits 0 for a valid certificate and 1 for an invalid one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .errors import InputError, NnlemmaError

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def _load(path: str, allow_nonfinite: bool = False):
    from .model_io import load_model

    return load_model(path, allow_nonfinite=allow_nonfinite)


def cmd_inspect(args) -> int:
    from .coverage import RULE_TABLES, coverage

    graph = _load(args.model, args.allow_nonfinite)
    print(graph)
    print(f"\nparameters: {graph.param_count()} in {len(graph.params)} tensors; "
          f"equations: {len(graph.equations)}")
    tables = list(RULE_TABLES)
    print("\nop coverage (" + ", ".join(tables) + "):")
    for op in graph.ops_used():
        n = sum(e.op == op for e in graph.equations)
        cov = coverage(op)
        print(f"  {op:<12} x{n:<4} " + "  ".join(f"{t}={cov[t]}" for t in tables))
    if args.save_ir:
        from .ir.serialize import save

        save(graph, args.save_ir)
        print(f"\nIR written to {args.save_ir}")
    return 0


def _read_input(path: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: no such input file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{path}: expected a single .npy array, got an archive")
    return arr


def _save_npy(path: str, arr: np.ndarray) -> None:
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, arr)
    os.replace(tmp, path)


def cmd_run(args) -> int:
    from .interpret import run
    from .ir.builder import rebuild

    graph = _load(args.model, args.allow_nonfinite)
    if len(graph.inputs) != 1:
        raise InputError(f"{args.model}: model has {len(graph.inputs)} inputs; `run` takes exactly one")
    x = _read_input(args.input)
    want = graph.inputs[0].shape
    if x.shape != want and x.shape[1:] == want[1:] and x.ndim == len(want):
        try:
            graph = rebuild(graph, [x.shape])  # another batch size
        except NnlemmaError as exc:
            raise InputError(f"{args.input}: shape {list(x.shape)} does not fit the model input "
                             f"{list(want)} ({exc})") from None
    elif x.shape != want:
        raise InputError(f"{args.input}: input shape {list(x.shape)} does not match the model input "
                         f"{list(want)} (only the batch dimension may differ)")
    outs = run(graph, x)
    if args.output:
        if len(outs) != 1:
            raise InputError(f"model has {len(outs)} outputs; --output takes a single-output model")
        _save_npy(args.output, outs[0])
    if args.json:
        print(json.dumps({"outputs": [o.tolist() for o in outs]}))
    elif not args.output or args.print:
        with np.printoptions(precision=9, threshold=200):
            for v, o in zip(graph.output_values, outs):
                print(f"{v.name or v}: shape {list(o.shape)}\n{o}")
    return 0


def cmd_verify(args) -> int:
    from . import vnnlib
    from .verify import verify
    from .verify.report import atomic_write, read_instances, vnncomp_text, write_json

    if args.instances:
        if args.certificate:
            raise InputError("--certificate takes a single MODEL SPEC, not --instances")
        return _verify_instances(args, read_instances(args.instances))
    if not args.model or not args.spec:
        raise InputError("verify needs MODEL and SPEC (or --instances CSV)")
    if args.semantics == "real" and (args.prove or args.certificate):
        raise InputError("--prove and --certificate back float32 verdicts only (drop them or use --semantics float32)")
    if args.certificate and not Path(args.certificate).resolve().parent.is_dir():
        raise InputError(f"{args.certificate}: the certificate's folder does not exist")
    t0 = args.started
    graph = _load(args.model)
    prop = vnnlib.load(args.spec)
    budget = None if args.timeout is None else max(0.0, args.timeout - (time.monotonic() - t0))
    result = verify(graph, prop, semantics=args.semantics, timeout=budget, seed=args.seed,
                    certificate=args.certificate or False)
    if args.prove and result.status == "unsat":
        from obligations.cli import prove_property
        left = None if args.timeout is None else args.timeout - (time.monotonic() - t0)
        proved, reason, _ = prove_property(graph, prop, args, left)
        result.reason = reason
        if not proved:
            result.status = "unknown"
    result.seconds = time.monotonic() - t0
    print(f"{result.status}  ({result.seconds:.2f} s, {sum(c.boxes for c in result.cases)} boxes)"
          + (f"  {result.reason}" if result.reason else ""))
    if args.certificate:
        if result.certificate is not None:
            print(f"certificate written to {args.certificate}")
        else:
            print(f"no certificate written: certificates are for unsat results only (the result is "
                  f"{result.status}{'; the counterexample is the evidence' if result.status == 'sat' else ''})",
                  file=sys.stderr)
    if args.result:
        atomic_write(args.result, vnncomp_text(result))
    if args.json:
        write_json(args.json, {"model": str(args.model), "spec": str(args.spec), "semantics": args.semantics,
                               "seed": args.seed, **result.to_json(),
                               "certificate": str(args.certificate) if result.certificate is not None else None})
    return 0


def _verify_instances(args, rows) -> int:
    import csv
    import io
    import time

    from tqdm import tqdm

    from . import vnnlib
    from .verify import verify
    from .verify.report import atomic_write

    out_rows = []
    for onnx_path, spec_path, timeout in tqdm(rows, desc="instances", unit="inst", disable=args.quiet):
        t0 = time.monotonic()
        try:
            graph = _load(str(onnx_path))
            prop = vnnlib.load(spec_path)
            budget = timeout if args.timeout is None else min(timeout, args.timeout)
            res = verify(graph, prop, semantics=args.semantics, timeout=max(0.0, budget - (time.monotonic() - t0)),
                         seed=args.seed)
            status, reason = res.status, res.reason
        except NnlemmaError as exc:
            status, reason = "error", " ".join(str(exc).split())
        out_rows.append([onnx_path.name, spec_path.name, status, f"{time.monotonic() - t0:.3f}", reason])
    buf = io.StringIO()
    csv.writer(buf).writerows([["onnx", "vnnlib", "result", "seconds", "reason"], *out_rows])
    if args.results_csv:
        atomic_write(args.results_csv, buf.getvalue())
    else:
        print(buf.getvalue(), end="")
    return 0


def cmd_check(args) -> int:
    if args.model.endswith(".py"):
        from .pinn.certificate import is_certificate
        if args.certificate is not None:
            raise InputError("a .py check takes PROBLEM_OR_SYSTEM.py CERTIFICATE (two arguments)")
        if not Path(args.spec).is_file():
            raise InputError(f"{args.spec}: no such certificate file")
        return _check_pinn(args) if is_certificate(args.spec) else _check_lyapunov(args)
    if args.certificate is None:
        raise InputError("check needs MODEL SPEC CERTIFICATE (or SYSTEM.py CERTIFICATE)")
    from . import vnnlib
    from .verify import certificate
    from .verify.checker import check
    from .verify.report import write_json

    graph = _load(args.model)
    prop = vnnlib.load(args.spec)
    cert = certificate.read(args.certificate)
    res = check(graph, prop, cert)
    if res.valid:
        print(f"valid  ({res.cases} case(s), {res.leaves} leaves, {res.batches} batches recomputed, "
              f"{res.enumerated_points} points enumerated, {res.seconds:.2f} s)")
    else:
        print(f"invalid: {res.reason}")
    if args.json:
        write_json(args.json, {"model": str(args.model), "spec": str(args.spec),
                               "certificate": str(args.certificate), **res.to_json()})
    return 0 if res.valid else EXIT_INVALID


def _check_verdict(args, key: str, ok: bool, reason: str, t0: float) -> int:
    """Print (and with --json write) a .py certificate check's verdict; the exit code."""
    from .verify.report import write_json
    print(f"valid  ({reason}, {time.monotonic() - t0:.2f} s)" if ok else f"invalid: {reason}")
    if args.json:
        write_json(args.json, {key: args.model, "certificate": args.spec, "valid": ok, "reason": reason})
    return 0 if ok else EXIT_INVALID


def _check_pinn(args) -> int:
    from .pinn.certificate import check_certificate, read
    from .pinn.cli import load_problem
    t0 = time.monotonic()
    ok, reason = check_certificate(load_problem(args.model, args.pinn_model), read(args.spec))
    return _check_verdict(args, "problem", ok, reason, t0)


def _check_lyapunov(args) -> int:
    from .lyapunov.certificate import check_certificate
    from .lyapunov.cli import load_system
    try:
        cert = json.loads(Path(args.spec).read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{args.spec}: not JSON ({exc.msg} at line {exc.lineno})") from None
    t0 = time.monotonic()
    ok, reason = check_certificate(load_system(args.model, args.data), cert)
    return _check_verdict(args, "system", ok, reason, t0)


def _with_prover(args, run_command, source: str) -> int:
    """``run_command(args, prover)``; with --prove the prover discharges obligations (named after ``source``)."""
    if not args.prove:
        return run_command(args, None)
    from obligations.cli import prove_property
    args.model = source
    return run_command(args, lambda graph, prop, left: prove_property(graph, prop, args, left))


def cmd_pinn(args) -> int:
    from .pinn.cli import run_command
    return _with_prover(args, run_command, args.problem)


def cmd_lyapunov(args) -> int:
    from .lyapunov.cli import run_command
    return _with_prover(args, run_command, args.system)


def cmd_ops(args) -> int:
    from .coverage import RULE_TABLES, coverage, explain
    from .ops import OPS

    if args.explain:
        op = args.explain.lower()
        if op not in OPS:
            raise InputError(f"unknown op {args.explain!r}; known: {', '.join(sorted(OPS))}")
        print(explain(op))
        return 0
    tables = list(RULE_TABLES)
    print(f"{'op':<12} " + " ".join(f"{t:<16}" for t in tables))
    for op in OPS:
        cov = coverage(op)
        print(f"{op:<12} " + " ".join(f"{cov[t]:<16}" for t in tables))
    return 0


def _obligations_parser(sub) -> None:
    """The ``obligations`` commands live in the ``obligations`` package (which drives the
    solvers); the core imports only its argument parser, which imports no solver."""
    from obligations.cli import add_parser
    add_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nnlemma", description="Checkable neural-network guarantees.")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("inspect", help="print the IR, parameter count and rule coverage of a model")
    i.add_argument("model", help="model file (.onnx or nnlemma IR .json)")
    i.add_argument("--save-ir", metavar="OUT.json", help="also write the IR as JSON")
    i.add_argument("--allow-nonfinite", action="store_true", help="accept NaN/inf weights")
    i.set_defaults(fn=cmd_inspect)
    r = sub.add_parser("run", help="run the float32 kernel on an input array")
    r.add_argument("model")
    r.add_argument("--input", required=True, metavar="X.npy", help="input array (batch size may differ)")
    r.add_argument("--output", metavar="Y.npy", help="write the output array here")
    r.add_argument("--print", action="store_true", help="print outputs even with --output")
    r.add_argument("--json", action="store_true", help="print outputs as JSON")
    r.add_argument("--allow-nonfinite", action="store_true", help="accept NaN/inf weights")
    r.set_defaults(fn=cmd_run)
    v = sub.add_parser("verify", help="decide a VNN-LIB property for the float32 kernel")
    v.add_argument("model", nargs="?", help="model file (.onnx or nnlemma IR .json)")
    v.add_argument("spec", nargs="?", help="VNN-LIB property")
    v.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit in seconds")
    v.add_argument("--json", metavar="OUT", help="write a JSON report")
    v.add_argument("--result", metavar="FILE", help="write the VNN-COMP result file")
    v.add_argument("--semantics", choices=["float32", "real"], default="float32",
                   help="float32 (default): the kernel's execution on the float32 points of the input "
                        "box; real: the exact real-arithmetic graph on the real box (counterexamples "
                        "replayed in exact rationals; no certificate, no --prove)")
    v.add_argument("--seed", type=int, default=0, help="seed for falsification (reproducible runs)")
    v.add_argument("--instances", metavar="CSV", help="VNN-COMP instances CSV (onnx,vnnlib,timeout)")
    v.add_argument("--results-csv", metavar="OUT", help="with --instances: write the results CSV here")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.add_argument("--certificate", metavar="FILE",
                   help="for an unsat result, write a proof certificate (split tree, leaf bounds, bounding "
                        "batches) that `nnlemma check` re-checks; nothing is written for sat (the counterexample "
                        "is the evidence), unknown or timeout")
    from obligations.cli import add_prove_arguments
    add_prove_arguments(v)
    v.set_defaults(fn=cmd_verify)
    c = sub.add_parser("check", help="re-check a proof certificate of `verify --certificate`",
                       description="Re-check a certificate independently of the search: the leaves cover the "
                                   "property's input region exactly, each leaf's bounds recompute soundly and "
                                   "refute the violation. Prints `valid` (exit 0) or `invalid: REASON` (exit 1); "
                                   "unreadable input exits 2.")
    c.add_argument("model", help="model file (.onnx or nnlemma IR .json), or a Lyapunov system / PINN problem file (.py)")
    c.add_argument("spec", help="VNN-LIB property (for a .py file: its certificate)")
    c.add_argument("certificate", nargs="?", help="certificate JSON written by `nnlemma verify --certificate`")
    c.add_argument("--data", metavar="DIR", help="for a system file: passed to system(data_dir=DIR)")
    c.add_argument("--pinn-model", metavar="PATH", help="for a PINN problem file: passed to problem(model=PATH)")
    c.add_argument("--json", metavar="OUT", help="write the verdict and statistics as JSON")
    c.set_defaults(fn=cmd_check)
    ly = sub.add_parser("lyapunov", help="check a closed-loop system's Lyapunov conditions (discrete or continuous "
                                         "time), per condition, with counterexamples")
    from .lyapunov.cli import add_arguments as add_lyapunov
    add_lyapunov(ly)
    add_prove_arguments(ly)
    ly.set_defaults(fn=cmd_lyapunov)
    pn = sub.add_parser("pinn", help="certified residual bounds of a physics-informed network over its domain "
                                     "(adaptive partition, next to the sampled maximum)")
    from .pinn.cli import add_arguments as add_pinn
    add_pinn(pn)
    add_prove_arguments(pn)
    pn.set_defaults(fn=cmd_pinn)
    _obligations_parser(sub)
    from obligations.audit_cli import add_parser as add_audit
    add_audit(sub)
    o = sub.add_parser("ops", help="list ops and their rule coverage")
    o.add_argument("--explain", metavar="OP", help="show one op's semantics and rules")
    o.set_defaults(fn=cmd_ops)
    return p


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()  # verify's --timeout counts from here: loading is included
    args = build_parser().parse_args(argv)
    args.started = started
    try:
        return args.fn(args)
    except NnlemmaError as exc:
        print(f"nnlemma: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"nnlemma: error: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nnlemma: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in nnlemma: still one line, distinct exit code
        print(f"nnlemma: internal error (please report): {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
