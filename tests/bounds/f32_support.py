"""Shared float32 test support for the bound suites (IBP and CROWN): float32 box sampling,
batched kernel evaluation, containment checks, box families and the network catalog.

Moved here unchanged from ``test_ibp_float32.py`` so that the IBP and CROWN suites share one
catalog and one sampler (this is a helper module, not a test module).

Sampling (per box): all corners (input dim <= 8, else random corners), edge midpoints, the centre,
one-ulp-inward neighbours of the endpoints (``np.nextafter`` toward the interior) mixed with the
endpoints, both signed zeros wherever 0 is in the box, uniform interior points and points uniform
in the float32 *bit order* (which spreads over all magnitudes of wide boxes).
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import strategies as st

import nnlemma as nl
from nnlemma import nn
from nnlemma.interpret import interpret
from nnlemma.ir import Builder, rebuild
from nnlemma.bounds.common import RELAX
from nnlemma.kernels import KERNEL_RULES

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
                 nl.relu(x), nl.step(x), nl.leaky_relu(x, 0.2), nl.leaky_relu(x, 1.0), nl.tanh(x), nl.sigmoid(x),
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
    """A catalog network by name (``NETS`` or ``CROWN_NETS``), built once."""
    if name not in _CACHE:
        _CACHE[name] = (NETS[name] if name in NETS else CROWN_NETS[name])()
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


# ---------------------------------------------------------------------------------------------
# hypothesis strategy: random conv / pooling geometry


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


# ---------------------------------------------------------------------------------------------
# hypothesis strategies: random small nets and boxes


_UNARY = ["relu", "step", "leaky_relu", "tanh", "sigmoid", "exp", "sin", "cos", "sqrt", "square", "abs", "neg", "clamp",
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


# ---------------------------------------------------------------------------------------------
# networks that exercise CROWN (relaxations after relaxations, so CROWN bounds are computed and
# can be tighter than IBP); every one has a leading batch axis of size 1 unless said otherwise


def crown_deep_relu():
    return _compile(_seq(nn.Linear(3, 12, seed=51), nn.ReLU(), nn.Linear(12, 12, seed=52), nn.ReLU(),
                         nn.Linear(12, 12, seed=53), nn.ReLU(), nn.Linear(12, 3, seed=54)), (1, 3))


def crown_deep_leaky():
    return _compile(_seq(nn.Linear(3, 10, seed=55), nn.LeakyReLU(0.1), nn.Linear(10, 10, seed=56), nn.LeakyReLU(0.5),
                         nn.Linear(10, 10, seed=57), nn.LeakyReLU(1.0), nn.Linear(10, 8, seed=58), nn.LeakyReLU(1e-3),
                         nn.Linear(8, 2, seed=59)), (1, 3))


def crown_cut_chain():
    """tanh / sigmoid / clamp between relu layers: cut nodes inside the backward pass."""
    return _compile(_seq(nn.Linear(3, 8, seed=61), nn.ReLU(), nn.Linear(8, 8, seed=62), nn.Tanh(),
                         nn.Linear(8, 8, seed=63), nn.ReLU(), nn.Linear(8, 8, seed=64), nn.Sigmoid(),
                         nn.Linear(8, 8, seed=65), nn.ReLU(), nn.Linear(8, 6, seed=66), nn.Hardtanh(-0.5, 0.5),
                         nn.Linear(6, 6, seed=67), nn.ReLU(), nn.Linear(6, 2, seed=68)), (1, 3))


def crown_product():
    """Products of two non-constant nodes (cut by CROWN), residual adds and subtractions."""
    l1, l2, l3, l4 = (nn.Linear(4, 6, seed=71), nn.Linear(4, 6, seed=72), nn.Linear(6, 6, seed=73),
                      nn.Linear(6, 3, seed=74))

    def f(x):
        h1, h2 = nl.relu(l1(x)), nl.relu(l2(x))
        p = h1 * h2                                    # product of two variables
        q = nl.relu(l3(p) - h1 + h2 * 0.5)
        sq = x[:, :3] * x[:, 1:]                       # product of two slices of the input
        return l4(q) + nl.relu(sq - 0.25)
    return _compile(f, (1, 4))


class CrownConvNet(nn.Module):
    """conv2d, relu, residual add, batch norm, avg and max pooling, flatten, linear, relu."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(81)
        self.c0 = nn.Conv2d(1, 2, 3, stride=1, padding=1, seed=82)
        self.c1 = nn.Conv2d(2, 2, 3, stride=1, padding=1, seed=83)
        self.bn = nn.BatchNorm2d(2)
        self.bn.load_state_dict({"weight": rng.normal(size=2), "bias": rng.normal(size=2),
                                 "running_mean": rng.normal(size=2) * 0.1,
                                 "running_var": rng.uniform(0.2, 2.0, size=2)})
        self.fc1 = nn.Linear(2 * 3 * 3, 6, seed=84)
        self.fc2 = nn.Linear(6, 2, seed=85)

    def forward(self, x):                                     # [1, 1, 5, 5]
        r0 = nl.relu(self.c0(x))
        r1 = nl.relu(self.c1(r0) + r0)                        # residual add
        r2 = nl.relu(self.bn(r1))
        r3 = nl.relu(nn.AvgPool2d(2, stride=1, padding=0, count_include_pad=True)(r2) - 0.1)   # [1, 2, 4, 4]
        p = nn.MaxPool2d(2, stride=1, padding=0)(r3)                                         # [1, 2, 3, 3]
        h = nl.relu(self.fc1(nn.Flatten()(p)))
        return self.fc2(h)


