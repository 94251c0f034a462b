"""``Module`` and ``Parameter``: a PyTorch-style container with PyTorch's state-dict naming.

Parameters and buffers are concrete float32 tensors; ``state_dict()`` returns copies keyed like
PyTorch (``"0.weight"``, ``"layers.2.bias"``, ``"bn.running_mean"``), and ``load_state_dict``
checks keys (listing every missing and unexpected key) and shapes, rounding non-float32 arrays to
float32 (nearest even).
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ..errors import InputError
from ..ir.builder import as_f32_array
from ..tensor import Tensor


class Parameter(Tensor):
    """A trainable concrete tensor. ``p.assign(array)`` replaces its value (same shape)."""

    __slots__ = ()

    def assign(self, data: Any, name: str = "parameter") -> None:
        arr = as_f32_array(data, name)
        if arr.shape != self.shape:
            raise InputError(f"{name}: expected shape {list(self.shape)}, got {list(arr.shape)}")
        self._data = arr


class Module:
    """Base class. Subclasses set attributes (Parameters, buffers via ``register_buffer``,
    sub-Modules) in ``__init__`` and implement ``forward``."""

    _ignored_state_keys: tuple[str, ...] = ()

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if "_params" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        for table in (self._params, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._params[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, data: Any) -> None:
        """A non-trainable state tensor (e.g. running statistics) that is part of the state dict."""
        buf = Parameter(data)
        object.__setattr__(self, name, buf)
        self._buffers[name] = buf

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args):
        return self.forward(*args)

    # -- traversal ---------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}{name}.")

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for prefix, m in self.named_modules():
            for name, p in m._params.items():
                yield prefix + name, p

    def named_tensors(self) -> Iterator[tuple[str, Parameter]]:
        """Parameters and buffers in registration order, with state-dict names."""
        for prefix, m in self.named_modules():
            for name, p in {**m._params, **m._buffers}.items():
                yield prefix + name, p

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: t.numpy() for name, t in self.named_tensors()}

    def _ignored_keys(self) -> set[str]:
        return {prefix + k for prefix, m in self.named_modules() for k in m._ignored_state_keys}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Load arrays by PyTorch-style names. With ``strict``, missing or unexpected keys are an
        error that lists all of them. Shapes must match exactly."""
        own = dict(self.named_tensors())
        ignored = self._ignored_keys()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own) - ignored)
        if strict and (missing or unexpected):
            raise InputError(f"state dict does not match {type(self).__name__}: "
                             f"missing {missing or 'none'}, unexpected {unexpected or 'none'}")
        for name, t in own.items():
            if name in state:
                t.assign(np.asarray(state[name]), name)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in self._modules.items())
        extra = self.extra_repr()
        return f"{type(self).__name__}({extra}{inner}{chr(10) if inner else ''})"

    def extra_repr(self) -> str:
        return ""
