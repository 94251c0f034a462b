"""vjp / jvp / grad rules: every rule against central finite differences of the float64 function
(the derivative graph evaluated in float64 too, so the formulas are compared, not float32 noise),
Hessian-vector products, kink conventions pinned bit for bit, eager = compiled bit for bit, the
derivative graphs print and round-trip, and parameter gradients for training."""

from __future__ import annotations

import numpy as np
import pytest

import nnlemma as nl
from nnlemma import nn
from nnlemma.ir import serialize
from nnlemma.tensor import trace_function
from nnlemma.float64 import run64

F32 = np.float32
H = 1e-6


def _graph(fn, *xs):
    return nl.compile(fn, [nl.tensor(x) for x in xs]).graph


def fd_grad(fn, x, i=0, args=()):
    """Central differences of the float64 run of fn's graph w.r.t. argument i."""
    xs = [np.asarray(a, np.float64) for a in (x, *args)] if not isinstance(x, list) else [np.asarray(a, np.float64) for a in x]
    g = _graph(fn, *[a.astype(F32) for a in xs])
    out = np.zeros_like(xs[i])
    for k in np.ndindex(xs[i].shape):
        up = [a.copy() for a in xs]
        dn = [a.copy() for a in xs]
        up[i][k] += H
        dn[i][k] -= H
        out[k] = (run64(g, *up)[0].sum() - run64(g, *dn)[0].sum()) / (2 * H)
    return out


def fd_dir(fn, xs, ts):
    g = _graph(fn, *[np.asarray(a, F32) for a in xs])
    up = [np.asarray(a, np.float64) + H * np.asarray(t, np.float64) for a, t in zip(xs, ts)]
    dn = [np.asarray(a, np.float64) - H * np.asarray(t, np.float64) for a, t in zip(xs, ts)]
    return (run64(g, *up)[0] - run64(g, *dn)[0]) / (2 * H)


def close(got, want, rtol=2e-6):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= rtol * (1 + np.abs(want))), (got, want)


UNARY = {"identity": {}, "neg": {}, "abs": {}, "relu": {}, "leaky_relu": {"alpha": 0.25},
         "clamp": {"lo": -0.7, "hi": 0.9}, "tanh": {}, "sigmoid": {}, "exp": {}, "sin": {}, "cos": {},
         "sqrt": {}, "square": {}, "step": {}}


def _point(rng, op, shape=(2, 3)):
    x = rng.uniform(0.2, 1.5, shape) * rng.choice([-1, 1], shape)
    if op == "sqrt":
        x = np.abs(x)
    if op == "clamp":  # away from the bounds
        x = np.where(np.abs(x + 0.7) < 0.1, x + 0.3, x)
        x = np.where(np.abs(x - 0.9) < 0.1, x - 0.3, x)
    return x.astype(F32)


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_vjp_and_jvp_match_finite_differences(op):
    rng = np.random.default_rng(abs(hash(op)) % 2**32)
    w = rng.standard_normal((2, 3)).astype(F32)
    f = lambda x: (nl.bind(op, x, **UNARY[op]) * w).sum(axis=(0, 1))  # noqa: E731
    fv = lambda x: nl.bind(op, x, **UNARY[op])  # noqa: E731
    for _ in range(3):
        x = _point(rng, op)
        close(run64(_graph(nl.grad(f), x), x)[0], fd_grad(f, x))
        t = rng.standard_normal(x.shape).astype(F32)
        jg = _graph(lambda a: nl.jvp(fv, (a,), (t,))[1], x)
        close(run64(jg, x)[0], fd_dir(fv, [x], [t]))


BINARY = ["add", "sub", "mul", "div", "maximum", "minimum"]


