"""SMT-LIB2 text for terms: self-contained scripts a third party can run with any FP solver.

A script declares every free variable, names every subterm used more than once with
``define-fun`` (so a fold of n multiply-adds stays linear in size), asserts the formula and ends
with ``(check-sat)``. Constants are printed from their bit patterns, with the special values
(±0, ±oo, NaN) written with SMT-LIB's named constants, so −0 and NaN are exact. Every rounded
operation states its rounding mode (``RNE``).
"""

from __future__ import annotations

from collections import Counter

from .terms import Term, postorder

_ROUNDED = {"fp.add", "fp.sub", "fp.mul", "fp.div", "fp.sqrt", "to_fp"}


def fp_literal(t: Term) -> str:
    s, p = t.sort, t.payload
    eb, sb = s.eb, s.sb
    sign = p >> (eb + sb - 1)
    exp = (p >> (sb - 1)) & ((1 << eb) - 1)
    man = p & ((1 << (sb - 1)) - 1)
    if exp == (1 << eb) - 1:
        return f"(_ NaN {eb} {sb})" if man else f"(_ {'-' if sign else '+'}oo {eb} {sb})"
    if exp == 0 and man == 0:
        return f"(_ {'-' if sign else '+'}zero {eb} {sb})"
    return f"(fp #b{sign} #b{exp:0{eb}b} #b{man:0{sb - 1}b})"


def _real_literal(v) -> str:
    def nat(n: int) -> str:
        return f"{n}.0"
    num = f"(- {nat(-v.numerator)})" if v.numerator < 0 else nat(v.numerator)
    return num if v.denominator == 1 else f"(/ {num} {nat(v.denominator)})"


def _leaf(t: Term) -> str:
    if t.op == "var":
        return t.payload
    if t.op == "fp.const":
        return fp_literal(t)
    if t.op == "real.const":
        return _real_literal(t.payload)
    if t.op == "bool.const":
        return "true" if t.payload else "false"
    raise ValueError(f"not a leaf: {t.op}")


def _apply(t: Term, args: list[str]) -> str:
    if t.op == "to_fp":
        head = f"(_ to_fp {t.sort.eb} {t.sort.sb}) RNE"
    elif t.op in _ROUNDED:
        head = f"{t.op} RNE"
    else:
        head = t.op
    return f"({head} {' '.join(args)})"


def _render(roots: tuple[Term, ...], share: bool) -> tuple[list[str], list[str]]:
    """``(definitions, root texts)``; with ``share``, subterms used twice become define-funs."""
    order = postorder(*roots)
    uses: Counter = Counter()
    for t in order:
        for a in t.args:
            uses[a] += 1
    text: dict[Term, str] = {}
    defs: list[str] = []
    for t in order:
        s = _leaf(t) if not t.args else _apply(t, [text[a] for a in t.args])
        if share and t.args and uses[t] > 1:
            name = f"_t{len(defs)}"
            defs.append(f"(define-fun {name} () {t.sort.smtlib()} {s})")
            s = name
        text[t] = s
    return defs, [text[r] for r in roots]


def term_text(t: Term) -> str:
    """One term as a single SMT-LIB expression (no sharing; for messages and goldens)."""
    return _render((t,), share=False)[1][0]


def script(formula: Term, comments: tuple[str, ...] = (), logic: str = "ALL") -> str:
    """A complete script asserting ``formula``: ``unsat`` means the formula has no model."""
    from .terms import free_vars
    lines = [f"; {c}" for c in comments]
    lines.append(f"(set-logic {logic})")
    for v in sorted(free_vars(formula), key=lambda v: v.payload):
        lines.append(f"(declare-fun {v.payload} () {v.sort.smtlib()})")
    defs, (root,) = _render((formula,), share=True)
    lines.extend(defs)
    lines.append(f"(assert {root})")
    lines.append("(check-sat)")
    lines.append("(exit)")
    return "\n".join(lines) + "\n"
