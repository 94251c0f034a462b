"""Helpers for the planted-counterexample soundness suite (a test helper, not a test module).

Everything here is an *independent* oracle for :func:`nnlemma.verify.api.verify`:

* :class:`Net` — a small MLP (``linear`` / ``relu`` / ``leaky`` layers, or a custom traced
  function) built with the PyTorch-style API and compiled to the IR, with three evaluators:
  the float32 kernel (``nl.run``, the ground truth of the property), a scalar numpy float32
  emulation of SEMANTICS.md's fold order (used only to cross-check planted constructions), and
  exact rational arithmetic (``Fraction``) for the *real* function, plus exact rational interval
  arithmetic (``real_box``) that bounds the real function over a rational box.
* VNN-LIB text builders that write every constant as an exact decimal (every dyadic rational has
  one), so the parsed property holds exactly the planted numbers.
* :func:`check_result` — the soundness check of one verifier answer: a ``sat`` counterexample
  must be a finite float32 vector inside some case's rational box and must make that case's
  unsafe set hold *exactly* on the kernel's output, replayed at batch size 1.
* :func:`f32_values` / :func:`enumerate_box` — every float32 value of an interval (both zeros
  when 0 is inside), for exhaustive checks of tiny boxes.
* :data:`TALLY` — what the verifier answered, per category (printed by the test module).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Sequence

import numpy as np

import nnlemma as nl
from nnlemma import nn
from nnlemma.ir.graph import Graph
from nnlemma.verify.api import VerifyResult, verify
from nnlemma.verify import Options
from nnlemma.vnnlib import Property, parse

F32 = np.float32
F32_MAX = F32(np.finfo(F32).max)
TINY = F32(2.0 ** -149)  # smallest positive subnormal

TALLY: dict[str, Counter] = defaultdict(Counter)


# -- numbers -------------------------------------------------------------------------------------

def f32(x) -> np.float32:
    """The float32 value of x, which must be exact (no silent rounding in the planted numbers)."""
    if isinstance(x, Fraction):
        v = F32(float(x))
        assert Fraction(float(v)) == x, f"{x} is not a float32 value"
        return v
    v = F32(x)
    if isinstance(x, (float, int)) and np.isfinite(x):
        assert float(v) == x, f"{x!r} is not a float32 value"
    return v


def fr(x) -> Fraction:
    """Exact rational of a float32/float/int/Fraction."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, (int, np.integer)):
        return Fraction(int(x))
    v = float(x)
    assert np.isfinite(v), f"{x!r} is not finite"
    return Fraction(v)


def up(x, n: int = 1) -> np.float32:
    x = F32(x)
    for _ in range(n):
        x = np.nextafter(x, F32(np.inf))
    return x


def down(x, n: int = 1) -> np.float32:
    x = F32(x)
    for _ in range(n):
        x = np.nextafter(x, F32(-np.inf))
    return x


def dec(q) -> str:
    """Exact decimal text of a dyadic (or 2^a 5^b denominator) rational, for VNN-LIB."""
    q = fr(q)
    d, a, b = q.denominator, 0, 0
    while d % 2 == 0:
        d //= 2
        a += 1
    while d % 5 == 0:
        d //= 5
        b += 1
    assert d == 1, f"{q} has no finite decimal expansion"
    k = max(a, b)
    n = abs(q.numerator * 10 ** k // q.denominator)
    assert Fraction(n, 10 ** k) == abs(q)
    s = str(n).rjust(k + 1, "0")
    out = s if k == 0 else s[:-k] + "." + s[-k:]
    return ("-" if q < 0 else "") + out


def ordinal(x) -> int:
    """Strictly increasing integer code of a float32 (−0 just below +0)."""
    b = int(np.array(x, F32).view(np.uint32))
    return -(b & 0x7FFFFFFF) - 1 if b & 0x80000000 else b


def from_ordinal(o: int) -> np.float32:
    b = ((-(o + 1)) | 0x80000000) if o < 0 else o
    return np.array(b, np.uint32).view(F32)[()]


def f32_values(lo, hi) -> np.ndarray:
    """Every float32 v with lo <= v <= hi (IEEE), both zeros included when 0 is inside."""
    lo, hi = F32(lo), F32(hi)
    a = ordinal(F32(-0.0)) if lo == 0 else ordinal(lo)
    b = ordinal(F32(0.0)) if hi == 0 else ordinal(hi)
    codes = np.arange(a, b + 1, dtype=np.int64)
    bits = np.where(codes < 0, (-(codes + 1)) | 0x80000000, codes).astype(np.uint32)
    return bits.view(F32)


def enumerate_box(lo: Sequence, hi: Sequence) -> np.ndarray:
    axes = [f32_values(a, b) for a, b in zip(lo, hi)]
    grids = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1).astype(F32)