@pytest.mark.parametrize("op", BINARY)
def test_binary_with_broadcasting_match_finite_differences(op):
    """a [2, 3] against b [1, 3]: b's cotangent sums over the broadcast axis."""
    rng = np.random.default_rng(len(op))
    w = rng.standard_normal((2, 3)).astype(F32)
    f = lambda a, b: (nl.bind(op, a, b) * w).sum(axis=(0, 1))  # noqa: E731
    fv = lambda a, b: nl.bind(op, a, b)  # noqa: E731
    a = rng.uniform(0.5, 1.5, (2, 3)).astype(F32)
    b = (rng.uniform(0.5, 1.5, (1, 3)) * np.array([[1, -1, 1]])).astype(F32)
    a[0, 0] = b[0, 0] + F32(0.25)  # no ties: maximum/minimum are differentiable here
    g = _graph(lambda x, y: nl.vjp(f, x, y)[1](np.ones((), F32)), a, b)
    ga, gb = run64(g, a, b)
    close(ga, fd_grad(f, [a, b], 0))
    close(gb, fd_grad(f, [a, b], 1))
    ta, tb = rng.standard_normal(a.shape).astype(F32), rng.standard_normal(b.shape).astype(F32)
    jg = _graph(lambda x, y: nl.jvp(fv, (x, y), (ta, tb))[1], a, b)
    close(run64(jg, a, b)[0], fd_dir(fv, [a, b], [ta, tb]))


def _sink(W1, b1, M):
    """linear, tanh, reshape, transpose, slice, concat, relu, matmul, mean, sum in one function."""
    def f(x):
        h = nl.linear(x, W1, b1).tanh()                      # [2, 4]
        r = h.reshape(4, 2).transpose(1, 0)                  # [2, 4]
        s = nl.concat([r[:, 1:3], h[:, 0:2].relu()], axis=1)  # [2, 4]
        m = nl.bind("matmul", s, M)                          # [2, 2]
        return m.mean(axis=1, keepdims=True).sum(axis=(0, 1))
    return f


def test_composite_function_grad_jvp_and_hvp():
    rng = np.random.default_rng(3)
    W1 = rng.standard_normal((4, 3)).astype(F32)
    b1 = rng.standard_normal(4).astype(F32)
    M = rng.standard_normal((4, 2)).astype(F32)
    f = _sink(W1, b1, M)
    x = rng.standard_normal((2, 3)).astype(F32)
    gg = _graph(nl.grad(f), x)
    close(run64(gg, x)[0], fd_grad(f, x))
    t = rng.standard_normal(x.shape).astype(F32)
    jg = _graph(lambda a: nl.jvp(f, (a,), (t,))[1], x)
    close(run64(jg, x)[0], fd_dir(f, [x], [t]))
    # Hessian-vector product: jvp of grad, against differences of the float64 gradient
    hv = _graph(lambda a: nl.jvp(nl.grad(f), (a,), (t,))[1], x)
    want = (run64(gg, x.astype(np.float64) + H * t)[0] - run64(gg, x.astype(np.float64) - H * t)[0]) / (2 * H)
    close(run64(hv, x)[0], want, rtol=2e-5)


def test_batch_norm_data_gradient():
    rng = np.random.default_rng(4)
    m, g, b = (rng.standard_normal(2).astype(F32) for _ in range(3))
    v = np.abs(rng.standard_normal(2)).astype(F32) + F32(0.5)
    f = lambda x: nl.bind("batch_norm", x, m, v, g, b, eps=1e-3).tanh().sum(axis=(0, 1, 2, 3))  # noqa: E731
    x = rng.standard_normal((1, 2, 2, 2)).astype(F32)
    close(run64(_graph(nl.grad(f), x), x)[0], fd_grad(f, x))


