"""PNG of a PINN run's PDE part: the certified |residual| bound per leaf over the domain next to
the |residual| the float32 kernel gives on a grid, on one logarithmic colour scale (2-D domains);
for 1-D domains both as curves over x."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError

F32 = np.float32


def _raster(lo, hi, values, dlo, dhi, shape) -> np.ndarray:
    """Per pixel, the largest value of the leaves touching it (leaves smaller than a pixel still show)."""
    img = np.full(shape, np.nan)
    ny, nx = shape
    span = np.asarray(dhi, np.float64) - np.asarray(dlo, np.float64)
    i0 = np.clip(((lo - dlo) / span * [nx, ny]).astype(int), 0, [nx - 1, ny - 1])
    i1 = np.clip(((hi - dlo) / span * [nx, ny]).astype(int), 0, [nx - 1, ny - 1])
    for (a, b), (c, d), v in zip(i0, i1, values):
        cur = img[b:d + 1, a:c + 1]
        img[b:d + 1, a:c + 1] = np.fmax(cur, v)
    return img


def write_plot(report: dict, problem, path: str | os.PathLike, grid: int = 400) -> Path:
    if problem.dim not in (1, 2):
        raise InputError(f"--plot draws 1-D and 2-D domains; {problem.name!r} has {problem.dim} variables")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import LogNorm
    except ImportError:
        raise InputError("--plot needs matplotlib (pip install 'nnlemma[report]')") from None
    from ..verify.problem import Problem
    from ..verify.report import atomic_save
    res, graph = report["_internal"][0]
    if not len(res.lo):
        raise InputError("--plot: the PDE part has no leaves")
    bound = res.abs_residual
    lo, hi = np.asarray(problem.lo), np.asarray(problem.hi)
    evaluate = Problem(graph, "float32").evaluate
    v = problem.variables
    title = (f"{problem.name}: certified max |r| = {res.certified_max:.3g}, sampled {res.sampled_max:.3g} "
             f"({len(res.lo):,} boxes, {report['semantics']})")
    if problem.dim == 1:
        xs = np.linspace(lo[0], hi[0], 4 * grid, dtype=F32).reshape(-1, 1)
        r = np.abs(evaluate(xs)[:, -1])
        fig, ax = plt.subplots(figsize=(8, 4.5))
        order = np.argsort(res.lo[:, 0])
        for i in order:
            ax.plot([res.lo[i, 0], res.hi[i, 0]], [bound[i]] * 2, color="#d7301f", lw=1.2)
        ax.plot(xs[:, 0], r, color="#2b8cbe", lw=1, label="|residual|, float32 kernel")
        ax.plot([], [], color="#d7301f", label="certified bound per box")
        ax.set_yscale("log")
        ax.set_xlabel(v[0])
        ax.legend()
    else:
        shape = (grid // 2, grid) if hi[1] - lo[1] >= hi[0] - lo[0] else (grid, grid // 2)
        img = _raster(res.lo[:, ::-1].astype(np.float64), res.hi[:, ::-1].astype(np.float64), bound,
                      lo[::-1], hi[::-1], shape)
        a = np.linspace(lo[0], hi[0], shape[0], dtype=F32)
        b = np.linspace(lo[1], hi[1], shape[1], dtype=F32)
        A, B = np.meshgrid(a, b, indexing="ij")
        r = np.abs(evaluate(np.stack([A.reshape(-1), B.reshape(-1)], axis=1))[:, -1]).reshape(shape)
        positive = np.concatenate([img[img > 0].ravel(), r[r > 0].ravel()])
        norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-6), vmax=positive.max())
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
        ext = (lo[1], hi[1], lo[0], hi[0])
        for ax, data, name in ((axes[0], img, "certified |residual| bound per box"),
                               (axes[1], r, "|residual|, float32 kernel on a grid")):
            im = ax.imshow(np.clip(data, norm.vmin, None), origin="lower", extent=ext, aspect="auto", norm=norm,
                           cmap="magma", interpolation="nearest")
            ax.set_title(name, fontsize=9)
            ax.set_xlabel(v[1])
            ax.plot([res.sampled_at[1]], [res.sampled_at[0]], "c+", ms=10)
        axes[0].set_ylabel(v[0])
        fig.colorbar(im, ax=axes, shrink=0.9)
    fig.suptitle(title, fontsize=10)
    out = Path(path)
    atomic_save(out, lambda tmp: fig.savefig(tmp, dpi=130, format="png"))
    plt.close(fig)
    return out
