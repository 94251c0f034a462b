"""PINN certificates: every part's partition and per-box bounds, re-checked by ``nnlemma check``.

A certificate is a compressed ``.npz``: a JSON ``meta`` entry (format, problem name, semantics,
and per part its name, output names, the digest of its graph, the claimed certified maximum) and
per part ``k`` the arrays ``p<k>_lo``/``p<k>_hi`` (leaf boxes, float32), ``p<k>_ylo``/``p<k>_yhi``
(output bounds) and ``p<k>_paths`` (bisection paths).

:func:`check_certificate` rebuilds each part's graph from the problem file and requires:

1. the graph digest matches (the network, the residual and the derivative graphs are the ones
   certified);
2. **coverage**: the paths form a complete binary tree (every internal node has both children,
   split along one dimension) and replaying each path from the part's float32 box with the
   float32-midpoint rule gives exactly the recorded leaf box — so the leaves cover the box
   (:mod:`nnlemma.pinn.search`);
3. **bounds**: CROWN recomputed on every leaf (same semantics) lies within the recorded bounds;
4. the claimed certified maximum is at least ``max(|lo_r|, |hi_r|)`` over the recorded bounds.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..verify.certificate import model_digest
from .problem import PDE, part_graph
from .run import part_columns
from .search import Bounder, float32_box, midpoint

FORMAT = "nnlemma-pinn-certificate-1"


def build(problem: PDE, report: dict) -> dict:
    """The certificate's content (arrays and meta) from a :func:`~nnlemma.pinn.run.check_problem` report."""
    meta = {"format": FORMAT, "problem": problem.name, "semantics": report["semantics"],
            "all_derivatives": report["all_derivatives"], "parts": []}
    arrays = {}
    for k, ((res, graph), part) in enumerate(zip(report["_internal"], report["parts"])):
        meta["parts"].append({"name": res.name, "outputs": res.outputs, "graph_digest": model_digest(graph),
                              "certified_max_abs_residual": part["certified_max_abs_residual"]})
        arrays.update({f"p{k}_lo": res.lo, f"p{k}_hi": res.hi, f"p{k}_ylo": res.ylo, f"p{k}_yhi": res.yhi,
                       f"p{k}_paths": np.array(res.paths, dtype=str)})
    return {"meta": meta, "arrays": arrays}


def write(path: str | os.PathLike, cert: dict) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(cert["meta"])), **cert["arrays"])
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def is_certificate(path: str | os.PathLike) -> bool:
    return zipfile.is_zipfile(path)


def read(path: str | os.PathLike) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a PINN certificate ({exc})") from None
    if meta.get("format") != FORMAT:
        raise InputError(f"{path}: unknown certificate format {meta.get('format')!r}")
    return {"meta": meta, "arrays": arrays}


def _coverage(paths: list[str], lo: np.ndarray, hi: np.ndarray, root: tuple[np.ndarray, np.ndarray]) -> str:
    """'' when the paths are a complete bisection tree reproducing the leaf boxes, else the reason."""
    n = len(root[0])
    leaves = {p: i for i, p in enumerate(paths)}
    if len(leaves) != len(paths):
        return "a leaf path appears twice"
    split: dict[str, str] = {}        # internal node -> the dimension its children split
    for p in paths:
        if len(p) % 2 or (p and not (p[0::2].isdigit() and set(p[1::2]) <= {"0", "1"})):
            return f"malformed leaf path {p!r}"
        for k in range(0, len(p), 2):
            if split.setdefault(p[:k], p[k]) != p[k]:
                return f"node {p[:k]!r}: its children split different dimensions"
    if set(split) & set(leaves):
        return "a leaf is also an internal node"
    stack = [("", root[0].copy(), root[1].copy())]
    seen = 0
    while stack:
        path, l, h = stack.pop()
        if path in leaves:
            i = leaves[path]
            if not (np.array_equal(lo[i], l) and np.array_equal(hi[i], h)):
                return f"leaf {path!r}: box differs from its path's replay"
            seen += 1
            continue
        if path not in split:
            return f"node {path!r}: missing (the leaves do not cover the box)"
        d = int(split[path])
        if d >= n:
            return f"node {path!r}: split dimension {d} out of range"
        m = midpoint(l[d:d + 1], h[d:d + 1])[0]
        if not l[d] < m < h[d]:
            return f"node {path!r}: dimension {d} cannot be split"
        lh, rl = h.copy(), l.copy()
        lh[d], rl[d] = m, m
        stack.append((path + f"{d}0", l, lh))
        stack.append((path + f"{d}1", rl, h))
    return "" if seen == len(paths) else "some leaf paths are not reached from the root"


def check_certificate(problem: PDE, cert: dict) -> tuple[bool, str]:
    meta, arrays = cert["meta"], cert["arrays"]
    sem = meta["semantics"]
    parts = {name: (lo, hi, residual) for name, lo, hi, residual in problem.parts()}
    if {p["name"] for p in meta["parts"]} != set(parts):
        return False, "the certificate's parts are not the problem's (PDE and conditions)"
    total = 0
    for k, pm in enumerate(meta["parts"]):
        lo, hi, residual = parts[pm["name"]]
        graph, names = part_graph(problem, residual, part_columns(pm["name"], bool(meta.get("all_derivatives"))))
        if model_digest(graph) != pm["graph_digest"] or names != pm["outputs"]:
            return False, f"{pm['name']}: the graph differs from the certified one (network, residual or derivatives)"
        L, H = arrays[f"p{k}_lo"], arrays[f"p{k}_hi"]
        ylo, yhi = arrays[f"p{k}_ylo"], arrays[f"p{k}_yhi"]
        paths = [str(p) for p in arrays[f"p{k}_paths"]]
        root = float32_box(lo, hi, sem)
        if root is None or not len(paths) or L.dtype != np.float32 or H.dtype != np.float32:
            return False, f"{pm['name']}: empty or malformed partition"
        why = _coverage(paths, L, H, root)
        if why:
            return False, f"{pm['name']}: coverage: {why}"
        rlo, rhi = Bounder(graph, sem, 512).bound(L, H)
        bad = np.flatnonzero((rlo < ylo).any(axis=1) | (rhi > yhi).any(axis=1))
        if len(bad):
            return False, f"{pm['name']}: leaf {paths[bad[0]]!r}: recomputed bounds are not within the recorded ones"
        claim = pm["certified_max_abs_residual"]
        worst = float(np.maximum(np.abs(ylo[:, -1]), np.abs(yhi[:, -1])).max())
        if claim is None or not np.isfinite(worst) or worst > claim:
            return False, f"{pm['name']}: the claimed maximum {claim} is below the recorded bounds' {worst}"
        total += len(paths)
    return True, f"{len(meta['parts'])} part(s), {total:,} leaves recomputed"
