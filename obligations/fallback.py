"""Solver fallback for scalar functions whose interval bound is loose: the tightest float32 bounds
the solver can prove, found by bisection over ordered float32 bit patterns.

**What is bounded.** A *scalar function* is a small elementwise subgraph, one input ``x`` and one
output of the same shape, made of elementwise ops (add, sub, mul, div, abs, neg, maximum, minimum,
clamp, relu, leaky_relu, sqrt, square, identity) and constant parameters — e.g. ``x/(1+|x|)``,
``x·x·x − x``, hard-swish ``x·clamp(x+3, 0, 6)/6`` or a min/max chain. Every op has an IBP rule,
but IBP treats each occurrence of ``x`` independently (the dependency problem), so its bound can
be far from the function's range (``x·x·x − x`` on [−2, 2]: IBP [−10, 10], range [−6, 6]).
:func:`scalar_terms` turns the subgraph into ``f``: an element's input term ↦ its output term,
built from the per-op encodings of :mod:`encoders.fp32` (which agree with the kernel bit for bit),
plus the kernel evaluation of the same subgraph for replay.

**The order.** Non-NaN float32 values are mapped to integers by the usual total-order trick
(:func:`key`): ``key(b) = 2^31 + b`` for a sign-0 pattern ``b`` and ``key(b) = 2^31 − |b|`` for a
sign-1 pattern (``|b|`` the pattern without its sign bit). Then ``a ≤ b`` (``fp.leq``, which is
what every claim uses) iff ``key(a) ≤ key(b)``, with ``key(−0) = key(+0)`` exactly as ``fp.leq``
has −0 = +0, and consecutive keys are one-ulp neighbours. The keys of −∞ … +∞ span fewer than
``2^32`` integers. (:func:`unkey` maps the shared zero key back to +0 for an upper bound and to
−0 for a lower bound: those are the bounds that also hold in IEEE totalOrder.)

**The search (upper bound; the lower bound is the mirror image).** Let ``M`` be the largest key
of ``f(x)`` over the non-NaN values of ``f`` on the domain. For a candidate ``c`` the query is

    ∃x ∈ dom:  ¬( f(x) ≤ c  [∨ isNaN f(x), only if NaN is allowed] )

which is ``unsat`` iff ``c ≥ M``: provability is monotone in ``c``. The search keeps a bracket
``A ≤ M ≤ P``: ``A`` the largest *attained* key (an ``f(x)`` computed by the float32 kernel at a
float32 ``x`` of the domain), ``P`` the smallest *proven* upper key. ``P`` starts at the IBP
bound (sound by IBP's own soundness, so a valid start; the final bound is therefore always
inside IBP's — the intersection of the two proven bounds), ``A`` at the best kernel value over a
few hundred sample points (ends, zeros, a linear and a key-space grid) improved by a kernel-side
local search. Each query at ``c ∈ [A, P)``:

* ``unsat`` ⇒ ``P := c`` (a proof);
* ``sat`` ⇒ the model's ``x`` is replayed on the kernel (:func:`nnlemma.interpret.run` on the
  subgraph); its value must violate the query's claim (and lie inside every proven bound) — then
  it is attained, so ``A := key(f(x)) > c`` (a jump, usually far past the midpoint; a kernel
  local search around ``x`` then raises ``A`` further);
* ``unknown``/timeout ⇒ no bound from this query. After a bisection query the side stops: the
  bound is the last *proven* ``P`` (the IBP bound if nothing was proved). After a probe ``c = A``
  (see below; it asks for a proof of the exact optimum, the hardest query there is) the search
  goes on as plain bisection strictly above ``c``, so a bound a little above the optimum can
  still be proved; the next ``unknown`` stops it.

Bisection takes ``c = A + ⌊(P − A)/2⌋``: an ``unsat`` leaves a gap ``≤ ⌊g/2⌋``, a ``sat`` one
``≤ g − ⌊g/2⌋ − 1 ≤ ⌊g/2⌋``, so a gap ``g < 2^32`` closes in ``bit_length(g) ≤ 32`` queries, plus
one to confirm ``c = P`` when ``P`` came from IBP and no answer was ``unsat``. The budget above
that (``max_queries`` = 40 by default) is spent on *probes* ``c = A`` (is the best value found
the maximum?), which usually end the search in one ``unsat``; a probe is taken only while the
budget still covers the worst-case bisection afterwards, so the bound ``≤ max_queries`` holds.

**NaN.** If IBP says ``f`` cannot be NaN on the domain, NaN is excluded and every bound query
also re-proves it (a NaN output violates the claim). Otherwise the solver is first asked whether
``f`` can be NaN there: ``unsat`` ⇒ excluded as above; ``sat`` (replayed: the kernel gives NaN)
or ``unknown`` ⇒ the claims allow NaN. With NaN inputs in the domain (``dom.nan``), ``f(NaN)`` is
NaN — every supported op maps a NaN operand to NaN — so NaN inputs only add NaN to the range.

**Why it is sound.** Only ``unsat`` answers (and IBP's bound, itself proved by IBP's soundness
and by the fp-transfer obligations) ever become bounds; a ``sat`` answer only moves ``A``, which
decides where to query next and whether the bound is *attained*, never what is claimed. Witnesses
are replayed on the kernel before they move anything: a model that does not replay (its kernel
value satisfies the claim the solver says it violates, lies outside a proven bound, or is NaN
where NaN was proved impossible) is an encoder/kernel or solver disagreement, raised as
:class:`FallbackDisagreement` — the search stops loudly, never silently continues.

**Why "tightest the solver can prove".** When the bracket closes (``A = P``) the bound is
attained — the exact float32 maximum of the kernel's function, with an input that reaches it. If
a query times out first, the bound is the best proven one and may be loose; the result says which
(``tight_lo``/``tight_hi``, ``stopped``).

**The bounds are obligations.** Each side's final claim ``∀x ∈ dom: f(x) ≤ hi`` (resp. ``lo ≤
f(x)``), NaN included or excluded as decided, is an :class:`~obligations.model.Obligation` (kind
``fp-transfer``, op ``fallback``, logic ``QF_FP``) whose violation formula is *the same term* as
the last ``unsat`` query, so re-discharging it re-checks the proof; the provenance names the node,
the function and the cost (queries, solver seconds). :func:`replay_fallback` replays a
counterexample to such an obligation on the kernel (the ``replay`` record carries the subgraph).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from encoders import fp32
from encoders import terms as T
from encoders.terms import EncodingError, Term
from nnlemma.ir.graph import Graph

from .fp_transfer import Dom
from .model import Obligation

F32 = np.float32
ZERO_KEY = 1 << 31
NEG_INF_BITS = 0xFF800000
POS_INF_BITS = 0x7F800000
KEY_MIN = ZERO_KEY - (NEG_INF_BITS & 0x7FFFFFFF)  # key(-inf)
KEY_MAX = ZERO_KEY + POS_INF_BITS  # key(+inf)
SCALAR_OPS = fp32.ELEMENTWISE


class FallbackDisagreement(RuntimeError):
    """A solver model that does not replay on the kernel (or an attained value outside a proven
    bound): the encoder and the kernel, or the solver, or IBP disagree. Never a result about the
    function; the search stops."""


class UnsupportedScalarFunction(EncodingError):
    """The subgraph is not a scalar function of its input made of elementwise ops."""


# ---- ordered bit patterns -----------------------------------------------------------------------

def bits_of(x) -> int:
    return int(np.asarray(x, F32).view(np.uint32))


def f32_of(b: int) -> np.float32:
    return np.array(b, np.uint32).view(F32)[()]


def key(b: int) -> int:
    """Monotone integer key of a non-NaN float32 bit pattern (−0 and +0 share ``2^31``)."""
    if T.is_nan_bits(b, T.F32):
        raise ValueError(f"NaN pattern {b:#010x} has no key")
    return ZERO_KEY + b if b < ZERO_KEY else ZERO_KEY - (b - ZERO_KEY)


def unkey(k: int, zero: int = 0) -> int:
    """The bit pattern of key ``k``; the zero key gives ``zero`` (+0 or −0 = ``0x80000000``)."""
    if not KEY_MIN <= k <= KEY_MAX:
        raise ValueError(f"key {k} is outside [-inf, +inf]")
    if k == ZERO_KEY:
        return zero
    return k - ZERO_KEY if k > ZERO_KEY else 0x80000000 | (ZERO_KEY - k)


def keys_of(ys: np.ndarray) -> np.ndarray:
    """Vectorised :func:`key` (int64) for a float32 array without NaN."""
    b = np.asarray(ys, F32).view(np.uint32).astype(np.int64)
    return np.where(b < ZERO_KEY, ZERO_KEY + b, ZERO_KEY - (b - ZERO_KEY))


def unkeys(ks: np.ndarray) -> np.ndarray:
    """Vectorised :func:`unkey` (zero key → +0) as float32."""
    ks = np.asarray(ks, np.int64)
    b = np.where(ks >= ZERO_KEY, ks - ZERO_KEY, 0x80000000 | (ZERO_KEY - ks))
    return b.astype(np.uint32).view(F32)


# ---- scalar functions ---------------------------------------------------------------------------

def _fmt(v: float) -> str:
    v = float(v)
    if v == int(v) and abs(v) < 1e7:
        return str(int(v)) if not (v == 0 and np.signbit(v)) else "-0"
    return repr(float(F32(v)))


_PREC = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3}


def _label(graph: Graph, element: tuple[int, ...]) -> str:
    """A readable formula for the subgraph, e.g. ``x/(1+|x|)``."""
    (inp,) = graph.inputs
    env: dict[int, tuple[str, int]] = {inp.id: ("x", 9)}
    for p in graph.params:
        d = np.asarray(p.data, F32)
        if d.size and np.all(d.view(np.uint32) == d.reshape(-1)[:1].view(np.uint32)):
            s = _fmt(d.reshape(-1)[0])
            env[p.value.id] = (s, 9 if not s.startswith("-") else 3)
        else:
            env[p.value.id] = (p.value.name or f"%{p.value.id}", 9)

    def wrap(a, need, strict=False):
        s, pr = a
        return f"({s})" if pr < need or (strict and pr == need) else s

    for e in graph.equations:
        a = [env.get(i, (f"%{i}", 9)) for i in e.inputs]
        at = e.attr_dict
        op = e.op
        if op in ("add", "sub"):
            env[e.out.id] = (f"{wrap(a[0], 1)}{'+' if op == 'add' else '-'}{wrap(a[1], 1, op == 'sub')}", 1)
        elif op in ("mul", "div"):
            env[e.out.id] = (f"{wrap(a[0], 2)}{'*' if op == 'mul' else '/'}{wrap(a[1], 2, op == 'div')}", 2)
        elif op == "neg":
            env[e.out.id] = (f"-{wrap(a[0], 3)}", 3)
        elif op == "abs":
            env[e.out.id] = (f"|{a[0][0]}|", 9)
        elif op == "square":
            env[e.out.id] = (f"{wrap(a[0], 9)}^2", 9)
        elif op == "identity":
            env[e.out.id] = a[0]
        elif op == "clamp":
            env[e.out.id] = (f"clamp({a[0][0]}, {_fmt(at['lo'])}, {_fmt(at['hi'])})", 9)
        elif op == "leaky_relu":
            env[e.out.id] = (f"leaky_relu({a[0][0]}, {_fmt(at['alpha'])})", 9)
        elif op in ("maximum", "minimum"):
            env[e.out.id] = (f"{op[:3]}({a[0][0]}, {a[1][0]})", 9)
        else:
            env[e.out.id] = (f"{op}({', '.join(s for s, _ in a)})", 9)
    return env[graph.outputs[0]][0]


def _bcast_index(shape: tuple[int, ...], element: tuple[int, ...]) -> tuple[int, ...]:
    """The index of ``element`` (of the broadcast output shape) inside an operand of ``shape``."""
    tail = element[len(element) - len(shape):] if shape else ()
    return tuple(0 if d == 1 else i for d, i in zip(shape, tail))


@dataclass(frozen=True, eq=False)
class ScalarFunction:
    """One element of an elementwise subgraph as a scalar function: ``f(x_term) -> term``
    (the FP encoding), plus its kernel evaluation and IBP bound over a :class:`Dom`."""
    graph: Graph
    element: tuple[int, ...]
    label: str

    @property
    def shape(self) -> tuple[int, ...]:
        return self.graph.inputs[0].shape

    def __call__(self, x: Term) -> Term:
        g = self.graph
        (inp,) = g.inputs
        env: dict[int, Term] = {inp.id: x}
        for p in _live_params(g):
            d = np.asarray(p.data, F32)
            env[p.value.id] = T.fp_bits(bits_of(d[_bcast_index(d.shape, self.element)]))
        for e in _live(g):
            env[e.out.id] = fp32.FP_RULES[e.op](e.attr_dict, *(env[i] for i in e.inputs))
        return env[g.outputs[0]]

    def replay(self, x) -> np.float32:
        """The float32 kernel's value at this element when every input element is ``x``
        (:func:`nnlemma.interpret.run` on the subgraph itself)."""
        from nnlemma.interpret import run
        (y,) = run(self.graph, np.full(self.shape, F32(x), F32))
        return np.asarray(y, F32)[self.element]

    def kernel_many(self, xs) -> np.ndarray:
        """Vectorised kernel values for many ``x`` (the same kernel rules, broadcasting over a
        leading sample axis; :meth:`replay` is the reference and the tests compare the two)."""
        from nnlemma.interpret import interpret
        from nnlemma.kernels import KERNEL_RULES
        xs = np.asarray(xs, F32).reshape(-1)
        nd = len(self.shape)
        env = interpret(self.graph, KERNEL_RULES, [xs.reshape((-1,) + (1,) * nd)])
        out = np.asarray(env[self.graph.outputs[0]], F32)
        if out.ndim <= nd:  # the output does not depend on x: the same value for every sample
            out = out[None]
        out = np.broadcast_to(out, (xs.size,) + self.shape)
        return np.array(out[(slice(None),) + self.element], F32)

    def ibp(self, dom: Dom) -> tuple[np.float32, np.float32, bool]:
        """IBP's float32 bound of this element over ``x ∈ dom`` (NaN inputs only add NaN)."""
        from nnlemma.bounds.ibp import ibp
        lo, hi = f32_of(dom.lo), f32_of(dom.hi)
        r = ibp(self.graph, np.full(self.shape, lo, F32), np.full(self.shape, hi, F32))
        if r.status != "ok":
            raise UnsupportedScalarFunction(f"IBP failed on the scalar function: {r.reason}")
        (iv,) = r.outputs
        nan = bool(np.broadcast_to(iv.nan, iv.lo.shape)[self.element]) or dom.nan
        return F32(iv.lo[self.element]), F32(iv.hi[self.element]), nan


