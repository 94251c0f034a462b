"""Training on the IR: losses, SGD and Adam, mini-batches, seeds, float32 or float64 arithmetic.

How a step is computed. The model is traced once per batch shape with its trainable parameters as
graph inputs (``trace_function(..., bound=)``: every op on them is recorded, also ops that do not
touch the data, such as a PINN's boundary term), and the reverse-mode derivative of that graph with respect to them (:func:`nnlemma.vjp`), traced once as well and pruned, is a
*gradient graph* ``(x, ∂L/∂y, *params) -> (∂L/∂param, ...)``. Each step evaluates it at the
current weights: with the float32 kernel (``dtype="float32"``, the semantics nnlemma verifies) or
with the float64 reference interpreter (``dtype="float64"``, :mod:`nnlemma.float64`), in which case
the optimiser keeps float64 master weights and the model receives them rounded to float32 (nearest
even) at the end. The loss and its gradient ``∂L/∂y`` are computed in numpy in the same dtype, so
no ``log`` op is needed in the IR:

* ``mse``: ``mean((y − t)²)`` over every element, gradient ``2(y − t)/n``;
* ``cross_entropy``: ``mean_i(logsumexp(z_i) − z_i[label_i])`` with integer labels (a stable
  logsumexp), gradient ``(softmax(z_i) − onehot_i)/N``.

Randomness: the only random choice here is the mini-batch order, drawn from
``numpy.random.default_rng(seed)``; with the same seed, data and model, a run is reproducible bit
for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import InputError
from .float64 import run64
from .interpret import run
from .ir.transforms import prune
from .nn.module import Module
from .tensor import Tensor, trace_function

F32 = np.float32


def mse(y: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """``mean((y − t)²)`` and its gradient with respect to y."""
    d = y - target
    return float(np.mean(d * d)), 2 * d / d.size


def cross_entropy(z: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of logits ``z [N, C]`` against integer ``labels [N]``."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if z.ndim != 2 or labels.shape[0] != z.shape[0] or labels.min() < 0 or labels.max() >= z.shape[1]:
        raise InputError(f"cross_entropy needs logits [N, C] and N labels in [0, C); got {list(z.shape)} "
                         f"and {labels.shape[0]} labels")
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(z.shape[0])
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - z[rows, labels])
    grad = e / s
    grad[rows, labels] -= 1
    return float(loss), grad / z.shape[0]


LOSSES: dict[str, Callable] = {"mse": mse, "cross_entropy": cross_entropy}


@dataclass
class SGD:
    """``v = momentum·v + g``; ``p −= lr·v`` (plain SGD with momentum 0)."""
    lr: float = 1e-2
    momentum: float = 0.0
    _v: dict = field(default_factory=dict, repr=False)

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        v = self._v.get(name)
        v = g if v is None or self.momentum == 0 else self.momentum * v + g
        self._v[name] = v
        return p - p.dtype.type(self.lr) * v


@dataclass
class Adam:
    """Adam (Kingma & Ba) with bias correction."""
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    _state: dict = field(default_factory=dict, repr=False)

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        m, v, t = self._state.get(name, (np.zeros_like(p), np.zeros_like(p), 0))
        t += 1
        dt = p.dtype.type
        m = dt(self.beta1) * m + dt(1 - self.beta1) * g
        v = dt(self.beta2) * v + dt(1 - self.beta2) * g * g
        self._state[name] = (m, v, t)
        m_hat = m / dt(1 - self.beta1 ** t)
        v_hat = v / dt(1 - self.beta2 ** t)
        return p - dt(self.lr) * m_hat / (np.sqrt(v_hat) + dt(self.eps))


class _GradientGraphs:
    """Per batch shape: ``fn``'s graph with the trainable tensors as inputs, and its pruned
    gradient graph ``(x, ∂L/∂y, *params) -> (∂L/∂param, ...)``."""

    def __init__(self, fn, tensors: dict[str, Tensor], names: list[str]):
        self.fn, self.tensors, self.names, self._cache = fn, tensors, names, {}

    def get(self, shape: tuple[int, ...]):
        hit = self._cache.get(shape)
        if hit is None:
            from .autodiff import vjp
            # the trainable tensors are graph inputs while fn is traced, so every op on them is
            # recorded (not folded into a constant), however fn reaches them
            fwd, single = trace_function(self.fn, [np.zeros(shape, F32)], {id(t): n for n, t in self.tensors.items()},
                                         bound=[self.tensors[n] for n in self.names])
            if not single:
                raise InputError("training needs a function with one output")
            out_shape = fwd.output_values[0].shape
            ex = [np.zeros(shape, F32), np.zeros(out_shape, F32)] + [self.tensors[n].numpy() for n in self.names]

            def grads(x, ct, *ps):
                return vjp(fwd, x, *ps)[1](ct)[1:]
            bwd, _ = trace_function(grads, ex)
            hit = self._cache[shape] = (fwd, prune(bwd))
        return hit


def _check_names(params: dict, trainable) -> list[str]:
    names = list(params) if trainable is None else list(trainable)
    unknown = [n for n in names if n not in params]
    if unknown:
        raise InputError(f"no trainable parameter {unknown[0]!r} (parameters: {sorted(params)})")
    return names


def _train(fn, tensors: dict, params: dict, names: list[str], X: np.ndarray, step_loss, opt, epochs: int,
           batch_size: int, seed: int, dtype: str, progress: bool) -> list[float]:
    """The loop shared by :func:`fit` and :func:`minimize`; ``step_loss(y, idx) -> (value, ∂L/∂y)``."""
    if dtype not in ("float32", "float64"):
        raise InputError(f"dtype must be float32 or float64, not {dtype!r}")
    if batch_size < 1 or epochs < 0:
        raise InputError(f"batch_size must be >= 1 and epochs >= 0 (got {batch_size}, {epochs})")
    dt = np.float64 if dtype == "float64" else F32
    weights = {n: params[n].numpy().astype(dt) for n in names}
    graphs = _GradientGraphs(fn, tensors, names)
    evaluate = run64 if dtype == "float64" else (lambda g, *xs: run(g, *xs))
    rng = np.random.default_rng(seed)
    history = []
    bar = None
    if progress:
        import sys

        from tqdm import tqdm
        bar = tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)
    for _ in range(epochs):
        order = rng.permutation(len(X))
        total = 0.0
        for s in range(0, len(X), batch_size):
            idx = order[s:s + batch_size]
            xb = X[idx]
            fwd, bwd = graphs.get(xb.shape)
            ws = [weights[n] for n in names]
            value, ct = step_loss(np.asarray(evaluate(fwd, xb, *ws)[0], dt), idx)
            total += value * len(idx)
            grads = evaluate(bwd, xb, np.asarray(ct, dt), *ws)
            for n, g in zip(names, grads):
                weights[n] = opt.update(n, weights[n], np.asarray(g, dt))
        history.append(total / len(X))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]:.4g}", refresh=False)
    if bar is not None:
        bar.close()
    for n in names:
        params[n].assign(weights[n].astype(F32), n)
    return history


def _rows(a, what: str) -> np.ndarray:
    a = np.asarray(a.numpy() if isinstance(a, Tensor) else a)
    if a.ndim == 0 or len(a) == 0:
        raise InputError(f"{what} needs at least one row")
    return a


def fit(model: Module, X, Y, *, loss: str | Callable = "mse", optimizer=None, epochs: int = 10,
        batch_size: int = 32, seed: int = 0, dtype: str = "float32", trainable: list[str] | None = None,
        progress: bool = False) -> list[float]:
    """Train ``model`` in place on ``(X, Y)``; returns the mean loss of every epoch.

    ``loss`` is ``"mse"``, ``"cross_entropy"`` or a function ``(y, target) -> (value, ∂L/∂y)``;
    ``optimizer`` defaults to ``Adam()``; ``trainable`` names the parameters to train (default:
    every Parameter, not buffers). The last partial batch of an epoch is used as it is (its own
    traced graphs)."""
    if isinstance(loss, str) and loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r}; use {sorted(LOSSES)} or a function")
    loss_fn = LOSSES[loss] if isinstance(loss, str) else loss
    X, Y = _rows(X, "X").astype(F32), _rows(Y, "Y")
    if len(X) != len(Y):
        raise InputError(f"X and Y need the same positive number of rows (got {len(X)} and {len(Y)})")
    params = dict(model.named_parameters())
    names = _check_names(params, trainable)
    dt = np.float64 if dtype == "float64" else F32

    def step_loss(y, idx):
        yb = Y[idx]
        return loss_fn(y, yb.astype(dt) if np.issubdtype(yb.dtype, np.floating) else yb)
    return _train(model, dict(model.named_tensors()), params, names, X, step_loss, optimizer or Adam(), epochs,
                  batch_size, seed, dtype, progress)


def minimize(objective: Callable, params: dict[str, Tensor] | Module, X, *, optimizer=None, epochs: int = 10,
             batch_size: int = 32, seed: int = 0, dtype: str = "float32", progress: bool = False) -> list[float]:
    """Minimise ``objective(x_batch)`` — any function of a batch of rows of ``X`` returning one
    scalar tensor, written with nnlemma ops (it may use ``nl.grad``/``nl.jvp``, e.g. a PINN
    residual) — over the named tensors ``params`` (or a module's parameters), in place. Returns
    the mean objective of every epoch (weighted by batch size)."""
    named = dict(params.named_parameters()) if isinstance(params, Module) else dict(params)
    X = _rows(X, "X").astype(F32)

    def step_loss(y, idx):
        if y.size != 1:
            raise InputError(f"the objective must return one scalar, got shape {list(y.shape)}")
        return float(y.reshape(())), np.ones(y.shape, y.dtype)
    return _train(objective, named, named, list(named), X, step_loss, optimizer or Adam(), epochs, batch_size, seed,
                  dtype, progress)
