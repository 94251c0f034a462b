"""Choosing CROWN's free parameters by gradient ascent (alpha-CROWN slopes, beta-CROWN multipliers).

The CROWN lower bound is valid for *every* lower ReLU slope α in [0, 1] and, on a domain where a
split node satisfies ``s·z >= 0`` (s = ±1), for every multiplier β >= 0 of the term ``−β·s·z``
(which is <= 0 there). Both families are free parameters: a search may pick any values, and the
bound certified by :func:`nnlemma.bounds.backward.backward` with those values is sound. Soundness
therefore never rests on this module, which is a fast, *unrounded* float64 model of the backward
pass of a plain ReLU MLP with its hand-derived gradient — a heuristic that only proposes values.

Model (batch B domains, S rows): ``z_k = W_k h_{k−1} + b_k`` (k = 1..L), ``h_k = relu(z_k)``,
output ``z_L``; bound of ``C·z_L`` over the box:

    λ_L = C;  for k = L−1..1:  μ_k = λ_{k+1} W_{k+1};  λ_k = μ_k⁺·a_lo + μ_k⁻·a_hi − β_k s_k
    bound = Σ_k [λ_{k+1}·b_{k+1} + μ_k⁻·b_hi] + λ_1·b_1 + Σ ν⁺·lo + ν⁻·hi,   ν = λ_1 W_1

with a_lo = α on unstable units (1 active, 0 inactive), a_hi / b_hi the chord. Reverse mode
gives ∂bound/∂α and ∂bound/∂β; Adam steps, α projected to [0, 1] and β to [0, ∞), keeping per
(row, domain) the best parameters seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.graph import Graph


@dataclass
class MLP:
    """A graph that is ``prefix → (affine → relu)* → affine`` with float64 weights, where an affine
    layer is ``linear`` or ``matmul`` (+ ``add`` of a constant bias) and the prefix is a chain of
    reshapes and elementwise operations with constants (input normalisation, as in ACAS Xu's ONNX
    files). The model starts at ``input_id``, the value the first affine layer reads: the optimiser
    takes that value's interval as its box, which is only a heuristic input (see the module note)."""

    input_id: int
    z_ids: list[int]            # affine outputs z_1..z_L
    relu_ids: list[int]         # relu outputs h_1..h_{L-1}
    W: list[np.ndarray]         # [n_k, n_{k-1}]
    b: list[np.ndarray]         # [n_k]


_PREFIX = {"reshape", "flatten", "add", "sub", "mul", "div", "identity"}


def _affine(eqs, i, cur, params):
    """The affine layer starting at ``eqs[i]`` reading ``cur``: (W [out, in], b, z id, next i) or None."""
    e = eqs[i]
    if e.op not in ("linear", "matmul") or len(e.inputs) < 2 or e.inputs[0] != cur or e.inputs[1] not in params:
        return None
    if e.op == "linear":
        if len(e.inputs) == 3 and e.inputs[2] not in params:
            return None
        w = params[e.inputs[1]].astype(np.float64)
        b = params[e.inputs[2]].astype(np.float64) if len(e.inputs) == 3 else np.zeros(w.shape[0])
        return w, b, e.out.id, i + 1
    w = params[e.inputs[1]].astype(np.float64)
    if w.ndim != 2:
        return None
    w = w.T
    b = np.zeros(w.shape[0])
    nxt = eqs[i + 1] if i + 1 < len(eqs) else None
    if nxt is not None and nxt.op == "add" and nxt.inputs[0] == e.out.id and nxt.inputs[1] in params:
        bias = params[nxt.inputs[1]]
        if bias.size == w.shape[0] and nxt.out.shape == e.out.shape:
            return w, bias.astype(np.float64).reshape(-1), nxt.out.id, i + 2
    return w, b, e.out.id, i + 1


