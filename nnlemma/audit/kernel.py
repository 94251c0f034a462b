"""``nnlemma audit kernel``, numeric part: the float32 kernel against independent references
(:mod:`nnlemma.audit.references`), exhaustively over float32 bit patterns.

For a unary op every bit pattern in ``[start, stop)`` (all 2^32 by default) is run through the
kernel and the reference, in chunks, over worker processes; results are compared bit for bit,
except that every NaN equals every NaN (payloads are not part of the semantics). Binary ops are
audited on the edge corpus crossed with itself plus random bit patterns (their symbolic check is
the solver's job). The report per op (and attribute setting) gives the inputs checked, the
mismatches (count and the first few bit patterns with both results) and the time.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import numpy as np

from ..kernels import KERNEL_RULES
from ..kernels.edge import EDGE_F32, NAN_PATTERNS
from .references import ATTRS, REFERENCES

F32 = np.float32
U32 = np.uint32
CHUNK = 1 << 22
BINARY = ("add", "sub", "mul", "div", "maximum", "minimum")
MAX_EXAMPLES = 8


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise equal, or both NaN."""
    return (a.view(U32) == b.view(U32)) | (np.isnan(a) & np.isnan(b))


def _chunk(args) -> tuple[int, list]:
    op, attrs, lo, hi, stride = args
    x = np.arange(lo, hi, stride, dtype=np.uint64).astype(U32).view(F32)
    with np.errstate(all="ignore"):
        got = np.asarray(KERNEL_RULES[op](x, **attrs), F32)
        want = np.asarray(REFERENCES[op](x, **attrs), F32)
    bad = np.flatnonzero(~_same(got, want))
    ex = [(int(x.view(U32)[i]), int(got.view(U32)[i]), int(want.view(U32)[i])) for i in bad[:MAX_EXAMPLES]]
    return len(bad), ex


def audit_unary(op: str, attrs: dict | None = None, start: int = 0, stop: int = 1 << 32, jobs: int | None = None,
                progress: Callable[[int], None] | None = None, stride: int = 1) -> dict:
    """Comparison of the kernel with the reference on the bit patterns ``start + k·stride`` in
    [start, stop): exhaustive with ``stride`` 1 (a sample otherwise, e.g. for timing)."""
    attrs = attrs or {}
    t0 = time.perf_counter()
    span = CHUNK * stride
    pieces = [(op, attrs, a, min(a + span, stop), stride) for a in range(start, stop, span)]
    mismatches, examples = 0, []
    jobs = jobs or os.cpu_count() or 1
    if jobs > 1 and len(pieces) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = pool.map(_chunk, pieces)
            for (n, ex), piece in zip(results, pieces):
                mismatches += n
                examples += ex
                if progress:
                    progress(len(range(piece[2], piece[3], stride)))
    else:
        for piece in pieces:
            n, ex = _chunk(piece)
            mismatches += n
            examples += ex
            if progress:
                progress(len(range(piece[2], piece[3], stride)))
    return {"op": op, "attrs": attrs, "checked": len(range(start, stop, stride)), "range": [start, stop],
            "stride": stride, "mismatches": mismatches,
            "examples": [{"input": f"0x{a:08x}", "kernel": f"0x{b:08x}", "reference": f"0x{c:08x}"}
                         for a, b, c in examples[:MAX_EXAMPLES]],
            "seconds": round(time.perf_counter() - t0, 3)}


def _binary_reference(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 exact-then-round for + − × ÷ (innocuous double rounding, 53 >= 2·24 + 2); IEEE-2019
    maximum/minimum by the integer order of bit patterns with NaN propagation."""
    from ..verify.boxes import ordinal
    from .references import _bits, _is_nan
    if op in ("maximum", "minimum"):
        ka, kb = ordinal(a), ordinal(b)
        pick_a = ka > kb if op == "maximum" else ka < kb
        out = np.where(pick_a, a, b)
        return np.where(_is_nan(_bits(a)) | _is_nan(_bits(b)), F32(np.nan), out).astype(F32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(all="ignore"):
        v = {"add": a64 + b64, "sub": a64 - b64, "mul": a64 * b64, "div": a64 / b64}[op]
        return v.astype(F32)


def audit_binary(op: str, n_random: int = 1 << 20, seed: int = 0) -> dict:
    """The edge corpus crossed with itself, plus ``n_random`` random bit-pattern pairs."""
    t0 = time.perf_counter()
    e = np.concatenate([EDGE_F32, np.array(NAN_PATTERNS, U32).view(F32)])
    a, b = (v.reshape(-1) for v in np.meshgrid(e, e, indexing="ij"))
    rng = np.random.default_rng(seed)
    ra, rb = (rng.integers(0, 1 << 32, n_random, dtype=np.uint64).astype(U32).view(F32) for _ in range(2))
    a, b = np.concatenate([a, ra]), np.concatenate([b, rb])
    with np.errstate(all="ignore"):
        got = np.asarray(KERNEL_RULES[op](a, b), F32)
        want = _binary_reference(op, a, b)
    bad = np.flatnonzero(~_same(got, want))
    return {"op": op, "attrs": {}, "checked": int(a.size), "range": "edge corpus x edge corpus + random pairs",
            "mismatches": int(bad.size),
            "examples": [{"input": f"0x{int(a.view(U32)[i]):08x}, 0x{int(b.view(U32)[i]):08x}",
                          "kernel": f"0x{int(got.view(U32)[i]):08x}", "reference": f"0x{int(want.view(U32)[i]):08x}"}
                         for i in bad[:MAX_EXAMPLES]],
            "seconds": round(time.perf_counter() - t0, 3)}


def settings(op: str) -> list[dict]:
    return ATTRS.get(op, [{}])


UNARY = tuple(REFERENCES)
