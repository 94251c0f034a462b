"""Exhaustive kernel audit time per unary op on this machine (2 worker processes).

Piecewise-linear and simple ops (identity, neg, abs, relu, step, leaky_relu, clamp, square, sqrt)
are audited over all 2^32 float32 bit patterns (target: under 60 s per op). The transcendentals
are timed on a strided sample of every exponent (every 64th pattern for exp/tanh/sigmoid, every
4096th for sin/cos, whose |x| > 2^17 half goes to MPFR in the kernel and mpmath in the reference)
and the full time is extrapolated linearly (target: under 10 minutes per op); a full sweep is
``nnlemma audit kernel --op exp``. Mismatches are reported (all must be 0). Baseline in the same
run: numpy's own float32 ufunc over the same patterns (for relu: np.maximum(x, 0)), i.e. what
the sweep would cost without the reference. Writes ``benchmarks/results/audit_kernel.json``.

    python benchmarks/audit_kernel.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from results_io import write_result

from nnlemma.audit.kernel import audit_unary, settings

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "audit_kernel.json"
PWL = ["identity", "neg", "abs", "relu", "step", "leaky_relu", "clamp", "square", "sqrt"]
SAMPLED = {"exp": 64, "tanh": 64, "sigmoid": 64, "sin": 4096, "cos": 4096}
FULL = 1 << 32


def numpy_baseline() -> float:
    """np.maximum over all 2^32 patterns, single process, chunked like the audit."""
    t = time.perf_counter()
    with np.errstate(all="ignore"):
        for a in range(0, FULL, 1 << 22):
            x = np.arange(a, a + (1 << 22), dtype=np.uint64).astype(np.uint32).view(np.float32)
            np.maximum(x, np.float32(0))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for op in PWL:
        for attrs in settings(op):
            r = audit_unary(op, attrs, 0, FULL, args.jobs)
            rows.append({"op": op, "attrs": attrs, "checked": r["checked"], "mismatches": r["mismatches"],
                         "seconds": r["seconds"], "full_seconds": r["seconds"], "extrapolated": False,
                         "target_s": 60})
            print(json.dumps(rows[-1]), flush=True)
    for op, stride in SAMPLED.items():
        r = audit_unary(op, {}, 0, FULL, args.jobs, stride=stride)
        rows.append({"op": op, "attrs": {}, "checked": r["checked"], "stride": stride, "mismatches": r["mismatches"],
                     "seconds": r["seconds"], "full_seconds": round(r["seconds"] * stride, 1), "extrapolated": True,
                     "target_s": 600})
        print(json.dumps(rows[-1]), flush=True)
    base = numpy_baseline()
    relu = next(r for r in rows if r["op"] == "relu")
    summary = {"pwl_max_s": max(r["full_seconds"] for r in rows if r["target_s"] == 60),
               "transcendental_full_s_estimates": {r["op"]: r["full_seconds"] for r in rows if r["extrapolated"]},
               "all_mismatches": sum(r["mismatches"] for r in rows),
               "numpy_maximum_full_sweep_s": round(base, 1),
               "relu_audit_over_numpy_sweep": round(relu["seconds"] / base, 2)}
    payload = {"benchmark": "exhaustive kernel audit per unary op", "machine": platform.platform(),
               "cpus": os.cpu_count(), "jobs": args.jobs, "summary": summary, "rows": rows}
    write_result(OUT, payload)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
