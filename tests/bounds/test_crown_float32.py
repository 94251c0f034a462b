"""Soundness of CROWN (``nnlemma.bounds.crown`` / ``nnlemma.bounds.backward``) against the float32
kernel. Every comparison is exact; there is no tolerance anywhere.

Claims checked:

1. ``crown(graph, lo, hi, "float32")``: for every float32 input point x in the box, the kernel value
   v of every node lies in the node's interval, ``lo <= v <= hi`` (IEEE comparison, so both zeros
   lie in an interval containing 0), or v is NaN and the NaN flag is set there. With a batch of B
   boxes (the graph rebuilt by ``ir.rebuild`` with batch B, box b in row b), row b of every
   interval must hold the kernel values of the points of box b.
2. ``backward(ctx, target, Λ)`` after ``prepare`` + ``tighten`` (the verifier's path): for every
   float32 point x of box b and every row s, ``Σ Λ[s, b]·y(x) >= L[s, b]``, where y(x) is the
   kernel's float32 value of the target and the sum is computed *exactly*: every float64
   coefficient is an integer multiple of 2^-1074 and every float32 value one of 2^-149, so the sum
   is an exact Python integer over 2^1223, compared with the exact rational of L. Rows: dense
   random, one-hot (``node_bounds``), differences of one-hots (the verifier's ``Y_i − Y_j``),
   sparse, small integers, scaled (1e-30 .. 1e30), and cancelling rows (0.1 + 0.2 − 0.3 patterns,
   on which float64 sums err). A NaN lower bound counts as a failure (it is not a bound).

Sampling and boxes come from :mod:`f32_support` (shared with the IBP suite): corners, edge
midpoints, the centre, one-ulp-inward neighbours mixed with the endpoints, both zeros, uniform and
bit-order-uniform points; box families from degenerate (lo == hi) to huge (~1e30), subnormal, ±inf.
Kernel evaluation: the S samples of each of the B boxes are the S·B rows of one kernel run of the
graph rebuilt with batch S·B (row s·B + b is sample s of box b); the IBP suite checks that batched
runs equal single runs bit for bit.
"""

from __future__ import annotations

import importlib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnlemma.bounds import backward as backward_mod
from nnlemma.bounds import common as common_mod
crown_mod = importlib.import_module("nnlemma.bounds.crown")  # the module (nl.bounds.crown is the function)
from nnlemma.bounds import ibp
from nnlemma.bounds.backward import backward, node_bounds
from nnlemma.bounds.crown import crown, prepare, tighten
from nnlemma.bounds.linrelax import relu_relaxation
from nnlemma.interpret import interpret
from nnlemma.ir import Builder, rebuild
from nnlemma.kernels import KERNEL_RULES

from f32_support import (
    BOX_KINDS, CROWN_NETS, MAX, NETS, TINY, box_samples, crown_net, crown_rank1, default_targets, get_net, lam_rows, make_box,
    net_unbatched, random_box, random_net,
)

F32 = np.float32
LAM_SCALE = 1074   # 2^1074 · (float64 value) is an integer
Y_SCALE = 149      # 2^149 · (float32 value) is an integer

# ---------------------------------------------------------------------------------------------
# boxes and samples with a batch of B boxes


def batch_boxes(graph, kinds, seed):
    """One box per batch element b (family ``kinds[b % len(kinds)]``) for every input: lists of
    float32 ``[B, ...]`` arrays."""
    rng = np.random.default_rng(seed)
    B = graph.inputs[0].shape[0]
    los, his = [], []
    for v in graph.inputs:
        parts = [make_box(kinds[b % len(kinds)], (1,) + tuple(v.shape[1:]), rng) for b in range(B)]
        los.append(np.concatenate([p[0] for p in parts]))
        his.append(np.concatenate([p[1] for p in parts]))
    return los, his


def batch_samples(los, his, rng, n_random=48, extra=None):
    """Float32 points ``[S, B, ...]`` per input: sample s of box b (all inputs sampled jointly).
    Boxes with fewer samples repeat theirs cyclically; ``extra`` (``[E, B, ...]`` per input) is
    appended (the caller keeps it inside the boxes)."""
    B = los[0].shape[0]
    per_b = []
    for b in range(B):
        flo = np.concatenate([np.asarray(l[b], F32).reshape(-1) for l in los])
        fhi = np.concatenate([np.asarray(h[b], F32).reshape(-1) for h in his])
        per_b.append(box_samples(flo, fhi, rng, n_random=n_random))
    S = max(p.shape[0] for p in per_b)
    pts = np.stack([np.resize(p, (S, p.shape[1])) for p in per_b], axis=1)   # [S, B, d]
    out, off = [], 0
    for i, l in enumerate(los):
        n = int(np.prod(l.shape[1:]))
        smp = pts[:, :, off:off + n].reshape((S, B) + tuple(l.shape[1:]))
        if extra is not None:
            smp = np.concatenate([smp, np.asarray(extra[i], F32).reshape((-1, B) + tuple(l.shape[1:]))])
        out.append(smp)
        off += n
    return out


def kernel_env_sb(graph, samples):
    """Kernel values of every node for ``[S, B, ...]`` samples in one run (graph batch S·B);
    input-dependent values come back as ``[S, B, ...]``, constant ones as ``[1, 1, ...]``."""
    S, B = samples[0].shape[:2]
    g = rebuild(graph, [(S * B,) + tuple(v.shape[1:]) for v in graph.inputs])
    env = interpret(g, KERNEL_RULES, [np.ascontiguousarray(x.reshape((S * B,) + x.shape[2:]), F32) for x in samples])
    params = {p.value.id for p in graph.params}
    out = {}
    for vid, v in env.items():
        if vid in params:
            continue
        v = np.asarray(v)
        out[vid] = v.reshape((S, B) + v.shape[1:]) if v.shape and v.shape[0] == S * B else v[None]
    return out


def _one(xs):
    return xs[0] if len(xs) == 1 else list(xs)


# ---------------------------------------------------------------------------------------------
# claim 1: crown() intervals hold the kernel values


