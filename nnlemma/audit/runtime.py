"""``nnlemma audit runtime``: where a deployment runtime's float32 ops differ from nnlemma's spec.

For each op the runtime's own float32 implementation (numpy ufuncs, torch CPU ops, or a one-node
ONNX model in onnxruntime) and the spec (the float32 kernel, audited against IEEE by ``audit
kernel``) run on the same inputs: the edge corpus (±0, subnormals, ±max, ±inf, NaN patterns, one
ulp apart) — crossed with itself for binary ops — and float32 bit patterns strided over the whole
range (``stride``; 1 is exhaustive). Reported per op: inputs checked, mismatches (NaN-aware, bit
for bit otherwise), the largest distance in ulps between finite results, the first examples with
bit patterns, and named behaviours (relu(NaN), relu(−0), maximum(−0, +0), maximum(NaN, 1),
subnormal inputs flushed to zero).

Dot products: the runtime's ``x @ w`` against the kernel's fixed left fold on random and on
cancellation-heavy inputs (large terms that cancel, leaving a small sum), next to the sound bound
``γ_n·Σ|x_i·w_i|`` on the deviation of ANY summation order of that length from the exact sum,
which also bounds the gap between two orders up to a factor 2.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..errors import InputError
from ..kernels import KERNEL_RULES
from ..kernels.edge import EDGE_F32, NAN_PATTERNS
from .sweep import MAX_EXAMPLES, compare, finish, merge_finished, sweep

F32 = np.float32
U32 = np.uint32
UNARY = ("relu", "abs", "neg", "exp", "tanh", "sigmoid", "sin", "cos", "sqrt")
BINARY = ("add", "sub", "mul", "div", "maximum", "minimum")
RUNTIMES = ("numpy", "torch", "onnxruntime")


def _numpy_ops() -> dict[str, Callable]:
    return {
        "relu": lambda x: np.maximum(x, F32(0)), "abs": np.abs, "neg": np.negative, "exp": np.exp,
        "tanh": np.tanh, "sigmoid": lambda x: F32(1) / (F32(1) + np.exp(-x)), "sin": np.sin, "cos": np.cos,
        "sqrt": np.sqrt, "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
        "maximum": np.maximum, "minimum": np.minimum, "dot": lambda x, w: x @ w,
    }


def _torch_ops() -> dict[str, Callable]:
    import torch
    t = torch.from_numpy

    def wrap(f):
        return lambda *a: f(*(t(np.ascontiguousarray(v)) for v in a)).numpy()
    return {
        "relu": wrap(torch.relu), "abs": wrap(torch.abs), "neg": wrap(torch.neg), "exp": wrap(torch.exp),
        "tanh": wrap(torch.tanh), "sigmoid": wrap(torch.sigmoid), "sin": wrap(torch.sin), "cos": wrap(torch.cos),
        "sqrt": wrap(torch.sqrt), "add": wrap(torch.add), "sub": wrap(torch.sub), "mul": wrap(torch.mul),
        "div": wrap(torch.div), "maximum": wrap(torch.maximum), "minimum": wrap(torch.minimum),
        "dot": wrap(torch.matmul),
    }


def _onnx_ops() -> dict[str, Callable]:
    import onnxruntime as ort
    from onnx import TensorProto, helper
    names = {"relu": "Relu", "abs": "Abs", "neg": "Neg", "exp": "Exp", "tanh": "Tanh", "sigmoid": "Sigmoid",
             "sin": "Sin", "cos": "Cos", "sqrt": "Sqrt", "add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div",
             "maximum": "Max", "minimum": "Min", "dot": "MatMul"}
    cache: dict = {}

    def run(op, *args):
        key = (op,) + tuple(a.shape for a in args)
        sess = cache.get(key)
        if sess is None:
            ins = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, list(a.shape)) for i, a in enumerate(args)]
            out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
            node = helper.make_node(names[op], [f"x{i}" for i in range(len(args))], ["y"])
            model = helper.make_model(helper.make_graph([node], op, ins, [out]),
                                      opset_imports=[helper.make_opsetid("", 17)])
            model.ir_version = 8
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1  # elementwise ops: threads only add noise; sweeps parallelise by process
            sess = cache[key] = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return sess.run(None, {f"x{i}": np.ascontiguousarray(a, F32) for i, a in enumerate(args)})[0]
    return {op: (lambda *a, _op=op: run(_op, *a)) for op in names}


def runtime_ops(name: str) -> dict[str, Callable]:
    """The runtime's float32 implementations by op; :class:`InputError` if it is not installed."""
    if name not in RUNTIMES:
        raise InputError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
    try:
        return {"numpy": _numpy_ops, "torch": _torch_ops, "onnxruntime": _onnx_ops}[name]()
    except ImportError:
        pip = {"torch": "torch==2.13.0", "onnxruntime": "onnxruntime"}[name]
        raise InputError(f"runtime {name!r} is not installed (pip install {pip}); skipped") from None


def _edges(binary: bool, n_random: int, seed: int) -> tuple[np.ndarray, ...]:
    """The edge corpus (crossed with itself plus ``n_random`` random pairs for binary ops)."""
    edge = np.concatenate([EDGE_F32, np.array(NAN_PATTERNS, U32).view(F32)])
    if not binary:
        return (edge,)
    a, b = (v.reshape(-1) for v in np.meshgrid(edge, edge, indexing="ij"))
    rng = np.random.default_rng(seed)
    ra, rb = (rng.integers(0, 1 << 32, n_random, dtype=np.uint64).astype(U32).view(F32) for _ in range(2))
    return np.concatenate([a, ra]), np.concatenate([b, rb])


