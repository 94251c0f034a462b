"""Float32 rounding bounds per node: ``|kernel value − exact op on the kernel's operands| <= E``.

Used by CROWN and forward bounds, which reason about the exact (real) op applied to the float32
operand values and add ``[−E, E]`` for the node's own rounding. The bounds come from the node's
sound intervals:

* one IEEE operation (add, sub, mul, div, the negative branch of leaky_relu) or correctly rounded
  function (tanh, sigmoid, a trusted property of the kernel): RNE errs by at most
  half an ulp of its result's binade, hence by ``h(max|result|)`` (at least 2^−150 for mul/div,
  whose exact result may underflow);
* folds (linear, matmul): per-step bounds from the replayed interval fold
  (:mod:`nnlemma.bounds.fold_f32`); sum/mean: half-ulps of the running partial-sum bounds;
  conv2d / avg_pool2d: the order-free dot-product bound γ_n·Σ|x|·|w| (:mod:`nnlemma.bounds.conv`);
  batch_norm: its four roundings carried through the affine map (:mod:`nnlemma.bounds.batchnorm`);
* exact ops (relu, neg, abs, data movement, maximum/minimum/clamp) need none; ops that linear
  bounds cut at their interval need none either (the interval bounds the kernel value itself).
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Equation
from .common import MIN_SUB_ERR, Ctx
from .fold_f32 import fold_interval, half_ulp_bound
from .ibp import move_reduced_last

def rounding_error(ctx: Ctx, e: Equation) -> np.ndarray | None:
    """Bound E on |kernel value − exact op on the kernel's operand values| for float32.

    Where the node's interval admits NaN, the kernel value is not "op(operands) + δ" for any
    finite δ (e.g. fl(0·NaN) = NaN in a linear layer with a zero weight, whose coefficient on the
    NaN operand is 0, so no other term of the backward pass sees the NaN): E is +inf there."""
    err = _rounding_error(ctx, e)
    if err is None:
        return None
    out = ctx.bounds[e.out.id]
    nan = np.broadcast_to(out.nan, out.lo.shape)
    return np.where(nan, np.inf, err) if nan.any() else err


def _rounding_error(ctx: Ctx, e: Equation) -> np.ndarray | None:
    op = e.op
    if op in ("relu", "neg", "abs", "identity", "reshape", "transpose", "slice", "concat", "maximum",
              "minimum", "clamp"):
        return None
    out = ctx.bounds[e.out.id]
    zmax = np.maximum(np.abs(out.lo.astype(np.float64)), np.abs(out.hi.astype(np.float64)))
    if op in ("linear", "matmul") and e.inputs[1] in ctx.params and e.inputs[0] not in ctx.params:
        x = ctx.bounds[e.inputs[0]]
        W = ctx.params[e.inputs[1]]
        wt = W.T if op == "linear" else W
        lead = x.shape[:-1]
        xl = np.broadcast_to(x.lo, x.shape).reshape(-1, x.shape[-1])
        xh = np.broadcast_to(x.hi, x.shape).reshape(-1, x.shape[-1])
        if not (np.isfinite(xl).all() and np.isfinite(xh).all() and np.isfinite(wt).all()):
            return np.full(zmax.shape, np.inf)
        _, _, err = fold_interval(xl, xh, wt, with_err=True)
        err = err.reshape(lead + (wt.shape[1],))
        if op == "linear" and len(e.inputs) == 3:
            err = err + half_ulp_bound(zmax)
        return err
    if op == "conv2d" and e.inputs[1] in ctx.params and e.inputs[0] not in ctx.params and \
            all(i in ctx.params for i in e.inputs[2:]):
        from .conv import conv_error
        return conv_error(ctx, e)
    if op == "avg_pool2d" and e.inputs[0] not in ctx.params:
        from .conv import avg_pool_error
        return avg_pool_error(ctx, e)
    if op == "batch_norm":
        from .batchnorm import applicable, batch_norm_error
        return batch_norm_error(ctx, e) if applicable(ctx, e) else None
    if op in ("add", "sub"):
        return half_ulp_bound(zmax)
    if op in ("mul", "div", "leaky_relu", "tanh", "sigmoid"):  # tanh, sigmoid: correctly rounded
        return np.maximum(half_ulp_bound(zmax), MIN_SUB_ERR)
    if op in ("sum", "mean"):
        x = ctx.bounds[e.inputs[0]]
        flat, _ = move_reduced_last(x, dict(e.attrs)["axes"])
        xm = np.maximum(np.abs(flat.lo.astype(np.float64)), np.abs(flat.hi.astype(np.float64)))
        # The kernel's k-th partial sum satisfies |s_k| <= Σ_{i<=k} max|x_i|·(1 + 2^-24)^k <=
        # partial_k·(1 + (k+1)·2^-23) (the extra 2^-23 covers the float64 cumsum), so half an ulp of
        # that bounds the k-th rounding even when s_k rounds up into the next binade. If the bound
        # reaches the float32 maximum, s_k may overflow to ±inf: the error is unbounded.
        partial = np.cumsum(xm, axis=-1)
        partial = partial * (1 + (np.arange(partial.shape[-1]) + 2) * 2.0 ** -23)
        err = np.where(partial < float(np.finfo(np.float32).max), half_ulp_bound(partial), np.inf).sum(axis=-1)
        if dict(e.attrs)["keepdims"]:
            err = err.reshape(zmax.shape)
        if op == "mean":
            err = err + np.maximum(half_ulp_bound(zmax), MIN_SUB_ERR)
        return err * (1 + 2.0 ** -40)
    return None  # cut ops need no rounding term: their interval already bounds the kernel value


