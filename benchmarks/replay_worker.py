"""Counterexample replay for ``benchmarks/vnncomp.py``: a long-lived worker process.

The runner keeps its own process small (its RSS would otherwise be counted in every child's peak
memory: a child starts as a copy of its parent), so the replay — which needs numpy and nnlemma —
runs here. Protocol: one JSON request per stdin line, one JSON answer per stdout line::

    {"onnx": PATH, "vnnlib": PATH, "x": ["0.6000000238418579", ...], "y": [...], "mode": "exact"}

``x`` / ``y`` are the numbers as printed by the tool (strings or numbers). The replay is
independent of the verifier's search: it loads the model the way the CLI does
(``nnlemma.model_io.load_model``), runs the float32 kernel (``nnlemma.interpret.run``) on x and
checks, with exact rational arithmetic,

* ``x_float32``: every printed x is exactly a float32 number (``mode="exact"``); with
  ``mode="round"`` (for a real-arithmetic tool such as Marabou) x is rounded to the nearest
  float32 first (then clamped into the float32 box of a case whose real box holds it, since a
  point on a box face may round outside) and this check is only reported;
* ``y_float32`` / ``y_bitexact``: the printed y are float32 numbers and equal the kernel output
  bit for bit (``exact`` mode only);
* ``in_box``: x lies in the input box of some case of the property (strict bounds honoured;
  ``Fraction`` comparison, no rounding);
* ``unsafe``: for such a case, ``Case.unsafe_at(kernel_y)`` is True (exact decision on the
  float32 outputs).

``replays`` is the conjunction of those checks. Run as ``python benchmarks/replay_worker.py``.
"""

from __future__ import annotations

import json
import sys
import traceback
from fractions import Fraction


def _load():
    import numpy as np

    from nnlemma import vnnlib
    from nnlemma.interpret import run
    from nnlemma.model_io import load_model

    return np, vnnlib, run, load_model


_MODELS: dict = {}
_PROPS: dict = {}


def _in_box(box, xs: list[Fraction]) -> bool:
    for q, lo, hi, los, his in zip(xs, box.lo, box.hi, box.lo_strict, box.hi_strict):
        if (q <= lo) if los else (q < lo):
            return False
        if (q >= hi) if his else (q > hi):
            return False
    return True


def replay(req: dict) -> dict:
    np, vnnlib, run, load_model = _load()
    mode = req.get("mode", "exact")
    onnx, spec = req["onnx"], req["vnnlib"]
    if onnx not in _MODELS:
        _MODELS[onnx] = load_model(onnx)
    if spec not in _PROPS:
        _PROPS[spec] = vnnlib.load(spec)
    graph, prop = _MODELS[onnx], _PROPS[spec]
    out: dict = {"replays": False}
    x64 = [float(v) for v in req["x"]]
    if len(x64) != prop.n_inputs:
        out["detail"] = f"counterexample has {len(x64)} inputs, the property {prop.n_inputs}"
        return out
    with np.errstate(over="ignore"):
        x32 = np.array(x64, dtype=np.float32)
    x_exact = bool(all(float(a) == b for a, b in zip(x32, x64)))
    out["x_float32"] = x_exact
    if mode == "round" and not x_exact:
        # a real-arithmetic point on a box face may round out of the box: clamp the rounded point
        # into the float32 box (bounds rounded inward) of a case whose real box holds the point
        real = [Fraction(v) for v in x64]
        for case in prop.cases:
            fb = case.box.float32_bounds() if _in_box(case.box, real) else None
            if fb is not None:
                clamped = np.minimum(np.maximum(x32, fb[0]), fb[1])
                out["x_clamped_to_box"] = bool(not np.array_equal(clamped, x32))
                x32 = clamped
                break
    shape = graph.inputs[0].shape
    (y_kernel,) = run(graph, x32.reshape(shape))
    y_kernel = np.asarray(y_kernel, dtype=np.float32).reshape(-1)
    out["kernel_y"] = [float(v) for v in y_kernel]
    ok = x_exact or mode == "round"
    if mode == "exact":
        y64 = [float(v) for v in req.get("y") or []]
        with np.errstate(over="ignore"):
            y32 = np.array(y64, dtype=np.float32)
        y_f32 = len(y64) == y_kernel.size and bool(all(
            float(a) == b or (np.isnan(a) and np.isnan(b)) for a, b in zip(y32, y64)))
        out["y_float32"] = y_f32
        out["y_bitexact"] = y_f32 and bool(np.array_equal(y32.view(np.uint32), y_kernel.view(np.uint32)))
        if not out["y_bitexact"] and len(y64) == y_kernel.size:
            out["y_max_abs_diff"] = float(np.nanmax(np.abs(y32.astype(np.float64) - y_kernel.astype(np.float64))))
        ok = ok and out["y_bitexact"]
    xs = [Fraction(float(v)) for v in x32]
    cases = [k for k, c in enumerate(prop.cases) if _in_box(c.box, xs)]
    out["in_box"] = bool(cases)
    unsafe = [k for k in cases if prop.cases[k].unsafe_at(y_kernel) is True]
    out["unsafe"] = bool(unsafe)
    out["cases"] = {"containing_x": cases, "unsafe": unsafe}
    out["replays"] = bool(ok and unsafe)
    return out


def main() -> int:
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            ans = replay(json.loads(line))
        except Exception as exc:  # answer, never die: the runner records the failure
            ans = {"replays": False, "error": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc(limit=5)}
        sys.stdout.write(json.dumps(ans) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