def test_conv_and_avg_pool_jvp_are_the_ops_themselves():
    """Both are linear in the data: the tangent of conv2d(x, W, b) is conv2d(t, W), bit for bit."""
    rng = np.random.default_rng(5)
    W = rng.standard_normal((2, 1, 2, 2)).astype(F32)
    bias = rng.standard_normal(2).astype(F32)
    x, t = (rng.standard_normal((1, 1, 4, 4)).astype(F32) for _ in range(2))
    _, tc = nl.jvp(lambda a: nl.bind("conv2d", a, W, bias), (x,), (t,))
    assert np.array_equal(tc.numpy(), nl.bind("conv2d", t, W).numpy())
    _, tp = nl.jvp(lambda a: nl.bind("avg_pool2d", a, kernel=(2, 2)), (x,), (t,))
    assert np.array_equal(tp.numpy(), nl.bind("avg_pool2d", t, kernel=(2, 2)).numpy())


CONV_CASES = [((1, 1), (0, 0, 0, 0), (1, 1)), ((2, 1), (1, 0, 0, 1), (1, 2)), ((2, 3), (2, 1, 1, 2), (2, 1))]


@pytest.mark.parametrize("stride,pads,dilation", CONV_CASES)
def test_conv2d_vjp_data_weight_and_bias_match_finite_differences(stride, pads, dilation):
    """The transposed convolution (data) and the input-cotangent correlation (weight, bias), for
    strides, asymmetric padding and dilation, against float64 differences."""
    rng = np.random.default_rng(sum(stride) + sum(pads))
    x = rng.standard_normal((2, 3, 7, 8)).astype(F32)
    W = rng.standard_normal((4, 3, 3, 2)).astype(F32)
    bias = rng.standard_normal(4).astype(F32)
    conv = lambda a, w=W, b=bias: nl.bind("conv2d", a, w, b, stride=stride, pads=pads, dilation=dilation)  # noqa: E731
    wt = rng.standard_normal(conv(x).shape).astype(F32)
    f = lambda a: (conv(a) * wt).sum(axis=(0, 1, 2, 3))  # noqa: E731
    close(run64(_graph(nl.grad(f), x), x)[0], fd_grad(f, x))
    names = {"w": nl.tensor(W), "b": nl.tensor(bias)}
    g = lambda a: (conv(a, names["w"], names["b"]) * wt).sum(axis=(0, 1, 2, 3))  # noqa: E731
    (_,), grads = nl.vjp(g, x, params=names)[1](np.ones((), F32))
    for key, base in (("w", W), ("b", bias)):
        k = (1,) * base.ndim
        vals = []
        for s in (H, -H):
            moved = base.astype(np.float64).copy()
            moved[k] += s
            gr, _ = trace_function(g, [nl.tensor(x)], {id(t): n for n, t in names.items()})
            vals.append(run64(gr, x, params={key: moved})[0])
        fd = float((vals[0] - vals[1]) / (2 * H))
        assert abs(float(grads[key].numpy()[k]) - fd) <= 1e-3 * (1 + abs(fd)), key


@pytest.mark.parametrize("kernel,stride,pads", [((2, 2), None, (0, 0, 0, 0)), ((3, 2), (1, 2), (1, 1, 1, 0)),
                                                 ((2, 3), (2, 1), (0, 1, 1, 1))])
def test_max_pool_vjp_and_jvp_match_finite_differences(kernel, stride, pads):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 2, 5, 6)).astype(F32)  # distinct values: no ties
    pool = lambda a: nl.bind("max_pool2d", a, kernel=kernel, stride=stride, pads=pads)  # noqa: E731
    wt = rng.standard_normal(pool(x).shape).astype(F32)
    f = lambda a: (pool(a) * wt).sum(axis=(0, 1, 2, 3))  # noqa: E731
    close(run64(_graph(nl.grad(f), x), x)[0], fd_grad(f, x))
    t = rng.standard_normal(x.shape).astype(F32)
    close(run64(_graph(lambda a: nl.jvp(pool, (a,), (t,))[1], x), x)[0], fd_dir(pool, [x], [t]))


