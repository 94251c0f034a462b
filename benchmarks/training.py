"""Training speed: nnlemma (gradient graphs on the float32 kernel, fixed summation order) against
PyTorch autograd (float32, CPU, its own BLAS order) on the same problems, in the same process.

1. The 1-D PINN of ``examples/pinn_1d.py`` (u'' by nested forward-mode derivatives in nnlemma; by
   ``torch.autograd.grad(create_graph=True)`` twice in torch), Adam, 300 epochs of 2 batches.
2. A 2-64-64-2 tanh classifier with cross-entropy, Adam, 20 epochs of 3000 points in batches of 100.

Reports wall time per run (best of ``--repeat``), the ratio nnlemma/torch, and the final losses
(the two libraries start from different initial weights, so losses are reported, not compared).
Writes ``benchmarks/results/training.json``.

    python benchmarks/training.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
from results_io import write_result

import nnlemma as nl
from nnlemma import nn

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "training.json"
F32 = np.float32


def _pinn_module():
    spec = importlib.util.spec_from_file_location("pinn_1d", ROOT / "examples" / "pinn_1d.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pinn_nnlemma(epochs: int):
    _, hist, err = _pinn_module().train(epochs=epochs, seed=0, verbose=False)
    return hist[-1], err


def pinn_torch(epochs: int):
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.Tanh(),
                              torch.nn.Linear(16, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    X = torch.linspace(-1, 1, 64).reshape(-1, 1)
    bc = torch.tensor([[-1.0], [1.0]])
    g = torch.Generator().manual_seed(0)
    loss = None
    for _ in range(epochs):
        perm = torch.randperm(64, generator=g)
        for s in range(0, 64, 32):
            x = X[perm[s:s + 32]].clone().requires_grad_(True)
            u = net(x)
            ux = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
            uxx = torch.autograd.grad(ux.sum(), x, create_graph=True)[0]
            r = uxx + math.pi ** 2 * torch.sin(math.pi * x)
            loss = (r * r).mean() + (net(bc) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    grid = torch.linspace(-1, 1, 201).reshape(-1, 1)
    with torch.no_grad():
        err = float((net(grid) - torch.sin(math.pi * grid)).abs().max())
    return float(loss.detach()), err


def _blobs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 2)).astype(F32)
    y = ((X[:, 0] ** 2 + X[:, 1] ** 2) < 1.0).astype(np.int64)
    return X, y


def clf_nnlemma(epochs: int):
    X, y = _blobs()
    m = nn.Sequential(nn.Linear(2, 64, seed=1), nn.Tanh(), nn.Linear(64, 64, seed=2), nn.Tanh(), nn.Linear(64, 2, seed=3))
    hist = nl.train.fit(m, X, y, loss="cross_entropy", optimizer=nl.train.Adam(lr=0.01), epochs=epochs,
                        batch_size=100, seed=0)
    return hist[-1], None


def clf_torch(epochs: int):
    import torch
    torch.manual_seed(0)
    X, y = (torch.tensor(a) for a in _blobs())
    m = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
                            torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    total = 0.0
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=g)
        total = 0.0
        for s in range(0, len(X), 100):
            idx = perm[s:s + 100]
            loss = torch.nn.functional.cross_entropy(m(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
    return total / len(X), None


def _best(fn, arg, repeat):
    times, res = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        res = fn(arg)
        times.append(time.perf_counter() - t)
    return min(times), res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    rows = []
    for name, ours, theirs, epochs in (("pinn_1d (300 epochs x 2 batches of 32)", pinn_nnlemma, pinn_torch, 300),
                                       ("classifier 2-64-64-2 (20 epochs x 30 batches of 100)", clf_nnlemma,
                                        clf_torch, 20)):
        t_ours, (l_ours, e_ours) = _best(ours, epochs, args.repeat)
        t_theirs, (l_theirs, e_theirs) = _best(theirs, epochs, args.repeat)
        row = {"problem": name, "nnlemma_s": round(t_ours, 3), "torch_s": round(t_theirs, 3),
               "ratio_nnlemma_over_torch": round(t_ours / t_theirs, 2), "nnlemma_final_loss": l_ours,
               "torch_final_loss": l_theirs}
        if e_ours is not None:
            row.update(nnlemma_max_error=e_ours, torch_max_error=e_theirs)
        rows.append(row)
        print(json.dumps(row), flush=True)
    payload = {"benchmark": "training time, nnlemma gradient graphs (float32 kernel) vs torch autograd (float32)",
               "machine": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
               "torch_threads": 1, "repeat": args.repeat, "rows": rows}
    write_result(OUT, payload)


if __name__ == "__main__":
    main()