def _live(graph: Graph):
    """The equations the output depends on, in order."""
    need = {graph.outputs[0]}
    keep = []
    for e in reversed(graph.equations):
        if e.out.id in need:
            keep.append(e)
            need.update(e.inputs)
    return keep[::-1]


def _live_params(graph: Graph):
    """The parameters the output depends on."""
    need = {graph.outputs[0]}.union(*(e.inputs for e in _live(graph)))
    return [p for p in graph.params if p.value.id in need]


def scalar_terms(graph: Graph, element: Sequence[int] | None = None) -> ScalarFunction:
    """The scalar function of a one-input, one-output elementwise subgraph: a callable mapping an
    element's input term to its output term (with ``.replay``/``.kernel_many``/``.ibp``).

    The input and output must have the same shape; the output may depend only on elementwise ops
    (:data:`SCALAR_OPS`) of the input and of constant parameters that broadcast into that shape.
    If a parameter is not uniform the function differs per element and ``element`` must be given.
    Anything else raises :class:`UnsupportedScalarFunction` naming the equation."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedScalarFunction(
            f"a scalar function needs one input and one output; the graph has {len(graph.inputs)} "
            f"input(s) and {len(graph.outputs)} output(s)")
    (inp,) = graph.inputs
    (out,) = graph.output_values
    if out.shape != inp.shape:
        raise UnsupportedScalarFunction(
            f"output shape {list(out.shape)} differs from input shape {list(inp.shape)}: not elementwise")
    shape = inp.shape
    for e in _live(graph):
        if e.op not in SCALAR_OPS:
            raise UnsupportedScalarFunction(
                f"{e.describe()}: op {e.op!r} is not an elementwise op with an FP encoding "
                f"(supported: {', '.join(sorted(SCALAR_OPS))})")
        if np.broadcast_shapes(e.out.shape, shape) != shape:
            raise UnsupportedScalarFunction(f"{e.describe()}: shape {list(e.out.shape)} does not "
                                            f"broadcast into the input shape {list(shape)}")
    uniform = True
    for p in _live_params(graph):
        d = np.asarray(p.data, F32)
        if d.size and not np.all(d.view(np.uint32) == d.reshape(-1)[:1].view(np.uint32)):
            uniform = False
    if element is None:
        if not uniform:
            raise UnsupportedScalarFunction("a parameter is not uniform, so the function differs per "
                                            "element: pass element=(index of the output element)")
        element = (0,) * len(shape)
    element = tuple(int(i) for i in element)
    if len(element) != len(shape) or any(not 0 <= i < d for i, d in zip(element, shape)):
        raise UnsupportedScalarFunction(f"element {list(element)} is not an index of shape {list(shape)}")
    return ScalarFunction(graph, element, _label(graph, element))


# ---- the result ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Witness:
    """An attained value: the kernel gives ``y`` at the float32 input ``x`` (both bit-exact)."""
    x: np.float32
    y: np.float32
    side: str  # "lo", "hi" or "nan"
    source: str  # "solver" (a replayed model), "sample" or "search" (kernel local search)


@dataclass
class FallbackResult:
    node: str
    label: str
    lo: np.float32
    hi: np.float32
    nan: bool
    queries: int
    seconds: float
    witnesses: list[Witness]
    obligations: list[Obligation]
    ibp_lo: np.float32 = F32(-np.inf)
    ibp_hi: np.float32 = F32(np.inf)
    ibp_nan: bool = True
    queries_lo: int = 0
    queries_hi: int = 0
    queries_nan: int = 0
    tight_lo: bool = False
    tight_hi: bool = False
    argmin: np.float32 | None = None  # an input attaining lo (when tight)
    argmax: np.float32 | None = None  # an input attaining hi (when tight)
    stopped: dict[str, str] = field(default_factory=dict)  # side -> why the search ended
    solver: str = ""
    wall_seconds: float = 0.0
    dom: Dom | None = None

    @property
    def claim(self) -> Dom:
        return Dom(bits_of(self.lo), bits_of(self.hi), self.nan)

    def report(self) -> str:
        nan = " or NaN" if self.nan else ""
        ibp_nan = " or NaN" if self.ibp_nan else ""
        loose = [f"{s}: {self.stopped.get(s, '?')}" for s, t in (("lo", self.tight_lo), ("hi", self.tight_hi))
                 if not t]
        note = f" (not attained — {'; '.join(loose)})" if loose else ""
        lo, hi, ilo, ihi = (str(F32(v)) for v in (self.lo, self.hi, self.ibp_lo, self.ibp_hi))
        return (f"node {self.node} ({self.label}): fallback bounds [{lo}, {hi}]{nan} in "
                f"{self.queries} queries, {self.seconds:.2f} s ({self.solver}); IBP gave "
                f"[{ilo}, {ihi}]{ibp_nan}{note}")


def summary(results: Sequence[FallbackResult]) -> str:
    """Which nodes used the fallback and what it cost, one line each plus a total."""
    lines = [r.report() for r in results]
    lines.append(f"fallback used on {len(results)} node(s): {sum(r.queries for r in results)} queries, "
                 f"{sum(r.seconds for r in results):.2f} s solver time")
    return "\n".join(lines)


# ---- the search ---------------------------------------------------------------------------------

def violation(f: Callable[[Term], Term], dom: Dom, claim: Dom) -> Term:
    """``x0 ∈ dom ∧ f(x0) ∉ claim`` — the shape of every fp-transfer violation."""
    x = T.var("x0", T.F32)
    return T.and_(dom.member(x), T.not_(claim.member(f(x))))


def _samples(dom: Dom, n: int = 257) -> np.ndarray:
    """Float32 points of the domain: ends, one-ulp neighbours, zeros, and (``n > 0``) a value
    grid and a key grid of ``n`` points each."""
    lo, hi = f32_of(dom.lo), f32_of(dom.hi)
    if dom.const is not None:
        return np.array([f32_of(dom.const)], F32)
    pts = [lo, hi, np.nextafter(lo, F32(np.inf)), np.nextafter(hi, F32(-np.inf)), F32(0.0), F32(-0.0)]
    if n > 0 and np.isfinite(lo) and np.isfinite(hi):
        with np.errstate(all="ignore"):
            pts.extend(np.linspace(float(lo), float(hi), n).astype(F32))
    klo, khi = key(dom.lo), key(dom.hi)
    if n > 0:
        pts.extend(unkeys(np.linspace(klo, khi, n).round().astype(np.int64)))
    xs = np.array(pts, F32)
    ok = (xs >= lo) & (xs <= hi)
    return np.unique(xs[ok].view(np.uint32)).view(F32)


class _Search:
    def __init__(self, f: ScalarFunction, dom: Dom, solver, timeout_s: float, max_queries: int,
                 local_window: int, kernel: Callable | None, log: Callable[[str], None] | None):
        self.f, self.dom, self.solver, self.timeout_s = f, dom, solver, timeout_s
        self.max_queries, self.window = max_queries, local_window
        self.kernel_many = kernel or f.kernel_many
        self.replay = f.replay if kernel is None else (lambda x: kernel(np.array([x], F32))[0])
        self.seconds = 0.0
        self.probes = True
        self.witnesses: list[Witness] = []
        self.log = log or (lambda s: None)
        self.dlo, self.dhi = f32_of(dom.lo), f32_of(dom.hi)

    # -- solver calls --------------------------------------------------------------------------
    def ask(self, formula: Term):
        out = self.solver.check(formula, self.timeout_s)
        self.seconds += out.seconds
        return out

    def model_x(self, out) -> np.float32:
        if "x0" not in out.model:
            raise FallbackDisagreement(f"{out.solver} said sat without a value for x0")
        x = f32_of(int(out.model["x0"]))
        if not self.dom.contains(x):
            raise FallbackDisagreement(f"{out.solver}'s model x0 = {x!s} ({bits_of(x):#010x}) is outside "
                                       f"the domain")
        return x

    # -- kernel-side local search ---------------------------------------------------------------
    def best_near(self, x: np.float32, sign: int) -> tuple[np.float32, np.float32] | None:
        """Hill-climb on the kernel around ``x`` (±window ulps, repeated while it improves)."""
        if self.window <= 0 or np.isnan(x):
            return None
        kx = key(bits_of(x))
        klo, khi = key(self.dom.lo), key(self.dom.hi)
        best = None
        for _ in range(16):
            ks = np.arange(max(klo, kx - self.window), min(khi, kx + self.window) + 1, dtype=np.int64)
            xs = unkeys(ks)
            ys = self.kernel_many(xs)
            ok = ~np.isnan(ys)
            if not ok.any():
                return best
            u = sign * keys_of(np.where(ok, ys, F32(0)))
            u = np.where(ok, u, np.iinfo(np.int64).min)
            i = int(np.argmax(u))
            cand = (xs[i], ys[i])
            if best is not None and sign * key(bits_of(cand[1])) <= sign * key(bits_of(best[1])):
                return best
            best = cand
            if ks[i] == kx:
                return best
            kx = int(ks[i])
        return best


def tightest_bounds(f: Callable[[Term], Term], dom: Dom, solver, timeout_s: float = 10.0,
                    max_queries: int = 40, *, node: str = "?", label: str | None = None,
                    ibp: tuple[Any, Any, bool] | None = None, kernel: Callable | None = None,
                    model: str = "model", samples: int = 257, local_window: int = 512, probes: bool = True,
                    log: Callable[[str], None] | None = None) -> FallbackResult:
    """The tightest float32 ``[lo, hi]`` (and NaN flag) of ``f(x)`` over ``x ∈ dom`` that the
    solver can prove, with at most ``max_queries`` queries per bound (see the module docstring).

    ``f`` maps the input term to the output term: a :class:`ScalarFunction` (which also gives the
    kernel replay and the IBP start), or any callable together with ``kernel`` (vectorised float32
    evaluation, used to replay witnesses) and ``ibp`` (a proven ``(lo, hi, nan)`` to start from;
    without it the search starts from [−inf, +inf] with NaN possible). ``solver`` is a backend
    object with ``check(formula, timeout_s) -> Outcome`` or a name for :func:`solvers.get_solver`.
    ``samples`` (grid size) and ``local_window`` (ulps either side of a witness searched on the
    kernel) only move the attained end of the bracket; ``probes=False`` disables the ``c = A``
    probes: with 0, 0, False the search is plain bisection with witness jumps.
    Raises :class:`FallbackDisagreement` when a model does not replay."""
    t_wall = time.perf_counter()
    if isinstance(solver, str):
        from solvers import get_solver
        solver = get_solver(solver)
    if kernel is None and not isinstance(f, ScalarFunction):
        raise ValueError("tightest_bounds needs a kernel evaluation to replay witnesses: pass a "
                         "ScalarFunction (scalar_terms) or kernel=")
    if label is None:
        label = getattr(f, "label", "f")
    if dom.const is not None:
        dom = Dom(dom.const, dom.const, dom.nan)
    if ibp is None:
        ibp = f.ibp(dom) if isinstance(f, ScalarFunction) else (F32(-np.inf), F32(np.inf), True)
    ibp_lo, ibp_hi, ibp_nan = F32(ibp[0]), F32(ibp[1]), bool(ibp[2])
    s = _Search(f, dom, solver, timeout_s, max_queries, local_window, kernel, log)
    s.probes = probes
    if np.isnan(ibp_lo) or np.isnan(ibp_hi):
        ibp_lo, ibp_hi, ibp_nan = F32(-np.inf), F32(np.inf), True

    # attained values on a sample of the domain (kernel), checked against IBP's proven bound
    xs = _samples(dom, samples)
    ys = s.kernel_many(xs) if xs.size else np.zeros(0, F32)
    isn = np.isnan(ys)
    if isn.any() and not ibp_nan:
        raise FallbackDisagreement(f"the kernel gives NaN at x = {xs[isn][0]} but IBP excluded NaN")
    fin = ~isn
    if fin.any() and (np.any(ys[fin] < ibp_lo) or np.any(ys[fin] > ibp_hi)):
        bad = int(np.flatnonzero(fin & ((ys < ibp_lo) | (ys > ibp_hi)))[0])
        raise FallbackDisagreement(f"the kernel gives {ys[bad]} at x = {xs[bad]}, outside IBP's "
                                   f"[{ibp_lo}, {ibp_hi}]")

    # NaN: excluded by IBP, or asked once
    stopped: dict[str, str] = {}
    nan_queries = 0
    if not ibp_nan:
        nan_ok = False
    elif isn.any():
        nan_ok = True
        s.witnesses.append(Witness(xs[isn][0], ys[isn][0], "nan", "sample"))
    else:
        x = T.var("x0", T.F32)
        out = s.ask(T.and_(dom.member(x), T.is_nan(f(x))))
        nan_queries = 1
        if out.status == "unsat":
            nan_ok = False
        elif out.status == "sat":
            xm = s.model_x(out)
            y = s.replay(xm)
            if not np.isnan(y):
                raise FallbackDisagreement(f"{out.solver} says f({xm!s}) is NaN; the kernel gives {y!s}")
            nan_ok = True
            s.witnesses.append(Witness(xm, F32(y), "nan", "solver"))
        else:
            nan_ok = True
            stopped["nan"] = f"NaN not excluded: {out.reason or out.status}"

    sides = {}
    for side, sign in (("hi", 1), ("lo", -1)):
        sides[side] = _side(s, f, dom, side, sign, nan_ok, xs[fin], ys[fin], ibp_lo, ibp_hi, stopped)

    lo_r, hi_r = sides["lo"], sides["hi"]
    res = FallbackResult(
        node=node, label=label, lo=lo_r["bound"], hi=hi_r["bound"], nan=nan_ok,
        queries=nan_queries + lo_r["queries"] + hi_r["queries"], seconds=s.seconds,
        witnesses=s.witnesses, obligations=[], ibp_lo=ibp_lo, ibp_hi=ibp_hi, ibp_nan=ibp_nan,
        queries_lo=lo_r["queries"], queries_hi=hi_r["queries"], queries_nan=nan_queries,
        tight_lo=lo_r["tight"], tight_hi=hi_r["tight"], argmin=lo_r["arg"], argmax=hi_r["arg"],
        stopped=stopped, solver=getattr(solver, "name", type(solver).__name__), dom=dom)
    res.wall_seconds = time.perf_counter() - t_wall
    res.obligations = [_obligation(res, f, side, sides[side], model) for side in ("lo", "hi")]
    return res


def _side(s: _Search, f, dom: Dom, side: str, sign: int, nan_ok: bool, xs, ys, ibp_lo, ibp_hi,
          stopped: dict) -> dict:
    """Bisection for one bound in ``u = sign·key`` space (an upper bound on ``u``)."""
    zero = 0 if side == "hi" else 0x80000000  # the zero that is also a totalOrder bound

    def claim_at(u: int) -> Dom:
        b = unkey(sign * u, zero)
        return Dom(NEG_INF_BITS, b, nan_ok) if side == "hi" else Dom(b, POS_INF_BITS, nan_ok)

    # P: smallest proven u (IBP to start); A: largest attained u (samples, local search)
    P = sign * key(bits_of(ibp_hi if side == "hi" else ibp_lo))
    P_by_solver = False
    A, arg = None, None
    if ys.size:
        u = sign * keys_of(ys)
        i = int(np.argmax(u))
        A, arg = int(u[i]), (xs[i], ys[i])
        near = s.best_near(xs[i], sign)
        if near is not None and sign * key(bits_of(near[1])) > A:
            A, arg = sign * key(bits_of(near[1])), near
            s.witnesses.append(Witness(near[0], near[1], side, "search"))
    if A is None:  # nothing attained: the extreme is at least IBP's other end
        A = sign * key(bits_of(ibp_lo if side == "hi" else ibp_hi))
    A = min(A, P)
    queries, last_probe, last_formula = 0, None, None
    U = None  # a probe at U came back unknown: later queries stay above U (plain bisection)
    probes = s.probes
    reason, probe_unknown = "", ""
    while True:
        if A == P and P_by_solver:
            reason = "closed: bound attained"
            break
        if queries >= s.max_queries:
            reason = f"query budget ({s.max_queries}) spent"
            break
        bottom = A if U is None else max(A, U + 1)  # candidates are c in [bottom, P]
        gap = P - bottom
        if gap < 0 or (gap == 0 and P_by_solver):
            reason = f"no provable bound below {f32_of(unkey(sign * P, zero))!s} within the time limit"
            break
        need = gap.bit_length() + (0 if P_by_solver else 1)
        probe = gap == 0 or (probes and bottom == A and A != last_probe and arg is not None
                             and queries + 1 + need <= s.max_queries)
        c = bottom if probe else bottom + gap // 2
        if probe:
            last_probe = A
        claim = claim_at(c)
        formula = violation(f, dom, claim)
        out = s.ask(formula)
        queries += 1
        s.log(f"{side}: c={f32_of(unkey(sign * c, zero))!s} ({'probe' if probe else 'bisect'}) -> "
              f"{out.status} in {out.seconds:.2f}s")
        if out.status == "unsat":
            P, P_by_solver, last_formula = c, True, formula
            continue
        if out.status != "sat":
            reason = f"solver {out.status} at c = {f32_of(unkey(sign * c, zero))!s}: {out.reason}"
            if probe and c < P:  # the optimum may be hard to prove: bisect above it instead
                U, probes, probe_unknown = c, False, reason
                continue
            break
        xm = s.model_x(out)
        y = F32(s.replay(xm))
        if claim.contains(y):
            raise FallbackDisagreement(
                f"{out.solver}'s model x0 = {xm!s} ({bits_of(xm):#010x}) does not replay: the kernel gives "
                f"{y!s} ({bits_of(y):#010x}), inside the claim [{_show(claim.lo)}, {_show(claim.hi)}] "
                f"the solver says it violates")
        if np.isnan(y):
            raise FallbackDisagreement(f"the kernel gives NaN at x0 = {xm!s} although NaN was excluded")
        uy = sign * key(bits_of(y))
        if uy > P:
            raise FallbackDisagreement(f"the kernel gives {y!s} at x0 = {xm!s}, beyond the proven bound "
                                       f"{f32_of(unkey(sign * P, zero))!s}")
        s.witnesses.append(Witness(xm, y, side, "solver"))
        A, arg = uy, (xm, y)
        near = s.best_near(xm, sign)
        if near is not None and sign * key(bits_of(near[1])) > A:
            A, arg = sign * key(bits_of(near[1])), near
            s.witnesses.append(Witness(near[0], near[1], side, "search"))
    tight = A == P and P_by_solver and arg is not None
    if probe_unknown and reason != probe_unknown:
        reason += f" (after a probe: {probe_unknown})"
    stopped[side] = reason
    if tight:
        bound = F32(arg[1]) if arg[1] != 0 else f32_of(unkey(sign * P, zero))
    else:
        bound = f32_of(unkey(sign * P, zero))
    return {"bound": bound, "queries": queries, "tight": tight, "arg": arg[0] if tight else None,
            "claim": claim_at(P), "formula": last_formula if P_by_solver else None,
            "by_solver": P_by_solver}


def _show(b: int) -> str:
    return repr(float(f32_of(b)))


def _obligation(res: FallbackResult, f, side: str, r: dict, model: str) -> Obligation:
    dom = res.dom
    claim: Dom = r["claim"]
    formula = r["formula"] if r["formula"] is not None else violation(f, dom, claim)
    nan = " or NaN" if res.nan else ""
    rel = f"f(x) <= {_show(claim.hi)}" if side == "hi" else f"{_show(claim.lo)} <= f(x)"
    statement = (f"for all float32 x in [{_show(dom.lo)}, {_show(dom.hi)}]{' or NaN' if dom.nan else ''}: "
                 f"{rel}{nan}, f(x) = {res.label} (fallback {'upper' if side == 'hi' else 'lower'} bound)")
    g = getattr(f, "graph", None)
    prov = {"model": model, "node": res.node, "op": "fallback", "function": res.label,
            "side": "upper" if side == "hi" else "lower", "solver": res.solver,
            "queries": res.queries_hi if side == "hi" else res.queries_lo,
            "queries_total": res.queries, "solver_seconds": round(res.seconds, 4),
            "attained": res.tight_hi if side == "hi" else res.tight_lo,
            "proved_by": ("solver (the last unsat query)" if r["by_solver"]
                          else "IBP only (not solver-checked)"),
            "ibp": [float(res.ibp_lo), float(res.ibp_hi), res.ibp_nan]}
    if getattr(f, "element", None) is not None:
        prov["element"] = list(f.element)
    replay: dict[str, Any] = {"fallback": {"operand": dom.to_json(), "claim": claim.to_json()}}
    if g is not None:
        from nnlemma.ir.serialize import to_dict
        replay["fallback"].update(graph=to_dict(g), element=list(f.element))
    oid = f"{model}/{res.node}/fp-transfer/fallback-{'upper' if side == 'hi' else 'lower'}"
    return Obligation(oid, "fp-transfer", "fallback", "QF_FP", formula, statement, prov, replay)


def replay_fallback(data: dict, model: dict) -> tuple[bool, str]:
    """``(True, detail)`` if ``model`` (``x0``) is a genuine counterexample to a fallback
    obligation on the kernel; ``data`` is the obligation's ``replay`` record. (The generic
    :func:`obligations.replay.replay` dispatches here.)"""
    d = data.get("fallback", data)
    if "graph" not in d:
        return False, "no subgraph recorded for this fallback obligation"
    from nnlemma.ir.serialize import from_dict
    fn = scalar_terms(from_dict(d["graph"]), d["element"])
    dom, claim = Dom.from_json(d["operand"]), Dom.from_json(d["claim"])
    if "x0" not in model:
        return False, "the model has no value for x0"
    x = f32_of(int(model["x0"]))
    if not dom.contains(x):
        return False, f"x0 = {x!s} ({int(model['x0']):#010x}) is outside its domain"
    y = fn.replay(x)
    if claim.contains(y):
        return False, f"kernel gives {y!s} for x0 = {x!s}, inside the claimed domain"
    return True, f"kernel gives {y!s} ({bits_of(y):#010x}) for x0 = {x!s}"


def fallback_bounds(graph: Graph, lo, hi, solver, timeout_s: float = 10.0, max_queries: int = 40, *,
                    node: str | None = None, element: Sequence[int] | None = None, nan: bool = False,
                    model: str = "model", **kw) -> FallbackResult:
    """:func:`scalar_terms` + :func:`tightest_bounds` for ``x ∈ [lo, hi]`` (float32 ends)."""
    fn = scalar_terms(graph, element)
    dom = Dom.interval(F32(lo), F32(hi), nan)
    if node is None:
        eqs = _live(graph)
        node = (eqs[-1].name if eqs and eqs[-1].name else f"%{graph.outputs[0]}")
    return tightest_bounds(fn, dom, solver, timeout_s, max_queries, node=node, model=model, **kw)


__all__ = ["FallbackDisagreement", "FallbackResult", "ScalarFunction", "UnsupportedScalarFunction",
           "Witness", "fallback_bounds", "key", "replay_fallback", "scalar_terms", "summary",
           "tightest_bounds", "unkey", "violation"]
