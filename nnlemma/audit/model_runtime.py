"""A whole model executed by a deployment runtime (numpy, torch, onnxruntime) in float32.

* ``numpy``: the graph interpreted with numpy's own float32 operations (``@`` is BLAS sgemm, with
  its blocking, summation order and FMA; ``np.mean`` sums pairwise; transcendentals are numpy's).
* ``torch``: the graph interpreted with torch CPU operations (``F.linear``, ``F.conv2d``, ...).
* ``onnxruntime``: the graph exported to ONNX (:func:`nnlemma.onnx.export.to_model`) and run by an
  onnxruntime CPU session with its default graph optimisations (fusions included).

Each runner maps a batch of float32 input vectors to float32 outputs; an op a runner cannot express
is an :class:`~nnlemma.errors.InputError` naming the op and node.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import InputError
from ..float64 import F64_RULES
from ..interpret import interpret
from ..ir.graph import Graph

F32 = np.float32


def _f32(fn: Callable) -> Callable:
    def rule(*args, **attrs):
        return np.asarray(fn(*args, **attrs), F32)
    return rule


def _numpy_rules() -> dict[str, Callable]:
    rules = {op: _f32(fn) for op, fn in F64_RULES.items()}
    rules["leaky_relu"] = _f32(lambda x, *, alpha: np.where(x > 0, x, F32(alpha) * x))
    rules["clamp"] = _f32(lambda x, *, lo, hi: np.minimum(np.maximum(x, F32(lo)), F32(hi)))
    rules["sigmoid"] = _f32(lambda x: F32(1) / (F32(1) + np.exp(-x)))
    del rules["batch_norm"]  # F64_RULES computes it with a float64 eps: not a float32 runtime
    return rules


def _torch_rules() -> dict[str, Callable]:
    import torch
    import torch.nn.functional as F

    from ..ir.shapes import index_tuple, resolve_reshape

    def t(v):
        return v if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v, F32))

    def pad(x, pads, value=0.0):  # nnlemma pads: (top, left, bottom, right)
        return F.pad(x, (pads[1], pads[3], pads[0], pads[2]), value=value) if any(pads) else x

    def conv(x, w, b=None, *, stride, pads, dilation):
        return F.conv2d(pad(t(x), pads), t(w), None if b is None else t(b), stride=tuple(stride), dilation=tuple(dilation))

    def max_pool(x, *, kernel, stride, pads):
        return F.max_pool2d(pad(t(x), pads, -float("inf")), tuple(kernel), tuple(stride or kernel))

    rules = {
        "identity": lambda x: t(x), "neg": lambda x: -t(x), "abs": lambda x: t(x).abs(),
        "relu": lambda x: torch.relu(t(x)), "leaky_relu": lambda x, *, alpha: F.leaky_relu(t(x), alpha),
        "clamp": lambda x, *, lo, hi: torch.clamp(t(x), lo, hi), "tanh": lambda x: torch.tanh(t(x)),
        "sigmoid": lambda x: torch.sigmoid(t(x)), "exp": lambda x: torch.exp(t(x)), "sin": lambda x: torch.sin(t(x)),
        "cos": lambda x: torch.cos(t(x)), "sqrt": lambda x: torch.sqrt(t(x)), "square": lambda x: t(x) * t(x),
        "add": lambda a, b: t(a) + t(b), "sub": lambda a, b: t(a) - t(b), "mul": lambda a, b: t(a) * t(b),
        "div": lambda a, b: t(a) / t(b), "maximum": lambda a, b: torch.maximum(t(a), t(b)),
        "minimum": lambda a, b: torch.minimum(t(a), t(b)),
        "linear": lambda x, w, b=None: F.linear(t(x), t(w), None if b is None else t(b)),
        "matmul": lambda a, b: t(a) @ t(b),
        "sum": lambda x, *, axes, keepdims: torch.sum(t(x), dim=tuple(axes), keepdim=bool(keepdims)),
        "mean": lambda x, *, axes, keepdims: torch.mean(t(x), dim=tuple(axes), keepdim=bool(keepdims)),
        "reshape": lambda x, *, shape: t(x).reshape(resolve_reshape(tuple(t(x).shape), shape)),
        "transpose": lambda x, *, perm: t(x).permute(*perm), "slice": lambda x, *, index: t(x)[index_tuple(index)],
        "concat": lambda *xs, axis: torch.cat([t(v) for v in xs], axis),
        "conv2d": conv, "max_pool2d": max_pool,
    }
    return rules


def _run_interpreted(rules: dict, graph: Graph, x: np.ndarray, name: str) -> list[np.ndarray]:
    missing = [e for e in graph.equations if e.op not in rules]
    if missing:
        raise InputError(f"the {name} runner has no implementation of op {missing[0].op!r} "
                         f"(at {missing[0].describe()})")
    env = interpret(graph, rules, [x])
    return [np.asarray(env[o].numpy() if hasattr(env[o], "numpy") else env[o], F32) for o in graph.outputs]


def model_runner(name: str, graph: Graph) -> Callable[[np.ndarray], np.ndarray]:
    """``run(x)``: the flattened first output of ``graph`` at input ``x`` (float32, the graph's
    input shape), executed by runtime ``name``."""
    from .runtime import RUNTIMES
    if name not in RUNTIMES:
        raise InputError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
    if len(graph.inputs) != 1:
        raise InputError(f"model audits need a model with one input, this one has {len(graph.inputs)}")
    shape = graph.inputs[0].shape
    try:
        if name == "numpy":
            rules = _numpy_rules()
            return lambda x: _run_interpreted(rules, graph, np.asarray(x, F32).reshape(shape), name)[0].reshape(-1)
        if name == "torch":
            import torch
            rules = _torch_rules()

            def run_torch(x):
                with torch.no_grad():
                    return _run_interpreted(rules, graph, np.asarray(x, F32).reshape(shape), name)[0].reshape(-1)
            return run_torch
        import onnxruntime as ort

        from ..onnx.export import to_model
        sess = ort.InferenceSession(to_model(graph).SerializeToString(), providers=["CPUExecutionProvider"])
        feed = sess.get_inputs()[0].name
        return lambda x: np.asarray(sess.run(None, {feed: np.asarray(x, F32).reshape(shape)})[0], F32).reshape(-1)
    except ImportError:
        pip = {"torch": "torch==2.13.0", "onnxruntime": "onnxruntime"}[name]
        raise InputError(f"runtime {name!r} is not installed (pip install {pip}); skipped") from None
