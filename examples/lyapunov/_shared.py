"""Helpers shared by the Lyapunov examples: find the benchmark weights and build MLPs from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnlemma import nn
from nnlemma.errors import InputError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "lyapunov"


def weights(name: str, data_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """The float32 arrays of ``<name>.npz`` from ``data_dir`` (default: ../shared/benchmarks/lyapunov)."""
    path = Path(data_dir or DATA) / f"{name}.npz"
    if not path.exists():
        raise InputError(f"{path}: benchmark weights not found (pass the folder holding {name}.npz)")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def mlp(w: dict, prefix: str, activation, bias: bool = True) -> nn.Sequential:
    """nn.Sequential of the Linear layers ``prefix.0``, ``prefix.2``, ... with ``activation()``
    between them (the checkpoints' nn.Sequential indices)."""
    layers, i = [], 0
    while f"{prefix}.{i}.weight" in w:
        W = w[f"{prefix}.{i}.weight"]
        lin = nn.Linear(W.shape[1], W.shape[0], bias=bias and f"{prefix}.{i}.bias" in w)
        lin.load_state_dict({"weight": W, **({"bias": w[f"{prefix}.{i}.bias"]} if lin.bias is not None else {})})
        if layers:
            layers.append(activation())
        layers.append(lin)
        i += 2
    return nn.Sequential(*layers)
