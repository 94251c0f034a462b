"""A sound bound on how far a deployment runtime's float32 output can be from the spec's, at the
same input, for every input of a box.

For every value ``v`` of the graph the bound carries ``d_v >= |v_runtime(x) − v_spec(x)|``
elementwise, for all float32 ``x`` in the box, next to ``m_v = max(|lo|, |hi|)`` of the spec's
float32 CROWN enclosure (IBP where CROWN has no answer) (so ``|v_spec| <= m_v`` and ``|v_runtime| <= m_v + d_v``).

**What the runtime is assumed to do** (the error model; the README states it):

* every dot product, matrix product, convolution and reduction of ``n`` terms is some float32
  evaluation of the exact sum: any order, any blocking, fused multiply-adds or wider accumulators
  allowed, each float32 operation correctly rounded (as IEEE + − × are in every runtime audited,
  :func:`nnlemma.audit.runtime.audit_op`). Then ``|fl(Σ t_i) − Σ t_i| <= γ_n·Σ|t_i|`` with
  ``γ_n = n·u/(1 − n·u)``, ``u = 2^−24`` (Higham, *Accuracy and Stability of Numerical
  Algorithms*, §3.1 — the bound holds for every order, and an FMA rounds less, never more);
* subnormals may be flushed to zero, on inputs and results (FTZ/DAZ): each flush moves a value by
  less than ``2^−126``, so every arithmetic operand's deviation is taken as ``d + 2^−126`` (scaled
  by the other operand where it multiplies: ``|W|·(d + 2^−126)``, ``2^−126·|x|`` for a flushed
  weight) and every result gets ``2^−126`` per side (gradual underflow errs less); a divisor that
  may reach the subnormal range is refused;
* no operation overflows: a node whose worst-case magnitude (``Σ|terms|·(1 + 2^−20)``, which bounds
  every partial sum of any order) reaches FLT_MAX makes the bound unknown;
* ``linear`` and ``conv2d`` weights and biases are parameters (constant points); products of two
  variables must be ``matmul``;
* elementwise unary ops are within ``K`` ulps of the correctly rounded spec kernel, ``K`` given
  per op (measured exhaustively by ``benchmarks/audit_runtime.py`` or stated by the user); an op
  with no stated ``K`` makes the bound unknown;
* relu / max / min / clamp / abs / neg / reshape / slice / concat / transpose / max-pool select or
  move values exactly.

**Rules** (the spec side is also one of the runtimes the model covers, so both rounding errors
are added). With ``mr = m + d`` and ``A = |W|``:

* affine ``y = Wx + b`` (fan-in ``n``): ``d_y = A·d_x + γ_{n+1}·(A·mr_x + A·m_x + 2|b|) + F``,
  ``F`` the flush terms; conv2d is the same with ``A`` the absolute kernel; matmul of two
  variables ``m_a·d_b + d_a·mr_b`` in place of ``A·d_x``;
* ``a ± b``: ``d_a + d_b + u·(mr_a + mr_b + m_a + m_b)``; ``a / b`` with ``|b| >= β > d_b`` on the
  enclosure: ``(d_a·m_b + m_a·d_b)/(β·(β − d_b)) + u·(mr_a/(β − d_b) + m_a/β)``; ``a·b``: ``mr_a·d_b + d_a·m_b +
  u·(mr_a·mr_b + m_a·m_b)``; ``x²`` the same with ``a = b``;
* a 1-Lipschitz exact selection (relu, max, ...): ``d`` passes through (relu: 0 where the input's
  spec enclosure plus ``d`` stays <= 0, so both runs give 0) (the max over a pooling
  window for max-pool), since ``|max a_i − max b_i| <= max |a_i − b_i|``;
* smooth ``f`` (exp, tanh, sigmoid, sin, cos): ``L·d + (K + 1)·(2^−22·Fmax + 2^−149)``, ``L`` the
  largest ``|f'|`` on ``[lo − d, hi + d]``, ``Fmax`` the largest ``|f|`` there (one ulp of a value
  ``<= Fmax`` is at most ``2^−23·Fmax``, doubled for steps into the next binade — ``K <= 2^20``
  steps cannot go further — or ``2^−149`` below the normal range); sqrt: ``√d`` in place of ``L·d`` (``|√a − √b| <= √|a − b|``).

All bound arithmetic is float64 with nonnegative terms, each result inflated by its own relative
rounding error (``(k + 2)·2^−52`` for ``k`` float64 operations) and rounded up. An infinite or NaN
enclosure, a divisor that may reach 0, an op without a rule (batch_norm, avg_pool2d, step) or a smooth op outside its
measured input range gives status ``unknown`` with the node named — never a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..bounds import crown, ibp
from ..bounds.conv import conv_abs
from ..float64 import F64_RULES
from ..ir.graph import Graph

U = 2.0 ** -24
TINY = 2.0 ** -126
SMOOTH = ("exp", "tanh", "sigmoid", "sin", "cos", "sqrt")
SELECT = ("identity", "neg", "abs", "relu", "clamp", "maximum", "minimum")
MAX_ULPS = 1 << 20  # K steps from a value <= Fmax stay below 2·Fmax, where a step is <= 2^-22·Fmax
MOVE = ("reshape", "transpose", "slice", "concat", "max_pool2d")


class Unknown(Exception):
    """The bound cannot be given at this node (the message says why)."""


@dataclass
class DeviationBound:
    status: str                                   # "ok" or "unknown"
    reason: str = ""
    outputs: list[np.ndarray] = field(default_factory=list)  # d per graph output (float64, >= 0)

    def to_json(self) -> dict:
        out = {"status": self.status, "reason": self.reason}
        if self.status == "ok":
            out["max_deviation"] = [float(d.max()) if d.size else 0.0 for d in self.outputs]
            out["per_output"] = [d.reshape(-1).tolist() for d in self.outputs]
        return out


def gamma(n: int) -> float:
    return n * U / (1 - n * U) * (1 + 2.0 ** -40)


def up(v, k: int = 1) -> np.ndarray:
    """``v`` (nonnegative, computed in float64 with ``k`` roundings) made an upper bound."""
    v = np.asarray(v, np.float64) * (1 + (k + 2) * 2.0 ** -52)
    return np.nextafter(v, np.inf)


def _rowsum_abs_w(w: np.ndarray) -> np.ndarray:
    return np.abs(w.astype(np.float64)).sum(axis=1)


def _smooth(op: str, lo: np.ndarray, hi: np.ndarray, d: np.ndarray, k: int, where: str) -> np.ndarray:
    d = d + TINY  # the runtime may flush a subnormal input (DAZ)
    a, b = lo - d, hi + d
    if op == "sqrt":
        if np.any(a < 0):
            raise Unknown(f"{where}: sqrt input may be negative in the runtime (its enclosure widened by the "
                          f"deviation reaches {float(a.min())!r})")
        return up(np.sqrt(d) * (1 + 2.0 ** -40) + (k + 1) * (2.0 ** -22 * np.sqrt(b) * (1 + 2.0 ** -20) + 2.0 ** -149)
                  + TINY, 4)
    zmin = np.where((a <= 0) & (b >= 0), 0.0, np.minimum(np.abs(a), np.abs(b)))
    if op == "tanh":
        lip, fmax = 1 - np.tanh(zmin) ** 2 + 2.0 ** -40, 1.0
    elif op == "sigmoid":
        s = 1 / (1 + np.exp(zmin))
        lip, fmax = s * (1 - s) + 2.0 ** -40, 1.0
    elif op == "exp":
        with np.errstate(over="ignore"):
            lip = fmax = np.exp(b) * (1 + 2.0 ** -40)
    else:  # sin, cos
        lip, fmax = 1.0, 1.0
    lip = np.minimum(lip, 1.0) if op in ("tanh", "sigmoid") else lip
    _no_overflow(fmax, where)
    # + TINY: the runtime may flush a subnormal result (FTZ)
    return up(lip * d + (k + 1) * (2.0 ** -22 * fmax * (1 + 2.0 ** -20) + 2.0 ** -149) + TINY, 6)


FLT_MAX = float(np.finfo(np.float32).max)


def _no_overflow(magnitude, where: str) -> None:
    """The rules assume no operation overflows: any order's partial sums and results stay below
    ``Σ|terms|·(1 + γ)``, which must stay under FLT_MAX (else a reordered runtime may give inf)."""
    if not np.all(np.asarray(magnitude) * (1 + 2.0 ** -20) < FLT_MAX):
        raise Unknown(f"{where}: a runtime evaluating in another order may overflow here")


def _gamma_checked(n: int, where: str) -> float:
    if n * U >= 0.25:
        raise Unknown(f"{where}: {n} terms: the rounding bound needs n·2^-24 < 1/4")
    return gamma(n)


def deviation_bound(graph: Graph, lo, hi, ulps: dict[str, dict]) -> DeviationBound:
    """The bound for every float32 input in ``[lo, hi]``; ``ulps[op] = {"max_ulps": K, "limit": L}``
    states the runtime's error for each smooth op (within ``|x| <= L``; no ``limit``: everywhere)."""
    enc = crown(graph, lo, hi, "float32")  # per-node enclosures; tighter than IBP where it matters
    if enc.status != "ok":
        enc = ibp(graph, lo, hi, "float32")
    if enc.status != "ok":
        return DeviationBound("unknown", enc.reason)
    env = enc.bounds if hasattr(enc, "bounds") else enc.env
    m: dict[int, np.ndarray] = {}
    d: dict[int, np.ndarray] = {}
    for vid, iv in env.items():
        if np.any(iv.nan) or not (np.all(np.isfinite(iv.lo)) and np.all(np.isfinite(iv.hi))):
            continue  # only an error if a rule needs it (checked per use)
        m[vid] = np.maximum(np.abs(iv.lo.astype(np.float64)), np.abs(iv.hi.astype(np.float64)))
    for v in graph.inputs:
        d[v.id] = np.zeros(v.shape)
    for p in graph.params:
        d[p.value.id] = np.zeros(p.value.shape)
    consts = {p.value.id for p in graph.params}
    try:
        for e in graph.equations:
            where = e.describe()
            for i in e.inputs + (e.out.id,):
                if i not in m:
                    raise Unknown(f"{where}: the spec enclosure is not finite (overflow or NaN possible)")
            d[e.out.id] = _rule(e, env, m, d, ulps, where, consts)
            if not np.all(np.isfinite(d[e.out.id])):
                raise Unknown(f"{where}: the deviation bound overflows")
    except Unknown as exc:
        return DeviationBound("unknown", str(exc))
    return DeviationBound("ok", "", [d[o] for o in graph.outputs])


