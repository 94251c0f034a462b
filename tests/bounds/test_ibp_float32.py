"""Soundness of ``ibp(graph, lo, hi, "float32")`` against the float32 kernel, at every node.

For every float32 input x in the box, ``interpret(graph, KERNEL_RULES, [x])`` gives each node's
kernel value v; the node's interval I must satisfy ``I.lo <= v <= I.hi`` (IEEE comparison, so
both zeros are inside an interval containing 0) or v is NaN and ``I.nan`` is set there. Every
comparison is exact.

Sampling (per box): all corners (input dim <= 8, else random corners), edge midpoints, the centre,
one-ulp-inward neighbours of the endpoints (``np.nextafter`` toward the interior) mixed with the
endpoints, both signed zeros wherever 0 is in the box, uniform interior points and points uniform
in the float32 *bit order* (which spreads over all magnitudes of wide boxes).

Harness: every graph here has a leading batch axis of size 1 that no op mixes, so the samples are
evaluated in one kernel run of the same graph rebuilt with batch size S (``ir.rebuild`` keeps the
value ids); ``test_batched_kernel_matches_single_runs`` checks that this equals per-sample runs
bit for bit.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnlemma as nl
from nnlemma import nn
from nnlemma.bounds import IBP_RULES, ibp
from nnlemma.errors import InputError
from nnlemma.interpret import interpret
from nnlemma.ir import Builder, rebuild
from nnlemma.kernels import KERNEL_RULES
from nnlemma.ops import OPS

F32 = np.float32
MAX = np.finfo(F32).max
TINY = np.finfo(F32).smallest_subnormal
INF = F32(np.inf)

# ---------------------------------------------------------------------------------------------
# sampling


def _key(x: np.ndarray) -> np.ndarray:
    """float32 -> int64 that is monotone in the IEEE order (both zeros map to 0)."""
    b = np.asarray(x, F32).view(np.uint32).astype(np.int64)
    return np.where(b & 0x80000000, -(b & 0x7FFFFFFF), b)


def _unkey(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, np.int64)
    b = np.where(k < 0, (-k) | 0x80000000, k).astype(np.uint32)
    return b.view(F32)


def _inward(v, toward):
    """One ulp from v toward the interior (v itself for a degenerate coordinate)."""
    return np.where(v == toward, v, np.nextafter(v, toward)).astype(F32)


def _mid(lo, hi):
    lo64, hi64 = lo.astype(np.float64), hi.astype(np.float64)
    with np.errstate(all="ignore"):
        m = (lo64 + hi64) / 2
    m = np.where(np.isnan(m), 0.0, m)
    m = np.clip(m, -float(MAX), float(MAX))
    with np.errstate(over="ignore"):
        m32 = m.astype(F32)
    return np.minimum(np.maximum(m32, lo), hi).astype(F32)


def box_samples(lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator, n_random: int = 48,
                max_corner_dim: int = 7) -> np.ndarray:
    """Float32 points of the box [lo, hi] (flat vectors), shape [S, d]."""
    lo = np.asarray(lo, F32).reshape(-1)
    hi = np.asarray(hi, F32).reshape(-1)
    d = lo.size
    pts: list[np.ndarray] = []
    ends = np.stack([lo, hi])  # [2, d]
    cols = np.arange(d)
    # corners
    if d <= max_corner_dim:
        sel = np.array(list(itertools.product((0, 1), repeat=d)), dtype=np.int64)
    else:
        sel = rng.integers(0, 2, size=(64, d))
        sel[0], sel[1] = 0, 1
    pts.append(ends[sel, cols])
    corners = ends[sel, cols]
    # edge midpoints: one coordinate at the midpoint, the others at a corner
    mid = _mid(lo, hi)
    if d <= 5:
        for c in corners:
            for j in range(d):
                p = c.copy()
                p[j] = mid[j]
                pts.append(p[None])
    else:
        for _ in range(48):
            p = corners[rng.integers(len(corners))].copy()
            j = rng.integers(d)
            p[j] = mid[j]
            pts.append(p[None])
    pts.append(mid[None])
    # one-ulp-inward neighbours, mixed with the endpoints
    lo_in, hi_in = _inward(lo, hi), _inward(hi, lo)
    near = np.stack([lo, lo_in, hi, hi_in])
    pts.append(near[rng.integers(0, 4, size=(48, d)), cols])
    pts.append(lo_in[None])
    pts.append(hi_in[None])
    # both zeros wherever 0 is in the box
    has0 = (lo <= 0) & (hi >= 0)
    if has0.any():
        for z in (F32(0.0), F32(-0.0)):
            for base in (mid, lo_in, hi_in, corners[0], corners[-1]):
                p = base.copy()
                p[has0] = z
                pts.append(p[None])
            for _ in range(6):
                p = ends[rng.integers(0, 2, size=d), cols].copy()
                p[has0 & (rng.random(d) < 0.5)] = z
                pts.append(p[None])
    # uniform interior points (float64 uniform, rounded, clipped) and bit-order uniform points
    lo64 = np.clip(lo.astype(np.float64), -float(MAX), float(MAX))
    hi64 = np.clip(hi.astype(np.float64), -float(MAX), float(MAX))
    u = lo64 + rng.random((n_random, d)) * (hi64 - lo64)
    with np.errstate(over="ignore"):
        u32 = np.minimum(np.maximum(u.astype(F32), lo), hi).astype(F32)
    pts.append(u32)
    klo, khi = _key(lo), _key(hi)
    kr = klo + np.floor(rng.random((n_random, d)) * (khi - klo + 1).astype(np.float64)).astype(np.int64)
    kr = np.minimum(kr, khi)
    pts.append(_unkey(kr))
    out = np.concatenate([np.asarray(p, F32).reshape(-1, d) for p in pts])
    assert not np.isnan(out).any()
    assert np.all((out >= lo) & (out <= hi)), "sampler left the box"
    return out


# ---------------------------------------------------------------------------------------------
# the check


def kernel_env(graph, samples: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Kernel values of every node for S samples per input (arrays [S, ...]) in one run."""
    s = samples[0].shape[0]
    g = rebuild(graph, [(s,) + tuple(v.shape[1:]) for v in graph.inputs])
    return interpret(g, KERNEL_RULES, [np.ascontiguousarray(x, F32) for x in samples])


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def containment_failures(graph, res, env, samples, limit: int = 8) -> list[str]:
    params = {p.value.id for p in graph.params}
    descr = {e.out.id: e.describe() for e in graph.equations}
    fails = []
    for vid, v in env.items():
        iv = res.env[vid]
        if vid in params and v.shape == iv.shape:
            pass
        else:
            assert iv.shape[0] == 1 and v.shape[1:] == iv.shape[1:], (descr.get(vid), v.shape, iv.shape)
        with np.errstate(invalid="ignore"):
            ok = np.where(np.isnan(v), iv.nan, (iv.lo <= v) & (v <= iv.hi))
        if not ok.all():
            for idx in list(zip(*np.nonzero(~ok)))[:limit]:
                stacked = not (vid in params and v.shape == iv.shape)
                j = (0,) + tuple(idx[1:]) if stacked else idx
                row = idx[0] if stacked else None
                x = None if row is None else [np.asarray(smp[row]).reshape(-1).tolist() for smp in samples]
                fails.append(f"{descr.get(vid, f'%{vid}')} at {tuple(int(i) for i in idx)}: kernel "
                             f"{v[idx]!r} not in [{iv.lo[j]!r}, {iv.hi[j]!r}] nan={bool(iv.nan[j])}; input {x}")
    return fails