def crown_failures(graph, bounds, env, samples, limit=8):
    descr = {e.out.id: e.describe() for e in graph.equations}
    fails = []
    for vid, v in env.items():
        iv = bounds[vid]
        lo, hi = iv.lo[None], iv.hi[None]
        nan = np.broadcast_to(iv.nan, iv.lo.shape)[None]
        with np.errstate(invalid="ignore"):
            ok = np.where(np.isnan(v), nan, (lo <= v) & (v <= hi))
        if ok.all():
            continue
        for idx in list(zip(*np.nonzero(~ok)))[:limit]:
            s, b = int(idx[0]), int(idx[1])
            j = (0,) + tuple(int(i) for i in idx[1:])
            j = tuple(0 if iv.lo.shape[k] == 1 else j[k + 1] for k in range(iv.lo.ndim))
            x = [np.asarray(smp[min(s, smp.shape[0] - 1), b]).reshape(-1).tolist() for smp in samples]
            fails.append(f"{descr.get(vid, f'%{vid}')} at sample {s}, element {tuple(int(i) for i in idx[1:])}: "
                         f"kernel {v[idx]!r} not in [{lo[(0,) + j]!r}, {hi[(0,) + j]!r}] "
                         f"nan={bool(nan[(0,) + j])}; input {x}")
    return fails


def check_crown_f32(graph, lo, hi, *, seed=0, n_random=48, extra=None, res=None):
    """crown() over the boxes, then containment of every node's kernel value for the samples."""
    los = lo if isinstance(lo, list) else [lo]
    his = hi if isinstance(hi, list) else [hi]
    if res is None:
        res = crown(graph, _one(los), _one(his), "float32")
    assert res.status == "ok", res.reason
    vals = graph.values()
    for vid, iv in res.bounds.items():
        assert iv.lo.dtype == F32 and iv.hi.dtype == F32, f"%{vid}: endpoints {iv.lo.dtype}/{iv.hi.dtype}"
        assert iv.lo.shape == iv.hi.shape == tuple(vals[vid].shape), (vid, iv.lo.shape, vals[vid].shape)
    samples = batch_samples(los, his, np.random.default_rng(seed), n_random=n_random, extra=extra)
    env = kernel_env_sb(graph, samples)
    fails = crown_failures(graph, res.bounds, env, samples)
    assert not fails, "UNSOUND float32 CROWN:\n" + "\n".join(fails[:16])
    return res, env, samples


def check_crown_f32_unbatched(graph, lo, hi, *, seed=0, n_random=24):
    """Graphs without a free batch axis: one kernel run per sample."""
    res = crown(graph, lo, hi, "float32")
    assert res.status == "ok", res.reason
    pts = box_samples(np.asarray(lo, F32).reshape(-1), np.asarray(hi, F32).reshape(-1), np.random.default_rng(seed),
                      n_random=n_random)
    runs = [interpret(graph, KERNEL_RULES, [p.reshape(graph.inputs[0].shape)]) for p in pts]
    params = {p.value.id for p in graph.params}
    env = {vid: np.stack([r[vid] for r in runs])[:, None] for vid in runs[0] if vid not in params}
    bounds = {vid: type(iv)(iv.lo[None], iv.hi[None], np.broadcast_to(iv.nan, iv.lo.shape)[None])
              for vid, iv in res.bounds.items()}
    fails = crown_failures(graph, bounds, env, [pts[:, None]])
    assert not fails, "UNSOUND float32 CROWN:\n" + "\n".join(fails[:16])
    return res


# ---------------------------------------------------------------------------------------------
# claim 2: backward() lower bounds of Λ·y, checked with exact integer arithmetic


def _ints(a, scale):
    """Exact integers ``a · 2^scale`` of a finite float array (every element a multiple of 2^-scale)."""
    flat = np.asarray(a, np.float64).reshape(-1)
    out = np.empty(flat.size, dtype=object)
    for i, v in enumerate(flat.tolist()):
        n, d = v.as_integer_ratio()
        k = d.bit_length() - 1
        assert d == 1 << k and k <= scale, (v, d)
        out[i] = n << (scale - k)
    return out.reshape(np.shape(a))


def backward_failures(target_descr, lam, lb, ys, nan_ok=None, limit=8):
    """``lam`` [R, B, ...], ``lb`` [R, B], kernel values ``ys`` [S, B, ...] of the target: every
    exact ``Σ lam[r, b]·ys[s, b]`` must be >= ``lb[r, b]``. A NaN bound is a failure, except for a
    box b with ``nan_ok[b]``: where the target's own interval admits ±inf or NaN, Λ·y itself may be
    inf − inf, and a NaN bound (which the verifier skips, like −inf) claims nothing."""
    R, B = lam.shape[:2]
    S = ys.shape[0]
    n = int(np.prod(lam.shape[2:]))
    lam2 = lam.reshape(R, B, n)
    y2 = np.broadcast_to(ys, (S, B) + lam.shape[2:]).reshape(S, B, n).astype(np.float64)
    fails = []
    for b in range(B):
        yb = y2[:, b]
        fin = np.isfinite(yb)
        Y = _ints(np.where(fin, yb, 0.0), Y_SCALE)              # [S, n]
        L = _ints(lam2[:, b], LAM_SCALE)                        # [R, n]
        exact = L @ Y.T if n else np.zeros((R, S), dtype=object)   # [R, S], value / 2^(1074+149)
        for r in range(R):
            bound = float(lb[r, b])
            if bound == -np.inf:
                continue
            if np.isnan(bound):
                if nan_ok is not None and nan_ok[b]:
                    continue
                fails.append(f"{target_descr}: row {r}, batch {b}: the lower bound is NaN")
                continue
            if bound == np.inf:
                fails.append(f"{target_descr}: row {r}, batch {b}: the lower bound is +inf")
                continue
            bn, bd = bound.as_integer_ratio()
            lhs = bn << (LAM_SCALE + Y_SCALE)
            nz = lam2[r, b] != 0
            for s in range(S):
                bad = ~fin[s] & nz
                if bad.any():  # some term is ±inf or NaN: only a +inf total satisfies a finite bound
                    with np.errstate(invalid="ignore"):
                        terms = yb[s, bad] * np.sign(lam2[r, b, bad])
                    if not (np.isnan(terms).any() or (terms == -np.inf).any()):
                        continue
                    why = "Λ·y is -inf or undefined"
                elif lhs <= exact[r, s] * bd:
                    continue
                else:
                    from fractions import Fraction
                    why = f"exact Λ·y = {float(Fraction(int(exact[r, s]), 1 << (LAM_SCALE + Y_SCALE)))!r}"
                fails.append(f"{target_descr}: row {r}, batch {b}, sample {s}: lower bound {bound!r} > Λ·y ({why})")
                if len(fails) >= limit:
                    return fails
    return fails


