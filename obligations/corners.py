"""Discharge multiply-add lemmas by monotonicity: evaluate the kernel at the domain's corners.

For a fold step ``y = fl(acc + fl(x·w))`` with ``acc ∈ [a_lo, a_hi]``, ``x ∈ [x_lo, x_hi]``, all
finite and ``w`` a finite constant, no NaN can arise (0·inf and inf − inf need an infinite
operand; an overflowing product is ±inf and finite + inf is inf). Then, by the library lemmas

* ``mul-monotone``: for ``w ≥ 0``, ``x1 ≤ x2 ⇒ fl(x1·w) ≤ fl(x2·w)`` (reversed for ``w ≤ 0``),
* ``add-monotone``: ``a1 ≤ a2 ⇒ fl(a1 + b) ≤ fl(a2 + b)`` and likewise in ``b``,

(``≤`` is IEEE ``fp.leq``: ±0 equal, NaN excluded), every ``y`` in the domain satisfies
``fl(a_lo + p_min) ≤ y ≤ fl(a_hi + p_max)`` with ``p_min``/``p_max`` the smaller/larger of
``fl(x_lo·w)`` and ``fl(x_hi·w)``; both ends are attained (at a corner). So the lemma
``y ∈ [lo, hi]`` holds iff ``lo ≤ fl(a_lo + p_min)`` and ``fl(a_hi + p_max) ≤ hi`` — decided by
four kernel multiplications and two additions instead of a solver call. The bias step
``fl(acc + b)`` and the identity step are the same argument with one operand fixed.

This route is only as good as the library lemmas it cites: :func:`decide` returns ``None``
(leave it to the solver) unless the caller passes those lemmas as proved. A violated corner is a
concrete counterexample, replayed like a solver's model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .fp_transfer import Dom

F32 = np.float32
LEMMAS = {"mac": ("mul-monotone", "add-monotone"), "add": ("add-monotone",), "id": ()}
# the library lemmas (obligations.library ids) each route lemma stands for: the product fl(x·w)
# is monotone in its first argument for a fixed sign of w; the sum in both arguments
ROUTE_LEMMAS = {"mul-monotone": ("library/mul/monotone-a-nonneg", "library/mul/monotone-a-nonpos"),
                "add-monotone": ("library/add/monotone-a", "library/add/monotone-b")}
STORE = Path(__file__).with_name("library_proofs.json")


def route_requirements() -> dict[str, str]:
    """``id -> formula hash`` of every library query the corner route rests on (cases, coverage,
    exactness checks, and the queries derived cases cite)."""
    from .library import required_queries
    out: dict[str, str] = {}
    for libs in ROUTE_LEMMAS.values():
        for lib in libs:
            out.update(required_queries(lib))
    return out


def proved_route_lemmas(store: str | Path | None = None) -> set[str]:
    """The route lemmas whose library lemmas are recorded as proved in the proof store.

    Every query a cited library lemma rests on (``obligations.library.required_queries``) must
    have a ``proved`` row in the store *with the same formula hash*, so a stale store (the library
    changed since it was proved) proves nothing. A missing or unreadable store proves nothing
    either: the solver then decides every obligation."""
    from .library import required_queries
    try:
        rows = json.loads(Path(store or STORE).read_text())["rows"]
        proved = {(r["id"], r["hash"]) for r in rows if r["status"] == "proved"}
    except (OSError, ValueError, KeyError, TypeError):
        return set()

    def ok(lib: str) -> bool:
        return all(item in proved for item in required_queries(lib).items())
    return {name for name, libs in ROUTE_LEMMAS.items() if all(ok(lib) for lib in libs)}


def _f(b: int) -> np.float32:
    return np.array(b, np.uint32).view(F32)[()]


def _finite(d: Dom) -> bool:
    return not d.nan and bool(np.isfinite(_f(d.lo)) and np.isfinite(_f(d.hi)))


def decide(replay: dict, proved_lemmas: set[str]) -> tuple[str, dict] | None:
    """``("unsat", {})`` if the lemma holds, ``("sat", model)`` with a corner violating it, or
    ``None`` when this route does not apply (NaN or infinite domains, another step, or a cited
    library lemma not proved)."""
    step = replay.get("step")
    if step not in LEMMAS or not set(LEMMAS[step]) <= proved_lemmas:
        return None
    doms = [Dom.from_json(d) for d in replay["operands"]]
    claim = Dom.from_json(replay["claim"])
    if not all(_finite(d) for d in doms):
        return None
    with np.errstate(all="ignore"):
        if step == "mac":
            acc, x, w = doms
            if w.const is None:  # the argument needs a fixed weight (one sign)
                return None
            p = [(np.multiply(_f(xb), _f(w.lo), dtype=F32), xb) for xb in (x.lo, x.hi)]
            (pmin, xmin), (pmax, xmax) = sorted(p, key=lambda t: t[0])
            ends = [(np.add(_f(acc.lo), pmin, dtype=F32), {"x0": acc.lo, "x1": xmin}),
                    (np.add(_f(acc.hi), pmax, dtype=F32), {"x0": acc.hi, "x1": xmax})]
        elif step == "add":
            acc, b = doms  # monotone in both arguments: the low ends give the min, the high the max
            ends = [(np.add(_f(acc.lo), _f(b.lo), dtype=F32), {"x0": acc.lo, "x1": b.lo}),
                    (np.add(_f(acc.hi), _f(b.hi), dtype=F32), {"x0": acc.hi, "x1": b.hi})]
        else:
            (acc,) = doms
            ends = [(_f(acc.lo), {"x0": acc.lo}), (_f(acc.hi), {"x0": acc.hi})]
    for y, corner in ends:
        if not claim.contains(y):
            model = {k: v for k, v in corner.items() if doms[int(k[1:])].const is None}
            return "sat", model
    return "unsat", {}