def joint_samples(los, his, rng, batched=True, **kw) -> list[np.ndarray]:
    shapes = [np.shape(l) if batched else (1,) + np.shape(l) for l in los]
    flat_lo = np.concatenate([np.asarray(l, F32).reshape(-1) for l in los])
    flat_hi = np.concatenate([np.asarray(h, F32).reshape(-1) for h in his])
    pts = box_samples(flat_lo, flat_hi, rng, **kw)
    out, off = [], 0
    for shp in shapes:
        n = int(np.prod(shp))
        out.append(pts[:, off:off + n].reshape((-1,) + tuple(shp[1:])))
        off += n
    return out


def check_f32(graph, lo, hi, *, seed: int = 0, extra: list[np.ndarray] | None = None, rules=None, batched=True,
              **kw):
    """IBP over [lo, hi], then containment of the kernel value of every node for the samples."""
    res = ibp(graph, lo, hi, "float32", rules=rules)
    assert res.status == "ok", res.reason
    for vid, iv in res.env.items():
        assert iv.lo.dtype == F32 and iv.hi.dtype == F32, f"%{vid}: endpoints are {iv.lo.dtype}/{iv.hi.dtype}"
        assert np.shape(iv.hi) == np.shape(iv.lo) and np.broadcast_to(iv.nan, iv.lo.shape).dtype == np.bool_
    los, his = _as_list(lo), _as_list(hi)
    samples = joint_samples(los, his, np.random.default_rng(seed), batched=batched, **kw)
    if extra is not None:
        samples = [np.concatenate([s, np.asarray(e, F32).reshape((-1,) + s.shape[1:])]) for s, e in zip(samples, extra)]
    if batched:
        env = kernel_env(graph, samples)
        fails = containment_failures(graph, res, env, samples)
    else:  # graphs without a free batch axis: one kernel run per sample, stacked
        runs = [interpret(graph, KERNEL_RULES, [s[i].reshape(v.shape) for s, v in zip(samples, graph.inputs)])
                for i in range(samples[0].shape[0])]
        env = {vid: np.stack([r[vid] for r in runs]) for vid in runs[0]}
        params = {p.value.id for p in graph.params}
        fails = containment_failures(graph, _Stacked(res, params), env, samples)
    assert not fails, "UNSOUND float32 IBP:\n" + "\n".join(fails)
    return res, env


class _Stacked:
    """View of a BoundsResult whose intervals get a leading axis of 1 (to match stacked runs)."""

    def __init__(self, res, params):
        from nnlemma.bounds import Interval
        self.env = {vid: Interval(iv.lo[None], iv.hi[None], np.broadcast_to(iv.nan, iv.lo.shape)[None])
                    for vid, iv in res.env.items()}


# ---------------------------------------------------------------------------------------------
# networks (every one has a leading batch axis of size 1)


def _seq(*layers):
    return nn.Sequential(*layers)


def _compile(fn, *shapes):
    return nl.compile(fn, [np.zeros(s, F32) for s in shapes]).graph


def net_mlp_relu():
    return _compile(_seq(nn.Linear(4, 8, seed=1), nn.ReLU(), nn.Linear(8, 8, seed=2), nn.LeakyReLU(0.1),
                         nn.Linear(8, 6, seed=3), nn.Hardtanh(-0.5, 0.75), nn.Linear(6, 3, seed=4),
                         nn.Identity()), (1, 4))


def net_mlp_smooth():
    def f(x):
        h = nn.Linear(3, 6, seed=5)(x).tanh()
        h = nn.Linear(6, 6, seed=6)(h).sigmoid()
        h = nn.Linear(6, 4, seed=7)(h)
        return nl.exp(h), nl.sin(h * 3.0), nl.cos(h * 2.0)
    return _compile(f, (1, 3))


def net_elementwise_zoo():
    def f(x):
        parts = [nl.exp(x), nl.sin(x), nl.cos(x), nl.sqrt(nl.abs(x)), nl.sqrt(x), nl.square(x), nl.abs(x),
                 nl.neg(x), nl.clamp(x, -0.5, 0.25), nl.clamp(x, lo=0.0), nl.clamp(x, hi=-0.0), nl.hardtanh(x),
                 nl.relu(x), nl.leaky_relu(x, 0.2), nl.leaky_relu(x, 1.0), nl.tanh(x), nl.sigmoid(x),
                 nn.Identity()(x)]
        return nl.concat(parts, axis=1)
    return _compile(f, (1, 4))


def net_trig():
    def f(x):
        return nl.concat([nl.sin(x * 3.0 + 1.0), nl.cos(x * 100.0), nl.sin(x * 1e4), nl.cos(x - 1.5707964)], axis=1)
    return _compile(f, (1, 3))


def net_binary():
    def f(x):
        a, b = x[:, :3], x[:, 3:]
        return nl.concat([
            a * b, a + b, a - b, nl.maximum(a, b), nl.minimum(a, b), a / b,
            a / (b * b + 1.0), a / 3.0, a / -0.7, 2.0 / (nl.abs(b) + 0.5), a * a, x - x, b / b,
            nl.maximum(a, 0.25), nl.minimum(b, -0.0), a * -1e-3, (a + 1e30) * 1e10, a / 1e-39,
        ], axis=1)
    return _compile(f, (1, 6))


def net_two_inputs():
    def f(x, y):
        return x * y, x / y, nl.maximum(x, y) - nl.minimum(x, y), nl.linear(x, np.ones((2, 3), F32)) * y[:, :2]
    return _compile(f, (1, 3), (1, 3))


