"""Run ONE Marabou query (ONNX network + VNN-LIB property) and print one result line.

Used by ``benchmarks/vnncomp.py``, which starts this script as a fresh subprocess per instance and
measures its wall time and peak memory. It can also be run by hand::

    python benchmarks/marabou_one.py NET.onnx PROP.vnnlib --timeout 116

maraboupy 2.0 API used:

* ``Marabou.read_onnx(path)`` -> ``MarabouNetworkONNX`` (ONNX parser; the ACAS Xu input
  ``[1,1,1,5]`` and the MNIST input ``[1,784,1]`` become flat input variables in index order);
* ``Marabou.createOptions(numWorkers=1, timeoutInSeconds=T, verbosity=0)`` (all other options at
  their defaults: DeepPoly tightening, no split-and-conquer, no MILP/Gurobi);
* ``network.solve(options=..., propertyFilename=SPEC, verbose=False)``: a ``.vnnlib`` property file
  goes to Marabou's C++ ``VnnLibParser`` (``MarabouCore.loadProperty``), which reads ``X_i`` /
  ``Y_j`` as the i-th input / j-th output variable and supports ``and`` / ``or`` (also the
  disjunctive input region of ACAS Xu prop_6). It returns ``(exitCode, vals, stats)`` with
  exitCode in sat / unsat / TIMEOUT / ERROR / UNKNOWN / QUIT_REQUESTED.

The last stdout line is ``RESULT {json}`` with ``result`` (sat/unsat/timeout/unknown/error),
Marabou's raw ``exit_code``, ``load_s`` / ``solve_s`` and, for sat, the assignment ``x`` / ``y``
(float64, Marabou's real-arithmetic solution). Marabou prints other lines (``Property: ...``), so
the runner reads only the ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("onnx")
    ap.add_argument("vnnlib")
    ap.add_argument("--timeout", type=float, default=0.0, help="Marabou's own timeout in seconds (0: none)")
    ap.add_argument("--workers", type=int, default=1, help="numWorkers (default 1)")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    out: dict = {"result": "error", "exit_code": None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Tensorflow parser is unavailable ..."
            from maraboupy import Marabou

        net = Marabou.read_onnx(args.onnx)
        t1 = time.monotonic()
        # Marabou's timeout is an integer number of seconds; 0 means none.
        tmo = max(1, int(math.floor(args.timeout))) if args.timeout > 0 else 0
        opts = Marabou.createOptions(numWorkers=args.workers, timeoutInSeconds=tmo, verbosity=0)
        code, vals, stats = net.solve(options=opts, propertyFilename=args.vnnlib, verbose=False)
        t2 = time.monotonic()
        code = str(code)
        result = {"sat": "sat", "unsat": "unsat", "TIMEOUT": "timeout", "ERROR": "error",
                  "UNKNOWN": "unknown", "QUIT_REQUESTED": "unknown"}.get(code, "unknown")
        if stats is not None and stats.hasTimedOut():
            result = "timeout"
        out = {"result": result, "exit_code": code, "load_s": round(t1 - t0, 4), "solve_s": round(t2 - t1, 4)}
        if result == "sat":
            out["x"] = [float(vals[v]) for inp in net.inputVars for v in inp.flatten()]
            out["y"] = [float(vals[v]) for o in net.outputVars for v in o.flatten()]
    except Exception as exc:  # report, never a traceback without a RESULT line
        out = {"result": "error", "exit_code": None, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    print("RESULT " + json.dumps(out), flush=True)
    return 0 if out["result"] != "error" else 1


if __name__ == "__main__":
    sys.exit(main())