# -- networks ------------------------------------------------------------------------------------

@dataclass
class Net:
    """An MLP given by its layers: ("linear", W[out, in], b[out] or None), ("relu",),
    ("leaky", alpha). ``fn`` (optional) replaces the Sequential by a traced function of the input
    tensor (used for div/clamp edge cases); then only the kernel evaluator is available."""

    n_in: int
    layers: list = field(default_factory=list)
    fn: Callable | None = None
    _graph: Graph | None = None
    _batched: dict = field(default_factory=dict)

    def __post_init__(self):
        fixed = []
        for layer in self.layers:
            if layer[0] == "linear":
                W = np.asarray(layer[1], np.float64)
                W32 = W.astype(F32)
                assert np.array_equal(W32.astype(np.float64), W), "weights must be float32 values"
                b = None if layer[2] is None else np.asarray(layer[2], np.float64)
                b32 = None if b is None else b.astype(F32)
                if b is not None:
                    assert np.array_equal(b32.astype(np.float64), b), "biases must be float32 values"
                fixed.append(("linear", W32, b32))
            elif layer[0] == "leaky":
                fixed.append(("leaky", F32(layer[1])))  # rounded, like the IR attribute
            else:
                assert layer[0] == "relu"
                fixed.append(("relu",))
        self.layers = fixed

    @property
    def n_out(self) -> int:
        if self.fn is not None:
            return int(np.prod(self.graph.output_values[0].shape))
        return [layer[1].shape[0] for layer in self.layers if layer[0] == "linear"][-1]

    def model(self) -> nn.Module:
        mods, sd = [], {}
        for i, layer in enumerate(self.layers):
            if layer[0] == "linear":
                W, b = layer[1], layer[2]
                mods.append(nn.Linear(W.shape[1], W.shape[0], bias=b is not None))
                sd[f"{i}.weight"] = W
                if b is not None:
                    sd[f"{i}.bias"] = b
            elif layer[0] == "relu":
                mods.append(nn.ReLU())
            else:
                mods.append(nn.LeakyReLU(float(layer[1])))
        m = nn.Sequential(*mods)
        m.load_state_dict(sd)
        return m

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            example = np.zeros((1, self.n_in), F32)
            fn = self.fn if self.fn is not None else self.model()
            self._graph = nl.compile(fn, example).graph
        return self._graph

    def kernel(self, x) -> np.ndarray:
        """The float32 kernel at one point, batch size 1: flat float32 outputs."""
        x = np.asarray(x, F32).reshape(1, self.n_in)
        with np.errstate(all="ignore"):
            return np.asarray(nl.run(self.graph, x)[0], F32).reshape(-1)

    def kernel_many(self, X) -> np.ndarray:
        """The kernel on many points at once (a graph compiled for that batch size; the kernel
        treats batch rows independently, which test_kernel_batch_rows_match checks)."""
        X = np.asarray(X, F32).reshape(-1, self.n_in)
        g = self._batched.get(len(X))
        if g is None:
            fn = self.fn if self.fn is not None else self.model()
            g = self._batched[len(X)] = nl.compile(fn, np.zeros((len(X), self.n_in), F32)).graph
        with np.errstate(all="ignore"):
            return np.asarray(nl.run(g, X)[0], F32).reshape(len(X), -1)

    def emulate(self, x) -> np.ndarray:
        """SEMANTICS.md by hand with numpy float32 scalars: acc = +0; acc = fl(acc + fl(x·w));
        bias last; relu(x) = x if x > 0 else +0; leaky = x if x > 0 else fl(alpha·x)."""
        assert self.fn is None
        v = [F32(t) for t in np.asarray(x, F32).reshape(-1)]
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            for layer in self.layers:
                if layer[0] == "linear":
                    W, b = layer[1], layer[2]
                    out = []
                    for j in range(W.shape[0]):
                        acc = F32(0.0)
                        for k in range(W.shape[1]):
                            acc = F32(acc + F32(v[k] * W[j, k]))
                        if b is not None:
                            acc = F32(acc + b[j])
                        out.append(acc)
                    v = out
                elif layer[0] == "relu":
                    v = [t if t > 0 else (t if np.isnan(t) else F32(0.0)) for t in v]
                else:
                    v = [t if (t > 0 or np.isnan(t)) else F32(layer[1] * t) for t in v]
        return np.array(v, F32)

    def real(self, x: Sequence) -> list[Fraction]:
        """The exact real function (weights as the rationals of their float32 values)."""
        assert self.fn is None
        v = [fr(t) for t in x]
        for layer in self.layers:
            if layer[0] == "linear":
                W, b = layer[1], layer[2]
                v = [sum((fr(W[j, k]) * v[k] for k in range(W.shape[1])), Fraction(0))
                     + (fr(b[j]) if b is not None else 0) for j in range(W.shape[0])]
            elif layer[0] == "relu":
                v = [max(t, Fraction(0)) for t in v]
            else:
                a = fr(layer[1])
                v = [t if t > 0 else a * t for t in v]
        return v

    def real_box(self, lo: Sequence, hi: Sequence) -> tuple[list[Fraction], list[Fraction]]:
        """Exact rational interval arithmetic: bounds of the *real* function over the rational
        box (sound, exact at the endpoints for one linear layer)."""
        assert self.fn is None
        L, H = [fr(t) for t in lo], [fr(t) for t in hi]
        for layer in self.layers:
            if layer[0] == "linear":
                W, b = layer[1], layer[2]
                nL, nH = [], []
                for j in range(W.shape[0]):
                    l = h = fr(b[j]) if b is not None else Fraction(0)
                    for k in range(W.shape[1]):
                        w = fr(W[j, k])
                        l += w * (L[k] if w >= 0 else H[k])
                        h += w * (H[k] if w >= 0 else L[k])
                    nL.append(l)
                    nH.append(h)
                L, H = nL, nH
            elif layer[0] == "relu":
                L, H = [max(t, Fraction(0)) for t in L], [max(t, Fraction(0)) for t in H]
            else:
                a = fr(layer[1])
                L = [t if t > 0 else a * t for t in L]
                H = [t if t > 0 else a * t for t in H]
        return L, H