def test_max_pool_ties_go_to_the_first_element():
    x = np.array([[[[1.0, 1.0], [0.5, 1.0]]]], F32)
    g = nl.grad(lambda a: nl.bind("max_pool2d", a, kernel=(2, 2)).sum(axis=(0, 1, 2, 3)))(x)
    assert np.array_equal(g.numpy(), np.array([[[[1.0, 0.0], [0.0, 0.0]]]], F32))
    _, t = nl.jvp(lambda a: nl.bind("max_pool2d", a, kernel=(2, 2)), (x,), (np.array([[[[2, 3], [4, 5]]]], F32),))
    assert t.numpy().item() == 2.0


@pytest.mark.parametrize("pads,count_include_pad", [((0, 0, 0, 0), 0), ((1, 0, 1, 1), 0), ((1, 0, 1, 1), 1)])
def test_avg_pool_vjp_matches_finite_differences(pads, count_include_pad):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 2, 5, 6)).astype(F32)
    pool = lambda a: nl.bind("avg_pool2d", a, kernel=(2, 3), stride=(2, 2), pads=pads,  # noqa: E731
                             count_include_pad=count_include_pad)
    wt = rng.standard_normal(pool(x).shape).astype(F32)
    f = lambda a: (pool(a) * wt).sum(axis=(0, 1, 2, 3))  # noqa: E731
    close(run64(_graph(nl.grad(f), x), x)[0], fd_grad(f, x))


def _bits(t):
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t, F32).view(np.uint32)


def test_kink_conventions_are_pinned():
    """relu'(±0) = 0, abs'(±0) = 0, leaky_relu'(±0) = alpha, clamp' = 0 at the bounds, step' = 0,
    maximum/minimum ties go to the second operand — in vjp and jvp alike."""
    x = np.array([[0.0, -0.0, 1.0, -1.0]], F32)
    ones = np.ones_like(x)
    cases = {
        "relu": ({}, [0, 0, 1, 0]),
        "abs": ({}, [0, 0, 1, -1]),
        "leaky_relu": ({"alpha": 0.25}, [0.25, 0.25, 1, 0.25]),
        "step": ({}, [0, 0, 0, 0]),
    }
    for op, (attrs, want) in cases.items():
        g = nl.grad(lambda a: nl.bind(op, a, **attrs).sum(axis=(0, 1)))(x)
        assert np.array_equal(_bits(g), _bits(np.array([want], F32))), op
        _, t = nl.jvp(lambda a: nl.bind(op, a, **attrs), (x,), (ones,))
        assert np.array_equal(_bits(t), _bits(np.array([want], F32))), op
    c = np.array([[-1.0, 2.0, 0.5, 3.0]], F32)
    g = nl.grad(lambda a: a.clamp(-1.0, 2.0).sum(axis=(0, 1)))(c)
    assert np.array_equal(g.numpy(), np.array([[0, 0, 1, 0]], F32))
    a = np.array([[1.0, 2.0, -0.0]], F32)
    b = np.array([[1.0, 1.0, 0.0]], F32)
    for op, want_a in (("maximum", [0, 1, 0]), ("minimum", [0, 0, 0])):
        ga, gb = nl.vjp(lambda p, q: nl.bind(op, p, q), a, b)[1](np.ones((1, 3), F32))
        assert np.array_equal(ga.numpy(), np.array([want_a], F32)), op
        assert np.array_equal(gb.numpy(), 1 - np.array([want_a], F32)), op


def test_eager_and_compiled_derivatives_are_bit_identical_and_round_trip():
    rng = np.random.default_rng(6)
    f = _sink(rng.standard_normal((4, 3)).astype(F32), rng.standard_normal(4).astype(F32),
              rng.standard_normal((4, 2)).astype(F32))
    x = rng.standard_normal((2, 3)).astype(F32)
    t = rng.standard_normal((2, 3)).astype(F32)
    for fn in (nl.grad(f), lambda a: nl.jvp(f, (a,), (t,))[1], lambda a: nl.jvp(nl.grad(f), (a,), (t,))[1]):
        eager = fn(nl.tensor(x))
        cg = nl.compile(fn, x)
        assert np.array_equal(_bits(eager), _bits(cg(x)))
        g2 = serialize.loads(serialize.dumps(cg.graph))
        assert str(g2) == str(cg.graph)
        assert np.array_equal(_bits(nl.run(g2, x)[0]), _bits(eager))


