"""ONNX export: re-import gives bit-identical kernel results, onnxruntime agrees closely (it sums
in its own order), unsupported ops are refused with the nodes named, and the file is written
atomically."""

from __future__ import annotations

import numpy as np
import pytest

import nnlemma as nl
from nnlemma import nn
from nnlemma.ir import Builder

F32 = np.float32


def _roundtrip(tmp_path, graph, xs, allow_nonfinite=False):
    path = nl.export_onnx(graph, tmp_path / "m.onnx")
    back = nl.load_onnx(path, batch_size=graph.inputs[0].shape[0], allow_nonfinite=allow_nonfinite)
    for x in xs:
        want = nl.run(graph, x)
        got = nl.run(back, x)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert np.array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for x in xs:
        for a, b in zip(sess.run(None, {name: x}), nl.run(graph, x)):
            assert np.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True)
    return back


def _inputs(rng, shape, n=4):
    xs = [rng.standard_normal(shape).astype(F32) for _ in range(n)]
    edge = np.zeros(shape, F32)
    edge.reshape(-1)[::2] = -0.0
    return xs + [edge]


def test_mlp_and_smooth_ops(tmp_path):
    rng = np.random.default_rng(0)
    m = nn.Sequential(nn.Linear(3, 5, seed=1), nn.Tanh(), nn.Linear(5, 4, seed=2), nn.LeakyReLU(0.1),
                      nn.Linear(4, 2, seed=3), nn.Sigmoid())
    _roundtrip(tmp_path, nl.compile(m, np.zeros((2, 3), F32)).graph, _inputs(rng, (2, 3)))


def test_elementwise_movement_and_3d_linear(tmp_path):
    rng = np.random.default_rng(1)
    W = rng.standard_normal((4, 3)).astype(F32)
    bvec = rng.standard_normal(4).astype(F32)

    def f(x):
        h = nl.linear(x, W, bvec)                       # [2, 5, 4]: MatMul by W^T, then Add
        parts = [h.exp(), h.sin(), h.cos(), nl.sqrt(h.abs()), nl.square(h), -h, h.relu(),
                 nl.clamp(h, -0.5, 0.25), nl.clamp(h, lo=0.0)]
        y = nl.concat(parts, axis=2)                    # [2, 5, 36]
        y = (y * 2.0 - 1.0) / 3.0
        return y.transpose(0, 2, 1).reshape(2, -1)
    g = nl.compile(f, np.zeros((2, 5, 3), F32)).graph
    _roundtrip(tmp_path, g, _inputs(rng, (2, 5, 3)), allow_nonfinite=True)  # clamp(lo=0) has hi=+inf


def test_conv_batchnorm_pooling(tmp_path):
    rng = np.random.default_rng(2)
    b = Builder()
    x = b.input((1, 2, 6, 6), "x")
    w = b.param(rng.standard_normal((3, 2, 3, 3)).astype(F32))
    c = b.eqn("conv2d", [x, w, b.param(rng.standard_normal(3).astype(F32))],
              {"stride": (1, 1), "pads": (1, 1, 1, 1), "dilation": (1, 1)})
    stats = [b.param(v) for v in (rng.standard_normal(3).astype(F32), np.abs(rng.standard_normal(3)).astype(F32) + 0.5,
                                  rng.standard_normal(3).astype(F32), rng.standard_normal(3).astype(F32))]
    bn = b.eqn("batch_norm", [c] + stats, {"eps": 1e-3})
    a = b.eqn("avg_pool2d", [b.eqn("relu", [bn])], {"kernel": (2, 2), "count_include_pad": 0})
    mp = b.eqn("max_pool2d", [bn], {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1)})
    g = b.build([a, mp])
    _roundtrip(tmp_path, g, _inputs(rng, (1, 2, 6, 6), 3))


def test_acas_xu_network_round_trips(tmp_path, shared_benchmarks):
    g = nl.load_model(shared_benchmarks / "vnncomp2021" / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    _roundtrip(tmp_path, g, _inputs(np.random.default_rng(3), g.inputs[0].shape))


def test_unsupported_ops_are_refused_with_nodes_named(tmp_path):
    f = nl.grad(lambda x: (x.relu() * x).sum(axis=(0, 1)))
    g = nl.compile(f, np.ones((1, 3), F32)).graph
    with pytest.raises(nl.UnsupportedOpError, match="step") as info:
        nl.export_onnx(g, tmp_path / "g.onnx")
    assert info.value.ops and not (tmp_path / "g.onnx").exists()
    assert not list(tmp_path.iterdir())  # no temporary file left behind
