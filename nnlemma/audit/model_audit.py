"""``nnlemma audit runtime RT --model M``: how far the runtime's outputs are from the spec's on an
input box, and whether that gap could flip a verified property (Jia & Rinard, "Exploiting
Verified Neural Networks via Floating Point Numerical Error", SAS 2021, made into a check).

* **Observed**: the largest ``|runtime(x) − spec(x)|`` per output over sampled float32 inputs of
  the box (its corners' midpoints, the ends, and uniform samples), differences exact in float64.
* **Bound**: :func:`nnlemma.audit.deviation.deviation_bound` over the whole box; the observed
  deviation must not exceed it (checked with ``<=``; a violation means the runtime breaks the
  error model and is reported as such, never hidden).
* **Margin check** (with a VNN-LIB property): nnlemma first decides the property for the spec.
  If it holds, every unsafe atom ``c·y + k <= 0`` is shifted by the runtime's possible deviation
  (``k − Σ|c_j|·D_j``, made non-strict) and the shifted property is decided for the spec again:
  ``unsat`` proves the runtime cannot reach the unsafe region either (under the error model);
  ``sat`` gives a point where the margin is smaller than the deviation bound, and the runtime is
  run there (and on the samples): an unsafe runtime output is a replayed flip, otherwise the
  answer is ``null`` (could flip, no flip found).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from fractions import Fraction
from importlib import resources

import numpy as np

from ..errors import InputError
from ..interpret import run
from ..ir.graph import Graph
from ..vnnlib import Atom, Case, Property
from .deviation import deviation_bound_split
from .model_runtime import model_runner

F32 = np.float32


def measured_ulps(runtime: str) -> tuple[dict[str, dict], str]:
    """The runtime's per-op ulp bounds from the shipped exhaustive measurement when the installed
    version is the measured one (else empty), and a sentence saying where they came from."""
    from .runtime import runtime_versions
    data = json.loads(resources.files("nnlemma.audit").joinpath("measured_ulps.json").read_text())
    have, measured = runtime_versions().get(runtime), data["versions"].get(runtime)
    if have is None or have != measured:
        return {}, f"no measurement for {runtime} {have} (measured: {measured}); pass --ulps OP=K"
    out = {}
    for op, r in data["ops"].get(runtime, {}).items():
        starts = {int(a, 16): int(b, 16) for a, b in r["ranges"]}
        if starts.get(0) == 1 << 32:
            out[op] = {"max_ulps": r["max_ulps"], "limit": None}
        elif 0 in starts and starts.get(0x80000000) == 0x80000000 + starts[0]:
            top = np.array([starts[0] - 1], np.uint32).view(F32)[0]
            out[op] = {"max_ulps": r["max_ulps"], "limit": float(top)}
    return out, f"exhaustive sweep of {runtime} {have} ({data['source']})"


def _samples(lo: np.ndarray, hi: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mid = (lo.astype(np.float64) + hi) / 2
    pts = [lo, hi, mid.astype(F32)]
    pts += list((lo + rng.random((max(0, n - 3), lo.size)) * (hi.astype(np.float64) - lo)).astype(F32))
    return np.clip(np.array(pts, F32), lo, hi)


def observe(graph: Graph, runner, xs: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """|runtime − spec| per sample and output (0 where both are NaN or equal infinities), the
    count of NaN disagreements, and the runtime outputs."""
    shape = graph.inputs[0].shape
    spec = np.array([run(graph, x.reshape(shape))[0].reshape(-1) for x in xs], F32)
    rt = np.array([runner(x) for x in xs], F32)
    nan_diff = int((np.isnan(spec) != np.isnan(rt)).sum())
    with np.errstate(invalid="ignore"):
        dev = np.abs(rt.astype(np.float64) - spec.astype(np.float64))
    return np.where(np.isnan(dev), 0.0, dev), nan_diff, rt


def shifted(case: Case, d: np.ndarray) -> Case:
    """The case's unsafe atoms moved by the largest change the deviation ``d`` can make to them."""
    def move(a: Atom) -> Atom:
        slack = sum((abs(c) * Fraction(float(d[j])) for j, c in a.coeffs), Fraction(0))
        return Atom(a.coeffs, a.const - slack, False)
    return replace(case, unsafe=tuple(tuple(move(a) for a in conj) for conj in case.unsafe))


def _runtime_flip(case: Case, x: np.ndarray, y: np.ndarray) -> dict | None:
    """A replayed runtime violation at ``x`` (an unsafe output, or a NaN/inf one where the spec
    proved the property), or None."""
    unsafe = case.unsafe_at(y)
    if unsafe is True:
        why = "the runtime reaches the unsafe region"
    elif unsafe is None or not np.all(np.isfinite(y)):
        why = "the runtime's output is not finite where the spec proved the property"
    else:
        return None
    return {"spec": "unsat", "runtime_safe": False, "why": why, "flip": {"x": x.tolist(), "runtime_y": y.tolist()}}


