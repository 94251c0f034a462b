"""Generate the obligations for a model and an input box into a directory.

The claim is the float32 IBP bounds table of the model over the box (``nnlemma.bounds.ibp``):
every value of the graph stays in its interval for every float32 input in the box. The
obligations are the per-node fp-transfer lemmas of :mod:`obligations.fp_transfer`; nodes no
generator covers are listed as gaps.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from pathlib import Path

import numpy as np

from nnlemma.bounds import ibp
from nnlemma.errors import InputError
from nnlemma.ir.graph import Graph

from nnlemma.vnnlib import Case

from . import manifest
from .composition import spec_obligations
from .fp_transfer import Gap, generate as fp_transfer


def graph_digest(graph: Graph) -> str:
    """A hash of the model's IR text and parameter bits (names the model in the manifest)."""
    h = hashlib.sha256(str(graph).encode())
    for p in graph.params:
        h.update(np.ascontiguousarray(p.data, np.float32).tobytes())
    return h.hexdigest()


def generate_dir(graph: Graph, lo: np.ndarray, hi: np.ndarray, out_dir: str | os.PathLike,
                 model: str = "model", source: dict | None = None, progress: bool = False,
                 case: Case | None = None) -> dict:
    """Write ``out_dir/manifest.json`` and ``out_dir/smt2/``; returns the manifest trailer.

    With a VNN-LIB ``case`` the claim also includes that the output bounds imply the property
    (composition obligations), so a ``proved`` verdict proves the case for the float32 kernel."""
    if len(graph.inputs) != 1:
        raise InputError(f"obligations need a single-input model; {model} has {len(graph.inputs)}")
    shape = graph.inputs[0].shape
    lo = np.asarray(lo, np.float32)
    hi = np.asarray(hi, np.float32)
    if lo.size != int(np.prod(shape)) or hi.size != lo.size:
        raise InputError(f"the box has {lo.size} entries; the input of {model} has shape {list(shape)}")
    lo, hi = lo.reshape(shape), hi.reshape(shape)
    if np.isnan(lo).any() or np.isnan(hi).any() or (lo > hi).any():
        bad = int(np.flatnonzero(np.isnan(lo) | np.isnan(hi) | (lo > hi))[0])
        raise InputError(f"box entry {bad}: [{lo.flat[bad]}, {hi.flat[bad]}] is not an interval")
    t0 = time.perf_counter()
    bounds = ibp(graph, lo, hi)
    header = {"model": model, "model_sha256": graph_digest(graph), **(source or {}),
              "claim": "every value of the graph lies in its float32 IBP bounds for every float32 "
                       "input in the box" + (", and the output bounds imply the property" if case else ""),
              "box": {"lo": lo.reshape(-1).tolist(), "hi": hi.reshape(-1).tolist()},
              "bounds": "nnlemma.bounds.ibp float32"}
    bar = None
    if progress:
        import sys
        from tqdm import tqdm
        bar = tqdm(unit="obl", desc="generate", file=sys.stderr, dynamic_ncols=True)
    try:
        items = fp_transfer(graph, bounds, model)
        if case is not None:
            if len(graph.outputs) != 1 or bounds.status != "ok":
                items = itertools.chain(items, [Gap("property", "composition",
                                                    "needs one output and float32 bounds")])
            else:
                out = bounds.outputs[0]
                items = itertools.chain(items, spec_obligations(case, out.lo, out.hi, out.nan, model))
        trailer = manifest.write(Path(out_dir), header, items, progress=None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()
    trailer["seconds"] = round(time.perf_counter() - t0, 3)
    return trailer