def check_backward_f32(graph, lo, hi, *, seed=0, n_random=16, max_samples=64, targets=None, max_targets=4,
                       kinds=None, extra=None):
    """prepare + tighten + backward for random rows Λ, each checked exactly against the kernel."""
    los = lo if isinstance(lo, list) else [lo]
    his = hi if isinstance(hi, list) else [hi]
    ctx, reason = prepare(graph, _one(los), _one(his), "float32")
    assert ctx is not None, reason
    tighten(ctx)
    rng = np.random.default_rng(seed)
    samples = batch_samples(los, his, rng, n_random=n_random, extra=extra)
    if samples[0].shape[0] > max_samples:
        keep = np.concatenate([np.arange(8), rng.choice(np.arange(8, samples[0].shape[0]), max_samples - 8, False)])
        samples = [s[keep] for s in samples]
    env = kernel_env_sb(graph, samples)
    descr = {e.out.id: e.describe() for e in graph.equations}
    fails, checked = [], 0
    for t in targets or default_targets(graph, ctx, max_targets):
        shape = ctx.lshape(t)
        lam = lam_rows(rng, ctx.B, shape[1:], **({} if kinds is None else {"kinds": kinds}))
        lb = backward(ctx, t, lam.copy())
        assert lb.shape == (lam.shape[0], ctx.B)
        iv = ctx.bounds[t]
        wild = ~np.isfinite(iv.lo) | ~np.isfinite(iv.hi) | np.broadcast_to(iv.nan, iv.lo.shape)
        nan_ok = np.broadcast_to(wild.reshape(wild.shape[0], -1).any(axis=1), (ctx.B,))
        fails += backward_failures(descr.get(t, f"%{t}"), lam, lb, env[t], nan_ok)
        checked += 1
    assert checked, "no target with a batch axis"
    assert not fails, "UNSOUND float32 CROWN backward:\n" + "\n".join(fails[:16])
    return ctx


# ---------------------------------------------------------------------------------------------
# the harness agrees with the kernel: batched rows = single runs


def test_batch_sampler_rows_are_the_boxes_points():
    g = rebuild(get_net("deep_relu"), [(3, 3)])
    los, his = batch_boxes(g, ["random", "degenerate", "straddle0"], 1)
    smp = batch_samples(los, his, np.random.default_rng(0), n_random=8)
    assert smp[0].shape[1:] == (3, 3)
    for b in range(3):
        assert np.all((smp[0][:, b] >= los[0][b]) & (smp[0][:, b] <= his[0][b]))
    env = kernel_env_sb(g, smp)
    out = g.outputs[0]
    for s in (0, 5, smp[0].shape[0] - 1):
        for b in range(3):
            single = interpret(get_net("deep_relu"), KERNEL_RULES, [smp[0][s, b][None]])[out]
            assert np.array_equal(single.view(np.uint32), env[out][s, b][None].view(np.uint32))


def test_crown_nets_have_crown_bounded_nodes():
    """The CROWN catalog really exercises CROWN: tighten() bounds nodes after relaxations, the
    cut-node nets cut, and products of two variables are relaxed (McCormick)."""
    for name in CROWN_NETS:
        g = get_net(name)
        lo, hi = make_box("straddle0", g.inputs[0].shape, np.random.default_rng(0))
        res = crown(g, lo, hi, "float32")
        assert res.status == "ok", res.reason
        assert len(res.looser_than_ibp) >= 2, (name, res.looser_than_ibp)
    assert crown(get_net("cut_chain"), *make_box("straddle0", (1, 3), np.random.default_rng(0))).cut_nodes
    # products of two variables get McCormick planes, not a cut
    assert not crown(get_net("product"), *make_box("straddle0", (1, 4), np.random.default_rng(0))).cut_nodes


def test_crown_tighter_than_ibp_somewhere():
    """Sanity of the premise (not soundness): on the deep relu net CROWN beats IBP on some output."""
    g = get_net("deep_relu")
    lo, hi = make_box("random", (1, 3), np.random.default_rng(2))
    res, ib = crown(g, lo, hi, "float32"), ibp(g, lo, hi, "float32")
    out = g.outputs[0]
    assert np.any(res.bounds[out].lo > ib.env[out].lo) or np.any(res.bounds[out].hi < ib.env[out].hi)


# ---------------------------------------------------------------------------------------------
# claim 1 on the catalogs, every box family


CROWN_KINDS = ["random", "narrow", "degenerate", "straddle0", "touch0", "tiny", "huge_mixed", "with_inf"]


@pytest.mark.parametrize("kind", CROWN_KINDS)
@pytest.mark.parametrize("name", sorted(CROWN_NETS))
def test_crown_sound_on_crown_catalog(name, kind):
    g = get_net(name)
    lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(abs(hash((name, kind))) % 2**32))
    check_crown_f32(g, lo, hi, seed=3, n_random=48)