def tent_layers(p: Sequence, k, c, *, leaky=None) -> list:
    """Layers of ``c − k·Σ_i |x_i − p_i|`` with |t| = relu(t) + relu(−t) (or with a LeakyReLU of
    slope a: leaky(t) + leaky(−t) = (1 − a)|t|). Its maximum over any box containing p is c,
    attained (in real arithmetic) only at p."""
    n = len(p)
    W1 = np.zeros((2 * n, n))
    b1 = np.zeros(2 * n)
    for i, pi in enumerate(p):
        W1[2 * i, i], b1[2 * i] = 1.0, -float(f32(pi))
        W1[2 * i + 1, i], b1[2 * i + 1] = -1.0, float(f32(pi))
    act = ("relu",) if leaky is None else ("leaky", leaky)
    return [("linear", W1, b1), act, ("linear", np.full((1, 2 * n), -float(f32(k))), np.array([float(f32(c))]))]


# -- properties ----------------------------------------------------------------------------------

def ge(j: int, t) -> str:
    return f"(>= Y_{j} {_num(t)})"


def le(j: int, t) -> str:
    return f"(<= Y_{j} {_num(t)})"


def gt(j: int, t) -> str:
    return f"(> Y_{j} {_num(t)})"


def lt(j: int, t) -> str:
    return f"(< Y_{j} {_num(t)})"


def lin(coeffs: dict[int, object], op: str, t) -> str:
    """``(op (+ (* c_j Y_j) ...) t)``."""
    terms = " ".join(f"(* {_num(c)} Y_{j})" for j, c in coeffs.items())
    return f"({op} (+ {terms}) {_num(t)})"


def _num(t) -> str:
    if isinstance(t, str):
        return t
    q = fr(t)
    return dec(q) if q >= 0 else f"(- {dec(-q)})"


def box_text(dims: Sequence) -> str:
    """dims: per input (lo, hi) or (lo, hi, lo_op, hi_op) with ops ">="/">" and "<="/"<";
    bounds may be numbers or literal decimal strings (e.g. "0.1")."""
    parts = []
    for i, d in enumerate(dims):
        lo, hi = d[0], d[1]
        lo_op, hi_op = (d[2], d[3]) if len(d) == 4 else (">=", "<=")
        parts.append(f"({lo_op} X_{i} {_num(lo)}) ({hi_op} X_{i} {_num(hi)})")
    return "(and " + " ".join(parts) + ")"


def unsafe_text(dnf: Sequence[Sequence[str]]) -> str:
    return "(or " + " ".join("(and " + " ".join(conj) + ")" for conj in dnf) + ")"