def as_mlp(graph: Graph) -> MLP | None:
    """Recognise a ReLU MLP (leading batch axis, 2-D activations), else None."""
    eqs = list(graph.equations)
    params = {p.value.id: p.data for p in graph.params}
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        return None
    cur = graph.inputs[0].id
    i = 0
    while i < len(eqs) and eqs[i].op in _PREFIX and eqs[i].inputs[0] == cur and \
            all(v in params for v in eqs[i].inputs[1:]):
        cur = eqs[i].out.id
        i += 1
    input_id = cur
    shapes = {e.out.id: e.out.shape for e in eqs}
    z_ids, relu_ids, W, b = [], [], [], []
    while i < len(eqs):
        layer = _affine(eqs, i, cur, params)
        if layer is None:
            return None
        w, bias, cur, i = layer
        if len(shapes[cur]) != 2:
            return None
        W.append(w)
        b.append(bias)
        z_ids.append(cur)
        if i == len(eqs):
            break
        e = eqs[i]
        if e.op != "relu" or e.inputs[0] != cur:
            return None
        relu_ids.append(e.out.id)
        cur = e.out.id
        i += 1
    if cur != graph.outputs[0] or not z_ids or cur != z_ids[-1]:
        return None
    return MLP(input_id, z_ids, relu_ids, W, b)