@pytest.mark.parametrize("kind", ["random", "straddle0", "huge_mixed", "everything"])
@pytest.mark.parametrize("name", sorted(NETS))
def test_crown_sound_on_ibp_catalog(name, kind):
    """The IBP catalog (every op; inf/NaN weights; two inputs), CROWN wherever it applies."""
    g = get_net(name)
    rng = np.random.default_rng(abs(hash((name, kind))) % 2**32)
    bx = [make_box(kind, v.shape, rng) for v in g.inputs]
    check_crown_f32(g, [b[0] for b in bx], [b[1] for b in bx], seed=5, n_random=32)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("name", sorted(set(NETS) | set(CROWN_NETS)))
def test_crown_sound_all_box_kinds_slow(name, seed):
    g = get_net(name)
    for kind in BOX_KINDS[seed % 4::4]:
        rng = np.random.default_rng(seed)
        bx = [make_box(kind, v.shape, rng) for v in g.inputs]
        check_crown_f32(g, [b[0] for b in bx], [b[1] for b in bx], seed=seed, n_random=128)


# ---------------------------------------------------------------------------------------------
# degenerate boxes, one-ulp boxes, huge and subnormal magnitudes


@pytest.mark.parametrize("name", sorted(CROWN_NETS))
def test_degenerate_boxes_contain_the_point(name):
    """lo == hi at random points of several magnitudes and at both zeros: CROWN ∩ IBP must still
    contain the single kernel value (an empty or shifted interval is caught here), and backward()
    must not exceed the exact Λ·y (no rounding slack hides here: the box has one point)."""
    g = get_net(name)
    rng = np.random.default_rng(11)
    for scale in (1.0, 3e-3, 1e-30, 1e-40, 1e30):
        x = (rng.normal(size=g.inputs[0].shape) * scale).astype(F32)
        check_crown_f32(g, x, x, n_random=1)
        check_backward_f32(g, x, x, n_random=1)
    for z in (F32(0.0), F32(-0.0)):
        x = np.full(g.inputs[0].shape, z, F32)
        check_crown_f32(g, x, x, n_random=1)
        check_backward_f32(g, x, x, n_random=1)


@pytest.mark.parametrize("name", ["deep_relu", "deep_leaky", "product", "crown_movement"])
def test_one_ulp_boxes(name):
    """Boxes one or two ulps wide: every float32 point of the box is sampled (corners and the
    one-ulp-inward neighbours), and the relaxations are of intervals a few ulps wide."""
    g = get_net(name)
    rng = np.random.default_rng(12)
    for scale in (1.0, 1e-20, 1e20):
        c = (rng.normal(size=g.inputs[0].shape) * scale).astype(F32)
        for k in (1, 2):
            lo, hi = c, c
            for _ in range(k):
                lo, hi = np.nextafter(lo, F32(-np.inf)), np.nextafter(hi, F32(np.inf))
            check_crown_f32(g, lo, hi, n_random=8)
            check_backward_f32(g, lo, hi, n_random=8)


def test_huge_and_tiny_magnitudes():
    """Boxes near 1e30 (products and sums near the float32 overflow threshold in later layers) and
    in the subnormal range (gradual underflow of products and sums)."""
    for name in ("deep_relu", "deep_leaky", "product", "broadcast", "crown_movement"):
        g = get_net(name)
        shape = g.inputs[0].shape
        rng = np.random.default_rng(13)
        for lo, hi in [(np.full(shape, 1e30), np.full(shape, 2e30)), (np.full(shape, -3e30), np.full(shape, 1e30)),
                       (np.full(shape, 1e37), np.full(shape, 3e38)),
                       (np.full(shape, -8 * TINY), np.full(shape, 8 * TINY)),
                       (np.full(shape, TINY), np.full(shape, 1e-38)),
                       (rng.normal(size=shape) * 1e-42, rng.normal(size=shape) * 1e-42)]:
            lo, hi = np.minimum(lo, hi).astype(F32), np.maximum(lo, hi).astype(F32)
            check_crown_f32(g, lo, hi, n_random=32)
            check_backward_f32(g, lo, hi, n_random=8)


# Regression (fixed) (fold_f32.fold_interval, err): a product that rounds to 0 at both interval
# endpoints (P = 0) gets no rounding term although its exact value is nonzero (2^-149 * 0.4);
# crown() returns the empty interval [6e-45, 0] for a kernel value 0. Fix: add 2^-150 for such a
# product unless w = 0 or xl = xh = 0


def test_product_underflow_in_fold():
    """Found by this suite: a product of a subnormal input and a weight that rounds to 0 at *both*
    interval endpoints (P = 0) is given no rounding error, although its exact value is nonzero.
    For x = 2^-149 and ten weights 0.4 the kernel computes 0, the exact sum is 5.6e-45, and
    crown() returns the empty interval [6e-45, 0]."""
    b = Builder()
    x = b.input((1, 10), "x")
    y = b.eqn("linear", [x, b.param(np.full((2, 10), 0.4, F32)), b.param(np.zeros(2, F32))])
    y2 = b.eqn("linear", [x, b.param(np.full((1, 10), -0.4, F32))])
    g = b.build([y, y2])
    for lo, hi in [(TINY, TINY), (0.0, TINY), (-TINY, TINY), (TINY, 2 * TINY)]:
        l, h = np.full((1, 10), lo, F32), np.full((1, 10), hi, F32)
        res, env, _ = check_crown_f32(g, l, h, n_random=8)
        check_backward_f32(g, l, h, n_random=8, targets=[y.id, y2.id])


def test_overflowing_layers():
    """Weights that make later layers overflow to ±inf (and inf − inf = NaN) inside CROWN boxes."""
    b = Builder()
    x = b.input((1, 3), "x")
    h = b.eqn("relu", [b.eqn("linear", [x, b.param(np.array([[1e38, 1e38, 0], [1, -1, 2], [3e38, 0, -3e38]], F32))])])
    h2 = b.eqn("relu", [b.eqn("linear", [h, b.param(np.array([[2, 1, 1], [1, -1, 0]], F32)), b.param(np.array([1, -1], F32))])])
    y = b.eqn("linear", [h2, b.param(np.array([[1, -1], [1e-30, 1]], F32))])
    g = b.build([y])
    for lo, hi in [([-1, -1, -1], [1, 1, 1]), ([0.5, 0.5, 0.5], [3, 3, 3]), ([-MAX, 0, 0], [MAX, 1, 1]),
                   ([1, 1, 1], [1, 1, 1])]:
        check_crown_f32(g, np.array([lo], F32), np.array([hi], F32), n_random=64)
        check_backward_f32(g, np.array([lo], F32), np.array([hi], F32), n_random=16)