def _rule(e, env, m, d, ulps, where, consts) -> np.ndarray:
    op, attrs, ins = e.op, e.attr_dict, e.inputs
    ds, ms = [d[i] for i in ins], [m[i] for i in ins]
    flush = 2 * TINY
    if op == "relu":  # an input below 0 in both runs (hi + d <= 0) gives 0 in both
        dd = ds[0] + TINY
        return np.where(env[ins[0]].hi.astype(np.float64) + dd <= 0, 0.0, dd + TINY)
    if op in SELECT:  # exact selections; a flushed input or result moves the value by < TINY each
        out = ds[0] if len(ds) == 1 else np.maximum(ds[0], ds[1])
        return np.broadcast_to(out + 2 * TINY, e.out.shape).copy()
    if op == "max_pool2d":
        return np.asarray(F64_RULES[op](ds[0], **attrs), np.float64) + 2 * TINY
    if op in MOVE:  # copies: no arithmetic, no flush
        return np.asarray(F64_RULES[op](*ds, **attrs), np.float64)
    # arithmetic: the runtime may flush subnormal operands (DAZ, < TINY each) and results (FTZ)
    ds = [v + TINY for v in ds]
    if op == "leaky_relu":
        a = abs(float(np.float32(attrs["alpha"])))
        return up(max(1.0, a) * ds[0] + U * a * (2 * ms[0] + ds[0]) + flush, 4)
    if op in ("add", "sub"):
        _no_overflow(ms[0] + ds[0] + ms[1] + ds[1], where)
        return np.broadcast_to(up(ds[0] + ds[1] + U * (ms[0] + ds[0] + ms[1] + ds[1] + ms[0] + ms[1]) + flush, 8),
                               e.out.shape).copy()
    if op in ("mul", "square"):
        (da, db), (ma, mb) = (ds * 2, ms * 2) if op == "square" else (ds, ms)
        _no_overflow((ma + da) * (mb + db), where)
        return np.broadcast_to(up((ma + da) * db + da * mb + U * ((ma + da) * (mb + db) + ma * mb) + flush, 10),
                               e.out.shape).copy()
    if op == "div":
        iv = env[ins[1]]
        blo, bhi = iv.lo.astype(np.float64), iv.hi.astype(np.float64)
        bmin = np.where(blo > 0, blo, np.where(bhi < 0, -bhi, 0.0))
        low = bmin - ds[1]
        if np.any(low <= 2 * TINY):
            raise Unknown(f"{where}: the divisor's enclosure widened by its deviation reaches the subnormal range or 0")
        (ma, mb), (da, db) = ms, ds
        low = low * (1 - 2.0 ** -50)
        _no_overflow((ma + da) / low, where)
        dev = (da * mb + ma * db) / (bmin * low) + U * ((ma + da) / low + ma / bmin) + flush
        return np.broadcast_to(up(dev, 12), e.out.shape).copy()
    if op in ("linear", "conv2d") and not set(ins[1:]) <= consts:
        raise Unknown(f"{where}: the weights are not constant parameters (use matmul for products of variables)")
    if op == "linear":
        w = np.abs(env[ins[1]].hi.astype(np.float64))  # parameters are points: lo = hi
        b = np.abs(env[ins[2]].hi.astype(np.float64)) if len(ins) > 2 else 0.0
        n = w.shape[1]
        mr = ms[0] + ds[0]
        _no_overflow(mr @ w.T + b, where)
        # operand flushes: TINY per weight (times |x|) and per input (times |w|, in ds); n products,
        # n additions (bias included) per side
        flushes = TINY * (mr.sum(axis=-1, keepdims=True) + 2 * n + 2)
        return up(ds[0] @ w.T + _gamma_checked(n + 1, where) * (mr @ w.T + ms[0] @ w.T + 2 * b) + 2 * flushes,
                  2 * n + 12)
    if op == "matmul":
        if ms[0].ndim < 2 or ms[1].ndim < 2:
            raise Unknown(f"{where}: matmul with a 1-D operand has no deviation rule")
        n = ms[0].shape[-1]
        (ma, mb), (da, db) = ms, ds
        mra, mrb = ma + da, mb + db
        _no_overflow(mra @ mrb, where)
        flushes = TINY * (2 * n + 2)
        return up(ma @ db + da @ mrb + _gamma_checked(n + 1, where) * (mra @ mrb + ma @ mb) + 2 * flushes,
                  2 * n + 12)
    if op == "conv2d":
        w = np.abs(env[ins[1]].hi.astype(np.float64))
        b = np.abs(env[ins[2]].hi.astype(np.float64)).reshape(1, -1, 1, 1) if len(ins) > 2 else 0.0
        geo = (tuple(attrs["stride"]), tuple(attrs["pads"]), tuple(attrs["dilation"]))
        n = int(np.prod(w.shape[1:]))
        mr = ms[0] + ds[0]
        _no_overflow(conv_abs(mr, w, *geo) + b, where)
        flushes = TINY * (conv_abs(mr, np.ones_like(w), *geo) + 2 * n + 2)
        return up(conv_abs(ds[0], w, *geo) + _gamma_checked(n + 1, where) * (conv_abs(mr, w, *geo)
                  + conv_abs(ms[0], w, *geo) + 2 * b) + 2 * flushes, 2 * n + 12)
    if op in ("sum", "mean"):
        axes = tuple(attrs["axes"])
        n = int(np.prod([ms[0].shape[a] for a in axes])) if axes else 1
        keep = bool(attrs["keepdims"])
        total = np.sum(ms[0] + ds[0], axis=axes, keepdims=keep)
        _no_overflow(total, where)
        s = np.sum(ds[0], axis=axes, keepdims=keep) + _gamma_checked(n + 1, where) * (
            total + np.sum(ms[0], axis=axes, keepdims=keep)) + 2 * TINY * (n + 1)
        return up(s / n + flush if op == "mean" else s, 2 * n + 8)
    if op in SMOOTH:
        spec = ulps.get(op)
        if spec is None:
            raise Unknown(f"{where}: no ulp bound is stated for this runtime's {op} (measure it with "
                          f"benchmarks/audit_runtime.py or pass --ulps {op}=K)")
        if spec["max_ulps"] > MAX_ULPS:
            raise Unknown(f"{where}: the runtime's {op} is up to {spec['max_ulps']} ulps off; bounds in ulps are "
                          f"given only up to {MAX_ULPS}")
        iv = env[ins[0]]
        lo, hi = iv.lo.astype(np.float64), iv.hi.astype(np.float64)
        limit = spec.get("limit")
        if limit is not None and np.any(np.maximum(np.abs(lo - ds[0]), np.abs(hi + ds[0])) > limit):
            raise Unknown(f"{where}: the runtime's {op} error was measured only for |x| <= {limit!r}")
        return _smooth(op, lo, hi, d[ins[0]], int(spec["max_ulps"]), where)  # _smooth adds the DAZ term itself
    raise Unknown(f"{where}: no deviation rule for op {op!r}")


