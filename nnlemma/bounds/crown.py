"""CROWN: backward linear bound propagation, sound for the float32 kernel or for real arithmetic.

For a target node z and a coefficient matrix Λ (``[S, B, ...]``: S bound rows per batch element
b), :func:`backward` computes a certified lower bound of ``Λ·z`` over the input box by walking the
graph backwards and replacing each node by linear functions of its operands:

* affine ops (linear, matmul, conv2d, avg_pool2d, batch_norm, add, sub, neg, mul/div by a constant, sum,
  mean, data movement) are substituted exactly;
* relu / leaky_relu use sound linear relaxations over their input interval
  (:mod:`nnlemma.bounds.linrelax`), tanh / sigmoid too (:mod:`nnlemma.bounds.smooth`);
* every other op is *cut*: the node is treated as a free variable in its (sound) interval.

Float32 soundness: the kernel computes ``z = op(inputs) + δ`` where δ is the rounding of that
node; every rounding node carries a bound ``|δ| <= E`` computed from the intervals of its operands
and result (:mod:`nnlemma.bounds.fold_f32` for folds; half an ulp of the result's binade for single
operations), and the backward pass subtracts ``Σ|Λ|·E``. In ``real`` semantics E = 0.

Soundness of the bound arithmetic itself: all coefficients are float64 and inexact; each
substitution step adds a *slack* ``γ_n·Σ |Λ|·|M|·max|x|`` covering the difference between the
computed and the exact coefficients times the operand's range, and the sum of bias terms carries
a γ-bound on its own rounding. The result is rounded outward.

Batch: all input-dependent nodes have a leading batch axis of size B (or 1 for nodes computed from
constants only), and ops act independently per batch element, so one pass bounds B boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..ir.graph import Graph
from .backward import node_bounds
from .common import AFFINE, RELAX, SMOOTH, STEP, Ctx, outward
from .ibp import IBP_RULES
from .ibp import ibp as ibp_bounds
from .interval import SEMANTICS, Interval
from .rounding import rounding_error

class _Treatment:
    """How the backward pass handles an op (a documented marker for the coverage table)."""

    def __init__(self, doc: str):
        self.__doc__ = doc


CROWN_RULES = {**{op: _Treatment("substituted exactly (affine), with its float32 rounding bound") for op in AFFINE},
               **{op: _Treatment("sound linear relaxation over the input interval (alpha-optimisable)")
                  for op in RELAX},
               **{op: _Treatment("sound linear relaxation over the input interval (chord and tangent lines, "
                                 "intercepts bounded rigorously: nnlemma.bounds.smooth), with its float32 "
                                 "rounding bound (half an ulp: the kernel is correctly rounded)")
                  for op in SMOOTH},
               **{op: _Treatment("substituted exactly (transposed convolution), with an order-free float32 "
                                 "rounding bound (nnlemma.bounds.conv)") for op in ("conv2d", "avg_pool2d")},
               "max_pool2d": _Treatment("linear bounds of a maximum: below by the window element with the "
                                        "largest lower bound, above by it when it dominates, else by the "
                                        "largest upper bound (exact op: no rounding term)"),
               "batch_norm": _Treatment("with constant statistics: substituted exactly per channel, with an "
                                        "enclosure of 1/sqrt(var + eps) and its four float32 roundings "
                                        "(nnlemma.bounds.batchnorm)"),
               "step": _Treatment("sound linear relaxation over the input interval (0 or 1 where stable; "
                                  "else the lines x/u below and 1 + x/|l| above, slopes rounded down; exact op: no "
                                  "rounding term)"),
               "mul": _Treatment("by a constant: substituted exactly; of two variables: McCormick planes "
                                 "over the operands' intervals; with its float32 rounding bound")}


def crown_cut_reasons(ops) -> dict[str, str]:
    """Ops without a linear rule: the backward pass cuts them at their sound IBP interval."""
    return {op: "cut at its sound IBP interval (no linear rule yet; sound, looser)" for op in ops
            if op not in CROWN_RULES}


@dataclass
class CrownResult:
    graph: Graph
    semantics: str
    status: str
    reason: str = ""
    bounds: dict[int, Interval] = field(default_factory=dict)
    looser_than_ibp: dict[int, int] = field(default_factory=dict)  # node -> elements where CROWN was looser
    cut_nodes: list[int] = field(default_factory=list)
    optimized: bool = False   # alpha_crown: output bounds use optimised slopes

    @property
    def outputs(self) -> list[Interval]:
        return [self.bounds[i] for i in self.graph.outputs]


def _batch_of(graph: Graph) -> int:
    return graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape else 1


def _check_batchable(graph: Graph, B: int) -> str | None:
    for v in graph.inputs:
        if not v.shape or v.shape[0] != B:
            return f"input {v.name or v} must have the batch size {B} as leading axis"
    return None


def prepare(graph: Graph, lo, hi, semantics: str = "float32") -> tuple[Ctx | None, str]:
    """IBP pass and context for CROWN; returns (ctx, reason-if-unusable)."""
    if semantics not in SEMANTICS:
        raise InputError(f"unknown semantics {semantics!r}; use 'float32' or 'real'")
    res = ibp_bounds(graph, lo, hi, semantics)
    if res.status != "ok":
        return None, res.reason
    B = _batch_of(graph)
    why = _check_batchable(graph, B)
    if why:
        return None, why
    r = SEMANTICS[semantics]
    ctx = Ctx(graph, semantics, B, dict(res.env),
              params={p.value.id: p.data.astype(r.dtype) for p in graph.params},
              eqn_of={e.out.id: e for e in graph.equations})
    return ctx, ""


def _after_relaxation(graph: Graph) -> set[int]:
    """Nodes with a relaxed op among their ancestors. Before the first relaxation CROWN is only
    affine substitution, which float32 IBP already bounds exactly or tighter."""
    out: set[int] = set()
    for e in graph.equations:
        if e.op in RELAX or e.op in SMOOTH or e.op in STEP or any(i in out for i in e.inputs):
            out.add(e.out.id)
    return out


def tighten(ctx: Ctx, known: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
            products: bool = False) -> dict[int, int]:
    """Forward pass: IBP for every node, and CROWN (intersected with IBP) for the inputs of
    relaxed ops (with ``products``, also for both operands of every product of two variables:
    tighter McCormick planes for many more backward passes); records float32 rounding bounds. Returns, per CROWN-bounded node, how many
    elements CROWN was looser than IBP on (reported, not hidden).

    ``known`` gives, for some nodes, bounds ``(lo, hi)`` (shaped like the node) already proved for
    a region containing this one (e.g. a parent box in input splitting): each is intersected with
    the node's IBP interval before anything uses it, which is sound because a bound that holds
    on a superset of the inputs holds on the subset."""
    graph, r = ctx.graph, SEMANTICS[ctx.semantics]
    targets = {e.inputs[0] for e in graph.equations if e.op in RELAX | STEP} & _after_relaxation(graph)
    smooth_in = {e.inputs[0] for e in graph.equations if e.op in SMOOTH} & _after_relaxation(graph)
    targets |= smooth_in
    # operands of a product of two variables: McCormick's planes are as tight as their intervals
    if products:
        # operands of a product of two variables: McCormick's planes are only as tight as the
        # operands' intervals (derivative graphs: tangent × tanh'); bounded like smooth-op inputs
        prod = {i for e in graph.equations if e.op == "mul" and not (set(e.inputs) & ctx.params.keys())
                for i in e.inputs} & _after_relaxation(graph)
        smooth_in |= prod
        targets |= prod
    looser: dict[int, int] = {}
    table = IBP_RULES[ctx.semantics]
    for e in graph.equations:
        iv = table[e.op](*(ctx.bounds[i] for i in e.inputs), **dict(e.attrs))
        if known and e.out.id in known:
            klo, khi = known[e.out.id]
            iv = iv.intersect(Interval.make(klo, khi, iv.nan, r.dtype))
        ctx.bounds[e.out.id] = iv
        if ctx.semantics == "float32":
            err = rounding_error(ctx, e)
            if err is not None:
                ctx.err[e.out.id] = err
        if e.out.id not in targets or not e.out.shape or e.out.shape[0] != ctx.B:
            continue
        # only elements whose sign IBP leaves open need CROWN for a ReLU (the relaxation of the
        # others is already exact); a tanh/sigmoid relaxation tightens with every narrower interval
        open_ = ((iv.lo < 0) & (iv.hi > 0)).reshape(ctx.B, -1).any(axis=0)
        if e.out.id in smooth_in:
            open_ = (iv.hi > iv.lo).reshape(ctx.B, -1).any(axis=0) | open_
        clo, chi = outward(*node_bounds(ctx, e.out.id, open_), ctx.semantics)
        computed = np.broadcast_to(open_.reshape((1,) + tuple(ctx.lshape(e.out.id)[1:])), iv.lo.shape)
        looser[e.out.id] = int(np.sum(computed & (clo < iv.lo)) + np.sum(computed & (chi > iv.hi)))
        ctx.bounds[e.out.id] = iv.intersect(Interval.make(clo, chi, iv.nan, r.dtype))
    return looser


def crown(graph: Graph, lo, hi, semantics: str = "float32", *,
          alpha: dict[int, np.ndarray] | None = None, products: bool = False) -> CrownResult:
    """CROWN bounds of every node: IBP everywhere, CROWN on the inputs of relaxed ops (and with
    ``products`` on the operands of products of variables) and on the outputs, each intersected
    with IBP; the float32 semantics includes every kernel rounding."""
    return crown_context(graph, lo, hi, semantics, alpha=alpha, products=products)[1]


def crown_context(graph: Graph, lo, hi, semantics: str = "float32", *,
                  alpha: dict[int, np.ndarray] | None = None, products: bool = False
                  ) -> tuple[Ctx | None, CrownResult]:
    """:func:`crown`, also returning its context (None when the result is ``unknown``) for callers
    that run further backward passes on the same bounds."""
    ctx, reason = prepare(graph, lo, hi, semantics)
    if ctx is None:
        return None, CrownResult(graph, semantics, "unknown", reason)
    ctx.alpha.update(alpha or {})
    looser = tighten(ctx, products=products)
    for out in graph.outputs:
        iv = ctx.bounds[out]
        if out in ctx.eqn_of and ctx._shapes[out] and ctx._shapes[out][0] == ctx.B:
            clo, chi = outward(*node_bounds(ctx, out), semantics)
            looser[out] = int(np.sum(clo < iv.lo) + np.sum(chi > iv.hi))
            ctx.bounds[out] = iv.intersect(Interval.make(clo, chi, iv.nan, SEMANTICS[semantics].dtype))
    return ctx, CrownResult(graph, semantics, "ok", "", dict(ctx.bounds), looser, sorted(ctx.cut_nodes))