def crown_conv():
    return _compile(CrownConvNet(), (1, 1, 5, 5))


def crown_movement():
    """Data movement between relu layers: reshape, transpose, slice, concat, sum, mean."""
    l1, l2 = nn.Linear(5, 12, seed=91), nn.Linear(13, 3, seed=92)

    def f(x):
        h = nl.relu(l1(x))                                   # [1, 12]
        t = nl.transpose(nl.reshape(h, (0, 3, 4)), (0, 2, 1))  # [1, 4, 3]
        s = nl.relu(t[:, 1:, :] * 2.0 - 0.5)                 # [1, 3, 3]
        c = nl.concat([s, nl.relu(nl.sum(t[:, :3], axis=2, keepdims=True) - 1.0)], axis=2)   # [1, 3, 4]
        m = nl.relu(nl.mean(c, axis=1) - 0.25)               # [1, 4]
        flat = nl.concat([nl.reshape(c, (0, -1)), m[:, :1]], axis=1)   # [1, 13]
        return nl.relu(l2(flat)) - nl.sum(m, axis=1, keepdims=True)
    return _compile(f, (1, 5))


def crown_broadcast():
    """Operands broadcast along non-batch axes (the backward pass sums the coefficients back),
    constant mul/div/sub, neg."""
    rng = np.random.default_rng(95)
    c1 = rng.normal(size=(1, 3, 4)).astype(F32)
    c2 = rng.uniform(0.5, 2.0, size=(1, 3, 1)).astype(F32)
    w = rng.normal(size=(2, 4)).astype(F32)

    def f(x):                                                # [1, 1, 4]
        h = nl.relu(x + c1)                                  # broadcast add -> [1, 3, 4]
        h = nl.relu(h * c2 - 0.3)                            # broadcast mul
        h = nl.relu(nl.neg(h / 3.0) + 1.0)
        s = nl.sum(h, axis=1)                                # [1, 4]
        return nl.linear(nl.relu(s - 1.5), w)
    return _compile(f, (1, 1, 4))


def crown_misc():
    """matmul (rank 2 and rank 3) between relus, a node computed from constants only (exp of a
    param, batch 1, broadcast against the batch), strided slices, concat with a negation."""
    rng = np.random.default_rng(99)
    b = Builder()
    x = b.input((1, 6), "x")
    h = b.eqn("relu", [b.eqn("matmul", [x, b.param(rng.normal(size=(6, 8)))])])
    c = b.eqn("exp", [b.param(rng.normal(size=(1, 8)) * 0.1)])
    h = b.eqn("relu", [b.eqn("sub", [h, c])])
    h3 = b.eqn("reshape", [h], {"shape": (0, 2, 4)})
    m = b.eqn("relu", [b.eqn("matmul", [h3, b.param(rng.normal(size=(4, 3)))])])                      # [1, 2, 3]
    s = b.eqn("slice", [m], {"index": ((None, None, None), (None, None, None), (None, None, 2))})   # [1, 2, 2]
    flat = b.eqn("reshape", [s], {"shape": (0, -1)})
    cat = b.eqn("concat", [flat, b.eqn("neg", [flat])], {"axis": 1})
    y = b.eqn("relu", [b.eqn("linear", [cat, b.param(rng.normal(size=(5, 8))), b.param(rng.normal(size=5))])])
    return b.build([b.eqn("linear", [y, b.param(rng.normal(size=(2, 5)))])])


def crown_rank1():
    """No batch axis: a rank-1 input, linear layers contract over axis 0."""
    rng = np.random.default_rng(97)
    b = Builder()
    x = b.input((6,), "x")
    h = b.eqn("linear", [x, b.param(rng.normal(size=(6, 6)))])
    r = b.eqn("relu", [h])
    h2 = b.eqn("linear", [r, b.param(rng.normal(size=(6, 6))), b.param(rng.normal(size=6))])
    r2 = b.eqn("relu", [h2])
    y = b.eqn("linear", [r2, b.param(rng.normal(size=(6, 6)))])
    return b.build([y])


CROWN_NETS = {
    "deep_relu": crown_deep_relu, "deep_leaky": crown_deep_leaky, "cut_chain": crown_cut_chain,
    "product": crown_product, "crown_conv": crown_conv, "crown_movement": crown_movement,
    "broadcast": crown_broadcast, "crown_misc": crown_misc,
}


# ---------------------------------------------------------------------------------------------
# CROWN helpers shared by the float32 and real CROWN suites: coefficient rows, random nets


