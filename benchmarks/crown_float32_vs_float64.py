"""Cost of float32 soundness in CROWN: the float32-sound output bounds of the MNIST-FC 256x2 net
against the same code's real-arithmetic (float64, no float32 rounding terms) bounds, on the input
boxes of the 15 VNN-COMP 2021 properties at eps = 0.03.

Measured per box: relative width difference ``(w32 − w64) / w64`` of every output bound (float32
bounds are wider: they also cover every kernel rounding), and the wall-time ratio of the two
``nl.bounds.crown`` calls (median of ``--repeat`` runs each, interleaved, same process).
Also per box: ``last_layer_rounding_rel``, the largest ``2·E / w64`` over the outputs, where E is
the sound bound on the output layer's own float32 rounding (its 256-step fold in the kernel's
order: Σ of half an ulp of every partial sum's bound). While CROWN bounds each fold's rounding
by its worst case, its float32 bounds exceed the real ones by at least this much, so where it
alone exceeds the 1e-4 target (outputs whose real width is ~1e-3) the target is out of reach.
Writes ``benchmarks/results/crown_float32_vs_float64.json``.

    python benchmarks/crown_float32_vs_float64.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from results_io import write_result

import nnlemma as nl
from nnlemma.bounds.crown import crown_context
from nnlemma.vnnlib import load

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "benchmarks" / "vnncomp2021" / "mnistfc"
OUT = ROOT / "benchmarks" / "results" / "crown_float32_vs_float64.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    g = nl.load_model(DATA / "mnist-net_256x2.onnx")
    shape = g.inputs[0].shape
    rows = []
    for k in range(15):
        prop = load(DATA / f"prop_{k}_0.03.vnnlib")
        lo, hi = prop.cases[0].box.float32_bounds()
        lo, hi = lo.reshape(shape), hi.reshape(shape)
        out = g.outputs[0]
        times = {"float32": [], "real": []}
        res = {}
        ctx32 = None
        for _ in range(args.repeat):
            for sem in ("float32", "real"):
                t = time.perf_counter()
                ctx, res[sem] = crown_context(g, lo, hi, sem)
                times[sem].append(time.perf_counter() - t)
                if sem == "float32":
                    ctx32 = ctx
        b32, b64 = res["float32"].bounds[out], res["real"].bounds[out]
        w32 = b32.hi.astype(np.float64) - b32.lo.astype(np.float64)
        w64 = b64.hi - b64.lo
        rel = (w32 - w64) / w64
        last = 2 * ctx32.err[out].reshape(w64.shape) / w64
        t32, t64 = statistics.median(times["float32"]), statistics.median(times["real"])
        rows.append({"property": f"prop_{k}_0.03", "max_rel_width_diff": float(rel.max()),
                     "mean_rel_width_diff": float(rel.mean()), "min_rel_width_diff": float(rel.min()),
                     "last_layer_rounding_rel": float(last.max()),
                     "float32_s": t32, "real_s": t64, "time_ratio": t32 / t64})
        print(f"prop_{k}_0.03: rel width diff max {rel.max():.3e} (last layer's rounding alone "
              f"{last.max():.3e}), time {t32 * 1e3:.1f} ms vs "
              f"{t64 * 1e3:.1f} ms (x{t32 / t64:.2f})", flush=True)
    summary = {"max_rel_width_diff": max(r["max_rel_width_diff"] for r in rows),
               "median_time_ratio": statistics.median(r["time_ratio"] for r in rows),
               "max_time_ratio": max(r["time_ratio"] for r in rows),
               "max_last_layer_rounding_rel": max(r["last_layer_rounding_rel"] for r in rows),
               "targets": {"rel_width_diff": 1e-4, "time_ratio": 3.0}}
    summary["meets_targets"] = bool(summary["max_rel_width_diff"] <= 1e-4 and summary["max_time_ratio"] <= 3.0)
    payload = {"benchmark": "CROWN float32-sound vs real (float64) output bounds, MNIST-FC 256x2, eps 0.03",
               "machine": platform.platform(), "cpus": os.cpu_count(), "repeat": args.repeat,
               "summary": summary, "rows": rows}
    write_result(OUT, payload)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