def _behaviours(ops: dict) -> dict[str, str]:
    def show(v):
        v = np.asarray(v, F32).reshape(-1)[0]
        return f"{float(v)!r} (0x{int(v.view(U32)):08x})"
    out = {}
    with np.errstate(all="ignore"):
        nan, neg0, pos0, sub = F32(np.nan), F32(-0.0), F32(0.0), F32(1e-45)
        out["relu(NaN)"] = show(ops["relu"](np.array([nan], F32)))
        out["relu(-0)"] = show(ops["relu"](np.array([neg0], F32)))
        out["maximum(-0, +0)"] = show(ops["maximum"](np.array([neg0], F32), np.array([pos0], F32)))
        out["maximum(+0, -0)"] = show(ops["maximum"](np.array([pos0], F32), np.array([neg0], F32)))
        out["maximum(NaN, 1)"] = show(ops["maximum"](np.array([nan], F32), np.array([F32(1)], F32)))
        out["maximum(1, NaN)"] = show(ops["maximum"](np.array([F32(1)], F32), np.array([nan], F32)))
        out["subnormal 1e-45 * 1"] = show(ops["mul"](np.array([sub], F32), np.array([F32(1)], F32)))
    return out


def audit_op(name: str, ops: dict, op: str, stride: int = 1 << 12, seed: int = 0, jobs: int | None = None,
             progress: Callable[[int], None] | None = None) -> dict:
    """One op of a runtime against the spec kernel: the edge corpus, then (unary ops) every
    ``stride``-th float32 bit pattern (:func:`nnlemma.audit.sweep.sweep`; 1 is exhaustive) or
    (binary ops) 2^32/stride random pairs."""
    t0 = time.perf_counter()
    binary = op in BINARY
    args = _edges(binary, max(1, (1 << 32) // stride), seed)
    with np.errstate(all="ignore"):
        got = np.asarray(ops[op](*args), F32).reshape(-1)
        want = np.asarray(KERNEL_RULES[op](*args), F32).reshape(-1)
    stats = compare(args[0], got, want)
    if binary:  # examples name both operands
        stats["examples"], stats["worst"] = [], None
        res = finish(stats)
        bad = np.flatnonzero(~((got.view(U32) == want.view(U32)) | (np.isnan(got) & np.isnan(want))))
        res["examples"] = [{"input": ", ".join(f"0x{int(a[i].view(U32)):08x}" for a in args),
                            "runtime": f"0x{int(got[i].view(U32)):08x}", "spec": f"0x{int(want[i].view(U32)):08x}"}
                           for i in bad[:MAX_EXAMPLES]]
    else:
        swept = sweep(op, [name], stride=stride, jobs=jobs, progress=progress)[name]
        res = dict(merge_finished([finish(stats), swept]), range=swept["range"], stride=stride)
        res["exhaustive"] = stride == 1
    res.update(op=op, seconds=round(time.perf_counter() - t0, 3))
    return res


def audit_dot(ops: dict, n: int = 256, trials: int = 200, seed: int = 0) -> dict:
    """The runtime's dot product against the kernel's fold: largest deviation in units of the sound
    order-free bound γ_n·Σ|x·w| (random and cancelling inputs)."""
    from ..kernels.fold import linear
    rng = np.random.default_rng(seed)
    worst, worst_abs = 0.0, 0.0
    u = 2.0 ** -24
    gamma = n * u / (1 - n * u)
    for t in range(trials):
        x = rng.standard_normal((1, n)).astype(F32)
        w = rng.standard_normal((n, 1)).astype(F32)
        if t % 2:  # cancellation: pairs of large terms of opposite sign, then a small remainder
            x[0, : n // 2] *= F32(1e4)
            x[0, n // 2: n] = x[0, : n // 2] * F32(-1)
            w[n // 2:, 0] = w[: n // 2, 0]
        with np.errstate(all="ignore"):
            got = float(np.asarray(ops["dot"](x, w), F32).reshape(-1)[0])
            want = float(linear(x, w.T).reshape(-1)[0])
        bound = gamma * float(np.abs(x.astype(np.float64) * w[:, 0].astype(np.float64)).sum())
        dev = abs(got - want)
        worst_abs = max(worst_abs, dev)
        if bound > 0:
            worst = max(worst, dev / bound)
    return {"op": "dot", "length": n, "trials": trials, "max_abs_deviation": worst_abs,
            "max_deviation_over_order_free_bound": worst,
            "note": "any two summation orders differ by at most 2x the order-free bound"}


def audit_runtime(name: str, stride: int = 1 << 12, ops_filter: list[str] | None = None, jobs: int | None = None,
                  progress: Callable[[int], None] | None = None) -> dict:
    """Every chosen op of runtime ``name`` against the spec, its named behaviours and its dot."""
    ops = runtime_ops(name)
    chosen = ops_filter or list(UNARY) + list(BINARY)
    unknown = [o for o in chosen if o not in UNARY + BINARY]
    if unknown:
        raise InputError(f"unknown op {unknown[0]!r}; runtime audit ops: {', '.join(UNARY + BINARY)}")
    return {"runtime": name, "stride": stride, "behaviours": _behaviours(ops),
            "ops": {op: audit_op(name, ops, op, stride, jobs=jobs, progress=progress) for op in chosen}, "dot": audit_dot(ops)}


def runtime_versions() -> dict[str, str | None]:
    """Installed version of each runtime (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version
    out: dict[str, str | None] = {"numpy": np.__version__}
    for name in ("torch", "onnxruntime"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
