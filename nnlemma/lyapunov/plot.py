"""PNG of a 2-D Lyapunov check: the leaves of each dynamics condition (certified green, undecided
orange, counterexample cells red), the level set V = ρ and V on a grid (the float32 kernel), the
hole, and the counterexamples."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..verify.problem import Problem
from .system import V_OUT

COLOURS = {"unsat": "#7fc97f", "sat": "#e41a1c", "timeout": "#fdae61", "unknown": "#fdae61"}


def write_plot(report: dict, system, path: str | os.PathLike, grid: int = 160) -> Path:
    if system.dim != 2:
        raise InputError(f"--plot draws 2-D systems; {system.name!r} has {system.dim} states")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle
    except ImportError:
        raise InputError("--plot needs matplotlib (pip install 'nnlemma[report]')") from None
    from ..verify.report import atomic_save
    graph, conds = report["_internal"]["graph"], report["_internal"]["conditions"]
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    dyn = next((c for c in conds if c.name == "decrease"), None)
    for leaf in (dyn.leaves if dyn else []):
        (x0, y0), (x1, y1) = [float(v) for v in leaf.cell.lo], [float(v) for v in leaf.cell.hi]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=COLOURS.get(leaf.status, "#cccccc"),
                               edgecolor="k", linewidth=0.3, alpha=0.6))
    xs = np.linspace(system.lo[0], system.hi[0], grid, dtype=np.float32)
    ys = np.linspace(system.lo[1], system.hi[1], grid, dtype=np.float32)
    X, Y = np.meshgrid(xs, ys)
    pts = np.stack([X.reshape(-1), Y.reshape(-1)], axis=1)
    vals = Problem(graph, "float32").evaluate(pts)[:, V_OUT].reshape(X.shape)
    ax.contour(X, Y, vals, levels=12, colors="grey", linewidths=0.4)
    if report["rho"] is not None:
        ax.contour(X, Y, vals, levels=[report["rho"]], colors="b", linewidths=1.5)
    if system.hole is not None:
        (ex, ey), (hx, hy) = system.x_eq, system.hole
        ax.add_patch(Rectangle((ex - hx, ey - hy), 2 * hx, 2 * hy, facecolor="w", edgecolor="k", linewidth=0.8))
    for cx in report["counterexamples"]:
        if len(cx.get("x", [])) == 2:
            ax.plot(*cx["x"], "rx", markersize=8)
    ax.set_xlim(system.lo[0], system.hi[0])
    ax.set_ylim(system.lo[1], system.hi[1])
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    verdict = {True: "verified", False: "refuted", None: "unknown"}[report["verified"]]
    ax.set_title(f"{system.name}: {verdict}, rho = {report['rho']} ({report['semantics']})", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    atomic_save(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
    return path