@pytest.mark.parametrize("case", ["product", "partial_sum", "sum", "mean", "sum_relu"])
def test_backward_when_the_kernel_overflows_regression(case):
    """Regression (found by this suite's slow hypothesis run): the float32 rounding bound of a node
    whose kernel value overflows to ±inf must be infinite; a finite bound makes backward() claim a
    finite lower bound of Λ·y although y = ±inf. For ``sum`` the bound used half-ulps of the float64
    partial sums, which stay finite when the float32 ones overflow: sum([3e38, 3e38]) = inf, yet
    backward(-1·y) was -6e38 (fixed in ``rounding``). For linear, an overflowed product or partial
    sum gave h(inf) = 2^-25 in the fold's error bound (HEAD; the fold's rewrite maps inf to inf)."""
    b = Builder()
    x = b.input((1, 2), "x")
    if case == "product":
        y = b.eqn("linear", [x, b.param(np.array([[1.3e15, 0.0]], F32))])
        pt, lam = np.array([[-3.05e27, 0]], F32), 0.1
    elif case == "partial_sum":
        y = b.eqn("linear", [x, b.param(np.ones((1, 2), F32))])
        pt, lam = np.full((1, 2), 3e38, F32), -1.0
    elif case in ("sum", "mean"):
        y = b.eqn(case, [x], {"axes": (1,), "keepdims": 1})
        pt, lam = np.full((1, 2), 3e38, F32), -1.0
    else:  # the sum after a relu is a CROWN target (tighten) as well
        y = b.eqn("sum", [b.eqn("relu", [x])], {"axes": (1,), "keepdims": 1})
        y = b.eqn("relu", [b.eqn("linear", [y, b.param(np.ones((1, 1), F32))])])
        pt, lam = np.full((1, 2), 3e38, F32), -1.0
    g = b.build([y])
    ctx, _ = prepare(g, pt, pt, "float32")
    tighten(ctx)
    lb = backward(ctx, y.id, np.full((1, 1, 1), lam))
    assert not backward_failures(f"%{y.id}", np.full((1, 1, 1), lam), lb, kernel_env_sb(g, [pt[None]])[y.id]), lb
    check_crown_f32(g, pt, pt, n_random=1)
    check_backward_f32(g, pt, pt, n_random=1)
    lo, hi = pt * F32(0.9), pt
    check_crown_f32(g, np.minimum(lo, hi), np.maximum(lo, hi), n_random=16)
    check_backward_f32(g, np.minimum(lo, hi), np.maximum(lo, hi), n_random=16)


def _nan_source(b):
    """x in [0, 0] x [0, inf]: p = x0·x1 may be 0·inf = NaN, t = tanh(p) has a finite interval
    [-1, 1] with the NaN flag."""
    x = b.input((1, 2), "x")
    p = b.eqn("mul", [b.eqn("slice", [x], {"index": ((None, None, None), (0, 1, None))}),
                      b.eqn("slice", [x], {"index": ((None, None, None), (1, 2, None))})])
    return b.eqn("tanh", [p])


@pytest.mark.parametrize("case", ["zero_weight", "mul_zero", "div_inf", "broadcast_cancel"])
def test_backward_nan_operand_with_zero_coefficient_regression(case):
    """Regression (found by this suite's slow hypothesis run; fixed in ``rounding``): when an operand
    may be NaN but its backward coefficient is 0 (a zero weight of a linear layer, a product with
    the constant 0, a quotient by inf, a row that cancels over a broadcast axis), the cut of the
    operand contributes nothing (0·inf is taken as 0), yet the kernel computes fl(0·NaN) = NaN.
    backward() claimed the finite bound -1.5e-323 for a NaN output; the verifier's checker
    treats a NaN output as undecided, never safe. Now the node's rounding bound is +inf where
    its interval admits NaN."""
    b = Builder()
    t = _nan_source(b)
    if case == "zero_weight":
        y = b.eqn("linear", [t, b.param(np.array([[0.0], [1.0]], F32))])
        lam = np.array([[[1.0, 0.0]], [[-1.0, 0.0]]])
    elif case == "mul_zero":
        y = b.eqn("mul", [t, b.param(np.zeros((1, 2), F32))])
        lam = np.array([[[1.0, 1.0]], [[-1.0, 0.5]]])
    elif case == "div_inf":
        y = b.eqn("div", [t, b.param(np.full((1, 2), np.inf, F32))])
        lam = np.array([[[1.0, 1.0]], [[-1.0, 0.5]]])
    else:
        y = b.eqn("add", [b.eqn("reshape", [t], {"shape": (0, 1, 1)}), b.param(np.zeros((1, 3, 1), F32))])
        lam = np.array([[[[1.0], [-1.0], [0.0]]], [[[0.5], [0.25], [-0.75]]]])
    g = b.build([y])
    lo, hi = np.zeros((1, 2), F32), np.array([[0.0, np.inf]], F32)
    ctx, _ = prepare(g, lo, hi, "float32")
    tighten(ctx)
    lb = backward(ctx, y.id, lam.copy())
    pts = np.array([[[0.0, np.inf]], [[0.0, 1.0]], [[0.0, 0.0]]], F32)
    ys = kernel_env_sb(g, [pts])[y.id]
    assert np.isnan(ys[0]).any()
    fails = backward_failures(f"%{y.id}", lam, lb, ys)
    assert not fails, "UNSOUND float32 CROWN backward:\n" + "\n".join(fails)
    check_crown_f32(g, lo, hi, n_random=8)


# ---------------------------------------------------------------------------------------------
# claim 2: backward() directly (the verifier's path)


