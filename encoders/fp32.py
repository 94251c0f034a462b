"""Each op's IEEE binary32 meaning, as the float32 kernel defines it, written as FP terms.

``FP_RULES[op](attrs, *operands) -> Term`` gives one output element from its operand elements
(scalars; the obligation generator picks the elements, so shapes never enter here). The rules
follow SEMANTICS.md line by line:

* arithmetic is one ``RNE`` SMT-LIB operation (``fp.add`` … ``fp.sqrt``): SMT-LIB defines these as
  the correctly rounded IEEE 754-2008 results, which is what numpy's float32 ufuncs compute;
* ``maximum``/``minimum`` are IEEE 754-2019 (NaN propagates, −0 < +0), written with explicit
  comparisons because SMT-LIB leaves ``fp.max``/``fp.min`` of (+0, −0) unspecified;
* folds (linear, matmul, conv2d, sum, mean, avg_pool2d) are the left fold from +0 with products
  and sums rounded separately, bias last (:func:`fold`);
* data movement is the identity on the element it moves.

SMT-LIB has one NaN, so an encoding agrees with the kernel "bit for bit, with every NaN equal":
the kernel canonicalises NaN payloads, and no op's non-NaN result depends on a payload.
Transcendentals have no rule: SMT-LIB has no exp/tanh/sin, so those ops are covered by
transcendental-transfer obligations that rest on the kernel's correct rounding (TRUST.md).
"""

from __future__ import annotations

from typing import Callable, Sequence

from .terms import (F32, Term, and_, fp_abs, fp_add, fp_bits, fp_div, fp_gt, fp_lt, fp_mul, fp_neg,
                    fp_sqrt, fp_sub, is_nan, is_negative, is_zero, ite, nan_bits, or_)

NAN = fp_bits(nan_bits(F32))
POS_ZERO = fp_bits(0)
NEG_ZERO = fp_bits(0x80000000)


def const(x: float) -> Term:
    """The float32 constant nearest ``x`` (ties to even), from its bit pattern."""
    import numpy as np
    with np.errstate(over="ignore"):
        return fp_bits(int(np.float32(x).view(np.uint32)))


def maximum(a: Term, b: Term) -> Term:
    """IEEE 754-2019 maximum: NaN if either is NaN; −0 < +0; otherwise the larger."""
    both_neg_zero = and_(is_zero(a), is_zero(b), is_negative(a), is_negative(b))
    zeros = ite(both_neg_zero, NEG_ZERO, POS_ZERO)
    return ite(or_(is_nan(a), is_nan(b)), NAN,
               ite(fp_gt(a, b), a, ite(fp_lt(a, b), b, ite(is_zero(a), zeros, a))))


def minimum(a: Term, b: Term) -> Term:
    """IEEE 754-2019 minimum: NaN if either is NaN; −0 < +0; otherwise the smaller."""
    either_neg_zero = and_(is_zero(a), is_zero(b), or_(is_negative(a), is_negative(b)))
    zeros = ite(either_neg_zero, NEG_ZERO, POS_ZERO)
    return ite(or_(is_nan(a), is_nan(b)), NAN,
               ite(fp_lt(a, b), a, ite(fp_gt(a, b), b, ite(is_zero(a), zeros, a))))


def relu(x: Term) -> Term:
    """``x`` if ``x > 0``; NaN if NaN; else +0 (so relu(−0) = +0)."""
    return ite(fp_gt(x, POS_ZERO), x, ite(is_nan(x), NAN, POS_ZERO))


def step(x: Term) -> Term:
    """``1`` if ``x > 0``; NaN if NaN; else ``+0``."""
    return ite(fp_gt(x, POS_ZERO), const(1.0), ite(is_nan(x), NAN, POS_ZERO))


def leaky_relu(x: Term, alpha: float) -> Term:
    """``x`` if ``x > 0`` else ``fl(alpha·x)`` (NaN propagates through the product)."""
    return ite(fp_gt(x, POS_ZERO), x, fp_mul(const(alpha), x))