def lam_rows(rng, B, shape, kinds=("dense", "onehot", "diff", "sparse", "ints", "scaled", "cancel", "zero")):
    """Coefficient rows ``[R, B, *shape]`` (float64) of the kinds above."""
    n = int(np.prod(shape))
    rows = []
    for kind in kinds:
        if kind == "dense":
            r = rng.normal(size=(B, n))
        elif kind == "onehot":
            r = np.zeros((B, n))
            r[np.arange(B), rng.integers(0, n, B)] = rng.choice([-1.0, 1.0], B)
        elif kind == "diff":
            r = np.zeros((B, n))
            i, j = rng.integers(0, n, B), rng.integers(0, n, B)
            r[np.arange(B), i] += 1.0
            r[np.arange(B), j] -= 1.0
        elif kind == "sparse":
            r = rng.normal(size=(B, n)) * (rng.random((B, n)) < 0.3)
        elif kind == "ints":
            r = rng.integers(-3, 4, size=(B, n)).astype(np.float64)
        elif kind == "scaled":
            r = rng.normal(size=(B, n)) * 10.0 ** rng.integers(-30, 31, size=(B, 1))
        elif kind == "cancel":
            pat = np.array([0.1, 0.2, -0.3, 1 / 3, -1 / 3, 0.7, -0.7]) if n >= 3 else np.array([0.1, -0.1])
            r = np.broadcast_to(np.resize(pat, n), (B, n)).copy()
        elif kind == "zero":
            r = np.zeros((B, n))
        else:
            raise ValueError(kind)
        rows.append(r)
    return np.stack(rows).reshape((len(rows), B) + tuple(shape))


@st.composite
def crown_net(draw):
    """Random deep-ish nets: linear layers with relu / leaky_relu, residual adds, products of two
    nodes, constant mul/sub, slices/concat, sum/mean, and the odd cut op."""
    d = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b = Builder()
    x = b.input((1, d), "x")
    cur, width = x, d
    prev = None
    for _ in range(draw(st.integers(2, 6))):
        kind = draw(st.sampled_from(["linear_act", "linear_act", "linear_act", "residual", "product", "const",
                                     "movement", "reduce", "cut"]))
        if kind == "linear_act" or (kind == "residual" and prev is None):
            out = draw(st.integers(1, 6))
            scale = draw(st.sampled_from([1.0, 1.0, 0.1, 10.0, 1e-20, 1e15]))
            w = rng.normal(size=(out, width)) * scale
            if draw(st.booleans()):
                w[rng.random(w.shape) < 0.3] = 0.0
            args = [cur, b.param(w)] + ([b.param(rng.normal(size=out) * scale)] if draw(st.booleans()) else [])
            prev, cur, width = (cur, width), b.eqn("linear", args), out
            act = draw(st.sampled_from(["relu", "relu", "leaky_relu", "none"]))
            if act != "none":
                cur = b.eqn(act, [cur], {"alpha": draw(st.sampled_from([0.01, 0.3, 1.0]))} if act == "leaky_relu" else {})
        elif kind == "residual":
            p, pw = prev
            if pw == width:
                cur = b.eqn(draw(st.sampled_from(["add", "sub"])), [cur, p])
            else:
                cur = b.eqn("add", [cur, b.eqn("linear", [p, b.param(rng.normal(size=(width, pw)))])])
            cur = b.eqn("relu", [cur])
        elif kind == "product" and width >= 2:
            h = width // 2
            lhs = b.eqn("slice", [cur], {"index": ((None, None, None), (0, h, None))})
            rhs = b.eqn("slice", [cur], {"index": ((None, None, None), (width - h, width, None))})
            cur = b.eqn("relu", [b.eqn("mul", [lhs, rhs])])
            width = h
        elif kind == "const":
            c = b.param(draw(st.sampled_from([2.0, -0.5, 0.1, 3.0, 1e-3])))
            op = draw(st.sampled_from(["mul", "sub", "add", "div"]))
            cur = b.eqn("relu", [b.eqn(op, [cur, c])])
        elif kind == "movement":
            cur = b.eqn("concat", [cur, b.eqn("neg", [cur])], {"axis": 1})
            width *= 2
        elif kind == "reduce":
            op = draw(st.sampled_from(["sum", "mean"]))
            cur = b.eqn(op, [cur], {"axes": (1,), "keepdims": 1})
            width = 1
        else:
            op = draw(st.sampled_from(["tanh", "sigmoid", "abs", "clamp"]))
            cur = b.eqn(op, [cur], {"lo": -1.0, "hi": 1.0} if op == "clamp" else {})
    if cur is x:
        cur = b.eqn("relu", [cur])
    return b.build([cur]), d


def default_targets(graph, ctx, max_targets=4):
    """The outputs with a batch axis, the inputs of relaxed ops after a relaxation (the nodes
    ``tighten`` bounds), then other batched nodes; at most ``max_targets``."""
    batched = [e.out.id for e in graph.equations if e.out.shape and e.out.shape[0] == ctx.B]
    relax_in = [e.inputs[0] for e in graph.equations if e.op in RELAX]
    order = [v for v in graph.outputs if v in batched] + [v for v in relax_in if v in batched][::-1] + batched[::-1]
    return list(dict.fromkeys(order))[:max_targets]