class _Adam:
    def __init__(self, shape, lr: float, dtype=np.float32):
        self.m = np.zeros(shape, dtype)
        self.v = np.zeros(shape, dtype)
        self.t = 0
        self.lr = lr

    def step(self, g: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = 0.9 * self.m + 0.1 * g
        self.v = 0.999 * self.v + 0.001 * g * g
        mh = self.m / (1 - 0.9 ** self.t)
        vh = self.v / (1 - 0.999 ** self.t)
        return self.lr * mh / (np.sqrt(vh) + 1e-8)


def optimize(mlp: MLP, lo: np.ndarray, hi: np.ndarray, zlo: list[np.ndarray], zhi: list[np.ndarray],
             signs: list[np.ndarray], C: np.ndarray, iters: int = 20, lr_alpha: float = 0.1,
             lr_beta: float = 0.05, target: np.ndarray | None = None, groups: tuple | None = None
             ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Slopes α_k ``[S, B, n_k]`` and multipliers β_k ``[S, B, n_k]`` (k = 1..L−1) that maximise the
    modelled bound, and that bound ``[S, B]`` (unrounded; for ranking only).

    ``lo``/``hi``: ``[B, n_0]`` input box per domain; ``zlo``/``zhi``: intervals of z_k ``[B, n_k]``
    on each domain; ``signs``: int8 ``[B, n_k]`` split signs (0 = unsplit).

    Every (row, domain) pair is optimised on its own, as one row of flat ``[P, n]`` arrays. The
    model runs in float32 (twice the speed of float64 matrix products here): it only proposes
    parameters, which the certified backward pass then uses whatever their accuracy. With
    ``target`` (``[S]``), a pair stops being optimised once its modelled bound exceeds its row's
    target (its atom is refuted there with room to spare); no pair left ends the loop. With
    ``groups`` (tuples of row indices: the conjunctions of the property, every one of which must
    have a refuted atom), all pairs of a domain stop once every group has a row past its target
    there: the domain is then safe, and its other rows need no better bound."""
    f = np.float32
    S, B = C.shape[0], lo.shape[0]
    L = len(mlp.W)
    W = [w.astype(f) for w in mlp.W]
    bias = [b.astype(f) for b in mlp.b]
    row_of, dom_of = np.repeat(np.arange(S), B), np.tile(np.arange(B), S)   # pair p = (row, domain)
    with np.errstate(over="ignore"):
        zlo, zhi = [z.astype(f) for z in zlo], [z.astype(f) for z in zhi]
    relax = []   # per layer, per domain: unstable, upper slope, upper intercept, fixed lower slope
    for k in range(L - 1):
        l, u = zlo[k], zhi[k]
        unst = (l < 0) & (u > 0)
        with np.errstate(all="ignore"):
            chord = np.where(unst, u / np.where(unst, u - l, 1.0), 0.0).astype(f)
        relax.append((unst, np.where(l >= 0, 1.0, chord).astype(f), np.where(unst, -l * chord, 0.0).astype(f),
                      np.where(l >= 0, 1.0, 0.0).astype(f), np.asarray(signs[k], f), (u > -l).astype(f)))

    def gather(idx):
        """Per-pair copies of the per-domain data for the pairs ``idx``."""
        d = dom_of[idx]
        return ([tuple(a[d] for a in r) for r in relax], lo.astype(f)[d], hi.astype(f)[d],
                np.asarray(C, f)[row_of[idx]])

    live = np.arange(S * B)
    rel, plo, phi, lam0 = gather(live)
    alpha = [np.where(r[0], r[5], r[3]) for r in rel]
    has_beta = [bool(np.any(np.asarray(sg) != 0)) for sg in signs]  # split multipliers matter only there
    beta = [np.zeros_like(a) for a in alpha]
    opt_a = [_Adam(a.shape, lr_alpha) for a in alpha]
    opt_b = [_Adam(b_.shape, lr_beta) for b_ in beta]
    best = np.full(S * B, -np.inf)
    best_a = [a.copy() for a in alpha]
    best_b = [b_.copy() for b_ in beta]
    tgt = None if target is None else np.asarray(target, np.float64)[row_of]
    with np.errstate(all="ignore"):  # a heuristic: NaN/inf parameters are harmless (backward() copes)
        for it in range(iters + 1):
            if tgt is not None and it > 0:
                met = best > tgt
                if groups is not None:
                    by_row = met.reshape(S, B)
                    safe = np.ones(B, bool)
                    for grp in groups:
                        safe &= by_row[list(grp)].any(axis=0) if grp else False
                    met |= safe[dom_of]
                keep = ~met[live]
                if not keep.any():
                    break
                if not keep.all():
                    live = live[keep]
                    rel, plo, phi, lam0 = gather(live)
                    alpha, beta = [a[keep] for a in alpha], [b_[keep] for b_ in beta]
                    for o in opt_a + opt_b:
                        o.m, o.v = o.m[keep], o.v[keep]
            # forward (the backward pass of CROWN), one row per live pair
            lam = lam0
            bound = np.zeros(len(live), np.float64)
            mus = [None] * (L - 1)
            for k in range(L - 2, -1, -1):
                bound += lam @ bias[k + 1]
                mu = lam @ W[k + 1]
                unst, a_hi, b_hi, fixed_lo, s_f, _ = rel[k]
                pos = mu >= 0
                # alpha[k] holds the fixed slope of every stable element (never updated: its
                # gradient is 0), so it is the lower slope everywhere
                lam = mu * np.where(pos, alpha[k], a_hi)
                if has_beta[k]:
                    lam -= beta[k] * s_f
                bound += np.einsum("pn,pn->p", np.where(pos, 0.0, mu), b_hi)
                mus[k] = (mu, pos)
            nu = lam @ W[0]
            bound += lam @ bias[0] + (np.maximum(nu, 0) * plo + np.minimum(nu, 0) * phi).sum(axis=1)
            improved = bound > best[live]
            best[live] = np.where(improved, bound, best[live])
            if improved.any():
                won = live[improved]
                for k in range(L - 1):
                    best_a[k][won] = alpha[k][improved]
                    if has_beta[k]:
                        best_b[k][won] = beta[k][improved]
            if it == iters:
                break
            # reverse mode
            g_lam = np.where(nu >= 0, plo, phi) @ W[0].T + bias[0]
            for k in range(L - 1):
                mu, pos = mus[k]
                unst, a_hi, b_hi, fixed_lo, s_f, _ = rel[k]
                g_alpha = np.where(pos & unst, g_lam * mu, 0.0)
                g_mu = g_lam * np.where(pos, alpha[k], a_hi) + np.where(pos, 0.0, b_hi)
                if has_beta[k]:
                    beta[k] = np.maximum(beta[k] + opt_b[k].step(-g_lam * s_f), 0.0) * (s_f != 0)
                g_lam = g_mu @ W[k + 1].T + bias[k + 1]
                alpha[k] = np.clip(alpha[k] + opt_a[k].step(g_alpha), 0.0, 1.0)
    shape = (S, B)
    return ([a.reshape(shape + a.shape[1:]) for a in best_a], [b_.reshape(shape + b_.shape[1:]) for b_ in best_b],
            best.reshape(shape))



def alpha_crown(graph: Graph, lo, hi, semantics: str = "float32", iters: int = 20):
    """CROWN bounds whose output bounds use optimised lower slopes (alpha-CROWN), one set of slopes
    per output bound. Graphs that are not plain ReLU MLPs get plain CROWN (``optimized`` False).
    Intermediate bounds are CROWN's; every output bound is certified by the backward pass (with
    all float32 rounding in the float32 semantics) and intersected with CROWN's, both being sound."""
    from .backward import backward
    from .common import outward
    from .crown import crown_context
    from .interval import SEMANTICS, Interval

    ctx, res = crown_context(graph, lo, hi, semantics)
    mlp = as_mlp(graph)
    if ctx is None or mlp is None or iters <= 0:
        return res
    B = ctx.B
    out = graph.outputs[0]
    n = int(np.prod(ctx.lshape(out)[1:]))

    def f64(v):
        return tuple(a.reshape(B, -1) for a in ctx.bounds64(v))

    x_lo, x_hi = f64(mlp.input_id)
    zs = [f64(z) for z in mlp.z_ids[:-1]]
    if not all(np.isfinite(a).all() for z in zs for a in z) or not (np.isfinite(x_lo).all() and np.isfinite(x_hi).all()):
        return res
    C = np.concatenate([np.eye(n), -np.eye(n)])
    alpha, _, _ = optimize(mlp, x_lo, x_hi, [z[0] for z in zs], [z[1] for z in zs],
                           [np.zeros_like(z[0]) for z in zs], C, iters=iters)
    lb = np.empty((2 * n, B))
    for s in range(2 * n):
        ctx.relax_cache = {}
        ctx.alpha = {h: alpha[k][s] for k, h in enumerate(mlp.relu_ids)}
        lam = np.broadcast_to(C[s].reshape((1, 1) + tuple(ctx.lshape(out)[1:])), (1,) + ctx.lshape(out)).copy()
        lb[s] = backward(ctx, out, lam)[0]
    clo, chi = outward(lb[:n].T.reshape(ctx.lshape(out)), (-lb[n:]).T.reshape(ctx.lshape(out)), semantics)
    iv = res.bounds[out]
    res.bounds[out] = iv.intersect(Interval.make(clo, chi, iv.nan, SEMANTICS[semantics].dtype))
    res.optimized = True
    return res


def optimized_rows(ctx, mlp: MLP, lam: np.ndarray, C: np.ndarray, signs: list[np.ndarray], iters: int,
                   costs: bool = False, target: np.ndarray | None = None, groups: tuple | None = None):
    """Certified lower bounds ``[S, B]`` of the rows ``lam`` (``[S, B, ...]``, row s = ``C[s]``) of
    the MLP's output over the domains of ``ctx``, each row with its own slopes (and, on elements
    split with ``signs`` ±1 per domain, multipliers) proposed by :func:`optimize` (deterministic) and certified
    by :func:`nnlemma.bounds.backward.backward`. Also returns the input coefficients ``[S, B, n_in]``
    (None if some row has none) and, with ``costs``, the intercept costs per relaxed node.
    ``target``, ``groups``: see :func:`optimize`."""
    from .backward import backward

    B = ctx.B
    x_lo, x_hi = (a.reshape(B, -1) for a in ctx.bounds64(mlp.input_id))
    zs = [ctx.bounds64(z) for z in mlp.z_ids[:-1]]
    alpha, beta, _ = optimize(mlp, x_lo, x_hi, [z[0] for z in zs], [z[1] for z in zs], signs, C, iters=iters,
                              target=target, groups=groups)
    input_id = ctx.graph.inputs[0].id
    rows_lb, rows_A, rows_cost = [], [], {}
    for s in range(C.shape[0]):
        ctx.relax_cache = {}
        ctx.alpha = {h: alpha[k][s] for k, h in enumerate(mlp.relu_ids)}
        ctx.beta = {z: -beta[k][s] * signs[k] for k, z in enumerate(mlp.z_ids[:-1])}
        ctx.intercept_cost = {} if costs else None
        coeffs: dict = {}
        rows_lb.append(backward(ctx, mlp.z_ids[-1], lam[s:s + 1], coeffs))
        rows_A.append(coeffs.get(input_id))
        for h, c in (ctx.intercept_cost or {}).items():
            rows_cost.setdefault(h, []).append(c)
    A = None if any(a is None for a in rows_A) else np.concatenate(rows_A)
    cost = {h: np.concatenate(c) for h, c in rows_cost.items()} if costs else None
    return np.concatenate(rows_lb), A, cost


__all__ = ["MLP", "alpha_crown", "as_mlp", "optimize", "optimized_rows"]