@pytest.mark.parametrize("kind", ["random", "narrow", "straddle0", "tiny", "huge"])
@pytest.mark.parametrize("name", sorted(CROWN_NETS))
def test_backward_lower_bounds_exact(name, kind):
    g = get_net(name)
    lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(abs(hash((name, kind, 1))) % 2**32))
    check_backward_f32(g, lo, hi, seed=7)


@pytest.mark.parametrize("name", ["mlp_relu", "residual", "matmul_bn1d", "movement", "conv_pwl", "mlp_smooth", "binary",
                                  "special_weights"])
def test_backward_lower_bounds_ibp_catalog(name):
    g = get_net(name)
    for kind in ("random", "degenerate", "straddle0"):
        lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(17))
        check_backward_f32(g, lo, hi, seed=8, max_targets=3)


# Regression (fixed) (backward._Acc.add_bias and its callers): the float64 error of a bias sum Σ
# t_i is bounded by γ·|Σ t_i| instead of γ·Σ|t_i|; with cancellation (Λ = [0.1, 0.2, -0.3], x =
# [1, 1, 1]) backward() returns 5.55e-17 > 2.78e-17 = exact Λ·y


def test_backward_cancelling_rows_on_movement_only_graph():
    """Found by this suite: the float64 sums of bias terms (the final cut of the inputs, constants,
    linear biases) are given an error bound γ·|sum| instead of γ·Σ|terms|. With heavy
    cancellation (Λ = [0.1, 0.2, −0.3] on a graph of pure data movement, x = [1, 1, 1], which has
    no float32 rounding term to hide the float64 error) the bound is fl(0.1 + 0.2 − 0.3) = 5.55e-17
    > 2.78e-17, the exact value of Λ·y. The verifier calls backward() with such rows (C·y)."""
    b = Builder()
    x = b.input((1, 3), "x")
    y = b.eqn("identity", [x])
    z = b.eqn("reshape", [b.eqn("transpose", [b.eqn("reshape", [x], {"shape": (0, 3, 1)})], {"perm": (0, 2, 1)})],
              {"shape": (0, 3)})
    g = b.build([y, z])
    one = np.ones((1, 3), F32)
    ctx, _ = prepare(g, one, one, "float32")
    tighten(ctx)
    lam = np.array([0.1, 0.2, -0.3]).reshape(1, 1, 3)
    for t in (y.id, z.id):
        lb = backward(ctx, t, lam.copy())
        assert not backward_failures(f"%{t}", lam, lb, one[None]), lb
    check_backward_f32(g, one, one, n_random=1, kinds=("cancel", "dense", "scaled"))
    rng = np.random.default_rng(3)
    for _ in range(5):
        p = rng.normal(size=(1, 3)).astype(F32)
        check_backward_f32(g, p, p, n_random=1, kinds=("cancel", "dense", "scaled", "ints"))


def test_node_bounds_agree_with_backward_rows():
    """node_bounds is backward() on one-hot rows: both are checked, and crown()'s output bounds
    are within node_bounds rounded outward to float32."""
    g = get_net("deep_relu")
    lo, hi = make_box("random", (1, 3), np.random.default_rng(4))
    ctx, _ = prepare(g, lo, hi, "float32")
    tighten(ctx)
    out = g.outputs[0]
    lo64, hi64 = node_bounds(ctx, out)
    res = crown(g, lo, hi, "float32")
    samples = batch_samples([lo], [hi], np.random.default_rng(0), n_random=64)
    y = kernel_env_sb(g, samples)[out].astype(np.float64)
    assert np.all(y >= lo64) and np.all(y <= hi64)
    assert np.all(res.bounds[out].lo <= y) and np.all(y <= res.bounds[out].hi)


@pytest.mark.parametrize("name", ["deep_relu", "deep_leaky", "product", "crown_movement", "broadcast"])
def test_any_alpha_is_sound(name):
    """The relu lower slopes ``alpha`` (what alpha-CROWN optimises) may be anything: values in [0, 1],
    outside it (clipped to [negative_slope, 1]), per element and per batch element."""
    g1 = get_net(name)
    g = rebuild(g1, [(3,) + tuple(g1.inputs[0].shape[1:])])
    los, his = batch_boxes(g, ["straddle0", "random", "narrow"], seed=33)
    rng = np.random.default_rng(34)
    shapes = {e.out.id: (3,) + tuple(e.out.shape[1:]) for e in g.equations if e.op in ("relu", "leaky_relu")}
    for trial in range(3):
        lo_a, hi_a = [(0.0, 1.0), (-0.5, 1.5), (0.0, 0.0)][trial]
        alpha = {vid: rng.uniform(lo_a, hi_a, size=shp) for vid, shp in shapes.items()}
        res = crown(g, los[0], his[0], "float32", alpha=alpha)
        check_crown_f32(g, los[0], his[0], n_random=16, res=res)


# ---------------------------------------------------------------------------------------------
# batches: B boxes of different families in one pass (the verifier's batched bounding)


@pytest.mark.parametrize("name", ["deep_relu", "deep_leaky", "product", "crown_conv", "crown_movement", "broadcast",
                                  "cut_chain", "mlp_relu", "residual"])
def test_batched_boxes(name):
    g1 = get_net(name)
    B = 5
    g = rebuild(g1, [(B,) + tuple(v.shape[1:]) for v in g1.inputs])
    los, his = batch_boxes(g, ["random", "degenerate", "straddle0", "narrow", "huge_mixed"], seed=21)
    res, _, _ = check_crown_f32(g, los, his, n_random=24)
    check_backward_f32(g, los, his, n_random=8)
    # each box alone (batch 1) is sound too, and the batched pass bounds every element
    for b in range(B):
        lb1 = [l[b:b + 1] for l in los]
        hb1 = [h[b:b + 1] for h in his]
        check_crown_f32(g1, lb1, hb1, n_random=8)


