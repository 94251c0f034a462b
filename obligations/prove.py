"""The whole chain for a VNN-LIB property: split, bound, generate obligations, discharge.

Each case's input box is bisected (widest side first, at the float32 midpoint) until the float32
IBP bounds of every leaf imply the property, or the leaf budget runs out (then the case is a gap
and the verdict can only be ``unknown``). For every leaf the directory gets its fp-transfer
lemmas and composition lemmas (bounds ⇒ property); for every split, one composition lemma that
the two halves cover the parent along the split dimension
(``lo ≤ x ≤ hi ⇒ lo ≤ x ≤ m ∨ m ≤ x ≤ hi``, other dimensions unchanged). Together: the property
holds for every float32 input of the case's box. The verdict is ``proved`` only if every one of
these obligations is proved.
"""

from __future__ import annotations

import itertools
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from encoders import terms as T
from nnlemma.bounds import ibp
from nnlemma.ir.graph import Graph
from nnlemma.vnnlib import Case, Property

from . import manifest
from .composition import spec_obligations
from .fp_transfer import Dom, Gap, generate as fp_transfer
from .generate import graph_digest
from .model import Obligation

F32 = np.float32


def implied(case: Case, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Do output bounds [lo, hi] exclude every unsafe conjunction? (exact; one atom per
    conjunction must be impossible over the box)."""
    lo, hi = lo.reshape(-1), hi.reshape(-1)
    for conj in case.unsafe:
        def impossible(a) -> bool:
            ends = [hi[j] if c < 0 else lo[j] for j, c in a.coeffs]
            if not all(np.isfinite(e) for e in ends):
                return False
            m = a.const + sum((c * Fraction(float(e)) for (j, c), e in zip(a.coeffs, ends)), Fraction(0))
            return m >= 0 if a.strict else m > 0
        if not any(impossible(a) for a in conj):
            return False
    return True


def split_leaves(graph: Graph, case: Case, lo: np.ndarray, hi: np.ndarray, max_leaves: int):
    """``(leaves, splits)`` with leaves ``(lo, hi, bounds)`` whose IBP bounds imply the case, and
    splits ``(parent_lo, parent_hi, dim, mid)``; ``None`` leaves when the budget runs out."""
    shape = graph.inputs[0].shape
    stack, leaves, splits = [(lo.reshape(-1), hi.reshape(-1))], [], []
    while stack:
        l, h = stack.pop()
        b = ibp(graph, l.reshape(shape), h.reshape(shape))
        out = b.outputs[0] if b.status == "ok" else None
        if out is not None and not np.asarray(out.nan).any() and implied(case, out.lo, out.hi):
            leaves.append((l, h, b))
            continue
        width = h.astype(np.float64) - l.astype(np.float64)
        d = int(np.argmax(width))
        m = F32((float(l[d]) + float(h[d])) / 2)
        if not (l[d] < m < h[d]) or len(leaves) + len(stack) + 2 > max_leaves:
            return None, splits
        splits.append((l, h, d, m))
        h1, l2 = h.copy(), l.copy()
        h1[d], l2[d] = m, m
        stack += [(l2, h), (l, h1)]
    return leaves, splits


def _bits(v) -> int:
    return int(np.asarray(v, F32).view(np.uint32))


def cover_obligation(model: str, k: int, l, h, d: int, m) -> Obligation:
    x = T.var("x", T.F32)
    dom = Dom.interval(l[d], h[d])
    left, right = Dom.interval(l[d], m), Dom.interval(m, h[d])
    violation = T.and_(dom.member(x), T.not_(T.or_(left.member(x), right.member(x))))
    return Obligation(f"{model}/split{k}/composition/cover", "composition", "split", "QF_FP", violation,
                      f"[{l[d]!r}, {h[d]!r}] is covered by its halves at {m!r} (input {d})",
                      {"model": model, "node": f"split{k}", "dim": d}, {})


def _items(graph, model, cases) -> Iterator[Obligation | Gap]:
    for ci, case, leaves, splits in cases:
        name = f"{model}/case{ci}"
        if leaves is None:
            yield Gap(f"case{ci}", "split", "IBP input splitting ran out of leaves before the bounds "
                                            "implied the property")
            continue
        for k, (l, h, d, m) in enumerate(splits):
            yield cover_obligation(name, k, l, h, d, m)
        for k, (l, h, b) in enumerate(leaves):
            leaf = f"{name}/leaf{k}"
            out = b.outputs[0]
            yield from itertools.chain(fp_transfer(graph, b, leaf),
                                       spec_obligations(case, out.lo, out.hi, out.nan, leaf))


def generate_property(graph: Graph, prop: Property, out_dir: str | os.PathLike, model: str = "model",
                      max_leaves: int = 4096) -> dict:
    """Write the obligations proving ``prop`` for the float32 kernel into ``out_dir``."""
    cases = []
    for ci, case in enumerate(prop.cases):
        b = case.box.float32_bounds()
        if b is None:
            continue  # no float32 input in this part of the region
        leaves, splits = split_leaves(graph, case, *b, max_leaves)
        cases.append((ci, case, leaves, splits))
    header = {"model": model, "model_sha256": graph_digest(graph), "spec": prop.source,
              "claim": "the property holds for the float32 kernel on every float32 input of its region",
              "leaves": {f"case{ci}": None if lv is None else len(lv) for ci, _, lv, _ in cases},
              "bounds": "nnlemma.bounds.ibp float32 on IBP-split leaves"}
    return manifest.write(Path(out_dir), header, _items(graph, model, cases))
