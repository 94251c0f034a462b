"""A physics-informed network problem as the user writes it, and the graphs its bounds are computed on.

A :class:`PDE` holds the network ``u`` (an nnlemma graph — e.g. a loaded ONNX file —, a module or
a function of tensors, mapping ``[B, n]`` to ``[B, 1]``), the names of its input columns
(``("t", "x")``), the domain box and the PDE residual, plus optional :class:`Condition` s (initial
and boundary conditions) with their own boxes — a box may be flat in some dimensions (``t = 0``)
— and residuals. A residual is a function ``residual(u, X)`` written with the nnlemma API:

* ``u.value`` is u; ``u.t``, ``u.xx``, ``u.tx`` … (or ``u.d("x", "x")``) are its partial
  derivatives, by the input names (attribute spelling needs one-letter names);
* ``X.t``, ``X.x`` … are the coordinates.

Each partial derivative is a forward-mode derivative graph (``nl.jvp``, nested for higher
orders): the derivative of the **real-valued** network, evaluated by the float32 kernel when run
and bounded like any other graph. :func:`part_graph` compiles one graph per part (the PDE, each
condition) with outputs ``[u, partials, residual]`` (see :func:`derivative_indices`); the sampled residual and the certified bounds come from this same graph,
so the two are comparable. Common subexpressions are merged (:func:`nnlemma.ir.transforms.dedupe`:
the function is unchanged bit for bit) and unused nodes pruned.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from ..ir.graph import Graph
from ..ir.transforms import dedupe, prune

F32 = np.float32


@dataclass
class Condition:
    """An initial or boundary condition: its box (flat where the condition fixes a coordinate) and
    residual ``(u, X) -> [B]`` (e.g. ``u.value + sin(pi X.x)`` at t = 0)."""

    name: str
    lo: Sequence[float]
    hi: Sequence[float]
    residual: Callable


@dataclass
class PDE:
    name: str
    model: object                       # Graph, module, function of tensors, or a model file path
    variables: Sequence[str]            # input column names, e.g. ("t", "x")
    lo: Sequence[float]
    hi: Sequence[float]
    residual: Callable                  # (u, X) -> [B] or [B, 1]
    conditions: list[Condition] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.variables = tuple(self.variables)
        n = len(self.variables)
        if n == 0 or len(set(self.variables)) != n or not all(v.isidentifier() for v in self.variables):
            raise InputError(f"problem {self.name!r}: variables must be distinct identifiers")
        if isinstance(self.model, (str, Path)):
            from ..model_io import load_model
            self.model = load_model(self.model)
        self.lo, self.hi = _box(self.name, "domain", self.lo, self.hi, n, flat_ok=False)
        for c in self.conditions:
            c.lo, c.hi = _box(self.name, c.name, c.lo, c.hi, n, flat_ok=True)
        names = [c.name for c in self.conditions]
        if "pde" in names or len(set(names)) != len(names):
            raise InputError(f"problem {self.name!r}: condition names must be distinct and not 'pde'")

    @property
    def dim(self) -> int:
        return len(self.variables)

    def parts(self) -> list[tuple[str, list[float], list[float], Callable]]:
        """(name, lo, hi, residual) for the PDE and each condition."""
        return [("pde", self.lo, self.hi, self.residual)] + [(c.name, c.lo, c.hi, c.residual)
                                                               for c in self.conditions]


def _box(name, part, lo, hi, n, flat_ok):
    lo, hi = [float(v) for v in lo], [float(v) for v in hi]
    if len(lo) != n or len(hi) != n or not all(np.isfinite(lo + hi)):
        raise InputError(f"problem {name!r}, {part}: the box needs {n} finite bounds per side")
    bad = [i for i in range(n) if not (lo[i] <= hi[i] if flat_ok else lo[i] < hi[i])]
    if bad:
        raise InputError(f"problem {name!r}, {part}: lo > hi (or empty) in dimension {bad[0]}")
    return lo, hi


class Fields:
    """``u`` and its partial derivatives at the traced points (see the module docstring)."""

    def __init__(self, model, z, variables: tuple[str, ...]):
        self._model, self._z, self._vars = model, z, variables
        self._fns: dict[tuple[int, ...], Callable] = {}
        self.used: set[tuple[int, ...]] = set()

    def _fn(self, idx: tuple[int, ...]) -> Callable:
        if idx not in self._fns:
            import nnlemma as nl
            if not idx:
                self._fns[idx] = lambda w: nl.call(self._model, w)
            else:
                inner, k = self._fn(idx[:-1]), idx[-1]

                def f(w, inner=inner, k=k):
                    e = np.zeros(tuple(w.shape), F32)
                    e[..., k] = 1
                    return nl.jvp(inner, (w,), (e,))[1]
                self._fns[idx] = f
        return self._fns[idx]

    def d(self, *names: str):
        """∂^k u / ∂names[0] … ∂names[k-1] as a ``[B]`` tensor (the network's output column 0)."""
        try:
            idx = tuple(sorted(self._vars.index(v) for v in names))  # smooth u: mixed partials commute
        except ValueError:
            raise InputError(f"unknown variable in derivative {names}; the variables are {self._vars}") from None
        self.used.add(idx)
        out = self._fn(idx)(self._z)
        if len(out.shape) != 2 or out.shape[1] != 1:
            raise InputError(f"the network must map [B, {len(self._vars)}] to [B, 1], got {list(out.shape)}")
        return out[:, 0]

    @property
    def value(self):
        return self.d()

    def __getattr__(self, name: str):
        if name.startswith("_") or not all(len(v) == 1 for v in self._vars) or \
                not name or any(ch not in self._vars for ch in name):
            raise AttributeError(name)
        return self.d(*name)


class Coords:
    """The coordinates of the traced points by variable name (``X.t``, ``X.x``: ``[B]`` tensors)."""

    def __init__(self, z, variables):
        self._z, self._vars = z, variables

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self._vars:
            raise AttributeError(name)
        return self._z[:, self._vars.index(name)]


def derivative_indices(n: int, used: set[tuple[int, ...]], which: str) -> list[tuple[int, ...]]:
    """The partials a part graph outputs: ``used`` (u and what the residual uses), ``first`` (also
    every first partial) or ``all`` (also every second partial, mixed ones once)."""
    out = {()} | set(used)
    if which in ("first", "all"):
        out |= {(i,) for i in range(n)}
    if which == "all":
        out |= {(i, j) for i in range(n) for j in range(i, n)}
    return sorted(out, key=lambda ix: (len(ix), ix))


def column_name(variables: Sequence[str], idx: tuple[int, ...]) -> str:
    """``u``, ``u_t``, ``u_xx``, ``u_tx`` … (``u_t_x`` style when a variable name is longer)."""
    sep = "" if all(len(v) == 1 for v in variables) else "_"
    return "u" if not idx else "u_" + sep.join(variables[i] for i in idx)


def _constant_columns(graph: Graph) -> set[int]:
    """Positions of the output stack's operands that no graph input reaches."""
    varying = {v.id for v in graph.inputs}
    for e in graph.equations:
        if any(i in varying for i in e.inputs):
            varying.add(e.out.id)
    stack = next(e for e in graph.equations if e.out.id == graph.outputs[0])
    return {k for k, i in enumerate(stack.inputs) if i not in varying}


def part_graph(problem: PDE, residual: Callable, which: str = "first") -> tuple[Graph, list[str]]:
    """The graph ``[B, n] -> [B, k]`` of u, its partials (see :func:`derivative_indices`) and the
    residual (last column), and the column names."""
    import nnlemma as nl
    names: list[str] = []
    constant: set[int] = set()      # columns that do not depend on the point (a quadratic's u_xx)

    def fn(z):
        u, X = Fields(problem.model, z, problem.variables), Coords(z, problem.variables)
        r = residual(u, X)
        if not hasattr(r, "shape"):
            raise InputError(f"problem {problem.name!r}: a residual must return a tensor, got {type(r).__name__}")
        if len(r.shape) == 2 and r.shape[1] == 1:
            r = nl.reshape(r, (-1,))
        if tuple(r.shape) != (z.shape[0],):
            raise InputError(f"problem {problem.name!r}: the residual has shape {list(r.shape)}, expected [B]")
        idx = derivative_indices(problem.dim, u.used, which)
        names[:] = [column_name(problem.variables, ix) for ix in idx] + ["residual"]
        cols = [u.d(*(problem.variables[i] for i in ix)) for ix in idx] + [r]
        # a constant column keeps batch size 1 when the graph is rebuilt for a batch: add the
        # input-dependent exact zero z0 - z0 (finite z) so it gets the batch axis
        zero = z[:, 0] - z[:, 0]
        return nl.stack([c + zero if k in constant else c for k, c in enumerate(cols)], axis=1)

    def trace():
        try:
            return nl.compile(fn, np.zeros((1, problem.dim), F32)).graph
        except InputError:
            raise
        except Exception as exc:  # a residual that does not trace: name the problem
            raise InputError(f"problem {problem.name!r}: building the residual graph failed: "
                             f"{type(exc).__name__}: {exc}") from None
    graph = trace()
    constant |= _constant_columns(graph)
    if constant:
        graph = trace()
    graph = replace(graph, equations=tuple(replace(e, source=None) for e in graph.equations))
    return prune(dedupe(graph)), names