def _margin(graph: Graph, runner, case: Case, d: np.ndarray, xs, rt, timeout, source) -> dict:
    from ..verify import verify
    one = Property(len(case.box.lo), int(d.size), (case,), source)
    base = verify(graph, one, timeout=timeout)
    if base.status == "sat":
        return {"spec": "sat", "runtime_safe": False, "why": "the property fails for the spec itself",
                "counterexample": {"x": base.x.tolist(), "y": base.y.tolist()}}
    if base.status != "unsat":
        return {"spec": base.status, "runtime_safe": None, "why": f"spec not decided: {base.reason}"}
    for x, y in zip(xs, rt):
        flip = _runtime_flip(case, x, y)
        if flip:
            return flip
    moved = verify(graph, replace(one, cases=(shifted(case, d),)), timeout=timeout)
    if moved.status == "unsat":
        return {"spec": "unsat", "runtime_safe": True,
                "why": "the margin exceeds the runtime's deviation bound everywhere on the box"}
    if moved.status == "sat":
        y = runner(moved.x)
        flip = _runtime_flip(case, moved.x, y)
        if flip:
            return flip
        return {"spec": "unsat", "runtime_safe": None,
                "why": "somewhere the margin is below the deviation bound; the runtime did not flip there",
                "closest": {"x": moved.x.tolist(), "spec_y": moved.y.tolist(), "runtime_y": y.tolist()}}
    return {"spec": "unsat", "runtime_safe": None, "why": f"shifted property not decided: {moved.reason}"}


def audit_model(graph: Graph, runtime, lo, hi, *, ulps: dict[str, dict], samples: int = 1000, seed: int = 0,
                prop: Property | None = None, timeout: float | None = None, split_depth: int = 0) -> dict:
    """Observed and bounded runtime-vs-spec deviation on ``[lo, hi]``; with ``prop`` the margin
    check per case (each case's own box). ``runtime``: a runtime name, or ``(name, run)`` with
    ``run(x) -> flat float32 outputs`` for a runtime of your own."""
    t0 = time.perf_counter()
    runtime, runner = (runtime, model_runner(runtime, graph)) if isinstance(runtime, str) else runtime
    lo, hi = np.asarray(lo, F32).reshape(-1), np.asarray(hi, F32).reshape(-1)
    if lo.size != graph.inputs[0].size or np.any(~(lo <= hi)):
        raise InputError(f"input box must have {graph.inputs[0].size} values with lo <= hi")
    xs = _samples(lo, hi, samples, seed)
    dev, nan_diff, _ = observe(graph, runner, xs)
    observed = dev.max(axis=0)
    shape = graph.inputs[0].shape
    bounds: dict[bytes, object] = {}

    def bound_on(a, b):  # the first case's box is usually the audited box: bound it once
        key = a.tobytes() + b.tobytes()
        if key not in bounds:
            bounds[key] = deviation_bound_split(graph, a.reshape(shape), b.reshape(shape), ulps, split_depth)
        return bounds[key]
    bound = bound_on(lo, hi)
    out = {"runtime": runtime, "samples": int(len(xs)), "observed_max_deviation": observed.tolist(),
           "nan_disagreements": nan_diff, "bound": bound.to_json(), "deviations": dev.reshape(-1).tolist()}
    if bound.status == "ok":
        d = bound.outputs[0].reshape(-1)
        out["within_bound"] = bool(np.all(observed <= d)) and nan_diff == 0
        out["observed_over_bound"] = float(np.max(np.where(d > 0, observed / np.where(d > 0, d, 1), 0)))
    if prop is not None:
        cases = []
        for i, case in enumerate(prop.cases):
            b = case.box.float32_bounds()
            if b is None:
                cases.append({"case": i, "runtime_safe": True, "why": "the box holds no float32 point"})
                continue
            cb = bound_on(np.asarray(b[0], F32).reshape(-1), np.asarray(b[1], F32).reshape(-1))
            if cb.status != "ok":
                cases.append({"case": i, "runtime_safe": None, "why": f"no deviation bound: {cb.reason}"})
                continue
            cxs = _samples(b[0], b[1], min(samples, 200), seed + i)
            _, _, crt = observe(graph, runner, cxs)
            cases.append(dict(case=i, **_margin(graph, runner, case, cb.outputs[0].reshape(-1), cxs, crt,
                                                 timeout, prop.source)))
        verdicts = [c["runtime_safe"] for c in cases]
        out["margin"] = {"runtime_safe": False if False in verdicts else (True if all(verdicts) else None),
                         "cases": cases}
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out
