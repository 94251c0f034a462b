"""PyTorch interop (optional extra ``[torch]``: ``pip install torch==2.13.0``).

* :func:`from_torch` converts a Sequential-style ``torch.nn`` module (nested Sequentials of the
  layers below, in eval-mode semantics) into the matching ``nl.nn`` module, copying every weight
  as float32 (nearest even) under the same state-dict names. A layer or option nnlemma cannot
  express exactly is refused, all of them listed in one :class:`UnsupportedOpError`.
* :func:`load_pth` reads a ``.pth`` checkpoint with ``torch.load(weights_only=True)`` only: no
  pickled code ever runs. A checkpoint that needs full unpickling is refused with a one-line
  :class:`ModelLoadError`. Returns the tensors as numpy arrays by name (a ``state_dict`` entry of
  a training checkpoint is unwrapped), ready for ``Module.load_state_dict``.
* :func:`subset` picks the entries under a prefix and strips it (``"controller."``), for archives
  holding several networks — the Lyapunov ``.npz`` files load the same way.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import nn
from .errors import InputError, ModelLoadError, UnsupportedOpError

F32 = np.float32


def _torch():
    try:
        import torch
    except ImportError:
        raise InputError("PyTorch is not installed: pip install torch==2.13.0 (the [torch] extra)") from None
    return torch


def _arr(t) -> np.ndarray:
    return np.asarray(t.detach().cpu().numpy(), dtype=F32)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _convert(m, path: str, bad: list) -> nn.Module | None:
    torch = _torch()
    T = torch.nn
    if isinstance(m, T.Sequential):
        kids = [_convert(c, f"{path}.{name}" if path else name, bad) for name, c in m.named_children()]
        return None if any(k is None for k in kids) else nn.Sequential(*kids)
    simple = {T.ReLU: nn.ReLU, T.Tanh: nn.Tanh, T.Sigmoid: nn.Sigmoid, T.Identity: nn.Identity,
              T.Dropout: nn.Identity}
    for cls, ours in simple.items():
        if type(m) is cls:
            return ours()
    if type(m) is T.LeakyReLU:
        return nn.LeakyReLU(float(m.negative_slope))
    if type(m) is T.Hardtanh:
        return nn.Hardtanh(float(m.min_val), float(m.max_val))
    if type(m) is T.Flatten:
        return nn.Flatten(int(m.start_dim), int(m.end_dim))
    if type(m) is T.Linear:
        out = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        out.load_state_dict({k: _arr(v) for k, v in m.state_dict().items()})
        return out
    if type(m) is T.Conv2d:
        if m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str):
            bad.append((path, f"Conv2d(groups={m.groups}, padding={m.padding!r}, padding_mode={m.padding_mode!r}): "
                              "only groups=1 with numeric zero padding"))
            return None
        out = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                        bias=m.bias is not None)
        out.load_state_dict({k: _arr(v) for k, v in m.state_dict().items()})
        return out
    if type(m) in (T.BatchNorm1d, T.BatchNorm2d):
        if not m.track_running_stats:
            bad.append((path, f"{type(m).__name__} without running statistics"))
            return None
        out = (nn.BatchNorm1d if type(m) is T.BatchNorm1d else nn.BatchNorm2d)(m.num_features, float(m.eps))
        state = {k: _arr(v) for k, v in m.state_dict().items() if k != "num_batches_tracked"}
        if not m.affine:
            state.update(weight=np.ones(m.num_features, F32), bias=np.zeros(m.num_features, F32))
        out.load_state_dict(state)
        return out
    if type(m) in (T.AvgPool2d, T.MaxPool2d):
        if m.ceil_mode or (type(m) is T.MaxPool2d and _pair(m.dilation) != (1, 1)) or \
                (type(m) is T.AvgPool2d and m.divisor_override is not None):
            bad.append((path, f"{type(m).__name__} with ceil_mode, dilation or divisor_override"))
            return None
        if type(m) is T.AvgPool2d:
            return nn.AvgPool2d(m.kernel_size, m.stride, m.padding, bool(m.count_include_pad))
        return nn.MaxPool2d(m.kernel_size, m.stride, m.padding)
    bad.append((path or "<root>", type(m).__name__))
    return None


def from_torch(module) -> nn.Module:
    """The ``nl.nn`` equivalent of a Sequential-style torch module (eval-mode semantics)."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    bad: list = []
    out = _convert(module, "", bad)
    if bad:
        raise UnsupportedOpError("cannot convert from torch: " + "; ".join(f"{p}: {what}" for p, what in bad),
                                 [(what, p) for p, what in bad])
    return out


def load_pth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a ``.pth`` checkpoint, read with ``weights_only=True`` (never unpickling code)."""
    torch = _torch()
    try:
        obj: Any = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: no such file") from None
    except Exception as exc:  # torch raises UnpicklingError (or RuntimeError) for what it will not load
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{path}: refused: the checkpoint cannot be read with weights_only=True "
                             f"(it would need to unpickle code, which nnlemma never does): {first}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            out[str(k)] = _arr(v)
    return out


def subset(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The entries whose names start with ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
