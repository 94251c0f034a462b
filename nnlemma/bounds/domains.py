"""Bounds on activation-split sub-domains, reusing a root CROWN pass.

A *domain* of an input box X restricts some ReLU inputs to a sign: for a relaxed node r with input
z, ``sign = +1`` keeps the points with ``z >= 0``, ``sign = -1`` those with ``z <= 0`` (z is the
value the semantics computes: the float32 kernel value for ``float32``). The two children of a
split cover their parent (every point has z >= 0 or z <= 0, both zeros included in both), so a
tree of splits covers X.

Bounds on a domain D ⊆ X, from the root context (bounds over X):

* every root interval still encloses the node on D (D ⊆ X), and so does every root float32
  rounding bound E (it bounds the rounding at every point whose operands lie in the root
  intervals) — both are reused unchanged;
* at a split node the interval is intersected with ``[0, +inf]`` or ``[-inf, 0]``: on D that is
  exactly the constraint defining D, so it stays an enclosure; if the intersection is empty, D
  holds no point at all (reported as ``infeasible``);
* nodes downstream of a split are re-bounded by the IBP rule on the domain's operand intervals and
  intersected with their root interval (both are enclosures on D).

The CROWN backward pass then relaxes each ReLU on the domain's (tighter) input interval; its
soundness argument (:mod:`nnlemma.bounds.crown`) only needs every interval and rounding bound it
reads to enclose the node on the points considered, which the construction above guarantees.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph
from .backward import node_bounds
from .common import RELAX, Ctx, outward
from .ibp import IBP_RULES
from .interval import SEMANTICS, Interval


def relu_inputs(graph: Graph) -> list[int]:
    """Value ids of the inputs of the relaxed ops, in graph order (the splittable nodes)."""
    return list(dict.fromkeys(e.inputs[0] for e in graph.equations if e.op in RELAX))


def _batched(iv: Interval, shape: tuple[int, ...], B: int) -> Interval:
    """Broadcast a root interval (batch axis 1) to B domains."""
    if not iv.lo.shape or iv.lo.shape[0] != 1 or B == 1:
        return iv
    full = (B,) + tuple(iv.lo.shape[1:])
    return Interval(np.broadcast_to(iv.lo, full), np.broadcast_to(iv.hi, full), np.broadcast_to(iv.nan, full))


def domain_ctx(root: Ctx, graph: Graph, signs: dict[int, np.ndarray], refine: bool = False) -> tuple[Ctx, np.ndarray]:
    """A context for B domains of the root's single box (``root.B == 1``).

    ``graph`` is the model rebuilt with batch B; ``signs[z]`` is an int8 array ``[B, n_z]`` (n_z =
    elements of node z per batch element) with +1 / −1 / 0 (unsplit). Returns the context and a
    ``[B]`` bool mask of domains proven empty. With ``refine``, split nodes downstream of another
    split are also re-bounded by CROWN on the domain (intersected, as both enclose the node)."""
    B = next(iter(signs.values())).shape[0] if signs else 1
    ctx = Ctx(graph, root.semantics, B, {}, err=root.err, params=root.params,
              eqn_of={e.out.id: e for e in graph.equations})
    table = IBP_RULES[root.semantics]
    infeasible = np.zeros(B, bool)
    changed: set[int] = set()
    for v in graph.inputs:
        ctx.bounds[v.id] = _batched(root.bounds[v.id], v.shape, B)
    for p in graph.params:
        ctx.bounds[p.value.id] = root.bounds[p.value.id]
    for e in graph.equations:
        z = e.out.id
        base = _batched(root.bounds[z], e.out.shape, B)
        if any(i in changed for i in e.inputs):
            iv = table[e.op](*(ctx.bounds[i] for i in e.inputs), **dict(e.attrs))
            iv = base.intersect(Interval(np.broadcast_to(iv.lo, base.lo.shape),
                                         np.broadcast_to(iv.hi, base.lo.shape), iv.nan))
            changed.add(z)
        else:
            iv = base
        s = signs.get(z)
        if refine and s is not None and z in changed:
            iv = _refine(ctx, z, iv)
        if s is not None and s.any():
            shape = base.lo.shape
            s = s.reshape(shape)
            zero = iv.lo.dtype.type(0)
            lo = np.where(s > 0, np.maximum(iv.lo, zero), iv.lo)
            hi = np.where(s < 0, np.minimum(iv.hi, zero), iv.hi)
            empty = (lo > hi).reshape(B, -1).any(axis=1)
            infeasible |= empty
            if empty.any():  # keep the arithmetic finite on empty domains; their bounds are unused
                lo = np.where(lo > hi, zero, lo)
                hi = np.maximum(hi, lo)
            iv = Interval(lo, hi, np.broadcast_to(iv.nan, shape))
            changed.add(z)
        ctx.bounds[z] = iv
    return ctx, infeasible


def _refine(ctx: Ctx, z: int, iv: Interval, budget: int = 1 << 23) -> Interval:
    """CROWN bounds of the elements of z whose sign is open in some domain, in row chunks."""
    ctx.bounds[z] = iv
    B = ctx.B
    open_ = ((iv.lo < 0) & (iv.hi > 0)).reshape(B, -1).any(axis=0)
    rows = np.flatnonzero(open_)
    widest = max(int(np.prod(ctx.lshape(v)[1:])) for v in ctx.bounds if v not in ctx.params)
    chunk = max(1, budget // (B * widest))
    lo64 = np.full(iv.lo.shape, -np.inf).reshape(B, -1)
    hi64 = np.full(iv.lo.shape, np.inf).reshape(B, -1)
    for k in range(0, len(rows), chunk):
        mask = np.zeros(open_.shape, bool)
        mask[rows[k:k + chunk]] = True
        l, h = node_bounds(ctx, z, mask)
        l, h = l.reshape(B, -1), h.reshape(B, -1)
        lo64[:, mask] = l[:, mask]
        hi64[:, mask] = h[:, mask]
    lo64, hi64 = lo64.reshape(iv.lo.shape), hi64.reshape(iv.lo.shape)
    clo, chi = outward(lo64, hi64, ctx.semantics)
    return iv.intersect(Interval.make(clo, chi, iv.nan, SEMANTICS[ctx.semantics].dtype))


__all__ = ["domain_ctx", "relu_inputs"]
