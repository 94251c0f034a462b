"""Layers with PyTorch's names, parameter layouts and defaults, computing through ``bind``.

Initialisation is deterministic: every layer with parameters takes ``seed`` and draws from
``numpy.random.default_rng(seed)`` with PyTorch's default bounds (uniform in ±1/sqrt(fan_in) for
weight and bias). Load trained weights with ``load_state_dict`` or ``nnlemma.weights.load_npz``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..tensor import bind
from .module import Module, Parameter


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(x) for x in v)


def _uniform(rng, bound: float, shape) -> Parameter:
    return Parameter(rng.uniform(-bound, bound, size=shape))


class Identity(Module):
    def forward(self, x):
        return bind("identity", x)


class Sequential(Module):
    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x


class Linear(Module):
    """``y = x W^T + b`` with ``W`` of shape [out_features, in_features] (fixed-order fold)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(in_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _uniform(rng, bound, (out_features, in_features))
        self.bias = _uniform(rng, bound, (out_features,)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """NCHW 2-D convolution (cross-correlation), weight [out, in, kh, kw], symmetric padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, bias: bool = True, *, seed: int = 0):
        super().__init__()
        kh, kw = _pair(kernel_size)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(in_channels * kh * kw)
        self.stride, self.dilation = _pair(stride), _pair(dilation)
        ph, pw = _pair(padding)
        self.pads = (ph, pw, ph, pw)
        self.weight = _uniform(rng, bound, (out_channels, in_channels, kh, kw))
        self.bias = _uniform(rng, bound, (out_channels,)) if bias else None

    def forward(self, x):
        args = (x, self.weight) if self.bias is None else (x, self.weight, self.bias)
        return bind("conv2d", *args, stride=self.stride, pads=self.pads, dilation=self.dilation)


class _BatchNorm(Module):
    """Eval-mode batch norm over axis 1 with running statistics (PyTorch names)."""

    _ignored_state_keys = ("num_batches_tracked",)

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = Parameter(np.ones(num_features))
        self.bias = Parameter(np.zeros(num_features))
        self.register_buffer("running_mean", np.zeros(num_features))
        self.register_buffer("running_var", np.ones(num_features))

    def forward(self, x):
        return bind("batch_norm", x, self.running_mean, self.running_var, self.weight, self.bias, eps=self.eps)


class BatchNorm1d(_BatchNorm):
    pass


class BatchNorm2d(_BatchNorm):
    pass


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
        super().__init__()
        self.kernel = _pair(kernel_size)
        self.stride = self.kernel if stride is None else _pair(stride)
        ph, pw = _pair(padding)
        self.pads = (ph, pw, ph, pw)
        self.count_include_pad = int(count_include_pad)

    def forward(self, x):
        return bind("avg_pool2d", x, kernel=self.kernel, stride=self.stride, pads=self.pads,
                    count_include_pad=self.count_include_pad)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel = _pair(kernel_size)
        self.stride = self.kernel if stride is None else _pair(stride)
        ph, pw = _pair(padding)
        self.pads = (ph, pw, ph, pw)

    def forward(self, x):
        return bind("max_pool2d", x, kernel=self.kernel, stride=self.stride, pads=self.pads)


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim`` (PyTorch defaults 1, -1); leading dims are copied, so
    the result works for any batch size."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        nd = x.ndim
        s, e = self.start_dim % nd, self.end_dim % nd
        shape = (0,) * s + (-1,) + tuple(x.shape[e + 1:])
        return bind("reshape", x, shape=shape)


class ReLU(Module):
    def forward(self, x):
        return bind("relu", x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return bind("leaky_relu", x, alpha=self.negative_slope)


class Tanh(Module):
    def forward(self, x):
        return bind("tanh", x)


class Sigmoid(Module):
    def forward(self, x):
        return bind("sigmoid", x)


class Hardtanh(Module):
    def __init__(self, min_val: float = -1.0, max_val: float = 1.0):
        super().__init__()
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x):
        return bind("clamp", x, lo=self.min_val, hi=self.max_val)