def deviation_bound_split(graph: Graph, lo, hi, ulps: dict[str, dict], depth: int = 0) -> DeviationBound:
    """:func:`deviation_bound` on the ``2^depth`` boxes of bisecting ``[lo, hi]`` along its widest
    input (repeatedly), combined by the elementwise maximum: every input lies in some part, so
    the maximum bounds the deviation on the whole box, and smaller parts have tighter enclosures
    and more stable ReLUs. Any unknown part makes the whole unknown."""
    parts = [(np.asarray(lo, np.float32), np.asarray(hi, np.float32))]
    for _ in range(depth):
        nxt = []
        for a, b in parts:
            w = b.astype(np.float64) - a
            k = np.unravel_index(int(np.argmax(w)), w.shape)
            mid = np.float32((float(a[k]) + float(b[k])) / 2)
            if not (a[k] < mid < b[k]):
                nxt.append((a, b))
                continue
            b1, a2 = b.copy(), a.copy()
            b1[k], a2[k] = mid, mid  # float32 points on both sides of mid are covered: mid is in both
            nxt += [(a, b1), (a2, b)]
        parts = nxt
    worst = None
    for a, b in parts:
        r = deviation_bound(graph, a, b, ulps)
        if r.status != "ok":
            return r
        worst = r.outputs if worst is None else [np.maximum(x, y) for x, y in zip(worst, r.outputs)]
    return DeviationBound("ok", "", worst)