class ConvNet(nn.Module):
    """conv2d (stride, padding, dilation, asymmetric pads), residual add, batch norm, avg pools
    with and without count_include_pad, padded max pool, flatten, linear."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(3)
        self.c1 = nn.Conv2d(2, 3, 3, stride=1, padding=1, seed=11)
        self.c2 = nn.Conv2d(3, 2, 3, stride=1, padding=2, dilation=2, seed=12)
        self.c3 = nn.Conv2d(2, 3, 3, stride=2, padding=1, seed=13)
        self.w4 = nn.Parameter(rng.normal(size=(2, 2, 2, 3)))
        self.bn = nn.BatchNorm2d(2)
        self.bn.load_state_dict({"weight": rng.normal(size=2), "bias": rng.normal(size=2),
                                 "running_mean": rng.normal(size=2) * 0.1,
                                 "running_var": rng.uniform(0.05, 2.0, size=2)})
        self.fc = nn.Linear(3 * 3 * 3 + 2 * 5 * 5 + 2 * 3 * 3 + 2 * 6 * 6 + 2 * 3 * 3, 2, seed=14)

    def forward(self, x):
        h = self.c2(nl.relu(self.c1(x)))
        y = self.bn(x + h)                                                 # residual + batch norm
        a = self.c3(y)                                                     # stride 2, pad 1
        p1 = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True)(y)
        p2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)(y)
        p3 = nn.MaxPool2d(2, stride=1, padding=1)(y)
        p4 = nl.bind("conv2d", y, self.w4, stride=(2, 1), pads=(1, 0, 0, 2), dilation=(1, 2))
        flat = nl.concat([nn.Flatten()(t) for t in (a, p1, p2, p3, p4)], axis=1)
        return self.fc(flat)


def net_conv():
    return _compile(ConvNet(), (1, 2, 5, 5))


def net_conv_pwl():
    """A piecewise-linear conv net (no batch norm): for the degenerate-box bit test."""
    def f(x):
        h = nl.relu(nn.Conv2d(1, 2, 3, stride=2, padding=1, seed=21)(x))
        h = nn.MaxPool2d(2, stride=1, padding=1)(h)
        h = nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False)(h)
        return nn.Linear(2 * 5 * 5, 3, seed=22)(nn.Flatten()(h))
    return _compile(f, (1, 1, 5, 5))


def net_movement():
    def f(x):  # x: [1, 2, 3, 4]
        t = nl.transpose(x, (0, 2, 3, 1))                    # [1, 3, 4, 2]
        r = nl.reshape(t, (0, -1))                           # [1, 24]
        s = x[:, 1:, ::2, 1]                                 # [1, 1, 2]
        s2 = x[:, 0, 1:3]                                    # [1, 2, 4]
        return nl.concat([
            nl.sum(x, axis=(1,)).reshape(0, -1), nl.sum(x, axis=(2, 3), keepdims=True).reshape(0, -1),
            nl.mean(x, axis=(1, 3)).reshape(0, -1), nl.mean(r, axis=1, keepdims=True), nl.sum(r, axis=-1, keepdims=True),
            nl.reshape(s, (0, -1)), nl.reshape(s2, (0, -1)), r * 2.0,
            nl.reshape(nl.concat([nl.reshape(x[:, 1], (0, 1, 3, 4)), nl.reshape(x[:, 0], (0, 1, -1, 4))], axis=1), (0, -1)),
        ], axis=1)
    return _compile(f, (1, 2, 3, 4))


def net_residual_mlp():
    l1, l2 = nn.Linear(5, 7, seed=31), nn.Linear(7, 5, seed=32)

    def f(x):
        return x + l2(nl.relu(l1(x)))
    return _compile(f, (1, 5))


def net_matmul_bn1d():
    w = np.random.default_rng(41).normal(size=(4, 3)).astype(F32)
    bn = nn.BatchNorm1d(3, eps=1e-3)
    rng = np.random.default_rng(42)
    bn.load_state_dict({"weight": rng.normal(size=3), "bias": rng.normal(size=3),
                        "running_mean": rng.normal(size=3), "running_var": np.array([1e-4, 1.0, 30.0])})

    def f(x):
        return bn(x @ w)
    return _compile(f, (1, 4))


def net_special_weights():
    """Weights with inf, NaN, huge, tiny and signed-zero entries."""
    w = np.array([[np.inf, 1.0, 0.0], [1e38, -1e38, 1.0], [1e-45, -0.0, 2.0], [np.nan, 0.0, 0.0]], F32)

    def f(x):
        return nl.linear(x, w, np.array([0.0, -0.0, np.inf, 1.0], F32))
    return _compile(f, (1, 3))


NETS = {
    "mlp_relu": net_mlp_relu, "mlp_smooth": net_mlp_smooth, "zoo": net_elementwise_zoo, "trig": net_trig,
    "binary": net_binary, "conv": net_conv, "conv_pwl": net_conv_pwl, "movement": net_movement,
    "residual": net_residual_mlp, "matmul_bn1d": net_matmul_bn1d, "special_weights": net_special_weights,
}
PWL_NETS = ["mlp_relu", "conv_pwl", "movement", "residual"]
_CACHE: dict = {}


def get_net(name):
    if name not in _CACHE:
        _CACHE[name] = NETS[name]()
    return _CACHE[name]


# ---------------------------------------------------------------------------------------------
# boxes


def _sorted(a, b):
    a, b = np.asarray(a, F32), np.asarray(b, F32)
    return np.minimum(a, b).astype(F32), np.maximum(a, b).astype(F32)


def make_box(kind: str, shape, rng):
    """lo, hi (float32, ``shape``) of one box family."""
    n = int(np.prod(shape))

    def r(scale, center=0.0):
        c = center + rng.normal(size=n) * scale
        return c

    if kind == "random":
        c, w = r(1.0), rng.uniform(0, 1.0, n)
        lo, hi = _sorted(c - w, c + w)
    elif kind == "narrow":
        c = r(1.0)
        lo, hi = _sorted(c - 1e-3, c + 1e-3)
    elif kind == "degenerate":
        lo = hi = r(1.0).astype(F32)
    elif kind == "straddle0":
        lo, hi = -rng.uniform(0.01, 2, n), rng.uniform(0.01, 2, n)
    elif kind == "touch0":
        lo, hi = np.zeros(n), rng.uniform(0.01, 2, n)
    elif kind == "touch_neg0":
        lo, hi = -rng.uniform(0.01, 2, n), np.full(n, -0.0)
    elif kind == "zeros":
        lo, hi = np.full(n, -0.0), np.full(n, 0.0)
    elif kind == "neg0_point":
        lo = hi = np.full(n, -0.0)
    elif kind == "pos0_point":
        lo = hi = np.full(n, 0.0)
    elif kind == "zeros_rev":  # lo = +0, hi = -0: the box is {-0, +0} as well
        lo, hi = np.full(n, 0.0), np.full(n, -0.0)
    elif kind == "pos_inf_point":
        lo = hi = np.full(n, np.inf)
    elif kind == "neg_inf_point":
        lo = hi = np.full(n, -np.inf)
    elif kind == "tiny":
        lo, hi = _sorted(rng.normal(size=n) * 1e-40, rng.normal(size=n) * 1e-40)
    elif kind == "subnormal_pos":
        lo, hi = np.full(n, TINY), np.full(n, 2e-38)
    elif kind == "huge":
        lo, hi = _sorted(rng.uniform(1e29, 1e30, n), rng.uniform(1e30, 1e31, n))
    elif kind == "huge_mixed":
        lo, hi = -rng.uniform(1e30, 3e38, n), rng.uniform(1e30, 3e38, n)
    elif kind == "near_max":
        lo, hi = np.full(n, np.nextafter(MAX, F32(0))), np.full(n, MAX)
    elif kind == "full_finite":
        lo, hi = np.full(n, -MAX), np.full(n, MAX)
    elif kind == "with_inf":
        lo, hi = np.full(n, 1.0), np.full(n, np.inf)
    elif kind == "everything":
        lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    else:
        raise ValueError(kind)
    return np.asarray(lo, F32).reshape(shape), np.asarray(hi, F32).reshape(shape)


BOX_KINDS = ["random", "narrow", "degenerate", "straddle0", "touch0", "touch_neg0", "zeros", "neg0_point",
             "pos0_point", "zeros_rev", "pos_inf_point", "neg_inf_point", "tiny", "subnormal_pos", "huge", "huge_mixed", "near_max", "full_finite", "with_inf",
             "everything"]


def _boxes_for(graph, kind, seed):
    rng = np.random.default_rng(seed)
    bx = [make_box(kind, v.shape, rng) for v in graph.inputs]
    lo = [b[0] for b in bx]
    hi = [b[1] for b in bx]
    return (lo[0], hi[0]) if len(bx) == 1 else (lo, hi)


# ---------------------------------------------------------------------------------------------
# tests: coverage of the op table


def test_catalog_covers_every_op_with_an_ibp_rule():
    used = set()
    for name in NETS:
        used |= set(get_net(name).ops_used())
    used |= set(_compile(lambda x: nl.bind("matmul", x, np.ones((2, 2), F32)), (1, 2)).ops_used())
    ruled = set(IBP_RULES["float32"]) & set(OPS)
    missing = ruled - used
    assert not missing, f"ops with an IBP rule not exercised by the float32 catalog: {sorted(missing)}"
    assert set(IBP_RULES["float32"]) == set(IBP_RULES["real"])


def test_batched_kernel_matches_single_runs():
    """The harness evaluates S samples in one batched run; per-sample runs give the same bits."""
    for name in ("mlp_relu", "conv", "movement", "zoo", "binary"):
        g = get_net(name)
        lo, hi = _boxes_for(g, "straddle0", 1)
        samples = joint_samples(_as_list(lo), _as_list(hi), np.random.default_rng(0), n_random=4)
        env = kernel_env(g, samples)
        for row in (0, 3, samples[0].shape[0] - 1):
            single = interpret(g, KERNEL_RULES, [s[row:row + 1] for s in samples])
            for vid, v in single.items():
                want = v if vid in {p.value.id for p in g.params} else env[vid][row:row + 1]
                want = np.asarray(want, F32)
                assert v.shape == want.shape and np.array_equal(v.view(np.uint32), want.view(np.uint32)), (name, vid)


# ---------------------------------------------------------------------------------------------
# tests: soundness on the catalog, every box family


@pytest.mark.parametrize("kind", BOX_KINDS)
@pytest.mark.parametrize("name", sorted(NETS))
def test_sound_on_catalog(name, kind):
    g = get_net(name)
    lo, hi = _boxes_for(g, kind, seed=hash((name, kind)) % 2**32)
    check_f32(g, lo, hi, seed=7, n_random=64)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", ["mlp_relu", "mlp_smooth", "binary", "trig", "zoo", "two_in"])
def test_sound_random_boxes(name, seed):
    g = net_two_inputs() if name == "two_in" else get_net(name)
    rng = np.random.default_rng(1000 + seed)
    scale = [1e-3, 0.1, 1.0, 10.0, 100.0, 1e4][seed]
    lo, hi = [], []
    for v in g.inputs:
        c = rng.normal(size=v.shape) * scale
        w = rng.exponential(scale, size=v.shape)
        l, h = _sorted(c - w, c + w)
        lo.append(l)
        hi.append(h)
    if len(lo) == 1:
        lo, hi = lo[0], hi[0]
    check_f32(g, lo, hi, seed=seed, n_random=96)


def test_two_input_graph_with_zero_crossing_divisor():
    g = net_two_inputs()
    lo = [np.array([[-1, 2, 0.5]], F32), np.array([[-2, 0.25, -0.0]], F32)]
    hi = [np.array([[1, 3, 0.5]], F32), np.array([[3, 0.5, 0.0]], F32)]
    res, _ = check_f32(g, lo, hi)
    out = res.outputs[1]  # x / y: y straddles / touches 0 -> unbounded, NaN possible
    assert out.nan[0, 0] and out.lo[0, 0] == -np.inf and out.hi[0, 0] == np.inf


# ---------------------------------------------------------------------------------------------
# degenerate boxes: for piecewise-linear nets the bounds are attained, bit for bit


def _zero_canon(a):
    a = np.array(a, F32, copy=True)
    a[a == 0] = F32(0.0)
    return a.view(np.uint32)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", PWL_NETS)
def test_degenerate_box_is_attained_bitwise(name, seed):
    """lo == hi: every node's interval is the single kernel value, bit for bit (zeros compared as
    values: an interval endpoint -0 and a kernel +0 denote the same IEEE interval)."""
    g = get_net(name)
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=g.inputs[0].shape) * [1.0, 1e-30, 1e30][seed]).astype(F32)
    res = ibp(g, x, x, "float32")
    env = interpret(g, KERNEL_RULES, [x])
    for vid, v in env.items():
        iv = res.env[vid]
        nan = np.isnan(v)
        assert np.array_equal(np.broadcast_to(iv.nan, v.shape) | nan, np.broadcast_to(iv.nan, v.shape)), vid
        fin = ~nan
        assert np.array_equal(_zero_canon(iv.lo[fin]), _zero_canon(v[fin])), (vid, iv.lo, v)
        assert np.array_equal(_zero_canon(iv.hi[fin]), _zero_canon(v[fin])), (vid, iv.hi, v)


def test_degenerate_box_report_for_non_pwl_nets():
    """Report (do not assert): on degenerate boxes at random points, how many node elements of the
    non-piecewise-linear nets get the single kernel value as their interval."""
    rows = []
    for name in ("mlp_smooth", "zoo", "trig", "binary", "conv", "matmul_bn1d"):
        g = get_net(name)
        rng = np.random.default_rng(0)
        tot = exact = 0
        for _ in range(5):
            xs = [rng.normal(size=v.shape).astype(F32) for v in g.inputs]
            res = ibp(g, xs[0] if len(xs) == 1 else xs, xs[0] if len(xs) == 1 else xs, "float32")
            env = interpret(g, KERNEL_RULES, xs)
            for e in g.equations:
                iv, v = res.env[e.out.id], env[e.out.id]
                fin = ~np.isnan(v)
                tot += int(fin.sum())
                exact += int(((iv.lo == v) & (iv.hi == v))[fin].sum())
        rows.append(f"{name:12s} {exact}/{tot} node elements are the point interval of the kernel value")
    print("\ndegenerate boxes, non-PWL nets:\n  " + "\n  ".join(rows))


def test_degenerate_box_zero_signs_report():
    """Report (do not assert) where a degenerate interval's endpoint carries the other zero sign
    than the kernel value -- harmless for the IEEE-comparison semantics, but not bit-identical."""
    g = get_net("zoo")
    rows = []
    for z in (F32(-0.0), F32(0.0)):
        x = np.full(g.inputs[0].shape, z, F32)
        res = ibp(g, x, x, "float32")
        env = interpret(g, KERNEL_RULES, [x])
        for e in g.equations:
            v, iv = env[e.out.id], res.env[e.out.id]
            diff = (v == 0) & ((np.signbit(v) != np.signbit(iv.lo)) | (np.signbit(v) != np.signbit(iv.hi)))
            if diff.any():
                i = tuple(int(k) for k in np.argwhere(diff)[0])
                rows.append(f"%{e.out.id} = {e.op}(...) at x = {float(z)!r}, element {i}: kernel {float(v[i])!r}, "
                            f"interval [{float(iv.lo[i])!r}, {float(iv.hi[i])!r}]")
    print("\nzero-sign differences on degenerate boxes:\n  " + "\n  ".join(rows or ["none"]))


@pytest.mark.parametrize("name", sorted(NETS))
def test_degenerate_box_smooth_nets_contain_point(name):
    """Every net (also the non-PWL ones) on a few degenerate boxes, including both zeros."""
    g = get_net(name)
    rng = np.random.default_rng(5)
    for scale in (0.5, 3.0, 1e-38, 1e38):
        x = (rng.normal(size=g.inputs[0].shape) * scale).astype(F32)
        xs = [x] if len(g.inputs) == 1 else [x for _ in g.inputs]
        check_f32(g, xs[0] if len(xs) == 1 else xs, xs[0] if len(xs) == 1 else xs, n_random=2)


# ---------------------------------------------------------------------------------------------
# targeted edge cases


EDGE_UNARY = ["exp", "sin", "cos", "sqrt", "square", "abs", "neg", "relu", "tanh", "sigmoid", "identity"]


def _unary_graph(op, n, **attrs):
    b = Builder()
    x = b.input((1, n), "x")
    return b.build([b.eqn(op, [x], attrs)])


EDGE_POINTS = np.array([
    0.0, -0.0, TINY, -TINY, 1e-38, -1e-38, 1e-20, 0.5, -0.5, 1.0, -1.0, 1.5707963, 1.5707964, -1.5707964,
    3.1415925, 3.1415927, 6.2831855, 10.0, -10.0, 88.72283, 88.72284, -87.33654, -103.97208, -103.97209,
    -104.0, 1e5, -1e5, 131071.99, 131072.0, 131072.02, 1e30, -1e30, MAX, -MAX, np.inf, -np.inf,
], F32)


@pytest.mark.parametrize("op", EDGE_UNARY + ["leaky_relu", "clamp", "clamp_neg0"])
def test_unary_edge_intervals(op):
    """Every unary op on intervals between all pairs of special points (corners, ulp neighbours,
    both zeros, overflow/underflow thresholds, the trig fast-path limit 2^17, ±inf)."""
    attrs = {"leaky_relu": {"alpha": 0.3}, "clamp": {"lo": -1.0, "hi": 2.0}, "clamp_neg0": {"lo": -0.0, "hi": 0.0}}
    name = "clamp" if op.startswith("clamp") else op
    p = np.unique(EDGE_POINTS)
    lo, hi = np.meshgrid(p, p, indexing="ij")
    keep = lo <= hi
    lo, hi = lo[keep].astype(F32), hi[keep].astype(F32)
    g = _unary_graph(name, lo.size, **attrs.get(op, {}))
    extra = [np.concatenate([EDGE_POINTS, np.nextafter(EDGE_POINTS, F32(0))])[:, None] * np.ones((1, lo.size), F32)]
    extra = [np.where((extra[0] >= lo) & (extra[0] <= hi), extra[0], lo)]
    check_f32(g, lo[None], hi[None], extra=extra, n_random=64)


def test_trig_near_critical_points():
    """sin/cos on narrow intervals around (and one ulp beside) their maxima/minima kπ/2, for |k|
    up to the 2^17 limit, and wide intervals spanning several periods."""
    ks = np.array([0, 1, -1, 2, 3, -5, 7, 100, 1001, -4097, 41721, 83443], np.float64)
    c = (ks * np.pi / 2).astype(F32)
    cols_lo, cols_hi = [], []
    for d in (0, 1, 2, 8, 1000):
        for side in (-1, 0, 1):
            l, h = c.copy(), c.copy()
            for _ in range(d):
                l = np.nextafter(l, F32(-np.inf))
                h = np.nextafter(h, F32(np.inf))
            if side < 0:
                h = c
            elif side > 0:
                l = c
            cols_lo.append(l)
            cols_hi.append(h)
    lo = np.concatenate(cols_lo)[None].astype(F32)
    hi = np.concatenate(cols_hi)[None].astype(F32)
    for op in ("sin", "cos"):
        g = _unary_graph(op, lo.shape[1])
        check_f32(g, lo, hi, n_random=64)
    wide_lo = np.array([[-10, 0, 1, 3, -1e3, 1e5, 131000, -7]], F32)
    wide_hi = np.array([[10, 3.2, 1.6, 3.3, 1e3, 1e5 + 7, 132000, -1.5]], F32)
    for op in ("sin", "cos"):
        check_f32(_unary_graph(op, wide_lo.shape[1]), wide_lo, wide_hi, n_random=256)


def test_overflow_in_fold_is_sound():
    """Products and partial sums that overflow to ±inf inside a fold, and inf - inf = NaN."""
    w = np.array([[MAX, MAX, -MAX, 1.0], [2.0, -2.0, 1.0, 1e-45]], F32)
    b = np.array([MAX, -MAX], F32)
    g = _compile(lambda x: nl.linear(x, w, b), (1, 4))
    for lo, hi in [([1, 1, 1, 1], [2, 2, 2, 2]), ([-1, 0.5, 1, -MAX], [1, 1, 1, MAX]),
                   ([MAX, MAX, 0, 0], [MAX, MAX, 0, 0]), ([-1e-45, 0, 1e-45, 1], [1e-45, 0, 1e-45, 1])]:
        check_f32(g, np.array([lo], F32), np.array([hi], F32))


def test_subnormal_gradual_underflow():
    g = _compile(lambda x: nl.linear(x, np.array([[0.5, 0.5, 1e-7], [3.0, -1.0, 1.0]], F32)) * 0.5, (1, 3))
    lo = np.array([[TINY, -3 * TINY, 1e-45]], F32)
    hi = np.array([[5 * TINY, 3 * TINY, 1e-38]], F32)
    check_f32(g, lo, hi, n_random=200)


def test_pooling_with_infinite_inputs():
    def f(x):
        return (nn.MaxPool2d(2, stride=1, padding=1)(x), nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False)(x),
                nl.mean(x, axis=(2, 3)), nl.sum(x, axis=(1,)))
    g = _compile(f, (1, 1, 3, 3))
    lo = np.full((1, 1, 3, 3), -np.inf, F32)
    hi = np.full((1, 1, 3, 3), np.inf, F32)
    lo[0, 0, 1, 1] = hi[0, 0, 1, 1] = 1.0
    check_f32(g, lo, hi)
    check_f32(g, np.full((1, 1, 3, 3), MAX / 2, F32), np.full((1, 1, 3, 3), MAX, F32))


# ---------------------------------------------------------------------------------------------
# hypothesis: random small nets and boxes


_UNARY = ["relu", "leaky_relu", "tanh", "sigmoid", "exp", "sin", "cos", "sqrt", "square", "abs", "neg", "clamp",
          "identity"]
_BINARY = ["add", "sub", "mul", "div", "maximum", "minimum"]


@st.composite
def random_net(draw):
    d = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    b = Builder()
    x = b.input((1, d), "x")
    cur, width = x, d
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["linear", "unary", "unary", "binary", "const"]))
        if kind == "linear":
            out = draw(st.integers(1, 5))
            scale = draw(st.sampled_from([1.0, 1.0, 0.01, 100.0, 1e-20, 1e20]))
            w = rng.normal(size=(out, width)) * scale
            if draw(st.booleans()):
                w[rng.random(w.shape) < 0.2] = 0.0
            bias = b.param(rng.normal(size=out) * scale)
            cur = b.eqn("linear", [cur, b.param(w)] + ([bias] if draw(st.booleans()) else []))
            width = out
        elif kind == "unary":
            op = draw(st.sampled_from(_UNARY))
            attrs = {"leaky_relu": {"alpha": draw(st.sampled_from([0.01, 0.5, 1.0]))},
                     "clamp": {"lo": -0.5, "hi": draw(st.sampled_from([0.0, -0.0, 0.5, np.inf]))}}.get(op, {})
            cur = b.eqn(op, [cur], attrs)
        elif kind == "binary" and width >= 2:
            op = draw(st.sampled_from(_BINARY))
            h = width // 2
            lhs = b.eqn("slice", [cur], {"index": ((None, None, None), (0, h, None))})
            rhs = b.eqn("slice", [cur], {"index": ((None, None, None), (width - h, width, None))})
            cur = b.eqn(op, [lhs, rhs])
            width = h
        else:
            op = draw(st.sampled_from(_BINARY))
            c = b.param(draw(st.sampled_from([2.0, -0.5, 0.0, -0.0, 1e-30, 3e38, 0.1])))
            cur = b.eqn(op, [cur, c] if draw(st.booleans()) else [c, cur])
    return b.build([cur]), d


_f32s = st.floats(width=32, allow_nan=False, allow_infinity=True, allow_subnormal=True)
_f32_small = st.floats(min_value=-4.0, max_value=4.0, width=32, allow_subnormal=True)


@st.composite
def random_box(draw, d):
    src = draw(st.sampled_from(["any", "small", "small", "point", "around0"]))
    if src == "any":
        a, b = draw(st.lists(_f32s, min_size=d, max_size=d)), draw(st.lists(_f32s, min_size=d, max_size=d))
    elif src == "small":
        a, b = draw(st.lists(_f32_small, min_size=d, max_size=d)), draw(st.lists(_f32_small, min_size=d, max_size=d))
    elif src == "point":
        a = draw(st.lists(st.one_of(_f32_small, _f32s), min_size=d, max_size=d))
        b = a
    else:
        a = [-abs(v) for v in draw(st.lists(_f32_small, min_size=d, max_size=d))]
        b = [abs(v) for v in draw(st.lists(_f32_small, min_size=d, max_size=d))]
    lo, hi = _sorted(np.array(a, F32), np.array(b, F32))
    if src == "point":
        hi = lo
    return lo[None], hi[None]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_hypothesis_random_nets(data):
    g, d = data.draw(random_net())
    lo, hi = data.draw(random_box(d))
    check_f32(g, lo, hi, seed=data.draw(st.integers(0, 1000)), n_random=24)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_random_nets_slow(data):
    g, d = data.draw(random_net())
    lo, hi = data.draw(random_box(d))
    check_f32(g, lo, hi, seed=data.draw(st.integers(0, 1000)), n_random=64)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("name", sorted(NETS))
def test_sound_on_catalog_many_seeds(name, seed):
    g = get_net(name)
    kind = BOX_KINDS[seed % len(BOX_KINDS)]
    lo, hi = _boxes_for(g, kind, seed=seed)
    check_f32(g, lo, hi, seed=seed, n_random=256)


# ---------------------------------------------------------------------------------------------
# unknown ops and bad boxes


def test_missing_rule_gives_unknown_naming_the_op():
    g = get_net("mlp_smooth")
    rules = {k: v for k, v in IBP_RULES["float32"].items() if k != "tanh"}
    res = ibp(g, np.zeros((1, 3), F32), np.ones((1, 3), F32), "float32", rules=rules)
    assert res.status == "unknown"
    assert "tanh" in res.reason and "float32" in res.reason
    assert res.env == {}
    rules_r = {k: v for k, v in IBP_RULES["real"].items() if k not in ("sigmoid", "linear")}
    res = ibp(g, np.zeros((1, 3)), np.ones((1, 3)), "real", rules=rules_r)
    assert res.status == "unknown" and "sigmoid" in res.reason and "linear" in res.reason


@pytest.mark.parametrize("semantics", ["float32", "real"])
def test_bad_boxes_raise_input_error(semantics):
    g = get_net("mlp_relu")
    lo, hi = np.zeros((1, 4), F32), np.ones((1, 4), F32)
    bad = [
        (np.array([[0, np.nan, 0, 0]], F32), hi),
        (lo, np.array([[1, 1, np.nan, 1]], F32)),
        (np.array([[0, 2, 0, 0]], F32), hi),          # lo > hi
        (np.zeros((1, 5), F32), np.ones((1, 5), F32)),  # wrong shape
        (np.zeros((4,), F32), np.ones((4,), F32)),      # wrong rank
        (lo, np.ones((2, 4), F32)),
        ([lo, lo], [hi, hi]),                           # wrong number of inputs
    ]
    for l, h in bad:
        with pytest.raises(InputError):
            ibp(g, l, h, semantics)
    with pytest.raises(InputError):
        ibp(g, lo, hi, "float64")


def _f32_points_of(q: float, up: bool):
    """The float32 value nearest to q inside [q, inf] (up) or [-inf, q] (down), exactly."""
    from fractions import Fraction
    if abs(q) > float(MAX):
        return F32(np.inf if q > 0 else -np.inf) if up == (q > 0) else F32(MAX if q > 0 else -MAX)
    f = np.float32(q)
    if not np.isfinite(f):
        f = F32(MAX if q > 0 else -MAX)
    if up and Fraction(float(f)) < Fraction(q):
        f = np.nextafter(f, F32(np.inf))
    if not up and Fraction(float(f)) > Fraction(q):
        f = np.nextafter(f, F32(-np.inf))
    return f


@pytest.mark.parametrize("lo_v, hi_v", [(0.1, 1.0), (0.0, 1 - 1e-12), (-1e39, 1.0), (0.0, 1e300), (-1 / 3, 1 / 3),
                                        (0.1, 0.1 + 1e-17)])
def test_non_float32_bounds_for_float32(lo_v, hi_v):
    """float64 bounds that are not float32 values: either rejected (InputError), or the box used
    must still hold every float32 point of the requested box (rounding inward is fine, since no
    float32 value lies between a bound and its inward float32 neighbour)."""
    g = get_net("mlp_relu")
    lo, hi = np.full((1, 4), lo_v, np.float64), np.full((1, 4), hi_v, np.float64)
    try:
        res = ibp(g, lo, hi, "float32")
    except InputError:
        return
    first, last = _f32_points_of(lo_v, up=True), _f32_points_of(hi_v, up=False)
    box = res.env[g.inputs[0].id]
    assert np.all(box.lo <= first) and np.all(box.hi >= last), (box.lo, box.hi, first, last)
    if first <= last:  # sample the float32 points of the requested box (incl. its extreme ones)
        check_f32(g, np.full((1, 4), first, F32), np.full((1, 4), last, F32))
        for vid in res.env:  # the same intervals as for the float32 box it denotes
            ref = ibp(g, np.full((1, 4), first, F32), np.full((1, 4), last, F32), "float32").env[vid]
            assert np.all(res.env[vid].lo <= ref.lo) and np.all(res.env[vid].hi >= ref.hi)


def test_float64_bounds_that_are_float32_values_are_accepted():
    g = get_net("mlp_relu")
    lo, hi = np.full((1, 4), 0.5), np.ones((1, 4))
    a = ibp(g, lo, hi, "float32")
    b = ibp(g, lo.astype(F32), hi.astype(F32), "float32")
    assert a.status == b.status == "ok"
    for vid in a.env:
        assert np.array_equal(a.env[vid].lo, b.env[vid].lo) and np.array_equal(a.env[vid].hi, b.env[vid].hi)
    # the same non-float32 box is fine for the real semantics
    assert ibp(g, lo + 0.1, hi, "real").status == "ok"


def test_float64_infinite_bounds_accepted_for_float32():
    g = get_net("mlp_relu")
    res = ibp(g, np.full((1, 4), -np.inf), np.full((1, 4), np.inf), "float32")
    assert res.status == "ok"


# ---------------------------------------------------------------------------------------------
# tightness report (printed, never asserted)


def test_tightness_report():
    rows = []
    cases = [("mlp_relu", "narrow"), ("mlp_relu", "random"), ("mlp_smooth", "random"), ("conv", "narrow"),
             ("conv", "random"), ("residual", "random"), ("binary", "straddle0"), ("matmul_bn1d", "random")]
    for name, kind in cases:
        g = get_net(name)
        lo, hi = _boxes_for(g, kind, seed=3)
        res, env = check_f32(g, lo, hi, seed=3, n_random=512)
        for vid in g.outputs:
            v, iv = env[vid], res.env[vid]
            fin = np.isfinite(v).all(axis=0)
            with np.errstate(all="ignore"):
                ibp_w = (iv.hi.astype(np.float64) - iv.lo.astype(np.float64))[0]
                smp_w = (np.nanmax(v, axis=0).astype(np.float64) - np.nanmin(v, axis=0).astype(np.float64))
                ratio = np.where(fin & (smp_w > 0), ibp_w / np.where(smp_w > 0, smp_w, 1), np.nan)
            rows.append(f"{name:12s} {kind:10s} %{vid:<4d} ibp width median {np.median(ibp_w):10.4g} "
                        f"sample width median {np.median(smp_w):10.4g}  ratio median {np.nanmedian(ratio) if np.isfinite(ratio).any() else float('nan'):8.3g} "
                        f"max {np.nanmax(ratio) if np.isfinite(ratio).any() else float('nan'):8.3g}")
    print("\nfloat32 IBP width vs kernel sample range (>= 1 by soundness; sampled range is only a lower "
          "bound of the true range):\n  " + "\n  ".join(rows))


# ---------------------------------------------------------------------------------------------
# the premise of the transcendental rules: the kernel is monotone (correctly rounded) -- checked on
# runs of consecutive float32 values at the delicate places


_RUN_STARTS = {
    "exp": [88.72276, 88.7228, -87.3365, -103.2789, -103.97, -104.0, -0.0001, 1e-8, 15.9424, 0.6931],
    "tanh": [-1e-5, 4e-4, 0.5493, 9.0109, 8.6643, -9.0109, 1e-38, 0.0, 17.3287, 0.7],
    "sigmoid": [-88.7228, -103.2789, -87.3365, -16.6355, 16.6355, 17.3287, -1e-5, 0.0, 5.0, -104.0],
    "sin": [1.5707950, 3.1415911, 4.7123871, 0.0, 102943.7, 131071.98, -131071.99, 3.1415911e4, 0.5, 6.2831835],
    "cos": [1.5707950, 3.1415911, -1e-5, 0.0, 102943.7, 131071.98, 6.2831835, 2.0, 355.0, 1e5],
}


@pytest.mark.parametrize("op", sorted(_RUN_STARTS))
def test_transcendental_runs_of_consecutive_floats(op):
    """Each element's box spans 256 consecutive float32 values; every one of them is sampled."""
    starts = np.array(_RUN_STARTS[op], F32)
    steps = 256
    run = [starts]
    for _ in range(steps):
        run.append(np.nextafter(run[-1], F32(np.inf)))
    run = np.stack(run)                        # [steps + 1, m]
    g = _unary_graph(op, starts.size)
    check_f32(g, run[0][None], run[-1][None], extra=[run[:, None, :]], n_random=8)


