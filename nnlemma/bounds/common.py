"""Shared pieces of the linear-bound engines: the context, float64 error constants, relaxations
of a node, and outward conversion of float64 bounds to float32."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.graph import Equation, Graph
from .interval import Interval
from .linrelax import relu_relaxation, step_relaxation
from .smooth import smooth_relaxation

U64 = 2.0 ** -53
MIN_SUB_ERR = 2.0 ** -150


def gamma(n: int) -> float:
    """γ_n = n·u/(1 − n·u) for float64, doubled as a margin for the bound's own rounding."""
    return 2.0 * n * U64 / (1 - n * U64)


AFFINE = {"linear", "matmul", "add", "sub", "neg", "mul", "div", "sum", "mean", "identity", "reshape",
          "transpose", "slice", "concat"}
RELAX = {"relu", "leaky_relu"}   # piecewise linear: relaxed, and splittable by ReLU branch and bound
SMOOTH = {"tanh", "sigmoid"}      # S-shaped: relaxed (nnlemma.bounds.smooth), never split
STEP = {"step"}                   # Heaviside (derivative graphs): relaxed (linrelax.step_relaxation), never split


@dataclass
class Ctx:
    graph: Graph
    semantics: str
    B: int
    bounds: dict[int, Interval]                 # best interval per value id
    err: dict[int, np.ndarray] = field(default_factory=dict)   # float32 rounding bound per node
    params: dict[int, np.ndarray] = field(default_factory=dict)
    eqn_of: dict[int, Equation] = field(default_factory=dict)
    alpha: dict[int, np.ndarray] = field(default_factory=dict)  # relu lower slopes by node id
    # split multipliers: coefficient c added at node z where c·z <= 0 is proven (beta-CROWN)
    beta: dict[int, np.ndarray] = field(default_factory=dict)
    cut_nodes: set[int] = field(default_factory=set)
    relax_cache: dict = field(default_factory=dict)
    # when a dict: the backward pass stores, per relaxed node, the bound each unstable element's
    # upper-line intercept costs (``[S, B, ...]``, >= 0) - the branching score of a ReLU split
    intercept_cost: dict | None = None

    def lshape(self, vid: int) -> tuple[int, ...]:
        return (self.B,) + tuple(self._shapes[vid][1:])

    def __post_init__(self):
        self._shapes = {v.id: v.shape for v in self.graph.values().values()}

    def bounds64(self, vid: int) -> tuple[np.ndarray, np.ndarray]:
        """The node's interval endpoints as float64 arrays of its batched shape ``[B, ...]``."""
        iv = self.bounds[vid]
        shape = self.lshape(vid)
        return (np.broadcast_to(iv.lo.astype(np.float64), shape), np.broadcast_to(iv.hi.astype(np.float64), shape))

    def xmax(self, vid: int) -> np.ndarray:
        """max |x| over the node's interval, float64 (inf where unbounded)."""
        iv = self.bounds[vid]
        return np.maximum(np.abs(iv.lo.astype(np.float64)), np.abs(iv.hi.astype(np.float64)))


def f64_to_f32_down(v: np.ndarray) -> np.ndarray:
    f = v.astype(np.float32)
    return np.where(f.astype(np.float64) > v, np.nextafter(f, np.float32(-np.inf)), f).astype(np.float32)


def f64_to_f32_up(v: np.ndarray) -> np.ndarray:
    f = v.astype(np.float32)
    return np.where(f.astype(np.float64) < v, np.nextafter(f, np.float32(np.inf)), f).astype(np.float32)


def outward(lo64: np.ndarray, hi64: np.ndarray, semantics: str) -> tuple[np.ndarray, np.ndarray]:
    """Certified float64 bounds in the semantics' interval dtype: rounded outward to float32 for
    ``float32``, unchanged (already float64) for ``real``."""
    if semantics == "float32":
        return f64_to_f32_down(lo64), f64_to_f32_up(hi64)
    return lo64, hi64


def relaxation(ctx: Ctx, e: Equation):
    """The node's relaxation (cached: a relaxed node's input bounds are final once computed)."""
    hit = ctx.relax_cache.get(e.out.id)
    if hit is None:
        x = e.inputs[0]
        iv = ctx.bounds[x]
        l, u = ctx.bounds64(x)
        if not (np.isfinite(l).all() and np.isfinite(u).all()) or iv.nan.any() or x in ctx.params:
            hit = None
        elif e.op in STEP:
            hit = step_relaxation(l, u)
        elif e.op in SMOOTH:
            hit = smooth_relaxation(e.op, l, u)
            if not all(np.isfinite(c).all() for c in hit):  # at the float64 limits: cut instead
                hit = None
        else:
            s = dict(e.attrs).get("alpha", 0.0) if e.op == "leaky_relu" else 0.0
            hit = relu_relaxation(l, u, ctx.alpha.get(e.out.id), s)
        ctx.relax_cache[e.out.id] = hit or ()
    return hit or None


