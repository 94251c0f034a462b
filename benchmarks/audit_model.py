"""Model-level runtime audits: observed runtime-vs-spec output deviation next to the sound bound,
and the margin check (Jia & Rinard 2021) on verified properties.

For each model and box, and each installed runtime (numpy, torch, onnxruntime): 1000 sampled
inputs, the bound on 2^4 parts of the box (``--split-depth 4``, the CLI default), the ratio
bound/observed (the bound's looseness), and with a property the margin verdict. Models: ACAS Xu
1_1, 1_6 (prop_3), 4_1, 2_9 (prop_4) (relu; all unsat for the spec), and the Burgers PINN (9 tanh layers;
onnxruntime's tanh is up to ~100 ulps from the spec, the measured bound is used) over its domain.
Writes ``benchmarks/results/audit_model.json``.

    python benchmarks/audit_model.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from results_io import write_result

from nnlemma import load_model, vnnlib
from nnlemma.audit.model_audit import audit_model, measured_ulps
from nnlemma.audit.runtime import runtime_versions

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "benchmarks"
OUT = ROOT / "benchmarks" / "results" / "audit_model.json"
ACAS = SHARED / "vnncomp2021" / "acasxu"
CASES = [("acas_1_1_prop_3", ACAS / "ACASXU_run2a_1_1_batch_2000.onnx", ACAS / "prop_3.vnnlib"),
         ("acas_4_1_prop_4", ACAS / "ACASXU_run2a_4_1_batch_2000.onnx", ACAS / "prop_4.vnnlib"),
         ("acas_2_9_prop_4", ACAS / "ACASXU_run2a_2_9_batch_2000.onnx", ACAS / "prop_4.vnnlib"),
         ("acas_1_6_prop_3", ACAS / "ACASXU_run2a_1_6_batch_2000.onnx", ACAS / "prop_3.vnnlib"),
         ("burgers_pinn_domain", SHARED / "pinn" / "burgers_tanh_lbfgs.onnx", None)]


def main() -> None:
    versions = runtime_versions()
    rows = []
    for name, model, spec in CASES:
        graph = load_model(model)
        if spec is not None:
            prop = vnnlib.load(spec)
            lo, hi = prop.cases[0].box.float32_bounds()
        else:
            prop, lo, hi = None, np.array([0, -1], np.float32), np.array([1, 1], np.float32)
        for rt, v in versions.items():
            if v is None:
                continue
            ulps, source = measured_ulps(rt)
            t = time.perf_counter()
            r = audit_model(graph, rt, lo, hi, ulps=ulps, samples=1000, prop=prop, timeout=300, split_depth=4)
            obs = max(r["observed_max_deviation"])
            row = {"model": name, "runtime": rt, "version": v, "samples": r["samples"], "observed_max": obs,
                   "bound_status": r["bound"]["status"], "bound_reason": r["bound"]["reason"],
                   "bound_max": max(r["bound"]["max_deviation"]) if r["bound"]["status"] == "ok" else None,
                   "within_bound": r.get("within_bound"), "ulps_source": source,
                   "margin": r.get("margin"), "seconds": round(time.perf_counter() - t, 2)}
            if row["bound_max"] and obs > 0:
                row["bound_over_observed"] = row["bound_max"] / obs
            rows.append(row)
            print({k: row[k] for k in ("model", "runtime", "observed_max", "bound_max", "within_bound", "seconds")},
                  (row["margin"] or {}).get("runtime_safe"), flush=True)
    write_result(OUT, {"versions": versions, "split_depth": 4, "rows": rows})


if __name__ == "__main__":
    main()
