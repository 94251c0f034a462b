"""Encoder-agreement obligations: the SMT encoding of each op equals the IEEE operation, for all
inputs (``nnlemma audit kernel``, check 1).

For every op SMT-LIB FloatingPoint can express, the lemma is ``∀x (∀x, y): enc(x) = ref(x)``
with ``=`` the SMT identity (NaN = NaN, +0 ≠ −0), where ``enc`` is :data:`encoders.fp32.FP_RULES`
(what every fp-transfer obligation uses) and ``ref`` is written here from the IEEE 754-2019
definitions by a different route — classification predicates (``fp.isNaN``, ``fp.isNegative``,
``fp.isZero``) instead of comparisons, the total order −0 < +0 spelled out for maximum/minimum and
clamp, and the SMT-LIB arithmetic primitives (which ARE the IEEE operations) for + − × ÷ √. The
formula asserts ``enc ≠ ref``: ``unsat`` proves the encoding; a model names inputs where the two
differ (an encoder or reference bug, reported with the kernel's value there).
The transcendentals have no SMT encoding (their audit is numeric only).
"""

from __future__ import annotations

import numpy as np

from encoders import fp32
from encoders import terms as T

from .model import Obligation

F32 = np.float32
POS_ZERO, NEG_ZERO, ONE = (T.fp_bits(int(np.array(v, F32).view(np.uint32))) for v in (0.0, -0.0, 1.0))


def _c(v: float) -> T.Term:
    return T.fp_bits(int(np.array(v, F32).view(np.uint32)))


def _positive(x):  # x > 0
    return T.and_(T.not_(T.is_nan(x)), T.not_(T.is_negative(x)), T.not_(T.is_zero(x)))


def _below(a, b):
    """a < b in IEEE-2019's order for maximum/minimum, where −0 < +0 (a, b not NaN)."""
    zeros = T.and_(T.is_zero(a), T.is_zero(b), T.is_negative(a), T.not_(T.is_negative(b)))
    return T.or_(T.fp_lt(a, b), zeros)


def _maximum(a, b):
    return T.ite(T.or_(T.is_nan(a), T.is_nan(b)), fp32.NAN, T.ite(_below(a, b), b, a))


def _minimum(a, b):
    return T.ite(T.or_(T.is_nan(a), T.is_nan(b)), fp32.NAN, T.ite(_below(b, a), b, a))


REFERENCE = {
    "identity": lambda a, x: x,
    "neg": lambda a, x: T.fp_neg(x),
    "abs": lambda a, x: T.fp_abs(x),
    "relu": lambda a, x: T.ite(T.is_nan(x), x, T.ite(_positive(x), x, POS_ZERO)),
    "step": lambda a, x: T.ite(T.is_nan(x), fp32.NAN, T.ite(_positive(x), ONE, POS_ZERO)),
    "leaky_relu": lambda a, x: T.ite(_positive(x), x, T.fp_mul(_c(a["alpha"]), x)),
    "clamp": lambda a, x: _minimum(_maximum(x, _c(a["lo"])), _c(a["hi"])),
    "square": lambda a, x: T.fp_mul(x, x),
    "sqrt": lambda a, x: T.fp_sqrt(x),
    "add": lambda a, x, y: T.fp_add(x, y),
    "sub": lambda a, x, y: T.fp_sub(x, y),
    "mul": lambda a, x, y: T.fp_mul(x, y),
    "div": lambda a, x, y: T.fp_div(x, y),
    "maximum": lambda a, x, y: _maximum(x, y),
    "minimum": lambda a, x, y: _minimum(x, y),
}
ARITY2 = {"add", "sub", "mul", "div", "maximum", "minimum"}


def agreement(op: str, attrs: dict | None = None) -> Obligation:
    """The obligation ``∃ inputs: FP_RULES[op] ≠ reference`` (unsat = the encoding is IEEE's)."""
    attrs = attrs or {}
    xs = [T.var("x0", T.F32)] + ([T.var("x1", T.F32)] if op in ARITY2 else [])
    enc = fp32.FP_RULES[op](attrs, *xs)
    ref = REFERENCE[op](attrs, *xs)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(attrs.items()))
    oid = f"kernel/{op}{'(' + shown + ')' if shown else ''}/encoder-agreement/0"
    replay = {"step": "op", "op": op, "attrs": attrs}
    return Obligation(oid, "encoder-agreement", op, "QF_FP", T.not_(T.eq(enc, ref)),
                      f"the SMT encoding of {op} equals the IEEE operation for every input", {"op": op}, replay)
