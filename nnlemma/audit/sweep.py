"""Exhaustive (or strided) sweeps of one unary op over float32 bit patterns, in one or more
runtimes at once, against the spec kernel: the runtime's error distribution in ulps.

No runtime documents the accuracy of its float32 transcendentals, so the audit measures it: every
bit pattern ``start + k·stride`` in ``[start, stop)`` goes through the spec kernel once and through
each runtime; per runtime the sweep counts results that differ bit for bit (every NaN equals every
NaN), the largest distance in ulps between finite results (ordered bit patterns, so −0 and +0 are
0 ulps apart and counted apart as ``signed_zero``), results where one side is NaN or infinite and
the other is not (``class_mismatch``), a histogram of the distance in powers of two, and the input
that reaches the largest distance. With ``stride`` 1 over all 2^32 patterns the maximum is a
measured fact about that runtime build on this machine, which the model-level deviation bound
(:mod:`nnlemma.audit.deviation`) may then use as the runtime's error bound for that op.

Work is split into chunks over worker processes (spawned, so no runtime state is forked); each
worker builds its own runtime op tables once.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence

import numpy as np

from ..kernels import KERNEL_RULES

F32 = np.float32
U32 = np.uint32
CHUNK = 1 << 22
BINS = 34  # bin 0: 0 ulps; bin k >= 1: [2^(k-1), 2^k) ulps
MAX_EXAMPLES = 5

_WORKER_OPS: dict[str, dict] = {}  # per worker process: runtime name -> op table (built once)


def _load(runtimes: Sequence[str]) -> None:
    from .runtime import runtime_ops
    for name in runtimes:
        if name not in _WORKER_OPS:
            _WORKER_OPS[name] = runtime_ops(name)


def _init_worker(runtimes: Sequence[str]) -> None:
    """A worker process: one intra-op thread per runtime (the pool is the parallelism)."""
    if "torch" in runtimes:
        import torch
        torch.set_num_threads(1)
    _load(runtimes)


def ordered(x: np.ndarray) -> np.ndarray:
    """Bit patterns as signed integers in the order of the float32 values (±0 both map to 0)."""
    k = x.view(U32).astype(np.int64)
    return np.where(k & 0x80000000, -(k & 0x7FFFFFFF), k)


def _bin_of(ulps: np.ndarray) -> np.ndarray:
    out = np.zeros(ulps.shape, np.int64)
    nz = ulps > 0
    out[nz] = np.floor(np.log2(ulps[nz])).astype(np.int64) + 1
    return np.minimum(out, BINS - 1)


def compare(x: np.ndarray, got: np.ndarray, want: np.ndarray) -> dict:
    """Statistics of one runtime's results ``got`` against the spec ``want`` at inputs ``x``."""
    same = (got.view(U32) == want.view(U32)) | (np.isnan(got) & np.isnan(want))
    bad = np.flatnonzero(~same)
    g, w = got[bad], want[bad]
    fin = np.isfinite(g) & np.isfinite(w)
    ulps = np.abs(ordered(g[fin]) - ordered(w[fin]))  # 0 for -0 against +0
    hist = np.bincount(_bin_of(ulps), minlength=BINS)
    hist[0] += x.size - bad.size
    worst = None
    if ulps.size and ulps.max() > 0:
        i = bad[np.flatnonzero(fin)[int(np.argmax(ulps))]]
        worst = (int(x.view(U32)[i]), int(got.view(U32)[i]), int(want.view(U32)[i]), int(ulps.max()))
    return {"checked": int(x.size), "mismatches": int(bad.size), "max_ulps": int(ulps.max()) if ulps.size else 0,
            "class_mismatch": int((~fin).sum()),  # NaN against a number, or an infinity against anything else
            "signed_zero": int(((g == 0) & (w == 0)).sum()), "histogram": hist, "worst": worst,
            "examples": [(int(x.view(U32)[i]), int(got.view(U32)[i]), int(want.view(U32)[i])) for i in bad[:MAX_EXAMPLES]]}