def test_batched_boxes_identical_elements():
    """B copies of one box: every batch row must be sound (and they see the same intervals)."""
    g1 = get_net("deep_relu")
    g = rebuild(g1, [(4, 3)])
    lo, hi = make_box("random", (1, 3), np.random.default_rng(5))
    res, _, _ = check_crown_f32(g, np.repeat(lo, 4, 0), np.repeat(hi, 4, 0), n_random=24)
    out = g.outputs[0]
    assert np.array_equal(res.bounds[out].lo, np.repeat(res.bounds[out].lo[:1], 4, 0))


# ---------------------------------------------------------------------------------------------
# graphs without a batch axis


@pytest.mark.parametrize("kind", ["random", "straddle0", "degenerate", "huge_mixed", "zeros", "with_inf"])
def test_unbatched_graph(kind):
    g = net_unbatched()
    lo, hi = make_box(kind, (6,), np.random.default_rng(4))
    check_crown_f32_unbatched(g, lo, hi)


# Regression (fixed) (backward._step, linear/matmul): CROWN takes axis 0 as the batch axis, but
# linear/matmul of a rank-1 operand contracts exactly that axis; the backward pass mixes the
# 'batch elements' and crown() bounds miss ~60% of kernel outputs (both semantics). Fix: cut when
# the operand has rank < 2


@pytest.mark.parametrize("kind", ["random", "straddle0", "narrow"])
def test_rank1_linear_contracts_the_leading_axis(kind):
    """Found by this suite: CROWN takes the leading axis as the batch axis, but a linear layer on
    a rank-1 value contracts exactly that axis. The backward pass then mixes the 'batch
    elements' and its bounds miss ~60% of the kernel outputs (real semantics too)."""
    g = crown_rank1()
    lo, hi = make_box(kind, (6,), np.random.default_rng(6))
    check_crown_f32_unbatched(g, lo, hi, n_random=64)


# ---------------------------------------------------------------------------------------------
# regressions of bugs found by this suite (fixed)


def test_linear_with_computed_bias():
    b = Builder()
    x = b.input((1, 2), "x")
    bias = b.eqn("exp", [b.param(np.zeros(2, F32))])
    y = b.eqn("linear", [b.eqn("relu", [x]), b.param(np.eye(2, dtype=F32)), bias])
    g = b.build([b.eqn("relu", [y])])
    check_crown_f32(g, -np.ones((1, 2), F32), np.ones((1, 2), F32))