# ---------------------------------------------------------------------------------------------
# the harness itself: deliberately unsound rule tables must be caught


def _mutant(name, make):
    rules = dict(IBP_RULES["float32"])
    rules[name] = make(rules[name])
    return rules


def _shrink_lo(rule):
    def r(*a, **k):
        iv = rule(*a, **k)
        return type(iv)(np.nextafter(iv.lo, F32(np.inf)), iv.hi, iv.nan)
    return r


def _f64_linear(rule):
    """Linear with the exact real range rounded to nearest (not the kernel's fold): off by ulps."""
    def r(x, w, b=None):
        from nnlemma.bounds import Interval
        W = w.lo.astype(np.float64)
        lo64, hi64 = x.lo.astype(np.float64), x.hi.astype(np.float64)
        lo = np.where(W >= 0, lo64[..., None, :], hi64[..., None, :]) * W
        hi = np.where(W >= 0, hi64[..., None, :], lo64[..., None, :]) * W
        lo, hi = lo.sum(-1), hi.sum(-1)
        if b is not None:
            lo, hi = lo + b.lo, hi + b.hi
        return Interval.make(lo.astype(F32), hi.astype(F32), False)
    return r


def _no_critical_points(rule):
    def r(a):
        from nnlemma.bounds import Interval
        k = KERNEL_RULES["sin"]
        lo, hi = k(a.lo), k(a.hi)
        return Interval.make(np.minimum(lo, hi), np.maximum(lo, hi), a.nan)
    return r


