"""nnlemma: neural-network guarantees with one float32 semantics for execution and verification.

``import nnlemma as nl`` gives the PyTorch-style API (``nl.tensor``, ``nl.nn``, functional ops),
``nl.compile`` (trace to the SSA IR), ``nl.run`` (the float32 kernel on a graph) and
``nl.load_onnx``, ``nl.bounds`` (IBP, CROWN, alpha-CROWN) and ``nl.verify`` (VNN-LIB properties,
callable). The exact float32 semantics of every op is in SEMANTICS.md.
"""

from . import autodiff, bounds, ir, nn, ops, train, verify, vnnlib
from .autodiff import call, grad, jvp, vjp
from .compile import CompiledGraph, compile
from .errors import (DerivativeError, InputError, IRError, KernelError, ModelLoadError, NnlemmaError, ShapeError,
                     UnsupportedOpError)
from .functional import (abs, clamp, concat, cos, exp, hardtanh, leaky_relu, linear, maximum, mean, minimum,
                         neg, relu, reshape, sigmoid, sin, sqrt, square, stack, step, sum, tanh, transpose)
from .interpret import run
from .model_io import load_model
from .tensor import Tensor, bind, tensor
from .weights import load_npz, save_npz


def export_onnx(graph, path, **kwargs):
    """Write an IR graph as ONNX (see :mod:`nnlemma.onnx.export`)."""
    from .onnx.export import export_onnx as _export

    return _export(graph.graph if isinstance(graph, CompiledGraph) else graph, path, **kwargs)


def from_torch(module):
    """The ``nl.nn`` equivalent of a Sequential-style torch module (see :mod:`nnlemma.torch_io`)."""
    from .torch_io import from_torch as _from

    return _from(module)


def load_pth(path):
    """A ``.pth`` checkpoint's tensors by name, read with ``weights_only=True`` (:mod:`nnlemma.torch_io`)."""
    from .torch_io import load_pth as _load

    return _load(path)


def load_onnx(path, **kwargs):
    """Load an ONNX model as an IR graph (see :mod:`nnlemma.onnx_import`)."""
    from .onnx_import import load_onnx as _load

    return _load(path, **kwargs)


__version__ = "0.1.0"
__all__ = [
    "CompiledGraph", "DerivativeError", "autodiff", "export_onnx", "from_torch", "load_pth", "train", "bounds", "call", "grad", "jvp", "vjp", "verify", "vnnlib", "IRError", "InputError", "KernelError", "ModelLoadError", "NnlemmaError", "ShapeError",
    "Tensor", "UnsupportedOpError", "abs", "bind", "clamp", "compile", "concat", "cos", "exp", "hardtanh",
    "ir", "leaky_relu", "linear", "load_model", "load_npz", "load_onnx", "maximum", "mean", "minimum",
    "neg", "nn", "ops", "relu", "reshape", "run", "save_npz", "sigmoid", "sin", "sqrt", "square",
    "stack", "step", "sum", "tanh", "tensor", "transpose",
]