# ---------------------------------------------------------------------------------------------
# hypothesis


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_hypothesis_crown_nets(data):
    g, d = data.draw(crown_net())
    lo, hi = data.draw(random_box(d))
    seed = data.draw(st.integers(0, 1000))
    check_crown_f32(g, lo, hi, seed=seed, n_random=24)
    check_backward_f32(g, lo, hi, seed=seed, n_random=8, max_targets=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_hypothesis_ibp_random_nets(data):
    """The IBP suite's random nets (every unary/binary op) under CROWN."""
    g, d = data.draw(random_net())
    lo, hi = data.draw(random_box(d))
    check_crown_f32(g, lo, hi, seed=data.draw(st.integers(0, 1000)), n_random=24)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_hypothesis_batched(data):
    g1, d = data.draw(crown_net())
    B = data.draw(st.integers(2, 4))
    g = rebuild(g1, [(B, d)])
    boxes = [data.draw(random_box(d)) for _ in range(B)]
    lo = np.concatenate([bx[0] for bx in boxes])
    hi = np.concatenate([bx[1] for bx in boxes])
    check_crown_f32(g, lo, hi, n_random=16)
    check_backward_f32(g, lo, hi, n_random=6, max_targets=2)


@pytest.mark.slow
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_crown_nets_slow(data):
    g, d = data.draw(crown_net())
    B = data.draw(st.integers(1, 3))
    if B > 1:
        g = rebuild(g, [(B, d)])
    boxes = [data.draw(random_box(d)) for _ in range(B)]
    lo = np.concatenate([bx[0] for bx in boxes])
    hi = np.concatenate([bx[1] for bx in boxes])
    check_crown_f32(g, lo, hi, seed=data.draw(st.integers(0, 1000)), n_random=64)
    check_backward_f32(g, lo, hi, n_random=24, max_targets=4)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_ibp_random_nets_slow(data):
    g, d = data.draw(random_net())
    lo, hi = data.draw(random_box(d))
    check_crown_f32(g, lo, hi, seed=data.draw(st.integers(0, 1000)), n_random=64)
    check_backward_f32(g, lo, hi, n_random=16, max_targets=3)


# ---------------------------------------------------------------------------------------------
# the harness itself: deliberately unsound CROWN must be caught


def _halved_upper_intercept(l, u, alpha_lo=None, negative_slope=0.0):
    """The chord's intercept halved: the upper line passes below relu near 0."""
    a_lo, b_lo, a_hi, b_hi = relu_relaxation(l, u, alpha_lo, negative_slope)
    return a_lo, b_lo, a_hi, b_hi * 0.5


def _identity_upper_line(l, u, alpha_lo=None, negative_slope=0.0):
    """relu <= x claimed on unstable neurons (false for x < 0)."""
    a_lo, b_lo, a_hi, b_hi = relu_relaxation(l, u, alpha_lo, negative_slope)
    unstable = (l < 0) & (u > 0)
    return a_lo, b_lo, np.where(unstable, 1.0, a_hi), np.where(unstable, 0.0, b_hi)


def _must_fail(check, *args, **kw):
    try:
        check(*args, **kw)
    except AssertionError as exc:
        assert "UNSOUND" in str(exc), exc
        return True
    return False


@pytest.mark.parametrize("mutant", [_halved_upper_intercept, _identity_upper_line])
def test_harness_catches_unsound_relaxation(monkeypatch, mutant):
    monkeypatch.setattr(common_mod, "relu_relaxation", mutant)
    g = get_net("deep_relu")
    caught_crown = caught_backward = False
    for seed in range(6):
        lo, hi = make_box("random", (1, 3), np.random.default_rng(seed))
        caught_crown = caught_crown or _must_fail(check_crown_f32, g, lo, hi, n_random=64)
        caught_backward = caught_backward or _must_fail(check_backward_f32, g, lo, hi, n_random=32)
        if caught_crown and caught_backward:
            break
    assert caught_crown, "crown() containment did not notice the unsound relaxation"
    assert caught_backward, "the backward() check did not notice the unsound relaxation"


def test_harness_catches_dropped_rounding_terms(monkeypatch):
    """Without the float32 rounding terms CROWN bounds the real-arithmetic network; the exact
    backward check on degenerate and narrow boxes notices (the kernel's roundings differ)."""
    monkeypatch.setattr(crown_mod, "rounding_error", lambda ctx, e: None)
    g = get_net("deep_relu")
    caught = False
    for seed in range(4):
        x = np.random.default_rng(seed).normal(size=(1, 3)).astype(F32)
        caught = caught or _must_fail(check_backward_f32, g, x, x, n_random=1)
    assert caught, "the backward() check did not notice the missing float32 rounding terms"


def test_harness_catches_dropped_fold_underflow_term(monkeypatch):
    """The pre-fix fold error (no term for products that underflow to 0) is caught by crown()."""
    from nnlemma.bounds import rounding as rounding_mod
    from nnlemma.bounds.fold_f32 import fold_interval

    def old_fold(xl, xh, wt, with_err=False):
        lo, hi, err = fold_interval(xl, xh, wt, with_err)
        # drop every product-underflow allowance: recompute the bound from nonzero P only
        return lo, hi, np.where((lo == 0) & (hi == 0), 0.0, err)

    monkeypatch.setattr(rounding_mod, "fold_interval", old_fold)
    b = Builder()
    x = b.input((1, 10), "x")
    g = b.build([b.eqn("linear", [x, b.param(np.full((1, 10), 0.4, F32))])])
    t = np.full((1, 10), TINY, F32)
    assert _must_fail(check_crown_f32, g, t, t, n_random=1)


def test_harness_catches_dropped_float64_slack(monkeypatch):
    """Without the float64 bias-sum error bound, cancelling rows break the backward check."""
    monkeypatch.setattr(backward_mod, "gamma", lambda n: 0.0)
    b = Builder()
    x = b.input((1, 3), "x")
    g = b.build([b.eqn("identity", [x])])
    one = np.ones((1, 3), F32)
    assert _must_fail(check_backward_f32, g, one, one, n_random=1, kinds=("cancel",))


# ---------------------------------------------------------------------------------------------
# report (printed, never asserted)


def test_looser_than_ibp_report():
    """How often CROWN was looser than IBP per node (``looser_than_ibp``: elements where the CROWN
    bound alone was worse; the result is intersected with IBP, so this only costs tightness), and
    how much CROWN ∩ IBP narrowed the outputs."""
    rows = []
    for name in sorted(CROWN_NETS) + ["mlp_relu", "residual"]:
        g = get_net(name)
        for kind in ("random", "narrow", "straddle0", "huge_mixed"):
            lo, hi = make_box(kind, g.inputs[0].shape, np.random.default_rng(1))
            res = crown(g, lo, hi, "float32")
            ib = ibp(g, lo, hi, "float32")
            tot = {vid: 2 * int(np.prod(res.bounds[vid].lo.shape)) for vid in res.looser_than_ibp}
            looser = ", ".join(f"%{vid}:{n}/{tot[vid]}" for vid, n in sorted(res.looser_than_ibp.items()))
            out = g.outputs[0]
            with np.errstate(all="ignore"):
                wc = res.bounds[out].hi.astype(np.float64) - res.bounds[out].lo.astype(np.float64)
                wi = ib.env[out].hi.astype(np.float64) - ib.env[out].lo.astype(np.float64)
                ratio = np.nanmedian(np.where(wi > 0, wc / np.where(wi > 0, wi, 1), np.nan)) if (wi > 0).any() else np.nan
            rows.append(f"{name:15s} {kind:10s} looser than IBP {looser or '-'}; output width CROWN/IBP median {ratio:.3g}")
    print("\nCROWN looser than IBP (node: endpoints looser / endpoints, 2 per element), float32:\n  "
          + "\n  ".join(rows))


# ---------------------------------------------------------------------------------------------
# tighten() with bounds inherited from a box containing this one (input splitting's children)


@pytest.mark.parametrize("name", ["deep_relu", "deep_leaky", "crown_misc", "broadcast"])
def test_tighten_with_parent_bounds_is_sound_and_uses_them(name):
    """A child box (one coordinate halved, then every coordinate shrunk) inherits the parent's
    bounds of every relaxed node's input: the child's bounds lie inside the parent's (exact <=),
    and every child point's kernel value lies inside the child's bounds."""
    from nnlemma.bounds.common import RELAX

    g = get_net(name)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        lo, hi = make_box("straddle0", g.inputs[0].shape, rng)
        parent, why = prepare(g, lo, hi, "float32")
        assert parent is not None, why
        tighten(parent)
        zs = {e.inputs[0] for e in g.equations if e.op in RELAX and e.inputs[0] in parent.eqn_of}
        assert zs
        known = {z: (parent.bounds[z].lo.copy(), parent.bounds[z].hi.copy()) for z in zs}
        mid = ((lo.astype(np.float64) + hi) / 2).astype(F32)
        clo = np.where(rng.random(lo.shape) < 0.5, lo, np.minimum(mid, hi)).astype(F32)
        chi = np.maximum(clo, np.where(rng.random(lo.shape) < 0.5, hi, mid)).astype(F32)
        child, why = prepare(g, clo, chi, "float32")
        assert child is not None, why
        tighten(child, known)
        for z in zs:
            assert np.all(child.bounds[z].lo >= known[z][0]) and np.all(child.bounds[z].hi <= known[z][1])
        samples = batch_samples([clo], [chi], np.random.default_rng(seed + 10), n_random=48)
        env = kernel_env_sb(g, samples)
        fails = crown_failures(g, child.bounds, env, samples)
        assert not fails, "UNSOUND with inherited bounds:\n" + "\n".join(fails[:16])