def _div_ignoring_zero(rule):
    def r(a, b):
        from nnlemma.bounds import Interval
        with np.errstate(all="ignore"):
            c = [a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi]
        return Interval.make(np.minimum.reduce(c), np.maximum.reduce(c), a.nan | b.nan)
    return r


def _mul_two_corners(rule):
    def r(a, b):
        from nnlemma.bounds import Interval
        c = [a.lo * b.lo, a.hi * b.hi]
        return Interval.make(np.minimum(*c), np.maximum(*c), a.nan | b.nan)
    return r


def _nan_blind_add(rule):
    def r(a, b):
        iv = rule(a, b)
        return type(iv)(iv.lo, iv.hi, np.zeros(iv.lo.shape, bool))
    return r


@pytest.mark.parametrize("op, make, net, kinds", [
    ("relu", _shrink_lo, "mlp_relu", ["random", "degenerate"]),
    ("linear", _f64_linear, "mlp_relu", ["random", "narrow", "straddle0", "huge_mixed"]),
    ("sin", _no_critical_points, "trig", ["random", "straddle0"]),
    ("div", _div_ignoring_zero, "binary", ["straddle0"]),
    ("mul", _mul_two_corners, "binary", ["straddle0", "random"]),
    ("add", _nan_blind_add, "binary", ["everything", "with_inf"]),
])
def test_harness_catches_unsound_rules(op, make, net, kinds):
    g = get_net(net)
    rules = _mutant(op, make)
    caught = False
    for kind in kinds:
        lo, hi = _boxes_for(g, kind, seed=11)
        try:
            check_f32(g, lo, hi, seed=1, rules=rules, n_random=32)
        except AssertionError as exc:
            assert "UNSOUND" in str(exc)
            caught = True
            break
    assert caught, f"the harness did not notice the unsound {op} rule"


