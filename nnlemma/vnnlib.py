"""VNN-LIB property files (the VNN-COMP format), parsed with exact rational constants.

A VNN-LIB file states a *counterexample query*: inputs ``X_i`` in a region and outputs ``Y_j``
in an unsafe set. We parse ``declare-const``, ``assert``, ``and``, ``or``, the comparisons
``<= >= < >`` and linear terms (variables, decimal constants, ``+``, ``-``, ``*`` by a constant).
Every decimal is an exact :class:`fractions.Fraction`; nothing is rounded while parsing.

The result is a :class:`Property`: a disjunction of :class:`Case` s, each an input :class:`Box`
(bounds per ``X_i``, exact) with the unsafe output set as a disjunction of conjunctions of
:class:`Atom` s. The float32 input region of a box is the set of float32 vectors inside the
rational box (:meth:`Box.float32_bounds` rounds each bound inward, exactly). Output atoms are
decided exactly on float32 outputs (:meth:`Atom.holds`), never by rounding the threshold.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import SpecError

MAX_TERMS = 100_000
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_VAR = re.compile(r"^([XY])_(\d+)$")
_NUM = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class Atom:
    """``sum_j coeffs[j] * Y_j + const  <= 0`` (``< 0`` when ``strict``), over outputs only."""

    coeffs: tuple[tuple[int, Fraction], ...]
    const: Fraction
    strict: bool

    def value(self, y: np.ndarray) -> Fraction | None:
        """Exact value of the left side at float32 outputs ``y``; None if an operand is not finite."""
        total = self.const
        flat = np.asarray(y, dtype=np.float32).reshape(-1)
        for j, c in self.coeffs:
            v = float(flat[j])
            if not np.isfinite(v):
                return None
            total += c * Fraction(v)
        return total

    def holds(self, y: np.ndarray) -> bool | None:
        """Whether the atom holds at ``y`` (exact); None when a used output is inf or NaN."""
        v = self.value(y)
        if v is None:
            return None
        return v < 0 if self.strict else v <= 0

    def holds_exact(self, y) -> bool | None:
        """Whether the atom holds at exact real outputs ``y`` (:mod:`nnlemma.exact` values:
        Fractions, or rigorous mpmath intervals); None when an enclosure cannot decide it or a
        used output is undefined."""
        from mpmath import iv

        from .exact import PREC

        exact, enclosed = self.const, []
        for j, c in self.coeffs:
            v = y[j]
            if isinstance(v, Fraction):
                exact += c * v
            elif isinstance(v, type(iv.mpf(0))):
                enclosed.append((c, v))
            else:
                return None
        if not enclosed:
            return exact < 0 if self.strict else exact <= 0
        saved, iv.prec = iv.prec, PREC  # mpmath's interval context is process-wide: restored below
        try:
            def q(f: Fraction):
                return iv.mpf(f.numerator) / iv.mpf(f.denominator)
            total = q(exact) + sum((q(c) * v for c, v in enclosed), iv.mpf(0))
            lo, hi = total.a, total.b
        finally:
            iv.prec = saved
        if (hi < 0) if self.strict else (hi <= 0):
            return True
        return False if ((lo >= 0) if self.strict else (lo > 0)) else None

    def __str__(self) -> str:
        terms = " + ".join(f"{c}*Y_{j}" for j, c in self.coeffs) or "0"
        return f"{terms} + {self.const} {'<' if self.strict else '<='} 0"


@dataclass(frozen=True)
class Box:
    """Exact rational bounds per input; ``*_strict`` marks ``<`` / ``>`` bounds."""

    lo: tuple[Fraction, ...]
    hi: tuple[Fraction, ...]
    lo_strict: tuple[bool, ...]
    hi_strict: tuple[bool, ...]

    def float32_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The tightest float32 ``[lo, hi]`` containing exactly the float32 points of the box, or
        None when the box holds no finite float32 point."""
        lo = [f32_at_least(q, s) for q, s in zip(self.lo, self.lo_strict)]
        hi = [f32_at_most(q, s) for q, s in zip(self.hi, self.hi_strict)]
        if any(v is None for v in lo + hi):
            return None
        lo_a, hi_a = np.array(lo, np.float32), np.array(hi, np.float32)
        if np.any(lo_a > hi_a):
            return None
        return lo_a, hi_a

    def real_empty(self) -> bool:
        """Whether the box holds no real point."""
        return any(l > h or (l == h and (ls or hs))
                   for l, h, ls, hs in zip(self.lo, self.hi, self.lo_strict, self.hi_strict))

    def float64_enclosure(self) -> tuple[np.ndarray, np.ndarray]:
        """Float64 ``[lo, hi]`` containing every real point of the box (±inf beyond float64)."""
        lo = [float_at_most(q, False, np.float64) for q in self.lo]
        hi = [float_at_least(q, False, np.float64) for q in self.hi]
        return (np.array([-np.inf if v is None else v for v in lo]),
                np.array([np.inf if v is None else v for v in hi]))

    def float64_inside(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Float64 ``[lo, hi]`` holding exactly the box's float64 points; None if it has none."""
        lo = [float_at_least(q, s, np.float64) for q, s in zip(self.lo, self.lo_strict)]
        hi = [float_at_most(q, s, np.float64) for q, s in zip(self.hi, self.hi_strict)]
        if any(v is None for v in lo + hi):
            return None
        lo_a, hi_a = np.array(lo), np.array(hi)
        return None if np.any(lo_a > hi_a) else (lo_a, hi_a)


@dataclass(frozen=True)
class Case:
    box: Box
    unsafe: tuple[tuple[Atom, ...], ...]  # disjunction of conjunctions; () conjunction = always

    def unsafe_at(self, y: np.ndarray) -> bool | None:
        """Exact decision whether outputs ``y`` are unsafe (None if undecidable: inf/NaN outputs)."""
        return self._decide(lambda a: a.holds(y))

    def unsafe_at_exact(self, y) -> bool | None:
        """:meth:`unsafe_at` for exact real outputs (see :meth:`Atom.holds_exact`)."""
        return self._decide(lambda a: a.holds_exact(y))

    def _decide(self, holds) -> bool | None:
        """True if some conjunction has every atom true; None if none is refuted yet some is
        undecided; else False."""
        undecided = False
        for conj in self.unsafe:
            vals = [holds(a) for a in conj]
            if all(v is True for v in vals):
                return True
            if not any(v is False for v in vals):
                undecided = True
        return None if undecided else False


@dataclass(frozen=True)
class Property:
    n_inputs: int
    n_outputs: int
    cases: tuple[Case, ...]
    source: str = "<string>"


def _to_float(q: Fraction, dtype) -> np.floating:
    """q rounded to ``dtype`` (±inf beyond its range; a Fraction too large for float64 too)."""
    try:
        v = float(q)
    except OverflowError:
        v = float("inf") if q > 0 else float("-inf")
    with np.errstate(over="ignore"):
        return dtype(v)


def float_at_least(q: Fraction, strict: bool = False, dtype=np.float32) -> np.floating | None:
    """Smallest finite ``dtype`` value f with f >= q (f > q if strict); None if there is none."""
    top = Fraction(float(np.finfo(dtype).max))
    if q > top or (strict and q == top):
        return None
    if q < -top:
        return dtype(-np.finfo(dtype).max)
    f = _to_float(q, dtype)
    up, down = dtype(np.inf), dtype(-np.inf)
    ok = (lambda v: Fraction(float(v)) > q) if strict else (lambda v: Fraction(float(v)) >= q)
    while not ok(f):
        f = np.nextafter(f, up)
    while np.isfinite(prev := np.nextafter(f, down)) and ok(prev):
        f = prev
    return f


def float_at_most(q: Fraction, strict: bool = False, dtype=np.float32) -> np.floating | None:
    """Largest finite ``dtype`` value f with f <= q (f < q if strict); None if there is none."""
    f = float_at_least(-q, strict, dtype)
    return None if f is None else dtype(-f)


def f32_at_least(q: Fraction, strict: bool = False) -> np.float32 | None:
    return float_at_least(q, strict, np.float32)


def f32_at_most(q: Fraction, strict: bool = False) -> np.float32 | None:
    return float_at_most(q, strict, np.float32)


class _Parser:
    def __init__(self, text: str, source: str):
        self.source = source
        self.tokens: list[tuple[str, int]] = []
        for lineno, raw in enumerate(text.splitlines(), 1):
            code = raw.split(";", 1)[0]
            self.tokens.extend((tok, lineno) for tok in _TOKEN.findall(code))
        self.i = 0

    def fail(self, msg: str, line: int | None = None):
        if line is None:
            line = self.tokens[min(self.i, len(self.tokens) - 1)][1] if self.tokens else 1
        raise SpecError(f"{self.source}:{line}: {msg}")

    def sexprs(self):
        out = []
        while self.i < len(self.tokens):
            out.append(self.sexpr())
        return out

    def sexpr(self):
        tok, line = self.tokens[self.i]
        self.i += 1
        if tok == ")":
            self.fail("unbalanced ')'", line)
        if tok != "(":
            return (tok, line)
        items = []
        while True:
            if self.i >= len(self.tokens):
                self.fail("missing ')' at end of file", line)
            if self.tokens[self.i][0] == ")":
                self.i += 1
                return (items, line)
            items.append(self.sexpr())


def _term(e, declared, fail) -> tuple[dict[tuple[str, int], Fraction], Fraction]:
    """Linear term -> ({(kind, index): coefficient}, constant)."""
    node, line = e
    if isinstance(node, str):
        m = _VAR.match(node)
        if m:
            if node not in declared:
                fail(f"variable {node} is not declared", line)
            return {(m.group(1), int(m.group(2))): Fraction(1)}, Fraction(0)
        if _NUM.match(node):
            return {}, Fraction(node)
        fail(f"unknown symbol {node!r}", line)
    if not node or not isinstance(node[0][0], str):
        fail("expected a term", line)
    head, args = node[0][0], node[1:]
    parts = [_term(a, declared, fail) for a in args]
    if head == "+" or (head == "-" and len(parts) >= 1):
        coeffs: dict = {}
        const = Fraction(0)
        for k, (c, d) in enumerate(parts):
            sign = -1 if head == "-" and (k > 0 or len(parts) == 1) else 1
            for v, x in c.items():
                coeffs[v] = coeffs.get(v, Fraction(0)) + sign * x
            const += sign * d
        return coeffs, const
    if head == "*":
        with_vars = [p for p in parts if p[0]]
        if len(with_vars) > 1:
            fail("nonlinear product of variables", line)
        scale = Fraction(1)
        for c, d in parts:
            if not c:
                scale *= d
        if not with_vars:
            return {}, scale
        c, d = with_vars[0]
        return {v: x * scale for v, x in c.items()}, d * scale
    fail(f"unsupported operator {head!r} in a term", line)


def _atom(e, declared, fail):
    """Comparison -> ('X'|'Y', coeffs, const, strict): sum coeffs*v + const <= 0 (< 0)."""
    node, line = e
    head, args = node[0][0], node[1:]
    if len(args) != 2:
        fail(f"{head} takes 2 arguments, got {len(args)}", line)
    (ca, da), (cb, db) = (_term(a, declared, fail) for a in args)
    if head in ("<=", "<"):
        lhs, rhs = (ca, da), (cb, db)
    else:
        lhs, rhs = (cb, db), (ca, da)
    coeffs = dict(lhs[0])
    for v, x in rhs[0].items():
        coeffs[v] = coeffs.get(v, Fraction(0)) - x
    coeffs = {v: x for v, x in coeffs.items() if x != 0}
    kinds = {v[0] for v in coeffs}
    if len(kinds) > 1:
        fail("a constraint mixes inputs X and outputs Y; only input boxes and output constraints "
             "are supported", line)
    return ("Y" if "Y" in kinds else "X", coeffs, lhs[1] - rhs[1], head in ("<", ">"), line)


def _dnf(e, declared, fail) -> list[list[tuple]]:
    node, line = e
    if isinstance(node, str) or not node or not isinstance(node[0][0], str):
        fail("expected a formula", line)
    head = node[0][0]
    if head in ("<=", ">=", "<", ">"):
        return [[_atom(e, declared, fail)]]
    if head == "and":
        acc: list[list[tuple]] = [[]]
        for sub in node[1:]:
            acc = [a + b for a in acc for b in _dnf(sub, declared, fail)]
            if len(acc) > MAX_TERMS:
                fail(f"formula expands to more than {MAX_TERMS} cases", line)
        return acc
    if head == "or":
        out = []
        for sub in node[1:]:
            out.extend(_dnf(sub, declared, fail))
        return out
    fail(f"unsupported formula operator {head!r} (supported: and, or, <=, >=, <, >)", line)


def _box(atoms, n_inputs, fail) -> Box:
    lo: list = [None] * n_inputs
    hi: list = [None] * n_inputs
    lo_s = [False] * n_inputs
    hi_s = [False] * n_inputs
    for _, coeffs, const, strict, line in atoms:
        if len(coeffs) != 1:
            fail("input constraints must bound a single X_i (boxes only)", line)
        ((_, i), c), = coeffs.items()
        bound = -const / c  # c*x + const <= 0  <=>  x <= -const/c (c > 0) or x >= (c < 0)
        if c > 0:
            if hi[i] is None or bound < hi[i] or (bound == hi[i] and strict):
                hi[i], hi_s[i] = bound, strict
        else:
            if lo[i] is None or bound > lo[i] or (bound == lo[i] and strict):
                lo[i], lo_s[i] = bound, strict
    missing = [f"X_{i}" for i in range(n_inputs) if lo[i] is None or hi[i] is None]
    if missing:
        fail(f"input(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} lack a lower or "
             f"upper bound; the input region must be a box")
    return Box(tuple(lo), tuple(hi), tuple(lo_s), tuple(hi_s))


def parse(text: str, source: str = "<string>") -> Property:
    p = _Parser(text, source)
    declared: dict[str, None] = {}
    formulas = []
    for node, line in p.sexprs():
        if isinstance(node, str) or not node or not isinstance(node[0][0], str):
            p.fail("expected (declare-const ...) or (assert ...)", line)
        head = node[0][0]
        if head == "declare-const":
            if len(node) != 3 or not isinstance(node[1][0], str) or node[2][0] != "Real":
                p.fail("expected (declare-const NAME Real)", line)
            name = node[1][0]
            if not _VAR.match(name):
                p.fail(f"variable {name!r} must be named X_i or Y_j", line)
            if name in declared:
                p.fail(f"variable {name} declared twice", line)
            declared[name] = None
        elif head == "assert":
            if len(node) != 2:
                p.fail("assert takes one formula", line)
            formulas.append(node[1])
        else:
            p.fail(f"unsupported command {head!r}", line)
    n_in = _count(declared, "X", p.fail)
    n_out = _count(declared, "Y", p.fail)
    terms: list[list[tuple]] = [[]]
    for f in formulas:
        terms = [a + b for a in terms for b in _dnf(f, declared, p.fail)]
        if len(terms) > MAX_TERMS:
            p.fail(f"the property expands to more than {MAX_TERMS} cases")
    grouped: dict[Box, list[tuple[Atom, ...]]] = {}
    for term in terms:
        box = _box([a for a in term if a[0] == "X"], n_in, p.fail)
        unsafe = tuple(Atom(tuple(sorted((i, c) for (_, i), c in coeffs.items())), const, strict)
                       for kind, coeffs, const, strict, _ in term if kind == "Y")
        grouped.setdefault(box, []).append(unsafe)
    cases = tuple(Case(box, tuple(dict.fromkeys(u))) for box, u in grouped.items())
    return Property(n_in, n_out, cases, source)


def _count(declared, kind, fail) -> int:
    idx = sorted(int(_VAR.match(n).group(2)) for n in declared if n[0] == kind)
    if idx != list(range(len(idx))):
        fail(f"{kind} variables must be numbered {kind}_0 .. {kind}_n without gaps")
    if not idx:
        fail(f"no {kind}_i variables declared")
    return len(idx)


def load(path: str | os.PathLike) -> Property:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such property file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read ({exc})") from None
    return parse(text, str(path))