def test_parameter_gradients_for_training():
    rng = np.random.default_rng(7)
    model = nn.Sequential(nn.Linear(3, 4, seed=1), nn.Tanh(), nn.Linear(4, 2, seed=2))
    x = rng.standard_normal((5, 3)).astype(F32)
    loss = lambda a: (model(a) * model(a)).mean(axis=(0, 1))  # noqa: E731
    names = dict(model.named_tensors())
    out, pullback = nl.vjp(loss, x, params=names)
    (gx,), gp = pullback(np.ones((), F32))
    assert set(gp) == set(names)
    for name, p in names.items():  # FD on one entry of every parameter, in float64
        base = p.numpy().astype(np.float64)
        k = (0,) * base.ndim
        g, _ = trace_function(loss, [nl.tensor(x)], {id(t): n for n, t in names.items()})
        vals = []
        for s in (H, -H):
            moved = base.copy()
            moved[k] += s
            vals.append(run64(g, x, params={name: moved})[0])
        fd = (vals[0] - vals[1]) / (2 * H)
        assert abs(float(gp[name].numpy()[k]) - float(fd)) <= 1e-4 * (1 + abs(float(fd))), name


def test_grad_needs_a_scalar_output_and_shapes_are_checked():
    with pytest.raises(nl.InputError, match="single-element"):
        nl.grad(lambda a: a * a)(np.ones((1, 2), F32))
    with pytest.raises(nl.InputError, match="tangent shape"):
        nl.jvp(lambda a: a * a, (np.ones((1, 2), F32),), (np.ones((2, 1), F32),))


def test_torch_autograd_agrees():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    W = rng.standard_normal((4, 3)).astype(F32)
    x = rng.standard_normal((2, 3)).astype(F32)
    f = lambda a: nl.linear(a, W).tanh().sum(axis=(0, 1))  # noqa: E731
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    torch.tanh(xt @ torch.tensor(W, dtype=torch.float64).T).sum().backward()
    close(run64(_graph(nl.grad(f), x), x)[0], xt.grad.numpy(), rtol=1e-12)


def test_relu_network_gradient_graph_is_bounded_soundly():
    """∇ of a ReLU net is a graph of step, mul, matmul...; IBP and CROWN (which relaxes step) bound
    it over a box: every float32 kernel value at corners and random points lies inside, exactly."""
    m = nn.Sequential(nn.Linear(3, 8, seed=1), nn.ReLU(), nn.Linear(8, 8, seed=2), nn.ReLU(), nn.Linear(8, 1, seed=3))
    g = nl.compile(nl.grad(lambda z: m(z).sum(axis=(0, 1))), np.zeros((1, 3), F32)).graph
    assert "step" in g.ops_used()
    lo, hi = np.array([[-0.3, 0.1, -0.2]], F32), np.array([[0.2, 0.4, 0.1]], F32)
    rng = np.random.default_rng(12)
    corners = np.array([[a, b, c] for a in (lo[0, 0], hi[0, 0]) for b in (lo[0, 1], hi[0, 1])
                        for c in (lo[0, 2], hi[0, 2])], F32)
    pts = np.concatenate([corners, rng.uniform(lo, hi, (64, 3)).astype(F32)])
    res = [nl.bounds.ibp(g, lo, hi), nl.bounds.crown(g, lo, hi)]
    for r in res:
        assert r.status == "ok", r.reason
        b = r.outputs[0]
        for p in pts:
            y = nl.run(g, p[None])[0]
            assert np.all(b.lo <= y) and np.all(y <= b.hi), (p, y, b.lo, b.hi)
    assert np.all(res[1].outputs[0].hi - res[1].outputs[0].lo <= res[0].outputs[0].hi - res[0].outputs[0].lo)