# ---------------------------------------------------------------------------------------------
# graphs without a batch axis: interval right operands of matmul, rank-0/1 values, broadcasting


def net_unbatched():
    b = Builder()
    x = b.input((6,), "x")
    a = b.eqn("reshape", [b.eqn("slice", [x], {"index": ((0, 4, None),)})], {"shape": (2, 2)})
    m = b.eqn("reshape", [b.eqn("slice", [x], {"index": ((2, 6, None),)})], {"shape": (2, 2)})
    mm = b.eqn("matmul", [a, m])                                   # interval x interval matmul
    mt = b.eqn("matmul", [b.eqn("transpose", [a], {"perm": (1, 0)}), b.eqn("neg", [m])])
    w3 = b.param(np.random.default_rng(1).normal(size=(3, 2, 2)))
    r3 = b.eqn("matmul", [b.eqn("mul", [w3, a]), mm])              # rank-3 lhs, broadcast mul
    lin1 = b.eqn("linear", [x, b.param(np.random.default_rng(2).normal(size=(3, 6))),
                            b.param(np.array([0.5, -0.5, 1e30]))])  # rank-1 linear
    tot = b.eqn("sum", [x], {"axes": (0,)})                         # rank-0 result
    avg = b.eqn("mean", [mm], {"axes": (0, 1), "keepdims": 1})
    bc = b.eqn("add", [b.param(np.arange(6.0).reshape(2, 3)), b.eqn("slice", [lin1], {"index": ()})])
    bc2 = b.eqn("maximum", [bc, b.eqn("reshape", [tot], {"shape": (1, 1)})])
    bc3 = b.eqn("div", [tot, b.eqn("exp", [lin1])])
    sq = b.eqn("sqrt", [b.eqn("sub", [tot, b.param(1.0)])])
    r3w = b.eqn("matmul", [r3, b.param(np.array([[1.5, -2.0], [0.25, 3.0]]))])  # rank-3 lhs, point rhs
    r3l = b.eqn("linear", [r3w, b.param(np.array([[1.0, -1.0], [1e-3, 7.0], [0.0, -0.0]]))])
    return b.build([mm, mt, r3, avg, bc2, bc3, sq, r3l])