def mac(acc: Term, x: Term, w: Term) -> Term:
    """One step of the fold: ``fl(acc + fl(x·w))`` (never fused)."""
    return fp_add(acc, fp_mul(x, w))


def fold(xs: Sequence[Term], ws: Sequence[Term] | None = None, bias: Term | None = None) -> Term:
    """The kernel's one summation order: from +0, in index order, bias added last."""
    acc = POS_ZERO
    for k, x in enumerate(xs):
        acc = fp_add(acc, x) if ws is None else mac(acc, x, ws[k])
    return acc if bias is None else fp_add(acc, bias)


def batch_norm(x: Term, mean: Term, var: Term, gamma: Term, beta: Term, eps: float) -> Term:
    """``fl(fl(fl(fl(x − mean) / fl(sqrt(fl(var + eps)))) · gamma) + beta)``."""
    return fp_add(fp_mul(fp_div(fp_sub(x, mean), fp_sqrt(fp_add(var, const(eps)))), gamma), beta)


def _max_chain(*xs: Term) -> Term:
    acc = xs[0]
    for x in xs[1:]:
        acc = maximum(acc, x)
    return acc


Rule = Callable[..., Term]

# ops whose rule maps operand elements (numpy broadcasting) to one output element
ELEMENTWISE = frozenset({"identity", "neg", "abs", "relu", "step", "leaky_relu", "clamp", "sqrt", "square",
                         "add", "sub", "mul", "div", "maximum", "minimum"})

# op -> rule(attrs, *operand elements). Fold ops take the element lists the fold reads.
FP_RULES: dict[str, Rule] = {
    "identity": lambda attrs, x: x,
    "neg": lambda attrs, x: fp_neg(x),
    "abs": lambda attrs, x: fp_abs(x),
    "relu": lambda attrs, x: relu(x),
    "step": lambda attrs, x: step(x),
    "leaky_relu": lambda attrs, x: leaky_relu(x, attrs["alpha"]),
    "clamp": lambda attrs, x: minimum(maximum(x, const(attrs["lo"])), const(attrs["hi"])),
    "sqrt": lambda attrs, x: fp_sqrt(x),
    "square": lambda attrs, x: fp_mul(x, x),
    "add": lambda attrs, a, b: fp_add(a, b),
    "sub": lambda attrs, a, b: fp_sub(a, b),
    "mul": lambda attrs, a, b: fp_mul(a, b),
    "div": lambda attrs, a, b: fp_div(a, b),
    "maximum": lambda attrs, a, b: maximum(a, b),
    "minimum": lambda attrs, a, b: minimum(a, b),
    # folds: operands are (xs, ws[, bias]) element lists
    "linear": lambda attrs, xs, ws, bias=None: fold(xs, ws, bias),
    "matmul": lambda attrs, xs, ws: fold(xs, ws),
    "conv2d": lambda attrs, xs, ws, bias=None: fold(xs, ws, bias),
    "sum": lambda attrs, xs: fold(xs),
    "mean": lambda attrs, xs, n: fp_div(fold(xs), const(n)),
    "avg_pool2d": lambda attrs, xs, n: fp_div(fold(xs), const(n)),
    "max_pool2d": lambda attrs, xs: _max_chain(*xs),
    "batch_norm": lambda attrs, x, mean, var, gamma, beta: batch_norm(x, mean, var, gamma, beta,
                                                                      attrs["eps"]),
    # data movement: the element moved
    "concat": lambda attrs, x: x,
    "reshape": lambda attrs, x: x,
    "transpose": lambda attrs, x: x,
    "slice": lambda attrs, x: x,
}

FP_CUT_REASONS: dict[str, str] = {
    op: "SMT-LIB FloatingPoint has no transcendental functions; covered by transcendental-transfer "
        "obligations resting on the kernel's correct rounding (TRUST.md)"
    for op in ("tanh", "sigmoid", "exp", "sin", "cos")
}
