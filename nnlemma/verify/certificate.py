"""Proof certificates of ``unsat`` verdicts: what the search proved, written so that
:mod:`nnlemma.verify.checker` can re-check it without the search.

A certificate is one JSON object. Every real number in it is a ``float.hex`` string
(``"-0x1.8p-3"``, ``"-inf"``): float32 box values, split points and float64 bounds round-trip
bit-exactly, −0 and ±inf included, whatever JSON parser reads the file.

.. code-block:: text

    {"format": "nnlemma-certificate", "version": 1,
     "model_sha256":    sha256 of the model's canonical IR JSON (ir.serialize.to_dict: ops,
                        attributes and every weight bit),
     "property_sha256": sha256 of the parsed property's canonical form (exact rationals),
     "semantics": "float32",
     "options": {"relu_refine": bool, "alpha_iters": int, "enum_limit": int},
     "padding": "repeat-last-to-power-of-two",
     "cases": [{"case": i, "method": "input" | "relu" | "empty-region",
                "lo": [...], "hi": [...],          # the case's float32 box, zeros canonical
                "nodes": [[id, kind, ...], ...],
                "batches": [[id, ...] | {"alpha_iters": k, "nodes": [id, ...]}, ...]}]}

Node entries; node 0 is the root (the case's whole box, no ReLU sign fixed); ids are given in
creation order:

* ``[id, "split", dim, m, left, right]`` — input split: ``left`` is the box with ``hi[dim] = m``,
  ``right`` the box with ``lo[dim] = next_up(m)`` (an exact partition of the float32 points);
* ``[id, "relu", value_id, k, neg, pos]`` — activation split on element ``k`` (row-major, batch
  element 0) of the ReLU input ``%value_id``: ``neg`` adds ``z_k <= 0``, ``pos`` adds ``z_k >= 0``;
* ``[id, "bound", [lb_0, ..., lb_{S-1}]]`` — leaf refuted by certified lower bounds of the rows
  ``C·y`` (one row per distinct atom of the case, in order of first appearance: :class:`SpecRows`);
* ``[id, "enumerated"]`` — leaf decided by running the kernel on every float32 point;
* ``[id, "empty"]`` — leaf whose ReLU sign clamps are contradictory (it holds no point).

``batches`` lists the search's bounding calls in order: the node ids bounded together (padded
by repeating the last one up to a power of two). Certified bounds depend on the batch composition
(the rounding of float64 sums over batch-shaped arrays, and which intermediate elements CROWN
tightens, decided over the whole batch), so the checker recomputes each leaf in its batch and
needs the bits to agree; the composition never matters for soundness (every batch element is
bounded soundly whatever its neighbours). An input-splitting batch written as an object was
bounded with ReLU slopes optimised by ``k`` deterministic steps per (row, box) pair
(:meth:`Problem.bound_rows`); the checker reruns the same steps (the slopes need no checking:
any slope gives a sound bound). A box may be in one plain and one such batch (the search retries
the boxes CROWN leaves open); a leaf's stored bound is checked against the larger of its
recomputed bounds, row by row — each is a certified lower bound, so their maximum is one too.

``method = "empty-region"``: the case's box holds no float32 point; nothing else is needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..ir.graph import Graph
from ..vnnlib import Property

FORMAT = "nnlemma-certificate"
VERSION = 1
PADDING = "repeat-last-to-power-of-two"
F32 = np.float32


class CertificateError(InputError):
    """A certificate file is missing, not JSON, or not an nnlemma certificate (malformed input,
    as opposed to a well-formed certificate that does not check)."""


# -- numbers ---------------------------------------------------------------------------------

def enc(v) -> str:
    """Exact text of a float32 or float64 value (``float.hex`` without trailing zero digits)."""
    s = float(v).hex()
    if "." not in s:
        return s  # inf, -inf, nan
    mant, exp = s.split("p")
    return mant.rstrip("0").rstrip(".") + "p" + exp


_HEX = re.compile(r"-?(0x[0-9a-f]+(\.[0-9a-f]+)?p[+-][0-9]+|inf)")


def dec64(s) -> float:
    """A float64 from :func:`enc` text; ValueError if it is not one (no decimal, no NaN)."""
    if not isinstance(s, str) or not _HEX.fullmatch(s):
        raise ValueError(f"{str(s)[:40]!r} is not a hex float string")
    return float.fromhex(s)


def dec32(s) -> np.float32:
    """A float32 from :func:`enc` text; ValueError unless the value is exactly a float32."""
    v = dec64(s)
    f = F32(v)
    if np.isnan(v) or float(f) != v:
        raise ValueError(f"{s!r} is not a float32 value")
    return f


# -- digests ---------------------------------------------------------------------------------

def _sha(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def model_digest(graph: Graph) -> str:
    """sha256 of the canonical IR JSON: changes with any op, attribute, shape or weight bit."""
    from ..ir.serialize import to_dict

    return _sha(to_dict(graph))


def property_digest(prop: Property) -> str:
    """sha256 of the property's meaning (exact rational bounds and atoms, in parse order), so the
    digest does not depend on comments or formatting of the VNN-LIB text."""
    def q(x):
        return f"{x.numerator}/{x.denominator}"

    cases = [{"lo": [q(v) for v in c.box.lo], "hi": [q(v) for v in c.box.hi],
              "lo_strict": list(c.box.lo_strict), "hi_strict": list(c.box.hi_strict),
              "unsafe": [[[[[j, q(k)] for j, k in a.coeffs], q(a.const), a.strict] for a in conj]
                         for conj in c.unsafe]} for c in prop.cases]
    return _sha({"n_inputs": prop.n_inputs, "n_outputs": prop.n_outputs, "cases": cases})


# -- recording (used by the search) ----------------------------------------------------------

class CaseRecord:
    """The split tree and bounding batches of one case, recorded by the search."""

    def __init__(self, method: str, lo: np.ndarray, hi: np.ndarray):
        self.method = method
        self.lo, self.hi = np.asarray(lo, F32).copy(), np.asarray(hi, F32).copy()
        self.nodes: list = [None]          # per id: the entry after the id, None while open
        self.batches: list[list[int]] = []

    def _new(self) -> int:
        self.nodes.append(None)
        return len(self.nodes) - 1

    def batch(self, ids, alpha_iters: int = 0) -> None:
        """One bounding call: its node ids in order; with optimised slopes, also the step count."""
        ids = [int(i) for i in ids]
        self.batches.append({"alpha_iters": int(alpha_iters), "nodes": ids} if alpha_iters else ids)

    def input_split(self, node: int, dim: int, m) -> tuple[int, int]:
        left, right = self._new(), self._new()
        self.nodes[node] = ("split", int(dim), enc(F32(m)), left, right)
        return left, right

    def relu_split(self, node: int, value_id: int, k: int) -> tuple[int, int]:
        neg, pos = self._new(), self._new()
        self.nodes[node] = ("relu", int(value_id), int(k), neg, pos)
        return neg, pos

    def bound(self, node: int, lb: np.ndarray) -> None:
        lb = np.asarray(lb, np.float64)  # a NaN row claims nothing: written as -inf
        self.nodes[node] = ("bound", [enc(v) for v in np.where(np.isnan(lb), -np.inf, lb)])

    def enumerated(self, node: int) -> None:
        self.nodes[node] = ("enumerated",)

    def empty(self, node: int) -> None:
        self.nodes[node] = ("empty",)

    def to_json(self, index: int) -> dict:
        d = {"case": index, "method": self.method, "lo": [enc(v) for v in self.lo],
             "hi": [enc(v) for v in self.hi]}
        if self.method != "empty-region":
            d["nodes"] = [[i, *e] for i, e in enumerate(self.nodes) if e is not None]
            d["batches"] = self.batches
        return d


def build(graph: Graph, prop: Property, semantics: str, options, records: list[CaseRecord]) -> dict:
    """The certificate of an ``unsat`` verdict from the per-case records (one per case)."""
    if len(records) != len(prop.cases) or any(r is None for r in records):
        raise ValueError("a certificate needs a record of every case")
    return {"format": FORMAT, "version": VERSION, "model_sha256": model_digest(graph),
            "property_sha256": property_digest(prop), "semantics": semantics,
            "options": {"relu_refine": bool(options.relu_refine), "alpha_iters": int(options.alpha_iters),
                        "enum_limit": int(options.enum_limit)},
            "padding": PADDING, "cases": [r.to_json(i) for i, r in enumerate(records)]}


# -- files -----------------------------------------------------------------------------------

def dumps(cert: dict) -> str:
    """JSON text with one node or batch per line (readable, diffable, still compact)."""
    def c(v):
        return json.dumps(v, separators=(",", ":"))

    out = ["{"] + [f" {json.dumps(k)}: {c(v)}," for k, v in cert.items() if k != "cases"] + [' "cases": [']
    for n, case in enumerate(cert["cases"]):
        head = [f"{json.dumps(k)}: {c(v)}" for k, v in case.items() if k not in ("nodes", "batches")]
        parts = ["  {" + ", ".join(head)]
        for key in ("nodes", "batches"):
            if key in case:
                body = ",\n".join("    " + c(x) for x in case[key])
                parts.append(f'   {json.dumps(key)}: [\n{body}\n   ]')
        out.append(",\n".join(parts) + "}" + ("," if n + 1 < len(cert["cases"]) else ""))
    out += [" ]", "}"]
    return "\n".join(out) + "\n"


def write(path: str | os.PathLike, cert: dict) -> None:
    """Write atomically (a temporary file, then ``os.replace``)."""
    from .report import atomic_write

    atomic_write(path, dumps(cert))


HEADER = {"model_sha256": str, "property_sha256": str, "semantics": str, "options": dict, "padding": str,
          "cases": list}


def parse(text: str, where: str = "<certificate>") -> dict:
    """The certificate object; :class:`CertificateError` if the text is not one (malformed)."""
    try:
        cert = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CertificateError(f"{where}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return validate(cert, where)


def validate(cert, where: str = "<certificate>") -> dict:
    """Check the envelope (format tag, version, header field types); the content is the checker's."""
    if not isinstance(cert, dict) or cert.get("format") != FORMAT:
        raise CertificateError(f"{where}: not an {FORMAT} file (format tag missing or different)")
    if cert.get("version") != VERSION:
        raise CertificateError(f"{where}: certificate version {cert.get('version')!r} is not supported "
                               f"(this nnlemma reads version {VERSION})")
    for key, typ in HEADER.items():
        if not isinstance(cert.get(key), typ):
            raise CertificateError(f"{where}: field {key!r} is missing or not a {typ.__name__}")
    if any(not isinstance(c, dict) for c in cert["cases"]):
        raise CertificateError(f"{where}: every entry of 'cases' must be an object")
    if not isinstance(cert["options"].get("relu_refine"), bool):
        raise CertificateError(f"{where}: options.relu_refine must be true or false")
    iters = cert["options"].get("alpha_iters")
    if not isinstance(iters, int) or isinstance(iters, bool) or not 0 <= iters <= 10_000:
        raise CertificateError(f"{where}: options.alpha_iters must be an integer in [0, 10000]")
    return cert


def read(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CertificateError(f"{path}: no such certificate file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CertificateError(f"{path}: cannot read ({exc})") from None
    return parse(text, str(path))
