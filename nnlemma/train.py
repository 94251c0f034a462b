"""Training on the IR: losses, SGD and Adam, mini-batches, seeds, float32 or float64 arithmetic.

How a step is computed. The model is traced once per batch shape; its trainable parameters become
graph inputs (:func:`nnlemma.ir.transforms.params_as_inputs`), and the reverse-mode derivative of
that graph with respect to them (:func:`nnlemma.vjp`), traced once as well and pruned, is a
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
from .ir.transforms import params_as_inputs, prune
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
    """The model's forward and gradient graphs per batch shape, params as inputs."""

    def __init__(self, model: Module, names: list[str]):
        self.model, self.names, self._cache = model, names, {}

    def get(self, shape: tuple[int, ...]):
        hit = self._cache.get(shape)
        if hit is None:
            from .autodiff import vjp
            tensors = dict(self.model.named_tensors())
            g, single = trace_function(self.model, [np.zeros(shape, F32)], {id(t): n for n, t in tensors.items()})
            if not single:
                raise InputError("training needs a model with one output")
            fwd = params_as_inputs(g, self.names)
            out_shape = fwd.output_values[0].shape
            ex = [np.zeros(shape, F32), np.zeros(out_shape, F32)] + [tensors[n].numpy() for n in self.names]

            def grads(x, ct, *ps):
                return vjp(fwd, x, *ps)[1](ct)[1:]
            bwd, _ = trace_function(grads, ex)
            hit = self._cache[shape] = (fwd, prune(bwd))
        return hit


def fit(model: Module, X, Y, *, loss: str | Callable = "mse", optimizer=None, epochs: int = 10,
        batch_size: int = 32, seed: int = 0, dtype: str = "float32", trainable: list[str] | None = None,
        progress: bool = False) -> list[float]:
    """Train ``model`` in place on ``(X, Y)``; returns the mean loss of every epoch.

    ``loss`` is ``"mse"``, ``"cross_entropy"`` or a function ``(y, target) -> (value, ∂L/∂y)``;
    ``optimizer`` defaults to ``Adam()``; ``trainable`` names the parameters to train (default:
    every Parameter, not buffers). The last partial batch of an epoch is used as it is (its own
    traced graphs)."""
    if dtype not in ("float32", "float64"):
        raise InputError(f"dtype must be float32 or float64, not {dtype!r}")
    loss_fn = LOSSES[loss] if isinstance(loss, str) else loss
    if isinstance(loss, str) and loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r}; use {sorted(LOSSES)} or a function")
    opt = optimizer or Adam()
    X = np.asarray(X.numpy() if isinstance(X, Tensor) else X, F32)
    Y = np.asarray(Y.numpy() if isinstance(Y, Tensor) else Y)
    if len(X) != len(Y) or len(X) == 0:
        raise InputError(f"X and Y need the same positive number of rows (got {len(X)} and {len(Y)})")
    params = dict(model.named_parameters())
    names = list(params) if trainable is None else list(trainable)
    unknown = [n for n in names if n not in params]
    if unknown:
        raise InputError(f"no trainable parameter {unknown[0]!r} (parameters: {sorted(params)})")
    dt = np.float64 if dtype == "float64" else F32
    weights = {n: params[n].numpy().astype(dt) for n in names}
    graphs = _GradientGraphs(model, names)
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
            xb, yb = X[idx], Y[idx]
            fwd, bwd = graphs.get(xb.shape)
            ws = [weights[n] for n in names]
            y = np.asarray(evaluate(fwd, xb, *ws)[0], dt)
            value, ct = loss_fn(y, yb.astype(dt) if np.issubdtype(yb.dtype, np.floating) else yb)
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
