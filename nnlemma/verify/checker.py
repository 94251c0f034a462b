"""Independent re-check of a proof certificate (:mod:`nnlemma.verify.certificate`).

The checker trusts the model's float32 kernel, the bound computations (:mod:`nnlemma.bounds`,
through :meth:`Problem.bound_rows` and :func:`relu_bab.bound_domains`) and exact rational
arithmetic — not the search: which splits it made, which boxes it called refuted, how it kept its
books. A certificate is valid only if all of the following hold.

1. **Identity.** The model's IR digest (every weight bit) and the property's digest equal the
   recorded ones; the semantics is ``float32``; the padding rule is the one implemented here.
2. **Every case has a tree, rooted at the case's region.** Cases match the property's cases one
   to one, in order; the recorded root box is bit-for-bit the case's float32 box recomputed from
   the property (``empty-region`` only when the box holds no float32 point).
3. **The leaves cover the region.** Starting from node 0, every node has exactly one entry and
   every non-root node exactly one parent; every node is a split or a leaf (a node without a
   verdict is rejected), and no entry lies outside the tree.

   * input split ``(dim, m)`` of a box ``[lo, hi]``: ``m`` is a float32 with
     ``lo[dim] <= m < hi[dim]``; the children are ``[lo, hi | hi[dim] = m]`` and
     ``[lo | lo[dim] = next_up(m), hi]``. No float32 lies strictly between m and next_up(m),
     and both zeros compare equal to m = ±0, so the children partition the parent's points.
   * ReLU split of element k of node z (ReLU cases): the element is still unsplit (sign 0) in
     the parent and splittable by the root pass (its interval is finite, strictly contains 0 and
     excludes NaN), and the children add ``z_k <= 0`` and ``z_k >= 0``. Every point of the parent
     has a non-NaN ``z_k``, which satisfies one of the two, so the children cover the parent.

4. **Each leaf holds no violation.**

   * ``bound``: the leaf is recomputed in the recorded batch (same members, same order, same
     padding, and for an input-splitting batch with ``alpha_iters`` the same slope steps), so the
     float64 bound computation sees the same shapes and rounds the same way. A leaf in a plain
     and an optimised batch takes, row by row, the larger recomputed bound (both are certified).
     Every stored bound must be ``<=`` the recomputed certified lower bound (compared exactly,
     so a bound narrowed by one ulp is rejected; ``-inf`` claims nothing and always passes), and
     the stored bounds must refute every unsafe conjunction, decided exactly in rationals
     (:class:`SpecRows`). Then for every point x of the leaf ``C·f(x) >= recomputed >= stored``,
     so no conjunction holds at x.
   * ``empty``: the recomputed batch must find the leaf's ReLU clamps contradictory.
   * ``enumerated``: the kernel runs on every float32 point of the leaf's box and each output
     must make the unsafe set false (an inf/NaN output, where the property is undecided, fails).

A change of a weight, a split point, a sign, a removed leaf or a narrowed bound therefore gives
``invalid`` with the case, node and row. The recomputation is bit-exact only with the same code,
numpy/BLAS and compiled loops (nnlemma._native) as the search; elsewhere a valid certificate may fail to check (never the
reverse).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..ir.graph import Graph
from ..vnnlib import Case, Property
from . import boxes as bx
from .certificate import PADDING, dec32, dec64, enc, model_digest, property_digest, validate
from .problem import Problem
from .spec import SpecRows

F32 = np.float32
MAX_BATCH = 1 << 14           # members of one recorded batch
MAX_ALPHA_ITERS = 1000        # slope steps of one recorded batch (bounds the checker's work)
MAX_ENUM = 1 << 16            # float32 points of one enumerated leaf
LEAVES = ("bound", "enumerated", "empty")
ARITY = {"split": 6, "relu": 6, "bound": 3, "enumerated": 2, "empty": 2}


class Invalid(Exception):
    """The certificate does not check; the message says where and why."""


@dataclass
class CheckResult:
    valid: bool
    reason: str = ""
    cases: int = 0
    leaves: int = 0
    batches: int = 0                # bounding batches recomputed
    enumerated_points: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"valid": self.valid, "reason": self.reason, "cases": self.cases, "leaves": self.leaves,
                "batches": self.batches, "enumerated_points": self.enumerated_points,
                "seconds": round(self.seconds, 4)}


def check(graph: Graph, prop: Property, cert: dict, semantics: str = "float32") -> CheckResult:
    """Check a certificate (the dict of :func:`certificate.read` or ``VerifyResult.certificate``)
    against the model and property. A malformed envelope raises :class:`CertificateError`."""
    from .api import blas_threads

    validate(cert)
    start = time.monotonic()
    stats = CheckResult(False)
    try:
        with blas_threads(1):
            _check(graph, prop, cert, semantics, stats)
        stats.valid = True
    except Invalid as exc:
        stats.reason = str(exc)
    stats.seconds = time.monotonic() - start
    return stats


def _check(graph: Graph, prop: Property, cert: dict, semantics: str, stats: CheckResult) -> None:
    if cert.get("semantics") != semantics or semantics != "float32":
        raise Invalid(f"semantics {cert.get('semantics')!r}: only 'float32' certificates are checked")
    if cert.get("model_sha256") != model_digest(graph):
        raise Invalid("model digest differs: the certificate was made for another model (a weight, op or "
                      "shape differs)")
    if cert.get("property_sha256") != property_digest(prop):
        raise Invalid("property digest differs: the certificate was made for another property")
    if cert.get("padding") != PADDING:
        raise Invalid(f"unknown batch padding rule {cert.get('padding')!r}")
    options = cert["options"]
    problem = Problem(graph, semantics)
    if prop.n_inputs != problem.n_in or prop.n_outputs != problem.n_out:
        raise InputError(f"{prop.source}: property has {prop.n_inputs} inputs and {prop.n_outputs} outputs; "
                         f"the model has {problem.n_in} and {problem.n_out}")
    cases = cert["cases"]
    if len(cases) != len(prop.cases):
        raise Invalid(f"the property has {len(prop.cases)} case(s), the certificate {len(cases)}")
    for i, (case, cc) in enumerate(zip(prop.cases, cases)):
        if cc.get("case") != i:
            raise Invalid(f"case entry {i} is labelled {cc.get('case')!r}")
        _check_case(problem, case, cc, options, f"case {i}", stats)
        stats.cases += 1


def _f32_list(v, n: int, where: str) -> np.ndarray:
    if not isinstance(v, list) or len(v) != n:
        raise Invalid(f"{where}: expected {n} float32 values")
    try:
        return np.array([dec32(s) for s in v], F32)
    except ValueError as exc:
        raise Invalid(f"{where}: {exc}") from None


def _check_case(problem: Problem, case: Case, cc: dict, options: dict, where: str, stats: CheckResult) -> None:
    region = case.box.float32_bounds()
    method = cc.get("method")
    if region is None:
        if method != "empty-region":
            raise Invalid(f"{where}: the region holds no float32 point, but the method is {method!r}")
        return
    if method not in ("input", "relu"):
        raise Invalid(f"{where}: method {method!r} (the region is not empty: expected 'input' or 'relu')")
    rows = SpecRows.from_case(case, problem.n_out)
    if not rows.exact:
        raise Invalid(f"{where}: an output coefficient is not a float64 value; such cases are never proved")
    lo, hi = bx.canonical(*region)
    for name, mine in (("lo", lo), ("hi", hi)):
        theirs = _f32_list(cc.get(name), problem.n_in, f"{where}: {name}")
        bad = np.flatnonzero(theirs.view(np.uint32) != mine.view(np.uint32))
        if len(bad):
            k = int(bad[0])
            raise Invalid(f"{where}: root box {name}[{k}] = {float(theirs[k])!r} is not the property's float32 "
                          f"region ({float(mine[k])!r})")
    tree = _Tree(cc.get("nodes"), where)
    if method == "input":
        tree.walk_input(lo, hi)
        root = layout = None
    else:
        from .relu_bab import root_context

        root, layout = root_context(problem, lo, hi)
        if root is None:
            raise Invalid(f"{where}: the root bound computation fails ({layout})")
        tree.walk_relu(layout)
        if tree.leaves["enumerated"]:
            raise Invalid(f"{where} node {tree.leaves['enumerated'][0]}: an enumerated leaf in a ReLU-splitting "
                          "case (only input boxes are enumerated)")
    S = rows.C.shape[0]
    stored = {}
    for n in tree.leaves["bound"]:
        stored[n] = _stored_bounds(tree.entry[n][2], S, f"{where} node {n}")
        ok = rows.refuted(stored[n][:, None])[:, 0]
        for c, conj in enumerate(rows.conjunctions):
            if not any(ok[a] for a in conj):
                raise Invalid(f"{where} node {n}: the stored bounds refute no atom of unsafe conjunction {c} "
                              f"(rows {list(conj)})")
    _check_enumerated(problem, case, tree, where, stats)
    best: dict[int, np.ndarray] = {}   # bound leaf -> per-row max of its recomputed bounds
    for members, iters in tree.batches(cc.get("batches"), method):
        if not any(tree.kind(n) in ("bound", "empty") for n in members):
            continue  # nothing proved by this batch: recomputing it cannot change the verdict
        if method == "input":
            LO = np.stack([tree.box[n][0] for n in members])
            HI = np.stack([tree.box[n][1] for n in members])
            out, why = problem.bound_rows(LO, HI, rows.C, iters, rows.targets(), rows.conjunctions)
            if out is None:
                raise Invalid(f"{where}: bounding fails on batch of node {members[0]} ({why})")
            lb, empty = out[0], np.zeros(len(members), bool)
        else:
            from .relu_bab import bound_domains

            flat = np.stack([tree.signs(n, layout.total) for n in members])
            lb, empty = bound_domains(problem, root, layout, flat, rows.C, options["relu_refine"],
                                      alpha_iters=options["alpha_iters"], target=rows.targets(),
                                      groups=rows.conjunctions)[:2]
        stats.batches += 1
        for pos, n in enumerate(members):
            if tree.kind(n) == "empty" and not empty[pos]:
                raise Invalid(f"{where} node {n}: marked empty, but its ReLU sign clamps are consistent")
            if tree.kind(n) == "bound":
                best[n] = lb[:, pos] if n not in best else np.fmax(best[n], lb[:, pos])
    for n, lb_n in best.items():
        for r in range(S):
            if not (stored[n][r] <= lb_n[r] or stored[n][r] == -np.inf):  # -inf claims nothing
                raise Invalid(f"{where} node {n} row {r}: stored bound {enc(stored[n][r])} exceeds the "
                              f"recomputed certified bound {enc(lb_n[r])}")
    stats.leaves += sum(len(v) for v in tree.leaves.values())


def _stored_bounds(v, S: int, where: str) -> np.ndarray:
    if not isinstance(v, list) or len(v) != S:
        raise Invalid(f"{where}: expected {S} stored bounds (one per atom row)")
    try:
        out = np.array([dec64(s) for s in v], np.float64)
    except ValueError as exc:
        raise Invalid(f"{where}: {exc}") from None
    return out


def _check_enumerated(problem: Problem, case: Case, tree: "_Tree", where: str, stats: CheckResult) -> None:
    for n in tree.leaves["enumerated"]:
        l, h = tree.box[n]
        count = float(np.prod(bx.point_counts(l, h)))
        if count > MAX_ENUM:
            raise Invalid(f"{where} node {n}: an enumerated leaf with {count:.0f} points (the checker enumerates "
                          f"at most {MAX_ENUM})")
        pts = bx.enumerate_points(l, h)
        Y = problem.evaluate(pts)
        for x, y in zip(pts, Y):
            verdict = case.unsafe_at(y)
            if verdict is not False:
                what = "violates the property" if verdict else "gives an inf/NaN output (undecided)"
                raise Invalid(f"{where} node {n}: enumerated point {[float(v) for v in x]} {what}")
        stats.enumerated_points += len(pts)


class _Tree:
    """The node entries of one case, validated as a tree rooted at node 0."""

    def __init__(self, nodes, where: str):
        self.where = where
        if not isinstance(nodes, list):
            raise Invalid(f"{where}: 'nodes' must be a list")
        self.entry: dict[int, list] = {}
        for e in nodes:
            if not (isinstance(e, list) and len(e) >= 2 and type(e[0]) is int and e[1] in ARITY
                    and len(e) == ARITY[e[1]]):
                raise Invalid(f"{where}: malformed node entry {str(e)[:80]}")
            if e[0] in self.entry:
                raise Invalid(f"{where} node {e[0]}: two entries")
            self.entry[e[0]] = e
        self.leaves: dict[str, list[int]] = {k: [] for k in LEAVES}
        self.box: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.up: dict[int, tuple[int, int, int]] = {}   # relu child -> (parent, flat index, sign)

    def kind(self, n: int) -> str:
        return self.entry[n][1]

    def _walk(self, visit) -> None:
        order, seen = [0], {0}
        for n in order:  # grows while walking
            e = self.entry.get(n)
            if e is None:
                raise Invalid(f"{self.where} node {n}: no entry, so no verdict (neither split nor leaf)")
            if e[1] in LEAVES:
                self.leaves[e[1]].append(n)
                continue
            kids = e[4:6]
            if any(type(c) is not int for c in kids) or kids[0] == kids[1]:
                raise Invalid(f"{self.where} node {n}: children must be two distinct node ids")
            for c in kids:
                if c in seen:
                    raise Invalid(f"{self.where} node {c}: reached twice (the splits do not form a tree)")
                seen.add(c)
                order.append(c)
            visit(n, e)
        extra = sorted(set(self.entry) - seen)
        if extra:
            raise Invalid(f"{self.where} node {extra[0]}: not reachable from the root")

    def walk_input(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.box[0] = (lo, hi)

        def visit(n, e):
            if e[1] != "split":
                raise Invalid(f"{self.where} node {n}: a {e[1]!r} split in an input-splitting case")
            _, _, dim, m, left, right = e
            l, h = self.box[n]
            if type(dim) is not int or not 0 <= dim < l.size:
                raise Invalid(f"{self.where} node {n}: split dimension {dim!r} out of range")
            try:
                m = dec32(m)
            except ValueError as exc:
                raise Invalid(f"{self.where} node {n}: split point {exc}") from None
            if not (l[dim] <= m < h[dim]):
                raise Invalid(f"{self.where} node {n}: split point {float(m)!r} is not in [{float(l[dim])!r}, "
                              f"{float(h[dim])!r}) of dimension {dim}")
            h1, l2 = h.copy(), l.copy()
            h1[dim] = m
            l2[dim] = np.nextafter(m, F32(np.inf))
            self.box[left], self.box[right] = (l, h1), (l2, h)

        self._walk(visit)

    def walk_relu(self, layout) -> None:
        def visit(n, e):
            if e[1] != "relu":
                raise Invalid(f"{self.where} node {n}: a {e[1]!r} split in a ReLU-splitting case")
            _, _, z, k, neg, pos = e
            if type(z) is not int or z not in layout.offset or type(k) is not int or not 0 <= k < layout.size[z]:
                raise Invalid(f"{self.where} node {n}: ReLU input %{z} element {k} does not exist")
            j = layout.offset[z] + k
            if not layout.splittable[j]:
                raise Invalid(f"{self.where} node {n}: element {k} of %{z} is not splittable (its root interval "
                              "does not strictly contain 0, or may be NaN or infinite)")
            if self._sign(n, j):
                raise Invalid(f"{self.where} node {n}: element {k} of %{z} is already split in this domain")
            self.up[neg], self.up[pos] = (n, j, -1), (n, j, 1)

        self._walk(visit)

    def _sign(self, n: int, j: int) -> int:
        while n in self.up:
            n, jj, s = self.up[n]
            if jj == j:
                return s
        return 0

    def signs(self, n: int, total: int) -> np.ndarray:
        v = np.zeros(total, np.int8)
        while n in self.up:
            n, j, s = self.up[n]
            v[j] = s
        return v

    def batches(self, batches, method: str) -> list[tuple[list[int], int]]:
        """The recorded batches as (node ids, slope steps), checked: known nodes; each node in at
        most one plain batch and, in input splitting, at most one batch with optimised slopes
        (``{"alpha_iters": k, "nodes": [...]}``, 1 <= k <= MAX_ALPHA_ITERS); every bound or empty
        leaf in some batch."""
        if not isinstance(batches, list):
            raise Invalid(f"{self.where}: 'batches' must be a list")
        placed: set[tuple[int, bool]] = set()
        out = []
        for b in batches:
            iters = 0
            if isinstance(b, dict) and method == "input" and set(b) == {"alpha_iters", "nodes"}:
                iters, b = b["alpha_iters"], b["nodes"]
                if type(iters) is not int or not 0 < iters <= MAX_ALPHA_ITERS:
                    raise Invalid(f"{self.where}: a batch's alpha_iters must be an integer in 1..{MAX_ALPHA_ITERS}")
            if not isinstance(b, list) or not 0 < len(b) <= MAX_BATCH:
                raise Invalid(f"{self.where}: a batch must be a list of 1 to {MAX_BATCH} node ids")
            for n in b:
                if type(n) is not int or n not in self.entry:
                    raise Invalid(f"{self.where}: batch member {n!r} is not a node of the tree")
                if (n, iters > 0) in placed:
                    raise Invalid(f"{self.where} node {n}: in two batches of the same kind")
                placed.add((n, iters > 0))
            out.append((b, iters))
        placed_nodes = {n for n, _ in placed}
        for kind in ("bound", "empty"):
            missing = [n for n in self.leaves[kind] if n not in placed_nodes]
            if missing:
                raise Invalid(f"{self.where} node {missing[0]}: a {kind!r} leaf that is in no batch")
        return out
