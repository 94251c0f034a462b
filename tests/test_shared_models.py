"""The real benchmark networks in ../shared/benchmarks: all 45 ACAS Xu nets, MNIST 256x2 and the
Burgers PINN. Each is imported, printed, JSON round-tripped (same text, bit-identical params, and
bit-identical kernel outputs after reloading) and run against onnxruntime on random inputs.

Tolerance against onnxruntime: ``|ours - ort| <= 1e-5 + 1e-4 * |ort|`` elementwise. Our kernel folds
each dot product left to right with separately rounded products; onnxruntime sums in another
(blocked, vectorised) order and may use FMA, so the two differ by float32 rounding noise that grows
with the layer width and depth; tanh in onnxruntime is a few ulps off (ours is correctly rounded).
The bound is a test tolerance well above that noise, not a proven error bound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from nnlemma.interpret import run
from nnlemma.ir import dumps, loads, rebuild
from nnlemma.kernels import same_bits
from nnlemma.onnx_import import load_onnx

pytestmark = pytest.mark.shared_data

ACAS = [f"vnncomp2021/acasxu/ACASXU_run2a_{i}_{j}_batch_2000.onnx" for i in range(1, 6) for j in range(1, 10)]
MNIST = "vnncomp2021/mnistfc/mnist-net_256x2.onnx"
PINN = "pinn/burgers_tanh_lbfgs.onnx"
N_SAMPLES = 64


def ort_session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_rows(path: Path, x: np.ndarray, row_shape: tuple[int, ...]) -> np.ndarray:
    """onnxruntime one sample at a time (these models have a fixed batch dimension of 1)."""
    sess = ort_session(path)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: row.reshape(row_shape)})[0] for row in x])


def assert_close_to_ort(ours: np.ndarray, ref: np.ndarray) -> None:
    # fixed left-fold order vs onnxruntime's summation order / FMA; see the module docstring
    assert ours.shape == ref.shape
    bad = ~(np.abs(ours - ref) <= 1e-5 + 1e-4 * np.abs(ref))
    assert not bad.any(), f"max |diff| {np.max(np.abs(ours - ref))} at {np.argwhere(bad)[:3].tolist()}"


def check_round_trip(graph, *inputs) -> None:
    """Printed text identical, params bit-identical, outputs of the reloaded graph bit-identical."""
    text = str(graph)
    assert text.startswith("graph(") and "return %" in text
    blob = dumps(graph)
    again = loads(blob)
    assert str(again) == text and dumps(again) == blob
    assert len(again.params) == len(graph.params)
    for p, q in zip(graph.params, again.params):
        assert p.value == q.value and same_bits(p.data, q.data)
    for a, b in zip(run(graph, *inputs), run(again, *inputs)):
        assert same_bits(a, b)


def test_all_45_acas_nets_are_present(shared_benchmarks):
    found = sorted(p.name for p in (shared_benchmarks / "vnncomp2021" / "acasxu").glob("*.onnx"))
    assert found == sorted(Path(a).name for a in ACAS)


@pytest.mark.parametrize("rel", ACAS, ids=[Path(a).stem.replace("ACASXU_run2a_", "acas_") for a in ACAS])
def test_acasxu(shared_benchmarks, rel):
    path = shared_benchmarks / rel
    graph = load_onnx(path)
    assert [v.shape for v in graph.inputs] == [(1, 1, 1, 5)]
    assert graph.ops_used() == ["sub", "reshape", "matmul", "add", "relu"]
    assert sum(e.op == "relu" for e in graph.equations) == 6
    x = np.random.default_rng(sum(map(ord, rel))).uniform(-0.5, 0.5, (N_SAMPLES, 1, 1, 5)).astype(np.float32)
    batched = rebuild(graph, [x.shape])  # Flatten became reshape (0, -1): any batch size works
    ours = run(batched, x)[0]
    assert_close_to_ort(ours, ort_rows(path, x, (1, 1, 1, 5)))
    check_round_trip(batched, x)
    assert same_bits(run(graph, x[:1])[0], ours[:1])  # batch rows are independent


def test_mnist_256x2(shared_benchmarks):
    path = shared_benchmarks / MNIST
    graph = load_onnx(path)
    assert graph.ops_used() == ["reshape", "linear", "relu"] and graph.param_count() == 269322
    x = np.random.default_rng(7).uniform(0, 1, (N_SAMPLES, 784, 1)).astype(np.float32)
    batched = rebuild(graph, [x.shape])
    ours = run(batched, x)[0]
    assert_close_to_ort(ours, ort_rows(path, x, (1, 784, 1)))
    check_round_trip(batched, x)


def test_burgers_pinn(shared_benchmarks):
    path = shared_benchmarks / PINN
    graph = load_onnx(path, batch_size=N_SAMPLES)
    assert graph.ops_used() == ["sub", "mul", "div", "linear", "tanh"] and graph.param_count() == 3441 + 6
    rng = np.random.default_rng(11)
    x = np.stack([rng.uniform(0, 1, N_SAMPLES), rng.uniform(-1, 1, N_SAMPLES)], axis=1).astype(np.float32)
    ours = run(graph, x)[0]
    sess = ort_session(path)
    assert_close_to_ort(ours, sess.run(None, {"input": x})[0])
    check_round_trip(graph, x)
    # spot values from the benchmark README (float64 re-implementation): u(1, 0), u(0.5, -0.5)
    spot = run(load_onnx(path, batch_size=2), np.array([[1, 0], [0.5, -0.5]], np.float32))[0]
    assert np.allclose(spot[:, 0], [-0.00458, 0.5928], atol=1e-4)
