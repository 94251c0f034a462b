"""Exhaustive ulp sweeps of numpy, torch and onnxruntime against the spec, per unary op.

No runtime states the accuracy of its float32 transcendentals, so this measures it: every float32
bit pattern goes through the spec kernel once and through each installed runtime
(:func:`nnlemma.audit.sweep.sweep`), 2 worker processes. All 2^32 patterns for relu, abs, neg,
sqrt, exp, tanh and sigmoid. sin/cos: all patterns with |x| <= 2^17 (where the kernel's own range
reduction is fast), and every 4096th pattern above it (there the kernel uses MPFR, about 36 µs a
value, so the full half would take hours). Baseline timed in the same run: the same sweep with
numpy alone, so the cost of the spec side is visible.

Writes ``benchmarks/results/audit_runtime.json`` (per runtime and op: checked, mismatches, max
ulps, histogram, worst input, exhaustive or not, seconds) and ``nnlemma/audit/measured_ulps.json``
(the exhaustive maxima with the runtime versions and ranges they hold for), which ``nnlemma audit
runtime --model`` uses as the runtime's error bound per op when the installed version matches.

    python benchmarks/audit_runtime.py [--jobs 2] [--op exp ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from results_io import write_result

from nnlemma.audit.runtime import runtime_versions
from nnlemma.audit.sweep import merge_finished, sweep

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "audit_runtime.json"
MEASURED = ROOT / "nnlemma" / "audit" / "measured_ulps.json"
FULL = 1 << 32
OPS = ["relu", "abs", "neg", "sqrt", "exp", "tanh", "sigmoid", "sin", "cos"]
TRIG_LIMIT = 0x48000000  # 2^17: patterns [0, 0x48000000] and their negatives are swept exhaustively


def pieces(op: str) -> list[tuple[int, int, int]]:
    if op not in ("sin", "cos"):
        return [(0, FULL, 1)]
    return [(0, TRIG_LIMIT + 1, 1), (0x80000000, 0x80000000 + TRIG_LIMIT + 1, 1),
            (TRIG_LIMIT + 1, 0x80000000, 4096), (0x80000000 + TRIG_LIMIT + 1, FULL, 4096)]


def merge(parts: list[dict]) -> dict:
    out = merge_finished(parts)
    out["pieces"] = [{"range": [f"0x{p['range'][0]:08x}", f"0x{p['range'][1]:08x}"], "stride": p["stride"],
                      "max_ulps": p["max_ulps"], "mismatches": p["mismatches"]} for p in parts]
    out.pop("range"), out.pop("stride")
    out["exhaustive"] = all(p["stride"] == 1 for p in parts)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--op", action="append")
    args = ap.parse_args()
    versions = runtime_versions()
    runtimes = [n for n, v in versions.items() if v is not None]
    old = json.loads(OUT.read_text()) if OUT.exists() and args.op else {"ops": {}}
    results = old["ops"]
    for op in args.op or OPS:
        t = time.perf_counter()
        parts = [sweep(op, runtimes, a, b, s, jobs=args.jobs) for a, b, s in pieces(op)]
        by_rt = {name: merge([p[name] for p in parts]) for name in runtimes}
        results[op] = {"seconds": round(time.perf_counter() - t, 1), "runtimes": by_rt}
        print(op, {n: (r["max_ulps"], r["mismatches"]) for n, r in by_rt.items()}, results[op]["seconds"], "s",
              flush=True)
    t = time.perf_counter()
    sweep("exp", ["numpy"], 0, FULL, 64, jobs=args.jobs)
    baseline = {"what": "exp sweep of every 64th pattern with numpy only (spec kernel included)",
                "seconds": round(time.perf_counter() - t, 1)}
    write_result(OUT, {"machine": {"cpu_count": args.jobs, "python": platform.python_version()},
                       "versions": versions, "baseline": baseline, "ops": results})
    measured = {"source": "benchmarks/audit_runtime.py (exhaustive sweeps against the spec kernel)",
                "versions": versions, "ops": {}}
    for op, r in results.items():
        for name, s in r["runtimes"].items():
            if s["class_mismatch"]:
                continue  # NaN/inf disagreements: no ulp bound is stated for this op
            ranges = [p["range"] for p in s["pieces"] if p["stride"] == 1]
            measured["ops"].setdefault(name, {})[op] = {"max_ulps": s["max_ulps"], "ranges": ranges}
    write_result(MEASURED, measured)


if __name__ == "__main__":
    main()