def make_prop(n_in: int, n_out: int, cases: Sequence[tuple[Sequence, Sequence[Sequence[str]]]]) -> Property:
    """A property from (box dims, unsafe DNF) cases: (or (and box_1 unsafe_1) ...)."""
    head = "".join(f"(declare-const X_{i} Real)\n" for i in range(n_in))
    head += "".join(f"(declare-const Y_{j} Real)\n" for j in range(n_out))
    body = "(assert (or " + " ".join(f"(and {box_text(b)} {unsafe_text(u)})" for b, u in cases) + "))\n"
    return parse(head + body)


def simple_prop(n_in: int, n_out: int, dims: Sequence, dnf: Sequence[Sequence[str]]) -> Property:
    return make_prop(n_in, n_out, [(dims, dnf)])


# -- the soundness check -------------------------------------------------------------------------

def in_region(box, x: np.ndarray) -> bool:
    """x (float32, finite) lies in the rational box, strict bounds respected — exactly."""
    for xi, lo, hi, ls, hs in zip(x, box.lo, box.hi, box.lo_strict, box.hi_strict):
        q = Fraction(float(xi))
        if (q <= lo) if ls else (q < lo):
            return False
        if (q >= hi) if hs else (q > hi):
            return False
    return True


def violated_at(net: Net, prop: Property, x) -> bool:
    """Some case's box holds x and its unsafe set holds exactly at the kernel's output."""
    x = np.asarray(x, F32).reshape(-1)
    y = net.kernel(x)
    return any(in_region(c.box, x) and c.unsafe_at(y) is True for c in prop.cases)


def check_result(net: Net, prop: Property, res: VerifyResult, *, category: str,
                 witness=None, holds: bool | None = None) -> str:
    """Assert the soundness of one answer and record it.

    * ``sat``: x is a finite float32 vector of the right size inside some case's rational box;
      the kernel at x (batch 1) equals the reported y bit for bit and makes that case's unsafe
      set hold exactly.
    * ``witness`` (a planted counterexample, checked here first) or ``holds=False``: the
      property is violated, so ``unsat`` is a soundness bug.
    * ``holds=True`` (checked exhaustively or by monotonicity by the caller): ``sat`` is
      impossible, so any ``sat`` fails the replay.
    """
    assert res.status in ("sat", "unsat", "unknown", "timeout"), res.status
    if witness is not None:
        assert violated_at(net, prop, witness), "test bug: the planted witness does not violate"
        holds = False
    TALLY[category][res.status] += 1
    if res.status == "sat":
        x = np.asarray(res.x)
        assert x.dtype == F32 and x.shape == (prop.n_inputs,), (x.dtype, x.shape)
        assert np.all(np.isfinite(x)), x
        y = net.kernel(x)
        assert res.y is not None and np.array_equal(np.asarray(res.y, F32).view(np.uint32), y.view(np.uint32)), \
            f"reported y {res.y} differs from the kernel's {y} at x={x.tolist()}"
        hits = [c for c in prop.cases if in_region(c.box, x)]
        assert hits, f"sat x={x.tolist()} lies in no case's input box"
        assert any(c.unsafe_at(y) is True for c in hits), \
            f"sat x={x.tolist()} y={y.tolist()} does not violate the property exactly"
        assert holds is not True, "sat on a property that holds (yet the counterexample replayed?!)"
    if holds is False:
        assert res.status != "unsat", f"UNSOUND: unsat, but the property is violated (witness {witness})"
    return res.status


def run_verify(net: Net, prop: Property, *, timeout: float = 3.0, seed: int = 0, falsify: bool = True) -> VerifyResult:
    """``falsify=False`` turns off random sampling (only the box centre is tried) and PGD, so the
    branch and bound itself must keep the planted point's box open."""
    options = None if falsify else Options(samples=0, pgd=False)
    return verify(net.graph, prop, timeout=timeout, seed=seed, options=options)


def verify_and_check(net: Net, prop: Property, *, category: str, timeout: float = 3.0, seed: int = 0,
                     witness=None, holds: bool | None = None, falsify: bool | None = None,
                     nofalsify_timeout: float = 1.5) -> VerifyResult:
    """Verify and check (:func:`check_result`). ``falsify=None`` (default): with a planted witness,
    run twice — as the user would, then without sampling/PGD (category suffix ``_nofalsify``, at
    most ``nofalsify_timeout`` s), so that the branch and bound itself faces the planted point;
    returns the first answer."""
    runs = [falsify] if falsify is not None else ([True, False] if witness is not None else [True])
    first = None
    for f in runs:
        t = timeout if f or falsify is not None else min(timeout, nofalsify_timeout)
        res = run_verify(net, prop, timeout=t, seed=seed, falsify=f)
        check_result(net, prop, res, category=category + ("" if f else "_nofalsify"), witness=witness, holds=holds)
        first = first or res
    return first


