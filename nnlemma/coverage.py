"""Which rule tables cover which op: the (op x table) matrix behind ``nnlemma ops`` and ``inspect``.

Each interpretation of the ops registers its table here. A cell is either a rule or an explicit
reason why the op has none; the coverage test fails on any silent gap.
"""

from __future__ import annotations

from .autodiff.rules import JVP_RULES, NO_JVP, NO_VJP, VJP_RULES
from .bounds.crown import CROWN_RULES, crown_cut_reasons
from .bounds.ibp import IBP_RULES
from .ir.shapes import SHAPE_RULES
from .kernels import KERNEL_RULES
from .ops import OPS, REQUIRED

# table name -> (rules by op, reasons by op for ops deliberately without a rule)
RULE_TABLES: dict[str, tuple[dict, dict[str, str]]] = {
    "shape": (SHAPE_RULES, {}),
    "float32-kernel": (KERNEL_RULES, {}),
    "ibp-float32": (IBP_RULES["float32"], {}),
    "ibp-real": (IBP_RULES["real"], {}),
    "crown": (CROWN_RULES, crown_cut_reasons(OPS)),
    "vjp": (VJP_RULES, NO_VJP),
    "jvp": (JVP_RULES, NO_JVP),
}


def coverage(op: str) -> dict[str, str]:
    """``{table: "rule" | "none: <reason>" | "MISSING"}`` for one op."""
    out = {}
    for table, (rules, reasons) in RULE_TABLES.items():
        if op in rules:
            out[table] = "rule"
        elif op in reasons:
            out[table] = f"none: {reasons[op]}"
        else:
            out[table] = "MISSING"
    return out


def explain(op: str) -> str:
    """One op's spec and its rules side by side (``nnlemma ops --explain OP``)."""
    spec = OPS[op]
    lo, hi = spec.arity
    lines = [f"{op}: {spec.doc}",
             f"  arity: {lo}" + ("" if lo == hi else f"..{'n' if hi is None else hi}"),
             f"  properties: {', '.join(sorted(spec.properties)) or '-'}"]
    for name, a in sorted(spec.attrs.items()):
        default = "required" if a.default is REQUIRED else f"default {a.default!r}"
        lines.append(f"  attr {name}: {default}{' (' + a.doc + ')' if a.doc else ''}")
    for table, status in coverage(op).items():
        rules = RULE_TABLES[table][0]
        doc = (getattr(rules.get(op), "__doc__", None) or "").strip().splitlines()
        lines.append(f"  [{table}] {status}{': ' + doc[0] if doc and status == 'rule' else ''}")
    return "\n".join(lines)
