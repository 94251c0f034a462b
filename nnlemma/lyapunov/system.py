"""A closed-loop system with a Lyapunov candidate, as the user writes it, and its verification graph.

A :class:`System` holds the state box ``B = [lo, hi]``, the equilibrium ``x*``, an optional open
hole ``H = (x* − h, x* + h)`` excluded from every condition, the candidate ``V`` and either a
discrete-time successor ``x⁺ = step(x)`` (controller, clamp and integration scheme included) or
a continuous-time vector field ``ẋ = flow(x)``, all written with the nnlemma API on batches ``[B, n]``.
Each spec states its own constants: decay rate ``κ``, level ``ρ`` (None: the whole region),
tolerances. :func:`loop_graph` compiles the one graph every condition is checked on:

* discrete time: ``x ↦ [V(x), V(x⁺) − (1 − κ)·V(x), x⁺_0, …, x⁺_{n−1}]``;
* continuous time: ``x ↦ [V(x), ∇V(x)·f(x) + κ·V(x)]``, with ``∇V`` the derivative graph of
  :func:`nnlemma.grad` — the derivative of the real-valued function the graph denotes, bounded
  like any other graph;
* with ``positivity_c > 0`` (``V(x) >= c·‖x − x*‖`` asked for), the state ``x_0 … x_{n−1}``
  itself is appended: copying an input is exact, so the norm enters the property as exact linear
  atoms (see :func:`nnlemma.lyapunov.check.unsafe_sets`) instead of a rounded float32 computation.

Both are ordinary nnlemma graphs: the float32 semantics is the whole loop as the kernel executes it,
the real semantics exact arithmetic throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from ..ir.graph import Graph
from ..ir.transforms import prune

F32 = np.float32
V_OUT, DEC_OUT, NEXT_OUT = 0, 1, 2   # output positions in the loop graph


@dataclass
class System:
    name: str
    lo: Sequence[float]
    hi: Sequence[float]
    V: Callable
    step: Callable | None = None            # discrete time: x -> x⁺ ([B, n] -> [B, n])
    flow: Callable | None = None            # continuous time: the vector field x -> ẋ
    x_eq: Sequence[float] | None = None     # default: the origin
    hole: Sequence[float] | float | None = None   # half-widths of the open box around x_eq left out
    kappa: float = 0.0
    rho: float | None = None                # the level: conditions hold on {x in B \\ H : V(x) <= rho}
    decrease_tol: float = 0.0               # decrease holds when V(x⁺) − (1−κ)V(x) < tol (< 0: a margin)
    box_tol: float = 0.0                    # discrete: x⁺ must lie in (lo − tol, hi + tol)
    positivity_tol: float = 0.0             # positivity holds when V(x) > −tol on B \\ H
    positivity_within_level: bool = False   # check positivity only where V(x) <= rho (as some specs state it)
    positivity_c: float = 0.0               # > 0: positivity is V(x) > c·‖x − x*‖ − tol instead (norm below)
    positivity_norm: str = "1"              # "1" or "inf"
    check_v_eq_zero: bool = True            # V(x*) = 0 exactly (off for candidates like the NLC baselines)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.lo = [float(v) for v in self.lo]
        self.hi = [float(v) for v in self.hi]
        n = len(self.lo)
        if len(self.hi) != n or n == 0 or any(not a < b for a, b in zip(self.lo, self.hi)):
            raise InputError(f"system {self.name!r}: the state box needs lo < hi in every dimension")
        if (self.step is None) == (self.flow is None):
            raise InputError(f"system {self.name!r}: give exactly one of step (discrete time) or flow (continuous time)")
        self.x_eq = [0.0] * n if self.x_eq is None else [float(v) for v in self.x_eq]
        if isinstance(self.hole, (int, float)):
            self.hole = [float(self.hole)] * n
        if self.hole is not None:
            self.hole = [float(v) for v in self.hole]
            if len(self.hole) != n or any(h <= 0 for h in self.hole):
                raise InputError(f"system {self.name!r}: hole needs {n} positive half-widths")
        if len(self.x_eq) != n or not all(a <= e <= b for a, e, b in zip(self.lo, self.x_eq, self.hi)):
            raise InputError(f"system {self.name!r}: x_eq must lie in the state box")
        if not (np.isfinite(self.positivity_c) and self.positivity_c >= 0) or self.positivity_norm not in ("1", "inf"):
            raise InputError(f"system {self.name!r}: positivity_c must be finite and >= 0, positivity_norm '1' or 'inf'")
        if self.rho is not None and not np.isfinite(self.rho):
            raise InputError(f"system {self.name!r}: rho must be finite")

    @property
    def dim(self) -> int:
        return len(self.lo)

    @property
    def time(self) -> str:
        return "discrete" if self.step is not None else "continuous"

    @property
    def state_out(self) -> int:
        """Position of the copy of x among the loop outputs (present only when ``positivity_c > 0``)."""
        return NEXT_OUT + self.dim if self.time == "discrete" else 2


def loop_graph(system: System) -> Graph:
    """The verification graph (see the module docstring); V must map [B, n] to [B] or [B, 1]."""
    import nnlemma as nl

    kappa = system.kappa

    def vec(t):
        return nl.reshape(t, (-1,)) if len(t.shape) == 2 else t

    def loop(x):
        v = vec(system.V(x))
        if system.step is not None:
            xn = system.step(x)
            dec = vec(system.V(xn)) - (1.0 - kappa) * v
            outs = [v, dec] + [xn[:, i] for i in range(system.dim)]
        else:
            grad_v = nl.grad(lambda z: vec(system.V(z)).sum(axis=0))(x)
            outs = [v, (grad_v * system.flow(x)).sum(axis=1) + kappa * v]
        if system.positivity_c > 0:
            outs += [x[:, i] for i in range(system.dim)]
        return nl.stack(outs, axis=1)

    try:
        graph = nl.compile(loop, np.zeros((1, system.dim), F32)).graph
    except InputError:
        raise
    except Exception as exc:  # a user function that does not trace: name the system
        raise InputError(f"system {system.name!r}: building the closed-loop graph failed: "
                         f"{type(exc).__name__}: {exc}") from None
    # source lines outside the system file name whoever called this (the CLI, a test): dropped, so
    # the graph and its certificate digest depend only on the system
    graph = replace(graph, equations=tuple(replace(e, source=None) for e in graph.equations))
    return prune(graph)  # drops derivative nodes no output needs (cotangents of parameters)