def exhaustive_max(net: Net, lo: Sequence, hi: Sequence, row: dict[int, object] | None = None):
    """Exact max over every float32 point of a (tiny) box of Σ row_j·Y_j on the kernel, and an
    argmax; outputs that are not finite are skipped."""
    X = enumerate_box(lo, hi)
    Y = net.kernel_many(X)
    row = row or {0: 1}
    best, arg = None, None
    for x, y in zip(X, Y):
        if not all(np.isfinite(y[j]) for j in row):
            continue
        v = sum((fr(c) * Fraction(float(y[j])) for j, c in row.items()), Fraction(0))
        if best is None or v > best:
            best, arg = v, x
    return best, arg, len(X)


def report_tally() -> str:
    lines = []
    for cat in sorted(TALLY):
        c = TALLY[cat]
        lines.append(f"{cat:38s} " + " ".join(f"{k}={c[k]}" for k in ("sat", "unsat", "unknown", "timeout")))
    text = "\n".join(lines)
    path = os.environ.get("NNLEMMA_PLANTED_TALLY")
    if path:
        with open(path, "a") as f:
            f.write(text + "\n")
    return text



# -- random networks -----------------------------------------------------------------------------

def random_mlp(rng: np.random.Generator, n_in: int, hidden: Sequence[int], n_out: int, act=("relu",), *,
               bias: bool = True, scale: float = 1.0) -> Net:
    """Gaussian weights and biases; ``scale`` multiplies the first layer's weights only (to bring
    tiny or huge inputs to unit range)."""
    layers, d = [], n_in
    for li, h in enumerate(list(hidden) + [n_out]):
        W = (rng.normal(size=(h, d)) * (scale if li == 0 else 1.0)).astype(F32)
        layers.append(("linear", W, rng.normal(size=h).astype(F32) if bias else None))
        if li < len(hidden):
            layers.append(act)
        d = h
    return Net(n_in, layers)


def monotone_mlp(rng: np.random.Generator, n_in: int, hidden: Sequence[int], act=("relu",), *,
                 signs: Sequence[int] | None = None, bias: bool = True) -> tuple[Net, np.ndarray]:
    """A one-output MLP monotone in every input, in real arithmetic *and* on the float32 kernel:
    the first layer's column i has the sign ``signs[i]``, later layers are non-negative, and
    relu/leaky are non-decreasing (every RNE operation is monotone, and so is the fold in each
    term). Returns the net and the signs: the maximum over a box is at the corner taking hi where
    the sign is +1 and lo where it is −1."""
    signs = np.array(signs if signs is not None else rng.choice([-1, 1], size=n_in))
    layers, d = [], n_in
    sizes = list(hidden) + [1]
    for li, h in enumerate(sizes):
        W = np.abs(rng.normal(size=(h, d))).astype(F32)
        if li == 0:
            W = (W * signs[None, :]).astype(F32)
        b = rng.normal(size=h).astype(F32) if bias else None
        layers.append(("linear", W, b))
        if li < len(sizes) - 1:
            layers.append(act)
        d = h
    return Net(n_in, layers), signs


def max_corner(lo: Sequence, hi: Sequence, signs: Sequence[int]) -> np.ndarray:
    return np.array([h if s > 0 else l for l, h, s in zip(lo, hi, signs)], F32)


def climb(net: Net, lo: np.ndarray, hi: np.ndarray, row: np.ndarray, rng: np.random.Generator,
          samples: int = 512) -> np.ndarray:
    """A float32 point of the box where row·y is (locally) maximal: random samples, then greedy
    steps of 2^k ulps per coordinate, k decreasing to 0."""
    lo, hi = np.asarray(lo, F32), np.asarray(hi, F32)
    X = (lo + rng.random((samples, lo.size)) * (hi.astype(np.float64) - lo)).astype(F32)
    X = np.clip(X, lo, hi)

    def score(Z):
        v = net.kernel_many(Z).astype(np.float64) @ row
        return np.where(np.isfinite(v), v, -np.inf)

    s = score(X)
    x, best = X[int(np.argmax(s))].copy(), s.max()
    for k in range(24, -1, -1):
        while True:
            cands = []
            for i in range(lo.size):
                for sign in (1, -1):
                    v = from_ordinal(ordinal(x[i]) + sign * (1 << k))
                    if lo[i] <= v <= hi[i]:
                        z = x.copy()
                        z[i] = v
                        cands.append(z)
            if not cands:
                break
            C = np.array(cands, F32)
            sc = score(C)
            if not sc.max() > best:
                break
            best, x = sc.max(), C[int(np.argmax(sc))]
    return x