def _merge(acc: dict | None, part: dict) -> dict:
    if acc is None:
        return dict(part, examples=list(part["examples"]))
    for k in ("checked", "mismatches", "class_mismatch", "signed_zero"):
        acc[k] += part[k]
    acc["histogram"] = acc["histogram"] + part["histogram"]
    if part["worst"] and (acc["worst"] is None or part["worst"][3] > acc["worst"][3]):
        acc["worst"] = part["worst"]
    acc["max_ulps"] = max(acc["max_ulps"], part["max_ulps"])
    acc["examples"] = (acc["examples"] + part["examples"])[:MAX_EXAMPLES]
    return acc


def _chunk(args) -> dict[str, dict]:
    op, runtimes, lo, hi, stride = args
    x = np.arange(lo, hi, stride, dtype=np.uint64).astype(U32).view(F32)
    with np.errstate(all="ignore"):
        want = np.asarray(KERNEL_RULES[op](x), F32)
        return {name: compare(x, np.asarray(_WORKER_OPS[name][op](x), F32).reshape(-1), want) for name in runtimes}


def merge_finished(parts: list[dict]) -> dict:
    """Several finished (JSON-form) statistics of the same op and runtime combined into one."""
    out = dict(parts[0], histogram=dict(parts[0]["histogram"]), examples=list(parts[0]["examples"]))
    for p in parts[1:]:
        for k in ("checked", "mismatches", "class_mismatch", "signed_zero"):
            out[k] += p[k]
        out["max_ulps"] = max(out["max_ulps"], p["max_ulps"])
        for lab, c in p["histogram"].items():
            out["histogram"][lab] = out["histogram"].get(lab, 0) + c
        if p["worst"] and (out["worst"] is None or p["worst"]["ulps"] > out["worst"]["ulps"]):
            out["worst"] = p["worst"]
        out["examples"] = (out["examples"] + p["examples"])[:MAX_EXAMPLES]
    return out


def histogram_labels() -> list[str]:
    return ["0"] + [f"{1 << (k - 1)}" if k == 1 else f"{1 << (k - 1)}-{(1 << k) - 1}" for k in range(1, BINS)]


def finish(stats: dict) -> dict:
    """JSON-ready form: bit patterns in hex, the histogram as {label: count} without empty bins."""
    out = dict(stats)
    out["histogram"] = {lab: int(c) for lab, c in zip(histogram_labels(), stats["histogram"]) if c}
    w = stats["worst"]
    out["worst"] = None if w is None else {"input": f"0x{w[0]:08x}", "runtime": f"0x{w[1]:08x}",
                                           "spec": f"0x{w[2]:08x}", "ulps": w[3]}
    out["examples"] = [{"input": f"0x{a:08x}", "runtime": f"0x{b:08x}", "spec": f"0x{c:08x}"}
                       for a, b, c in stats["examples"]]
    return out


def sweep(op: str, runtimes: Sequence[str], start: int = 0, stop: int = 1 << 32, stride: int = 1,
          jobs: int | None = None, progress: Callable[[int], None] | None = None) -> dict[str, dict]:
    """Per runtime: the statistics of ``op`` over the bit patterns ``start + k·stride`` in
    ``[start, stop)`` (finished for JSON), with ``seconds`` for the whole sweep."""
    t0 = time.perf_counter()
    span = CHUNK * stride
    pieces = [(op, tuple(runtimes), a, min(a + span, stop), stride) for a in range(start, stop, span)]
    acc: dict[str, dict | None] = {name: None for name in runtimes}
    jobs = jobs or os.cpu_count() or 1

    def take(result, piece):
        for name, part in result.items():
            acc[name] = _merge(acc[name], part)
        if progress:
            progress(len(range(piece[2], piece[3], stride)))

    if jobs > 1 and len(pieces) > 1:
        import multiprocessing
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(tuple(runtimes),)) as pool:
            for result, piece in zip(pool.map(_chunk, pieces), pieces):
                take(result, piece)
    else:
        _load(runtimes)
        for piece in pieces:
            take(_chunk(piece), piece)
    seconds = round(time.perf_counter() - t0, 3)
    return {name: dict(finish(s), range=[start, stop], stride=stride, seconds=seconds) for name, s in acc.items()}