@pytest.mark.parametrize("kind", ["random", "straddle0", "degenerate", "huge_mixed", "zeros", "with_inf"])
def test_unbatched_graph(kind):
    g = net_unbatched()
    lo, hi = make_box(kind, (6,), np.random.default_rng(4))
    check_f32(g, lo, hi, batched=False, n_random=24)


# ---------------------------------------------------------------------------------------------
# hypothesis: random conv / pooling geometry


@st.composite
def random_conv_net(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cin, h, w = draw(st.integers(1, 2)), draw(st.integers(2, 5)), draw(st.integers(2, 5))
    b = Builder()
    x = b.input((1, cin, h, w), "x")
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    span_h, span_w = dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1
    if h + pads[0] + pads[2] < span_h or w + pads[1] + pads[3] < span_w:
        pads = (span_h, span_w, span_h, span_w)
    cout = draw(st.integers(1, 3))
    wt = rng.normal(size=(cout, cin, kh, kw)) * draw(st.sampled_from([1.0, 1e-20, 1e20]))
    args = [x, b.param(wt)] + ([b.param(rng.normal(size=cout))] if draw(st.booleans()) else [])
    y = b.eqn("conv2d", args, {"stride": stride, "pads": pads, "dilation": dil})
    y = b.eqn(draw(st.sampled_from(["relu", "identity", "tanh", "abs"])), [y])
    oh, ow = y.shape[2], y.shape[3]
    pk = (draw(st.integers(1, min(3, oh))), draw(st.integers(1, min(3, ow))))
    pp = tuple(draw(st.integers(0, k - 1)) for k in (pk[0], pk[1], pk[0], pk[1]))
    ps = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    if draw(st.booleans()):
        z = b.eqn("avg_pool2d", [y], {"kernel": pk, "stride": ps, "pads": pp,
                                      "count_include_pad": int(draw(st.booleans()))})
    else:
        z = b.eqn("max_pool2d", [y], {"kernel": pk, "stride": ps, "pads": pp})
    z = b.eqn(draw(st.sampled_from(["sum", "mean"])), [z], {"axes": (1, 3), "keepdims": 0})
    return b.build([z, y]), x.shape


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_hypothesis_random_conv_pool(data):
    g, shape = data.draw(random_conv_net())
    kind = data.draw(st.sampled_from(["random", "straddle0", "degenerate", "huge_mixed", "tiny", "with_inf",
                                      "zeros", "narrow"]))
    lo, hi = make_box(kind, shape, np.random.default_rng(data.draw(st.integers(0, 99))))
    check_f32(g, lo, hi, n_random=24)


@pytest.mark.slow
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_random_conv_pool_slow(data):
    g, shape = data.draw(random_conv_net())
    kind = data.draw(st.sampled_from(BOX_KINDS))
    lo, hi = make_box(kind, shape, np.random.default_rng(data.draw(st.integers(0, 99))))
    check_f32(g, lo, hi, n_random=64)


# ---------------------------------------------------------------------------------------------
# odd attributes and parameters


def net_odd_attributes():
    bn = nn.BatchNorm2d(5, eps=0.0)
    bn.load_state_dict({"weight": np.array([1.0, np.inf, 0.0, -2.0, 1.0]), "bias": np.array([0.0, 1.0, np.inf, -1.0, 0.0]),
                        "running_mean": np.array([0.0, 1.0, -1.0, 1e38, 0.0]),
                        "running_var": np.array([0.0, 1e-45, -1.0, 1.0, -0.0])})

    def f(x):  # x: [1, 5, 1, 2]
        return nl.concat([bn(x), nl.clamp(x, 1.0, -1.0), nl.clamp(x, -np.inf, np.inf), nl.clamp(x, np.inf, np.inf),
                          nl.leaky_relu(x, 1e-45), nl.clamp(x, -0.0, -0.0)], axis=1)
    return _compile(f, (1, 5, 1, 2))


@pytest.mark.parametrize("kind", ["random", "straddle0", "zeros", "degenerate", "huge_mixed", "with_inf", "everything",
                                  "tiny"])
def test_odd_attributes_and_statistics(kind):
    """batch norm with var + eps = 0, subnormal and negative variance, inf gamma/beta, eps = 0; clamp
    with lo > hi and infinite bounds; leaky_relu with a subnormal slope."""
    g = net_odd_attributes()
    lo, hi = make_box(kind, (1, 5, 1, 2), np.random.default_rng(8))
    check_f32(g, lo, hi, n_random=32)
