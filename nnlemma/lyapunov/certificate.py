"""Lyapunov certificates: the leaf partition of every decided search and the verify certificate of
each, re-checkable without the search (``nnlemma check SYSTEM.py CERT.json``).

.. code-block:: text

    {"format": "nnlemma-lyapunov-certificate", "version": 1, "system": name,
     "model_sha256": digest of the loop graph, "semantics": "float32", "rho": ρ (float.hex),
     "v_eq_zero": bool, "searches": [{"name": "positivity" | "decrease+invariance" | ...,
                                       "leaves": ["r0/", "r1/0", "r1/1", ...],
                                       "certificate": <nnlemma-certificate of the leaves' property>}]}

A leaf is named by its path: ``r<k>/`` for region cell k (``f<k>/`` for face k), then one bit per
bisection (0: the lower child). The checker rebuilds the loop graph from the system file, the region cells and each
leaf by replaying the same bisections, and checks **coverage**: per region cell the bit strings
form a complete prefix code (no leaf is a prefix of another and Σ 2^−len = 1 exactly, so every
float32 point of the cell lies in exactly one leaf, the bisection being an exact partition). It
then rebuilds each search's property over the leaves and re-checks its verify certificate
(:func:`nnlemma.verify.checker.check`: each leaf's bounds recomputed).
"""

from __future__ import annotations

import os
from fractions import Fraction

from ..errors import InputError
from ..interpret import run
from ..verify import certificate as vcert
from ..verify.bab import Options
from ..verify.checker import check
from ..vnnlib import Case, Property
from .check import bisect, face_cells, region_cells, to_float32_cell, unsafe_sets
from .system import V_OUT, System, loop_graph

FORMAT = "nnlemma-lyapunov-certificate"


class Invalid(Exception):
    """The certificate does not prove what it claims (the message says why)."""


def build(system: System, report: dict) -> dict:
    """The certificate of a verified float32 report (``check_system(..., record=True)``)."""
    if report["verified"] is not True or report["semantics"] != "float32":
        raise InputError("certificates are written for verified float32 results only")
    graph, conds = report["_internal"]["graph"], report["_internal"]["conditions"]
    searches, seen = [], set()
    for c in conds:
        if c.prop is None or c.searched_as in seen:
            continue
        seen.add(c.searched_as)
        trees = [leaf.tree for leaf in c.leaves]
        if any(t is None for t in trees):
            raise InputError("the search was not recorded: run check_system with record=True")
        searches.append({"name": c.searched_as, "leaves": [leaf.cell.path for leaf in c.leaves],
                         "certificate": vcert.build(graph, c.prop, "float32", Options(record_tree=True), trees)})
    rho = report["rho"]
    return {"format": FORMAT, "version": 1, "system": system.name, "model_sha256": vcert.model_digest(graph),
            "semantics": "float32", "rho": None if rho is None else float(rho).hex(),
            "v_eq_zero": system.check_v_eq_zero, "searches": searches}


def write(path: str | os.PathLike, cert: dict) -> None:
    from ..verify.report import write_json
    write_json(path, cert)


def _leaf_cells(system: System, name: str, paths: list[str]):
    roots = face_cells(system) if name == "sublevel_in_box" else region_cells(system)
    roots = [to_float32_cell(c) for c in roots]
    by_root: dict[str, list[str]] = {}
    for p in paths:
        k, _, bits = p.partition("/")
        if set(bits) - {"0", "1"}:
            raise Invalid(f"search {name}: malformed leaf path {p!r}")
        by_root.setdefault(k + "/", []).append(bits)
    names = [c.path if c is not None else None for c in roots]
    for k, bits in by_root.items():
        if k not in names:
            raise Invalid(f"search {name}: leaf path {k + bits[0]!r} names no region cell")
        if len(set(bits)) != len(bits) or any(a != b and b.startswith(a) for a in bits for b in bits):
            raise Invalid(f"search {name}: the leaves of cell {k} overlap")
        if sum(Fraction(1, 2 ** len(b)) for b in bits) != 1:
            raise Invalid(f"search {name}: the leaves of cell {k} do not cover it")
    missing = [n for n in names if n is not None and n not in by_root]
    if missing:
        raise Invalid(f"search {name}: region cell {missing[0]} has no leaves")
    cells = []
    for p in paths:
        k, _, bits = p.partition("/")
        cell = roots[names.index(k + "/")]
        for bit in bits:
            kids = bisect(cell, "float32")
            if not kids:
                raise Invalid(f"search {name}: leaf {p!r} splits a cell with one float32 point")
            cell = kids[int(bit)]
        cells.append(cell)
    return cells


def check_certificate(system: System, cert: dict) -> tuple[bool, str]:
    """``(valid, reason)``: coverage and every search's certificate, for this system."""
    if cert.get("format") != FORMAT:
        raise InputError(f"not a Lyapunov certificate (format {cert.get('format')!r})")
    graph = loop_graph(system)
    if cert.get("model_sha256") != vcert.model_digest(graph):
        return False, "the loop graph differs from the one the certificate was made for"
    rho = None if cert.get("rho") is None else float.fromhex(cert["rho"])
    if rho != system.rho:
        return False, f"the certificate is for rho = {rho}, the system states {system.rho}"
    names = {s["name"] for s in cert["searches"]}
    needed = {"positivity"} | ({"decrease+invariance"} if system.time == "discrete" else {"decrease"}) \
        | ({"sublevel_in_box"} if system.time == "continuous" and rho is not None else set())
    if needed - names:
        return False, f"no search for {sorted(needed - names)}"
    if system.check_v_eq_zero:
        import numpy as np
        v = run(graph, np.array([system.x_eq], np.float32))[0].reshape(-1)[V_OUT]
        if v != 0:
            return False, f"V(x*) = {float(v)!r}, not 0"
    total = 0
    for s in cert["searches"]:
        try:
            cells = _leaf_cells(system, s["name"], s["leaves"])
        except Invalid as exc:
            return False, str(exc)
        level = None if s["name"] == "positivity" and not system.positivity_within_level else rho
        unsafe = unsafe_sets(system, s["name"], level)
        n_out = graph.output_values[0].shape[-1]
        prop = Property(system.dim, n_out, tuple(Case(c.box(), unsafe) for c in cells), f"<{system.name}>")
        res = check(graph, prop, s["certificate"])
        if not res.valid:
            return False, f"search {s['name']}: {res.reason}"
        total += res.leaves
    return True, f"{len(cert['searches'])} searches, {total} verify leaves re-checked"
