"""Shared real-semantics test support for the bound suites (IBP and CROWN): rational points of a
real box, real box families and the small network catalog whose exact values
:mod:`exact_eval` can compute (a helper module, not a test module; moved here unchanged from
``test_ibp_real.py``).
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np

import nnlemma as nl
from nnlemma import nn

F32 = np.float32
T_FRACS = [Fraction(1, 3), Fraction(2, 7), Fraction(1, 2), Fraction(5, 6), Fraction(1, 10**9), Fraction(999, 1000),
           Fraction(1, 11), Fraction(10**12 - 1, 10**12)]


# ---------------------------------------------------------------------------------------------
# sampling real points


def real_points(lo, hi, rng, n_random: int = 6, max_corners: int = 16) -> list[list[Fraction]]:
    """Rational points of the real box [lo, hi] (flat lists of Fractions)."""
    lo = [Fraction(float(v)) for v in np.asarray(lo, np.float64).reshape(-1)]
    hi = [Fraction(float(v)) for v in np.asarray(hi, np.float64).reshape(-1)]
    d = len(lo)
    pts = []
    if 2 ** d <= max_corners:
        for c in itertools.product((0, 1), repeat=d):
            pts.append([hi[i] if c[i] else lo[i] for i in range(d)])
    else:
        pts.append(list(lo))
        pts.append(list(hi))
        for _ in range(max_corners - 2):
            pts.append([hi[i] if rng.random() < 0.5 else lo[i] for i in range(d)])
    # rational interior points: lo + t (hi - lo) with t in T_FRACS (same t, then mixed)
    for t in T_FRACS[:4]:
        pts.append([lo[i] + t * (hi[i] - lo[i]) for i in range(d)])
    for _ in range(n_random):
        pts.append([lo[i] + T_FRACS[rng.integers(len(T_FRACS))] * (hi[i] - lo[i]) for i in range(d)])
    # 1/3 and 0 wherever they are in the box, random rationals with odd denominators
    for special in (Fraction(1, 3), Fraction(-1, 3), Fraction(0)):
        if any(lo[i] <= special <= hi[i] for i in range(d)):
            base = [lo[i] + Fraction(1, 7) * (hi[i] - lo[i]) for i in range(d)]
            pts.append([special if lo[i] <= special <= hi[i] else base[i] for i in range(d)])
    for _ in range(n_random):
        p = []
        for i in range(d):
            den = int(rng.choice([3, 7, 3 * 2**40, 10**7, 99991]))
            t = Fraction(int(rng.integers(0, den + 1)), den)
            p.append(lo[i] + t * (hi[i] - lo[i]))
        pts.append(p)
    for p in pts:
        assert all(lo[i] <= p[i] <= hi[i] for i in range(d))
    return pts


# ---------------------------------------------------------------------------------------------
# small networks


def _compile(fn, *shapes):
    return nl.compile(fn, [np.zeros(s, F32) for s in shapes]).graph


def net_pwl():
    l1, l2, l3 = nn.Linear(3, 5, seed=1), nn.Linear(5, 4, seed=2), nn.Linear(4, 2, seed=3)

    def f(x):
        h = nl.relu(l1(x))
        h = nl.hardtanh(nl.leaky_relu(l2(h), 0.1), -0.5, 0.75)
        y = l3(h)
        return nl.concat([y, nl.abs(y), -y, nl.maximum(y, x[:, :2]), nl.minimum(y, 0.0), nl.clamp(x, -0.25, 0.5),
                          nl.leaky_relu(x, 1.0)], axis=1)
    return _compile(f, (1, 3))


def net_smooth():
    l1, l2 = nn.Linear(2, 4, seed=4), nn.Linear(4, 3, seed=5)

    def f(x):
        h = nl.tanh(l1(x))
        h = nl.sigmoid(l2(h))
        return nl.concat([nl.exp(h), nl.sin(h * 5.0), nl.cos(h * 7.0), nl.sqrt(nl.square(h) + 0.5), nl.square(x),
                          nl.exp(x), nl.sin(x), nl.cos(x), nl.tanh(x), nl.sigmoid(x), nl.sqrt(x), nl.sqrt(nl.abs(x))],
                         axis=1)
    return _compile(f, (1, 2))


def net_binary():
    def f(x):
        a, b = x[:, :2], x[:, 2:]
        return nl.concat([a * b, a / b, a / (b * b + 1.0), a / 3.0, a / -0.7, a - b, a + b, nl.maximum(a, b),
                          nl.minimum(a, b), a * a, 1.0 / (nl.exp(b) + 1.0), x - x], axis=1)
    return _compile(f, (1, 4))


class SmallConv(nn.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(7)
        self.c1 = nn.Conv2d(1, 2, 3, stride=1, padding=1, seed=8)
        self.c2 = nn.Conv2d(2, 1, 3, stride=1, padding=2, dilation=2, seed=9)
        self.c3 = nn.Conv2d(1, 2, 2, stride=2, padding=1, seed=10)
        self.bn = nn.BatchNorm2d(1)
        self.bn.load_state_dict({"weight": rng.normal(size=1), "bias": rng.normal(size=1),
                                 "running_mean": rng.normal(size=1), "running_var": np.array([0.3])})

    def forward(self, x):  # [1, 1, 3, 3]
        y = self.bn(x + self.c2(nl.relu(self.c1(x))))
        parts = [self.c3(y), nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=True)(y),
                 nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False)(y),
                 nn.MaxPool2d(2, stride=1, padding=1)(y)]
        flat = nl.concat([nn.Flatten()(p) for p in parts], axis=1)
        t = nl.transpose(y, (0, 2, 3, 1))
        return nl.concat([flat, nl.reshape(t, (0, -1)), nl.sum(y, axis=(2, 3)), nl.mean(y, axis=(1, 2, 3), keepdims=False).reshape(0, 1),
                          nl.reshape(y[:, 0, 1:, ::2], (0, -1))], axis=1)


def net_conv():
    return _compile(SmallConv(), (1, 1, 3, 3))


def net_matmul_bn():
    w = np.random.default_rng(11).normal(size=(3, 3)).astype(F32)
    bn = nn.BatchNorm1d(3, eps=1e-3)
    rng = np.random.default_rng(12)
    bn.load_state_dict({"weight": rng.normal(size=3), "bias": rng.normal(size=3),
                        "running_mean": rng.normal(size=3), "running_var": np.array([1e-4, 1.0, 30.0])})
    return _compile(lambda x: bn(x @ w), (1, 3))


NETS = {"pwl": net_pwl, "smooth": net_smooth, "binary": net_binary, "conv": net_conv, "matmul_bn": net_matmul_bn}
_CACHE: dict = {}


def get_net(name):
    if name not in _CACHE:
        _CACHE[name] = NETS[name]()
    return _CACHE[name]


def make_box(kind, shape, rng):
    n = int(np.prod(shape))
    if kind == "random":
        c, w = rng.normal(size=n), rng.uniform(0, 1, n)
        lo, hi = c - w, c + w
    elif kind == "non_f32":  # float64 endpoints that are not float32 values
        lo = np.full(n, 0.1) - rng.uniform(0, 1, n) / 3
        hi = lo + 1 / 3
    elif kind == "degenerate":
        lo = hi = rng.normal(size=n) / 3
    elif kind == "straddle0":
        lo, hi = -rng.uniform(0.1, 2, n), rng.uniform(0.1, 2, n)
    elif kind == "zeros":
        lo, hi = np.full(n, -0.0), np.full(n, 0.0)
    elif kind == "tiny":
        lo, hi = -rng.uniform(1, 2, n) * 1e-300, rng.uniform(1, 2, n) * 1e-300
    elif kind == "subnormal":
        lo, hi = np.full(n, 5e-324), np.full(n, 1e-310)
    elif kind == "huge":
        lo, hi = rng.uniform(1e29, 1e30, n), rng.uniform(1e30, 1e31, n)
    elif kind == "huge_mixed":
        lo, hi = -rng.uniform(1e30, 1e38, n), rng.uniform(1e30, 1e38, n)
    else:
        raise ValueError(kind)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    return lo.reshape(shape), hi.reshape(shape)


BOX_KINDS = ["random", "non_f32", "degenerate", "straddle0", "zeros", "tiny", "subnormal", "huge", "huge_mixed"]
